"""Patches for the deep stage, from Earth Engine (or the local engine's demo world) through xee.

The small exporter the deep stage needs until the optimised exporter lands: the server-side
recipe builds monthly Sentinel-2 composites (Cloud Score+ masked, reflectance) and monthly
Sentinel-1 means (linear power -> dB, plus the VV/VH ratio in dB), xee brings the area's pixels
window by window, and the area is cut into square patches, split by spatial block and written
to a patch store (:mod:`gee_fusion.export.patch_store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import ee
import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gee_fusion import ids
from gee_fusion.classes import MULTISENGE_14, NO_LABEL
from gee_fusion.engine import connect
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.export.fetch import PixelGrid, load_by_window, open_collection
from gee_fusion.export.patch_store import SPLITS, SensorPatches, write_patch_store
from gee_fusion.recipe import sentinel1, sentinel2
from gee_fusion.recipe.composite import COUNT_BAND, monthly_composites, monthly_s1_means

S2_DEFAULT_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
S1_BANDS = ("VV", "VH", "VVVH")


class AreaConfig(BaseModel):
    """A rectangular area on a projected grid: upper-left corner, size in pixels, pixel size.

    Left empty, it is the whole demo city of the local engine's default world.
    """

    model_config = ConfigDict(extra="forbid")

    crs: str | None = None
    origin: tuple[float, float] | None = Field(default=None, description="Upper-left (x, y) in crs.")
    size_px: tuple[int, int] | None = Field(default=None, description="(width, height) in pixels.")
    scale: float = Field(default=10.0, gt=0)

    def grid(self) -> PixelGrid:
        """The pixel grid of the area (defaults from the demo world)."""
        from gee_fusion.local.world.config import DEFAULT_WORLD

        crs = self.crs or DEFAULT_WORLD.crs
        x0, y1 = self.origin or DEFAULT_WORLD.origin
        w, h = self.size_px or (DEFAULT_WORLD.size_px, DEFAULT_WORLD.size_px)
        if w <= 0 or h <= 0:
            raise ConfigError(f"area.size_px must be positive, got {w} x {h}.")
        return PixelGrid(crs, (self.scale, 0.0, x0, 0.0, -self.scale, y1), int(w), int(h))


class PatchExportConfig(BaseModel):
    """How to build a patch store (the ``patches`` section of an experiment YAML)."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["local", "earthengine", "auto"] = "local"
    project: str | None = None
    area: AreaConfig = Field(default_factory=AreaConfig)
    year: int = Field(default=2021, ge=2015, le=2100)
    months: list[int] = Field(default_factory=lambda: [7, 8, 9, 11], min_length=1)
    sensors: list[Literal["S2", "S1"]] = Field(default=["S2", "S1"], min_length=1)
    s2_bands: list[str] = Field(default_factory=lambda: list(S2_DEFAULT_BANDS), min_length=1)
    cs_threshold: float = Field(default=0.60, ge=0.0, le=1.0)
    s1_orbit: int | None = Field(default=None, description="Relative orbit (None: all orbits).")
    speckle: Literal["none", "boxcar", "lee", "refined_lee", "gamma_map"] = "none"
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

    @field_validator("months")
    @classmethod
    def _months(cls, months: list[int]) -> list[int]:
        if any(m < 1 or m > 12 for m in months) or len(set(months)) != len(months):
            raise ValueError(f"months must be distinct calendar months 1..12, got {months}")
        return sorted(months)

    @field_validator("sensors")
    @classmethod
    def _sensors(cls, sensors: list[str]) -> list[str]:
        if len(set(sensors)) != len(sensors):
            raise ValueError(f"sensors must not repeat, got {sensors}")
        return [s for s in ("S2", "S1") if s in sensors]

    @model_validator(mode="after")
    def _fractions(self) -> PatchExportConfig:
        fr = self.split_fractions
        if any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
            raise ValueError(f"split_fractions must be >= 0, sum to 1, train > 0; got {fr}")
        return self


def _month_range(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def _aoi(grid: PixelGrid) -> ee.Geometry:
    a, _, x0, _, e, y1 = grid.transform
    return ee.Geometry.Rectangle([x0, y1 + e * grid.height, x0 + a * grid.width, y1], grid.crs, False)


def s2_monthly(cfg: PatchExportConfig, aoi: ee.Geometry) -> ee.ImageCollection:
    """Cloud Score+ masked monthly median reflectance composites for the configured months."""
    start, end = date(cfg.year, min(cfg.months), 1), _month_range(cfg.year, max(cfg.months))[1]
    col = sentinel2.s2_collection(aoi, start, end)
    masked = sentinel2.mask_clouds(col, sentinel2.CloudScorePlus(threshold=cfg.cs_threshold))
    scaled = masked.map(sentinel2.scale_reflectance)
    months = [
        ee.Image(monthly_composites(scaled, bands=cfg.s2_bands, start=s, end=e).first())
        for s, e in (_month_range(cfg.year, m) for m in cfg.months)
    ]
    return ee.ImageCollection.fromImages(months)


def s1_monthly(cfg: PatchExportConfig, aoi: ee.Geometry) -> ee.ImageCollection:
    """Monthly S1 means (linear -> dB) of VV, VH and their ratio VVVH (dB difference)."""
    from gee_fusion.recipe import speckle

    start, end = date(cfg.year, min(cfg.months), 1), _month_range(cfg.year, max(cfg.months))[1]
    sel = sentinel1.S1Selection(relative_orbit=cfg.s1_orbit)
    col = sentinel1.s1_collection(aoi, start, end, sel).map(sentinel1.mask_border_noise)
    if cfg.speckle != "none":
        col = col.map(lambda img: speckle.speckle_filter(img, method=cfg.speckle))

    def with_ratio(img: ee.Image) -> ee.Image:
        ratio = img.select("VV").subtract(img.select("VH")).rename("VVVH")
        return img.addBands(ratio)

    months = []
    for m in cfg.months:
        s, e = _month_range(cfg.year, m)
        means = monthly_s1_means(col, bands=("VV", "VH"), start=s, end=e)
        months.append(ee.Image(means.map(with_ratio).first()))
    return ee.ImageCollection.fromImages(months)


def open_sensor(cfg: PatchExportConfig, sensor: str, grid: PixelGrid) -> tuple[xr.Dataset, list[str]]:
    """The recipe's monthly stack of ``sensor`` opened lazily with xee on ``grid`` (variables: the
    bands and ``count``), and its band names."""
    aoi = _aoi(grid)
    if sensor == "S2":
        bands, col = list(cfg.s2_bands), s2_monthly(cfg, aoi)
    elif sensor == "S1":
        bands, col = list(S1_BANDS), s1_monthly(cfg, aoi)
    else:
        raise ConfigError(f"Unknown sensor {sensor!r}: use S2 or S1.")
    return open_collection(col.select([*bands, COUNT_BAND]), grid), bands


def stack_bands(arrays: dict[str, np.ndarray], bands: list[str]) -> np.ndarray:
    """(time, band, y, x) float32 from per-band (time, y, x) arrays, NaN where ``count`` is 0."""
    count = np.nan_to_num(arrays[COUNT_BAND])
    out = np.stack([arrays[b].astype(np.float32, copy=False) for b in bands], axis=1)
    out[np.broadcast_to((count == 0)[:, None], out.shape)] = np.nan
    return out


def open_map(asset: str, band: str, grid: PixelGrid) -> xr.Dataset:
    """A single-band map (an image or the mosaic of a collection) as uint8 (masked -> 255), lazily."""
    kind = str(ee.data.getAsset(asset).get("type", "IMAGE")).upper()
    image = (ee.ImageCollection(asset).mosaic() if "COLLECTION" in kind else ee.Image(asset)).select(band)
    image = image.set("system:time_start", 0)
    return open_collection(ee.ImageCollection([image.unmask(NO_LABEL).toUint8()]), grid)


def fetch_map(asset: str, band: str, grid: PixelGrid, cfg: PatchExportConfig) -> np.ndarray:
    """A single-band uint8 map on the grid (masked -> 255)."""
    arr = load_by_window(open_map(asset, band, grid), [band], window=cfg.window, progress=False)[band][0]
    return np.nan_to_num(arr, nan=NO_LABEL).astype(np.uint8)


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


def fetch_area(cfg: PatchExportConfig, *, grid: PixelGrid | None = None) -> AreaArrays:
    """Run the recipe over ``cfg.area`` (or ``grid``) and bring every sensor's monthly stack
    through xee (window by window)."""
    grid = grid or cfg.area.grid()
    connect(cfg.engine, project=cfg.project)
    sensors: dict[str, tuple[np.ndarray, list[str]]] = {}
    for sensor in cfg.sensors:
        ds, bands = open_sensor(cfg, sensor, grid)
        arrays = load_by_window(ds, [*bands, COUNT_BAND], window=cfg.window, progress=True)
        sensors[sensor] = (stack_bands(arrays, bands), bands)
    return AreaArrays(grid, [date(cfg.year, m, 1) for m in cfg.months], sensors)


def export_patches(cfg: PatchExportConfig, out: str | Path) -> Path:
    """Run the recipe on ``cfg.area``, cut patches and write the patch store ``out``.

    Raises:
        ConfigError: the area holds fewer than one patch.
        DataError: no patch has enough labelled pixels, or the training split is empty.
    """
    grid = cfg.area.grid()
    size = cfg.patch_size
    ny, nx = grid.height // size, grid.width // size
    if ny == 0 or nx == 0:
        raise ConfigError(f"The area ({grid.width} x {grid.height} px) is smaller than one {size} px patch.")
    area = fetch_area(cfg, grid=grid)
    sensors = {
        k: SensorPatches(cut_patches(data, size), area.times, bands)
        for k, (data, bands) in area.sensors.items()
    }
    labels = cut_patches(fetch_map(cfg.labels_asset, cfg.labels_band, grid, cfg), size)
    prior = None
    if cfg.prior_asset:
        prior = cut_patches(fetch_map(cfg.prior_asset, cfg.prior_band, grid, cfg), size)
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
        engine=cfg.engine,
    )
