"""``Image.paint``: features burnt into an image, filled, with a value or a numeric property.

Pixels whose centre lies inside a polygon (lines and points: every pixel they touch) take the
value; later features paint over earlier ones; painted pixels are valid. Outlines (``width``) are
not supported locally yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely.geometry
from rasterio.features import rasterize

from gee_fusion.errors import EngineError, NotSupportedError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.image import Band, FuncNode, GridFuncNode, Image, PixelContext, Pixels
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Feature, FeatureCollection, Geometry


def _shapes(features: list[Feature], color: Any, crs: str) -> list[tuple[Any, float]]:
    out = []
    for f in features:
        if f.geometry is None:
            continue
        value = f.get(color) if isinstance(color, str) else color
        if value is None:
            raise EngineError(f"Image.paint: feature '{f.id}' has no property '{color}'.")
        shape = f.geometry.to_crs(crs)
        out.append((shapely.geometry.mapping(shape), float(value)))
    return out


@algorithm("Image.paint")
def image_paint(image: Any, featureCollection: Any, color: Any = 0, width: Any = None) -> Image:
    """Fill the features of ``featureCollection`` into every band of ``image``."""
    if width is not None:
        raise NotSupportedError(
            "Image.paint with a width (outlines) is not supported by the local engine yet."
        )
    img = as_image(image)
    if isinstance(featureCollection, Geometry):
        features = [Feature(featureCollection, {})]
    elif isinstance(featureCollection, Feature):
        features = [featureCollection]
    elif isinstance(featureCollection, FeatureCollection):
        features = list(featureCollection.elements)
    else:
        raise EngineError(f"Image.paint: expected features, got {type(featureCollection).__name__}.")

    def burnt(ctx: PixelContext, grid: PixelGrid) -> Pixels:
        shapes = _shapes(features, color, grid.crs)
        values = np.zeros(grid.shape, dtype=np.float64)
        painted = np.zeros(grid.shape, dtype=np.uint8)
        if shapes:
            values = rasterize(shapes, out_shape=grid.shape, transform=grid.affine, fill=0.0, dtype="float64")
            painted = rasterize([(s, 1) for s, _ in shapes], out_shape=grid.shape, transform=grid.affine,
                                fill=0, dtype="uint8")  # fmt: skip
        return values, painted.astype(bool)

    paint_node = GridFuncNode(burnt)
    bands = []
    for band in img.bands:

        def fn(px: Pixels, paint: Pixels, _dt: np.dtype = band.dtype) -> Pixels:
            hit = paint[1]
            return np.where(hit, paint[0], px[0]).astype(_dt), np.asarray(px[1], bool) | hit

        bands.append(Band(band.name, band.dtype, FuncNode(fn, [band.node, paint_node]), band.projection,
                          band.dimensions, None))  # fmt: skip
    return img.with_bands(bands)
