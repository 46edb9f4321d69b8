"""Terrain: Terrain.slope, Terrain.aspect, Terrain.hillshade and Terrain.products (``Terrain``).

As Earth Engine documents, the local gradient comes from the 4-connected neighbours of each
pixel (central differences), so a pixel with a masked neighbour is masked. It is computed in
the request grid, read one pixel wider (:meth:`PixelGrid.padded`) so tiles agree, with the pixel
size of that grid in metres (degrees are converted with 111 319.49 m per degree, times the
cosine of the latitude for longitude). Elevations are in metres.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.grid import METRES_PER_DEGREE, crs_of
from gee_fusion.local.image import Band, Image, PixelContext, PixelNode, Pixels
from gee_fusion.local.registry import algorithm


def crs_gradient(
    z: np.ndarray, valid: np.ndarray, grid: PixelGrid
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dz/dx east, dz/dy north, valid) in metres per metre for the inner pixels of a padded array.

    ``z`` and ``valid`` cover ``grid`` grown by one pixel on every side.
    """
    z = np.asarray(z, dtype=np.float64)
    dz_dcol = (z[1:-1, 2:] - z[1:-1, :-2]) / 2.0
    dz_drow = (z[2:, 1:-1] - z[:-2, 1:-1]) / 2.0
    ok = valid[1:-1, 1:-1] & valid[1:-1, 2:] & valid[1:-1, :-2] & valid[2:, 1:-1] & valid[:-2, 1:-1]
    a = grid.affine
    # x = a*col + b*row + c, y = d*col + e*row + f: solve the chain rule for dz/dx, dz/dy
    det = a.a * a.e - a.b * a.d
    gx = (a.e * dz_dcol - a.d * dz_drow) / det
    gy = (a.a * dz_drow - a.b * dz_dcol) / det
    crs = crs_of(grid.crs)
    if crs.is_geographic:
        rows = np.arange(grid.height) + 0.5
        cols = np.arange(grid.width) + 0.5
        lat = a.d * cols[None, :] + a.e * rows[:, None] + a.f
        gx = gx / (METRES_PER_DEGREE * np.cos(np.radians(lat)))
        gy = gy / METRES_PER_DEGREE
    else:
        factor = _unit_factor(crs)
        gx, gy = gx / factor, gy / factor
    return gx, gy, ok


def _unit_factor(crs: Any) -> float:
    """Metres per CRS unit of a projected CRS (1 when unknown)."""
    try:
        return float(crs.linear_units_factor[1])
    except Exception:  # rasterio raises CRSError when the CRS has no linear units
        return 1.0


def slope_aspect(gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees from horizontal) and aspect (compass degrees the slope faces: 0 north,
    90 east; 0 on flat ground) from the east and north gradients."""
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.degrees(np.arctan2(-gx + 0.0, -gy + 0.0)) % 360.0  # + 0.0 turns -0.0 into 0.0
    return slope, aspect


def hillshade_of(slope: np.ndarray, aspect: np.ndarray, azimuth: float, elevation: float) -> np.ndarray:
    """The classic hillshade, 255 x the cosine of the illumination angle (clipped at 0), as uint8."""
    zenith = math.radians(90.0 - elevation)
    s, asp = np.radians(slope), np.radians(aspect)
    cos_i = math.cos(zenith) * np.cos(s) + math.sin(zenith) * np.sin(s) * np.cos(math.radians(azimuth) - asp)
    return np.trunc(np.clip(255.0 * cos_i, 0.0, 255.0)).astype(np.uint8)


class _TerrainNode(PixelNode):
    """Slope and aspect at once, memoised as one entry: ``[(slope, ok), (aspect, ok)]``."""

    def __init__(self, node: PixelNode) -> None:
        self.node = node

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Any:
        z, valid = ctx.pixels(self.node, grid.padded(1))
        gx, gy, ok = crs_gradient(np.asarray(z), np.asarray(valid, dtype=bool), grid)
        slope, aspect = slope_aspect(gx, gy)
        return [(slope, ok), (aspect, ok)]


class _SlopeAspect(PixelNode):
    def __init__(self, shared: _TerrainNode, index: int) -> None:
        self.shared = shared
        self.index = index

    def children(self) -> tuple[PixelNode, ...]:
        return (self.shared,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        values, ok = ctx.pixels(self.shared, grid)[self.index]
        return np.where(ok, values, 0.0).astype(np.float32), ok


class _Hillshade(PixelNode):
    def __init__(self, shared: _TerrainNode, azimuth: float, elevation: float) -> None:
        self.shared = shared
        self.azimuth = azimuth
        self.elevation = elevation

    def children(self) -> tuple[PixelNode, ...]:
        return (self.shared,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        parts: Any = ctx.pixels(self.shared, grid)
        (slope, ok), (aspect, _) = parts
        shade = hillshade_of(np.where(ok, slope, 0.0), np.where(ok, aspect, 0.0), self.azimuth,
                             self.elevation)  # fmt: skip
        return np.where(ok, shade, 0).astype(np.uint8), ok


def elevation_band(image: Any, where: str) -> Band:
    """The single band of ``image``, or its band named ``elevation``."""
    if not isinstance(image, Image):
        raise EngineError(f"{where}: expected an elevation image, got {type(image).__name__}.")
    if len(image.bands) == 1:
        return image.bands[0]
    match = [b for b in image.bands if b.name == "elevation"]
    if not match:
        raise EngineError(
            f"{where}: expected a single-band elevation image or a band named 'elevation'; "
            f"got bands {image.band_names}."
        )
    return match[0]


def _derived(like: Band, name: str, dtype: type, node: PixelNode, value_range: Any = None) -> Band:
    return Band(name, np.dtype(dtype), node, like.projection, like.dimensions, value_range)


@algorithm("Terrain.slope")
def terrain_slope(input: Image) -> Image:
    """Slope in degrees (band ``slope``)."""
    dem = elevation_band(input, "Terrain.slope")
    shared = _TerrainNode(dem.node)
    return Image((_derived(dem, "slope", np.float32, _SlopeAspect(shared, 0)),))


@algorithm("Terrain.aspect")
def terrain_aspect(input: Image) -> Image:
    """Aspect in degrees clockwise from north, the direction the slope faces (band ``aspect``)."""
    dem = elevation_band(input, "Terrain.aspect")
    shared = _TerrainNode(dem.node)
    return Image((_derived(dem, "aspect", np.float32, _SlopeAspect(shared, 1)),))


@algorithm("Terrain.hillshade")
def terrain_hillshade(input: Image, azimuth: float = 270.0, elevation: float = 45.0) -> Image:
    """A simple hillshade (band ``hillshade``, uint8 0-255) lit from ``azimuth`` (degrees
    from north) at ``elevation`` degrees above the horizon."""
    dem = elevation_band(input, "Terrain.hillshade")
    node = _Hillshade(_TerrainNode(dem.node), float(azimuth), float(elevation))
    return Image((_derived(dem, "hillshade", np.uint8, node, (0, 255)),))


@algorithm("Terrain.products", "Terrain")
def terrain_products(input: Image) -> Image:
    """The input's bands and properties plus ``slope``, ``aspect`` (float degrees) and
    ``hillshade`` (uint8, azimuth 270, elevation 45)."""
    dem = elevation_band(input, "Terrain.products")
    shared = _TerrainNode(dem.node)
    added = [
        _derived(dem, "slope", np.float32, _SlopeAspect(shared, 0)),
        _derived(dem, "aspect", np.float32, _SlopeAspect(shared, 1)),
        _derived(dem, "hillshade", np.uint8, _Hillshade(shared, 270.0, 45.0), (0, 255)),
    ]
    names = {b.name for b in added}
    return input.with_bands([b for b in input.bands if b.name not in names] + added)
