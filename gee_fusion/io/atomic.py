"""Atomic output: write to a temporary path beside the target, then rename into place.

Temporaries are hidden and carry the writing process's id (``.NAME.PID.XXXX``): a run that was
killed (``kill -9``, a power cut) cannot clean up, so the next write of the same target removes
the temporaries of processes that no longer exist (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gee_fusion.errors import OutputError


def temporary_prefix(target: Path) -> str:
    """The name prefix of this process's temporaries for ``target``."""
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove temporaries of ``target`` left by processes that no longer run; returns them."""
    import shutil

    target = Path(target)
    head = f".{target.name}."
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for entry in target.parent.iterdir():
        if not entry.name.startswith(head):
            continue
        pid_text = entry.name[len(head) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def temporary_dir(target: Path) -> Path:
    """A new hidden folder beside ``target`` for intermediate files (removed by the caller)."""
    remove_stale_temporaries(target)
    return Path(tempfile.mkdtemp(prefix=temporary_prefix(target), dir=target.parent))


@contextlib.contextmanager
def atomic_path(target: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target``, on error it is removed.

    Args:
        target: The final file path (its folder is created if needed).
        suffix: Suffix of the temporary file (defaults to the target's, for drivers that
            infer the format from it).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {target.parent}: {exc}") from exc
    if target.is_dir():
        raise OutputError(f"Cannot write {target}: a folder of that name is in the way.")
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=temporary_prefix(target), suffix=suffix if suffix is not None else target.suffix,
        dir=target.parent,
    )  # fmt: skip
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual mode
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` (a folder
    store such as Zarr), on error it is removed and ``target`` is left as it was.
    """
    import shutil

    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {target.parent}: {exc}") from exc
    if target.exists() and not target.is_dir():
        raise OutputError(f"Cannot write {target}: a file of that name is in the way.")
    tmp = temporary_dir(target)
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=temporary_prefix(target) + "old.", dir=target.parent))
            os.replace(target, old / "store")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def output_folder(folder: str | Path) -> Path:
    """An output folder, checked before any computation (created if missing).

    Raises:
        OutputError: the path is a file, or the folder cannot be created or written.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputError(f"The output folder {out} is a file: choose a folder (e.g. --out outputs/demo).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {out}: {exc}") from exc
    if not os.access(out, os.W_OK):
        raise OutputError(f"The output folder {out} is not writable.")
    return out
