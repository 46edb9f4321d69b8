"""Patches for the deep stage, from Earth Engine (or the local engine's demo world) through xee.

The small exporter the deep stage needs until the optimised exporter lands: the recipe's monthly
stacks (:mod:`gee_fusion.recipe.monthly_stacks`) are brought window by window through xee over
the area, cut into square patches, split by spatial block and written to a patch store
(:mod:`gee_fusion.export.patch_store`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pydantic import ConfigDict, Field, model_validator
from rich.console import Console

from gee_fusion import ids
from gee_fusion.classes import MULTISENGE_14, NO_LABEL
from gee_fusion.engine import EngineChoice, ensure_connected
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.export.area import AreaConfig
from gee_fusion.export.fetch import fetch_map, load_by_window, open_stack, stack_bands
from gee_fusion.export.patch_store import SPLITS, SensorPatches, write_patch_store
from gee_fusion.grid import PixelGrid
from gee_fusion.recipe.composite import COUNT_BAND
from gee_fusion.recipe.monthly_stacks import StackRecipe


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


def assign_splits(n_blocks: int, fractions: tuple[float, float, float], *, seed: int) -> np.ndarray:
    """Split codes for spatial blocks: a seeded permutation cut by ``fractions`` (each non-zero
    fraction gets at least one block when there are enough blocks)."""
    order = np.random.default_rng(seed).permutation(n_blocks)
    counts = np.floor(np.asarray(fractions) * n_blocks).astype(int)
    for k in (1, 2):
        if fractions[k] > 0 and counts[k] == 0 and n_blocks - counts[1] - counts[2] > 1:
            counts[k] = 1
    counts[0] = n_blocks - counts[1] - counts[2]
    codes = np.empty(n_blocks, dtype=np.int8)
    codes[order[: counts[0]]] = SPLITS["train"]
    codes[order[counts[0] : counts[0] + counts[1]]] = SPLITS["val"]
    codes[order[counts[0] + counts[1] :]] = SPLITS["test"]
    return codes


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
        _say(
            progress,
            f"  {sensor}: {len(cfg.months)} months x {len(bands)} bands in {time.perf_counter() - t0:.0f}s",
        )
    return AreaArrays(grid, cfg.times(), sensors)


def _say(progress: bool, message: str) -> None:
    if progress:
        Console(stderr=True).print(message, highlight=False)


def export_patches(cfg: PatchExportConfig, out: str | Path, *, progress: bool = True) -> Path:
    """Run the recipe on ``cfg.area``, cut patches and write the patch store ``out``.

    ``progress`` prints each stage and shows progress bars on stderr.

    Raises:
        ConfigError: the area holds fewer than one patch.
        DataError: no patch has enough labelled pixels, or the training split is empty.
    """
    grid = cfg.area.grid()
    size = cfg.patch_size
    ny, nx = grid.height // size, grid.width // size
    if ny == 0 or nx == 0:
        raise ConfigError(f"The area ({grid.width} x {grid.height} px) is smaller than one {size} px patch.")
    _say(
        progress,
        f"Patch store {out}: {grid.width} x {grid.height} px ({grid.crs}), {ny * nx} patches of {size} px, "
        f"{cfg.year} months {cfg.months}, sensors {'+'.join(cfg.sensors)}",
    )
    area = fetch_area(cfg, grid=grid, progress=progress)
    prior_note = f" and prior map ({cfg.prior_asset})" if cfg.prior_asset else ""
    _say(progress, f"  labels ({cfg.labels_asset}){prior_note}")
    sensors = {
        k: SensorPatches(cut_patches(data, size), area.times, bands)
        for k, (data, bands) in area.sensors.items()
    }
    labels = cut_patches(fetch_map(cfg.labels_asset, cfg.labels_band, grid, window=cfg.window), size)
    prior = None
    if cfg.prior_asset:
        prior = cut_patches(fetch_map(cfg.prior_asset, cfg.prior_band, grid, window=cfg.window), size)
    rows, cols = np.divmod(np.arange(ny * nx), nx)
    bsize = cfg.block_patches
    nbx = -(-nx // bsize)
    block = (rows // bsize) * nbx + cols // bsize
    n_blocks = int(block.max()) + 1
    split = assign_splits(n_blocks, cfg.split_fractions, seed=cfg.seed)[block]
    a, _, x0, _, e, y1 = grid.transform
    transforms = np.stack(
        [np.full(ny * nx, a), np.zeros(ny * nx), x0 + cols * size * a,
         np.zeros(ny * nx), np.full(ny * nx, e), y1 + rows * size * e], axis=1,
    )  # fmt: skip
    keep = (labels != NO_LABEL).mean(axis=(1, 2)) >= cfg.min_labelled
    if not keep.any():
        raise DataError(f"No patch has at least {cfg.min_labelled:.0%} labelled pixels in the area.")
    classes = {c.code: (c.name, c.color) for c in MULTISENGE_14}
    return write_patch_store(
        out,
        sensors={k: SensorPatches(v.data[keep], v.times, v.bands) for k, v in sensors.items()},
        labels=labels[keep],
        prior=None if prior is None else prior[keep],
        crs=grid.crs,
        transforms=transforms[keep],
        split=split[keep],
        block=block[keep],
        classes=classes,
        label_scheme="multisenge14",
        recipe=cfg.model_dump(mode="json"),
        engine=ensure_connected().engine,
    )
