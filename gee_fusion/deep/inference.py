"""Streamed sliding-window inference over a raster of any height: a land-cover COG out.

Tiles (:class:`~gee_fusion.deep.blending.TilePlan`) are read ahead on a background thread
(:class:`~gee_fusion.deep.tile_batches.TileBatchReader`), batched through the model, turned into
softmax probabilities, weighted by the blend window and added into a rolling
:class:`~gee_fusion.deep.accumulator.StripAccumulator` of ``tile`` rows x raster width on the
model's device. When a tile row is done, the rows no later tile touches are divided by their
weight sum, reduced to class codes (argmax), optionally sieved (small-object removal, streamed
with a halo, exact) and handed to a streamed COG writer; the accumulator then slides down.

Peak memory therefore scales with ``width x tile x (num_classes + 1) x 4`` bytes (accumulator),
plus the writer's row-of-blocks buffer (512 rows x width bytes; ``x 4 num_classes`` more with
``write_probabilities``), the sieve halo (``4 min_object_size`` rows x width) and about three
input batches in flight — never with the raster's height. A raster too wide for that memory can
be cut by the caller into column bands that overlap by ``overlap`` px.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gee_fusion.deep.accumulator import StripAccumulator
from gee_fusion.deep.blending import TilePlan
from gee_fusion.deep.devices import resolve_device
from gee_fusion.deep.map_writer import MapWriter, ProbabilityStrip, code_table, probabilities_path_for
from gee_fusion.deep.raster_source import RasterSource
from gee_fusion.deep.tile_batches import TileBatchReader
from gee_fusion.errors import ConfigError, DataError, InferenceError


@dataclass
class StreamStats:
    """What a streamed run did and held, filled in as it goes."""

    tiles: int = 0
    batches: int = 0
    accumulator_rows: int = 0
    accumulator_bytes: int = 0
    peak_rows_held: int = 0


@dataclass(frozen=True)
class InferenceResult:
    """Outcome of :func:`predict_raster`.

    Attributes:
        path: The class-map COG.
        probabilities_path: The probabilities COG, if written.
        height: Raster height (px).
        width: Raster width (px).
        tiles: Tiles predicted.
        seconds: Wall time of the whole run (reading, model, blending, writing).
        accumulator_rows: Rows of the strip accumulator (the tile size, whatever the height).
        peak_rows_held: Upper bound of raster rows held at once (accumulator, sieve and writer
            buffers).
    """

    path: Path
    probabilities_path: Path | None
    height: int
    width: int
    tiles: int
    seconds: float
    accumulator_rows: int
    peak_rows_held: int


def _autocast(device: torch.device, amp: bool | None) -> contextlib.AbstractContextManager[object]:
    if not (device.type == "cuda" if amp is None else amp):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        return importlib.import_module("tqdm.auto").tqdm(total=total, unit="tile", desc="inference")
    except ImportError:
        return None


def iter_probability_strips(
    model: torch.nn.Module,
    source: RasterSource,
    *,
    num_classes: int,
    tile: int = 256,
    overlap: int = 96,
    blend: str = "cosine",
    batch_size: int = 8,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    progress: bool = False,
    stats: StreamStats | None = None,
) -> Generator[ProbabilityStrip, None, None]:
    """Blended softmax probabilities, strip by strip, top to bottom.

    Options are validated (and the tiling's coverage checked) when this is called, before any
    tile is read; reading starts with the first ``next()``. Arguments are those of
    :func:`predict_raster`; ``stats`` is filled in as the run goes.

    Raises:
        InferenceError: Invalid tiling, model logits of the wrong shape, a pixel without weight.
        DataError: The source lacks a sensor the model reads.
    """
    if num_classes < 1:
        raise ConfigError(f"num_classes={num_classes}: use the model's number of output classes.")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: use a positive batch size (e.g. 8).")
    size_divisor = int(getattr(model, "size_divisor", 1))
    plan = TilePlan.build(
        source.height, source.width, tile=tile, overlap=overlap, blend=blend, size_divisor=size_divisor
    )
    dev = resolve_device(device)
    stats = stats if stats is not None else StreamStats()
    reader = TileBatchReader(source, plan, batch_size=batch_size, pin_memory=dev.type == "cuda")
    return _stream(model, plan, reader, dev, num_classes, amp, stats, progress)


def _stream(
    model: torch.nn.Module,
    plan: TilePlan,
    reader: TileBatchReader,
    dev: torch.device,
    k: int,
    amp: bool | None,
    stats: StreamStats,
    progress: bool,
) -> Generator[ProbabilityStrip, None, None]:
    was_training = model.training
    model.to(dev).eval()
    acc = StripAccumulator(k, plan.tile, plan.width, dev)
    stats.accumulator_rows, stats.accumulator_bytes = acc.rows, acc.nbytes
    on_device: dict[int, torch.Tensor] = {}  # cached windows and row weights, by id
    n_rows, current = len(plan.row_starts), 0
    bar = _progress_bar(plan.n_tiles, progress)

    def on_dev(array: np.ndarray) -> torch.Tensor:  # plan arrays are cached, so their ids are stable
        if id(array) not in on_device:
            on_device[id(array)] = torch.from_numpy(array).to(dev)
        return on_device[id(array)]

    def finish(i: int) -> ProbabilityStrip:
        row = int(plan.row_starts[i])
        end = int(plan.row_starts[i + 1]) if i + 1 < n_rows else plan.height
        probabilities, valid = acc.finish(end - row)
        return ProbabilityStrip(row, probabilities, valid)

    try:
        with torch.inference_mode():
            for batch in reader:
                if stats.batches == 0:
                    _check_inputs(model, batch.inputs)
                inputs = {key: v.to(dev, non_blocking=True) for key, v in batch.inputs.items()}
                if dev.type == "cuda":  # the host buffer is free once the copies are done
                    copied = torch.cuda.Event()
                    copied.record()
                    batch.release(copied)
                with _autocast(dev, amp):
                    logits = model(inputs)
                expected = (len(batch.tiles), k, plan.tile, plan.tile)
                if tuple(logits.shape) != expected:
                    raise InferenceError(
                        f"The model returned logits of shape {tuple(logits.shape)}, expected {expected}: "
                        "check num_classes and that the model keeps the input size."
                    )
                probs = torch.softmax(logits.float(), dim=1)
                batch.release()  # on the CPU the inputs are read by now (probs never alias them)
                for b, (i, j) in enumerate(batch.tiles):
                    while i > current:
                        yield finish(current)
                        current += 1
                    row, col = int(plan.row_starts[i]), int(plan.col_starts[j])
                    h, w = min(plan.tile, plan.height - row), min(plan.tile, plan.width - col)
                    if j == 0:  # the weights of the whole tile row at once
                        acc.add_weight(on_dev(plan.row_weight(i))[:h])
                    window = on_dev(plan.window(i, j))[:h, :w]
                    acc.add(probs[b, :, :h, :w], window, col, batch.valid[b], add_weight=False)
                stats.tiles += len(batch.tiles)
                stats.batches += 1
                if bar is not None:
                    bar.update(len(batch.tiles))
            while current < n_rows:
                yield finish(current)
                current += 1
    finally:
        reader.close()
        model.train(was_training)
        if bar is not None:
            bar.close()


def _check_inputs(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor]) -> None:
    missing = [s for s in getattr(model, "sensors", ()) if s not in inputs]
    if missing:
        raise DataError(
            f"The model reads sensors {missing} that the source does not provide "
            f"(it provides {sorted(inputs)}): check the source's sensor names."
        )


def predict_raster(
    model: torch.nn.Module,
    source: RasterSource,
    *,
    out_path: str | Path,
    num_classes: int,
    tile: int = 256,
    overlap: int = 96,
    blend: str = "cosine",
    batch_size: int = 8,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    class_codes: Sequence[int] | None = None,
    colormap: Mapping[int, Sequence[int]] | None = None,
    nodata: int = 255,
    min_object_size: int = 0,
    write_probabilities: bool = False,
    progress: bool = True,
) -> InferenceResult:
    """Predict a land-cover map over ``source`` with blended sliding windows; write it as a COG.

    Memory does not grow with the raster's height (see the module docstring). Outputs are
    written to temporary files and renamed on success: nothing is left at ``out_path`` (or the
    probabilities path) if the run fails.

    Args:
        model: A model following the contract of :mod:`gee_fusion.deep` (moved to ``device`` and
            put in eval mode for the run; its training flag is restored afterwards).
        source: Where the inputs come from.
        out_path: Output class-map COG (uint8, 512 px blocks, DEFLATE, nearest overviews).
        num_classes: Number of model output classes K.
        tile: Tile size (px), a multiple of ``model.size_divisor``.
        overlap: Overlap between neighbouring tiles (px), ``0 <= overlap < tile``.
        blend: ``"cosine"``, ``"gaussian"`` (MONAI's importance map) or ``"constant"``.
        batch_size: Tiles per forward pass.
        device: Torch device; None picks CUDA when available, else the CPU.
        amp: bfloat16 autocast; None enables it on CUDA only.
        class_codes: Code written for each class index (default: the index), e.g. ``1..K``.
        colormap: Colour table of the map (code -> RGBA).
        nodata: Code of pixels the source marks not valid; never a class code.
        min_object_size: Replace connected components (8-connected) smaller than this many px
            by their surrounding majority class; exact, streamed with a halo; 0 disables.
        write_probabilities: Also write float32 probabilities (one band per class) to
            ``probabilities_path_for(out_path)``.
        progress: Show a tqdm progress bar (if tqdm is installed).

    Returns:
        Paths, size and run statistics.

    Raises:
        InferenceError: Invalid tiling (raised before anything is read or written) or model
            logits of the wrong shape.
        ConfigError: Invalid class codes, nodata or sizes.
    """
    start = time.perf_counter()
    lut = code_table(num_classes, class_codes, nodata)
    if min_object_size < 0:
        raise ConfigError(f"min_object_size={min_object_size}: use 0 (off) or a size in pixels.")
    stats = StreamStats()
    strips = iter_probability_strips(
        model,
        source,
        num_classes=num_classes,
        tile=tile,
        overlap=overlap,
        blend=blend,
        batch_size=batch_size,
        device=device,
        amp=amp,
        progress=progress,
        stats=stats,
    )
    prob_path = probabilities_path_for(out_path) if write_probabilities else None
    with contextlib.ExitStack() as stack:
        stack.callback(strips.close)
        sink = MapWriter(stack, source, out_path, prob_path, lut, nodata, colormap, min_object_size)
        for strip in strips:
            sink.put(strip)
            stats.peak_rows_held = max(stats.peak_rows_held, stats.accumulator_rows + sink.rows_held())
    return InferenceResult(
        path=Path(out_path),
        probabilities_path=prob_path,
        height=source.height,
        width=source.width,
        tiles=stats.tiles,
        seconds=time.perf_counter() - start,
        accumulator_rows=stats.accumulator_rows,
        peak_rows_held=stats.peak_rows_held,
    )
