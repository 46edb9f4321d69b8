"""``Image.reduce``: reduce the bands of each pixel to the reducer's outputs."""

from __future__ import annotations

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms.collections import SharedStack, StackReduceNode
from gee_fusion.local.algorithms.reducers import Reducer
from gee_fusion.local.image import Band, Image
from gee_fusion.local.registry import algorithm


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
    shared = SharedStack([b.node for b in image.bands], reducer, dtype)
    first = image.bands[0]
    bands = [
        Band(name, out_dt, StackReduceNode(shared, i), first.projection, first.dimensions)
        for i, (name, out_dt) in enumerate(zip(reducer.outputs, reducer.output_dtypes(dtype), strict=True))
    ]
    return image.with_bands(bands)
