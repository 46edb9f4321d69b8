"""Sampling pixels into features: ``Image.sample``, ``Image.sampleRegions``,
``Image.stratifiedSample``, and ``Collection.randomColumn``. Seeded and deterministic.

Pixels are those whose centre lies in the region, in the grid of ``projection`` / ``scale`` (the
image's default projection otherwise), as ``reduceRegion`` uses. Feature IDs are the pixel's
row-major index in that grid (prefixed by the region feature's ID for ``sampleRegions``).
``numPixels`` and ``classPoints`` draw exactly that many pixels (fewer if there are fewer) without
replacement; Earth Engine draws about that many.
"""

from __future__ import annotations

import hashlib
import statistics
from typing import Any

import numpy as np
import shapely

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import band_named
from gee_fusion.local.algorithms.geometry import geometry_of_any
from gee_fusion.local.algorithms.image_mask import inside_mask
from gee_fusion.local.algorithms.image_region import region_grid
from gee_fusion.local.image import Image, PixelContext
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Feature, FeatureCollection, Geometry, ImageCollection


def _grid(image: Image, region: Any, scale: float | None, projection: Any) -> tuple[PixelGrid, np.ndarray]:
    native = image.native_grid()
    if region is None and native is not None:  # the image's own footprint, exactly
        geom = Geometry(shapely.box(*native.bounds()), native.crs)
    else:
        geom = geometry_of_any(image if region is None else region)
    grid = region_grid(image, geom, scale=scale, crs=projection, crsTransform=None)
    return grid, inside_mask(geom, grid)


def _pixels(image: Image, grid: PixelGrid) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ctx = PixelContext([b.node for b in image.bands])
    values, masks = [], []
    for band in image.bands:
        v, m = ctx.pixels(band.node, grid)
        v = np.asarray(v)
        valid = np.asarray(m, dtype=bool)
        if v.dtype.kind == "f":
            valid = valid & ~np.isnan(v)
        values.append(v)
        masks.append(valid)
    return values, masks


def _value(v: Any) -> int | float:
    return int(v) if isinstance(v, (np.integer, int)) else float(v)


def _features(image: Image, grid: PixelGrid, picked: np.ndarray, values: list[np.ndarray],
              masks: list[np.ndarray], *, geometries: bool, prefix: str = "",
              extra: dict[str, Any] | None = None) -> list[Feature]:  # fmt: skip
    rows, cols = np.divmod(picked, grid.width)
    out = []
    a = grid.affine
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        props: dict[str, Any] = dict(extra or {})
        for band, v, m in zip(image.bands, values, masks, strict=True):
            props[band.name] = _value(v[r, c]) if m[r, c] else None
        geom = None
        if geometries:
            x, y = a @ (c + 0.5, r + 0.5)
            geom = Geometry(shapely.Point(x, y), grid.crs)
        out.append(Feature(geom, props, f"{prefix}{int(picked[k])}"))
    return out


@algorithm("Image.sample")
def image_sample(
    image: Image,
    region: Any = None,
    scale: float | None = None,
    projection: Any = None,
    factor: float | None = None,
    numPixels: int | None = None,
    seed: int = 0,
    dropNulls: bool = True,
    tileScale: float = 1.0,
    geometries: bool = False,
) -> FeatureCollection:
    """Sample the pixels of a region: all, a ``factor`` share, or ``numPixels`` of them."""
    if factor is not None and numPixels is not None:
        raise EngineError("Image.sample: give factor or numPixels, not both.")
    grid, inside = _grid(image, region, scale, projection)
    values, masks = _pixels(image, grid)
    candidates = np.flatnonzero(inside.ravel())
    rng = np.random.default_rng(int(seed))
    if factor is not None:
        candidates = candidates[rng.random(candidates.size) < float(factor)]
    elif numPixels is not None and candidates.size > int(numPixels):
        candidates = np.sort(rng.choice(candidates, int(numPixels), replace=False))
    if dropNulls:
        valid = np.logical_and.reduce([m.ravel() for m in masks]) if masks else np.ones(inside.size, bool)
        candidates = candidates[valid[candidates]]
    return FeatureCollection(tuple(_features(image, grid, candidates, values, masks, geometries=geometries)))


@algorithm("Image.stratifiedSample")
def image_stratified_sample(image: Image, numPoints: int, classBand: str | None = None, region: Any = None,
                            scale: float | None = None, projection: Any = None, seed: int = 0,
                            classValues: list[int] | None = None, classPoints: list[int] | None = None,
                            dropNulls: bool = True, tileScale: float = 1.0,
                            geometries: bool = False) -> FeatureCollection:  # fmt: skip
    """Sample ``numPoints`` pixels of each class of ``classBand`` (or ``classPoints`` for the
    ``classValues`` listed), at random without replacement."""
    names = [b.name for b in image.bands]
    band = band_named(image, classBand, "Image.stratifiedSample").name
    if (classValues is None) != (classPoints is None) or (
        classValues and len(classValues) != len(classPoints or [])
    ):
        raise EngineError(
            "Image.stratifiedSample: classValues and classPoints must be given together, of equal length."
        )
    grid, inside = _grid(image, region, scale, projection)
    values, masks = _pixels(image, grid)
    k = names.index(band)
    if values[k].dtype.kind == "f" and np.any(values[k][masks[k]] != np.round(values[k][masks[k]])):
        raise EngineError(f"Image.stratifiedSample: the class band '{band}' must hold integer classes.")
    classes = values[k].ravel()
    usable = inside.ravel() & masks[k].ravel()
    if dropNulls:
        usable &= np.logical_and.reduce([m.ravel() for m in masks])
    wanted = dict(zip(classValues or [], classPoints or [], strict=True))
    rng = np.random.default_rng(int(seed))
    picked = []
    for value in np.unique(classes[usable]):
        n = int(wanted.get(int(value), numPoints))
        pool = np.flatnonzero(usable & (classes == value))
        if n <= 0:
            continue
        picked.append(np.sort(rng.choice(pool, n, replace=False)) if pool.size > n else pool)
    chosen = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return FeatureCollection(tuple(_features(image, grid, chosen, values, masks, geometries=geometries)))


@algorithm("Image.sampleRegions")
def image_sample_regions(image: Image, collection: FeatureCollection, properties: list[str] | None = None,
                         scale: float | None = None, projection: Any = None, tileScale: float = 1.0,
                         geometries: bool = False) -> FeatureCollection:  # fmt: skip
    """Sample the valid pixels under each feature, copying its ``properties`` (default: all)."""
    out: list[Feature] = []
    for feature in collection.elements:
        if feature.geometry is None:
            raise EngineError(f"Image.sampleRegions: feature '{feature.id}' has no geometry.")
        grid, inside = _grid(image, feature.geometry, scale, projection)
        values, masks = _pixels(image, grid)
        valid = inside.ravel() & np.logical_and.reduce([m.ravel() for m in masks])
        keys = list(feature.properties) if properties is None else properties
        extra = {k: feature.properties.get(k) for k in keys}
        out += _features(image, grid, np.flatnonzero(valid), values, masks, geometries=geometries,
                         prefix=f"{feature.id}_", extra=extra)  # fmt: skip
    return FeatureCollection(tuple(out))


def _uniform(seed: int, key: str) -> float:
    digest = hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


@algorithm("Collection.randomColumn")
def collection_random_column(
    collection: Any,
    columnName: str = "random",
    seed: int = 0,
    distribution: str = "uniform",
    rowKeys: list[str] | None = None,
) -> Any:
    """Add a seeded pseudo-random number to each element, a function of ``rowKeys`` (so the
    same element gets the same number in any collection)."""
    if distribution not in ("uniform", "normal"):
        raise EngineError(
            f"Collection.randomColumn: distribution must be 'uniform' or 'normal', got {distribution!r}."
        )
    keys = rowKeys or ["system:index"]
    normal = statistics.NormalDist()
    out = []
    for element in collection.elements:
        key = "|".join(str(element.id if k == "system:index" else element.get(k)) for k in keys)
        u = _uniform(int(seed), key)
        value = u if distribution == "uniform" else normal.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
        out.append(element.with_properties({**element.properties, columnName: value}))
    if isinstance(collection, (FeatureCollection, ImageCollection)):
        return collection.with_elements(out)
    raise EngineError(f"Collection.randomColumn: expected a collection, got {type(collection).__name__}.")


@algorithm("FeatureCollection.randomPoints")
def random_points(region: Any, points: int = 1000, seed: int = 0, maxError: Any = None) -> FeatureCollection:
    """``points`` seeded points uniformly distributed inside ``region`` (planar, in its own CRS)."""
    from gee_fusion.local.algorithms.geometry import geometry_of_any

    geom = geometry_of_any(region)
    shape = geom.shape
    if shape.is_empty or shape.area <= 0:
        raise EngineError("FeatureCollection.randomPoints: the region must be a polygon with an area.")
    rng = np.random.default_rng(int(seed))
    x0, y0, x1, y1 = shape.bounds
    found: list[tuple[float, float]] = []
    while len(found) < int(points):
        need = max(int((int(points) - len(found)) * 1.5 * (x1 - x0) * (y1 - y0) / shape.area), 16)
        xs, ys = rng.uniform(x0, x1, need), rng.uniform(y0, y1, need)
        inside = shapely.contains_xy(shape, xs, ys)
        found += list(zip(xs[inside].tolist(), ys[inside].tolist(), strict=True))
    return FeatureCollection(tuple(
        Feature(Geometry(shapely.Point(x, y), geom.crs, geom.geodesic), {}, str(i))
        for i, (x, y) in enumerate(found[: int(points)])
    ))  # fmt: skip
