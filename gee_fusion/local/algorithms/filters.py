"""Filter algorithms: property comparisons, date ranges, calendar ranges, geometry, logic."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import shapely
import shapely.prepared

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import comparable
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import DateRange, Feature, Filter, Geometry

Side = tuple[str | None, Any]


def _side(el: Any, field: str | None, value: Any) -> Any:
    if field is None:
        return value
    if field == ".all":
        return el
    if field == ".geo":  # Earth Engine's name for an element's geometry
        return _element_geometry(el)
    return el.get(field)


def _binary(name: str, op: Callable[[Any, Any], bool]) -> Callable[..., Filter]:
    def make(leftField: str | None = None, rightValue: Any = None, rightField: str | None = None,
             leftValue: Any = None) -> Filter:  # fmt: skip
        def pair(left_el: Any, right_el: Any) -> bool:
            left = _side(left_el, leftField, leftValue)
            right = _side(right_el, rightField, rightValue)
            if left is None or right is None:
                return False
            try:
                return bool(op(comparable(left), comparable(right)))
            except TypeError:
                return False

        desc = f"{name}({leftField or leftValue!r}, {rightField or rightValue!r})"
        return Filter(lambda el: pair(el, el), desc, pair=pair)

    return make


def _contains_list(left: Any, right: Any) -> bool:
    return isinstance(left, list) and right in left


def _in_list(left: Any, right: Any) -> bool:
    return isinstance(right, list) and left in right


def _starts(left: Any, right: Any) -> bool:
    return isinstance(left, str) and left.startswith(str(right))


def _ends(left: Any, right: Any) -> bool:
    return isinstance(left, str) and left.endswith(str(right))


def _contains_str(left: Any, right: Any) -> bool:
    return isinstance(left, str) and str(right) in left


def _date_range_contains(left: Any, right: Any) -> bool:
    if not isinstance(left, DateRange):
        raise EngineError("Filter.dateRangeContains: the left value must be a DateRange.")
    return left.contains(float(right))


_OPS: dict[str, tuple[Callable[[Any, Any], bool], tuple[str, ...]]] = {
    "equals": (operator.eq, ("Filter.equals", "Filter.eq")),
    "notEquals": (operator.ne, ("Filter.notEquals", "Filter.neq")),
    "lessThan": (operator.lt, ("Filter.lessThan", "Filter.lt")),
    "lessThanOrEquals": (operator.le, ("Filter.lessThanOrEquals", "Filter.lte")),
    "greaterThan": (operator.gt, ("Filter.greaterThan", "Filter.gt")),
    "greaterThanOrEquals": (operator.ge, ("Filter.greaterThanOrEquals", "Filter.gte")),
    "listContains": (_contains_list, ("Filter.listContains",)),
    "inList": (_in_list, ("Filter.inList",)),
    "stringStartsWith": (_starts, ("Filter.stringStartsWith",)),
    "stringEndsWith": (_ends, ("Filter.stringEndsWith",)),
    "stringContains": (_contains_str, ("Filter.stringContains",)),
    "dateRangeContains": (_date_range_contains, ("Filter.dateRangeContains",)),
}
for _name, (_op, _aliases) in _OPS.items():
    algorithm(*_aliases)(_binary(_name, _op))


def _element_geometry(el: Any) -> Geometry | None:
    if isinstance(el, Geometry):
        return el
    if isinstance(el, Feature):
        return el.geometry
    foot = el.get("system:footprint") if hasattr(el, "get") else None
    if isinstance(foot, Geometry):
        shape = foot.shape
        if isinstance(shape, shapely.LinearRing):
            shape = shapely.Polygon(shape)
        return Geometry(shape, foot.crs)
    return None


def _spatial(name: str, test: Callable[[Any, Any], bool],
             reverse: Callable[[Any, Any], bool] | None = None) -> Callable[..., Filter]:  # fmt: skip
    """A spatial filter: ``test(left, right)`` on the two sides' geometries (footprints for images)
    in longitude/latitude. A constant side is transformed and prepared once, and put first
    (``reverse(right, left)`` equals ``test(left, right)``) so the prepared geometry is used."""

    def make(leftField: str | None = None, rightValue: Any = None, rightField: str | None = None,
             leftValue: Any = None, maxError: Any = None) -> Filter:  # fmt: skip
        def lonlat(value: Any) -> Any:
            geom = _element_geometry(value)
            return None if geom is None else geom.to_crs("EPSG:4326")

        fixed_left = lonlat(leftValue) if leftField is None and leftValue is not None else None
        fixed_right = lonlat(rightValue) if rightField is None and rightValue is not None else None
        for fixed in (fixed_left, fixed_right):
            if fixed is not None:
                shapely.prepare(fixed)

        def pred(el: Any) -> bool:
            left = fixed_left if fixed_left is not None else lonlat(_side(el, leftField, leftValue))
            right = fixed_right if fixed_right is not None else lonlat(_side(el, rightField, rightValue))
            if left is None or right is None:
                return False  # Earth Engine: an image without footprint is unbounded only if set so
            if reverse is not None and fixed_right is not None and fixed_left is None:
                return bool(reverse(right, left))
            return bool(test(left, right))

        return Filter(pred, name)

    return make


algorithm("Filter.intersects")(_spatial("intersects", shapely.intersects, shapely.intersects))
algorithm("Filter.contains")(_spatial("contains", shapely.contains, shapely.within))
algorithm("Filter.isContained")(_spatial("isContained", shapely.within, shapely.contains))
algorithm("Filter.disjoint")(_spatial("disjoint", shapely.disjoint, shapely.disjoint))


@algorithm("Filter.withinDistance")
def filter_within_distance(distance: float, leftField: str | None = None, rightValue: Any = None,
                           rightField: str | None = None, leftValue: Any = None,
                           maxError: Any = None) -> Filter:  # fmt: skip
    """Elements whose geometry lies within ``distance`` metres of the other side's geometry."""
    from gee_fusion.local.algorithms.geometry import geometry_within_distance

    def test(a: Any, b: Any) -> bool:
        return geometry_within_distance(Geometry(a), Geometry(b), float(distance))

    return _spatial("withinDistance", test)(leftField, rightValue, rightField, leftValue, maxError)


def _join_form(filters: list[Filter], quantifier: Callable[[Any], bool]) -> dict[str, Any]:
    """``pair`` and ``measure`` of and/or: the measure of the first matching part that has one."""
    if any(f.pair is None for f in filters):
        return {}
    pairs = [(f.pair, f.measure) for f in filters if f.pair is not None]

    def pair(p: Any, s: Any) -> bool:
        return quantifier(test(p, s) for test, _ in pairs)

    if all(m is None for _, m in pairs):
        return {"pair": pair}

    def measure(p: Any, s: Any) -> float | None:
        for test, m in pairs:
            if m is not None and test(p, s):
                return m(p, s)
        return None

    return {"pair": pair, "measure": measure}


@algorithm("Filter.and")
def filter_and(filters: list[Filter]) -> Filter:
    """All filters hold."""
    return Filter(lambda el: all(f(el) for f in filters), "and", **_join_form(filters, all))


@algorithm("Filter.or")
def filter_or(filters: list[Filter]) -> Filter:
    """Any filter holds."""
    return Filter(lambda el: any(f(el) for f in filters), "or", **_join_form(filters, any))


@algorithm("Filter.not")
def filter_not(filter: Filter) -> Filter:
    """The filter does not hold."""
    inner = filter.pair
    pair = None if inner is None else (lambda p, s: not inner(p, s))
    return Filter(lambda el: not filter(el), "not", pair=pair)


@algorithm("Filter.always")
def filter_always() -> Filter:
    """Every element passes."""
    return Filter(lambda el: True, "always", pair=lambda p, s: True)


@algorithm("Filter.never")
def filter_never() -> Filter:
    """No element passes."""
    return Filter(lambda el: False, "never", pair=lambda p, s: False)


@algorithm("Filter.notNull")
def filter_not_null(properties: list[str]) -> Filter:
    """All listed properties are present and non-null."""
    return Filter(lambda el: all(el.get(p) is not None for p in properties), "notNull")


_CAL = {
    "year": lambda d: d.year, "month": lambda d: d.month, "week": lambda d: d.isocalendar()[1],
    "day_of_year": lambda d: d.timetuple().tm_yday, "day_of_month": lambda d: d.day,
    "day_of_week": lambda d: d.isoweekday(), "hour": lambda d: d.hour, "minute": lambda d: d.minute,
    "second": lambda d: d.second,
}  # fmt: skip


@algorithm("Filter.calendarRange")
def filter_calendar_range(start: int, end: int | None = None, field: str = "day_of_year") -> Filter:
    """Images whose ``system:time_start`` falls in a calendar range (inclusive, wraps; UTC).

    ``month``, ``day_of_year``, ``day_of_month`` and ``day_of_week`` are 1-based, weeks begin
    on Monday as day 1 (Earth Engine's definition).
    """
    if field not in _CAL:
        raise EngineError(f"Filter.calendarRange: field must be one of {sorted(_CAL)}, got {field!r}.")
    end = start if end is None else end
    get = _CAL[field]

    def pred(el: Any) -> bool:
        t = el.get("system:time_start")
        if t is None:
            return False
        v = get(datetime.fromtimestamp(float(t) / 1000, tz=UTC))
        return start <= v <= end if start <= end else (v >= start or v <= end)

    return Filter(pred, f"calendarRange({start}, {end}, {field})")


@algorithm("Filter.rangeContains")
def filter_range_contains(field: str, minValue: Any, maxValue: Any) -> Filter:
    """``minValue <= property <= maxValue``."""

    def pred(el: Any) -> bool:
        v = el.get(field)
        return v is not None and comparable(minValue) <= comparable(v) <= comparable(maxValue)

    return Filter(pred, f"rangeContains({field})")


@algorithm("Filter.expression")
def filter_expression(expression: str) -> Filter:  # pragma: no cover - rare
    """Not supported: Earth Engine's filter expression language."""
    raise EngineError("Filter.expression is not supported by the local engine yet: "
                      f"rewrite {expression!r} with ee.Filter.eq/lt/gt/and.")  # fmt: skip
