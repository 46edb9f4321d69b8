"""``Image.reduce``: reduce the bands of each pixel to the reducer's outputs."""

from __future__ import annotations

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms.reducers import Reducer
from gee_fusion.local.grid import Grid
from gee_fusion.local.image import Band, Image, PixelContext, PixelNode, Pixels
from gee_fusion.local.registry import algorithm


class _AcrossBands(PixelNode):
    """All outputs of a reducer over the bands of one pixel (memoised as one entry)."""

    def __init__(self, nodes: list[PixelNode], reducer: Reducer, dtype: np.dtype) -> None:
        self.nodes, self.reducer, self.dtype = nodes, reducer, dtype

    def children(self) -> tuple[PixelNode, ...]:
        return tuple(self.nodes)

    def compute(self, ctx: PixelContext, grid: Grid) -> Pixels:
        values = np.empty((len(self.nodes), *grid.shape), dtype=self.dtype)
        valid = np.empty((len(self.nodes), *grid.shape), dtype=bool)
        for i, node in enumerate(self.nodes):
            v, m = ctx.pixels(node, grid)
            values[i], valid[i] = v, m
        if values.dtype.kind == "f":
            valid &= ~np.isnan(values)
        return self.reducer.reduce_stack(values, valid)  # type: ignore[return-value]


class _Output(PixelNode):
    def __init__(self, shared: _AcrossBands, index: int) -> None:
        self.shared, self.index = shared, index

    def children(self) -> tuple[PixelNode, ...]:
        return (self.shared,)

    def compute(self, ctx: PixelContext, grid: Grid) -> Pixels:
        return ctx.pixels(self.shared, grid)[self.index]  # type: ignore[return-value]


@algorithm("Image.reduce")
def image_reduce(image: Image, reducer: Reducer) -> Image:
    """Per pixel, reduce across the bands (masked bands skipped); bands named after the
    reducer's outputs (``mean``, ``min``...)."""
    if not image.bands:
        raise EngineError("Image.reduce: the image has no bands.")
    if reducer.kind in ("combine", "repeat", "toList", "frequencyHistogram"):
        raise EngineError(
            f"Image.reduce with Reducer.{reducer.kind} is not supported by the local engine yet."
        )
    dtype = np.result_type(*[b.dtype for b in image.bands])
    shared = _AcrossBands([b.node for b in image.bands], reducer, dtype)
    first = image.bands[0]
    bands = [
        Band(name, out_dt, _Output(shared, i), first.projection, first.dimensions)
        for i, (name, out_dt) in enumerate(zip(reducer.outputs, reducer.output_dtypes(dtype), strict=True))
    ]
    return image.with_bands(bands)
