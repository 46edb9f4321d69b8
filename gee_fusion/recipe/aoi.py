"""Client-side validation of areas of interest (AOIs), before anything is sent to a server.

An ``ee.Geometry`` built on the client (``ee.Geometry.Rectangle([...])``, ``Polygon``,
``Point``, GeoJSON, with or without a ``proj``) carries its coordinates, so wrong types, empty
or non-finite coordinates, longitudes/latitudes out of range, zero-area polygons and AOIs
larger than :data:`MAX_AOI_KM2` are caught at once with a :class:`ConfigError`. Geometries
computed on the server (``image.geometry()``, ``geom.buffer(...)``) cannot be inspected without
a round trip and are accepted as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import ee

from gee_fusion.errors import ConfigError

MAX_AOI_KM2 = 2_000_000.0
"""Largest AOI accepted by the recipes (km2): country scale. Larger areas belong in batch
exports over tiles of the area."""

EARTH_RADIUS_M = 6378137.0
_POLYGONAL = ("Polygon", "MultiPolygon", "Rectangle")
_KNOWN = ("Point", "MultiPoint", "LineString", "LinearRing", "MultiLineString", *_POLYGONAL)
_HINT = "Build it with ee.Geometry.Rectangle([west, south, east, north]) or ee.Geometry.Polygon(...)."


def validate_aoi(aoi: Any, *, name: str = "aoi", max_area_km2: float = MAX_AOI_KM2) -> ee.Geometry:
    """Check an AOI on the client and return it unchanged.

    Args:
        aoi: The area of interest.
        name: How the argument is called in error messages.
        max_area_km2: Largest accepted area of a polygonal AOI (km2).

    Raises:
        ConfigError: ``aoi`` is not an ``ee.Geometry``, or it is empty, has non-finite or
            out-of-range coordinates, is a polygon with zero area, or covers more than
            ``max_area_km2``.
    """
    if not isinstance(aoi, ee.Geometry):
        extra = " (for a feature or collection, pass its .geometry())" if isinstance(aoi, ee.Element) else ""
        raise ConfigError(f"{name} must be an ee.Geometry, got {type(aoi).__name__}{extra}. {_HINT}")
    parsed = _client_side(aoi)
    if parsed is None:
        return aoi  # computed on the server: nothing to inspect without a round trip
    kind, coordinates, crs = parsed
    geographic = _is_geographic(crs)
    parts = list(_shapes(kind, coordinates, name))
    points = [p for part in parts for ring in part for p in ring]
    if not points:
        raise ConfigError(f"{name} is an empty {kind}: it has no coordinates. {_HINT}")
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ConfigError(f"{name} has a non-finite coordinate ({x}, {y}).")
        if geographic and not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
            raise ConfigError(
                f"{name} has the point ({x}, {y}) outside longitude [-180, 180] / latitude [-90, 90] "
                f"in {crs or 'EPSG:4326'}. Projected coordinates (metres) need their CRS: "
                "ee.Geometry.Rectangle(coords, 'EPSG:326xx', False)."
            )
    if kind in _POLYGONAL:
        areas = [_planar_area(part) for part in parts]
        if any(a <= 0.0 for a in areas):
            raise ConfigError(
                f"{name} is a degenerate {kind}: a polygon has zero area (repeated or collinear "
                f"vertices). {_HINT}"
            )
        km2 = sum(_area_km2(part, crs, geographic) for part in parts)
        if km2 > max_area_km2:
            raise ConfigError(
                f"{name} covers {km2:,.0f} km2, more than the {max_area_km2:,.0f} km2 the recipes accept: "
                "split it into tiles and run them as batch exports."
            )
    return aoi


def _client_side(aoi: ee.Geometry) -> tuple[str, Any, str | None] | None:
    """(type, coordinates, CRS code or None for EPSG:4326) if the geometry was built on the
    client, else None."""
    kind = vars(aoi).get("_type")
    if kind is not None:
        if kind == "GeometryCollection":
            return None
        proj = vars(aoi).get("_proj")
        return str(kind), vars(aoi).get("_coordinates"), proj if isinstance(proj, str) else None
    func = getattr(aoi, "func", None)
    signature = func.getSignature() if func is not None else {}
    fname = str(signature.get("name", ""))
    if not fname.startswith("GeometryConstructors."):
        return None
    args = aoi.args or {}
    coords = args.get("coordinates")
    raw = vars(coords).get("_list") if isinstance(coords, ee.List) else coords
    if raw is None or not _constant(raw):
        return None
    crs = args.get("crs")
    code: str | None = None
    if isinstance(crs, str):
        code = crs
    elif isinstance(crs, ee.Projection):
        inner = (crs.args or {}).get("crs")
        if not isinstance(inner, str):
            return None  # a projection built on the server: its units are unknown here
        code = inner
    return fname.split(".", 1)[1], raw, code


def _constant(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_constant(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_geographic(crs: str | None) -> bool:
    if crs is None or crs.upper() in ("EPSG:4326", "WGS84"):
        return True
    try:
        from rasterio.crs import CRS

        return bool(CRS.from_user_input(crs).is_geographic)
    except Exception as exc:  # rasterio raises CRSError subclasses of several kinds
        raise ConfigError(f"Unknown CRS {crs!r} for the AOI: use an 'EPSG:<code>' string.") from exc


Ring = list[tuple[float, float]]


def _positions(value: Any, name: str) -> Ring:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} has malformed coordinates: expected a list of [x, y] pairs.")
    out = []
    for p in value:
        if not isinstance(p, (list, tuple)) or len(p) < 2 or not _constant(list(p[:2])):
            raise ConfigError(f"{name} has a malformed position {p!r}: expected [x, y].")
        out.append((float(p[0]), float(p[1])))
    return out


def _shapes(kind: str, coords: Any, name: str) -> Iterable[list[Ring]]:
    """The geometry as parts (polygons or lines or points), each a list of rings."""
    if kind not in _KNOWN:
        raise ConfigError(f"{name} has an unsupported geometry type {kind!r}.")
    if coords is None or (isinstance(coords, (list, tuple)) and len(coords) == 0):
        return
    if kind == "Point":
        yield [_positions([coords], name)]
    elif kind == "Rectangle":
        flat = list(coords)
        pairs = [flat[:2], flat[2:4]] if len(flat) == 4 and _constant(flat) else flat
        (x0, y0), (x1, y1) = _positions(pairs, name)[:2]
        yield [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]]
    elif kind in ("MultiPoint", "LineString", "LinearRing"):
        yield [_positions(coords, name)]
    elif kind in ("Polygon", "MultiLineString"):
        yield [_positions(ring, name) for ring in coords]
    else:  # MultiPolygon
        for poly in coords:
            yield [_positions(ring, name) for ring in poly]


def _ring_area(ring: Sequence[tuple[float, float]]) -> float:
    """Signed shoelace area of a ring (closed or not)."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(ring, [*ring[1:], ring[0]], strict=True):
        total += x0 * y1 - x1 * y0
    return total / 2.0


def _planar_area(part: list[Ring]) -> float:
    """Area of a polygon (outer ring minus holes) in coordinate units squared; 0 when it is
    below rounding noise relative to the polygon's extent (collinear vertices)."""
    if not part or len(part[0]) < 3:
        return 0.0
    area = abs(_ring_area(part[0])) - sum(abs(_ring_area(h)) for h in part[1:])
    xs, ys = [p[0] for p in part[0]], [p[1] for p in part[0]]
    extent2 = (max(xs) - min(xs)) ** 2 + (max(ys) - min(ys)) ** 2
    return area if area > 1e-9 * extent2 else 0.0


def _spherical_ring_km2(ring: Sequence[tuple[float, float]]) -> float:
    """Area of a lon/lat ring on the sphere (km2; Chamberlain & Duquette's approximation)."""
    total = 0.0
    for (lon0, lat0), (lon1, lat1) in zip(ring, [*ring[1:], ring[0]], strict=True):
        total += math.radians(lon1 - lon0) * (
            2.0 + math.sin(math.radians(lat0)) + math.sin(math.radians(lat1))
        )
    return abs(total) * EARTH_RADIUS_M**2 / 2.0 / 1e6


def _area_km2(part: list[Ring], crs: str | None, geographic: bool) -> float:
    if geographic:
        return _spherical_ring_km2(part[0]) - sum(_spherical_ring_km2(h) for h in part[1:])
    factor = 1.0
    try:
        from rasterio.crs import CRS

        factor = float(CRS.from_user_input(crs).linear_units_factor[1])
    except Exception:  # rasterio raises CRSError when the CRS has no linear units
        factor = 1.0
    return _planar_area(part) * factor * factor / 1e6
