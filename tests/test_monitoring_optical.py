"""Classification-based change: persistent class transitions (numpy) and the monthly forests
(S1 + S2 where the month is clear, S1 alone elsewhere) on the demo world."""

from __future__ import annotations

from datetime import date

import ee
import numpy as np
import pytest

import gee_fusion
from gee_fusion.classic.cloud_rf import RFOptions
from gee_fusion.errors import DataError
from gee_fusion.monitoring.optical import classify_month, persistent_changes, reference_labels, train_forests


def test_a_change_must_persist_and_a_blip_is_ignored() -> None:
    a = np.array([[3, 3, 3, 3]])
    months = [a.copy() for _ in range(8)]
    for t in range(4, 8):
        months[t][0, 0] = 1  # pixel 0: 3 -> 1 from month 4 on
    months[3][0, 1] = 6  # pixel 1: one cloudy month
    for t in range(6, 8):
        months[t][0, 2] = 2  # pixel 2: changes at month 6 and holds 2 months
    months[7][0, 3] = 1  # pixel 3: changes in the last month: not yet confirmed
    tr = persistent_changes(months, persist=2)
    assert tr.onset.tolist() == [[4, -1, 6, -1]]
    assert tr.before[0, 0] == 3 and tr.after[0, 0] == 1 and tr.after[0, 2] == 2
    assert persistent_changes(months, persist=3).onset.tolist() == [[4, -1, -1, -1]]


def test_too_short_a_series_is_refused() -> None:
    with pytest.raises(DataError, match="at least 4 months"):
        persistent_changes([np.zeros((2, 2))] * 3, persist=2)
    with pytest.raises(DataError, match="persist >= 1"):
        persistent_changes([np.zeros((2, 2))] * 3, persist=0)


@pytest.mark.slow
def test_the_monthly_forests_classify_every_pixel_of_every_month(local_engine: gee_fusion.Connection) -> None:
    from gee_fusion.export.fetch import grid_aoi
    from gee_fusion.grid import PixelGrid
    from gee_fusion.local.world.config import DEFAULT_WORLD as W

    x0, y1 = W.origin
    grid = PixelGrid(W.crs, (10.0, 0.0, x0 + 5000.0, 0.0, -10.0, y1 - 5000.0), 48, 48)
    aoi = grid_aoi(grid)
    forests = train_forests(aoi, [date(2021, 4, 1), date(2021, 7, 1)], reference_labels,
                            points_per_class=30, rf=RFOptions(number_of_trees=10))  # fmt: skip
    truth = ee.data.computePixels({"expression": reference_labels(date(2021, 7, 1)).select("label6"),
                                   "grid": grid.to_ee()})["label6"]  # fmt: skip
    sources = set()
    for month in (date(2021, 7, 1), date(2021, 12, 1)):
        out = ee.data.computePixels({"expression": classify_month(forests, aoi, month), "grid": grid.to_ee()})
        assert set(np.unique(out["class"])) <= {1, 2, 3, 4, 5, 6}
        sources |= set(np.unique(out["source"]).tolist())
        share = out["confidence"]  # the share of the 10 trees voting for the class
        assert share.min() >= 1 / 6 - 1e-6 and share.max() <= 1.0
        assert np.allclose(share * 10, np.round(share * 10), atol=1e-5)
        if month.month == 7:
            assert (out["class"] == truth).mean() > 0.7  # a clear training month
    assert sources == {1, 2}  # the December month is cloudy: the S1 forest fills it


def test_urbanisation_is_confirmed_by_a_nearby_sar_brightening() -> None:
    from gee_fusion.monitoring.fusion import confirmed, urbanisation
    from gee_fusion.monitoring.optical import Transitions

    tr = Transitions(onset=np.array([5, 5, 5, -1, 7]), before=np.array([3, 1, 3, 3, 6]),
                     after=np.array([1, 3, 2, 3, 1]))  # fmt: skip
    assert urbanisation(tr).tolist() == [True, False, True, False, True]
    optical_month = np.where(urbanisation(tr), 600 + tr.onset, -1)
    sar_month = np.array([606, 606, 604, 0, 609])
    sar_dir = np.array([1, 1, 2, 0, 1])
    # pixel 0: brighter a month later; pixel 2: darker (not new walls); pixel 4: two months off
    assert confirmed(optical_month, sar_month, sar_dir).tolist() == [True, False, False, False, False]
    assert confirmed(optical_month, sar_month, sar_dir, tolerance=2)[4]


def test_a_demolition_is_confirmed_by_a_nearby_sar_darkening() -> None:
    from gee_fusion.monitoring.fusion import confirmed, demolition
    from gee_fusion.monitoring.optical import Transitions

    tr = Transitions(
        onset=np.array([4, 4, -1, 6]), before=np.array([1, 3, 2, 2]), after=np.array([6, 1, 6, 3])
    )
    assert demolition(tr).tolist() == [True, False, False, True]
    optical_month = np.where(demolition(tr), 600 + tr.onset, -1)
    sar_month, sar_dir = np.array([604, 604, 0, 606]), np.array([2, 2, 0, 1])
    # pixel 0: darker the same month; pixel 3: brighter (not a demolition)
    assert confirmed(optical_month, sar_month, sar_dir, direction=2).tolist() == [True, False, False, False]


def test_a_lasting_darkening_of_a_built_pixel_is_a_sar_led_demolition() -> None:
    from gee_fusion.monitoring.fusion import sar_led_demolition, vv_steps

    # four pixels, eight months: classes stay built (rubble looks like roofs) except pixel 3 (farmland)
    classes = [np.array([1, 1, 2, 3]) for _ in range(8)]
    vv = np.full((8, 4), 2.0, dtype=np.float32)
    vv[4:, 0] = -9.0  # pixel 0: walls gone in month 4, for good
    vv[4, 1] = -9.0  # pixel 1: one dark month (a wet roof), then back
    vv[4:, 2] = 0.5  # pixel 2: a lasting drop of 1.5 dB only (under STEP_DB)
    vv[:, 3], vv[4:, 3] = -12.0, -18.0  # pixel 3: a field, never built
    vv[6, 0] = np.nan  # a month without acquisition is no evidence either way
    hit, index = sar_led_demolition(classes, vv_steps(vv, persist=2), persist=2)
    assert hit.tolist() == [True, False, False, False] and index.tolist() == [4, -1, -1, -1]
    # the step against a numpy loop: the smaller of the local and the lasting drop, the largest one
    steps = vv_steps(vv, persist=2)
    where, size = steps.drop_at, steps.drop
    for px in range(4):
        steps = {
            t: min(
                np.nanmedian(vv[t - 2 : t, px]) - np.nanmedian(vv[t : t + 2, px]),
                np.nanmedian(vv[:t, px]) - np.nanmedian(vv[t:, px]),
            )
            for t in range(2, 7)
        }
        t_best = max(steps, key=lambda t: steps[t])
        if steps[t_best] > 0:
            assert where[px] == t_best and size[px] == pytest.approx(steps[t_best], abs=1e-5)
    assert size[0] == pytest.approx(11.0)
    # a drop in month 1 comes before persist months: it is placed at month 2, the first it can be
    early = np.full((8, 4), 2.0, dtype=np.float32)
    early[1:, 0] = -9.0
    assert sar_led_demolition(classes, vv_steps(early, persist=2), persist=2)[1].tolist() == [2, -1, -1, -1]


def test_a_lasting_rise_into_a_built_class_is_a_sar_led_urbanisation() -> None:
    from gee_fusion.monitoring.fusion import sar_led_urbanisation, vv_steps

    months = np.arange(600, 608)
    classes = [np.array([3, 3, 3]) for _ in range(3)] + [np.array([1, 1, 3]) for _ in range(5)]
    vv = np.full((8, 3), -12.0, dtype=np.float32)
    vv[3:, 0] = -2.0  # pixel 0: walls up in month 3, classified built from then on
    vv[3, 1] = -2.0  # pixel 1: one bright month only
    vv[3:, 2] = -2.0  # pixel 2: a lasting rise, but never classified built
    none = np.zeros(3, dtype=np.int64)  # the omnibus test saw nothing (its last change was later)
    hit, index = sar_led_urbanisation(classes, months, none, none, persist=2, steps=vv_steps(vv, persist=2))
    assert hit.tolist() == [True, False, False] and index.tolist() == [3, -1, -1]
    assert not sar_led_urbanisation(classes, months, none, none, persist=2)[0].any()  # without the series


def test_worldcover_is_a_reference_in_the_six_classes(local_engine: gee_fusion.Connection) -> None:
    import pydantic

    from gee_fusion.classes import WORLDCOVER_TO_6
    from gee_fusion.monitoring.job import MonitorConfig
    from gee_fusion.monitoring.optical import worldcover_labels
    from tests.conftest import world_grid

    grid = world_grid(400, 400, 64, 64)
    ours = ee.data.computePixels({"expression": worldcover_labels(date(2022, 5, 1)), "grid": grid})["label6"]
    cover = ee.data.computePixels(
        {"expression": ee.ImageCollection("ESA/WorldCover/v200").first().select("Map"), "grid": grid}
    )["Map"]
    lut = np.zeros(256, dtype=np.int64)
    for code, group in WORLDCOVER_TO_6.items():
        lut[code] = group
    np.testing.assert_array_equal(np.asarray(ours), lut[np.asarray(cover)])
    assert set(np.unique(ours)) <= {1, 3, 4, 5, 6}
    assert MonitorConfig(labels="worldcover").labels == "worldcover"
    with pytest.raises(pydantic.ValidationError):
        MonitorConfig(labels="osm")
