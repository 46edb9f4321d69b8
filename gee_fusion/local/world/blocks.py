"""Block cache: world layers computed once per aligned block, any window assembled from blocks.

Windows are on the 10 m world lattice (col, row, width, height), may extend beyond the world
(the layers are defined everywhere) and are served from 256 x 256 blocks kept in an LRU.
Sentinel products go through two tiers: the in-memory :data:`PRODUCTS`, then the persistent
:mod:`~gee_fusion.local.world.disk_cache` (:func:`product_block`).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import fields
from typing import Generic, TypeVar, cast

import numpy as np

from gee_fusion.local import workers
from gee_fusion.local.world import disk_cache, landcover, processes
from gee_fusion.local.world.config import WorldConfig

BLOCK = 256

Product = Mapping[str, np.ndarray]
V = TypeVar("V")


TRIM_EVERY = 64 * 2**20
"""Evicted bytes after which a cache hands the freed heap memory back to the system."""


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None elsewhere)."""
    try:
        return cast(Callable[[int], int], ctypes.CDLL(None).malloc_trim)
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Return the free pages of the heap to the system (glibc ``malloc_trim``; a no-op elsewhere).

    Evicted blocks leave holes all over the heap, in one malloc arena per thread that generated
    them; the allocator keeps those pages, so without a trim a long job's resident memory grows to
    about twice its caches (the city-year job with 1 GiB of caches: 2.57 GiB peak, 1.80 GiB with a
    trim every second, 1.84 GiB with a single malloc arena).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def product_bytes(value: Product) -> int:
    """Memory held by a product's arrays (a block read in part: once read whole)."""
    nbytes = getattr(value, "nbytes", None)  # a LazyBlock: without reading what it has not read
    return int(nbytes) if nbytes is not None else sum(a.nbytes for a in value.values())


class ByteLRU(Generic[V]):
    """A thread-safe LRU of per-block values bounded by their total size in bytes (``sizeof``;
    by default, that of a product's arrays)."""

    def __init__(self, limit_bytes: int, sizeof: Callable[[V], int] | None = None) -> None:
        self.limit = limit_bytes
        self._sizeof: Callable[[V], int] = sizeof or product_bytes  # type: ignore[assignment]
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._total = 0
        self._evicted = 0  # bytes evicted since the heap was last trimmed
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for ``key``, computing (and caching) it on a miss."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        value = compute()
        size = self._sizeof(value)
        trim = False
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self._total += size
                while self._total > self.limit and len(self._items) > 1:
                    _, (_, old) = self._items.popitem(last=False)
                    self._total -= old
                    self._evicted += old
                if self._evicted >= TRIM_EVERY:
                    self._evicted, trim = 0, True
        if trim:
            release_free_memory()
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._total = 0


CACHE_MB = int(os.environ.get("GEE_FUSION_WORLD_CACHE_MB", "256"))
"""Memory for generated Sentinel blocks (MiB), shared by Sentinel-1 and Sentinel-2. A miss is read
back from the disk cache (about 0.8 ms for the bands of an S2 block), so more memory buys little:
the city-year job (a year of monthly NDVI over the 12 km city) peaked at 1.37 GiB with 256 MiB and
the heap trims (:func:`release_free_memory`), 2.57 GiB with 768 MiB and none."""

PRODUCTS: ByteLRU[Product] = ByteLRU(CACHE_MB * 2**20)


def product_block(
    kind: str,
    cfg: WorldConfig,
    i: int,
    bx: int,
    by: int,
    compute: Callable[[], Product],
    groups: Sequence[Collection[str]] = (),
) -> Product:
    """Block (bx, by) of acquisition ``i`` of a product family ("s1", "s2"): from memory, else
    from the disk cache (read by ``groups`` of fields, see :func:`disk_cache.fetch`), else
    ``compute()`` (then kept in both)."""
    return PRODUCTS.get(
        (kind, cfg, i, bx, by), lambda: disk_cache.fetch(kind, cfg, i, bx, by, compute, groups)
    )


def window_blocks(col0: int, row0: int, width: int, height: int, block: int = BLOCK) -> list[tuple[int, int]]:
    """(bx, by) of every block (of ``block`` x ``block`` pixels) a window touches, row by row."""
    return [
        (bx, by)
        for by in range(row0 // block, (row0 + height - 1) // block + 1)
        for bx in range(col0 // block, (col0 + width - 1) // block + 1)
    ]


def overlap(
    col0: int, row0: int, width: int, height: int, bx: int, by: int, block: int = BLOCK
) -> tuple[int, int, int, int]:
    """(first row, end row, first column, end column) of the part of block (bx, by) that a window
    covers, in the window's lattice."""
    rs, re_ = max(row0, by * block), min(row0 + height, (by + 1) * block)
    cs, ce = max(col0, bx * block), min(col0 + width, (bx + 1) * block)
    return rs, re_, cs, ce


def prefetch_products(
    kind: str,
    cfg: WorldConfig,
    i: int,
    window: tuple[int, int, int, int],
    block: Callable[[int, int], Product],
    block_bytes: int,
    before: Callable[[], Callable[[], object] | None] = lambda: None,
) -> None:
    """Generate the blocks of acquisition ``i`` that a window of the 10 m lattice touches and that
    are neither in :data:`PRODUCTS` nor in the disk cache: shared with the world's helper processes
    (:mod:`~gee_fusion.local.world.processes`, which write them to the disk cache) when they are
    ready, else by the :mod:`~gee_fusion.local.workers` threads (``block(bx, by)`` makes one,
    through :func:`product_block`; a picklable callable). Blocks on disk are left to be read when
    the window is assembled (a read takes about a millisecond: threads only slowed it).

    At most half of the cache's room is filled (``block_bytes``: the size of a block), so that none
    is evicted before the window is assembled; the blocks past that come one by one as before.
    ``before()`` is called first, in this thread, when there is a block to generate: what every
    block's generation needs, made once; it returns what a helper process runs first to have it too
    (or None).
    """
    missing = [(bx, by) for bx, by in window_blocks(*window) if (kind, cfg, i, bx, by) not in PRODUCTS]
    missing = missing[: max(1, PRODUCTS.limit // 2 // max(1, block_bytes))]
    new = [(bx, by) for bx, by in missing if not disk_cache.stored(kind, cfg, i, bx, by)]
    if len(new) < 2:
        return
    prepare = before()
    if not processes.generate(functools.partial(make_blocks, block), new, prepare=prepare):
        workers.run_all([functools.partial(block, bx, by) for bx, by in new])


def make_blocks(
    block: Callable[[int, int], Product], coords: Sequence[tuple[int, int]], *, keep: bool = True
) -> None:
    """``block(bx, by)`` for each of ``coords`` in turn (through :func:`product_block`: kept in memory
    and written to the disk cache); ``keep=False``: none kept in memory (a helper process of
    :mod:`~gee_fusion.local.world.processes`, whose blocks are read from the disk cache)."""
    try:
        for bx, by in coords:
            block(bx, by)
    finally:
        if not keep:
            PRODUCTS.clear()


@functools.lru_cache(maxsize=96)
def _landcover_block(cfg: WorldConfig, bx: int, by: int) -> landcover.LandCover:
    """Land cover of block (bx, by): the inside of :func:`landcover_block_halo`'s (generated once
    for the windows and the Sentinel products alike; the layers are tile-consistent)."""
    grown = landcover_block_halo(cfg, bx, by)
    return landcover.LandCover(*(getattr(grown, f.name)[1:-1, 1:-1] for f in fields(landcover.LandCover)))


_lock = threading.Lock()
_block_locks: dict[tuple[WorldConfig, int, int], threading.Lock] = {}


def _locked_block(
    block: Callable[[WorldConfig, int, int], landcover.LandCover], cfg: WorldConfig, bx: int, by: int
) -> landcover.LandCover:
    """``block(cfg, bx, by)`` (a cached function) holding the block's own lock: two threads asking
    for one block generate it once; different blocks are generated at once."""
    with _lock:
        lock = _block_locks.setdefault((cfg, bx, by), threading.Lock())
    with lock:
        return block(cfg, bx, by)


def _is_strip(col0: int, row0: int, width: int, height: int, bx: int, by: int) -> bool:
    """Whether a window covers only a thin strip (a halo) of block (bx, by)."""
    rs, re_, cs, ce = overlap(col0, row0, width, height, bx, by)
    return (re_ - rs) * (ce - cs) * 16 < BLOCK * BLOCK


def _assemble(
    cfg: WorldConfig,
    col0: int,
    row0: int,
    width: int,
    height: int,
    block: Callable[[WorldConfig, int, int], landcover.LandCover],
) -> landcover.LandCover:
    names = [f.name for f in fields(landcover.LandCover)]
    out: dict[str, np.ndarray] = {}
    every = window_blocks(col0, row0, width, height)
    whole = [b for b in every if not _is_strip(col0, row0, width, height, *b)]
    tasks = [functools.partial(_locked_block, block, cfg, bx, by) for bx, by in whole]
    made = dict(zip(whole, workers.run_all(tasks), strict=True))  # at once, by the world's threads
    for bx, by in every:
        r0, c0 = by * BLOCK, bx * BLOCK
        rs, re_, cs, ce = overlap(col0, row0, width, height, bx, by)
        blk = made.get((bx, by))
        if blk is None:
            # a thin strip (a halo): generate it directly instead of a whole block
            blk, r0, c0 = landcover.generate(cfg, cs, rs, ce - cs, re_ - rs), rs, cs
        for name in names:
            arr = getattr(blk, name)
            if name not in out:
                out[name] = np.empty((height, width), dtype=arr.dtype)
            out[name][rs - row0 : re_ - row0, cs - col0 : ce - col0] = arr[
                rs - r0 : re_ - r0, cs - c0 : ce - c0
            ]
    return landcover.LandCover(**out)


def landcover_window(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> landcover.LandCover:
    """Land-cover layers of a window of the 10 m world lattice (cached by block)."""
    return _assemble(cfg, col0, row0, width, height, _landcover_block)


@functools.lru_cache(maxsize=96)
def landcover_block_halo(cfg: WorldConfig, bx: int, by: int, halo: int = 1) -> landcover.LandCover:
    """Land cover of block (bx, by) grown by ``halo`` pixels on every side (cached)."""
    return landcover.generate(cfg, bx * BLOCK - halo, by * BLOCK - halo, BLOCK + 2 * halo, BLOCK + 2 * halo)


def assemble(
    fetch: Callable[[int, int], np.ndarray],
    col0: int,
    row0: int,
    width: int,
    height: int,
    reduce: Callable[[np.ndarray], np.ndarray] | None = None,
    factor: int = 1,
    block: int = BLOCK,
) -> np.ndarray:
    """A window of the 10 m lattice assembled from per-block arrays ``fetch(bx, by)``.

    With ``reduce`` (``factor`` x ``factor`` cells of a 10 m field to one coarser pixel), the window
    of the coarser lattice: each block's part reduced where it lies, so the 10 m window is never
    assembled. The cells must not straddle blocks: ``factor`` divides :data:`BLOCK`, ``col0``,
    ``row0``, ``width`` and ``height``. With ``block`` (the side of the blocks' arrays), a window of
    a coarser lattice whose blocks hold that many pixels (a field kept at 20 m: ``BLOCK // 2``).
    """
    if reduce is not None and (block % factor or col0 % factor or row0 % factor or width % factor
                               or height % factor):  # fmt: skip
        raise ValueError(f"{factor} x {factor} cells of window {(col0, row0, width, height)} straddle blocks")
    if reduce is None:
        factor = 1
    out: np.ndarray | None = None
    for bx, by in window_blocks(col0, row0, width, height, block):
        arr = fetch(bx, by)
        rs, re_, cs, ce = overlap(col0, row0, width, height, bx, by, block)
        part = arr[rs - by * block : re_ - by * block, cs - bx * block : ce - bx * block]
        if reduce is not None:
            part = reduce(part)
        if out is None:
            out = np.empty((height // factor, width // factor), dtype=part.dtype)
        rows = slice((rs - row0) // factor, (re_ - row0) // factor)
        out[rows, (cs - col0) // factor : (ce - col0) // factor] = part
    assert out is not None
    return out


def halo_indices(bx: int, by: int, halo: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Lattice column (row vector) and row (column vector) indices of block (bx, by) grown by
    ``halo`` pixels: the pixels of :func:`landcover_block_halo`."""
    c0, r0 = bx * BLOCK, by * BLOCK
    ix = np.arange(c0 - halo, c0 + BLOCK + halo)[None, :]
    iy = np.arange(r0 - halo, r0 + BLOCK + halo)[:, None]
    return ix, iy
