"""Flood alerts: the monthly-VV flood rule against a numpy loop, event chaining across months, and
the monitoring job on the demo world's planted flood of February 2019."""

from __future__ import annotations

import json
from pathlib import Path

import ee
import numpy as np
import pytest
import rasterio

from gee_fusion.errors import DataError
from gee_fusion.export.fetch import compute_by_tile
from gee_fusion.grid import PixelGrid
from gee_fusion.local.world.changes import planted_changes
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.monitoring import flood


def test_flooded_equals_a_per_pixel_loop() -> None:
    rng = np.random.default_rng(3)
    vv = rng.normal(-12.0, 4.0, (7, 9, 11)).astype(np.float32)
    vv[2, 3:6, 4:8] = -21.0  # a flood
    vv[:, 0, 0] = -22.0  # permanent water
    vv[4, 1, 1] = np.nan  # no acquisition
    got = flood.flooded(vv, water_db=-15.0, drop_db=3.0, smoothing_px=0)
    want = np.zeros(vv.shape, dtype=bool)
    for r in range(vv.shape[1]):
        for c in range(vv.shape[2]):
            series = vv[:, r, c]
            usual = float(np.median(series[~np.isnan(series)]))
            for t, v in enumerate(series):
                want[t, r, c] = bool(v < -15.0 and usual - v >= 3.0)
    assert np.array_equal(got, want)
    assert got[2, 3:6, 4:8].all() and not got[:, 0, 0].any() and not got[4, 1, 1]


def test_the_focal_mean_equals_a_disc_loop_and_leaves_a_speckled_field_dry() -> None:
    rng = np.random.default_rng(5)
    vv = rng.normal(-12.0, 1.5, (4, 30, 30)).astype(np.float32)
    vv[2] = rng.normal(-14.5, 1.5, (30, 30))  # a smooth field in a dry month: dark, speckled
    vv[3, 5:25, 5:25] = -20.0  # a flood of 4 ha
    vv[1, 7, 9] = np.nan
    smooth = flood.focal_mean(vv, 2)
    for r, c in ((0, 0), (7, 9), (7, 10), (15, 15), (29, 3)):
        rows, cols = np.mgrid[0:30, 0:30]
        disc = (rows - r) ** 2 + (cols - c) ** 2 <= 4
        want = np.nanmean(vv[1][disc])
        assert smooth[1, r, c] == pytest.approx(want, abs=1e-4) or (r, c) == (7, 9)
    assert np.isnan(smooth[1, 7, 9])
    raw, smoothed = flood.flooded(vv, smoothing_px=0), flood.flooded(vv)
    assert raw[2].sum() > 100 and smoothed[2].sum() <= 2  # the speckle tail alone is no flood
    assert smoothed[3, 8:22, 8:22].all()  # the flood's interior stays flooded
    events = flood.flood_events(smoothed, min_pixels=50)
    assert [(e.first, e.last) for e in events] == [(3, 3)]


def test_events_chain_overlapping_months_and_keep_separate_floods_apart() -> None:
    months = np.zeros((5, 20, 20), dtype=bool)
    months[1, 2:6, 2:6] = True  # flood A, months 1-2, growing
    months[2, 2:8, 2:8] = True
    months[2, 14:18, 14:18] = True  # flood B, month 2 only
    months[4, 2:6, 2:6] = True  # A's place again after a dry month: a new event
    months[3, 10, 10] = True  # one pixel: below min_pixels
    events = flood.flood_events(months, min_pixels=4)
    spans = sorted((e.first, e.last, int(e.mask.sum())) for e in events)
    assert spans == [(1, 2, 36), (2, 2, 16), (4, 4, 16)]


def test_confidence_is_the_share_classified_water_in_the_event_months() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2] = True  # 8 pixels
    classes = [np.full((4, 4), 3, np.uint8) for _ in range(4)]
    classes[1][0] = 6  # 4 of the 8 pixels are water in month 1
    classes[3][1] = 6  # month 3 is outside the event
    assert flood.event_confidence(flood.FloodEvent(mask, 1, 2), classes) == 0.5


def test_fewer_than_three_months_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="at least three months"):
        flood.flooded(np.zeros((2, 3, 3)))


@pytest.mark.slow
def test_the_job_alerts_the_planted_flood_in_its_month(tmp_path: Path) -> None:
    from gee_fusion.monitoring.job import load_monitor_config, run_monitor

    planted = [c for c in planted_changes(W) if c.kind == "flood" and str(c.start) == "2019-02-01"]
    event = planted[-1]  # the one by the river bend in the east (the other floods no pixel: all too high)
    assert event.col0 > 600
    col, row = event.col0 - 4, event.row0 - 4
    x0, y1 = W.origin
    cfg = tmp_path / "flood.yaml"
    cfg.write_text(
        f"area: {{origin: [{x0 + col * 10.0}, {y1 - row * 10.0}], size_px: [100, 64]}}\n"
        f'start: "2018-12"\nout: {tmp_path / "out"}\npoints_per_class: 40\nrf: {{number_of_trees: 12}}\n'
    )
    run_monitor(load_monitor_config(cfg), until="2019-04", progress=False)
    out = tmp_path / "out"
    floods = [
        f["properties"]
        for path in sorted(out.glob("months/*/alerts.geojson"))
        for f in json.loads(path.read_text())["features"]
        if f["properties"]["type"] == "flood"
    ]
    assert floods and all(f["onset"] == "2019-02" and f["end"] == "2019-02" for f in floods), floods
    assert all(f["evidence"] == "SAR water + class" and f["to_class"] == 6 for f in floods)
    assert all(f["confidence"] >= 0.5 for f in floods)
    with rasterio.open(out / "changes.tif") as src:
        index = src.read(1 + src.descriptions.index("flood_month_index"))
        grid = PixelGrid(str(src.crs), tuple(src.transform)[:6], src.width, src.height)
    detected = index == 3  # 2019-02 is the third month from 2018-12 (1-based)
    assert sum(f["area_m2"] for f in floods) == pytest.approx(detected.sum() * 100.0, rel=0.05)

    def water(month: str) -> np.ndarray:
        labels = ee.ImageCollection("local/demo/LABELS_MONTHLY").filterDate(
            month, ee.Date(month).advance(1, "month")
        )
        return compute_by_tile(ee.Image(labels.first()).select("label"), grid)["label"] == 14

    truth = water("2019-02-01") & ~water("2019-04-01")
    assert truth.sum() > 1000
    assert (detected & truth).sum() >= 0.8 * truth.sum()  # recall of flooded pixels
    assert (detected & truth).sum() >= 0.9 * detected.sum()  # precision
