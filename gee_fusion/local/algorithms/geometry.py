"""Geometry constructors and operations, Feature, Projection, and the ``geometry`` of
elements and collections. Planar operations in the geometry's CRS (see docs/local_engine.md)."""

from __future__ import annotations

from typing import Any

import shapely
import shapely.affinity
import shapely.geometry

from gee_fusion.errors import EngineError
from gee_fusion.local.grid import Projection, crs_of, parse_transform
from gee_fusion.local.image import Image
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Feature, FeatureCollection, Geometry, ImageCollection


def _crs(crs: Any) -> str:
    if crs is None:
        return "EPSG:4326"
    if isinstance(crs, Projection):
        return crs.crs
    return str(crs)


def _in_projection(shape: shapely.Geometry, crs: Any) -> Geometry:
    """A shape whose coordinates are in ``crs``: a CRS code, or a projection whose transform maps
    its units to the CRS (e.g. a rectangle in pixel coordinates, as ``Export.image`` builds for
    ``crsTransform`` + ``dimensions``)."""
    if isinstance(crs, Projection) and crs.transform != (1.0, 0.0, 0.0, 0.0, 1.0, 0.0):
        a, b, c, d, e, f = crs.transform
        shape = shapely.affinity.affine_transform(shape, [a, b, d, e, c, f])
    return Geometry(shape, _crs(crs))


def _make(kind: str, coordinates: Any, crs: Any = None) -> Geometry:
    try:
        shape = shapely.geometry.shape({"type": kind, "coordinates": coordinates})
    except (ValueError, TypeError, IndexError) as exc:
        raise EngineError(f"Invalid {kind} coordinates: {exc}.") from exc
    if not shape.is_valid and kind in ("Polygon", "MultiPolygon"):
        raise EngineError(f"Invalid {kind}: {shapely.is_valid_reason(shape)}.")
    return _in_projection(shape, crs)


_KINDS = ("Point", "MultiPoint", "LineString", "MultiLineString", "LinearRing", "Polygon", "MultiPolygon")
for _kind in _KINDS:

    def _ctor(coordinates: Any, crs: Any = None, geodesic: Any = None, maxError: Any = None,
              evenOdd: Any = None, _k: str = _kind) -> Geometry:  # fmt: skip
        return _make(_k, coordinates, crs)

    algorithm(f"GeometryConstructors.{_kind}")(_ctor)


@algorithm("ErrorMargin")
def error_margin(value: float, unit: str = "meters") -> float:
    """An error margin; the local engine computes geometry exactly, so only the value is kept."""
    if unit not in ("meters", "projected", "infinite"):
        raise EngineError(f"ErrorMargin: unit must be 'meters', 'projected' or 'infinite', got {unit!r}.")
    return float(value)


@algorithm("GeometryConstructors.Rectangle")
def geom_rectangle(coordinates: Any, crs: Any = None, geodesic: Any = None, evenOdd: Any = None) -> Geometry:
    """A rectangle from [[x0, y0], [x1, y1]] or [x0, y0, x1, y1]."""
    nested = isinstance(coordinates[0], list)
    flat = list(shapely.geometry.MultiPoint(coordinates).bounds) if nested else coordinates
    x0, y0, x1, y1 = (float(v) for v in flat)
    if x1 < x0 or y1 < y0:
        raise EngineError("Rectangle: the first corner must be the lower-left one.")
    return _in_projection(shapely.box(x0, y0, x1, y1), crs)


@algorithm("GeometryConstructors.BBox")
def geom_bbox(west: float, south: float, east: float, north: float) -> Geometry:
    """A lon/lat box."""
    return Geometry(shapely.box(west, south, east, north))


@algorithm("GeometryConstructors.MultiGeometry")
def geom_multi(geometries: list[Geometry], crs: Any = None, geodesic: Any = None,
               maxError: Any = None) -> Geometry:  # fmt: skip
    """A geometry collection."""
    target = _crs(crs)
    return Geometry(shapely.GeometryCollection([g.to_crs(target) for g in geometries]), target)


def computed_footprint(image: Image) -> Geometry:
    """The footprint of a computed image (its ``system:footprint`` property is gone), in EPSG:4326.

    Per operation, as Earth Engine propagates it: an asset contributes its footprint; a per-pixel
    operation (arithmetic, masks, neighbourhoods...) the intersection of its bounded inputs; a
    collection reduction (composites, mosaics, fits: nodes with ``footprint_rule = "union"``) the
    union of its images'; a clip cuts by its geometry; a constant or pixel-coordinate band is
    unbounded. The image covers the union of its bands' bounded footprints; with none it is
    unbounded, as in Earth Engine.
    """
    memo: dict[int, shapely.Geometry | None] = {}
    bounded = [p for p in (_node_footprint(band.node, memo) for band in image.bands) if p is not None]
    return Geometry(shapely.union_all(bounded) if bounded else shapely.box(-180, -90, 180, 90))


def _node_footprint(node: Any, memo: dict[int, shapely.Geometry | None]) -> shapely.Geometry | None:
    """A node's footprint (None: unbounded), memoised by node identity."""
    from gee_fusion.local.image import ClipNode
    from gee_fusion.local.sources import LeafNode

    key = id(node)
    if key in memo:
        return memo[key]
    out: shapely.Geometry | None
    if isinstance(node, LeafNode):
        out = shapely.Polygon(node.source.footprint())
    elif isinstance(node, ClipNode):
        out = node.geometry.to_crs("EPSG:4326")
    else:
        kids = [_node_footprint(child, memo) for child in node.children()]
        bounded = [k for k in kids if k is not None]
        if not bounded:
            out = None
        elif getattr(node, "footprint_rule", "intersection") == "union":
            out = shapely.union_all(bounded) if len(bounded) == len(kids) else None
        else:
            out = shapely.intersection_all(bounded)
    memo[key] = out
    return out


def geometry_of_any(value: Any) -> Geometry:
    """The geometry of a Geometry, Feature, Image (footprint) or collection."""
    if isinstance(value, Geometry):
        return value
    if isinstance(value, Feature):
        if value.geometry is None:
            raise EngineError("The feature has no geometry.")
        return value.geometry
    if isinstance(value, Image):
        foot = value.get("system:footprint")
        if isinstance(foot, Geometry):
            shape = foot.shape
            if isinstance(shape, shapely.LinearRing):
                shape = shapely.Polygon(shape)
            return Geometry(shape, foot.crs)
        return computed_footprint(value)
    if isinstance(value, (FeatureCollection, ImageCollection)):
        shapes = [geometry_of_any(e).to_crs("EPSG:4326") for e in value.elements]
        return Geometry(shapely.union_all(shapes) if shapes else shapely.GeometryCollection())
    raise EngineError(f"Expected a geometry, got {type(value).__name__}.")


@algorithm("Feature")
def feature_new(geometry: Any = None, metadata: dict[str, Any] | None = None,
                geometryKey: Any = None) -> Feature:  # fmt: skip
    """A feature from a geometry (or a feature) and properties."""
    if isinstance(geometry, Feature):
        return Feature(geometry.geometry, {**geometry.properties, **(metadata or {})}, geometry.id)
    geom = geometry_of_any(geometry) if geometry is not None else None
    return Feature(geom, dict(metadata or {}))


@algorithm("Element.geometry", "Feature.geometry", "Image.geometry")
def element_geometry(feature: Any, maxError: Any = None, proj: Any = None, geodesics: Any = None) -> Geometry:
    """The geometry of an element (an image's footprint)."""
    return geometry_of_any(feature)


@algorithm("Collection.geometry")
def collection_geometry(collection: Any, maxError: Any = None) -> Geometry:
    """The union of the elements' geometries."""
    return geometry_of_any(collection)


@algorithm("Collection.bounds")
def collection_bounds(collection: Any, maxError: Any = None, proj: Any = None) -> Geometry:
    """Bounding box of the elements."""
    return geometry_bounds(geometry_of_any(collection))


def _utm_zone(geom: Geometry) -> str:
    """The UTM zone (EPSG code) around the centroid of a geometry."""
    centre = Geometry(geom.shape.centroid, geom.crs).to_crs("EPSG:4326")
    lon, lat = centre.x, centre.y
    zone = min(max(int((lon + 180) // 6) + 1, 1), 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _metric(geom: Geometry) -> tuple[shapely.Geometry, str]:
    """The shape in a CRS measured in metres: its own when projected, else the local UTM zone."""
    if crs_of(geom.crs).is_geographic:
        utm = _utm_zone(geom)
        return geom.to_crs(utm), utm
    return geom.shape, geom.crs


@algorithm("Geometry.bounds")
def geometry_bounds(geometry: Any, maxError: Any = None, proj: Any = None) -> Geometry:
    """The bounding box, in the target projection (EPSG:4326 by default)."""
    geom = geometry_of_any(geometry)
    target = _crs(proj) if proj is not None else "EPSG:4326"
    shape = geom.to_crs(target)
    return Geometry(shapely.box(*shape.bounds), target)


@algorithm("Geometry.centroid")
def geometry_centroid(geometry: Any, maxError: Any = None, proj: Any = None) -> Geometry:
    """The centroid (planar, in the geometry's CRS), in ``proj`` or else EPSG:4326."""
    geom = geometry_of_any(geometry)
    target = _crs(proj) if proj is not None else "EPSG:4326"
    centre = Geometry(geom.shape.centroid, geom.crs)
    return Geometry(centre.to_crs(target), target)


@algorithm("Geometry.buffer")
def geometry_buffer(geometry: Any, distance: float, maxError: Any = None, proj: Any = None) -> Geometry:
    """Buffer by ``distance`` metres (in the local UTM zone for lon/lat geometries), or by
    ``distance`` units of ``proj`` when given; the result keeps the geometry's CRS."""
    geom = geometry_of_any(geometry)
    if proj is not None:
        work = _crs(proj)
        shape = geom.to_crs(work)
    else:
        shape, work = _metric(geom)
    buffered = Geometry(shape.buffer(float(distance)), work)
    return Geometry(buffered.to_crs(geom.crs), geom.crs)


@algorithm("Geometry.area")
def geometry_area(geometry: Any, maxError: Any = None, proj: Any = None) -> float:
    """Area in square metres (equal-area projection for lon/lat geometries), or in the square
    units of ``proj`` when given."""
    geom = geometry_of_any(geometry)
    if proj is not None:
        return float(geom.to_crs(_crs(proj)).area)
    if crs_of(geom.crs).is_geographic:
        return float(geom.to_crs("EPSG:6933").area)  # equal-area cylindrical
    return float(geom.shape.area)


def _length(geometry: Any, proj: Any, *, boundary: bool) -> float:
    geom = geometry_of_any(geometry)
    shape = geom.to_crs(_crs(proj)) if proj is not None else _metric(geom)[0]
    if boundary:
        return float(shape.boundary.length) if shape.area > 0 else 0.0
    return 0.0 if shape.area > 0 else float(shape.length)


@algorithm("Geometry.length")
def geometry_length(geometry: Any, maxError: Any = None, proj: Any = None) -> float:
    """Length of the linear parts in metres (0 for polygons), or in units of ``proj``."""
    return _length(geometry, proj, boundary=False)


@algorithm("Geometry.perimeter")
def geometry_perimeter(geometry: Any, maxError: Any = None, proj: Any = None) -> float:
    """Perimeter of the polygonal parts in metres, or in units of ``proj``."""
    return _length(geometry, proj, boundary=True)


def _pair(left: Any, right: Any, proj: Any) -> tuple[shapely.Geometry, shapely.Geometry]:
    crs = _crs(proj) if proj is not None else "EPSG:4326"
    return geometry_of_any(left).to_crs(crs), geometry_of_any(right).to_crs(crs)


def _predicate(name: str, test: Any) -> None:
    def op(left: Any, right: Any, maxError: Any = None, proj: Any = None) -> bool:
        a, b = _pair(left, right, proj)
        return bool(test(a, b))

    op.__doc__ = f"Whether ``left`` {name} ``right``."
    algorithm(f"Geometry.{name}", f"Feature.{name}")(op)


_predicate("intersects", lambda a, b: a.intersects(b))
_predicate("disjoint", lambda a, b: a.disjoint(b))
_predicate("contains", lambda a, b: a.contains(b))
_predicate("containedIn", lambda a, b: b.contains(a))


@algorithm("Geometry.distance", "Feature.distance")
def geometry_distance(left: Any, right: Any, maxError: Any = None, proj: Any = None,
                      spherical: bool = False) -> float:  # fmt: skip
    """Minimum distance in metres (in the UTM zone of ``left``), or in units of ``proj``."""
    a, b = geometry_of_any(left), geometry_of_any(right)
    if proj is not None:
        crs = _crs(proj)
        return float(a.to_crs(crs).distance(b.to_crs(crs)))
    shape, crs = _metric(a)
    return float(shape.distance(b.to_crs(crs)))


@algorithm("Geometry.withinDistance", "Feature.withinDistance")
def geometry_within_distance(left: Any, right: Any, distance: float, maxError: Any = None,
                             proj: Any = None) -> bool:  # fmt: skip
    """Whether the two geometries are within ``distance`` of each other."""
    return geometry_distance(left, right, proj=proj) <= float(distance)


def _setop(name: str) -> None:
    def op(left: Any, right: Any, maxError: Any = None, proj: Any = None) -> Geometry:
        crs = _crs(proj) if proj is not None else "EPSG:4326"
        a, b = _pair(left, right, proj)
        return Geometry(getattr(a, name)(b), crs)

    def feature_op(left: Any, right: Any, maxError: Any = None, proj: Any = None) -> Feature:
        props = left.properties if isinstance(left, Feature) else {}
        return Feature(op(left, right, proj=proj), dict(props))

    algorithm(f"Geometry.{name}")(op)
    algorithm(f"Feature.{name}")(feature_op)


for _name in ("intersection", "union", "difference", "symmetricDifference"):
    _setop(_name)


def _feature_alias(name: str, fn: Any, *, returns_geometry: bool) -> None:
    """``Feature.<name>``: the geometry operation on the feature's geometry."""

    def op(feature: Any, **kwargs: Any) -> Any:
        out = fn(feature, **kwargs)
        if returns_geometry and isinstance(feature, Feature):
            return Feature(out, dict(feature.properties), feature.id)
        return out

    algorithm(f"Feature.{name}")(op)


for _name, _measure in (("area", geometry_area), ("length", geometry_length),
                        ("perimeter", geometry_perimeter)):  # fmt: skip
    _feature_alias(_name, _measure, returns_geometry=False)
_GEOMETRY_OPS: tuple[tuple[str, Any], ...] = (
    ("bounds", geometry_bounds),
    ("centroid", geometry_centroid),
    ("buffer", geometry_buffer),
)
for _name, _op in _GEOMETRY_OPS:
    _feature_alias(_name, _op, returns_geometry=True)


@algorithm("Geometry.transform")
def geometry_transform(geometry: Any, proj: Any = None, maxError: Any = None,
                       geodesic: Any = None) -> Geometry:  # fmt: skip
    """The geometry in another CRS."""
    geom = geometry_of_any(geometry)
    target = _crs(proj)
    return Geometry(geom.to_crs(target), target)


@algorithm("Geometry.coordinates")
def geometry_coordinates(geometry: Any) -> Any:
    """The GeoJSON coordinates."""
    return geometry_of_any(geometry).to_info()["coordinates"]


@algorithm("Geometry.type")
def geometry_type(geometry: Any) -> str:
    """The GeoJSON type."""
    return str(geometry_of_any(geometry).shape.geom_type)


@algorithm("Geometry.projection")
def geometry_projection(geometry: Any) -> Projection:
    """The geometry's projection (scale 1 in its CRS units)."""
    return Projection(geometry_of_any(geometry).crs)


@algorithm("Projection")
def projection_new(crs: Any, transform: list[float] | None = None, transformWkt: Any = None) -> Projection:
    """A projection from a CRS and an optional affine transform."""
    if isinstance(crs, Projection):
        return crs
    crs_of(str(crs))
    return Projection(str(crs), parse_transform(transform))


algorithm("Projection.crs")(lambda projection: projection.crs)
algorithm("Projection.nominalScale")(lambda proj: proj.nominal_scale)
algorithm("Projection.atScale")(lambda projection, meters: projection.at_scale(float(meters)))
algorithm("Projection.wkt")(lambda projection: crs_of(projection.crs).to_wkt())
algorithm("Projection.transform")(lambda projection: str(list(projection.transform)))


@algorithm("Geometry.geometries")
def geometry_geometries(geometry: Geometry) -> list[Geometry]:
    """The parts of a multi-geometry or geometry collection (a single geometry gives itself)."""
    parts = getattr(geometry.shape, "geoms", None)
    shapes = list(parts) if parts is not None else [geometry.shape]
    return [Geometry(s, geometry.crs, geometry.geodesic) for s in shapes]


@algorithm("Geometry.dissolve", "Feature.dissolve")
def geometry_dissolve(geometry: Any, maxError: Any = None, proj: Any = None) -> Any:
    """The union of the geometry's parts (a feature keeps its properties)."""
    if isinstance(geometry, Feature):
        return Feature(geometry_dissolve(geometry_of_any(geometry)), geometry.properties, geometry.id)
    return Geometry(shapely.union_all(list(getattr(geometry.shape, "geoms", [geometry.shape]))),
                    geometry.crs, geometry.geodesic)  # fmt: skip


@algorithm("Feature.setGeometry")
def feature_set_geometry(feature: Feature, geometry: Geometry | None = None) -> Feature:
    """The same feature with another geometry."""
    return Feature(geometry, dict(feature.properties), feature.id)
