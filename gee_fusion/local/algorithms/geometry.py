"""Geometry constructors and operations, Feature, Projection, and the ``geometry`` of
elements and collections. Planar operations in the geometry's CRS (see docs/local_engine.md)."""

from __future__ import annotations

from typing import Any

import shapely
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


def _make(kind: str, coordinates: Any, crs: Any = None) -> Geometry:
    try:
        shape = shapely.geometry.shape({"type": kind, "coordinates": coordinates})
    except (ValueError, TypeError, IndexError) as exc:
        raise EngineError(f"Invalid {kind} coordinates: {exc}.") from exc
    if not shape.is_valid and kind in ("Polygon", "MultiPolygon"):
        raise EngineError(f"Invalid {kind}: {shapely.is_valid_reason(shape)}.")
    return Geometry(shape, _crs(crs))


for _kind in ("Point", "MultiPoint", "LineString", "MultiLineString", "LinearRing", "Polygon", "MultiPolygon"):
    def _ctor(coordinates: Any, crs: Any = None, geodesic: Any = None, maxError: Any = None,
              evenOdd: Any = None, _k: str = _kind) -> Geometry:  # fmt: skip
        return _make(_k, coordinates, crs)

    algorithm(f"GeometryConstructors.{_kind}")(_ctor)


@algorithm("GeometryConstructors.Rectangle")
def geom_rectangle(coordinates: Any, crs: Any = None, geodesic: Any = None, evenOdd: Any = None) -> Geometry:
    """A rectangle from [[x0, y0], [x1, y1]] or [x0, y0, x1, y1]."""
    flat = list(shapely.geometry.MultiPoint(coordinates).bounds) if isinstance(coordinates[0], list) else coordinates
    x0, y0, x1, y1 = (float(v) for v in flat)
    if x1 < x0 or y1 < y0:
        raise EngineError("Rectangle: the first corner must be the lower-left one.")
    return Geometry(shapely.box(x0, y0, x1, y1), _crs(crs))


@algorithm("GeometryConstructors.BBox")
def geom_bbox(west: float, south: float, east: float, north: float) -> Geometry:
    """A lon/lat box."""
    return Geometry(shapely.box(west, south, east, north))


@algorithm("GeometryConstructors.MultiGeometry")
def geom_multi(geometries: list[Geometry], crs: Any = None, geodesic: Any = None, maxError: Any = None) -> Geometry:
    """A geometry collection."""
    target = _crs(crs)
    return Geometry(shapely.GeometryCollection([g.to_crs(target) for g in geometries]), target)


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
        return Geometry(shapely.box(-180, -90, 180, 90))
    if isinstance(value, (FeatureCollection, ImageCollection)):
        shapes = [geometry_of_any(e).to_crs("EPSG:4326") for e in value.elements]
        return Geometry(shapely.union_all(shapes) if shapes else shapely.GeometryCollection())
    raise EngineError(f"Expected a geometry, got {type(value).__name__}.")


@algorithm("Feature")
def feature_new(geometry: Any = None, metadata: dict[str, Any] | None = None, geometryKey: Any = None) -> Feature:
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


@algorithm("Geometry.bounds")
def geometry_bounds(geometry: Any, maxError: Any = None, proj: Any = None) -> Geometry:
    """The bounding box, in the target projection (EPSG:4326 by default)."""
    geom = geometry_of_any(geometry)
    target = _crs(proj) if proj is not None else "EPSG:4326"
    shape = geom.to_crs(target)
    return Geometry(shapely.box(*shape.bounds), target)


@algorithm("Geometry.centroid")
def geometry_centroid(geometry: Any, maxError: Any = None, proj: Any = None) -> Geometry:
    """The centroid."""
    geom = geometry_of_any(geometry)
    return Geometry(geom.shape.centroid, geom.crs)


@algorithm("Geometry.buffer")
def geometry_buffer(geometry: Any, distance: float, maxError: Any = None, proj: Any = None) -> Geometry:
    """Buffer by ``distance`` metres (via the local UTM zone for lon/lat geometries)."""
    geom = geometry_of_any(geometry)
    if crs_of(geom.crs).is_geographic:
        lon, lat = geom.shape.centroid.x, geom.shape.centroid.y
        utm = f"EPSG:{32600 + int((lon + 180) // 6) + 1 if lat >= 0 else 32700 + int((lon + 180) // 6) + 1}"
        buffered = Geometry(geom.to_crs(utm).buffer(float(distance)), utm)
        return Geometry(buffered.to_crs(geom.crs), geom.crs)
    return Geometry(geom.shape.buffer(float(distance)), geom.crs)


@algorithm("Geometry.area")
def geometry_area(geometry: Any, maxError: Any = None, proj: Any = None) -> float:
    """Area in square metres (geodesic for lon/lat geometries)."""
    geom = geometry_of_any(geometry)
    if crs_of(geom.crs).is_geographic:
        return float(geom.to_crs("EPSG:6933").area)  # equal-area cylindrical
    return float(geom.shape.area)


@algorithm("Geometry.intersects", "Feature.intersects")
def geometry_intersects(left: Any, right: Any, maxError: Any = None, proj: Any = None) -> bool:
    """Whether two geometries intersect."""
    a, b = geometry_of_any(left), geometry_of_any(right)
    return bool(a.to_crs("EPSG:4326").intersects(b.to_crs("EPSG:4326")))


def _setop(name: str) -> None:
    def op(left: Any, right: Any, maxError: Any = None, proj: Any = None) -> Geometry:
        a, b = geometry_of_any(left), geometry_of_any(right)
        return Geometry(getattr(a.to_crs("EPSG:4326"), name)(b.to_crs("EPSG:4326")))

    algorithm(f"Geometry.{name}")(op)


for _name in ("intersection", "union", "difference", "symmetricDifference"):
    _setop(_name)


@algorithm("Geometry.transform")
def geometry_transform(geometry: Any, proj: Any = None, maxError: Any = None, geodesic: Any = None) -> Geometry:
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
