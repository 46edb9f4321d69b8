"""Processes that generate the demo world's blocks beside this one, into the disk cache.

Threads share one GIL: on 2 cores, two threads made a Sentinel-2 block in 8.5 ms where one made
it in 12.4 ms (1.46x), while two processes made theirs in 11.5 and 12.2 ms each (2x). So when the
disk cache is usable, the blocks of a window that are to be generated are shared among this process
and ``GEE_FUSION_WORLD_PROCESSES - 1`` helper processes. Block (bx, by) always goes to the same
process (:func:`share_of`), so the block's ground (what every date of it shares) is built in one
process only; a helper writes its blocks to the disk cache, and this process reads them from there
when it assembles the window (about 0.7 ms a block).

Helpers are started in the background the first time blocks are to be generated (a helper imports
the engine first: about a second); until they are ready, and whenever the disk cache is off or
bypassed, the blocks are made by this process's threads (:mod:`gee_fusion.local.workers`), as
before. A helper is a plain ``python -m gee_fusion.local.world.processes`` child that reads pickled
tasks on its standard input and answers on its standard output (not :mod:`multiprocessing`, whose
start methods run the parent's main script again in the child); it ends when its input closes: at
this process's exit, or when this process dies. A helper that fails (killed, a broken pipe, an
error in a task) gives one :class:`WorldProcessWarning`; the helpers are then stopped for the rest
of the process, and the blocks a helper did not make are generated here when they are read.

Pixels never depend on where a block was made: every block is a pure function of the world config
and its coordinates (``tests/test_world_processes.py`` compares blocks made with helpers and
without, byte for byte).

``GEE_FUSION_WORLD_PROCESSES`` (read on every call): the processes that generate blocks, this one
included; 1: no helper. Default: the CPUs this process may run on, at most :data:`DEFAULT_MAX`.
POSIX only (elsewhere: no helper).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from gee_fusion.local import workers
from gee_fusion.local.world import disk_cache

ENV_PROCESSES = "GEE_FUSION_WORLD_PROCESSES"
DEFAULT_MAX = 4
"""Most processes by default (each helper holds its own ground and land-cover caches)."""
FOLLOWED = (disk_cache.ENV_DIR, disk_cache.ENV_SWITCH, disk_cache.ENV_MB, "XDG_CACHE_HOME")
"""Settings sent with every task (read on every call here, so a helper follows their changes)."""
READY = "gee_fusion world helper ready"
PRELOAD = ("gee_fusion.local.world.sentinel2",)
"""Modules a helper imports before it says it is ready (by name: they import this module)."""

Coords = list[tuple[int, int]]


class WorldProcessWarning(UserWarning):
    """A helper process of the demo world failed; blocks are generated in this process from now on."""


def count() -> int:
    """Processes that generate blocks, this one included: ``GEE_FUSION_WORLD_PROCESSES``, else the
    available CPUs (at most :data:`DEFAULT_MAX`); 1 where helpers cannot run (not POSIX).

    Raises:
        ConfigError: ``GEE_FUSION_WORLD_PROCESSES`` is not a whole number of at least 1.
    """
    if os.name != "posix":
        return 1
    one = "1 generates the demo world's blocks in this process only"
    default = min(workers.available_cpus(), DEFAULT_MAX)
    return workers.env_count(ENV_PROCESSES, default=default, unit="processes", one=one)


def share_of(bx: int, by: int, n: int) -> int:
    """The process (0: this one) that makes block (bx, by) among ``n``: a block always goes to the
    same one, and a rectangle of blocks is shared about evenly (by diagonals: a checkerboard for two)."""
    return (bx + by) % n


class _Helper:
    """One helper process and its two pipes."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[3])  # the gee_fusion this process runs
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, ENV_PROCESSES: "1", workers.ENV_WORKERS: "1", "PYTHONPATH": path}
        self.proc = subprocess.Popen(  # -P: not the working directory's gee_fusion, this one
            [sys.executable, "-P", "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.ready = False

    def poll_ready(self) -> bool:
        """Whether the helper has said it is ready (without waiting)."""
        out = self._out()
        if not self.ready and select.select([out], [], [], 0)[0]:
            try:
                said = pickle.load(out)
            except Exception as exc:
                raise OSError(f"a helper process did not start (exit status {self.proc.poll()})") from exc
            if said != READY:
                raise OSError("a helper process did not start")
            self.ready = True
        return self.ready

    def send(self, task: Callable[[], object]) -> None:
        """Send a task (a picklable callable)."""
        inp = self.proc.stdin
        assert inp is not None
        try:
            pickle.dump(task, inp, protocol=pickle.HIGHEST_PROTOCOL)
            inp.flush()
        except OSError:
            raise
        except Exception as exc:  # an unpicklable task: part of it may be in the pipe already
            what = f"{type(exc).__name__}: {exc}"
            raise OSError(f"a task could not be sent to a helper process ({what})") from exc

    def receive(self) -> object:
        """The answer to the task sent last (waits for it).

        Raises:
            OSError: The helper ended, or the task failed there.
        """
        try:
            ok, value = pickle.load(self._out())
        except OSError:
            raise
        except Exception as exc:  # the pipe ended (EOFError) or carried something else
            raise OSError(f"a helper process ended (exit status {self.proc.poll()})") from exc
        if not ok:
            raise OSError(f"a task failed in a helper process: {value}")
        return value

    def close(self) -> None:
        """Close its input (it then ends) and wait for it a little, else kill it."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _out(self) -> IO[bytes]:
        out = self.proc.stdout
        assert out is not None
        return out


_lock = threading.Lock()
_helpers: tuple[int, list[_Helper]] | None = None  # (pid, helpers)
_failed = False


def _ready(k: int) -> list[_Helper] | None:
    """``k`` helpers, ready; None while they start (started here on the first call) or after one
    failed. Call with :data:`_lock` held."""
    global _helpers
    if _failed:
        return None
    if _helpers is None or _helpers[0] != os.getpid() or len(_helpers[1]) != k:
        _close_mine()
        _helpers = (os.getpid(), [])
        try:
            for _ in range(k):
                _helpers[1].append(_Helper())
        except (OSError, ValueError) as exc:  # no process can be started here (a sandbox, no executable)
            _fail(exc)
        return None
    try:
        return _helpers[1] if all([h.poll_ready() for h in _helpers[1]]) else None
    except OSError as exc:
        _fail(exc)
        return None


def _close_mine() -> None:
    """Close this process's helpers (not those a forked parent started). Call with :data:`_lock`
    held."""
    if _helpers is not None and _helpers[0] == os.getpid():
        for helper in _helpers[1]:
            helper.close()


def _fail(exc: BaseException) -> None:
    """Stop the helpers for the rest of the process, with one warning. Call with :data:`_lock` held."""
    global _failed, _helpers
    _failed = True
    _close_mine()
    _helpers = None
    warnings.warn(
        f"demo world: a helper process failed ({exc}); the blocks are generated in this process from "
        f"now on. Set {ENV_PROCESSES}=1 to use none.",
        WorldProcessWarning,
        stacklevel=4,
    )


def warm_up(timeout: float = 30.0) -> bool:
    """Start the helpers now (if ``GEE_FUSION_WORLD_PROCESSES`` asks for any) and wait until they
    are ready, at most ``timeout`` seconds: before a long loop of requests, say, so that the first
    requests are shared too.

    Returns:
        Whether the helpers are ready (False with none asked for, or after one failed).
    """
    n = count()  # 1 where helpers cannot run
    if n < 2:
        return False
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            if _ready(n - 1) is not None:
                return True
            if _failed:
                return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def stop() -> None:
    """Stop the helpers (they start again when blocks are next generated)."""
    global _helpers, _failed
    with _lock:
        _close_mine()
        _helpers, _failed = None, False


atexit.register(stop)


def _forget_after_fork() -> None:
    """In a child forked from this process: its own lock, no helpers (those answer the parent; their
    pipes are closed here, so that they still end with the parent)."""
    global _lock, _helpers, _failed
    _lock = threading.Lock()
    if _helpers is not None:
        for helper in _helpers[1]:
            for pipe in (helper.proc.stdin, helper.proc.stdout):
                with contextlib.suppress(OSError, ValueError):
                    if pipe is not None:
                        pipe.close()
    _helpers, _failed = None, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def generate(
    make: Callable[..., object], coords: Coords, *, prepare: Callable[[], object] | None = None
) -> bool:
    """Generate blocks ``coords`` into the disk cache, shared among this process and the helpers
    (:func:`share_of`). This process makes its share with ``make(share)``; a helper runs
    ``prepare()`` (what every block needs, made once here), then ``make(share, keep=False)``, which
    writes the blocks to the disk cache and keeps none in memory.

    Args:
        make: Makes a list of blocks (bx, by) through the block caches (a picklable callable, e.g. a
            ``functools.partial`` of a module's function; see :func:`blocks.make_blocks`).
        coords: The blocks (bx, by) to make.
        prepare: Run first in each helper (picklable).

    Returns:
        False when the blocks may not all be made (helpers off, still starting, busy with another
        thread's window or failed, the disk cache off or bypassed): the caller makes them itself
        (those made already come from the caches).
    """
    n = count()
    if n < 2 or len(coords) < 2 or not disk_cache.usable():
        return False
    if not _lock.acquire(blocking=False):  # another thread is using the helpers: it uses threads
        return False
    try:
        helpers = _ready(n - 1)
        if helpers is None:
            return False
        shares: list[Coords] = [[] for _ in range(n)]
        for bx, by in coords:
            shares[share_of(bx, by, n)].append((bx, by))
        settings = {name: os.environ.get(name) for name in FOLLOWED}
        sent: list[_Helper] = []
        try:
            for helper, share in zip(helpers, shares[1:], strict=True):
                if share:
                    helper.send(functools.partial(_make, settings, prepare, make, share))
                    sent.append(helper)
        except BaseException as exc:
            _fail(exc)
            if not isinstance(exc, OSError):
                raise
            return False
        done = False
        try:
            if shares[0]:
                make(shares[0])
        finally:
            done = _collect(sent)
    finally:
        _lock.release()
    return done


def _collect(sent: Sequence[_Helper]) -> bool:
    """The answers of the helpers a task was sent to: whether all made their blocks. Any failure (or
    an interruption while waiting, which would leave an answer unread in a pipe) stops the helpers.
    Call with :data:`_lock` held."""
    for helper in sent:
        try:
            made = helper.receive()
            if made != (True, disk_cache.generator_version()):
                raise OSError(
                    "a helper process did not keep its blocks on disk (its disk cache was bypassed) or "
                    "runs another version of the generator"
                )
        except BaseException as exc:
            _fail(exc)
            if not isinstance(exc, OSError):
                raise
            return False
    return True


def _make(
    settings: dict[str, str | None],
    prepare: Callable[[], object] | None,
    make: Callable[..., object],
    coords: Coords,
) -> tuple[bool, str]:
    """In a helper: follow the settings, prepare, make the blocks (written to the disk cache, none
    kept in memory). Returns whether the disk cache is still used here, and the generator's version
    (the requesting process checks both: else it would read none of the blocks made here)."""
    for name, value in settings.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if prepare is not None:
        prepare()
    make(coords, keep=False)
    return disk_cache.usable(), disk_cache.generator_version()


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """A helper's loop: a pickled task in, ``(True, its value)`` or ``(False, the error)`` out, until
    the input ends."""
    pickle.dump(READY, out)
    out.flush()
    while True:
        try:
            task = pickle.load(inp)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, task())
        except Exception as exc:  # sent back: raised in the parent as an OSError
            answer = (False, f"{type(exc).__name__}: {exc}")
        pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    # the protocol keeps the pipe; anything else written to standard output, by Python or C code,
    # goes to standard error
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for module in PRELOAD:  # what the tasks run, imported before READY
        importlib.import_module(module)
    _serve(sys.stdin.buffer, protocol_out)
