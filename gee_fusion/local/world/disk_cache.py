"""Persistent on-disk tier of the demo world's block cache.

The in-memory LRU (:data:`gee_fusion.local.world.blocks.PRODUCTS`) asks this tier on a miss;
on a disk miss the block is computed and written here. Layout::

    <root>/<generator>-<config>/key.json           what the key stands for
    <root>/<generator>-<config>/<kind>/<i>/<bx>_<by>.npz

``<generator>`` hashes the source text of every module of ``gee_fusion/local/world/`` (and the
numpy version), so any change to the generator gets a new key; ``<config>`` hashes every
:class:`~gee_fusion.local.world.config.WorldConfig` field. A block is written to a temporary name
in its folder, then renamed over the final one (atomic: two processes writing the same block
leave one whole file). The folder is bounded by ``GEE_FUSION_WORLD_DISK_CACHE_MB``: past the
bound the least recently used files (by modification time, touched on read) go first. Each
process keeps a running total of what it wrote and rescans the folder only when that total
passes the bound or every :data:`SCAN_EVERY` writes.

Environment (read on every call, so tests and jobs may change it at run time):
``GEE_FUSION_WORLD_CACHE_DIR`` (default ``$XDG_CACHE_HOME/gee_fusion/world``, else
``~/.cache/gee_fusion/world``), ``GEE_FUSION_WORLD_DISK_CACHE_MB`` (default 4096) and
``GEE_FUSION_WORLD_DISK_CACHE=0`` to switch the tier off.

Bad input never changes a pixel: an unusable folder (read-only, a file in the way, a full disk)
gives one :class:`WorldCacheWarning` and the tier is bypassed for the rest of the process; an
unreadable block file gives a warning, and the block is recomputed and written again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import threading
import time
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from gee_fusion.errors import ConfigError
from gee_fusion.local.world import npz
from gee_fusion.local.world.config import WorldConfig
from gee_fusion.local.world.lazy_block import LazyBlock

ENV_DIR = "GEE_FUSION_WORLD_CACHE_DIR"
ENV_SWITCH = "GEE_FUSION_WORLD_DISK_CACHE"
ENV_MB = "GEE_FUSION_WORLD_DISK_CACHE_MB"
DEFAULT_MB = 4096.0
SCAN_EVERY = 256
"""Writes between two scans of the folder (other processes' writes are seen at a scan)."""
EVICT_TO = 0.9
"""An eviction brings the folder down to this share of the bound (so scans stay rare)."""
STALE_TMP_S = 3600.0
"""Temporary files older than this (a writer that died) are removed at a scan."""
KEY_FILE = "key.json"
KEY_RE = re.compile(r"^[0-9a-f]{12}-[0-9a-f]{12}$")
TMP_SUFFIX = ".tmp"

Product = Mapping[str, np.ndarray]


class WorldCacheWarning(UserWarning):
    """The demo world's disk cache was bypassed or a block file of it was rebuilt."""


# -- settings (read at call time) -----------------------------------------------------------


def enabled() -> bool:
    """Whether the disk tier is on (``GEE_FUSION_WORLD_DISK_CACHE`` not 0/false/off/no)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in {"0", "false", "off", "no"}


def cache_root() -> Path:
    """The cache folder: ``$GEE_FUSION_WORLD_CACHE_DIR``, else the user's cache folder."""
    explicit = os.environ.get(ENV_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "gee_fusion" / "world"


def limit_bytes() -> int:
    """The bound on the folder's size, from ``GEE_FUSION_WORLD_DISK_CACHE_MB`` (MiB)."""
    raw = os.environ.get(ENV_MB, "").strip()
    try:
        mib = float(raw) if raw else DEFAULT_MB
    except ValueError:
        mib = -1.0
    if not mib >= 0.0:
        raise ConfigError(
            f"{ENV_MB}={raw!r} is not a size: give the demo world's disk cache bound in MiB (e.g. 4096), "
            f"or set {ENV_SWITCH}=0 to switch the disk cache off."
        )
    return int(mib * 2**20)


# -- keys ------------------------------------------------------------------------------------


def source_hash(folder: Path) -> str:
    """SHA-256 of the source text of every ``*.py`` under ``folder`` (and of numpy's version)."""
    digest = hashlib.sha256(f"numpy {np.__version__}\n".encode())
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def generator_version() -> str:
    """Hash of the generator's source (``gee_fusion/local/world/``): any edit changes it."""
    return source_hash(Path(__file__).resolve().parent)


def config_fields(cfg: WorldConfig) -> dict[str, object]:
    """Every field of a world config, by name."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def config_hash(cfg: WorldConfig) -> str:
    """SHA-256 of every field of ``cfg`` (floats by their exact repr)."""
    text = json.dumps({k: repr(v) for k, v in config_fields(cfg).items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def key_name(cfg: WorldConfig) -> str:
    """The key folder's name: generator version and world config."""
    return f"{generator_version()[:12]}-{config_hash(cfg)[:12]}"


def block_path(root: Path, cfg: WorldConfig, kind: str, i: int, bx: int, by: int) -> Path:
    """Where block (bx, by) of acquisition ``i`` of product ``kind`` ("s1", "s2") is stored."""
    return root / key_name(cfg) / kind / str(i) / f"{bx}_{by}.npz"


def usable() -> bool:
    """Whether the disk tier is on and has not been bypassed in this process."""
    return enabled() and not _state(cache_root()).broken


def stored(kind: str, cfg: WorldConfig, i: int, bx: int, by: int) -> bool:
    """Whether the disk tier is on and holds a file for block (bx, by) of acquisition ``i`` (a read
    may still find it damaged, or evicted since)."""
    return enabled() and block_path(cache_root(), cfg, kind, i, bx, by).is_file()


# -- per-folder state of this process ---------------------------------------------------------


@dataclasses.dataclass
class _State:
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    broken: bool = False
    total: int | None = None  # bytes in the folder as last scanned, plus what was written since
    writes: int = 0
    keys: set[str] = dataclasses.field(default_factory=set)


_STATES: dict[str, _State] = {}
_STATES_LOCK = threading.Lock()


def _state(root: Path) -> _State:
    with _STATES_LOCK:
        return _STATES.setdefault(str(root), _State())


def forget(root: Path) -> None:
    """Drop this process's state of the folder ``root`` (after it was cleared)."""
    with _STATES_LOCK:
        _STATES.pop(str(root), None)


def _bypass(state: _State, root: Path, exc: OSError) -> None:
    with state.lock:
        if state.broken:
            return
        state.broken = True
    warnings.warn(
        f"demo world disk cache: cannot use {root} ({exc.strerror or exc}); generated blocks are not "
        f"kept on disk in this process. Set {ENV_DIR} to a writable folder, or {ENV_SWITCH}=0 "
        "to silence this.",
        WorldCacheWarning,
        stacklevel=4,
    )


# -- the tier ------------------------------------------------------------------------------------


def fetch(
    kind: str,
    cfg: WorldConfig,
    i: int,
    bx: int,
    by: int,
    compute: Callable[[], Product],
    groups: Sequence[Collection[str]] = (),
) -> Product:
    """Block (bx, by) of acquisition ``i``: read from disk, else computed and written.

    Args:
        kind: Product family ("s1", "s2").
        cfg: The world.
        i: Acquisition index.
        bx: Block column.
        by: Block row.
        compute: Computes the block (every field of the product, arrays).
        groups: Fields read together: a block file is read group by group, the first group now and
            the others on first use (a :class:`~gee_fusion.local.world.lazy_block.LazyBlock`);
            empty: read whole.

    Returns:
        The product's arrays, identical to ``compute()``'s.
    """
    if not enabled():
        return compute()
    root, limit = cache_root(), limit_bytes()
    state = _state(root)
    if state.broken:
        return compute()
    path = block_path(root, cfg, kind, i, bx, by)
    try:
        hit = _read(path, groups[0] if groups else None)
    except PermissionError as exc:
        _bypass(state, root, exc)
        return compute()
    if hit is None:
        return _computed(state, root, cfg, path, limit, _grouped(compute, groups))
    arrays, sizes = hit
    if len(arrays) >= len(sizes):
        return arrays
    rest = functools.partial(_rest, state, root, cfg, path, limit, _grouped(compute, groups))
    return LazyBlock(arrays, sizes, groups, rest)


def _grouped(compute: Callable[[], Product], groups: Sequence[Collection[str]]) -> Callable[[], Product]:
    """``compute`` with its fields ordered group by group (then the others), so that each group's
    members follow one another in the block file (one read a group)."""
    if not groups:
        return compute

    def ordered() -> Product:
        value = compute()
        order = [name for group in groups for name in group if name in value]
        return {name: value[name] for name in dict.fromkeys([*order, *value])}

    return ordered


def _rest(
    state: _State, root: Path, cfg: WorldConfig, path: Path, limit: int, compute: Callable[[], Product],
    names: Collection[str],
) -> Product:  # fmt: skip
    """Fields ``names`` of a block whose file was read in part: read now, else (the file evicted or
    damaged since) the whole block computed and its file written again."""
    try:
        hit = _read(path, names)
    except PermissionError as exc:
        _bypass(state, root, exc)
        return compute()
    return hit[0] if hit is not None else _computed(state, root, cfg, path, limit, compute)


def _computed(
    state: _State, root: Path, cfg: WorldConfig, path: Path, limit: int, compute: Callable[[], Product]
) -> Product:
    """``compute()``, written to ``path`` (unless the tier was bypassed meanwhile)."""
    value = compute()
    if not state.broken:
        _write(state, root, cfg, path, value, limit)
    return value


def _read(path: Path, names: Collection[str] | None) -> tuple[Product, dict[str, int]] | None:
    """The arrays ``names`` (all if None) stored at ``path`` and the size of every array of the
    file; None when absent or unreadable (with a warning)."""
    try:
        out = npz.read_part(path, names)
        if not out[1]:
            raise ValueError("no arrays")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        warnings.warn(
            f"demo world disk cache: {path} is unreadable ({type(exc).__name__}: {exc}); the block is "
            "generated again and the file rewritten.",
            WorldCacheWarning,
            stacklevel=4,
        )
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # least recently used = oldest modification time
    return out


def _write(state: _State, root: Path, cfg: WorldConfig, path: Path, value: Product, limit: int) -> None:
    """Store ``value`` at ``path`` atomically, then keep the folder within its bound."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    try:
        _ensure_key(state, root, cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as fh:
                npz.write(fh, value)  # field names are keys of the archive
            size = tmp.stat().st_size
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    except OSError as exc:
        _bypass(state, root, exc)
        return
    with state.lock:
        state.writes += 1
        if state.total is not None:
            state.total += size
        if state.total is None or state.total > limit or state.writes >= SCAN_EVERY:
            state.total = evict(root, limit)
            state.writes = 0


def _ensure_key(state: _State, root: Path, cfg: WorldConfig) -> None:
    """Write the key folder's ``key.json`` (what the key stands for) once per process."""
    name = key_name(cfg)
    if name in state.keys:
        return
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / KEY_FILE
    if not target.is_file():
        text = json.dumps(
            {"generator": generator_version(), "numpy": np.__version__, "config": config_fields(cfg)},
            indent=1,
        )
        tmp = folder / f".{KEY_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
        try:
            tmp.write_text(text)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    state.keys.add(name)


# -- scanning and eviction (information and clearing: cache_info.py) -------------------------------


def _key_dirs(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if KEY_RE.match(p.name) and p.is_dir())
    except OSError:
        return []


def _files(folder: Path) -> Iterator[tuple[float, int, Path]]:
    """(mtime, size, path) of every block file under a key folder; stale temporary files removed."""
    now = time.time()
    for parent, _, names in os.walk(folder):
        for name in names:
            path = Path(parent, name)
            try:
                st = path.stat()
            except OSError:
                continue
            if name.endswith(TMP_SUFFIX):
                if now - st.st_mtime > STALE_TMP_S:
                    with contextlib.suppress(OSError):
                        path.unlink()
            elif name.endswith(".npz"):
                yield st.st_mtime, st.st_size, path


def evict(root: Path, limit: int) -> int:
    """Remove the least recently used block files until the folder is within ``limit`` bytes
    (down to :data:`EVICT_TO` of it); returns the bytes left."""
    files = [f for key in _key_dirs(root) for f in _files(key)]
    total = sum(size for _, size, _ in files)
    if total <= limit:
        return total
    target = int(limit * EVICT_TO)
    for _, size, path in sorted(files):
        if total <= target:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            pass  # another process evicted it
        except OSError:
            continue
        total -= size
    return total
