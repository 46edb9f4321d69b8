"""Request planning: every pixel and band requested exactly once, within Earth Engine's limits,
aligned to the output's blocks, and close to the fewest requests possible."""

from __future__ import annotations

import numpy as np
import pytest

from gee_fusion.errors import ExportError
from gee_fusion.export.plan import (
    Tile,
    band_groups,
    plan_requests,
    xee_default_requests,
)
from gee_fusion.grid import MAX_GRID_SIDE, REQUEST_BYTE_LIMIT, PixelGrid


def grid(width: int, height: int) -> PixelGrid:
    return PixelGrid("EPSG:32631", (10.0, 0.0, 356000.0, 0.0, -10.0, 5484000.0), width, height)


def coverage(plan) -> np.ndarray:  # type: ignore[no-untyped-def]
    """How often each (band, row, col) is requested."""
    seen = np.zeros((len(plan.band_bytes), plan.grid.height, plan.grid.width), np.int32)
    for tile in plan.tiles():
        rows, cols = tile.window
        seen[tile.band_start : tile.band_stop, rows, cols] += 1
    return seen


@pytest.mark.parametrize(
    ("width", "height", "bands", "nbytes", "block"),
    [
        (3000, 3000, 20, 4, (256, 256)),  # the fusion-20 stack of a city
        (1000, 1000, 168, 4, (256, 256)),  # 14 bands x 12 months
        (777, 333, 3, 1, (512, 512)),  # smaller than a block
        (1000, 300, 2000, 4, (256, 256)),  # more bands than one request may carry
        (5, 7, 1, 8, (256, 256)),
    ],
)
def test_every_value_once_within_the_limits(
    width: int, height: int, bands: int, nbytes: int, block: tuple
) -> None:
    plan = plan_requests(grid(width, height), [nbytes] * bands, block=block)
    assert (coverage(plan) == 1).all()
    tiles = list(plan.tiles())
    assert len(tiles) == plan.requests >= plan.min_requests
    for tile in tiles:
        assert plan.request_bytes(tile) <= REQUEST_BYTE_LIMIT
        assert tile.height <= MAX_GRID_SIDE and tile.width <= MAX_GRID_SIDE
        assert tile.band_stop - tile.band_start <= 1024
    bh, bw = block
    th, tw = plan.tile_height, plan.tile_width
    nested = (th % bh == 0 or bh % th == 0 or th == height) and (tw % bw == 0 or bw % tw == 0 or tw == width)
    assert nested, (th, tw)  # tiles are block multiples (or nest in one block)


def test_the_seed_stack_costs_close_to_the_minimum() -> None:
    """The numbers of the issue: a 20-band 3000 x 3000 float32 stack, 1440 requests with xee."""
    g = grid(3000, 3000)
    plan = plan_requests(g, [4] * 20)
    assert plan.min_requests == 15 and xee_default_requests(g, bands=20) == 1440
    assert plan.requests / plan.min_requests <= 1.25
    series = plan_requests(grid(1000, 1000), [4] * 14 * 12)
    assert series.requests / series.min_requests <= 1.25
    for big in (plan_requests(grid(6000, 6000), [4] * 20), plan_requests(grid(2000, 2000), [4] * 168)):
        assert big.requests / big.min_requests <= 1.25


def test_wide_grids_are_cut_at_32768_px_and_bands_split_beyond_1024() -> None:
    plan = plan_requests(grid(40_000, 300), [1])
    assert plan.tile_width <= MAX_GRID_SIDE and plan.requests == 2
    assert band_groups([4] * 2050) == ((0, 683), (683, 1367), (1367, 2050))
    assert band_groups([4] * 1024) == ((0, 1024),)


def test_tile_grids_and_splits() -> None:
    g = grid(100, 80)
    tile = Tile(0, row=20, col=30, height=40, width=50, band_start=0, band_stop=2)
    sub = tile.grid(g)
    assert sub.transform[2] == 356000.0 + 300.0 and sub.transform[5] == 5484000.0 - 200.0
    assert (sub.width, sub.height) == (50, 40)
    parts = tile.split()
    assert [(p.row, p.col, p.height, p.width) for p in parts] == [(20, 30, 40, 25), (20, 55, 40, 25)]
    tall = Tile(1, 0, 0, 9, 4, 0, 1).split()
    assert [(p.row, p.height) for p in tall] == [(0, 4), (4, 5)]
    with pytest.raises(ExportError, match="single pixel"):
        Tile(2, 0, 0, 1, 1, 0, 1).split()


def test_bad_plans_are_export_errors() -> None:
    with pytest.raises(ExportError, match="no bands"):
        plan_requests(grid(10, 10), [])
    with pytest.raises(ExportError, match="positive"):
        plan_requests(grid(10, 10), [4, 0])
    with pytest.raises(ExportError, match="over the request limit"):
        plan_requests(grid(10, 10), [4] * 10, byte_limit=16)
