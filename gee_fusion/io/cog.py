"""Cloud-Optimized GeoTIFF output: tiled, compressed, with overviews; written atomically."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.enums
import rasterio.shutil
from affine import Affine

from gee_fusion.errors import OutputError
from gee_fusion.io.atomic import atomic_path, temporary_dir


def write_cog(
    path: str | Path,
    data: np.ndarray,
    *,
    crs: str,
    transform: Affine | Sequence[float],
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    tags: Mapping[str, Any] | None = None,
    resampling: str = "average",
) -> Path:
    """Write a (bands, height, width) array as a COG, replacing ``path`` only on success.

    Args:
        path: Output file.
        data: Array of shape (bands, height, width) or (height, width).
        crs: CRS code, e.g. ``"EPSG:32633"``.
        transform: Pixel-to-CRS affine transform.
        nodata: Nodata value (NaN for float data with gaps).
        band_names: One description per band.
        colormap: Palette for a single-band uint8 class map (value -> RGBA).
        tags: Dataset metadata tags.
        resampling: Overview resampling (``average`` for continuous data, ``nearest`` for
            classes).

    Returns:
        The written path.
    """
    arr = data[None] if data.ndim == 2 else data
    if arr.ndim != 3:
        raise OutputError(f"write_cog expects (bands, height, width), got shape {data.shape}.")
    if band_names is not None and len(band_names) != arr.shape[0]:
        raise OutputError(f"{len(band_names)} band names for {arr.shape[0]} bands.")
    aff = transform if isinstance(transform, Affine) else Affine(*list(transform)[:6])
    profile = {
        "driver": "GTiff", "width": arr.shape[2], "height": arr.shape[1], "count": arr.shape[0],
        "dtype": arr.dtype.name, "crs": crs, "transform": aff, "nodata": nodata,
    }  # fmt: skip
    path = Path(path)
    if nodata is not None and np.isnan(nodata) and arr.dtype.kind != "f":
        raise OutputError(f"NaN nodata needs a float array, got {arr.dtype}: pass an integer nodata.")
    try:
        return _write(path, arr, profile, band_names, colormap, tags, resampling)
    except (rasterio.errors.RasterioError, rasterio.errors.CRSError) as exc:
        raise OutputError(f"Cannot write {path}: {exc}") from exc


def _write(path: Path, arr: np.ndarray, profile: dict[str, Any], band_names: Sequence[str] | None,
           colormap: Mapping[int, tuple[int, int, int, int]] | None, tags: Mapping[str, Any] | None,
           resampling: str) -> Path:  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {path.parent}: {exc}") from exc
    tmpdir = temporary_dir(path)
    try:
        plain = tmpdir / "plain.tif"
        with rasterio.open(plain, "w", **profile) as dst:
            dst.write(arr)
            if band_names is not None:
                for i, name in enumerate(band_names, start=1):
                    dst.set_band_description(i, str(name))
            if colormap is not None:
                dst.write_colormap(1, dict(colormap))
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
        with atomic_path(path, suffix=".tif") as tmp:
            rasterio.shutil.copy(
                plain, tmp, driver="COG", compress="DEFLATE", blocksize=256,
                overview_resampling=resampling, predictor="YES" if arr.dtype.kind == "f" else "NO",
            )  # fmt: skip
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def read_preview(path: str | Path, *, max_side: int = 1024, band: int = 1) -> tuple[np.ndarray, float | None]:
    """One band of a raster decimated (nearest, from its overviews) to at most ``max_side`` px a
    side, and its nodata value: enough to draw or summarise a city-scale map in little memory.

    Raises:
        OutputError: the raster cannot be read.
    """
    try:
        with rasterio.open(path) as ds:
            factor = max(1, -(-max(ds.width, ds.height) // max_side))
            shape = (max(1, ds.height // factor), max(1, ds.width // factor))
            arr = ds.read(band, out_shape=shape, resampling=rasterio.enums.Resampling.nearest)
            return arr, ds.nodata
    except rasterio.errors.RasterioError as exc:
        raise OutputError(f"Cannot read {path}: {exc}") from exc
