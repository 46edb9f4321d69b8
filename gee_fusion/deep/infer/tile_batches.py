"""Tile batches for sliding-window inference, read ahead on a background thread.

:class:`TileBatchReader` walks a :class:`~gee_fusion.deep.infer.blending.TilePlan` row by row, reads
``batch_size`` tiles at a time from a :class:`~gee_fusion.deep.infer.raster_source.RasterSource`
(reflect-padding border tiles) and stacks them into batch tensors that follow the contract of
:mod:`gee_fusion.deep`, ``depth`` batches ahead of the model. Every batch has ``batch_size``
samples (a short one is filled up), so a tile's output never depends on how many tiles share its
batch (batched kernels may round differently for another batch size) and the model always sees
one input shape. Reading and stacking release the GIL
(numpy, GDAL, dask), so they overlap the forward passes.

Batches are stacked into a small pool of ``depth + 2`` preallocated buffers (pinned host memory
when the model runs on CUDA, so the copy to the device is asynchronous): no per-batch allocation,
no page faults on fresh memory, and a fixed memory footprint. The consumer hands each batch back
with :meth:`TileBatch.release` once the model has read it (on CUDA, with an event recorded after
the copy; the reader waits for it before refilling that buffer). Errors raised while reading
reach the consumer; :meth:`TileBatchReader.close` stops the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gee_fusion.deep.infer.blending import TilePlan
from gee_fusion.deep.infer.raster_source import RasterSource, read_tile, stack_samples
from gee_fusion.errors import DataError

Buffers = dict[str, np.ndarray]


@dataclass
class TileBatch:
    """One batch of tiles.

    Attributes:
        tiles: (tile row, tile column) index of each sample.
        inputs: The batch (contract of :mod:`gee_fusion.deep`), on the host, in a pooled buffer;
            always ``batch_size`` samples: a short batch (the last of a band) is filled up with
            copies of its last tile, whose outputs the consumer ignores.
        valid: Per sample, the (h, w) valid mask of the part inside the raster, or None (all valid).
        band: Index of the column band the tiles belong to (batches never mix bands).
    """

    tiles: list[tuple[int, int]]
    inputs: dict[str, torch.Tensor]
    valid: list[np.ndarray | None]
    band: int = 0
    _release: Callable[[Any], None] | None = field(default=None, repr=False)

    def release(self, event: Any = None) -> None:
        """Give the buffer back to the reader (after ``event``, a CUDA event, has completed)."""
        if self._release is not None:
            self._release(event)
            self._release = None


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def _torch_dtype(key: str) -> torch.dtype:
    if key.endswith("_doy") or key == "prior":
        return torch.int64
    if key.endswith("_pad"):
        return torch.bool
    return torch.float32


class TileBatchReader:
    """Iterate over the tile batches of a plan, reading ahead on a background thread.

    Args:
        source: The raster source.
        plan: Tile placement.
        batch_size: Tiles per batch.
        pin_memory: Stack into pinned host memory (for CUDA).
        depth: Batches read ahead.
        bands: Tile-column ranges ``(first, stop)`` walked one after the other, each top to
            bottom (column bands); default: all tile columns at once.
        on_band: Called on the reader thread with the band's index before its first tile is read
            (e.g. to tell the source which columns come next).
    """

    def __init__(
        self,
        source: RasterSource,
        plan: TilePlan,
        *,
        batch_size: int,
        pin_memory: bool = False,
        depth: int = 2,
        bands: Sequence[tuple[int, int]] | None = None,
        on_band: Callable[[int], None] | None = None,
    ) -> None:
        self.source, self.plan = source, plan
        self.bands = list(bands) if bands is not None else [(0, len(plan.col_starts))]
        self.on_band = on_band
        self.batch_size = batch_size
        self.pin_memory = pin_memory
        self.pool_size = max(depth, 1) + 2
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(depth, 1))
        self._free: queue.Queue[tuple[Buffers | None, Any]] = queue.Queue()
        for _ in range(self.pool_size):
            self._free.put((None, None))  # allocated on first use, once the shapes are known
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gee-fusion-tile-reader", daemon=True)
        self._started = False

    def tiles(self, band: int = 0) -> Iterator[tuple[int, int]]:
        """Tile indices of one band in row-major order (the order its batches come in)."""
        j0, j1 = self.bands[band]
        for i in range(len(self.plan.row_starts)):
            for j in range(j0, j1):
                yield i, j

    def _allocate(self, sample: dict[str, np.ndarray]) -> Buffers:
        shape = (self.batch_size,)
        return {
            k: torch.empty(shape + a.shape, dtype=_torch_dtype(k), pin_memory=self.pin_memory).numpy()
            for k, a in sample.items()
        }

    def make_batch(
        self, tiles: list[tuple[int, int]], buffers: Buffers | None = None
    ) -> tuple[TileBatch, Buffers]:
        """Read and stack the given tiles into ``buffers`` (allocated if None or mismatched)."""
        samples, valid = [], []
        for i, j in tiles:
            row, col = int(self.plan.row_starts[i]), int(self.plan.col_starts[j])
            sample = read_tile(self.source, row, col, self.plan.tile)
            mask = sample.pop("valid", None)
            h = min(self.plan.tile, self.plan.height - row)
            w = min(self.plan.tile, self.plan.width - col)
            valid.append(None if mask is None else np.asarray(mask[:h, :w], dtype=bool))
            samples.append(sample)
        for key, arr in samples[0].items():
            if key == "prior" or key.endswith(("_doy", "_pad")):
                continue
            if arr.ndim != 4 or arr.shape[-2:] != (self.plan.tile, self.plan.tile):
                raise DataError(f"Source returned {key!r} with shape {arr.shape}; expected (T, C, h, w).")
        if buffers is None or {k: b.shape[1:] for k, b in buffers.items()} != {
            k: a.shape for k, a in samples[0].items()
        }:
            buffers = self._allocate(samples[0])
        n = len(samples)
        stack_samples(samples, {k: b[:n] for k, b in buffers.items()})
        for b in buffers.values():  # a short batch is filled up with copies of its last tile
            b[n:] = b[n - 1]
        inputs = {k: torch.from_numpy(b) for k, b in buffers.items()}
        return TileBatch(tiles, inputs, valid), buffers

    def _next_buffers(self) -> tuple[bool, Buffers | None]:
        while not self._stop.is_set():
            try:
                buffers, event = self._free.get(timeout=0.1)
            except queue.Empty:
                continue
            if event is not None:
                event.synchronize()
            return True, buffers
        return False, None

    def _emit(self, chunk: list[tuple[int, int]], band: int) -> bool:
        ok, buffers = self._next_buffers()
        if not ok:
            return False
        batch, used = self.make_batch(chunk, buffers)
        batch.band = band
        batch._release = lambda event: self._free.put((used, event))
        return self._put(batch)

    def _run(self) -> None:
        try:
            for band in range(len(self.bands)):
                if self.on_band is not None:
                    self.on_band(band)
                chunk: list[tuple[int, int]] = []
                for tile in self.tiles(band):
                    chunk.append(tile)
                    if len(chunk) == self.batch_size:
                        if not self._emit(chunk, band):
                            return
                        chunk = []
                if chunk and not self._emit(chunk, band):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put(_Failure(exc))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[TileBatch]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            assert isinstance(item, TileBatch)
            yield item

    def close(self) -> None:
        """Stop the reader thread and drop queued batches."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._started:
            self._thread.join(timeout=10)
