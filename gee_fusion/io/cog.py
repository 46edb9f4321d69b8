"""Cloud-Optimized GeoTIFF output: tiled, compressed, with overviews; written atomically."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine

from gee_fusion.errors import OutputError
from gee_fusion.io.atomic import atomic_path


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
    with tempfile.TemporaryDirectory(dir=path.parent if path.parent.exists() else None) as tmpdir:
        plain = Path(tmpdir) / "plain.tif"
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
    return path
