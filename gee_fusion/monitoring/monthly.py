"""The monthly-composite job: cloud-masked monthly composites, evaluated by the connected engine,
fetched through xee, written as COGs (values + observation counts) and a PNG month grid."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import ee
import numpy as np

from gee_fusion.engine import ensure_connected
from gee_fusion.errors import ConfigError
from gee_fusion.export.fetch import load_by_window, native_grid, open_collection
from gee_fusion.io.atomic import atomic_path, output_folder
from gee_fusion.io.cog import write_cog
from gee_fusion.monitoring.config import MonthlyJobConfig
from gee_fusion.recipe.checks import require_images
from gee_fusion.recipe.composite import COUNT_BAND, month_starts, monthly_composites
from gee_fusion.recipe.sentinel2 import SclMask, mask_clouds
from gee_fusion.report.figures import month_grid_png


@dataclass(frozen=True)
class MonthlyResult:
    """What the job wrote and measured."""

    months: int
    months_with_data: int
    valid_fraction: float
    mean_value: float
    images_used: int
    seconds: float
    cog: str
    count_cog: str
    png: str

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.months} monthly composites ({self.months_with_data} with data), "
            f"{self.valid_fraction:.1%} valid pixels, mean {self.mean_value:.3f}, "
            f"{self.images_used} images, {self.seconds:.1f}s -> {self.cog}, {self.count_cog}, {self.png}"
        )


def cloud_masked(collection: ee.ImageCollection, how: str) -> ee.ImageCollection:
    """Apply the configured cloud mask to every image."""
    if how == "none":
        return collection
    if how == "clm":
        return collection.map(lambda img: img.updateMask(img.select("CLM").eq(0)))
    if how == "scl":
        return mask_clouds(collection, SclMask())
    raise ConfigError(f"Unknown cloud_mask {how!r}.")


def with_ndvi(collection: ee.ImageCollection, nir: str, red: str) -> ee.ImageCollection:
    """Add band NDVI = (nir - red) / (nir + red) to every image (properties kept)."""
    return collection.map(lambda img: img.addBands(img.normalizedDifference([nir, red]).rename("NDVI")))


def run_monthly(cfg: MonthlyJobConfig, *, progress: bool = False) -> MonthlyResult:
    """Run the monthly-composite job described by ``cfg`` (``progress``: show a progress bar)."""
    t0 = time.perf_counter()
    out = output_folder(cfg.out)
    connection = ensure_connected()
    collection = ee.ImageCollection(cfg.collection)
    source = collection.filterDate(cfg.start.isoformat(), cfg.end.isoformat())
    images_used = require_images([(cfg.collection, collection), (f"date {cfg.start}..{cfg.end}", source)])
    grid_band = cfg.ndvi_from[0] if cfg.ndvi_from else cfg.bands[0]
    grid = native_grid(source.first().select(grid_band))
    masked = cloud_masked(source, cfg.cloud_mask)
    if cfg.ndvi_from:
        masked = with_ndvi(masked, *cfg.ndvi_from)
    months = monthly_composites(
        masked,
        bands=cfg.bands,
        start=cfg.start,
        end=cfg.end,
        method=cfg.method,
        quality_band=cfg.quality_band,
    )
    ds = open_collection(months, grid)
    labels = [m.strftime("%Y-%m") for m in month_starts(cfg.start, cfg.end)]
    first = cfg.bands[0]
    arrays = load_by_window(ds, [first, COUNT_BAND], progress=progress)
    count = np.nan_to_num(arrays[COUNT_BAND]).astype(np.uint16)
    values = arrays[first].astype(np.float32)
    values[count == 0] = np.nan
    tags = {"collection": cfg.collection, "method": cfg.method, "engine": connection.engine,
            "months": ",".join(labels)}  # fmt: skip
    cog = write_cog(out / f"{cfg.name}.tif", values, crs=grid.crs, transform=grid.transform,
                    nodata=float("nan"), band_names=labels, tags=tags)  # fmt: skip
    count_cog = write_cog(out / f"{cfg.name}_count.tif", count, crs=grid.crs, transform=grid.transform,
                          band_names=labels, tags=tags, resampling="nearest")  # fmt: skip
    title = f"{cfg.method.title()} monthly {first}, {cfg.collection} (cloud-masked)"
    png = month_grid_png(out / f"{cfg.name}.png", values, labels, title=title)
    valid = np.isfinite(values)
    result = MonthlyResult(
        months=len(labels),
        months_with_data=int((count.reshape(len(labels), -1).max(axis=1) > 0).sum()),
        valid_fraction=float(valid.mean()),
        mean_value=float(np.nanmean(values)) if valid.any() else float("nan"),
        images_used=images_used,
        seconds=time.perf_counter() - t0,
        cog=str(cog), count_cog=str(count_cog), png=str(png),
    )  # fmt: skip
    with atomic_path(out / f"{cfg.name}.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(asdict(result), indent=2))
    return result
