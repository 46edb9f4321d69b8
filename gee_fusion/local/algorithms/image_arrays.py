"""Array images: pixels that hold arrays (``Image.toArray``, ``ImageCollection.toArray``, the
``array*`` and ``matrix*`` image algorithms).

An array band's values are ``(height, width, *shape)`` float64 with the pixel mask ``(height,
width)``. Earth Engine lets the array length differ from pixel to pixel (``ImageCollection.toArray``
drops the images masked at a pixel, ``arrayMask`` and ``arraySlice`` with per-pixel bounds); here
every pixel of a band shares one padded shape and absent elements are NaN at the end of their axis.
Lengths, negative indices, reductions and sorting use the present elements only. The kernels are
those of ``ee.Array`` (:mod:`gee_fusion.local.algorithms.arrays`), run with two leading pixel axes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms import arrays as K
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.algorithms.reducers import Reducer
from gee_fusion.local.image import Band, FuncNode, Image, PixelNode, Pixels
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import ImageCollection

LEAD = 2  # the (height, width) axes in front of each pixel's array


def _array_band(like: Band, name: str, rank: int, node: PixelNode) -> Band:
    return Band(name, np.dtype(np.float64), node, like.projection, like.dimensions, None, rank)


def _only_band(image: Image, where: str) -> Band:
    if len(image.bands) != 1:
        raise EngineError(f"{where}: expected a single-band image, got {len(image.bands)} bands.")
    return image.bands[0]


def _per_band(image: Image, where: str, rank_of: Callable[[Band], int],
              fn: Callable[[np.ndarray, Band], np.ndarray]) -> Image:  # fmt: skip
    """Apply ``fn`` to the array of every band; masks kept."""
    bands = []
    for band in image.bands:
        if band.rank == 0:
            raise EngineError(f"{where}: band '{band.name}' holds scalars, not arrays (use toArray() first).")

        def compute(px: Pixels, _b: Band = band) -> Pixels:
            return fn(np.asarray(px[0], dtype=np.float64), _b), px[1]

        bands.append(_array_band(band, band.name, rank_of(band), FuncNode(compute, [band.node])))
    return image.with_bands(bands)


def _lengths(values: np.ndarray, axis: int) -> np.ndarray:
    """Per pixel, the number of present (not all-NaN) positions along array ``axis``."""
    present = ~np.isnan(values)
    other = tuple(LEAD + ax for ax in range(values.ndim - LEAD) if ax != axis)
    along = present.any(axis=other) if other else present
    return along.sum(axis=-1)


# -- building arrays ------------------------------------------------------------------------


@algorithm("Image.toArray")
def image_to_array(image: Image, axis: int = 0) -> Image:
    """Concatenate the bands of each pixel into one array band named ``array``.

    Scalar bands give a 1-D array (``axis`` 0); array bands are concatenated along ``axis``, which
    may equal their rank to add an axis (``toArray(1)`` of a 1-D array image gives n x 1).
    """
    if not image.bands:
        raise EngineError("Image.toArray: the image has no bands.")
    ranks = {b.rank for b in image.bands}
    if len(ranks) != 1:
        raise EngineError("Image.toArray: all bands must have the same number of array dimensions.")
    rank = ranks.pop()
    if not 0 <= axis <= rank:
        raise EngineError(f"Image.toArray: axis {axis} must be between 0 and {rank}.")

    def compute(*pxs: Pixels) -> Pixels:
        parts = [np.asarray(v, dtype=np.float64) for v, _ in pxs]
        if axis == rank:
            parts = [p[..., None] for p in parts]
        mask = np.logical_and.reduce([np.asarray(m) for _, m in pxs])
        return np.concatenate(parts, axis=LEAD + axis), mask

    first = image.bands[0]
    node = FuncNode(compute, [b.node for b in image.bands])
    return image.with_bands([_array_band(first, "array", rank + (axis == rank), node)])


@algorithm("ImageCollection.toArray")
def collection_to_array(collection: ImageCollection) -> Image:
    """Per pixel, a T x B array of the images valid in every band there (in collection order)."""
    images = [im for im in collection.elements if isinstance(im, Image)]
    if not images:
        return Image(())
    counts = {len(im.bands) for im in images}
    if len(counts) != 1:
        raise EngineError("ImageCollection.toArray: all images must have the same number of bands.")
    nodes = [b.node for im in images for b in im.bands]
    nb = counts.pop()

    def compute(*pxs: Pixels) -> Pixels:
        vals = np.stack([np.asarray(v, dtype=np.float64) for v, _ in pxs])  # (T*B, h, w)
        masks = np.stack([np.asarray(m) for _, m in pxs])
        t = len(images)
        vals = vals.reshape((t, nb, *vals.shape[1:]))
        valid = masks.reshape((t, nb, *masks.shape[1:])).all(axis=1)  # (T, h, w)
        order = np.argsort(~valid, axis=0, kind="stable")  # valid images first, in order
        vals = np.take_along_axis(vals, order[:, None], axis=0)
        keep = np.take_along_axis(valid, order, axis=0)
        vals = np.where(keep[:, None], vals, np.nan)
        return np.moveaxis(vals, (0, 1), (-2, -1)), np.asarray(valid.any(axis=0))

    node = FuncNode(compute, nodes)
    node.footprint_rule = "union"  # the images of a collection
    return Image((_array_band(images[0].bands[0], "array", 2, node),))


@algorithm("Image.arrayCat")
def image_array_cat(image1: Image, image2: Image, axis: int) -> Image:
    """Concatenate two single-band array images along ``axis``."""
    a, b = _only_band(image1, "Image.arrayCat"), _only_band(image2, "Image.arrayCat")

    def compute(pa: Pixels, pb: Pixels) -> Pixels:
        return K.concatenate([np.asarray(pa[0], np.float64), np.asarray(pb[0], np.float64)], axis, LEAD), pa[
            1
        ] & pb[1]

    return image1.with_bands([_array_band(a, a.name, a.rank, FuncNode(compute, [a.node, b.node]))])


# -- shape ----------------------------------------------------------------------------------


@algorithm("Image.arrayProject")
def image_array_project(input: Image, axes: list[int]) -> Image:
    """Keep ``axes`` of each pixel's array; the others must have length 1."""
    return _per_band(input, "Image.arrayProject", lambda b: len(axes),
                     lambda v, b: K.project(v, axes, LEAD))  # fmt: skip


@algorithm("Image.arrayTranspose", "Image.matrixTranspose")
def image_array_transpose(input: Image, axis1: int = 0, axis2: int = 1) -> Image:
    """Swap two array axes of every pixel."""
    return _per_band(input, "Image.arrayTranspose", lambda b: b.rank,
                     lambda v, b: K.transpose(v, axis1, axis2, LEAD))  # fmt: skip


@algorithm("Image.arrayFlatten")
def image_array_flatten(image: Image, coordinateLabels: list[list[str]], separator: str = "_") -> Image:
    """One scalar band per array element, named from the labels of each axis joined by ``separator``.

    An element absent at a pixel (a shorter array there) is masked in its band.
    """
    band = _only_band(image, "Image.arrayFlatten")
    if len(coordinateLabels) != band.rank:
        raise EngineError(
            f"Image.arrayFlatten: Incorrect number of dimensions: the array has {band.rank}, "
            f"{len(coordinateLabels)} label lists were given."
        )
    shape = tuple(len(labels) for labels in coordinateLabels)
    positions = list(np.ndindex(*shape))
    bands = []
    for pos in positions:
        name = separator.join(str(coordinateLabels[ax][i]) for ax, i in enumerate(pos))

        def compute(px: Pixels, _pos: tuple[int, ...] = pos) -> Pixels:
            values = np.asarray(px[0], dtype=np.float64)
            if values.shape[LEAD:] != shape:
                raise EngineError(
                    f"Image.arrayFlatten: Incorrect number of labels: the array shape is "
                    f"{list(values.shape[LEAD:])}, the labels give {list(shape)}."
                )
            index: tuple[Any, ...] = (slice(None), slice(None), *_pos)
            element = values[index]
            return np.nan_to_num(element), np.asarray(px[1]) & ~np.isnan(element)

        bands.append(Band(name, np.dtype(np.float64), FuncNode(compute, [band.node]),
                          band.projection, band.dimensions))  # fmt: skip
    return image.with_bands(bands)


@algorithm("Image.arrayLength")
def image_array_length(input: Image, axis: int) -> Image:
    """Per pixel, the length of the array along ``axis`` (absent trailing elements not counted)."""
    bands = []
    for band in input.bands:
        ax = K._axis(axis, max(band.rank, 1), "Image.arrayLength")

        def compute(px: Pixels, _ax: int = ax) -> Pixels:
            return _lengths(np.asarray(px[0], dtype=np.float64), _ax).astype(np.int32), px[1]

        bands.append(Band(band.name, np.dtype(np.int32), FuncNode(compute, [band.node]),
                          band.projection, band.dimensions))  # fmt: skip
    return input.with_bands(bands)


@algorithm("Image.arrayLengths")
def image_array_lengths(input: Image) -> Image:
    """Per pixel, a 1-D array of the lengths along every axis."""

    def lengths(v: np.ndarray, b: Band) -> np.ndarray:
        return np.stack([_lengths(v, ax) for ax in range(b.rank)], -1).astype(float)

    return _per_band(input, "Image.arrayLengths", lambda b: 1, lengths)


@algorithm("Image.arrayDimensions")
def image_array_dimensions(input: Image) -> Image:
    """The number of array dimensions of each band (0 for scalar bands)."""
    from gee_fusion.local.algorithms._common import constant_image

    return input.with_bands([constant_image(b.rank).bands[0].renamed(b.name) for b in input.bands])


# -- elements -------------------------------------------------------------------------------


def _gather(values: np.ndarray, axis: int, index: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Take, per pixel, positions ``index`` (h, w, k) along array ``axis``; NaN where not ``ok``."""
    ax = LEAD + axis
    n = values.shape[ax]
    safe = np.clip(index, 0, max(n - 1, 0)).astype(np.intp)
    shape = [1] * values.ndim
    shape[0], shape[1], shape[ax] = safe.shape[0], safe.shape[1], safe.shape[2]
    taken = np.take_along_axis(values, safe.reshape(shape), axis=ax) if n else np.full(
        (*values.shape[:ax], safe.shape[2], *values.shape[ax + 1:]), np.nan)  # fmt: skip
    return np.where(ok.reshape(shape), taken, np.nan)


@algorithm("Image.arraySlice")
def image_array_slice(input: Image, axis: int = 0, start: Any = 0, end: Any = None, step: int = 1) -> Image:
    """Sub-array along ``axis`` from ``start`` (inclusive) to ``end`` (exclusive) by ``step``.

    ``start`` and ``end`` may be images (one value per pixel); negative values count back from each
    pixel's own length, as in Earth Engine.
    """
    if int(step) <= 0:
        raise EngineError("Image.arraySlice: step must be positive.")
    start_img = as_image(start)
    end_img = None if end is None else as_image(end)
    bands = []
    for band in input.bands:
        ax = K._axis(axis, max(band.rank, 1), "Image.arraySlice")
        nodes = [band.node, start_img.bands[0].node] + ([end_img.bands[0].node] if end_img else [])

        def compute(px: Pixels, ps: Pixels, *pe: Pixels, _ax: int = ax) -> Pixels:
            values = np.asarray(px[0], dtype=np.float64)
            length = _lengths(values, _ax)
            lo = np.broadcast_to(np.asarray(ps[0], dtype=np.int64), length.shape)
            hi = np.broadcast_to(np.asarray(pe[0][0], dtype=np.int64), length.shape) if pe else length
            lo = np.clip(np.where(lo < 0, length + lo, lo), 0, length)
            hi = np.clip(np.where(hi < 0, length + hi, hi), 0, length)
            count = np.maximum(-(-(hi - lo) // int(step)), 0)
            k = int(count.max()) if count.size else 0
            index = lo[..., None] + int(step) * np.arange(k)
            ok = np.arange(k) < count[..., None]
            mask = np.asarray(px[1]) & np.asarray(ps[1]) & (np.asarray(pe[0][1]) if pe else True)
            return _gather(values, _ax, index, ok), mask

        bands.append(_array_band(band, band.name, band.rank, FuncNode(compute, nodes)))
    return input.with_bands(bands)


@algorithm("Image.arrayGet")
def image_array_get(image: Image, position: Any) -> Image:
    """The element at ``position`` (one band or value per axis; negative counts from the end)."""
    pos = as_image(position)
    bands = []
    for band in image.bands:
        if len(pos.bands) != band.rank:
            raise EngineError(
                f"Image.arrayGet: the position has {len(pos.bands)} bands but the array has "
                f"{band.rank} dimensions."
            )

        def compute(px: Pixels, *pp: Pixels) -> Pixels:
            values = np.asarray(px[0], dtype=np.float64)
            ok = np.asarray(px[1]).copy()
            out = values
            for ax, (p, m) in enumerate(pp):
                length = _lengths(values, ax)
                idx = np.broadcast_to(np.asarray(p, dtype=np.int64), length.shape)
                idx = np.where(idx < 0, length + idx, idx)
                inside = (idx >= 0) & (idx < length)
                ok &= inside & np.asarray(m)
                out = _gather(out, 0, idx[..., None], inside[..., None])[:, :, 0]
            return np.nan_to_num(out), ok & ~np.isnan(out)

        node = FuncNode(compute, [band.node, *(b.node for b in pos.bands)])
        bands.append(Band(band.name, np.dtype(np.float64), node,
                          band.projection, band.dimensions))  # fmt: skip
    return image.with_bands(bands)


def _absent_last(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Keys with NaN at the positions absent from the values, so those sort last."""
    absent = np.isnan(values)
    if values.ndim > LEAD + 1:
        absent = absent.reshape((*absent.shape[: LEAD + 1], -1)).all(axis=-1)
    shape = absent.shape + (1,) * (keys.ndim - absent.ndim)
    if keys.shape[: LEAD + 1] != absent.shape:
        return keys
    return np.where(absent.reshape(shape), np.nan, keys)


@algorithm("Image.arraySort")
def image_array_sort(image: Image, keys: Image | None = None) -> Image:
    """Sort each pixel's array along its first axis, by its values or by ``keys`` (absent last)."""
    key_band = None if keys is None else _only_band(keys, "Image.arraySort")
    bands = []
    for band in image.bands:
        nodes = [band.node] + ([key_band.node] if key_band else [])

        def compute(px: Pixels, *pk: Pixels) -> Pixels:
            values = np.asarray(px[0], dtype=np.float64)
            k = _absent_last(values, np.asarray(pk[0][0], dtype=np.float64)) if pk else None
            mask = np.asarray(px[1]) & (np.asarray(pk[0][1]) if pk else True)
            return K.sort_by_keys(values, k, LEAD), mask

        bands.append(_array_band(band, band.name, band.rank, FuncNode(compute, nodes)))
    return image.with_bands(bands)


@algorithm("Image.arrayMask")
def image_array_mask(input: Image, mask: Image) -> Image:
    """Keep the positions of the first axis where ``mask`` is non-zero (compacted, in order)."""
    m_band = _only_band(mask, "Image.arrayMask")
    bands = []
    for band in input.bands:

        def compute(px: Pixels, pm: Pixels) -> Pixels:
            values = np.asarray(px[0], dtype=np.float64)
            keep = np.asarray(pm[0]) != 0
            keep = keep.reshape((*keep.shape[: LEAD + 1], -1)).any(axis=-1) if keep.ndim > LEAD + 1 else keep
            keep = np.broadcast_to(keep, values.shape[: LEAD + 1])
            order = np.argsort(~keep, axis=-1, kind="stable")
            count = keep.sum(axis=-1)
            ok = np.arange(values.shape[LEAD]) < count[..., None]
            return _gather(values, 0, order, ok), np.asarray(px[1]) & np.asarray(pm[1])

        bands.append(_array_band(band, band.name, band.rank, FuncNode(compute, [band.node, m_band.node])))
    return input.with_bands(bands)


@algorithm("Image.arrayArgmax")
def image_array_argmax(image: Image) -> Image:
    """Per pixel, the position of the largest element (a 1-D array with one index per axis)."""
    return _per_band(image, "Image.arrayArgmax", lambda b: 1, lambda v, b: K.argmax(v, LEAD))


@algorithm("Image.arrayReduce")
def image_array_reduce(
    input: Image, reducer: Reducer, axes: list[int], fieldAxis: int | None = None
) -> Image:
    """Reduce each pixel's array along ``axes`` (each kept with length 1), skipping absent elements."""
    if fieldAxis is not None:
        raise EngineError("Image.arrayReduce: fieldAxis (multi-input reducers) is not supported locally yet.")
    return _per_band(input, "Image.arrayReduce", lambda b: b.rank,
                     lambda v, b: K.reduce_axes(v, reducer, axes, LEAD))  # fmt: skip


@algorithm("Image.arrayAccum")
def image_array_accum(input: Image, axis: int, reducer: Reducer | None = None) -> Image:
    """Running reduction along ``axis`` (sum by default)."""
    fn = K.array_accum
    return _per_band(input, "Image.arrayAccum", lambda b: b.rank,
                     lambda v, b: fn(v, LEAD + K._axis(axis, b.rank), reducer))  # fmt: skip


@algorithm("Image.arrayDotProduct")
def image_array_dot(image1: Image, image2: Image) -> Image:
    """Per pixel, the dot product of two 1-D arrays."""
    a, b = _only_band(image1, "Image.arrayDotProduct"), _only_band(image2, "Image.arrayDotProduct")

    def compute(pa: Pixels, pb: Pixels) -> Pixels:
        out = (np.asarray(pa[0], np.float64) * np.asarray(pb[0], np.float64)).sum(axis=-1)
        return out, pa[1] & pb[1]

    return image1.with_bands([Band(a.name, np.dtype(np.float64), FuncNode(compute, [a.node, b.node]),
                                   a.projection, a.dimensions)])  # fmt: skip


# -- matrices -------------------------------------------------------------------------------


@algorithm("Image.matrixMultiply")
def image_matrix_multiply(image1: Image, image2: Image) -> Image:
    """Per pixel, the matrix product image1 @ image2 (band pairing as in arithmetic)."""
    from gee_fusion.local.algorithms.image_mask import pair_bands

    a_img, b_img = as_image(image1), as_image(image2)
    bands = []
    for a, b in pair_bands(a_img, b_img, "Image.matrixMultiply"):

        def compute(pa: Pixels, pb: Pixels) -> Pixels:
            return K.matrix_multiply(np.asarray(pa[0]), np.asarray(pb[0]), LEAD), pa[1] & pb[1]

        ref = a if a.dimensions is not None or b.dimensions is None else b
        bands.append(_array_band(ref, a.name, 2, FuncNode(compute, [a.node, b.node])))
    return Image(tuple(bands))


def _matrix_image(name: str, rank: int, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    def run(value: Image) -> Image:
        def kernel(v: np.ndarray, b: Band) -> np.ndarray:
            with np.errstate(all="ignore"):
                return fn(v)

        return _per_band(as_image(value), f"Image.{name}", lambda b: rank, kernel)  # rank 0: scalars

    algorithm(f"Image.{name}")(run)


def _safe(name: str) -> Callable[[np.ndarray], np.ndarray]:
    def fn(v: np.ndarray) -> np.ndarray:
        try:
            return K.matrix_unary(name, v, LEAD)
        except EngineError:
            return np.full(v.shape, np.nan)

    return fn


_matrix_image("matrixInverse", 2, _safe("matrixInverse"))
_matrix_image("matrixPseudoInverse", 2, _safe("matrixPseudoInverse"))
_matrix_image("matrixDeterminant", 0, _safe("matrixDeterminant"))
_matrix_image("matrixTrace", 0, _safe("matrixTrace"))
_matrix_image("matrixFnorm", 0, _safe("matrixFnorm"))
_matrix_image("matrixDiagonal", 2, lambda v: K.diagonal(v, LEAD))
_matrix_image("matrixToDiag", 2, lambda v: K.to_diagonal(v, LEAD))
