"""The area an export or a map covers: a rectangle on a projected grid, or a lon/lat box that is
turned into one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.config import read_yaml_mapping, validate
from gee_fusion.errors import ConfigError
from gee_fusion.grid import PixelGrid


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


@dataclass(frozen=True)
class LonLatBox:
    """A west, south, east, north box in degrees (WGS84, EPSG:4326)."""

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        w, s, e, n = self.west, self.south, self.east, self.north
        if not all(math.isfinite(v) for v in (w, s, e, n)):
            raise ConfigError(f"bbox {w},{s},{e},{n}: every number must be finite.")
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise ConfigError(
                f"bbox {w},{s},{e},{n} is not W,S,E,N in degrees (EPSG:4326) with west < east and "
                "south < north, e.g. --bbox 1.05,49.40,1.15,49.48."
            )

    @classmethod
    def parse(cls, text: str) -> LonLatBox:
        """``W,S,E,N`` in degrees.

        Raises:
            ConfigError: not four numbers, or not a valid box.
        """
        parts = text.split(",")
        try:
            w, s, e, n = (float(v) for v in parts)
        except ValueError as exc:
            raise ConfigError(
                f"bbox {text!r}: expected W,S,E,N in degrees, e.g. 1.05,49.40,1.15,49.48."
            ) from exc
        return cls(w, s, e, n)

    def to_area(self, crs: str, *, scale: float) -> AreaConfig:
        """The smallest ``scale``-pixel rectangle in ``crs`` that covers the box."""
        from rasterio.crs import CRS
        from rasterio.errors import CRSError
        from rasterio.warp import transform_bounds

        try:
            x0, y0, x1, y1 = transform_bounds(CRS.from_epsg(4326), CRS.from_user_input(crs), *self.bounds())
        except CRSError as exc:
            raise ConfigError(f"Cannot use CRS {crs!r}: {exc}") from exc
        left, top = math.floor(x0 / scale) * scale, math.ceil(y1 / scale) * scale
        width = max(1, math.ceil((x1 - left) / scale))
        height = max(1, math.ceil((top - y0) / scale))
        return AreaConfig(crs=crs, origin=(left, top), size_px=(width, height), scale=scale)

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north)."""
        return (self.west, self.south, self.east, self.north)


def parse_area(area: str | Path) -> AreaConfig:
    """``demo`` (the whole demo city), ``X0,Y1,WIDTH,HEIGHT`` (upper-left corner in the recipe's
    projected CRS, metres; size in pixels) or a YAML file with an ``area`` mapping (crs, origin,
    size_px). For a lon/lat box use :class:`~gee_fusion.export.area.LonLatBox` (``--bbox``).

    Raises:
        ConfigError: none of these forms, or a lon/lat box given where corner and size are expected.
    """
    text = str(area)
    if text == "demo":
        return AreaConfig()
    parts = text.split(",")
    if len(parts) == 4:
        try:
            x0, y1, w, h = (float(p) for p in parts)
        except ValueError as exc:
            raise ConfigError(f"AREA {text!r}: expected X0,Y1,WIDTH,HEIGHT numbers.") from exc
        if not (w.is_integer() and h.is_integer()) or w < 1 or h < 1:
            hint = ""
            if abs(x0) <= 180 and abs(y1) <= 90:
                hint = f" It looks like a lon/lat box: use --bbox {text} (W,S,E,N in degrees)."
            raise ConfigError(f"AREA {text!r}: WIDTH and HEIGHT must be whole numbers of pixels >= 1.{hint}")
        return AreaConfig(origin=(x0, y1), size_px=(int(w), int(h)))
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        raw = read_yaml_mapping(path, what="area config")
        patches = raw.get("patches")
        section = raw.get("area", patches.get("area") if isinstance(patches, dict) else None)
        if not isinstance(section, dict):
            raise ConfigError(f"{path} has no `area` mapping (crs, origin, size_px).")
        return validate(AreaConfig, section, source=f"{path} (section `area`)")
    raise ConfigError(
        f"AREA {text!r} is not 'demo', 'X0,Y1,WIDTH,HEIGHT' or an existing YAML file (for a lon/lat "
        "box use --bbox W,S,E,N)."
    )
