"""Parameters of the procedural demo world (a Rouen-like city)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from gee_fusion.errors import ConfigError

PIXEL = 10.0
"""Native pixel size of the world lattice (metres)."""


@dataclass(frozen=True)
class WorldConfig:
    """Where the world is, how large, and its seed.

    Attributes:
        seed: Everything (land cover, acquisitions, clouds, speckle) derives from it.
        lon: Longitude of the centre (degrees east).
        lat: Latitude of the centre (degrees north).
        size_km: Side of the square world (km).
        crs: Projected CRS of the native grid (UTM).
        changes: How many land-cover changes are planted between 2019 and 2024 in the central
            12 x 12 km (0: a static world; None: 40 for a full 12 km city, proportionally fewer
            for a smaller world, as many as fit); see :mod:`gee_fusion.local.world.changes`.
        change_scale: Scale of the planted changes' sizes (1: construction sites of 70-200 m).
    """

    seed: int = 42
    lon: float = 1.10
    lat: float = 49.44
    size_km: float = 12.0
    crs: str = "EPSG:32631"
    changes: int | None = None
    change_scale: float = 1.0

    def __post_init__(self) -> None:
        if (self.changes is not None and self.changes < 0) or not 0.1 <= self.change_scale <= 5.0:
            raise ConfigError(
                f"WorldConfig: changes must be >= 0 and change_scale within 0.1..5, got {self.changes} "
                f"and {self.change_scale}."
            )

    @functools.cached_property
    def origin(self) -> tuple[float, float]:
        """Upper-left corner (x, y) snapped to the 60 m lattice, in ``crs``."""
        xs, ys = warp_transform(CRS.from_epsg(4326), CRS.from_user_input(self.crs), [self.lon], [self.lat])
        half = self.size_km * 500.0
        x0 = (xs[0] - half) // 60.0 * 60.0
        y1 = (ys[0] + half) // 60.0 * 60.0 + 60.0
        return float(x0), float(y1)

    @property
    def size_px(self) -> int:
        """Side of the world in 10 m pixels (a multiple of 6, so 20 m and 60 m grids align)."""
        n = round(self.size_km * 1000.0 / PIXEL)
        return n - n % 6

    @property
    def change_count(self) -> int:
        """How many changes are planted (``changes``, or 40 per 144 km2 of the central city)."""
        if self.changes is not None:
            return self.changes
        return round(40 * (min(self.size_km, 12.0) / 12.0) ** 2)

    @property
    def centre(self) -> tuple[float, float]:
        """Centre (x, y) of the world in ``crs``."""
        x0, y1 = self.origin
        half = self.size_px * PIXEL / 2.0
        return x0 + half, y1 - half

    def transform(self, scale: float = PIXEL) -> tuple[float, float, float, float, float, float]:
        """Native affine transform at ``scale`` metres."""
        x0, y1 = self.origin
        return (scale, 0.0, x0, 0.0, -scale, y1)

    @functools.cached_property
    def footprint(self) -> list[list[float]]:
        """The world outline as a closed lon/lat ring."""
        x0, y1 = self.origin
        side = self.size_px * PIXEL
        xs = [x0, x0 + side, x0 + side, x0, x0]
        ys = [y1 - side, y1 - side, y1, y1, y1 - side]
        lons, lats = warp_transform(CRS.from_user_input(self.crs), CRS.from_epsg(4326), xs, ys)
        return [[float(a), float(b)] for a, b in zip(lons, lats, strict=True)]

    def shape(self, scale: float = PIXEL) -> tuple[int, int]:
        """(height, width) of the native grid at ``scale`` metres."""
        n = round(self.size_px * PIXEL / scale)
        return (n, n)


DEFAULT_WORLD = WorldConfig()
