"""A bounded pool of threads for the local engine's numpy work that splits into independent parts:
the demo world's blocks, generated at once, and the strips of a large computePixels result.

Generating a block is numpy work on 256 x 256 arrays, which runs without the GIL, and writing its
file (the CRCs aside) is I/O: two blocks generated on two cores take little more than one. Every
block is a pure function of the world config and its coordinates (the noise is hashed from them,
never drawn in sequence), so a block is the same whichever thread makes it and in whatever order;
the caches it lands in (:class:`~gee_fusion.local.world.blocks.ByteLRU`, ``functools.lru_cache``,
the disk cache's atomic renames) are thread-safe. The strips of a result are disjoint rows of one
array, each written by one task.

``GEE_FUSION_LOCAL_WORKERS`` (read on every call) sets the number of threads, the calling one
included; 1 runs every task in the calling thread. By default: the CPUs this process may run on, at
most :data:`DEFAULT_MAX`. A task that itself asks for several runs them in its own thread (no task
waits on the pool it runs in).
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from gee_fusion.errors import ConfigError

ENV_WORKERS = "GEE_FUSION_LOCAL_WORKERS"
OLD_ENV_WORKERS = "GEE_FUSION_WORLD_WORKERS"
"""The variable's name before the pool moved out of the demo world (read when the new one is unset)."""
DEFAULT_MAX = 4
"""Most threads by default (each block in flight holds about 30 MiB of temporaries)."""

T = TypeVar("T")

_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, threads, pool)
_inside = threading.local()


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def count() -> int:
    """Threads of the pool, the calling one included: ``GEE_FUSION_LOCAL_WORKERS``, else the available
    CPUs (at most :data:`DEFAULT_MAX`).

    Raises:
        ConfigError: ``GEE_FUSION_LOCAL_WORKERS`` is not a whole number of at least 1.
    """
    one = "1 runs the local engine's work, the demo world's blocks included, in one thread"
    name = ENV_WORKERS
    if not os.environ.get(ENV_WORKERS, "").strip() and os.environ.get(OLD_ENV_WORKERS, "").strip():
        name = OLD_ENV_WORKERS
        _renamed()
    return env_count(name, default=min(available_cpus(), DEFAULT_MAX), unit="threads", one=one)


@functools.cache
def _renamed() -> None:
    """Say once that the old name of :data:`ENV_WORKERS` is read."""
    warnings.warn(
        f"{OLD_ENV_WORKERS} is now named {ENV_WORKERS} (the pool serves the whole local engine); the old "
        "name is still read when the new one is unset.",
        FutureWarning,
        stacklevel=4,
    )


def env_count(name: str, *, default: int, unit: str, one: str) -> int:
    """A count of at least 1 from the environment variable ``name`` (read now; ``default`` when unset).

    Raises:
        ConfigError: The variable is not a whole number of at least 1 (the message names the ``unit``
            counted and says what ``one`` means).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return max(1, default)
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(
            f"{name}={raw!r} is not a number of {unit}: give a whole number of at least 1 ({one})."
        )
    return n


def _executor(threads: int) -> ThreadPoolExecutor:
    """The pool of ``threads`` threads of this process (a new one after a fork or a new count)."""
    global _pool
    with _lock:
        pid = os.getpid()
        if _pool is None or _pool[0] != pid or _pool[1] != threads:
            old = _pool
            _pool = (pid, threads, ThreadPoolExecutor(threads, "gee-fusion-local", _mark_inside))
            if old is not None and old[0] == pid:
                old[2].shutdown(wait=False)
        return _pool[2]


def _mark_inside() -> None:
    _inside.flag = True


def run_all(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """The results of ``tasks``, in their order: run by the pool's threads and the calling thread
    together when there are several of each, else one after the other in the calling thread.

    The calling thread runs every task no pool thread has started yet, so it never waits on a task
    queued behind others' (tasks from another thread that wait on a lock it holds, say). Every task
    runs to its end even when another fails; the first failure (in task order) is then raised.
    """
    threads = count()
    if threads < 2 or len(tasks) < 2 or getattr(_inside, "flag", False):
        return [task() for task in tasks]
    pool = _executor(threads - 1)  # the calling thread is the last one
    futures: list[Future[T]] = [pool.submit(task) for task in tasks]
    outcomes: list[tuple[T | None, BaseException | None] | None] = [None] * len(tasks)
    for k, (future, task) in enumerate(zip(futures, tasks, strict=True)):
        if future.cancel():  # not started: run it here
            try:
                outcomes[k] = (task(), None)
            except Exception as exc:  # raised below, after the other tasks
                outcomes[k] = (None, exc)
    results: list[T] = []
    first: BaseException | None = None
    for future, outcome in zip(futures, outcomes, strict=True):
        if outcome is None:
            error = future.exception()  # waits for it
            outcome = (None, error) if error is not None else (future.result(), None)
        if outcome[1] is not None:
            first = first or outcome[1]
        results.append(outcome[0])  # type: ignore[arg-type]
    if first is not None:
        raise first
    return results
