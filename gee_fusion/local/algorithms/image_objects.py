"""Connected objects of an image: ``Image.connectedPixelCount``.

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
