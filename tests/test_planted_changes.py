"""Planted land-cover changes of the demo world: deterministic, served with their truth
(``local/demo/CHANGES``, ``local/demo/LABELS_MONTHLY``), visible in Sentinel-1 and Sentinel-2 in
the months the truth says, and nowhere else (the same world without changes has the same pixels
outside the changed rectangles)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date

import ee
import numpy as np
import pytest

import gee_fusion
from gee_fusion.errors import ConfigError
from gee_fusion.local.world import atmosphere, schedule, sentinel1, sentinel2
from gee_fusion.local.world.changes import ChangeKind, PlantedChange, planted_changes
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.local.world.config import WorldConfig
from gee_fusion.local.world.landcover import NETWORK, OPEN
from tests.conftest import pixels, world_grid

STATIC = replace(W, changes=0)


def constructions() -> list[PlantedChange]:
    return [c for c in planted_changes(W) if c.kind == ChangeKind.CONSTRUCTION]


def test_changes_are_deterministic_apart_and_of_every_kind() -> None:
    changes = planted_changes(W)
    assert planted_changes(WorldConfig()) == changes and len(changes) == W.change_count == 40
    assert Counter(c.kind for c in changes) == {"construction": 16, "industrial": 6, "road": 6,
                                                 "demolition": 8, "flood": 4}  # fmt: skip
    for i, a in enumerate(changes):
        assert a.start < a.end and 2019 <= a.start.year <= 2024
        for b in changes[i + 1 :]:
            apart = a.col1 <= b.col0 or b.col1 <= a.col0 or a.row1 <= b.row0 or b.row1 <= a.row0
            assert apart, (a, b)
    assert planted_changes(replace(W, seed=7)) != changes
    assert planted_changes(STATIC) == ()


def test_impossible_change_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="changes must be >= 0"):
        WorldConfig(changes=-1)
    with pytest.raises(ConfigError, match="change_scale"):
        WorldConfig(change_scale=0.0)
    with pytest.raises(ConfigError, match="no room for 400 planted changes"):
        planted_changes(WorldConfig(size_km=3.0, changes=400))
    small = planted_changes(WorldConfig(size_km=3.0))  # the default count: proportional to the area
    assert WorldConfig(size_km=3.0).change_count == 2 and len(small) <= 2


def test_the_truth_table_and_the_monthly_labels(local_engine: gee_fusion.Connection) -> None:
    table = ee.FeatureCollection("local/demo/CHANGES")
    info = table.filter(ee.Filter.eq("type", "construction")).getInfo()
    assert len(info["features"]) == 16
    ch = constructions()[0]
    props = info["features"][0]["properties"]
    assert props["start"] == ch.start.strftime("%Y-%m") and props["end"] == ch.end.strftime("%Y-%m")
    assert props["to_class"] == ch.to_code and props["changed_area_m2"] > 0
    assert table.aggregate_histogram("type").getInfo()["flood"] == 4
    grid = world_grid(ch.col0, ch.row0, ch.col1 - ch.col0, ch.row1 - ch.row0)
    monthly = ee.ImageCollection("local/demo/LABELS_MONTHLY")

    def label_on(year: int, month: int) -> np.ndarray:
        start = ee.Date.fromYMD(year, month, 1)
        image = monthly.filterDate(start, start.advance(1, "month")).first().select("label")
        return pixels(image, grid)["label"][0]

    before = ch.start.year - 1, ch.start.month
    assert np.bincount(label_on(*before).ravel()).argmax() == props["from_class"]
    assert (label_on(ch.start.year, ch.start.month) == OPEN).all()
    assert (label_on(ch.end.year, ch.end.month) == ch.to_code).all()


def _clear(i: int, c: PlantedChange) -> bool:
    """No cloud or shadow over the site on S2 acquisition ``i`` (from the atmosphere's fields)."""
    sky = atmosphere.sky(W, float(schedule.s2_acquisitions()[i].millis))
    f = atmosphere.cloud_fields(W, sky, c.col0, c.row0, c.col1 - c.col0, c.row1 - c.row0)
    return bool(f.opacity.max() < 0.02 and f.shadow.max() < 0.02 and f.cirrus.max() < 0.02)


def _ndvi(world: WorldConfig, i: int, c: PlantedChange) -> float:
    args = (c.col0, c.row0, c.col1 - c.col0, c.row1 - c.row0)
    b4 = sentinel2._window10(world, i, "B4", *args).astype(float)
    b8 = sentinel2._window10(world, i, "B8", *args).astype(float)
    return float(np.mean((b8 - b4) / (b8 + b4)))


def _vv_db(world: WorldConfig, i: int, c: PlantedChange) -> float:
    vv = sentinel1._window(world, i, "VV", c.col0, c.row0, c.col1 - c.col0, c.row1 - c.row0)
    return float(10 * np.log10(np.mean(vv)))


Span = tuple[tuple[int, int], tuple[int, int]]


def _shift(d: date, months: int) -> tuple[int, int]:
    k = d.year * 12 + d.month - 1 + months
    return k // 12, k % 12 + 1


def _in(acqs: tuple, span: Span) -> list[int]:
    """Indices of the acquisitions from the first to the last (year, month) of ``span``."""
    lo, hi = (y * 12 + m for y, m in span)
    return [i for i, a in enumerate(acqs) if lo <= a.when.year * 12 + a.when.month <= hi]


def _clear_dates(c: PlantedChange, span: Span, season: range = range(1, 13)) -> list[int]:
    """Up to three clear Sentinel-2 dates over the site in ``span``, spread out."""
    s2 = schedule.s2_acquisitions()
    found = [i for i in _in(s2, span) if s2[i].when.month in season and _clear(i, c)]
    return found[:: max(1, len(found) // 3)][:3]


@pytest.mark.slow
def test_each_construction_site_shows_in_s1_and_s2_in_its_months() -> None:
    s1 = schedule.s1_acquisitions()
    for c in constructions():
        before, during, after = (
            (_shift(c.start, -12), _shift(c.start, -1)),
            (_shift(c.start, 0), _shift(c.end, -1)),
            (_shift(c.end, 0), _shift(c.end, 11)),
        )
        dates = {"before": _clear_dates(c, before, range(4, 9)), "during": _clear_dates(c, during),
                 "after": _clear_dates(c, after)}  # fmt: skip
        assert all(dates.values()), (c, dates)
        ndvi = {k: [_ndvi(W, i, c) for i in found] for k, found in dates.items()}
        assert max(ndvi["before"]) > 0.5, (c, ndvi)  # a crop or a meadow at its peak
        assert max(ndvi["during"]) < 0.3, (c, ndvi)  # bare soil, rubble (0.1-0.3)
        assert max(ndvi["after"]) < 0.45, (c, ndvi)  # roofs, streets and a few garden trees
        # Sentinel-1 against the same world without changes, same acquisitions: identical before,
        # brighter after (double bounce of the new walls; more than the speckle of a site mean)
        for i in _in(s1, before)[::12]:
            assert _vv_db(W, i, c) == _vv_db(STATIC, i, c)
        gain = np.mean([_vv_db(W, i, c) - _vv_db(STATIC, i, c) for i in _in(s1, after)[::8]])
        assert gain > 2.0, (c, gain)


def test_nothing_changes_outside_the_changed_rectangles() -> None:
    c = next(ch for ch in planted_changes(W) if ch.kind == ChangeKind.ROAD)
    i2 = next(i for i, a in enumerate(schedule.s2_acquisitions())
              if a.when.date() > c.end and a.when.month in (6, 7, 8) and _clear(i, c))  # fmt: skip
    i1 = next(i for i, a in enumerate(schedule.s1_acquisitions()) if a.when.date() > c.end)
    pad = 8
    win = (c.col0 - pad, c.row0 - pad, c.col1 - c.col0 + 2 * pad, c.row1 - c.row0 + 2 * pad)
    inside = np.zeros(win[:1:-1], dtype=bool)
    inside[pad - 1 : -pad + 1, pad - 1 : -pad + 1] = True  # the rectangle and its mixed edge pixels
    for product, read in ((sentinel2._window10, (i2, "B4")), (sentinel1._window, (i1, "VV"))):
        changed, static = (product(world, read[0], read[1], *win) for world in (W, STATIC))
        np.testing.assert_array_equal(changed[~inside], static[~inside])
        assert (changed[pad:-pad, pad:-pad] != static[pad:-pad, pad:-pad]).mean() > 0.9
    labels = ee.ImageCollection("local/demo/LABELS_MONTHLY").filterDate(
        f"{c.end.year + 1}-01-01", f"{c.end.year + 1}-02-01"
    )
    got = pixels(labels.first().select("label"), world_grid(c.col0, c.row0, c.col1 - c.col0, c.row1 - c.row0))
    assert (got["label"][0] == NETWORK).all()
