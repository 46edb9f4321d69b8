"""Image algorithms on masks and footprints: mask, updateMask, unmask, selfMask, clip,
clipToBoundsAndScale, where, and forced reprojection."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.features import geometry_mask

from gee_fusion.errors import EngineError, NotSupportedError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import as_image, promote
from gee_fusion.local.grid import METRES_PER_DEGREE, Projection, crs_of, integer_offset, same_crs, six, warp
from gee_fusion.local.image import (
    Band,
    ClipNode,
    FuncNode,
    GridFuncNode,
    Image,
    PixelContext,
    PixelNode,
    Pixels,
)
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Feature, FeatureCollection, Geometry


def pair_bands(a: Image, b: Image, where: str) -> list[tuple[Band, Band]]:
    """Pair bands for a per-band operation: one band broadcasts, else counts must match."""
    if len(b.bands) == 1:
        return [(band, b.bands[0]) for band in a.bands]
    if len(a.bands) == 1:
        return [(a.bands[0], band) for band in b.bands]
    if len(a.bands) != len(b.bands):
        raise EngineError(
            f"{where}: Images must contain the same number of bands or only 1 band. "
            f"Got {len(a.bands)} and {len(b.bands)}."
        )
    return list(zip(a.bands, b.bands, strict=True))


def _with_node(band: Band, node: PixelNode, **changes: Any) -> Band:
    return Band(
        changes.get("name", band.name), changes.get("dtype", band.dtype), node,
        band.projection, band.dimensions, changes.get("value_range", band.value_range),
        changes.get("rank", band.rank),
    )  # fmt: skip


@algorithm("Image.mask")
def image_mask(image: Image, mask: Image | None = None) -> Image:
    """Without ``mask``: the mask as an image (1 valid, 0 masked). With it: set the mask.

    Setting replaces the mask by the non-zero, valid pixels of ``mask`` (it can unmask
    pixels, unlike ``updateMask``); pixels that become valid have the value 0, as Earth
    Engine fills them "with zeros".
    """
    if mask is not None:
        return _set_mask(as_image(image), as_image(mask))

    def as_values(px: Pixels) -> Pixels:
        m = px[1]
        return m.astype(np.uint8), np.ones(m.shape, dtype=bool)

    bands = [_with_node(b, FuncNode(as_values, [b.node]), dtype=np.dtype(np.uint8), rank=0,
                        value_range=(0, 1)) for b in image.bands]  # fmt: skip
    return image.with_bands(bands)


@algorithm("Image.updateMask")
def image_update_mask(image: Image, mask: Any) -> Image:
    """Mask pixels where ``mask`` is zero or masked (masks only shrink; Earth Engine semantics)."""
    image, mimg = as_image(image), as_image(mask)

    def update(px: Pixels, mpx: Pixels) -> Pixels:
        vals, m = px
        mv, mm = mpx
        return vals, m & mm & (mv != 0)

    pairs = pair_bands(image, mimg, "Image.updateMask")
    if len(mimg.bands) > 1 and len(image.bands) == 1:
        raise EngineError("Image.updateMask: a multi-band mask needs an image with as many bands.")
    return image.with_bands([_with_node(a, FuncNode(update, [a.node, m.node])) for a, m in pairs])


def _set_mask(image: Image, mimg: Image) -> Image:
    """``Image.mask(image, mask)``: replace (not intersect) each band's mask."""
    if len(mimg.bands) > 1 and len(image.bands) == 1:
        raise EngineError("Image.mask: a multi-band mask needs an image with as many bands.")

    def set_mask(px: Pixels, mpx: Pixels) -> Pixels:
        vals, m = px
        mv, mm = mpx
        new = mm & (mv != 0)
        return np.where(m, vals, np.zeros((), dtype=vals.dtype)), new

    pairs = pair_bands(image, mimg, "Image.mask")
    return image.with_bands([_with_node(a, FuncNode(set_mask, [a.node, m.node])) for a, m in pairs])


@algorithm("Image.selfMask")
def image_self_mask(image: Image) -> Image:
    """Mask pixels whose value is zero."""
    return image_update_mask(image, image)


def _footprint_node(band: Band) -> PixelNode | None:
    """Validity of the band's native extent in a request grid (None: unbounded).

    Computed from pixel-centre coordinates, never by materialising the native raster.
    """
    if band.dimensions is None:
        return None
    w, h = band.dimensions
    proj = band.projection

    def fn(ctx: PixelContext, grid: PixelGrid) -> Pixels:
        inside = inside_native(proj, (w, h), grid)
        return np.zeros(grid.shape, dtype=np.uint8), inside

    return GridFuncNode(fn)


def inside_native(proj: Projection, dims: tuple[int, int], grid: PixelGrid) -> np.ndarray:
    """True where a request-grid pixel centre falls inside a native raster of ``dims``."""
    w, h = dims
    g = grid.affine
    cols = np.arange(grid.width) + 0.5
    rows = np.arange(grid.height) + 0.5
    if g.b == 0 and g.d == 0 and same_crs(proj.crs, grid.crs) and proj.affine.b == 0 and proj.affine.d == 0:
        inv = ~proj.affine
        sc = np.floor(inv.a * (g.c + cols * g.a) + inv.c)
        sr = np.floor(inv.e * (g.f + rows * g.e) + inv.f)
        return ((sr >= 0) & (sr < h))[:, None] & ((sc >= 0) & (sc < w))[None, :]
    from rasterio.warp import transform as warp_points

    cc, rr = np.meshgrid(cols, rows)
    xs, ys = g @ (cc.ravel(), rr.ravel())
    if not same_crs(proj.crs, grid.crs):
        xs, ys = warp_points(crs_of(grid.crs), crs_of(proj.crs), xs, ys)
    inv = ~proj.affine
    sc, sr = inv @ (np.asarray(xs), np.asarray(ys))
    sc, sr = np.floor(sc), np.floor(sr)
    return ((sc >= 0) & (sc < w) & (sr >= 0) & (sr < h)).reshape(grid.shape)


@algorithm("Image.unmask")
def image_unmask(input: Image, value: Any = None, sameFootprint: bool = True) -> Image:
    """Replace masked pixels by ``value`` (default 0) and make them valid.

    With ``sameFootprint`` pixels outside the band's native footprint stay masked.
    """
    image = as_image(input)
    fill = as_image(0 if value is None else value)
    out = []
    for band, fband in pair_bands(image, fill, "Image.unmask"):
        dtype = promote(band, fband)  # the union of the input and fill types (no wrap-around)
        foot = _footprint_node(band) if sameFootprint else None

        def fn(px: Pixels, fpx: Pixels, *rest: Pixels, _dt: np.dtype = dtype) -> Pixels:
            vals, m = px
            fv, fm = fpx
            out_vals = np.where(m, vals, fv).astype(_dt, copy=False)
            valid = m | fm
            if rest:
                valid = valid & rest[0][1]
            return out_vals, valid

        inputs = [band.node, fband.node] + ([foot] if foot is not None else [])
        out.append(_with_node(band, FuncNode(fn, inputs), dtype=dtype, value_range=None))
    return image.with_bands(out)


def geometry_of(value: Any) -> Geometry:
    """A Geometry from a Geometry, a Feature or a FeatureCollection (union of features)."""
    if isinstance(value, Geometry):
        return value
    if isinstance(value, Feature) and value.geometry is not None:
        return value.geometry
    if isinstance(value, FeatureCollection):
        shapes = [f.geometry.to_crs("EPSG:4326") for f in value.elements if f.geometry is not None]
        return Geometry(shapely.union_all(shapes))
    raise EngineError(f"Expected a geometry, got {type(value).__name__}.")


def inside_mask(geom: Geometry, grid: PixelGrid) -> np.ndarray:
    """True where the pixel centre lies inside ``geom``, in ``grid``."""
    shape = geom.to_crs(grid.crs)
    if shape.is_empty:
        return np.zeros(grid.shape, dtype=bool)
    if shape.geom_type in ("Point", "MultiPoint", "LineString", "MultiLineString", "LinearRing"):
        return ~geometry_mask([shape], out_shape=grid.shape, transform=grid.affine, all_touched=True)
    return ~geometry_mask([shape], out_shape=grid.shape, transform=grid.affine)


@algorithm("Image.clip")
def image_clip(input: Image, geometry: Any) -> Image:
    """Mask every pixel whose centre falls outside ``geometry``."""
    geom = geometry_of(geometry)
    image = as_image(input)
    clip_node = ClipNode(lambda ctx, grid: (np.zeros(grid.shape, np.uint8), inside_mask(geom, grid)), geom)

    def fn(px: Pixels, cpx: Pixels) -> Pixels:
        return px[0], px[1] & cpx[1]

    clipped = image.with_bands([_with_node(b, FuncNode(fn, [b.node, clip_node])) for b in image.bands])
    if "system:footprint" in image.properties:  # the footprint shrinks to the clip (as in Earth Engine)
        from gee_fusion.local.algorithms.geometry import geometry_of_any

        inside = shapely.intersection(geometry_of_any(image).to_crs("EPSG:4326"), geom.to_crs("EPSG:4326"))
        clipped = clipped.with_properties({**image.properties, "system:footprint": Geometry(inside)})
    return clipped


@algorithm("Image.clipToCollection")
def image_clip_to_collection(input: Image, collection: FeatureCollection) -> Image:
    """Clip to the union of a feature collection's geometries."""
    return image_clip(input, geometry_of(collection))


@algorithm("Image.clipToBoundsAndScale")
def image_clip_to_bounds_and_scale(
    input: Image,
    geometry: Any = None,
    width: int | None = None,
    height: int | None = None,
    maxDimension: int | None = None,
    scale: float | None = None,
) -> Image:
    """Clip to the bounds of ``geometry`` and give the image a grid of the asked size or scale,
    in the image's own CRS (what ``Export.image`` and ``getDownloadURL`` build from ``region``,
    ``scale``, ``dimensions`` and ``crsTransform``).

    When the asked size gives back the image's own pixel size (the exact rectangle that
    ``crsTransform`` + ``dimensions`` describe), the grid keeps that pixel size exactly.
    """
    image = as_image(input)
    if geometry is None:
        return image
    native = image.default_projection
    crs = native.crs
    x0, y0, x1, y1 = geometry_of(geometry).to_crs(crs).bounds
    a, b, _, d, e, _ = native.transform
    if scale is None and width is None and height is None and maxDimension is None:
        if b != 0 or d != 0:
            raise NotSupportedError("Image.clipToBoundsAndScale: a rotated projection needs a scale or size.")
        return _clip_to_lattice(image, native, (x0, y0, x1, y1))
    if scale is not None:
        sx = sy = float(scale) / (METRES_PER_DEGREE if crs_of(crs).is_geographic else 1.0)
        w, h = max(int(np.ceil((x1 - x0) / sx - 1e-9)), 1), max(int(np.ceil((y1 - y0) / sy - 1e-9)), 1)
    else:
        if maxDimension is not None:
            big = max(x1 - x0, y1 - y0)
            w = max(round(maxDimension * (x1 - x0) / big), 1)
            h = max(round(maxDimension * (y1 - y0) / big), 1)
        else:
            w, h = int(width or height or 1), int(height or width or 1)
        sx, sy = (x1 - x0) / w, (y1 - y0) / h
        if b == d == 0 and np.isclose(sx, abs(a), rtol=1e-9) and np.isclose(sy, abs(e), rtol=1e-9):
            sx, sy = abs(a), abs(e)
    return _on_grid(image, Projection(crs, (sx, 0.0, x0, 0.0, -sy, y1)), (w, h))


def _clip_to_lattice(image: Image, native: Projection, bounds: tuple[float, float, float, float]) -> Image:
    """The image's own pixels covering ``bounds`` (a window of its pixel lattice)."""
    x0, y0, x1, y1 = bounds
    inverse = ~native.affine
    cols, rows = zip(*(inverse @ xy for xy in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))), strict=True)
    c0, r0 = int(np.floor(min(cols) + 1e-6)), int(np.floor(min(rows) + 1e-6))
    c1, r1 = int(np.ceil(max(cols) - 1e-6)), int(np.ceil(max(rows) - 1e-6))
    a, _, c, _, e, f = native.transform
    proj = Projection(native.crs, (a, 0.0, c + c0 * a, 0.0, e, f + r0 * e))
    return _on_grid(image, proj, (max(c1 - c0, 1), max(r1 - r0, 1)))


def _on_grid(image: Image, proj: Projection, size: tuple[int, int]) -> Image:
    """Clip to the grid's footprint and give every band that grid."""
    w, h = size
    xa, _, xc, _, ye, yf = proj.transform
    box = shapely.box(min(xc, xc + w * xa), min(yf, yf + h * ye), max(xc, xc + w * xa), max(yf, yf + h * ye))
    clipped = image_clip(image, Geometry(box, proj.crs))
    return clipped.with_bands(
        [Band(b.name, b.dtype, b.node, proj, (w, h), b.value_range, b.rank) for b in clipped.bands]
    )


@algorithm("Image.where")
def image_where(input: Image, test: Any, value: Any) -> Image:
    """Replace ``input`` by ``value`` where ``test`` is non-zero.

    As Earth Engine documents: where ``test`` or ``value`` is masked the input value is
    kept, and the output mask is the input's mask ("if the input is masked, nothing is done").
    """
    image, timg, vimg = as_image(input), as_image(test), as_image(value)
    out = []
    pairs = pair_bands(image, timg, "Image.where")
    vbands = [vimg.bands[0]] * len(pairs) if len(vimg.bands) == 1 else list(vimg.bands)
    if len(vbands) != len(pairs):
        raise EngineError("Image.where: value must have 1 band or as many as the input.")
    for (band, tband), vband in zip(pairs, vbands, strict=True):
        dtype = np.promote_types(band.dtype, vband.dtype)

        def fn(px: Pixels, tpx: Pixels, vpx: Pixels, _dt: np.dtype = dtype) -> Pixels:
            take = tpx[1] & (tpx[0] != 0) & vpx[1]
            vals = np.where(take, vpx[0], px[0]).astype(_dt, copy=False)
            return vals, px[1]

        out.append(_with_node(band, FuncNode(fn, [band.node, tband.node, vband.node]), dtype=dtype,
                              value_range=None))  # fmt: skip
    return image.with_bands(out)


class ReprojectNode(PixelNode):
    """Computes its input in a fixed projection, then resamples (nearest) to the request grid."""

    def __init__(self, node: PixelNode, projection: Projection) -> None:
        self.node = node
        self.projection = projection

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        proj = self.projection
        if integer_offset((proj.crs, proj.affine), grid) is not None:
            return ctx.pixels(self.node, grid)
        from rasterio.warp import transform_bounds

        from gee_fusion.local.grid import crs_of

        x0, y0, x1, y1 = transform_bounds(crs_of(grid.crs), crs_of(proj.crs), *grid.bounds())
        inv = ~proj.affine
        cols, rows = zip(*(inv @ (x, y) for x in (x0, x1) for y in (y0, y1)), strict=True)
        c0, r0 = int(np.floor(min(cols))) - 1, int(np.floor(min(rows))) - 1
        c1, r1 = int(np.ceil(max(cols))) + 1, int(np.ceil(max(rows))) + 1
        inner_aff = proj.affine @ Affine.translation(c0, r0)
        inner = PixelGrid(proj.crs, six(inner_aff), max(c1 - c0, 1), max(r1 - r0, 1))
        vals, mask = ctx.pixels(self.node, inner)
        return warp(np.asarray(vals), np.asarray(mask), proj.crs, inner_aff, grid)
