"""Spatial blocks of an area and their train / validation / test split: the held-out unit that
every model of a comparison shares.

An area's grid is cut into square blocks of ``block_px`` pixels (row-major ids); a seeded
permutation of the blocks is cut by the split fractions (:func:`assign_splits`). The patch store
(blocks of ``block_patches`` x ``patch_size`` px) and the in-cloud classifiers (blocks computed
server-side by :meth:`BlockSplit.block_image`) use the same definition, so with the same grid,
block size, fractions and seed they hold out exactly the same ground.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import ee
import numpy as np

from gee_fusion.errors import ConfigError
from gee_fusion.grid import PixelGrid

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
BLOCK = "block"
SPLIT = "split"


def assign_splits(n_blocks: int, fractions: tuple[float, float, float], *, seed: int) -> np.ndarray:
    """Split codes for spatial blocks: a seeded permutation cut by ``fractions`` (each non-zero
    fraction gets at least one block when there are enough blocks)."""
    order = np.random.default_rng(seed).permutation(n_blocks)
    counts = np.floor(np.asarray(fractions) * n_blocks).astype(int)
    for k in (1, 2):
        if fractions[k] > 0 and counts[k] == 0 and n_blocks - counts[1] - counts[2] > 1:
            counts[k] = 1
    counts[0] = n_blocks - counts[1] - counts[2]
    codes = np.empty(n_blocks, dtype=np.int8)
    codes[order[: counts[0]]] = SPLITS["train"]
    codes[order[counts[0] : counts[0] + counts[1]]] = SPLITS["val"]
    codes[order[counts[0] + counts[1] :]] = SPLITS["test"]
    return codes


@dataclass(frozen=True)
class BlockSplit:
    """Blocks of ``block_px`` pixels over ``grid`` and their seeded split."""

    grid: PixelGrid
    block_px: int
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 42

    def __post_init__(self) -> None:
        if self.block_px < 1:
            raise ConfigError(f"Block size must be at least one pixel, got {self.block_px}.")
        fr = self.fractions
        if any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
            raise ConfigError(f"split fractions must be >= 0, sum to 1, train > 0; got {fr}")

    @property
    def shape(self) -> tuple[int, int]:
        """(block rows, block columns)."""
        return -(-self.grid.height // self.block_px), -(-self.grid.width // self.block_px)

    @property
    def n_blocks(self) -> int:
        """Number of blocks."""
        rows, cols = self.shape
        return rows * cols

    def codes(self) -> np.ndarray:
        """(block,) split code of each block (0 train, 1 val, 2 test)."""
        return assign_splits(self.n_blocks, self.fractions, seed=self.seed)

    def block_of(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Block id of pixels (row, column) of the grid."""
        return (np.asarray(rows) // self.block_px) * self.shape[1] + np.asarray(cols) // self.block_px

    def fingerprint(self) -> str:
        """A short hash of the held-out definition (grid, block size, fractions, seed)."""
        g = self.grid
        blob = json.dumps(
            [g.crs, list(g.transform), g.width, g.height, self.block_px, list(self.fractions), self.seed]
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def block_image(self) -> ee.Image:
        """Band ``block``: each pixel's block id, computed on the server (masked off the grid)."""
        a, _, x0, _, e, y1 = self.grid.transform
        xy = ee.Image.pixelCoordinates(ee.Projection(self.grid.crs))
        col = xy.select("x").subtract(x0).divide(abs(a) * self.block_px).floor()
        row = xy.select("y").multiply(-1).add(y1).divide(abs(e) * self.block_px).floor()
        x_min, y_min, x_max, y_max = self.grid.bounds()
        footprint = ee.Geometry.Rectangle([x_min, y_min, x_max, y_max], self.grid.crs, False)
        return row.multiply(self.shape[1]).add(col).toInt().rename(BLOCK).clip(footprint)

    def split_image(self) -> ee.Image:
        """Band ``split``: each pixel's split code (the block ids remapped on the server)."""
        codes = self.codes()
        return (
            self.block_image()
            .remap(list(range(self.n_blocks)), [int(c) for c in codes])
            .toInt()
            .rename(SPLIT)
        )
