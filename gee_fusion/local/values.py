"""Value types of the local engine other than Image (see :mod:`gee_fusion.local.image`).

Numbers, strings, lists and dictionaries are plain Python values; the types here carry
what Earth Engine keeps server-side: dates, geometries, features, collections, filters
and functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np
import shapely
import shapely.geometry
from rasterio.warp import transform_geom

from gee_fusion.local.image import Image


@dataclass(frozen=True)
class Date:
    """An instant, in milliseconds since the Unix epoch (UTC)."""

    millis: float

    def to_info(self) -> dict[str, Any]:
        """Earth Engine's JSON shape of a date."""
        return {"type": "Date", "value": int(self.millis)}


@dataclass(frozen=True)
class DateRange:
    """A half-open interval of time [start, end) in milliseconds."""

    start: float
    end: float

    def contains(self, millis: float) -> bool:
        """Whether ``millis`` lies in [start, end)."""
        return self.start <= millis < self.end

    def to_info(self) -> dict[str, Any]:
        """Earth Engine's JSON shape of a date range."""
        lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        start = lo if self.start == float("-inf") else int(self.start)
        end = hi if self.end == float("inf") else int(self.end)
        return {"type": "DateRange", "dates": [int(start), int(end)]}


@dataclass(frozen=True)
class Geometry:
    """A geometry in a CRS (EPSG:4326 unless said otherwise)."""

    shape: shapely.Geometry
    crs: str = "EPSG:4326"
    geodesic: bool = False

    def to_crs(self, crs: str) -> shapely.Geometry:
        """The shape transformed into ``crs``."""
        if crs == self.crs:
            return self.shape
        mapped = transform_geom(self.crs, crs, shapely.geometry.mapping(self.shape))
        return shapely.geometry.shape(mapped)

    def to_info(self) -> dict[str, Any]:
        """GeoJSON, with a ``crs`` member when not EPSG:4326, as Earth Engine returns it."""
        info = dict(shapely.geometry.mapping(self.shape))
        info = _lists(info)
        if self.crs != "EPSG:4326":
            info["crs"] = {"type": "name", "properties": {"name": self.crs}}
        return info


def _lists(obj: Any) -> Any:
    """Convert the tuples of shapely's GeoJSON mapping into lists (JSON shape)."""
    if isinstance(obj, (tuple, list)):
        return [_lists(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    return obj


@dataclass(frozen=True)
class Feature:
    """A feature: an optional geometry plus properties."""

    geometry: Geometry | None
    properties: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def get(self, name: str) -> Any:
        """A property value (``system:id`` is virtual)."""
        if name == "system:id":
            return self.id
        return self.properties.get(name)

    def with_properties(self, properties: dict[str, Any]) -> Feature:
        """A new feature with other properties."""
        return Feature(self.geometry, properties, self.id)

    def to_info(self) -> dict[str, Any]:
        """Earth Engine's JSON shape of a feature."""
        info: dict[str, Any] = {
            "type": "Feature",
            "geometry": self.geometry.to_info() if self.geometry is not None else None,
        }
        if self.id is not None:
            info["id"] = self.id
        info["properties"] = self.properties
        return info


Element = Image | Feature


@dataclass(frozen=True)
class _Collection:
    """Shared shape of collections: ordered elements, collection properties, an ID."""

    elements: tuple[Any, ...]
    properties: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def with_elements(self, elements: Sequence[Any]) -> Self:
        """Same properties, other elements."""
        return replace(self, elements=tuple(elements))

    def with_properties(self, properties: dict[str, Any]) -> Self:
        """Same elements, other properties."""
        return replace(self, properties=properties)

    def get(self, name: str) -> Any:
        """A collection property (``system:id`` is virtual)."""
        if name == "system:id":
            return self.id
        return self.properties.get(name)

    def _info(self, kind: dict[str, Any]) -> dict[str, Any]:
        info = dict(kind)
        if self.id is not None:
            info["id"] = self.id
        if self.properties:
            info["properties"] = self.properties
        info["features"] = [e.to_info() if hasattr(e, "to_info") else e for e in self.elements]
        return info


@dataclass(frozen=True)
class ImageCollection(_Collection):
    """An ordered collection of images plus collection properties."""

    def to_info(self) -> dict[str, Any]:
        """Earth Engine's JSON shape of ``ImageCollection.getInfo()``."""
        return self._info({"type": "ImageCollection", "bands": []})


@dataclass(frozen=True)
class FeatureCollection(_Collection):
    """An ordered collection of features plus collection properties."""

    def to_info(self) -> dict[str, Any]:
        """Earth Engine's JSON shape of ``FeatureCollection.getInfo()``."""
        return self._info({"type": "FeatureCollection", "columns": {}})


Collection = ImageCollection | FeatureCollection


@dataclass(frozen=True)
class Filter:
    """A predicate over collection elements, and its join form."""

    predicate: Callable[[Any], bool]
    description: str
    pair: Callable[[Any, Any], bool] | None = None
    """Join form (``Join.apply``): ``leftField`` read from the primary element, ``rightField``
    from the secondary one; None for filters that cannot be join conditions."""
    measure: Callable[[Any, Any], float | None] | None = None
    """The join measure of a matching pair (``maxDifference``), if the filter has one."""

    def __call__(self, element: Any) -> bool:
        return bool(self.predicate(element))

    def to_info(self) -> dict[str, Any]:
        """A readable form (Earth Engine returns the filter's serialized description)."""
        return {"type": "Filter", "description": self.description}


class FailedElement:
    """An element whose mapped function failed. Earth Engine evaluates ``map`` lazily, so the error
    surfaces only when the element itself is used (its pixels, properties or info), not when the
    collection is asked for its size or its own properties."""

    def __init__(self, error: Exception) -> None:
        object.__setattr__(self, "_error", error)

    def __getattr__(self, name: str) -> Any:
        raise object.__getattribute__(self, "_error")


class Deferred:
    """An argument evaluated on first use (Earth Engine ignores the ones a function never reads)."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute: Callable[[], Any] | None = compute
        self._value: Any = None

    def get(self) -> Any:
        """The value, computed once."""
        if self._compute is not None:
            self._value, self._compute = self._compute(), None
        return self._value


def resolve(value: Any) -> Any:
    """A :class:`Deferred` argument's value; other values pass through."""
    return value.get() if isinstance(value, Deferred) else value


@dataclass(frozen=True)
class Function:
    """A callable Earth Engine function value (a closure or a parsed expression).

    A ``lazy`` function receives its arguments as :class:`Deferred` values and evaluates only the
    ones it reads (``Image.expression`` variables).
    """

    params: tuple[str, ...]
    call: Callable[[dict[str, Any]], Any]
    name: str = "<function>"
    lazy: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = dict(zip(self.params, args, strict=False))
        bound.update(kwargs)
        return self.call(bound)

    def to_info(self) -> dict[str, Any]:
        """Earth Engine returns functions as their signature."""
        return {"type": "Function", "args": list(self.params), "name": self.name}
