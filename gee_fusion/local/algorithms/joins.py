"""Joins: Join.simple/inverted/inner/saveFirst/saveAll/saveBest and Join.apply, the join
measure filter Filter.maxDifference, and Image.linkCollection.

A join condition is a filter evaluated on a (primary, secondary) pair: ``leftField`` is read
from the primary element and ``rightField`` from the secondary one (``leftValue`` and
``rightValue`` are constants), as in Earth Engine. ``Filter.maxDifference`` also yields a
join *measure* (``|left - right|``), which ``measureKey`` stores and ``Join.saveBest``
minimises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import comparable
from gee_fusion.local.algorithms.image_mask import inside_native
from gee_fusion.local.image import Band, FuncNode, GridFuncNode, Image, PixelContext, Pixels
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Feature, FeatureCollection, Filter, ImageCollection

AnyCollection = ImageCollection | FeatureCollection
PairTest = Callable[[Any, Any], bool]
PairMeasure = Callable[[Any, Any], float | None]
Match = tuple[int, Any, float | None]
"""A match: position in the secondary collection, the element, the join measure (or None)."""


@dataclass(frozen=True)
class Join:
    """A join: how matches are turned into results (the condition comes with Join.apply)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_info(self) -> dict[str, Any]:
        """A readable form of the join."""
        return {"type": "Join", "kind": self.kind, **{k: v for k, v in self.params.items() if v is not None}}


# -- join conditions --------------------------------------------------------------------------


def _side(element: Any, selector: str | None, value: Any) -> Any:
    if selector is None:
        return value
    if selector == ".all":
        return element
    return element.get(selector)


def _numbers(left: Any, right: Any) -> tuple[float, float] | None:
    left, right = comparable(left), comparable(right)
    ok = (int, float, np.integer, np.floating)
    if any(isinstance(v, bool) or not isinstance(v, ok) for v in (left, right)):
        return None
    return float(left), float(right)


@algorithm("Filter.maxDifference")
def filter_max_difference(difference: float, leftField: str | None = None, rightValue: Any = None,
                          rightField: str | None = None, leftValue: Any = None) -> Filter:  # fmt: skip
    """Passes if the two numbers (dates: milliseconds) differ by at most ``difference``.

    As a join condition the difference ``|left - right|`` is the join measure.
    """
    limit = float(difference)

    def measure(primary: Any, secondary: Any) -> float | None:
        nums = _numbers(_side(primary, leftField, leftValue), _side(secondary, rightField, rightValue))
        if nums is None:
            return None
        diff = abs(nums[0] - nums[1])
        return diff if diff <= limit else None

    desc = f"maxDifference({limit:g}, {leftField or leftValue!r}, {rightField or rightValue!r})"
    return Filter(
        lambda el: measure(el, el) is not None, desc,
        pair=lambda p, s: measure(p, s) is not None, measure=measure,
    )  # fmt: skip


def join_condition(condition: Filter) -> tuple[PairTest, PairMeasure | None]:
    """The pair predicate and join measure of a join condition, or an error naming it."""
    if condition.pair is None:
        raise EngineError(
            f"Join.apply: the local engine cannot use the filter '{condition.description}' as a join "
            "condition; use ee.Filter.equals/lessThan/greaterThan/maxDifference/... with leftField "
            "and rightField, combined with ee.Filter.And/Or/Not."
        )
    return condition.pair, condition.measure


# -- joins ------------------------------------------------------------------------------------


@algorithm("Join.simple")
def join_simple() -> Join:
    """The primary elements that match any secondary element."""
    return Join("simple")


@algorithm("Join.inverted")
def join_inverted() -> Join:
    """The primary elements that match no secondary element."""
    return Join("inverted")


@algorithm("Join.inner")
def join_inner(primaryKey: str = "primary", secondaryKey: str = "secondary",
               measureKey: str | None = None) -> Join:  # fmt: skip
    """One feature per matching pair, with the two elements as properties."""
    return Join("inner", {"primaryKey": primaryKey, "secondaryKey": secondaryKey, "measureKey": measureKey})


@algorithm("Join.saveFirst")
def join_save_first(matchKey: str, ordering: str | None = None, ascending: bool = True,
                    measureKey: str | None = None, outer: bool = False) -> Join:  # fmt: skip
    """Each primary element with its first match (after ordering) as property ``matchKey``."""
    return Join("saveFirst", {"matchKey": matchKey, "ordering": ordering, "ascending": bool(ascending),
                              "measureKey": measureKey, "outer": bool(outer)})  # fmt: skip


@algorithm("Join.saveAll")
def join_save_all(matchesKey: str, ordering: str | None = None, ascending: bool = True,
                  measureKey: str | None = None, outer: bool = False) -> Join:  # fmt: skip
    """Each primary element with the list of its matches as property ``matchesKey``."""
    return Join("saveAll", {"matchesKey": matchesKey, "ordering": ordering, "ascending": bool(ascending),
                            "measureKey": measureKey, "outer": bool(outer)})  # fmt: skip


@algorithm("Join.saveBest")
def join_save_best(matchKey: str, measureKey: str, outer: bool = False) -> Join:
    """Each primary element with its match of smallest join measure as property ``matchKey``."""
    return Join("saveBest", {"matchKey": matchKey, "measureKey": measureKey, "outer": bool(outer)})


def _index(element: Any, position: int) -> str:
    if isinstance(element, Feature) and element.id is not None:
        return element.id
    index = element.get("system:index") if hasattr(element, "get") else None
    return str(position) if index is None else str(index)


def _set(element: Any, updates: dict[str, Any]) -> Any:
    return element.with_properties({**element.properties, **updates})


def _ordered(matches: list[Match], ordering: str | None, ascending: bool) -> list[Match]:
    """Stable sort on a property; elements without it go last in either direction."""
    if ordering is None:
        return matches
    present = [m for m in matches if m[1].get(ordering) is not None]
    missing = [m for m in matches if m[1].get(ordering) is None]
    present.sort(key=lambda m: comparable(m[1].get(ordering)), reverse=not ascending)
    return present + missing


def _with_measure(element: Any, key: str | None, measure: float | None) -> Any:
    return element if key is None or measure is None else _set(element, {key: measure})


@algorithm("Join.apply")
def join_apply(join: Join, primary: AnyCollection, secondary: AnyCollection,
               condition: Filter) -> AnyCollection:  # fmt: skip
    """Join two collections on a condition (see the module docstring for its evaluation).

    Results keep the primary collection's type and properties, except ``Join.inner``, which
    gives features without geometry.
    """
    if not isinstance(join, Join):
        raise EngineError(f"Join.apply: expected a Join, got {type(join).__name__}.")
    for what, coll in (("primary", primary), ("secondary", secondary)):
        if not isinstance(coll, (ImageCollection, FeatureCollection)):
            raise EngineError(f"Join.apply: the {what} must be a collection, got {type(coll).__name__}.")
    if not isinstance(condition, Filter):
        raise EngineError(f"Join.apply: the condition must be a Filter, got {type(condition).__name__}.")
    test, measure = join_condition(condition)
    p = join.params
    if join.kind == "saveBest" and measure is None:
        raise EngineError(
            f"Join.saveBest needs a condition with a join measure (ee.Filter.maxDifference); "
            f"'{condition.description}' has none."
        )

    def matches_of(element: Any) -> list[Match]:
        return [
            (j, other, measure(element, other) if measure is not None else None)
            for j, other in enumerate(secondary.elements)
            if test(element, other)
        ]

    out: list[Any] = []
    for i, element in enumerate(primary.elements):
        matches = matches_of(element)
        if join.kind == "simple":
            if matches:
                out.append(element)
        elif join.kind == "inverted":
            if not matches:
                out.append(element)
        elif join.kind == "inner":
            base = _index(element, i)
            for j, other, m in matches:
                props: dict[str, Any] = {p["primaryKey"]: element, p["secondaryKey"]: other}
                if p["measureKey"] is not None and m is not None:
                    props[p["measureKey"]] = m
                out.append(Feature(None, props, f"{base}_{_index(other, j)}"))
        elif join.kind == "saveAll":
            if not matches and not p["outer"]:
                continue
            ordered = _ordered(matches, p["ordering"], p["ascending"])
            saved = [_with_measure(o, p["measureKey"], m) for _, o, m in ordered]
            out.append(_set(element, {p["matchesKey"]: saved}))
        elif join.kind in ("saveFirst", "saveBest"):
            if not matches:
                if p["outer"]:
                    out.append(element)
                continue
            if join.kind == "saveFirst":
                _, best, m = _ordered(matches, p["ordering"], p["ascending"])[0]
            else:  # the smallest measure; the first such match on ties
                _, best, m = min(matches, key=lambda jom: float("inf") if jom[2] is None else jom[2])
            out.append(_set(element, {p["matchKey"]: _with_measure(best, p["measureKey"], m)}))
        else:  # pragma: no cover - Join values are built only by the algorithms above
            raise EngineError(f"Join.apply: unknown join kind {join.kind!r}.")
    if join.kind == "inner":
        return FeatureCollection(tuple(out))
    return primary.with_elements(out)


# -- Image.linkCollection ---------------------------------------------------------------------


def _names(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


_NOTHING = GridFuncNode(lambda ctx, grid: (np.zeros(grid.shape, np.float32), np.zeros(grid.shape, bool)))


def _masked_band(like: Band) -> Band:
    dtype = like.dtype

    def fn(ctx: PixelContext, grid: PixelGrid) -> Pixels:
        return np.zeros(grid.shape, dtype=dtype), np.zeros(grid.shape, dtype=bool)

    return Band(like.name, dtype, GridFuncNode(fn), like.projection, like.dimensions, like.value_range)


def _in_footprint(band: Band, footprint_of: Band | None) -> Band:
    """The band masked outside the native extent of ``footprint_of`` (the source image)."""
    if footprint_of is None or footprint_of.dimensions is None:
        return band
    proj, dims = footprint_of.projection, footprint_of.dimensions
    foot = GridFuncNode(lambda ctx, grid: (np.zeros(grid.shape, np.uint8), inside_native(proj, dims, grid)))

    def fn(px: Pixels, fpx: Pixels) -> Pixels:
        return px[0], px[1] & fpx[1]

    return Band(band.name, band.dtype, FuncNode(fn, [band.node, foot]), band.projection, band.dimensions,
                band.value_range)  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    return a is not None and b is not None and comparable(a) == comparable(b)


@algorithm("Image.linkCollection")
def image_link_collection(input: Image, imageCollection: ImageCollection, linkedBands: Any = None,
                          linkedProperties: Any = None,
                          matchPropertyName: str = "system:index") -> Image:  # fmt: skip
    """Add bands and properties of the collection image whose ``matchPropertyName`` equals the input's.

    As Earth Engine documents: only the bands and properties named are linked (none when
    null); existing ones are overwritten in place, new ones appended; without a match the
    linked bands are fully masked (typed after the collection's first image, float32 if it
    has none) and the linked properties null (left out). Linked bands are masked outside
    the input's footprint. When several images match, the first is taken.
    """
    if not isinstance(input, Image):
        raise EngineError(f"Image.linkCollection: expected an image, got {type(input).__name__}.")
    if not isinstance(imageCollection, ImageCollection):
        raise EngineError("Image.linkCollection: imageCollection must be an ImageCollection.")
    key = input.get(matchPropertyName)
    match = next((img for img in imageCollection.elements if _same(img.get(matchPropertyName), key)), None)
    band_names, prop_names = _names(linkedBands) or [], _names(linkedProperties) or []
    first = imageCollection.elements[0] if imageCollection.elements else None
    template = match if match is not None else first
    footprint_of = input.bands[0] if input.bands else None
    linked: list[Band] = []
    for name in band_names:
        source = next((b for b in template.bands if b.name == name), None) if template is not None else None
        if match is not None and source is None:
            raise EngineError(
                f"Image.linkCollection: the matching image has no band '{name}' (bands: {match.band_names})."
            )
        if match is not None and source is not None:
            band = source
        else:  # no match
            band = _masked_band(source if source is not None else Band(name, np.dtype(np.float32), _NOTHING))
        linked.append(_in_footprint(band, footprint_of))
    by_name = {b.name: b for b in linked}
    bands = [by_name.pop(b.name, b) for b in input.bands] + list(by_name.values())
    props = dict(input.properties)
    for name in prop_names:
        value = match.get(name) if match is not None else None
        if value is None:
            props.pop(name, None)
        else:
            props[name] = value
    return Image(tuple(bands), props, input.id, input.version)
