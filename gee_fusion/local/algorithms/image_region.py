"""``Image.reduceRegion``: reduce the pixels of an image inside a geometry to numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
from affine import Affine

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms.geometry import geometry_of_any
from gee_fusion.local.algorithms.image_mask import inside_mask
from gee_fusion.local.algorithms.reducers import Reducer
from gee_fusion.local.grid import Projection, parse_transform
from gee_fusion.local.image import Image, PixelContext
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import FeatureCollection, Geometry


def region_grid(image: Image, geometry: Geometry, *, scale: float | None, crs: Any,
                crsTransform: list[float] | None) -> PixelGrid:  # fmt: skip
    """The grid a region reduction runs in: the asked (or default) projection over the bounds."""
    base = image.default_projection
    if crs is not None:
        base = crs if isinstance(crs, Projection) else Projection(str(crs), base.transform)
    if crsTransform is not None:
        proj = Projection(base.crs, parse_transform(crsTransform))
    elif scale is not None:
        proj = base.at_scale(float(scale))
    else:
        proj = base
    x0, y0, x1, y1 = geometry.to_crs(proj.crs).bounds
    inv = ~proj.affine
    corners = [inv @ (x, y) for x in (x0, x1) for y in (y0, y1)]
    cols = [c for c, _ in corners]
    rows = [r for _, r in corners]
    c0, r0 = int(np.floor(min(cols))), int(np.floor(min(rows)))
    c1, r1 = int(np.ceil(max(cols))), int(np.ceil(max(rows)))
    aff = proj.affine @ Affine.translation(c0, r0)
    return PixelGrid(proj.crs, tuple(aff)[:6], max(c1 - c0, 1), max(r1 - r0, 1))


@algorithm("Image.reduceRegion")
def image_reduce_region(image: Image, reducer: Reducer, geometry: Any = None, scale: float | None = None,
                        crs: Any = None, crsTransform: list[float] | None = None,
                        bestEffort: bool = False, maxPixels: float = 1e7,
                        tileScale: float = 1.0) -> dict[str, Any]:  # fmt: skip
    """Reduce each band over the pixels whose centre lies in ``geometry``.

    Keys are band names for single-output reducers, ``<band>_<output>`` otherwise.
    Pixels are counted unweighted (centre inside), see docs/local_engine.md.
    """
    geom = geometry_of_any(image if geometry is None else geometry)
    grid = region_grid(image, geom, scale=scale, crs=crs, crsTransform=crsTransform)
    a = grid.affine
    estimate = geom.to_crs(grid.crs).area / abs(a.a * a.e - a.b * a.d)
    if estimate > 1.05 * maxPixels and not bestEffort:  # decide before allocating the region
        raise EngineError(
            f"Image.reduceRegion: Too many pixels in the region. Found about {int(estimate)}, but "
            f"maxPixels allows only {int(maxPixels)}. Pass a larger scale, maxPixels or bestEffort=True."
        )
    inside = inside_mask(geom, grid)
    count = int(inside.sum())
    if count > maxPixels and not bestEffort:
        raise EngineError(
            f"Image.reduceRegion: Too many pixels in the region. Found {count}, but maxPixels "
            f"allows only {int(maxPixels)}. Pass a larger scale, maxPixels or bestEffort=True."
        )
    ctx = PixelContext([b.node for b in image.bands])
    if (reducer.inputs > 1 and reducer.kind not in ("repeat", "combine")) or any(b.rank for b in image.bands):
        return _reduce_columns_of_bands(image, reducer, ctx, grid, inside)
    out: dict[str, Any] = {}
    for band in image.bands:
        vals, mask = ctx.pixels(band.node, grid)
        sel = inside & np.asarray(mask)
        data = np.asarray(vals)[sel]
        if data.dtype.kind == "f":
            data = data[~np.isnan(data)]
        res = _numpy_reduce(reducer, data)
        if res is None:
            res = reducer.reduce_columns([data.tolist()] * reducer.inputs)
        if len(res) == 1:
            out[band.name] = next(iter(res.values()))
        else:
            out.update({f"{band.name}_{k}": v for k, v in res.items()})
    return out


def _pixel_column(values: np.ndarray, rank: int, sel: np.ndarray) -> list[Any]:
    """The selected pixels of a band as a column: numbers, or lists for array pixels."""
    data = np.asarray(values)[sel]
    if not rank:
        return [None if isinstance(v, float) and v != v else v for v in data.tolist()]
    return [_strip_absent(row) for row in data]


def _strip_absent(array: np.ndarray) -> np.ndarray:
    """A pixel's array without its absent (NaN) trailing positions on the first axis."""
    present = ~np.isnan(array).reshape(array.shape[0], -1).all(axis=1) if array.size else np.zeros(0, bool)
    return array[: int(present.sum())]


def _reduce_columns_of_bands(image: Image, reducer: Reducer, ctx: PixelContext, grid: Any,
                             inside: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """Multi-input reducers take the bands in order; array bands are reduced as columns of arrays."""
    pixels = [ctx.pixels(b.node, grid) for b in image.bands]
    if reducer.inputs > 1 and reducer.kind not in ("repeat", "combine"):
        if len(image.bands) != reducer.inputs:
            raise EngineError(
                f"Image.reduceRegion: Need {reducer.inputs} bands for Reducer.{reducer.kind}, "
                f"found {len(image.bands)} (select the reducer's inputs in order)."
            )
        sel = inside & np.logical_and.reduce([np.asarray(m) for _, m in pixels])
        columns = [_pixel_column(v, b.rank, sel) for (v, _), b in zip(pixels, image.bands, strict=True)]
        return reducer.reduce_columns(columns)
    out: dict[str, Any] = {}
    for band, (vals, mask) in zip(image.bands, pixels, strict=True):
        column = _pixel_column(vals, band.rank, inside & np.asarray(mask))
        res = reducer.reduce_columns([column] * reducer.inputs)
        if len(res) == 1:
            out[band.name] = next(iter(res.values()))
        else:
            out.update({f"{band.name}_{k}": v for k, v in res.items()})
    return out


def _num(x: Any, ints: bool) -> float | int:
    return int(x) if ints else float(x)


def _numpy_reduce(reducer: Reducer, data: np.ndarray) -> dict[str, Any] | None:
    """Vectorised reductions of region pixels for the common single reducers (None: other)."""
    k, ints = reducer.kind, data.dtype.kind in "iub"
    if reducer.inputs != 1 or k not in ("count", "sum", "mean", "min", "max", "minMax", "median",
                                        "stdDev", "variance", "percentile"):  # fmt: skip
        return None
    name = reducer.outputs
    if k == "count":
        return {name[0]: int(data.size)}
    if data.size == 0:
        return {n: None for n in name}
    work = data.astype(np.float64)
    if k == "percentile":
        # nearest rank on the sorted values, as Reducer.percentile on columns; a partition
        # puts the same order statistics in place without sorting everything
        ranks = [max(int(np.ceil(p / 100.0 * work.size)) - 1, 0) for p in reducer.params["percentiles"]]
        work.partition(sorted(set(ranks)))
        return {n: float(work[r]) for n, r in zip(name, ranks, strict=True)}
    if k == "sum":
        return {name[0]: _num(work.sum(), ints)}
    if k == "mean":
        return {name[0]: float(work.mean())}
    if k == "min":
        return {name[0]: _num(work.min(), ints)}
    if k == "max":
        return {name[0]: _num(work.max(), ints)}
    if k == "minMax":
        return {name[0]: _num(work.min(), ints), name[1]: _num(work.max(), ints)}
    if k == "median":
        return {name[0]: float(np.median(work))}
    if k == "stdDev":
        return {name[0]: float(work.std())}
    return {name[0]: float(work.var())}


@algorithm("Image.reduceRegions")
def image_reduce_regions(image: Image, collection: FeatureCollection, reducer: Reducer,
                         scale: float | None = None, crs: Any = None,
                         crsTransform: list[float] | None = None, tileScale: float = 1.0,
                         maxPixelsPerRegion: float = 1e7) -> FeatureCollection:  # fmt: skip
    """Reduce the image over each feature's geometry and add the results as properties.

    A single-band image with a single-output reducer adds the output's name (``mean``); several bands
    add one property per band; several outputs add ``<band>_<output>`` (or the output's name alone
    for one band), as Earth Engine names them.
    """
    if not isinstance(collection, FeatureCollection):
        raise EngineError("Image.reduceRegions: collection must be a FeatureCollection.")
    single_band = len(image.bands) == 1 and reducer.inputs == 1
    features = []
    for feature in collection.elements:
        result = image_reduce_region(image, reducer, feature, scale=scale, crs=crs, crsTransform=crsTransform,
                                     maxPixels=maxPixelsPerRegion, bestEffort=False)  # fmt: skip
        if single_band:
            name = image.bands[0].name
            result = {
                (key[len(name) + 1 :] if key.startswith(name + "_") else reducer.outputs[0]): value
                for key, value in result.items()
            }
        features.append(feature.with_properties({**feature.properties, **result}))
    return collection.with_elements(features)
