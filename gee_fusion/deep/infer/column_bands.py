"""Column bands: sliding-window inference over rasters wider than memory allows.

The raster is cut into vertical bands whose *cores* partition its columns (``band_width`` px
each, the last one narrower). A band runs every tile of the global
:class:`~gee_fusion.deep.infer.blending.TilePlan` that touches its *computed* columns (the core widened
by ``halo`` px on each side, for the small-object sieve), top to bottom, in a strip accumulator
only as wide as those tiles (its *span*). Every pixel of the computed columns is then covered by
all the tiles that cover it in the whole-width run, with the same blend windows, added in the same
order, in batches that are always full (see :mod:`gee_fusion.deep.infer.tile_batches`): the band's
probabilities there are bit-identical to the whole-width run's. Only the core
is written, so neighbouring bands never write the same pixel; the tiles around a band edge are
predicted twice (about ``tile / (tile - overlap)`` tile columns per edge).

Cores start at multiples of ``band_width``; keep it a multiple of the output's block size so
that every output block is written once, whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gee_fusion.deep.infer.blending import TilePlan
from gee_fusion.errors import ConfigError

AUTO_MAX_WIDTH = 12288
AUTO_BAND_WIDTH = 8192


@dataclass(frozen=True)
class ColumnBand:
    """One vertical band of a tile plan.

    Attributes:
        index: Band number, left to right.
        core: ``(start, stop)`` columns this band writes.
        computed: ``(start, stop)`` columns whose probabilities are final (core plus halo).
        span: ``(start, stop)`` columns of the band's tiles (clipped to the raster): the
            accumulator's width.
        tile_cols: ``(first, stop)`` indices into ``plan.col_starts`` of the band's tiles.
    """

    index: int
    core: tuple[int, int]
    computed: tuple[int, int]
    span: tuple[int, int]
    tile_cols: tuple[int, int]

    @property
    def width(self) -> int:
        """Width of the span (px)."""
        return self.span[1] - self.span[0]

    @property
    def n_tile_cols(self) -> int:
        """Tile columns the band runs."""
        return self.tile_cols[1] - self.tile_cols[0]


def resolve_band_width(width: int, band_width: int | None, *, blocksize: int = 512) -> int:
    """The band width to use for a raster ``width`` px wide.

    Args:
        width: Raster width (px).
        band_width: Requested band width (px), a multiple of ``blocksize`` (or at least
            ``width``: one band); None picks the whole width up to ``AUTO_MAX_WIDTH`` px and
            ``AUTO_BAND_WIDTH`` px bands beyond.
        blocksize: Block size of the output COG.

    Raises:
        ConfigError: A band width narrower than the raster that is not a positive multiple of
            ``blocksize``.
    """
    if band_width is None:
        return width if width <= AUTO_MAX_WIDTH else AUTO_BAND_WIDTH
    if band_width >= width:
        return width
    if band_width < blocksize or band_width % blocksize:
        raise ConfigError(
            f"band_width={band_width}: use a positive multiple of the output block size {blocksize} "
            f"(e.g. {max(1, round(band_width / blocksize)) * blocksize}) so each block is written once."
        )
    return band_width


def plan_bands(plan: TilePlan, band_width: int, *, halo: int = 0) -> list[ColumnBand]:
    """Cut ``plan`` into column bands of ``band_width`` px cores.

    Args:
        plan: The whole raster's tile plan.
        band_width: Core width (px); ``>= plan.width`` gives one band.
        halo: Extra columns each side whose probabilities must also be final (the sieve's halo).

    Returns:
        The bands, left to right.
    """
    if band_width < 1 or halo < 0:
        raise ConfigError(f"band_width={band_width}, halo={halo}: use a positive width and halo >= 0.")
    starts = plan.col_starts
    bands = []
    for index, a in enumerate(range(0, plan.width, band_width)):
        b = min(a + band_width, plan.width)
        lo, hi = max(0, a - halo), min(plan.width, b + halo)
        touching = np.flatnonzero((starts < hi) & (starts + plan.tile > lo))
        j0, j1 = int(touching[0]), int(touching[-1]) + 1
        span = (int(starts[j0]), min(plan.width, int(starts[j1 - 1]) + plan.tile))
        bands.append(ColumnBand(index, (a, b), (lo, hi), span, (j0, j1)))
    return bands
