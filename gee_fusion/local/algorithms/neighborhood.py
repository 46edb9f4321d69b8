"""Neighbourhood operators: convolve, reduceNeighborhood, the focal filters and
neighborhoodToBands.

Every operator is pulled like the rest of the engine: to compute a request grid it asks its
input for the grid grown by the kernel's reach (``PixelGrid.padded``), then reads shifted windows
of that padded array, so a tile gives the same pixels as the same part of a bigger request.
Pixels outside the input's footprint come back masked from the leaves and are skipped like any
other masked pixel.

Semantics (Earth Engine's where documented, else the choice stated here):

- ``reduceNeighborhood``: masked pixels in the window are skipped. With ``skipMasked`` (the
  default) the output is masked where the centre pixel is masked; without it, wherever the
  window holds no valid pixel. ``mean``, ``sum``, ``variance`` and ``stdDev`` are weighted by
  ``inputWeight`` ('kernel': the kernel weight, 'mask': 1, 'min': min(kernel weight, 1), since
  local masks are binary), so ``sum`` with a normalised kernel is a weighted sum; the other
  reducers (count, min, max, minMax, median, percentile, mode, ...) use every pixel under a
  non-zero weight once, unweighted. Single-input reducers name their bands
  ``<band>_<output>``; a non-shared ``Reducer.combine`` of single-input reducers takes one band
  each and uses its output names directly. ``optimization`` is accepted and ignored (the
  result does not depend on it).
- focal filters (``focalMin`` ... and their snake_case names): ``reduceNeighborhood`` with the
  named or given kernel, applied ``iterations`` times; band names are kept.
- ``convolve``: the kernel is applied as given (a correlation, no flip). Masked pixels do not
  contribute. For kernels without negative weights the sum is rescaled by
  ``total weight / valid weight`` (so a normalised kernel gives the weighted mean of the valid
  pixels); the output is masked where the centre pixel is masked. Kernels with negative
  weights (edge detectors) are not rescaled; their output is masked wherever a pixel under a
  non-zero weight is masked. Output is float (double for double and 32-bit integer inputs).
- ``neighborhoodToBands``: one band per non-zero kernel weight, named
  ``<band>_<dx>_<dy>`` with ``dx`` (columns, right positive) and ``dy`` (rows, down positive)
  the offsets from the kernel's focus, in row order; values and masks of the shifted pixel.
  A kernel in metres is resolved with the image's default projection (its nominal scale).

Input properties are kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.algorithms._common import as_image, float_of
from gee_fusion.local.algorithms.kernels import Kernel, KernelWeights, focal_kernel
from gee_fusion.local.algorithms.reducers import Reducer, reducer_median
from gee_fusion.local.grid import Projection
from gee_fusion.local.image import Band, Image, PixelContext, PixelNode, Pixels
from gee_fusion.local.registry import algorithm

STACK_CHUNK = 1 << 24
"""Most elements of a (window, rows, cols) stack held at once by the stacking reducers."""

_WEIGHTED = ("mean", "sum", "variance", "stdDev")
_WEIGHT_MODES = ("kernel", "mask", "min")


class Window:
    """The padded pixels of one band and a resolved kernel: shifted views on the output grid."""

    def __init__(
        self, values: np.ndarray, valid: np.ndarray, kw: KernelWeights, shape: tuple[int, int]
    ) -> None:
        self.values = values
        self.valid = valid
        self.kw = kw
        self.pad = kw.pad
        self.h, self.w = shape
        self.offsets = kw.offsets()
        self.cache: dict[Any, Any] = {}
        if not self.offsets:
            raise EngineError("The kernel has no non-zero weight: the neighbourhood is empty.")

    def view(self, array: np.ndarray, dy: int, dx: int, r0: int = 0, r1: int | None = None) -> np.ndarray:
        """``array`` shifted by (dy, dx), rows ``r0:r1`` of the output grid."""
        p, r1 = self.pad, self.h if r1 is None else r1
        return array[p + dy + r0 : p + dy + r1, p + dx : p + dx + self.w]

    @property
    def centre_valid(self) -> np.ndarray:
        """Validity of the centre pixels (the input in the output grid)."""
        return np.asarray(self.view(self.valid, 0, 0), dtype=bool)

    def stacks(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, valid) of every window pixel for rows ``r0:r1``: (n, rows, cols) arrays."""
        vals = np.stack([self.view(self.values, dy, dx, r0, r1) for dy, dx, _ in self.offsets])
        valid = np.stack([self.view(self.valid, dy, dx, r0, r1) for dy, dx, _ in self.offsets])
        return vals, valid.astype(bool, copy=False)

    @functools.cached_property
    def zero_filled(self) -> np.ndarray:
        """The padded values as float64, 0 where masked."""
        return np.where(self.valid, self.values, 0).astype(np.float64)

    @functools.cached_property
    def valid64(self) -> np.ndarray:
        """The padded validity as float64 (1 valid, 0 masked)."""
        return np.asarray(self.valid, dtype=np.float64)

    def centred(self, weights: list[float]) -> np.ndarray:
        """``weights`` (one per offset) as a (2 pad + 1)² array with the focus at its centre."""
        p = self.pad
        out = np.zeros((2 * p + 1, 2 * p + 1))
        for (dy, dx, _), w in zip(self.offsets, weights, strict=True):
            out[p + dy, p + dx] = w
        return out

    def correlate(self, padded: np.ndarray, weights: list[float]) -> np.ndarray:
        """``sum(w * padded[r + dy, c + dx])`` on the output grid.

        scipy applies the same arithmetic at every pixel, so tiles agree with whole requests.
        It skips weights below 2.2e-16, so the weights are scaled to a largest weight of 1 first.
        """
        p = self.pad
        scale = max(abs(w) for w in weights)
        if scale == 0:
            return np.zeros((self.h, self.w))
        full = ndimage.correlate(padded, self.centred(weights) / scale, mode="constant", cval=0.0)
        return full[p : p + self.h, p : p + self.w] * scale

    def count(self) -> np.ndarray:
        """Number of valid pixels under the kernel's non-zero weights."""
        if "count" not in self.cache:
            n = self.correlate(self.valid64, [1.0] * len(self.offsets))
            self.cache["count"] = np.rint(n).astype(np.int64)
        return self.cache["count"]

    def row_chunks(self) -> list[tuple[int, int]]:
        """Row ranges whose stacks hold at most :data:`STACK_CHUNK` elements."""
        rows = max(1, STACK_CHUNK // max(len(self.offsets) * self.w, 1))
        return [(r, min(r + rows, self.h)) for r in range(0, self.h, rows)]


WindowFn = Callable[[Window], list[Pixels]]


class NeighborhoodNode(PixelNode):
    """Computes all outputs of one band's neighbourhood operation (memoised as one entry)."""

    def __init__(self, node: PixelNode, kernel: Kernel, fn: WindowFn) -> None:
        self.node = node
        self.kernel = kernel
        self.fn = fn

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Any:
        scale = Projection(grid.crs, grid.transform).nominal_scale if self.kernel.units == "meters" else None
        kw = self.kernel.resolve(scale)
        values, valid = ctx.pixels(self.node, grid.padded(kw.pad))
        return self.fn(Window(np.asarray(values), np.asarray(valid), kw, grid.shape))


class PickNode(PixelNode):
    """Output ``index`` of a :class:`NeighborhoodNode`."""

    def __init__(self, shared: NeighborhoodNode, index: int) -> None:
        self.shared = shared
        self.index = index

    def children(self) -> tuple[PixelNode, ...]:
        return (self.shared,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        outs: Any = ctx.pixels(self.shared, grid)
        return outs[self.index]


class ShiftNode(PixelNode):
    """The input shifted by (dy, dx) pixels, read from the grid padded by ``pad``."""

    def __init__(self, node: PixelNode, pad: int, dy: int, dx: int) -> None:
        self.node, self.pad, self.dy, self.dx = node, pad, dy, dx

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        values, valid = ctx.pixels(self.node, grid.padded(self.pad))
        p, h, w = self.pad, grid.height, grid.width
        rows, cols = slice(p + self.dy, p + self.dy + h), slice(p + self.dx, p + self.dx + w)
        return np.asarray(values)[rows, cols], np.asarray(valid)[rows, cols]


# -- reductions over a window -----------------------------------------------------------------


def _float(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.kind == "f" else float_of(dtype)


def _weight(mode: str, w: float) -> float:
    if mode == "mask":
        return 1.0
    if mode == "min":
        return min(w, 1.0)
    return w


def _fill(dtype: np.dtype, high: bool) -> Any:
    if dtype.kind == "f":
        return np.inf if high else -np.inf
    if dtype.kind == "b":
        return high
    info = np.iinfo(dtype)
    return info.max if high else info.min


def _moments(win: Window, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(weight sum, weighted sum, mean, has data) of the window, cached per weighting."""
    key = ("moments", mode)
    if key not in win.cache:
        ws = [_weight(mode, w) for _, _, w in win.offsets]
        s0 = win.correlate(win.valid64, ws)
        s1 = win.correlate(win.zero_filled, ws)
        has = (win.count() > 0) & (s0 != 0)
        mean = np.where(has, s1 / np.where(has, s0, 1.0), 0.0)
        win.cache[key] = (s0, s1, mean, has)
    return win.cache[key]


def _weighted(kind: str, win: Window, mode: str) -> Pixels:
    """Weighted sum / mean / variance / stdDev (float64), valid where the window has data.

    The variance is the exact two-pass sum of squared deviations from each pixel's mean.
    """
    s0, s1, mean, has = _moments(win, mode)
    if kind == "sum":
        return s1, win.count() > 0
    if kind == "mean":
        return mean, has
    key = ("variance", mode)
    if key not in win.cache:
        s2 = np.zeros((win.h, win.w))
        for dy, dx, w in win.offsets:
            d = win.view(win.zero_filled, dy, dx) - mean
            s2 += _weight(mode, w) * win.view(win.valid64, dy, dx) * (d * d)
        win.cache[key] = np.where(has, s2 / np.where(has, s0, 1.0), 0.0)
    var = win.cache[key]
    return (var if kind == "variance" else np.sqrt(np.maximum(var, 0.0))), has


def _extreme(which: str, win: Window) -> Pixels:
    """Minimum or maximum of the valid window pixels (scipy's rank filters, exact)."""
    dtype = win.values.dtype
    work = dtype if dtype.kind != "b" else np.dtype(np.uint8)
    fill = np.asarray(_fill(work, high=(which == "min")), dtype=work)
    filled = np.where(win.valid, win.values, fill).astype(work, copy=False)
    footprint = win.centred([1.0] * len(win.offsets)) != 0
    fn = ndimage.minimum_filter if which == "min" else ndimage.maximum_filter
    p = win.pad
    acc = fn(filled, footprint=footprint, mode="constant", cval=fill)[p : p + win.h, p : p + win.w]
    has = win.count() > 0
    return np.where(has, acc, np.zeros((), dtype=work)).astype(dtype, copy=False), has


def stack_mode(values: np.ndarray, valid: np.ndarray) -> Pixels:
    """Most frequent valid value along axis 0 (ties: the smallest), vectorised by sorting."""
    work = np.where(valid, values.astype(np.float64), np.nan)
    work.sort(axis=0)  # NaN (masked) last
    idx = np.arange(work.shape[0]).reshape(-1, *([1] * (work.ndim - 1)))
    new = np.ones(work.shape, dtype=bool)
    new[1:] = work[1:] != work[:-1]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=0)
    run = np.where(np.isnan(work), 0, idx - start + 1)
    best = np.argmax(run, axis=0)
    picked = np.take_along_axis(work, best[None], axis=0)[0]
    has: np.ndarray = np.asarray(valid.any(axis=0))
    return np.where(has, picked, 0).astype(values.dtype), has


def _stacked(red: Reducer, win: Window) -> list[Pixels]:
    """Any per-pixel reducer on the stacked window (row chunks bound the memory)."""
    parts: list[list[Pixels]] = []
    for r0, r1 in win.row_chunks():
        vals, valid = win.stacks(r0, r1)
        parts.append([stack_mode(vals, valid)] if red.kind == "mode" else red.reduce_stack(vals, valid))
    return [
        (np.concatenate([p[i][0] for p in parts]), np.concatenate([p[i][1] for p in parts]))
        for i in range(len(parts[0]))
    ]


def reduce_window(red: Reducer, win: Window, mode: str) -> list[Pixels]:
    """Every output of ``red`` over the window (before centre masking and casting)."""
    if red.kind == "combine":
        first, second = red.params["reducers"]
        return reduce_window(first, win, mode) + reduce_window(second, win, mode)
    if red.kind in _WEIGHTED:
        return [_weighted(red.kind, win, mode)]
    if red.kind == "count":
        return [(win.count().astype(np.int32), np.ones((win.h, win.w), dtype=bool))]
    if red.kind in ("min", "max"):
        return [_extreme(red.kind, win)]
    if red.kind == "minMax":
        return [_extreme("min", win), _extreme("max", win)]
    return _stacked(red, win)


def output_dtypes(red: Reducer, dtype: np.dtype, integral_weights: bool) -> list[np.dtype]:
    """Pixel type of each output of ``red`` applied to a band of ``dtype``."""
    if red.kind == "combine":
        first, second = red.params["reducers"]
        return output_dtypes(first, dtype, integral_weights) + output_dtypes(second, dtype, integral_weights)
    if red.kind == "sum" and not integral_weights:
        return [_float(dtype)]
    return red.output_dtypes(dtype)


def _integral(kernel: Kernel, mode: str) -> bool:
    if mode == "mask":
        return True
    if kernel.units != "pixels":
        return False
    w = kernel.resolve().weights
    return bool(np.all(w == np.round(w)))


def _reduced_bands(band: Band, red: Reducer, kernel: Kernel, mode: str, skip: bool,
                   names: list[str]) -> list[Band]:  # fmt: skip
    """Bands of ``red`` over ``kernel`` applied to one band."""
    dtypes = output_dtypes(red, band.dtype, _integral(kernel, mode))

    def fn(win: Window) -> list[Pixels]:
        outs = reduce_window(red, win, mode)
        centre = win.centre_valid if skip else None
        cast = []
        for (vals, valid), dt in zip(outs, dtypes, strict=True):
            m = valid & centre if centre is not None else valid
            if dt.kind in "iub" and vals.dtype.kind == "f":
                vals = np.rint(vals)  # integer sums computed in float64
            cast.append((np.where(m, vals, 0).astype(dt, copy=False), m))
        return cast

    shared = NeighborhoodNode(band.node, kernel, fn)
    return [
        Band(name, dt, PickNode(shared, i), band.projection, band.dimensions)
        for i, (name, dt) in enumerate(zip(names, dtypes, strict=True))
    ]


def _expect_kernel(kernel: Any, where: str) -> Kernel:
    if not isinstance(kernel, Kernel):
        raise EngineError(f"{where}: expected a Kernel, got {type(kernel).__name__}.")
    return kernel


def _expect_reducer(reducer: Any, where: str) -> Reducer:
    if not isinstance(reducer, Reducer):
        raise EngineError(f"{where}: expected a Reducer, got {type(reducer).__name__}.")
    return reducer


@algorithm("Image.reduceNeighborhood")
def image_reduce_neighborhood(image: Image, reducer: Reducer, kernel: Kernel, inputWeight: str = "kernel",
                              skipMasked: bool = True, optimization: str | None = None) -> Image:  # fmt: skip
    """Apply ``reducer`` to the neighbourhood of every pixel (see the module docstring)."""
    where = "Image.reduceNeighborhood"
    image = as_image(image)
    red, kern = _expect_reducer(reducer, where), _expect_kernel(kernel, where)
    if inputWeight not in _WEIGHT_MODES:
        raise EngineError(f"{where}: inputWeight must be one of {list(_WEIGHT_MODES)}, got {inputWeight!r}.")
    if optimization not in (None, "boxcar", "window"):
        raise EngineError(f"{where}: optimization must be 'boxcar' or 'window', got {optimization!r}.")
    skip = bool(skipMasked)
    bands: list[Band] = []
    if red.inputs == 1:
        for band in image.bands:
            names = [f"{band.name}_{out}" for out in red.outputs]
            bands.extend(_reduced_bands(band, red, kern, inputWeight, skip, names))
        return image.with_bands(bands)
    subs = red.params.get("reducers", ()) if red.kind == "combine" else ()
    if not subs or red.params.get("sharedInputs") or any(s.inputs != 1 for s in subs):
        raise EngineError(
            f"{where}: reducers with several inputs are supported locally only as a non-shared "
            f"Reducer.combine of single-input reducers; got Reducer.{red.kind} with {red.inputs} inputs."
        )
    if len(image.bands) != red.inputs:
        raise EngineError(
            f"{where}: the reducer takes {red.inputs} inputs but the image has {len(image.bands)} bands."
        )
    first, second = subs
    prefix = red.params.get("outputPrefix", "")
    bands.extend(_reduced_bands(image.bands[0], first, kern, inputWeight, skip, list(first.outputs)))
    bands.extend(_reduced_bands(image.bands[1], second, kern, inputWeight, skip,
                                [prefix + o for o in second.outputs]))  # fmt: skip
    return image.with_bands(bands)


_FOCAL_REDUCERS: dict[str, Callable[[], Reducer]] = {
    "min": lambda: Reducer("min", ("min",)),
    "max": lambda: Reducer("max", ("max",)),
    "mean": lambda: Reducer("mean", ("mean",)),
    "median": reducer_median,
    "mode": lambda: Reducer("mode", ("mode",)),
}


def focal(kind: str, image: Any, radius: float = 1.5, kernelType: str = "circle", units: str = "pixels",
          iterations: int = 1, kernel: Kernel | None = None) -> Image:  # fmt: skip
    """A focal filter: ``reduceNeighborhood`` with the reducer ``kind``, ``iterations`` times."""
    where = f"Image.focal{kind.capitalize()}"
    kern = _expect_kernel(kernel, where) if kernel is not None else focal_kernel(kernelType, radius, units)
    if int(iterations) < 1:
        raise EngineError(f"{where}: iterations must be at least 1, got {iterations}.")
    red = _FOCAL_REDUCERS[kind]()
    out = as_image(image)
    for _ in range(int(iterations)):
        out = out.with_bands(
            [b for band in out.bands for b in _reduced_bands(band, red, kern, "kernel", True, [band.name])]
        )
    return out


def _register_focal(kind: str) -> None:
    def fn(image: Image, radius: float = 1.5, kernelType: str = "circle", units: str = "pixels",
           iterations: int = 1, kernel: Kernel | None = None) -> Image:  # fmt: skip
        return focal(kind, image, radius, kernelType, units, iterations, kernel)

    fn.__name__ = f"image_focal_{kind}"
    fn.__doc__ = f"Earth Engine's ``Image.focal{kind.capitalize()}`` (band names kept)."
    algorithm(f"Image.focal{kind.capitalize()}", f"Image.focal_{kind}")(fn)


for _kind in _FOCAL_REDUCERS:
    _register_focal(_kind)


def convolve_window(win: Window) -> Pixels:
    """Correlate the window with the kernel weights; masked pixels do not contribute."""
    ws = [w for _, _, w in win.offsets]
    s = win.correlate(win.zero_filled, ws)
    centre = win.centre_valid
    if all(w >= 0 for w in ws):
        wsum = win.correlate(win.valid64, ws)
        ok = centre & (wsum > 0)
        return np.where(ok, s * (float(sum(ws)) / np.where(ok, wsum, 1.0)), 0.0), ok
    ok = centre & (win.count() == len(ws))
    return np.where(ok, s, 0.0), ok


@algorithm("Image.convolve")
def image_convolve(image: Image, kernel: Kernel) -> Image:
    """Convolve every band with ``kernel`` (see the module docstring for masks)."""
    image = as_image(image)
    kern = _expect_kernel(kernel, "Image.convolve")
    bands = []
    for band in image.bands:
        dt = _float(band.dtype)

        def fn(win: Window, _dt: np.dtype = dt) -> list[Pixels]:
            vals, valid = convolve_window(win)
            return [(vals.astype(_dt, copy=False), valid)]

        shared = NeighborhoodNode(band.node, kern, fn)
        bands.append(Band(band.name, dt, PickNode(shared, 0), band.projection, band.dimensions))
    return image.with_bands(bands)


@algorithm("Image.neighborhoodToBands")
def image_neighborhood_to_bands(image: Image, kernel: Kernel) -> Image:
    """One band per non-zero kernel weight: ``<band>_<dx>_<dy>``, the pixel at that offset."""
    image = as_image(image)
    kern = _expect_kernel(kernel, "Image.neighborhoodToBands")
    scale = image.default_projection.nominal_scale if kern.units == "meters" else None
    kw = kern.resolve(scale)
    offsets = kw.offsets()
    if not offsets:
        raise EngineError("Image.neighborhoodToBands: the kernel has no non-zero weight.")
    bands = [
        Band(f"{band.name}_{dx}_{dy}", band.dtype, ShiftNode(band.node, kw.pad, dy, dx), band.projection,
             band.dimensions, band.value_range)
        for band in image.bands
        for dy, dx, _ in offsets
    ]  # fmt: skip
    return image.with_bands(bands)
