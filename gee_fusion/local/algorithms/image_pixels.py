"""Images made from the pixel grid itself (``Image.pixelCoordinates``, ``pixelLonLat``,
``pixelArea``) and ``Image.remap`` of class values.

Coordinates are those of pixel centres in the request grid, transformed into the asked
projection's CRS; areas are those of the pixel's footprint in square metres (in an equal-area
projection for geographic grids).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio.warp import transform as warp_points

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import as_image, band_named
from gee_fusion.local.grid import DEFAULT_PROJECTION, Projection, crs_of, same_crs
from gee_fusion.local.image import Band, FuncNode, GridFuncNode, Image, PixelContext, Pixels
from gee_fusion.local.registry import algorithm


def _centres(grid: PixelGrid) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    a, b, c, d, e, f = grid.transform
    return a * cols + b * rows + c, d * cols + e * rows + f


def _in_crs(grid: PixelGrid, crs: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _centres(grid)
    if same_crs(grid.crs, crs):
        return x, y
    tx, ty = warp_points(crs_of(grid.crs), crs_of(crs), x.ravel(), y.ravel())
    return np.asarray(tx).reshape(x.shape), np.asarray(ty).reshape(y.shape)


def _coordinate_bands(crs: str, names: tuple[str, str], proj: Projection) -> Image:
    def coordinate(axis: int) -> GridFuncNode:
        def fn(ctx: PixelContext, grid: PixelGrid) -> Pixels:
            values = _in_crs(grid, crs)[axis]
            return values.astype(np.float64), np.ones(grid.shape, dtype=bool)

        return GridFuncNode(fn)

    return Image(
        tuple(
            Band(name, np.dtype(np.float64), coordinate(k), proj, None, None) for k, name in enumerate(names)
        )
    )


@algorithm("Image.pixelCoordinates")
def image_pixel_coordinates(projection: Any) -> Image:
    """Bands ``x`` and ``y``: the coordinates of each pixel's centre in ``projection``'s CRS."""
    proj = projection if isinstance(projection, Projection) else Projection(str(projection))
    return _coordinate_bands(proj.crs, ("x", "y"), proj)


@algorithm("Image.pixelLonLat")
def image_pixel_lon_lat() -> Image:
    """Bands ``longitude`` and ``latitude`` of each pixel's centre, in degrees."""
    return _coordinate_bands("EPSG:4326", ("longitude", "latitude"), DEFAULT_PROJECTION)


@algorithm("Image.pixelArea")
def image_pixel_area() -> Image:
    """Band ``area``: each pixel's area in square metres."""

    def fn(ctx: PixelContext, grid: PixelGrid) -> Pixels:
        a, b, _, d, e, _ = grid.transform
        if not crs_of(grid.crs).is_geographic:
            return np.full(grid.shape, abs(a * e - b * d)), np.ones(grid.shape, dtype=bool)
        _, lat = _centres(grid)
        radius = 6378137.0  # WGS84 sphere of equal circumference, as Earth Engine's geodesic areas
        dlon, dlat = np.radians(abs(a)), np.radians(abs(e))
        area = (
            radius**2 * dlon * np.abs(np.sin(np.radians(lat) + dlat / 2) - np.sin(np.radians(lat) - dlat / 2))
        )
        return area, np.ones(grid.shape, dtype=bool)

    return Image((Band("area", np.dtype(np.float64), GridFuncNode(fn), DEFAULT_PROJECTION, None, None),))


@algorithm("Image.remap")
def image_remap(
    image: Any, to: list[Any], defaultValue: Any = None, bandName: str | None = None, **kwargs: Any
) -> Image:
    """Map the values listed in ``from`` to those in ``to``; other values become ``defaultValue``
    (masked when it is not given). Only ``bandName`` (default: the first band) is remapped."""
    source = kwargs.get("from")
    if source is None or len(source) != len(to):
        raise EngineError("Image.remap: 'from' and 'to' must be lists of the same length.")
    img = as_image(image)
    band = band_named(img, bandName, "Image.remap")
    name = band.name
    keys = np.asarray(source, dtype=np.float64)
    values = np.asarray(to)
    dtype = np.result_type(values.dtype, np.asarray(0 if defaultValue is None else defaultValue).dtype)
    order = np.argsort(keys)
    keys, values = keys[order], values[order]

    def fn(px: Pixels) -> Pixels:
        vals, mask = px
        flat = np.asarray(vals, dtype=np.float64)
        pos = np.clip(np.searchsorted(keys, flat), 0, max(len(keys) - 1, 0))
        hit = (keys[pos] == flat) if len(keys) else np.zeros(flat.shape, bool)
        out = np.where(hit, values[pos] if len(keys) else 0, 0 if defaultValue is None else defaultValue)
        valid = np.asarray(mask, bool) & (hit if defaultValue is None else True)
        return out.astype(dtype), valid

    remapped = Band(name, dtype, FuncNode(fn, [band.node]), band.projection, band.dimensions, None)
    return img.with_bands([remapped])
