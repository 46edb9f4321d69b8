"""Drawing features onto images and images onto each other: ``Image.paint`` (features burnt in
with a value or a numeric property), ``Collection.style`` (features drawn as an RGB image, what
geemap adds to a map) and ``Image.blend``.

Pixels whose centre lies inside a polygon (lines and points: every pixel they touch) are drawn;
later features paint over earlier ones; drawn pixels are valid. ``Image.paint`` outlines
(``width``) are not supported locally yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely.geometry
from rasterio.features import rasterize

from gee_fusion.errors import EngineError, NotSupportedError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.grid import DEFAULT_PROJECTION
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


def _rgba(text: Any) -> tuple[int, int, int, int]:
    """``RRGGBB``, ``RRGGBBAA`` or a CSS name (Earth Engine's style colours)."""
    from gee_fusion.local.algorithms.visualize import parse_colour

    s = str(text).strip().lstrip("#")
    if len(s) == 8 and all(c in "0123456789abcdefABCDEF" for c in s):
        return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16), int(s[6:8], 16)
    return (*parse_colour(text), 255)


@algorithm("Collection.style")
def collection_style(
    collection: Any,
    color: Any = "black",
    pointSize: float = 3.0,
    pointShape: str = "circle",
    width: float = 2.0,
    fillColor: Any = None,
    styleProperty: Any = None,
    neighborhood: float = 5.0,
    lineType: str = "solid",
) -> Image:
    """Draw the features as an RGB image (``vis-red``, ``vis-green``, ``vis-blue``): polygons
    filled with ``fillColor`` (default: ``color`` at 66 % opacity), outlines and lines ``width``
    pixels wide, points as discs of ``pointSize`` pixels. Pixels with any colour are valid (masks
    are binary here: a fill's opacity only decides whether it is drawn)."""
    if styleProperty is not None:
        raise NotSupportedError(
            "Collection.style with styleProperty is not supported by the local engine yet."
        )
    is_collection = isinstance(collection, FeatureCollection)
    features = list(collection.elements) if is_collection else [collection]
    line = _rgba(color)
    fill = _rgba(fillColor) if fillColor is not None else (*line[:3], 168)

    def draw(ctx: PixelContext, grid: PixelGrid) -> Pixels:
        """What each pixel shows: 0 nothing, 1 the fill, 2 a line or point (drawn once per grid)."""
        pixel = abs(grid.transform[0])
        fills, lines = [], []
        for f in features:
            geom = f.geometry if isinstance(f, Feature) else f
            if geom is None:
                continue
            shape = geom.to_crs(grid.crs)
            if shape.geom_type in ("Polygon", "MultiPolygon"):
                fills.append(shapely.geometry.mapping(shape))
                lines.append(shapely.geometry.mapping(shape.boundary.buffer(float(width) * pixel / 2)))
            elif shape.geom_type in ("Point", "MultiPoint"):
                lines.append(shapely.geometry.mapping(shape.buffer(float(pointSize) * pixel / 2)))
            else:
                lines.append(shapely.geometry.mapping(shape.buffer(float(width) * pixel / 2)))
        kind = np.zeros(grid.shape, dtype=np.uint8)
        for code, shapes, rgba in ((1, fills, fill), (2, lines, line)):
            if not shapes or rgba[3] == 0:
                continue
            hit = rasterize([(s, 1) for s in shapes], out_shape=grid.shape, transform=grid.affine,
                            fill=0, dtype="uint8").astype(bool)  # fmt: skip
            kind[hit] = code
        return kind, kind > 0

    drawing = GridFuncNode(draw)
    colours = np.array([(0, 0, 0), fill[:3], line[:3]], dtype=np.uint8)

    def channel(k: int) -> FuncNode:
        return FuncNode(lambda px: (colours[px[0], k], px[1]), [drawing])

    bands = tuple(
        Band(name, np.dtype(np.uint8), channel(k), DEFAULT_PROJECTION, None, (0, 255))
        for k, name in enumerate(("vis-red", "vis-green", "vis-blue"))
    )
    return Image(bands)


@algorithm("Image.blend")
def image_blend(bottom: Any, top: Any) -> Image:
    """``top`` over ``bottom``: top's pixels where it is valid, bottom's elsewhere (binary masks:
    a partly transparent top hides the bottom); band names are the bottom's."""
    low, high = as_image(bottom), as_image(top)
    if len(high.bands) not in (1, len(low.bands)):
        raise EngineError(
            f"Image.blend: the top image must have 1 or {len(low.bands)} bands, got {len(high.bands)}."
        )
    tops = list(high.bands) * len(low.bands) if len(high.bands) == 1 else list(high.bands)
    bands = []
    for b, t in zip(low.bands, tops, strict=True):

        def fn(pb: Pixels, pt: Pixels, _dt: np.dtype = b.dtype) -> Pixels:
            take = np.asarray(pt[1], bool)
            return np.where(take, pt[0], pb[0]).astype(_dt), np.asarray(pb[1], bool) | take

        bands.append(Band(b.name, b.dtype, FuncNode(fn, [b.node, t.node]), b.projection, b.dimensions, None))
    return low.with_bands(bands)
