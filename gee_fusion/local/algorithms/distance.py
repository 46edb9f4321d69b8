"""Distance transforms: Image.fastDistanceTransform and Image.directionalDistanceTransform.

Both read their input in the request grid grown by the search radius
(:meth:`PixelGrid.padded`), so a tile sees every source pixel that can reach it and tiled
requests give the same pixels as one request.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.image import Band, Image, PixelContext, PixelNode, Pixels
from gee_fusion.local.registry import algorithm

METRICS = ("squared_euclidean", "manhattan", "chebyshev")


def _crop(array: np.ndarray, pad: int, grid: PixelGrid) -> np.ndarray:
    return array[pad : pad + grid.height, pad : pad + grid.width]


class FastDistanceNode(PixelNode):
    """Distance from each pixel to the nearest non-zero, valid pixel of ``node``."""

    def __init__(self, node: PixelNode, neighborhood: int, metric: str) -> None:
        self.node = node
        self.neighborhood = neighborhood
        self.metric = metric

    def children(self) -> tuple[PixelNode, ...]:
        return (self.node,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        pad = self.neighborhood
        values, mask = ctx.pixels(self.node, grid.padded(pad))
        feature = np.asarray(mask, dtype=bool) & (np.asarray(values) != 0)
        if not feature.any():
            return np.zeros(grid.shape, np.float32), np.zeros(grid.shape, bool)
        background = ~feature
        if self.metric == "squared_euclidean":
            dist = np.square(ndimage.distance_transform_edt(background)).round()
            limit = float(pad) ** 2
        else:
            kind = "taxicab" if self.metric == "manhattan" else "chessboard"
            dist = ndimage.distance_transform_cdt(background, metric=kind).astype(np.float64)
            limit = float(pad)
        dist = _crop(dist, pad, grid)
        return dist.astype(np.float32), dist <= limit


@algorithm("Image.fastDistanceTransform")
def image_fast_distance_transform(image: Image, neighborhood: int = 256, units: str = "pixels",
                                  metric: str = "squared_euclidean") -> Image:  # fmt: skip
    """Per band: distance, in pixels of the request grid, to the nearest non-zero valid pixel.

    ``squared_euclidean`` (the default) gives squared distances. Masked input pixels count as
    zero; the output ignores the input's mask and is valid where a non-zero pixel lies
    within ``neighborhood`` pixels (in the chosen metric), masked beyond.
    """
    if units != "pixels":
        raise EngineError(f"Image.fastDistanceTransform: units must be 'pixels', got {units!r}.")
    if metric not in METRICS:
        raise EngineError(
            f"Image.fastDistanceTransform: metric must be one of {list(METRICS)}, got {metric!r}."
        )
    size = int(neighborhood)
    if size <= 0:
        raise EngineError(f"Image.fastDistanceTransform: neighborhood must be positive, got {neighborhood}.")
    bands = [
        Band(b.name, np.dtype(np.float32), FastDistanceNode(b.node, size, metric), b.projection, b.dimensions)
        for b in image.bands
    ]
    return image.with_bands(bands)


# -- directional distance ----------------------------------------------------------------------


def ray_offsets(grid: PixelGrid, angle: float, max_distance: float) -> list[tuple[int, int, float]]:
    """The (column, row) offsets visited when searching from a pixel, and their distances.

    ``angle`` is in degrees counter-clockwise from the +x (east) axis of the grid's CRS, so
    90 is north in a north-up grid. The ray advances one pixel a step along its major axis
    (a digital line with no gaps); each step's offset is the ray point rounded to the
    nearest pixel and its distance the Euclidean length along the ray, in pixels.
    """
    a = grid.affine
    theta = math.radians(angle)
    dx, dy = math.cos(theta), math.sin(theta)
    det = a.a * a.e - a.b * a.d
    dcol, drow = (a.e * dx - a.b * dy) / det, (-a.d * dx + a.a * dy) / det  # inverse linear part
    norm = math.hypot(dcol, drow)
    dcol, drow = dcol / norm, drow / norm
    step = 1.0 / max(abs(dcol), abs(drow))
    out = []
    for k in range(math.floor(max_distance / step + 1e-9) + 1):
        t = k * step
        out.append((math.floor(t * dcol + 0.5), math.floor(t * drow + 0.5), t))
    return out


class _DirectionalNode(PixelNode):
    """All outputs at once: distance, then the found value of each input band."""

    def __init__(self, source: PixelNode, carried: list[Band], angle: float, max_distance: float) -> None:
        self.source = source
        self.carried = carried
        self.angle = angle
        self.max_distance = max_distance

    def children(self) -> tuple[PixelNode, ...]:
        return (self.source, *(b.node for b in self.carried))

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Any:
        """A list of (values, mask), one per output band (memoised as one entry)."""
        offsets = ray_offsets(grid, self.angle, self.max_distance)
        pad = max(max(abs(c), abs(r)) for c, r, _ in offsets)
        big = grid.padded(pad)
        values, mask = ctx.pixels(self.source, big)
        source = np.asarray(mask, dtype=bool) & (np.asarray(values) != 0)
        carried = [(np.asarray(v), np.asarray(m, dtype=bool)) for v, m in
                   (ctx.pixels(b.node, big) for b in self.carried)]  # fmt: skip
        h, w = grid.shape
        dist = np.zeros(grid.shape, np.float32)
        found = np.zeros(grid.shape, bool)
        out = [(np.zeros(grid.shape, b.dtype), np.zeros(grid.shape, bool)) for b in self.carried]
        for dc, dr, t in offsets:
            window = (slice(pad + dr, pad + dr + h), slice(pad + dc, pad + dc + w))
            new = source[window] & ~found
            if not new.any():
                continue
            dist[new] = t
            for (ov, om), (cv, cm) in zip(out, carried, strict=True):
                ov[new] = cv[window][new]
                om[new] = cm[window][new]
            found |= new
        return [(dist, found)] + [(ov, om & found) for ov, om in out]


class _Output(PixelNode):
    """One output band of a shared directional-distance computation."""

    def __init__(self, shared: _DirectionalNode, index: int) -> None:
        self.shared = shared
        self.index = index

    def children(self) -> tuple[PixelNode, ...]:
        return (self.shared,)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        return ctx.pixels(self.shared, grid)[self.index]  # type: ignore[return-value]


@algorithm("Image.directionalDistanceTransform")
def image_directional_distance_transform(source: Image, angle: float, maxDistance: float,
                                         labelBand: str | None = None) -> Image:  # fmt: skip
    """For each pixel, the distance back along ``angle`` to the nearest non-zero source pixel.

    Searches from every pixel in the direction ``angle`` (degrees counter-clockwise from
    east in the grid's CRS, the convention of the s2cloudless shadow recipe, which passes
    ``90 - MEAN_SOLAR_AZIMUTH_ANGLE`` to look from a shadow towards the sun) for a non-zero,
    valid pixel of the source band (``labelBand`` if given) within ``maxDistance`` pixels of
    the request grid. Outputs ``distance`` (float, pixels; 0 on source pixels) followed by
    every input band, holding its value at the pixel found. Pixels with no source within
    reach are masked; the pixel's own mask does not matter.
    """
    if labelBand is None:
        if len(source.bands) != 1:
            raise EngineError(
                "Image.directionalDistanceTransform: the source must have exactly one band unless "
                f"labelBand is given; it has {len(source.bands)}: {source.band_names}."
            )
        search = source.bands[0]
    else:
        match = [b for b in source.bands if b.name == labelBand]
        if not match:
            raise EngineError(
                f"Image.directionalDistanceTransform: labelBand '{labelBand}' is not among the "
                f"bands {source.band_names}."
            )
        search = match[0]
    reach = float(maxDistance)
    if not math.isfinite(reach) or reach < 0:
        raise EngineError(f"Image.directionalDistanceTransform: maxDistance must be >= 0, got {maxDistance}.")
    shared = _DirectionalNode(search.node, list(source.bands), float(angle), reach)
    bands = [Band("distance", np.dtype(np.float32), _Output(shared, 0),
                  search.projection, search.dimensions)]  # fmt: skip
    for i, b in enumerate(source.bands):
        bands.append(Band(b.name, b.dtype, _Output(shared, 1 + i), b.projection, b.dimensions,
                          b.value_range))  # fmt: skip
    return source.with_bands(bands)
