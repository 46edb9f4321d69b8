"""Tile placement and blend windows for sliding-window inference.

Tiles of ``tile`` px are placed every ``stride = tile - overlap`` px from the top-left corner until
they reach the raster's far edge; the last tile of a row or column may cross it (the caller
reflect-pads its input). Each tile's softmax output is multiplied by a blend window, summed with
the other tiles' and divided by the summed windows, as in MONAI and TerraTorch.

Blend windows (all strictly positive, so every covered pixel gets a non-zero weight sum):

* ``"constant"``: ones — a plain average of overlapping tiles.
* ``"gaussian"``: MONAI's importance map (``compute_importance_map``, ``sigma_scale=0.125``): the
  outer product of two 1-D Gaussians with sigma ``tile / 8`` centred on the tile, floored at
  ``1e-3`` of its peak. Identical to MONAI's, so the two agree where they place tiles alike.
* ``"cosine"``: TerraTorch's blend mask: weight 1 inside the tile and a raised-cosine ramp over the
  ``min(overlap, tile // 2)`` px next to each edge, ``0.5 - 0.5 cos(pi (k + 1) / (o + 1))`` for the
  ``k``-th pixel from the edge, so it never reaches 0. The ramps of two neighbouring tiles sum to
  1, and a ramp on a side that lies on the raster border (first tile, last tile) is replaced by
  ones: nothing else covers those pixels, so border pixels keep full weight instead of being
  down-weighted towards zero, and with ``overlap <= tile / 2`` the weights sum to exactly 1.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gee_fusion.errors import InferenceError

BlendMode = Literal["cosine", "gaussian", "constant"]
BLEND_MODES: tuple[str, ...] = ("cosine", "gaussian", "constant")
GAUSSIAN_SIGMA_SCALE = 0.125
MIN_WEIGHT = 1e-3


def tile_starts(size: int, tile: int, stride: int) -> np.ndarray:
    """Start offsets of the tiles along one axis of ``size`` px.

    Args:
        size: Raster size along the axis (px).
        tile: Tile size (px).
        stride: Distance between consecutive tile starts (px), ``1 <= stride <= tile``.

    Returns:
        ``0, stride, 2 stride, ...`` up to the first tile that reaches ``size``.
    """
    if size <= tile:
        return np.zeros(1, dtype=np.int64)
    count = math.ceil((size - tile) / stride) + 1
    return np.arange(count, dtype=np.int64) * stride


def _cosine_1d(tile: int, overlap: int, *, first: bool, last: bool) -> np.ndarray:
    ramp_width = min(overlap, tile // 2)
    window = np.ones(tile, dtype=np.float64)
    if ramp_width > 0:
        k = np.arange(ramp_width, dtype=np.float64)
        ramp = 0.5 - 0.5 * np.cos(np.pi * (k + 1) / (ramp_width + 1))  # from the edge inwards
        if not first:
            window[:ramp_width] = ramp
        if not last:
            window[tile - ramp_width :] = ramp[::-1]
    return window


def _gaussian_2d(tile: int) -> np.ndarray:
    sigma = tile * GAUSSIAN_SIGMA_SCALE
    x = np.arange(-(tile - 1) / 2.0, (tile - 1) / 2.0 + 1, dtype=np.float64)[:tile]
    g = np.exp(x**2 / (-2 * sigma**2))
    window = np.outer(g, g)
    return np.maximum(window, max(float(window.min()), MIN_WEIGHT))


def blend_window(
    tile: int, overlap: int, blend: str, *, top: bool, bottom: bool, left: bool, right: bool
) -> np.ndarray:
    """The (tile, tile) float32 weight window of one tile.

    Args:
        tile: Tile size (px).
        overlap: Overlap between neighbouring tiles (px).
        blend: ``"cosine"``, ``"gaussian"`` or ``"constant"``.
        top: The tile is in the first tile row (its top side lies on the raster border).
        bottom: The tile is in the last tile row.
        left: The tile is in the first tile column.
        right: The tile is in the last tile column.

    Returns:
        Strictly positive weights.
    """
    if blend == "constant":
        return np.ones((tile, tile), dtype=np.float32)
    if blend == "gaussian":
        return _gaussian_2d(tile).astype(np.float32)
    if blend == "cosine":
        rows = _cosine_1d(tile, overlap, first=top, last=bottom)
        cols = _cosine_1d(tile, overlap, first=left, last=right)
        return np.outer(rows, cols).astype(np.float32)
    raise InferenceError(f"Unknown blend {blend!r}: use one of {', '.join(BLEND_MODES)}.")


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of a (height, width) raster go and how each is weighted.

    Build it with :meth:`TilePlan.build`, which validates every option before any work is done.
    """

    height: int
    width: int
    tile: int
    overlap: int
    blend: str
    row_starts: np.ndarray
    col_starts: np.ndarray
    _windows: dict[tuple[bool, bool, bool, bool], np.ndarray] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def stride(self) -> int:
        """Distance between consecutive tile starts (px)."""
        return self.tile - self.overlap

    @property
    def n_tiles(self) -> int:
        """Number of tiles."""
        return len(self.row_starts) * len(self.col_starts)

    @classmethod
    def build(
        cls, height: int, width: int, *, tile: int, overlap: int, blend: str, size_divisor: int = 1
    ) -> TilePlan:
        """Validate the options and place the tiles.

        Args:
            height: Raster height (px).
            width: Raster width (px).
            tile: Tile size (px), a multiple of ``size_divisor``.
            overlap: Overlap (px), ``0 <= overlap < tile``.
            blend: ``"cosine"``, ``"gaussian"`` or ``"constant"``.
            size_divisor: The model's ``size_divisor``.

        Raises:
            InferenceError: If an option is invalid or some pixel would be left uncovered or
                without weight.
        """
        if height < 1 or width < 1:
            raise InferenceError(f"The raster is {height} x {width} px: nothing to predict.")
        if tile < 1:
            raise InferenceError(f"tile={tile}: use a positive tile size (e.g. 256).")
        if size_divisor < 1 or tile % size_divisor:
            raise InferenceError(
                f"tile={tile} is not a multiple of the model's size_divisor={size_divisor}: "
                f"use e.g. tile={max(1, math.ceil(tile / max(size_divisor, 1))) * max(size_divisor, 1)}."
            )
        if not 0 <= overlap < tile:
            raise InferenceError(
                f"overlap={overlap} with tile={tile} leaves pixels uncovered or never advances: "
                f"use 0 <= overlap < tile (e.g. overlap={tile * 3 // 8})."
            )
        if blend not in BLEND_MODES:
            raise InferenceError(f"Unknown blend {blend!r}: use one of {', '.join(BLEND_MODES)}.")
        stride = tile - overlap
        rows = tile_starts(height, tile, stride)
        plan = cls(height, width, tile, overlap, blend, rows, tile_starts(width, tile, stride))
        plan.check_coverage()
        return plan

    def window(self, i: int, j: int) -> np.ndarray:
        """The (tile, tile) weights of the tile in tile row ``i`` and tile column ``j``."""
        key = (i == 0, i == len(self.row_starts) - 1, j == 0, j == len(self.col_starts) - 1)
        if key not in self._windows:
            self._windows[key] = blend_window(
                self.tile, self.overlap, self.blend, top=key[0], bottom=key[1], left=key[2], right=key[3]
            )
        return self._windows[key]

    def row_weight(self, i: int, tile_cols: tuple[int, int] | None = None) -> np.ndarray:
        """The sum of the windows of tile row ``i``'s tiles side by side (added once per tile row
        instead of once per tile).

        Args:
            i: Tile row.
            tile_cols: ``(first, stop)`` tile columns to sum (a column band); default all. The
                plane starts at the first tile's column and ends at the last tile's end (clipped
                to the raster): ``(tile, that width)``. Each pixel's sum adds its tiles in column
                order, so a band's plane equals the whole plane bit for bit wherever every tile
                covering the pixel is in the band.
        """
        j0, j1 = tile_cols or (0, len(self.col_starts))
        start = int(self.col_starts[j0])
        width = min(self.width, int(self.col_starts[j1 - 1]) + self.tile) - start
        total = np.zeros((self.tile, width), dtype=np.float32)
        for j in range(j0, j1):
            c = int(self.col_starts[j]) - start
            w = min(self.tile, width - c)
            total[:, c : c + w] += self.window(i, j)[:, :w]
        return total

    def check_coverage(self) -> None:
        """Raise :class:`InferenceError` if a pixel would get no tile or a zero weight sum.

        Runs on the 1-D placements (the tiles form a grid), so it costs O(height + width).
        """
        axes = (("row", self.height, self.row_starts), ("column", self.width, self.col_starts))
        for name, size, starts in axes:
            hits = np.zeros(size + 1, dtype=np.int64)
            np.add.at(hits, np.minimum(starts, size), 1)
            np.add.at(hits, np.minimum(starts + self.tile, size), -1)
            covered = np.cumsum(hits)[:size]
            if (covered <= 0).any():
                first = int(np.argmax(covered <= 0))
                raise InferenceError(
                    f"{name} {first} would be covered by no tile (tile={self.tile}, "
                    f"overlap={self.overlap}): use 0 <= overlap < tile."
                )
        n_rows, n_cols = len(self.row_starts), len(self.col_starts)
        for i, j in itertools.product(
            {0, n_rows - 1, min(1, n_rows - 1)}, {0, n_cols - 1, min(1, n_cols - 1)}
        ):
            w = self.window(i, j)
            if not (np.isfinite(w).all() and (w > 0).all()):
                raise InferenceError(f"The {self.blend} blend window has zero weights: use another blend.")

    def weight_sum(self) -> np.ndarray:
        """The (height, width) sum of all tiles' weights (for checks; O(height x width) memory)."""
        total = np.zeros((self.height, self.width), dtype=np.float64)
        for i, r in enumerate(self.row_starts):
            for j, c in enumerate(self.col_starts):
                h = min(self.tile, self.height - int(r))
                w = min(self.tile, self.width - int(c))
                total[r : r + h, c : c + w] += self.window(i, j)[:h, :w]
        return total
