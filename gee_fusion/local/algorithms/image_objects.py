"""Connected objects of an image: ``Image.connectedPixelCount``, ``connectedComponents``,
``reduceConnectedComponents`` (and, in :mod:`image_vectors`, ``reduceToVectors``).

Earth Engine counts, for every pixel, the pixels of its 4- or 8-connected region of equal value
(masked pixels belong to no region), capped at ``maxSize``. The local engine labels the regions in
the request grid grown by ``maxSize`` pixels on every side: a region of fewer than ``maxSize``
pixels lies within ``maxSize - 1`` steps of each of its pixels, so it is whole in that window,
and a larger one shows at least ``maxSize`` of its pixels there; counts are therefore exact,
whatever the tiling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.algorithms.reducers import Reducer
from gee_fusion.local.image import Band, Image, PixelContext, PixelNode, Pixels
from gee_fusion.local.registry import algorithm


def region_sizes(values: np.ndarray, valid: np.ndarray, *, eight: bool) -> np.ndarray:
    """Per pixel, the size of its connected region of equal value (0 where invalid)."""
    from scipy import ndimage

    structure = np.ones((3, 3), bool) if eight else ndimage.generate_binary_structure(2, 1)
    sizes = np.zeros(values.shape, dtype=np.int64)
    for value in np.unique(values[valid]):
        labels, n = ndimage.label(valid & (values == value), structure=structure)
        if n:
            counts = np.bincount(labels.ravel())
            counts[0] = 0
            sizes += counts[labels]
    return sizes


class _CountNode(PixelNode):
    def __init__(self, node: PixelNode, max_size: int, eight: bool) -> None:
        self.node, self.max_size, self.eight = node, max_size, eight

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        pad = self.max_size
        values, valid = ctx.pixels(self.node, grid.padded(pad))
        valid = np.asarray(valid, bool)
        sizes = region_sizes(np.asarray(values), valid, eight=self.eight)
        inner = (slice(pad, pad + grid.height), slice(pad, pad + grid.width))
        return np.minimum(sizes[inner], self.max_size).astype(np.int32), valid[inner]


@algorithm("Image.connectedPixelCount")
def image_connected_pixel_count(input: Any, maxSize: int = 100, eightConnected: bool = True) -> Image:
    """Per band, the number of connected pixels of equal value (including the pixel), capped at
    ``maxSize``; masked where the input is masked."""
    img = as_image(input)
    size = int(maxSize)
    if not 1 <= size <= 1024:
        raise EngineError(f"Image.connectedPixelCount: maxSize must be in [1, 1024], got {maxSize}.")
    return img.with_bands(
        [
            Band(
                b.name,
                np.dtype(np.int32),
                _CountNode(b.node, size, bool(eightConnected)),
                b.projection,
                b.dimensions,
                (0, size),
            )
            for b in img.bands
        ]
    )


# -- connectedComponents / reduceConnectedComponents ----------------------------------------


def _structure(connectedness: Any) -> np.ndarray:
    """The 3 x 3 connectivity of a kernel (``Kernel.plus(1)``: 4-connected, ``square(1)``: 8)."""
    if connectedness is None:
        return np.ones((3, 3), bool)
    weights = connectedness.resolve().weights
    if weights.shape != (3, 3):
        raise EngineError(
            "Image.connectedComponents: connectedness must be a 3 x 3 kernel (plus(1) or square(1))."
        )
    return weights != 0


def _global_ids(grid: PixelGrid) -> np.ndarray:
    """A unique int64 number per pixel of the grid's lattice (the same in any request grid)."""
    a = grid.affine
    col0, row0 = round(a.c / a.a), round(a.f / a.e)
    rows = np.arange(row0, row0 + grid.height, dtype=np.int64) + (1 << 30)
    cols = np.arange(col0, col0 + grid.width, dtype=np.int64) + (1 << 30)
    return (rows[:, None] << 31) + cols[None, :]


def label_regions(values: np.ndarray, valid: np.ndarray, structure: np.ndarray) -> tuple[np.ndarray, int]:
    """Label connected regions of equal value (0 where invalid), numbered 1..n."""
    from scipy import ndimage

    labels = np.zeros(values.shape, dtype=np.int64)
    n = 0
    for value in np.unique(values[valid]):
        part, k = ndimage.label(valid & (values == value), structure=structure)
        labels[part > 0] = part[part > 0] + n
        n += k
    return labels, n


class _LabelNode(PixelNode):
    """Component labels: the smallest global pixel number of each component; masked beyond maxSize."""

    def __init__(self, node: PixelNode, structure: np.ndarray, max_size: int) -> None:
        self.node, self.structure, self.max_size = node, structure, max_size

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        from scipy import ndimage

        pad = self.max_size + 1  # a component of <= maxSize pixels lies whole in the window
        big = grid.padded(pad)
        values, valid = ctx.pixels(self.node, big)
        valid = np.asarray(valid, bool)
        labels, n = label_regions(np.asarray(values), valid, self.structure)
        ids = _global_ids(big)
        first = np.asarray(ndimage.minimum(ids, labels, index=np.arange(1, n + 1)), dtype=np.int64)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        out = np.concatenate([[0], first])[labels]
        ok = valid & (sizes[labels] <= self.max_size)
        inner = (slice(pad, pad + grid.height), slice(pad, pad + grid.width))
        return np.where(ok, out, 0)[inner], ok[inner]


@algorithm("Image.connectedComponents")
def image_connected_components(image: Any, connectedness: Any, maxSize: int = 256) -> Image:
    """The input plus a ``labels`` band: components of equal value of the first band get one unique
    label (the same whatever the tiling); components of more than ``maxSize`` pixels are masked."""
    img = as_image(image)
    if not img.bands:
        raise EngineError("Image.connectedComponents: the image has no bands.")
    size = int(maxSize)
    if not 1 <= size <= 1024:
        raise EngineError(f"Image.connectedComponents: maxSize must be in [1, 1024], got {maxSize}.")
    first = img.bands[0]
    node = _LabelNode(first.node, _structure(connectedness), size)
    labels = Band("labels", np.dtype(np.int64), node, first.projection, first.dimensions)
    return img.with_bands([*img.bands, labels])


class _ObjectReduceNode(PixelNode):
    """One band reduced over each object of the label band (masked where the object is too wide)."""

    def __init__(self, node: PixelNode, label: PixelNode, reducer: Reducer, max_size: int) -> None:
        self.node, self.label, self.reducer, self.max_size = node, label, reducer, max_size

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node, self.label)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        from scipy import ndimage

        pad = self.max_size
        big = grid.padded(pad)
        lab_v, lab_m = ctx.pixels(self.label, big)
        vals, val_m = ctx.pixels(self.node, big)
        lab_m = np.asarray(lab_m, bool)
        labels, n = label_regions(np.asarray(lab_v), lab_m, np.ones((3, 3), bool))
        use = labels * np.asarray(val_m, bool)
        index = np.arange(1, n + 1)
        reduced = _object_reduce(self.reducer, np.asarray(vals, dtype=np.float64), use, index)
        slices = ndimage.find_objects(labels)
        wide = np.array([s is None or max(s[0].stop - s[0].start, s[1].stop - s[1].start) > self.max_size
                         for s in slices], dtype=bool)  # fmt: skip
        ok_obj = np.concatenate([[False], ~wide & ~np.isnan(reduced)])
        out = np.concatenate([[0.0], np.nan_to_num(reduced)])[labels]
        inner = (slice(pad, pad + grid.height), slice(pad, pad + grid.width))
        return out[inner], (lab_m & ok_obj[labels])[inner]


def _object_reduce(reducer: Reducer, values: np.ndarray, labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per object (1..n), the reducer of its valid pixels (NaN for none)."""
    from scipy import ndimage

    if len(reducer.outputs) != 1 or reducer.inputs != 1:
        raise EngineError("Image.reduceConnectedComponents: use a single-input, single-output reducer.")
    n = len(index)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    total = np.bincount(flat, weights=values.ravel(), minlength=n + 1)[1:]
    kind = reducer.kind
    with np.errstate(all="ignore"):
        if kind in ("count", "countEvery"):
            return count
        if kind == "sum":
            return np.where(count > 0, total, np.nan)
        mean = total / count
        if kind == "mean":
            return mean
        if kind in ("variance", "stdDev"):
            sq = np.bincount(flat, weights=values.ravel() ** 2, minlength=n + 1)[1:]
            var = np.maximum(sq / count - mean**2, 0)
            return var if kind == "variance" else np.sqrt(var)
    funcs = {"min": ndimage.minimum, "max": ndimage.maximum, "median": ndimage.median}
    if kind not in funcs:
        raise EngineError(
            f"Image.reduceConnectedComponents: Reducer.{kind} is not supported locally yet "
            "(mean, sum, count, min, max, median, variance, stdDev are)."
        )
    out = np.asarray(funcs[kind](values, labels, index=index), dtype=np.float64)
    return np.where(count > 0, out, np.nan)


@algorithm("Image.reduceConnectedComponents")
def image_reduce_connected_components(image: Any, reducer: Reducer, labelBand: str | None = None,
                                      maxSize: int = 256) -> Image:  # fmt: skip
    """Every other band reduced over each 8-connected object of equal ``labelBand`` value; objects
    wider or taller than ``maxSize`` pixels are masked (they may reach outside the neighbourhood)."""
    img = as_image(image)
    names = img.band_names
    label_name = labelBand or "labels"
    if label_name not in names:
        raise EngineError(f"Image.reduceConnectedComponents: Pattern '{label_name}' did not match any bands.")
    label = img.bands[names.index(label_name)]
    size = int(maxSize)
    return img.with_bands([
        Band(b.name, np.dtype(np.float64), _ObjectReduceNode(b.node, label.node, reducer, size),
             b.projection, b.dimensions)
        for b in img.bands if b.name != label_name
    ])  # fmt: skip
