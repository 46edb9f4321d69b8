"""Collection algorithms (shared by ImageCollection and FeatureCollection) and the image
collection reductions: reduce, reduce.*, mosaic, qualityMosaic, toBands."""

from __future__ import annotations

from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms.reducers import Reducer, median_of_filled, reducer_median
from gee_fusion.local.catalog import CATALOG
from gee_fusion.local.image import Band, Image, PixelContext, PixelNode, Pixels
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import (
    FailedElement,
    Feature,
    FeatureCollection,
    Filter,
    Function,
    ImageCollection,
)

AnyCollection = ImageCollection | FeatureCollection


def _collection_of(elements: list[Any], like: AnyCollection | None = None) -> AnyCollection:
    made = [e for e in elements if not isinstance(e, FailedElement)]  # failed ones do not set the type
    images = all(isinstance(e, Image) for e in made)
    if (made and images) or (not made and isinstance(like, ImageCollection)):
        base = like if isinstance(like, ImageCollection) else ImageCollection(())
        return base.with_elements(elements)
    base_fc = like if isinstance(like, FeatureCollection) else FeatureCollection(())
    return FeatureCollection(tuple(elements), base_fc.properties, base_fc.id)


def _check(collection: Any, where: str) -> AnyCollection:
    if not isinstance(collection, (ImageCollection, FeatureCollection)):
        raise EngineError(f"{where}: expected a collection, got {type(collection).__name__}.")
    return collection


@algorithm("ImageCollection.load")
def ic_load(id: str, version: int | None = None) -> ImageCollection:
    """Load an image collection from the local catalog."""
    return CATALOG.load_collection(id)


@algorithm("Collection.loadTable")
def coll_load_table(tableId: str, geometryColumn: Any = None, version: Any = None) -> FeatureCollection:
    """Load a table (a FeatureCollection asset) from the local catalog."""
    return CATALOG.load_table(tableId)


@algorithm("Collection.flatten")
def coll_flatten(collection: AnyCollection) -> FeatureCollection:
    """A collection of collections as one collection of their elements (in order)."""
    coll = _check(collection, "Collection.flatten")
    out: list[Any] = []
    for element in coll.elements:
        if not isinstance(element, (FeatureCollection, ImageCollection)):
            raise EngineError(
                f"Collection.flatten: the elements must be collections, got {type(element).__name__}."
            )
        out.extend(element.elements)
    return FeatureCollection(tuple(out))


@algorithm("ImageCollection.fromImages")
def ic_from_images(images: list[Any]) -> ImageCollection:
    """An image collection from a list of images."""
    bad = [type(i).__name__ for i in images if not isinstance(i, Image)]
    if bad:
        raise EngineError(f"ImageCollection.fromImages: expected images, got {bad[0]}.")
    return ImageCollection(tuple(images))


@algorithm("FeatureCollection", "Collection")
def fc_new(features: Any) -> FeatureCollection:
    """A feature collection from a list of features or geometries (IDs "0", "1", ... if unset), or
    of collections (to be flattened with ``Collection.flatten``)."""
    from gee_fusion.local.values import Geometry

    items = features if isinstance(features, list) else [features]
    out: list[Any] = []
    for i, f in enumerate(items):
        if isinstance(f, Geometry):
            f = Feature(f)
        if isinstance(f, (FeatureCollection, ImageCollection)):  # a collection of collections (flatten)
            out.append(f)
            continue
        if not isinstance(f, Feature):
            raise EngineError(f"FeatureCollection: expected features or geometries, got {type(f).__name__}.")
        out.append(f if f.id is not None else Feature(f.geometry, f.properties, str(i)))
    return FeatureCollection(tuple(out))


@algorithm("Collection.filter")
def coll_filter(collection: AnyCollection, filter: Filter) -> AnyCollection:
    """Keep the elements for which the filter holds."""
    coll = _check(collection, "Collection.filter")
    return coll.with_elements([e for e in coll.elements if filter(e)])


@algorithm("Collection.map")
def coll_map(collection: AnyCollection, baseAlgorithm: Function, dropNulls: bool = False) -> AnyCollection:
    """Apply a function to every element (closures see their outer variables)."""
    coll = _check(collection, "Collection.map")
    out = []
    for element in coll.elements:
        try:
            res = baseAlgorithm(element)
        except EngineError as exc:  # raised when the element is used, as Earth Engine's lazy map does
            out.append(FailedElement(exc))
            continue
        if res is None:
            if dropNulls:
                continue
            raise EngineError("Collection.map: the mapped function returned null; use dropNulls.")
        if not isinstance(res, (Image, Feature)):
            raise EngineError(
                f"Collection.map: the mapped function must return an element (Image or "
                f"Feature), got {type(res).__name__}."
            )
        out.append(_keep_index(res, element))
    return _collection_of(out, coll)


def _index_of(element: Any) -> str | None:
    if isinstance(element, Feature):
        return element.id if element.id is not None else element.get("system:index")
    return element.get("system:index") if isinstance(element, Image) else None


def _with_index(element: Any, index: str) -> Any:
    if isinstance(element, Feature):
        return Feature(element.geometry, element.properties, index)
    return element.with_properties({**element.properties, "system:index": index})


def _keep_index(result: Any, source: Any) -> Any:
    """Earth Engine keeps an element's ``system:index`` through ``map``."""
    index = _index_of(source)
    if index is None or _index_of(result) is not None:
        return result
    return _with_index(result, index)


@algorithm("Collection.size")
def coll_size(collection: AnyCollection) -> int:
    """Number of elements."""
    return len(_check(collection, "Collection.size").elements)


@algorithm("Collection.first")
def coll_first(collection: AnyCollection) -> Any:
    """The first element, or null for an empty collection."""
    coll = _check(collection, "Collection.first")
    return coll.elements[0] if coll.elements else None


@algorithm("Collection.toList")
def coll_to_list(collection: AnyCollection, count: int, offset: int = 0) -> list[Any]:
    """Up to ``count`` elements starting at ``offset``."""
    coll = _check(collection, "Collection.toList")
    start = int(offset)
    return list(coll.elements[start : start + int(count)])


def _sort_key(value: Any) -> tuple[int, Any]:
    from gee_fusion.local.algorithms._common import comparable

    return (1, 0) if value is None else (0, comparable(value))


@algorithm("Collection.limit")
def coll_limit(collection: AnyCollection, limit: int | None = None, key: str | None = None,
               ascending: bool = True) -> AnyCollection:  # fmt: skip
    """Sort by ``key`` (nulls last) and/or keep the first ``limit`` elements."""
    coll = _check(collection, "Collection.limit")
    elements = list(coll.elements)
    if key is not None:
        present = [e for e in elements if e.get(key) is not None]
        missing = [e for e in elements if e.get(key) is None]
        present.sort(key=lambda e: _sort_key(e.get(key)), reverse=not ascending)
        elements = present + missing
    if limit is not None:
        elements = elements[: max(int(limit), 0)]
    return coll.with_elements(elements)


@algorithm("Collection.merge", "ImageCollection.merge")
def coll_merge(collection1: AnyCollection, collection2: AnyCollection) -> AnyCollection:
    """Elements of both collections; their IDs get the prefixes ``1_`` and ``2_``."""
    out = []
    for prefix, coll in (("1_", collection1), ("2_", collection2)):
        for i, element in enumerate(_check(coll, "Collection.merge").elements):
            index = _index_of(element)
            out.append(_with_index(element, prefix + (str(i) if index is None else index)))
    return _collection_of(out, collection1)


@algorithm("Collection.iterate")
def coll_iterate(collection: AnyCollection, function: Function, first: Any = None) -> Any:
    """Fold: ``acc = function(element, acc)`` over the elements, starting from ``first``."""
    acc = first
    for element in _check(collection, "Collection.iterate").elements:
        acc = function(element, acc)
    return acc


@algorithm("Collection.reduceColumns")
def coll_reduce_columns(collection: AnyCollection, reducer: Reducer, selectors: list[str],
                        weightSelectors: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Reduce element properties (one column per selector)."""
    coll = _check(collection, "Collection.reduceColumns")
    if weightSelectors:
        return _weighted_columns(coll, reducer, selectors, weightSelectors)
    if reducer.inputs != len(selectors):
        raise EngineError(
            f"Collection.reduceColumns: the reducer takes {reducer.inputs} inputs but "
            f"{len(selectors)} selectors were given."
        )
    rows = [[e.get(s) for s in selectors] for e in coll.elements]
    if reducer.kind not in ("repeat", "toList", "countEvery"):
        rows = [r for r in rows if all(v is not None for v in r)]
    columns = [[r[i] for r in rows] for i in range(len(selectors))]
    return reducer.reduce_columns(columns)


def _weighted_columns(coll: AnyCollection, reducer: Reducer, selectors: list[str],
                      weights: list[str]) -> dict[str, Any]:  # fmt: skip
    """Weighted mean, sum, variance or standard deviation of one property."""
    kinds = ("mean", "sum", "variance", "stdDev")
    if reducer.kind not in kinds or len(selectors) != 1 or len(weights) != 1:
        raise EngineError(
            f"Collection.reduceColumns: weightSelectors are supported locally only for one "
            f"selector with Reducer.{', Reducer.'.join(kinds)}; got Reducer.{reducer.kind}."
        )
    pairs = [(e.get(selectors[0]), e.get(weights[0])) for e in coll.elements]
    pairs = [(float(v), float(w)) for v, w in pairs if v is not None and w is not None]
    x = np.asarray([v for v, _ in pairs], dtype=np.float64)
    w = np.asarray([w for _, w in pairs], dtype=np.float64)
    name = reducer.outputs[0]
    if reducer.kind == "sum":
        return {name: float((x * w).sum())}
    if not len(x) or w.sum() == 0:
        return {name: None}
    mean = float((x * w).sum() / w.sum())
    if reducer.kind == "mean":
        return {name: mean}
    var = float((w * (x - mean) ** 2).sum() / w.sum())
    return {name: var if reducer.kind == "variance" else float(np.sqrt(var))}


@algorithm("Collection.distinct")
def coll_distinct(collection: AnyCollection, properties: Any) -> AnyCollection:
    """The first element of each distinct combination of the given properties' values."""
    coll = _check(collection, "Collection.distinct")
    names = [properties] if isinstance(properties, str) else list(properties)
    seen: set[str] = set()
    out = []
    for element in coll.elements:
        key = repr([_distinct_key(element.get(n)) for n in names])
        if key not in seen:
            seen.add(key)
            out.append(element)
    return coll.with_elements(out)


def _distinct_key(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.to_info() if hasattr(value, "to_info") else value


@algorithm("Collection.aggregate_array")
def coll_aggregate_array(collection: AnyCollection, property: str) -> list[Any]:
    """Values of one property (non-null) across the collection (``AggregateFeatureCollection.*``
    live in ``aggregates.py``)."""
    coll = _check(collection, "aggregate_array")
    return [e.get(property) for e in coll.elements if e.get(property) is not None]


# -- per-pixel reductions of image collections ----------------------------------------------


class StackReduceNode(PixelNode):
    """Stacks one band of every image in the request grid and reduces it; output ``index``."""

    def __init__(self, shared: PixelNode, index: int) -> None:
        self.shared = shared
        self.index = index

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        return ctx.pixels(self.shared, grid)[self.index]  # type: ignore[return-value]

    def children(self) -> tuple[PixelNode, ...]:
        return (self.shared,)


class SharedStack(PixelNode):
    """Computes every output of a reducer at once (memoised in the context as one entry)."""

    footprint_rule = "union"  # a reduction over the collection's images

    def __init__(self, nodes: list[PixelNode], reducer: Reducer, dtype: np.dtype) -> None:
        self.nodes = nodes
        self.reducer = reducer
        self.dtype = dtype

    def children(self) -> tuple[PixelNode, ...]:
        return tuple(self.nodes)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Any:
        if self.reducer.kind == "median" and self.dtype.kind == "f":
            return [self._median(ctx, grid)]
        values = np.empty((len(self.nodes), *grid.shape), dtype=self.dtype)
        valid = np.empty((len(self.nodes), *grid.shape), dtype=bool)
        for i, node in enumerate(self.nodes):
            v, m = ctx.pixels(node, grid)
            values[i] = v
            valid[i] = m
        if values.dtype.kind == "f":
            valid &= ~np.isnan(values)
        return self.reducer.reduce_stack(values, valid)

    def _median(self, ctx: PixelContext, grid: PixelGrid) -> tuple[np.ndarray, np.ndarray]:
        """The median stacks masked pixels as NaN directly (one pass, no separate validity stack)."""
        work = np.empty((len(self.nodes), *grid.shape), dtype=self.dtype)
        absent = np.asarray(np.nan, dtype=self.dtype)
        for i, node in enumerate(self.nodes):
            v, m = ctx.pixels(node, grid)
            work[i] = np.where(m, v, absent)
        return median_of_filled(work, self.reducer.output_dtypes(self.dtype)[0])


def _band_stacks(collection: ImageCollection, where: str) -> list[tuple[str, list[Band]]]:
    images = collection.elements
    if not images:
        return []
    names = images[0].band_names
    stacks = []
    for name in names:
        members = []
        for img in images:
            match = [b for b in img.bands if b.name == name]
            if not match:
                raise EngineError(
                    f"{where}: image '{img.id or img.get('system:index')}' has no band '{name}'; "
                    "all images of a reduced collection need the same bands."
                )
            members.append(match[0])
        stacks.append((name, members))
    return stacks


def reduce_collection(collection: ImageCollection, reducer: Reducer, *, suffix: bool) -> Image:
    """Reduce each band across the collection; empty collection gives an image with no bands."""
    if not isinstance(collection, ImageCollection):
        raise EngineError("ImageCollection.reduce: expected an image collection.")
    if reducer.inputs > 1 and reducer.kind not in ("combine", "repeat"):
        return _reduce_multi_input(collection, reducer)
    bands: list[Band] = []
    for name, members in _band_stacks(collection, "ImageCollection.reduce"):
        dtype = np.result_type(*[b.dtype for b in members])
        shared = SharedStack([b.node for b in members], reducer, dtype)
        out_dtypes = (
            reducer.output_dtypes(dtype)
            if reducer.kind != "combine"
            else [dt for r in reducer.params["reducers"] for dt in r.output_dtypes(dtype)]
        )
        for i, (out, out_dt) in enumerate(zip(reducer.outputs, out_dtypes, strict=True)):
            band_name = f"{name}_{out}" if suffix or len(reducer.outputs) > 1 else name
            bands.append(Band(band_name, out_dt, StackReduceNode(shared, i)))
    return Image(tuple(bands))


class _FitStack(PixelNode):
    """All outputs of a multi-input reducer at once (one (n, inputs, h, w) stack)."""

    footprint_rule = "union"  # a reduction over the collection's images

    def __init__(self, nodes: list[list[PixelNode]], reducer: Reducer) -> None:
        self.nodes, self.reducer = nodes, reducer

    def children(self) -> tuple[PixelNode, ...]:
        return tuple(n for row in self.nodes for n in row)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Any:
        from gee_fusion.local.algorithms.reducers_fit import stack_fit

        shape = (len(self.nodes), len(self.nodes[0]), *grid.shape)
        values, valid = np.empty(shape), np.empty(shape, dtype=bool)
        for i, row in enumerate(self.nodes):
            for j, node in enumerate(row):
                v, m = ctx.pixels(node, grid)
                values[i, j], valid[i, j] = v, m
        return [(v, m) for _, v, m, _ in stack_fit(self.reducer, values, valid)]


def _reduce_multi_input(collection: ImageCollection, reducer: Reducer) -> Image:
    """A multi-input reducer takes the images' bands in order as its inputs (``scale``/``offset``...)."""
    images = collection.elements
    if not images:
        return Image(())
    if any(len(im.bands) != reducer.inputs for im in images):
        raise EngineError(
            f"ImageCollection.reduce: Need {reducer.inputs} bands for Reducer.{reducer.kind}, "
            f"found {len(images[0].bands)} (select the inputs in order first)."
        )
    shared = _FitStack([[b.node for b in im.bands] for im in images], reducer)
    ranks = {"coefficients": 2, "residuals": 1}
    return Image(tuple(
        Band(name, np.dtype(np.float64), StackReduceNode(shared, i), rank=ranks.get(name, 0))
        for i, name in enumerate(reducer.outputs)
    ))  # fmt: skip


@algorithm("ImageCollection.reduce")
def ic_reduce(collection: ImageCollection, reducer: Reducer, parallelScale: float = 1.0) -> Image:
    """Per-pixel reduction; output bands are ``<band>_<output>``."""
    return reduce_collection(collection, reducer, suffix=True)


def _register_shortcut(kind: str) -> None:
    def shortcut(collection: ImageCollection) -> Image:
        red = reducer_median() if kind == "median" else Reducer(kind, (kind,))
        return reduce_collection(collection, red, suffix=False)

    algorithm(f"reduce.{kind}")(shortcut)


for _kind in ("mean", "median", "min", "max", "sum", "count", "product", "and", "or", "mode"):
    _register_shortcut(_kind)


@algorithm("ImageCollection.mosaic")
def ic_mosaic(collection: ImageCollection) -> Image:
    """Later images on top: each pixel takes the last valid value in collection order."""
    red = Reducer("last", ("last",))
    return reduce_collection(collection, red, suffix=False)


class _QualityNode(PixelNode):
    footprint_rule = "union"  # a mosaic of the collection's images

    def __init__(self, quality: list[PixelNode], values: list[PixelNode]) -> None:
        self.quality, self.values = quality, values

    def children(self) -> tuple[PixelNode, ...]:
        return (*self.quality, *self.quality, *self.values, *self.values)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        q = np.stack(
            [np.where(ctx.pixels(n, grid)[1], ctx.pixels(n, grid)[0], -np.inf) for n in self.quality]
        )
        best = np.argmax(q, axis=0)
        vals = np.stack([ctx.pixels(n, grid)[0] for n in self.values])
        masks = np.stack([ctx.pixels(n, grid)[1] for n in self.values])
        pick = np.take_along_axis(vals, best[None], axis=0)[0]
        m = np.take_along_axis(masks, best[None], axis=0)[0] & np.isfinite(q.max(axis=0))
        return pick, m


@algorithm("ImageCollection.qualityMosaic")
def ic_quality_mosaic(collection: ImageCollection, qualityBand: str) -> Image:
    """Each pixel from the image whose ``qualityBand`` is highest there."""
    stacks = dict(_band_stacks(collection, "ImageCollection.qualityMosaic"))
    if collection.elements and qualityBand not in stacks:
        raise EngineError(f"ImageCollection.qualityMosaic: no band '{qualityBand}'.")
    if not stacks:
        return Image(())
    qnodes = [b.node for b in stacks[qualityBand]]
    return Image(tuple(Band(name, members[0].dtype, _QualityNode(qnodes, [b.node for b in members]))
                       for name, members in stacks.items()))  # fmt: skip


@algorithm("ImageCollection.toBands")
def ic_to_bands(collection: ImageCollection) -> Image:
    """All bands of all images as one image, named ``<system:index>_<band>``."""
    bands: list[Band] = []
    for i, img in enumerate(collection.elements):
        idx = img.get("system:index")
        idx = str(i) if idx is None else idx
        bands.extend(b.renamed(f"{idx}_{b.name}") for b in img.bands)
    return Image(tuple(bands))
