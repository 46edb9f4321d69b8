"""Patches for the deep stage, from Earth Engine (or the local engine's demo world).

:func:`export_patches` exports the recipe's monthly stacks over the area as ONE T x C image
(:func:`gee_fusion.recipe.monthly_stacks.series_image`) with the planned, retried, resumable
exporter (:mod:`gee_fusion.export.image_export`) into a hidden staging folder beside the store,
with the label and prior maps, then cuts the staged area into square patches strip by strip, splits
them by spatial block and streams them into the patch store
(:mod:`gee_fusion.export.patch_writer`). Memory holds a few tiles in flight and one strip of
patches (rows of patches, or part of a row when a row is wider than the strip budget), whatever
the size and the width of the area; a crash resumes from the staged tiles. The staging
folder is removed once the store is published.

:func:`fetch_area` brings a (small) area's stacks into memory through xee, window by window: the
reference path used to check the exporter against xee.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from pydantic import ConfigDict, Field, model_validator

from gee_fusion import ids
from gee_fusion.classes import MULTISENGE_14, NO_LABEL
from gee_fusion.engine import EngineChoice, ensure_connected
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.export.area import AreaConfig
from gee_fusion.export.blocks import BlockSplit
from gee_fusion.export.fetch import grid_aoi, load_by_window, map_image, open_stack, stack_bands
from gee_fusion.export.image_export import export_image
from gee_fusion.export.patch_writer import patch_store_writer
from gee_fusion.grid import PixelGrid
from gee_fusion.io.console import say
from gee_fusion.recipe.composite import COUNT_BAND
from gee_fusion.recipe.monthly_stacks import StackRecipe, series_image


class PatchExportConfig(StackRecipe):
    """How to build a patch store (the ``patches`` section of an experiment YAML): the recipe's
    months, sensors and masks, the area, the labels and prior maps, and how patches are cut and
    split.

    ``engine`` and ``project`` are read by the CLI, which connects before exporting; the library
    exports on the engine already connected (:func:`gee_fusion.engine.ensure_connected`).
    """

    model_config = ConfigDict(extra="forbid")

    engine: EngineChoice = "local"
    project: str | None = None
    area: AreaConfig = Field(default_factory=AreaConfig)
    labels_asset: str = ids.DEMO_LABELS
    labels_band: str = "label"
    prior_asset: str | None = ids.WORLDCOVER
    prior_band: str = "Map"
    patch_size: int = Field(default=64, ge=16, le=1024)
    block_patches: int = Field(default=4, ge=1, description="Spatial block side, in patches.")
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    min_labelled: float = Field(default=0.05, ge=0.0, le=1.0)
    window: int = Field(default=256, ge=32)

    @model_validator(mode="after")
    def _fractions(self) -> PatchExportConfig:
        fr = self.split_fractions
        if any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
            raise ValueError(f"split_fractions must be >= 0, sum to 1, train > 0; got {fr}")
        return self


def cut_patches(array: np.ndarray, size: int) -> np.ndarray:
    """Cut the trailing (y, x) axes into non-overlapping ``size`` patches (row-major), dropping
    the partial border: (..., Y, X) -> (patch, ..., size, size)."""
    ny, nx = array.shape[-2] // size, array.shape[-1] // size
    lead = array.shape[:-2]
    a = array[..., : ny * size, : nx * size].reshape(*lead, ny, size, nx, size)
    k = len(lead)
    a = np.moveaxis(a, [k, k + 2], [0, 1])  # (ny, nx, ..., size, size)
    return a.reshape(ny * nx, *lead, size, size)


@dataclass(frozen=True)
class AreaArrays:
    """The recipe's inputs over a whole area: sensor -> ((time, band, y, x) float32, band names)."""

    grid: PixelGrid
    times: list[date]
    sensors: dict[str, tuple[np.ndarray, list[str]]]


def fetch_area(cfg: PatchExportConfig, *, grid: PixelGrid | None = None, progress: bool = True) -> AreaArrays:
    """Run the recipe over ``cfg.area`` (or ``grid``) on the connected engine and bring every
    sensor's monthly stack through xee (window by window; ``progress``: bars on stderr)."""
    grid = grid or cfg.area.grid()
    ensure_connected()
    sensors: dict[str, tuple[np.ndarray, list[str]]] = {}
    for sensor in cfg.sensors:
        bands = cfg.bands(sensor)
        t0 = time.perf_counter()
        arrays = load_by_window(
            open_stack(cfg, sensor, grid), [*bands, COUNT_BAND], window=cfg.window, progress=progress,
            description=f"{sensor} monthly stacks",
        )  # fmt: skip
        sensors[sensor] = (stack_bands(arrays, bands), bands)
        say(
            progress,
            f"  {sensor}: {len(cfg.months)} months x {len(bands)} bands in {time.perf_counter() - t0:.0f}s",
        )
    return AreaArrays(grid, cfg.times(), sensors)


def block_split(cfg: PatchExportConfig) -> BlockSplit:
    """The spatial blocks of the patch store of ``cfg`` and their split: the area covered by whole
    patches, cut into blocks of ``block_patches`` x ``patch_size`` px (shared with every model
    compared on that store)."""
    grid = cfg.area.grid()
    size = cfg.patch_size
    covered = grid.window(0, 0, max(grid.width // size, 1) * size, max(grid.height // size, 1) * size)
    return BlockSplit(covered, cfg.block_patches * size, cfg.split_fractions, cfg.seed)


_STRIP_BYTES = 64 * 2**20
"""Most bytes of staged pixels read at once when cutting patches (one patch, if a patch is larger)."""


def export_patches(cfg: PatchExportConfig, out: str | Path, *, progress: bool = True) -> Path:
    """Run the recipe on ``cfg.area``, cut patches and write the patch store ``out``.

    ``progress`` prints each stage and shows progress bars on stderr. A rerun after a crash
    resumes the staged export (``.<store name>.fetch`` beside ``out``).

    Raises:
        ConfigError: the area holds fewer than one patch.
        DataError: no patch has enough labelled pixels, or the training split is empty.
        TileFetchError: a tile could not be fetched after every retry (a rerun resumes).
    """
    out = Path(out)
    grid = cfg.area.grid()
    size = cfg.patch_size
    ny, nx = grid.height // size, grid.width // size
    if ny == 0 or nx == 0:
        raise ConfigError(f"The area ({grid.width} x {grid.height} px) is smaller than one {size} px patch.")
    say(
        progress,
        f"Patch store {out}: {grid.width} x {grid.height} px ({grid.crs}), {ny * nx} patches of {size} px, "
        f"{cfg.year} months {cfg.months}, sensors {'+'.join(cfg.sensors)}",
    )
    connection = ensure_connected()
    staged = _stage_area(cfg, grid, out.parent / f".{out.name}.fetch", progress=progress)
    rows, cols = np.divmod(np.arange(ny * nx), nx)
    held_out = block_split(cfg)
    block = held_out.block_of(rows * size, cols * size)
    split = held_out.codes()[block]
    a, _, x0, _, e, y1 = grid.transform
    transforms = np.stack(
        [np.full(ny * nx, a), np.zeros(ny * nx), x0 + cols * size * a,
         np.zeros(ny * nx), np.full(ny * nx, e), y1 + rows * size * e], axis=1,
    )  # fmt: skip
    keep = _labelled_patches(staged.labels, size, ny, nx, cfg.min_labelled)
    if not keep.any():
        raise DataError(f"No patch has at least {cfg.min_labelled:.0%} labelled pixels in the area.")
    layout: dict[str, tuple[Sequence[date], Sequence[str]]] = {
        sensor: (cfg.times(), cfg.bands(sensor)) for sensor in cfg.sensors
    }
    with patch_store_writer(
        out, layout=layout, patch_shape=(size, size), crs=grid.crs, transforms=transforms[keep],
        split=split[keep], block=block[keep], classes={c.code: (c.name, c.color) for c in MULTISENGE_14},
        label_scheme="multisenge14", recipe=cfg.model_dump(mode="json"), engine=connection.engine,
        prior=staged.prior is not None, seed=cfg.seed, split_id=held_out.fingerprint(),
    ) as writer:  # fmt: skip
        position = 0
        for first, strip in _strips(staged, cfg, size, ny, nx):
            chosen = keep[first : first + len(strip.labels)]
            if chosen.any():
                writer.write(
                    position,
                    sensors={k: v[chosen] for k, v in strip.sensors.items()},
                    labels=strip.labels[chosen],
                    prior=None if strip.prior is None else strip.prior[chosen],
                )
                position += int(chosen.sum())
    shutil.rmtree(staged.folder, ignore_errors=True)
    return out


@dataclass(frozen=True)
class _Staged:
    """The area exported to Zarr stores: the T x C series, the labels and the prior map."""

    folder: Path
    series: Path
    labels: Path
    prior: Path | None


@dataclass(frozen=True)
class _Strip:
    sensors: dict[str, np.ndarray]
    labels: np.ndarray
    prior: np.ndarray | None


def _stage_area(cfg: PatchExportConfig, grid: PixelGrid, folder: Path, *, progress: bool) -> _Staged:
    """Export the series and maps of the area (resumable) into ``folder``."""
    block = 256 if cfg.patch_size <= 256 else 512
    common: dict[str, Any] = {"formats": ("zarr",), "block": block, "progress": progress}
    t0 = time.perf_counter()
    series = export_image(
        series_image(cfg, grid_aoi(grid)), grid, folder, name="series", recipe=cfg.model_dump(mode="json"),
        **common,
    )  # fmt: skip
    shapes = ", ".join(f"{s}: {len(cfg.months)} months x {len(cfg.bands(s))} bands" for s in cfg.sensors)
    say(progress, f"  {shapes}: {series.stats.requests} requests in {time.perf_counter() - t0:.0f}s")
    prior_note = f" and prior map ({cfg.prior_asset})" if cfg.prior_asset else ""
    say(progress, f"  labels ({cfg.labels_asset}){prior_note}")
    maps: dict[str, Any] = {"dtype": "uint8", "nodata": NO_LABEL, **common}
    labels = export_image(map_image(cfg.labels_asset, cfg.labels_band), grid, folder, name="labels", **maps)
    prior = None
    if cfg.prior_asset:
        prior = export_image(map_image(cfg.prior_asset, cfg.prior_band), grid, folder, name="prior", **maps)
    assert series.zarr and labels.zarr  # formats include zarr
    return _Staged(folder, series.zarr, labels.zarr, prior.zarr if prior else None)


def _staged_data(path: Path) -> xr.DataArray:
    return xr.open_zarr(path, consolidated=True)["data"]


def _read(data: xr.DataArray, bands: slice, rows: slice, cols: slice) -> np.ndarray:
    """One staged read: ``data[bands, rows, cols]`` in memory."""
    return np.asarray(data[bands, rows, cols].values)


def _windows(ny: int, nx: int, per_strip: int) -> Iterator[tuple[int, slice, slice]]:
    """Strips of at most ``per_strip`` (>= 1) patches in patch order: (first patch index, patch
    rows, patch columns). Whole rows of patches while a row fits, else parts of one row."""
    if per_strip >= nx:
        rows_per = per_strip // nx
        for row in range(0, ny, rows_per):
            yield row * nx, slice(row, min(row + rows_per, ny)), slice(0, nx)
        return
    for row in range(ny):
        for col in range(0, nx, per_strip):
            yield row * nx + col, slice(row, row + 1), slice(col, min(col + per_strip, nx))


def _pixels(patches: slice, size: int) -> slice:
    """The pixel span of a span of ``size`` px patches."""
    return slice(patches.start * size, patches.stop * size)


def _labelled_patches(labels: Path, size: int, ny: int, nx: int, min_labelled: float) -> np.ndarray:
    """(ny * nx,) whether each patch has at least ``min_labelled`` labelled pixels."""
    data = _staged_data(labels)
    keep = np.zeros(ny * nx, dtype=bool)
    per_strip = max(1, _STRIP_BYTES // (size * size * data.dtype.itemsize))
    for first, rows, cols in _windows(ny, nx, per_strip):
        strip = _read(data, slice(0, 1), _pixels(rows, size), _pixels(cols, size))[0]
        labelled = (cut_patches(strip, size) != NO_LABEL).mean(axis=(1, 2))
        keep[first : first + len(labelled)] = labelled >= min_labelled
    return keep


def _strips(
    staged: _Staged, cfg: PatchExportConfig, size: int, ny: int, nx: int
) -> Iterator[tuple[int, _Strip]]:
    """Consecutive runs of patches (first patch index, their data), read strip by strip: each read
    holds at most ``_STRIP_BYTES`` of staged pixels (or one patch)."""
    series = _staged_data(staged.series)
    names = [str(b) for b in series["band"].values]
    months = [f"{t:%Y-%m}" for t in cfg.times()]
    where = {
        sensor: (
            np.array([[names.index(f"{sensor}_{b}_{m}") for b in cfg.bands(sensor)] for m in months]),
            np.array([names.index(f"{sensor}_{COUNT_BAND}_{m}") for m in months]),
        )
        for sensor in cfg.sensors
    }
    labels = _staged_data(staged.labels)
    prior = _staged_data(staged.prior) if staged.prior else None
    per_strip = max(1, _STRIP_BYTES // (len(names) * size * size * series.dtype.itemsize))
    for first, patch_rows, patch_cols in _windows(ny, nx, per_strip):
        rows, cols = _pixels(patch_rows, size), _pixels(patch_cols, size)
        values = _read(series, slice(None), rows, cols)
        sensors: dict[str, np.ndarray] = {}
        for sensor, (bands, counts) in where.items():
            stack = values[bands]  # (time, band, y, x)
            empty = np.nan_to_num(values[counts]) == 0  # (time, y, x): no valid observation
            stack[np.broadcast_to(empty[:, None], stack.shape)] = np.nan
            sensors[sensor] = cut_patches(stack, size)
        label_patches = cut_patches(_read(labels, slice(0, 1), rows, cols)[0], size)
        prior_patches = None
        if prior is not None:
            prior_patches = cut_patches(_read(prior, slice(0, 1), rows, cols)[0], size)
        yield first, _Strip(sensors, label_patches, prior_patches)
