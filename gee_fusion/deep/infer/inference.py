"""Streamed sliding-window inference over a raster of any size: a land-cover COG out.

Tiles (:class:`~gee_fusion.deep.infer.blending.TilePlan`) are read ahead on a background thread
(:class:`~gee_fusion.deep.infer.tile_batches.TileBatchReader`), batched through the model, turned into
softmax probabilities, weighted by the blend window and added into a rolling
:class:`~gee_fusion.deep.infer.accumulator.StripAccumulator` of ``tile`` rows x raster width on the
model's device. When a tile row is done, the rows no later tile touches are divided by their
weight sum, reduced to class codes (argmax), optionally sieved (small-object removal, streamed
with a halo, exact) and handed to a streamed COG writer; the accumulator then slides down.

Peak memory therefore scales with ``width x tile x (num_classes + 1) x 4`` bytes (accumulator),
plus the writer's row-of-blocks buffer (512 rows x width bytes; ``x 4 num_classes`` more with
``write_probabilities``), the sieve halo (``4 min_object_size`` rows x width) and about three
input batches in flight — never with the raster's height. Wide rasters run as column bands
(:mod:`gee_fusion.deep.infer.column_bands`, ``band_width``): ``width`` above becomes the band's width
plus a tile or two on each side, so the streaming memory depends on neither the raster's height
nor its width, and the map is bit-identical to a whole-width run. Publishing the COG at the end
(GDAL's COG driver: overviews and the copy into the final layout) holds one row of 512 px output
blocks across the whole width: ``512 x width`` bytes for the class map (51 MB at 100,000 px),
``4 num_classes`` times that for the optional float32 probabilities.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gee_fusion.deep.devices import resolve_device
from gee_fusion.deep.infer.accumulator import StripAccumulator
from gee_fusion.deep.infer.blending import TilePlan
from gee_fusion.deep.infer.column_bands import ColumnBand, plan_bands, resolve_band_width
from gee_fusion.deep.infer.map_writer import MapWriter, ProbabilityStrip, code_table, probabilities_path_for
from gee_fusion.deep.infer.raster_source import RasterSource
from gee_fusion.deep.infer.tile_batches import TileBatchReader
from gee_fusion.errors import ConfigError, DataError, InferenceError


@dataclass
class StreamStats:
    """What a streamed run did and held, filled in as it goes."""

    tiles: int = 0
    batches: int = 0
    bands: int = 1
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
            buffers), each as wide as the widest band.
        bands: Column bands the raster was run in.
        accumulator_bytes: Bytes of the largest strip accumulator.
    """

    path: Path
    probabilities_path: Path | None
    height: int
    width: int
    tiles: int
    seconds: float
    accumulator_rows: int
    peak_rows_held: int
    bands: int = 1
    accumulator_bytes: int = 0


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
    band_width: int | None = None,
    halo: int = 0,
    progress: bool = False,
    stats: StreamStats | None = None,
) -> Generator[ProbabilityStrip, None, None]:
    """Blended softmax probabilities, strip by strip: column band by band, each top to bottom.

    Options are validated (and the tiling's coverage checked) when this is called, before any
    tile is read; reading starts with the first ``next()``. Arguments are those of
    :func:`predict_raster`; ``halo`` widens each band's final columns beyond its core (for a
    sieve); ``stats`` is filled in as the run goes. With one band (the default up to
    ``column_bands.AUTO_MAX_WIDTH`` px) every strip is full-width.

    Raises:
        InferenceError: Invalid tiling, model logits of the wrong shape, a pixel without weight.
        ConfigError: A band width that is not a multiple of 512.
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
    bands = plan_bands(plan, resolve_band_width(source.width, band_width), halo=halo)
    dev = resolve_device(device)
    stats = stats if stats is not None else StreamStats()
    stats.bands = len(bands)
    begin = getattr(source, "begin_band", None)
    reader = TileBatchReader(
        source,
        plan,
        batch_size=batch_size,
        pin_memory=dev.type == "cuda",
        bands=[b.tile_cols for b in bands],
        on_band=None if begin is None else (lambda k: begin(slice(*bands[k].span))),
    )
    return _stream(model, plan, bands, reader, dev, num_classes, amp, stats, progress)


def _stream(
    model: torch.nn.Module,
    plan: TilePlan,
    bands: list[ColumnBand],
    reader: TileBatchReader,
    dev: torch.device,
    k: int,
    amp: bool | None,
    stats: StreamStats,
    progress: bool,
) -> Generator[ProbabilityStrip, None, None]:
    was_training = model.training
    model.to(dev).eval()
    n_rows = len(plan.row_starts)
    bar = _progress_bar(sum(n_rows * b.n_tile_cols for b in bands), progress)
    windows: dict[int, torch.Tensor] = {}  # the plan's cached windows on the device, by id
    band, acc, current = bands[0], StripAccumulator(k, plan.tile, bands[0].width, dev), 0
    row_weights: dict[tuple[bool, bool], torch.Tensor] = {}
    stats.accumulator_rows, stats.accumulator_bytes = acc.rows, acc.nbytes

    def window(i: int, j: int) -> torch.Tensor:
        array = plan.window(i, j)
        if id(array) not in windows:
            windows[id(array)] = torch.from_numpy(array).to(dev)
        return windows[id(array)]

    def row_weight(i: int) -> torch.Tensor:
        key = (i == 0, i == n_rows - 1)
        if key not in row_weights:
            row_weights[key] = torch.from_numpy(plan.row_weight(i, band.tile_cols)).to(dev)
        return row_weights[key]

    def finish(i: int) -> ProbabilityStrip:
        row = int(plan.row_starts[i])
        end = int(plan.row_starts[i + 1]) if i + 1 < n_rows else plan.height
        probabilities, valid = acc.finish(end - row)
        a, b = band.computed[0] - band.span[0], band.computed[1] - band.span[0]
        if (a, b) != (0, band.width):
            probabilities, valid = probabilities[:, :, a:b], valid[:, a:b]
        return ProbabilityStrip(
            row, probabilities, valid, col=band.computed[0], core=band.core, band=band.index
        )

    try:
        with torch.inference_mode():
            for batch in reader:
                if stats.batches == 0:
                    _check_inputs(model, batch.inputs)
                if batch.band != band.index:  # the previous band is done: finish it, start the next
                    while current < n_rows:
                        yield finish(current)
                        current += 1
                    band, current = bands[batch.band], 0
                    acc, row_weights = StripAccumulator(k, plan.tile, band.width, dev), {}
                    stats.accumulator_bytes = max(stats.accumulator_bytes, acc.nbytes)
                inputs = {key: v.to(dev, non_blocking=True) for key, v in batch.inputs.items()}
                if dev.type == "cuda":  # the host buffer is free once the copies are done
                    copied = torch.cuda.Event()
                    copied.record()
                    batch.release(copied)
                with _autocast(dev, amp):
                    logits = model(inputs)
                expected = (next(iter(inputs.values())).shape[0], k, plan.tile, plan.tile)
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
                    if j == band.tile_cols[0]:  # the weights of the band's whole tile row at once
                        acc.add_weight(row_weight(i)[:h])
                    acc.add(
                        probs[b, :, :h, :w], window(i, j)[:h, :w], col - band.span[0], batch.valid[b],
                        add_weight=False,
                    )  # fmt: skip
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
    band_width: int | None = None,
    class_codes: Sequence[int] | None = None,
    colormap: Mapping[int, Sequence[int]] | None = None,
    class_names: Mapping[int, str] | None = None,
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
        band_width: Run the raster as column bands of this many px (a multiple of 512) to bound
            memory on wide rasters; the map is bit-identical to a whole-width run. None: the
            whole width up to 12,288 px, 8,192 px bands beyond.
        class_codes: Code written for each class index (default: the index), e.g. ``1..K``.
        colormap: Colour table of the map (code -> RGBA).
        class_names: Class name of each code, written to the map's metadata.
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
        band_width=band_width,
        halo=2 * min_object_size if min_object_size > 1 else 0,
        progress=progress,
        stats=stats,
    )
    prob_path = probabilities_path_for(out_path) if write_probabilities else None
    with contextlib.ExitStack() as stack:
        stack.callback(strips.close)
        sink = MapWriter(
            stack, source, out_path, prob_path, lut, nodata, colormap, min_object_size, class_names
        )
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
        bands=stats.bands,
        accumulator_bytes=stats.accumulator_bytes,
    )
