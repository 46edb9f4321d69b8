"""``Image.reduceToVectors``: connected regions of equal value of the first band as features.

Regions are 4- or 8-connected groups of pixels of equal (integer) value of the first band in the
reduction grid, traced as polygons (rasterio's ``shapes``: pixel edges, holes kept). Each feature
carries the value in ``labelProperty``; the other bands are reduced over the region's pixels with
``reducer`` (its outputs become properties, as in ``reduceRegion``); with one band only, a reducer
taking no band (``countEvery``) counts the region's pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
import shapely.geometry

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.algorithms.geometry import geometry_of_any
from gee_fusion.local.algorithms.image_mask import inside_mask
from gee_fusion.local.algorithms.image_region import region_grid
from gee_fusion.local.algorithms.reducers import Reducer
from gee_fusion.local.image import PixelContext
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Feature, FeatureCollection, Geometry


def _shapes(
    labels: np.ndarray, valid: np.ndarray, grid: Any, eight: bool
) -> list[tuple[shapely.Geometry, int]]:
    from rasterio import features

    found = features.shapes(labels, mask=valid, connectivity=8 if eight else 4, transform=grid.affine)
    return [(shapely.geometry.shape(geom), int(value)) for geom, value in found]


def _region_properties(reducer: Reducer, bands: list[tuple[str, np.ndarray, np.ndarray]],
                       region: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """The reducer's outputs over one region: per band, named like ``reduceRegion`` names them."""
    if not bands:
        return reducer.reduce_columns([[1] * int(region.sum())])
    out: dict[str, Any] = {}
    for name, values, valid in bands:
        column = values[region & valid].tolist()
        res = reducer.reduce_columns([column] * reducer.inputs)
        if len(bands) == 1:
            out.update(res)
        elif len(res) == 1:
            out[name] = next(iter(res.values()))
        else:
            out.update({f"{name}_{k}": v for k, v in res.items()})
    return out


@algorithm("Image.reduceToVectors")
def image_reduce_to_vectors(image: Any, reducer: Reducer | None = None, geometry: Any = None,
                            scale: float | None = None, geometryType: str = "polygon",
                            eightConnected: bool = True, labelProperty: str = "label", crs: Any = None,
                            crsTransform: list[float] | None = None, bestEffort: bool = False,
                            maxPixels: float = 1e7, tileScale: float = 1.0,
                            geometryInNativeProjection: bool = False) -> FeatureCollection:  # fmt: skip
    """Features for the connected regions of equal value of the first band (see the module doc)."""
    img = as_image(image)
    if not img.bands:
        raise EngineError("Image.reduceToVectors: the image has no bands.")
    if geometryType not in ("polygon", "bb", "centroid"):
        raise EngineError(
            f"Image.reduceToVectors: geometryType must be polygon, bb or centroid, got {geometryType!r}."
        )
    red = reducer if reducer is not None else Reducer("countEvery", ("count",))
    geom = geometry_of_any(img if geometry is None else geometry)
    grid = region_grid(img, geom, scale=scale, crs=crs, crsTransform=crsTransform)
    if grid.width * grid.height > maxPixels and not bestEffort:
        raise EngineError(
            f"Image.reduceToVectors: Too many pixels in the region. Found {grid.width * grid.height}, but "
            f"maxPixels allows only {int(maxPixels)}. Pass a larger scale, maxPixels or bestEffort=True."
        )
    ctx = PixelContext([b.node for b in img.bands])
    first_v, first_m = ctx.pixels(img.bands[0].node, grid)
    values = np.asarray(first_v)
    if values.dtype.kind == "f":
        values = np.round(values)
    labels = values.astype(np.int32)
    valid = np.asarray(first_m, bool) & inside_mask(geom, grid)
    others = [(b.name, np.asarray(v), np.asarray(m, bool))
              for b in img.bands[1:] for v, m in [ctx.pixels(b.node, grid)]]  # fmt: skip
    from rasterio import features

    features_out = []
    for i, (shape, value) in enumerate(_shapes(labels, valid, grid, bool(eightConnected))):
        region = features.geometry_mask([shape], (grid.height, grid.width), grid.affine, invert=True)
        region &= valid & (labels == value)
        props = {labelProperty: value, **_region_properties(red, others, region)}
        if geometryType == "bb":
            shape = shapely.box(*shape.bounds)
        elif geometryType == "centroid":
            shape = shape.centroid
        out_geom = Geometry(shape, grid.crs)
        if not geometryInNativeProjection:
            out_geom = Geometry(out_geom.to_crs("EPSG:4326"))
        features_out.append(Feature(out_geom, props, str(i)))
    return FeatureCollection(tuple(features_out))
