"""The change layers of a period (numpy): changes of one kind are not hidden by earlier changes
of another kind, site openings with their Sentinel-1 evidence, and an alert object drawn over the
union of the rules that raise one kind of change."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from gee_fusion.grid import PixelGrid
from gee_fusion.monitoring import alerts, detect, fusion
from gee_fusion.monitoring.optical import Transitions, persistent_changes

MONTHS = np.arange(600, 610)


def series(*per_pixel: list[int]) -> list[np.ndarray]:
    """Monthly class maps (1 row) from one class sequence per pixel."""
    return [np.array([[seq[t] for seq in per_pixel]], dtype=np.uint8) for t in range(len(per_pixel[0]))]


def test_an_earlier_change_of_another_kind_does_not_hide_an_urbanisation() -> None:
    classes = series([4, 4, 3, 3, 3, 3, 1, 1, 1, 1])  # meadow -> cropland (month 2) -> built (month 6)
    assert persistent_changes(classes, persist=2).onset.tolist() == [[2]]
    up = persistent_changes(classes, persist=2, keep=fusion.into_built)
    assert up.onset.tolist() == [[6]] and up.before.tolist() == [[3]] and up.after.tolist() == [[1]]
    assert persistent_changes(classes, persist=2, keep=fusion.out_of_built).onset.tolist() == [[-1]]


def test_a_site_opens_when_vegetated_land_turns_open_or_built_for_good() -> None:
    classes = series(
        [3, 4, 3, 6, 2, 6, 6, 1, 1, 1],  # a site: stripped in month 3, classified open or built
        [3, 3, 3, 6, 3, 6, 3, 3, 3, 3],  # a field bare in two single months: no site
        [1, 1, 1, 6, 6, 6, 6, 6, 6, 6],  # built land that becomes open: a demolition, not a site
        [4, 4, 4, 4, 4, 4, 4, 6, 6, 6],  # a meadow turned open in month 7
    )
    tr = fusion.site_opening(classes, persist=2)
    assert tr.onset.tolist() == [[3, -1, -1, 7]]
    assert tr.before[0, 0] == 3 and tr.after[0, 0] == 6 and tr.before[0, 3] == 4
    # against a per-pixel loop over the grouped series
    stack = np.stack(classes)[:, 0]
    for px in range(stack.shape[1]):
        green = np.isin(stack[:, px], (3, 4, 5))
        opened = np.isin(stack[:, px], (1, 2, 6))
        first = next((t for t in range(2, 9) if green[t - 2 : t].all() and opened[t : t + 2].all()), -1)
        assert tr.onset[0, px] == first


def test_sar_evidence_of_either_direction_near_a_site_opening() -> None:
    onset = np.array([3, 3, 3, 3, -1])
    steps = fusion.VVSteps(
        rise_at=np.array([-1, 4, -1, 3, 3]), rise=np.array([0, 1.6, 0, 1.0, 5.0], dtype=np.float32),
        drop_at=np.array([2, -1, -1, -1, -1]), drop=np.array([1.8, 0, 0, 0, 0], dtype=np.float32),
    )  # fmt: skip
    last = np.array([0, 0, 604, 0, 603])
    seen = fusion.sar_changed_near(onset, MONTHS, last, steps, tolerance=1)
    # a drop a month early; a rise a month late; the omnibus test's last change a month late;
    # a rise under SITE_STEP_DB; no site at all
    assert seen.tolist() == [True, True, True, False, False]
    assert not fusion.sar_changed_near(onset, MONTHS, last, steps, tolerance=0)[:3].any()


def _sar(shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {"last": np.zeros(shape, dtype=np.int64), "last_direction": np.zeros(shape, dtype=np.int64)}


def test_a_building_site_caught_half_by_class_change_half_by_sar_is_one_alert() -> None:
    rows, cols, t = 10, 10, 10
    classes = [np.full((rows, cols), 3, dtype=np.uint8) for _ in range(t)]
    vv = np.full((t, rows, cols), -12.0, dtype=np.float32)
    for m in range(4, t):
        classes[m][2:8, :] = 1  # classified built from month 4 on: a class change on the left half
    classes[3][2:8, 5:8] = 6  # the right half was open land in month 3: no persistent change there
    classes[3][2:8, 8:] = 2  # ... or, at its far end, already classified built (its class before: 3)
    vv[4:, 2:8, :] = -3.0  # walls: a lasting rise in month 4 over the whole site
    found = detect.change_layers(classes, vv, _sar((rows, cols)), MONTHS, persist=2, tolerance=1)
    up = found.urbanisation
    assert up.mask[2:8].all() and up.mask.sum() == 60 and (up.transitions.onset[2:8] == 4).all()
    assert up.confirmed[2:8].all()
    before = up.transitions.before[2:8]
    assert (before[:, :5] == 3).all() and (before[:, 5:8] == 6).all() and (before[:, 8:] == 3).all()
    assert (up.transitions.after[2:8] == 1).all()
    by_rule = dict(up.evidence)
    assert by_rule["class change + SAR"].sum() == 30 and by_rule["class change + SAR"][2:8, :5].all()
    assert by_rule["SAR + built class"].sum() == 30 and by_rule["SAR + built class"][2:8, 5:].all()
    grid = PixelGrid("EPSG:32631", (10.0, 0.0, 0.0, 0.0, -10.0, 100.0), cols, rows)
    months = [date(2020 + (m // 12), m % 12 + 1, 1) for m in range(t)]
    features = alerts.change_alerts(
        up.mask, up.transitions, up.confirmed, grid=grid, months=months, min_area_m2=5000.0,
        kind=up.kind, evidence=up.evidence,
    )  # fmt: skip
    assert len(features) == 1  # 60 px: one 0.6 ha object; each rule alone is 30 px, under 0.5 ha
    p = features[0]["properties"]
    assert p["area_m2"] == pytest.approx(6000.0) and p["onset"] == f"{months[4]:%Y-%m}"
    assert set(p["evidence"].split(", ")) == {"class change + SAR", "SAR + built class"}
    assert not found.site.mask.any()  # the left half's site opening is its urbanisation


def test_a_site_opening_is_a_layer_and_a_flood_is_not_a_site() -> None:
    # left: a site; middle: an unchanged field (wider than the flood rule's smoothing); right: a flood
    rows, cols, t = 8, 28, 10
    classes = [np.full((rows, cols), 3, dtype=np.uint8) for _ in range(t)]
    vv = np.full((t, rows, cols), -12.0, dtype=np.float32)
    for m in range(5, t):
        classes[m][:, :10] = 6  # stripped soil from month 5 on
    vv[5:, :, :10] = -14.0  # smoother dry soil: a lasting drop of 2 dB
    for m in (5, 6):
        classes[m][:, 16:] = 6  # flooded two months (water)
    vv[5:7, :, 16:] = -22.0
    found = detect.change_layers(classes, vv, _sar((rows, cols)), MONTHS, persist=2, tolerance=1)
    site = found.site
    assert site.mask[:, :10].all() and not site.mask[:, 10:].any()
    assert (site.transitions.onset[:, :10] == 5).all() and site.confirmed[:, :10].all()
    assert found.flooded[5:7, :, 16:].all() and not found.flooded[:, :, :10].any()
    assert (site.month_band()[:, :10] == 6).all() and (site.month_band()[:, 10:] == 0).all()


def test_a_change_must_hold_three_quarters_of_the_months_after_it() -> None:
    classes = series(
        [3, 3, 3, 3, 1, 1, 3, 3, 3, 3],  # built two months, then a field again: an error
        [3, 3, 3, 3, 1, 1, 1, 3, 1, 1],  # built with one cloudy month: holds (5 of 6)
        [3, 3, 3, 3, 3, 3, 3, 3, 1, 1],  # built in the last two months: holds (2 of 2)
    )
    onset = persistent_changes(classes, persist=2, keep=fusion.into_built).onset
    assert onset.tolist() == [[4, 4, 8]]
    held = fusion.holds(classes, onset, (1, 2))
    assert held.tolist() == [[False, True, True]]
    # against a loop over the months from the onset
    stack = np.stack(classes)[:, 0]
    for px in range(3):
        t = onset[0, px]
        assert held[0, px] == (np.isin(stack[t:, px], (1, 2)).mean() >= 0.75)
    assert not fusion.holds(classes, np.full((1, 3), -1), (1, 2)).any()
    assert fusion.holds(classes, onset, (1, 2), share=0.3).tolist() == [[True, True, True]]
    rows = np.full((10, 1, 3), -12.0, dtype=np.float32)
    rows[4:, 0, :] = -3.0  # Sentinel-1 saw walls everywhere: the class error is still no alert
    found = detect.change_layers(classes, rows, _sar((1, 3)), MONTHS, persist=2, tolerance=1)
    assert found.urbanisation.mask.tolist() == [[False, True, True]]


def test_an_alert_takes_its_onset_and_confidence_from_the_pixels_that_changed_together() -> None:
    onset = np.array([[3, 3, 3, 4, 9, 9, 9, 12]])
    obj = np.ones_like(onset, dtype=bool)
    month, core = alerts.event_core(onset, obj, tolerance=1)
    assert month == 3 and core.tolist() == [[True, True, True, True, False, False, False, False]]
    assert alerts.event_core(onset, obj, tolerance=0)[0] == 3  # three 3s and three 9s: the earliest
    late = np.array([[3, 4, 4, 4, 4]])  # the window around 3 holds them all (a tie): their median
    assert alerts.event_core(late, np.ones_like(late, dtype=bool), tolerance=1)[0] == 4
    # a 60 px site whose 40 confirmed pixels changed in month 3, with 20 px of class-map noise
    # around it (other months, unconfirmed): the site's confidence, not the noise's
    rows, cols = 6, 10
    on = np.full((rows, cols), 3)
    on[:2] = np.array([7, 8, 1, 0, 9, 6, 7, 8, 1, 0])
    confirmed = on == 3
    tr = Transitions(on, np.full((rows, cols), 3), np.full((rows, cols), 1))
    grid = PixelGrid("EPSG:32631", (10.0, 0.0, 0.0, 0.0, -10.0, 60.0), cols, rows)
    months = [date(2021, m, 1) for m in range(1, 13)]
    (feature,) = alerts.change_alerts(
        np.ones((rows, cols), dtype=bool), tr, confirmed, grid=grid, months=months, min_area_m2=5000.0,
        kind="urbanisation", evidence="class change + SAR",
    )  # fmt: skip
    p = feature["properties"]
    assert p["onset"] == "2021-04" and p["confidence"] == 1.0 and p["area_m2"] == pytest.approx(6000.0)
    assert float(confirmed.mean()) < 0.7  # over the whole object it would be diluted


def test_a_change_that_reverted_does_not_hide_a_later_one_that_lasts() -> None:
    classes = series(
        [3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1],  # a wet field called built in months 2-3, built from 8
        [3, 3, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3],  # the wet months alone: no urbanisation
        [3, 3, 3, 3, 3, 3, 1, 1, 1, 3, 1, 1],  # built from 6 with one cloudy month: holds
        [2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 2, 2],  # a city block called woodland two months: no change
    )
    first = persistent_changes(classes, persist=2, keep=fusion.into_built).onset
    assert first.tolist() == [[2, 2, 6, 10]]
    accept = fusion.lasting_change(classes, (3, 4, 5, 6), (1, 2))
    lasting = persistent_changes(classes, persist=2, keep=fusion.into_built, accept=accept).onset
    assert lasting.tolist() == [[8, -1, 6, -1]]
    found = detect.class_changes(classes, persist=2)
    assert found.up.onset.tolist() == [[8, -1, 6, -1]] and found.urban.tolist() == [
        [True, False, True, False]
    ]
    assert found.up.before[0, 0] == 3 and found.up.after[0, 0] == 1
    # against a loop: new classes in 3/4 of the months from t, old ones in 1/4 of those before
    stack = np.stack(classes)[:, 0]
    for t in range(1, stack.shape[0]):
        for px in range(stack.shape[1]):
            after = np.isin(stack[t:, px], (1, 2)).mean() >= 0.75
            before = np.isin(stack[:t, px], (3, 4, 5, 6)).mean() >= 0.25
            assert accept(t)[0, px] == (after and before)


def test_held_before_against_a_loop_over_the_months_before() -> None:
    rng = np.random.default_rng(3)
    stack = rng.choice(np.array([1, 2, 3, 4], dtype=np.uint8), size=(12, 4, 5), p=[0.3, 0.2, 0.3, 0.2])
    onset = rng.integers(-1, 12, size=(4, 5))
    got = fusion.held_before(stack, onset, (3, 4, 5, 6), share=0.25)
    for r in range(4):
        for c in range(5):
            t = onset[r, c]
            want = t > 0 and np.isin(stack[:t, r, c], (3, 4, 5, 6)).mean() >= 0.25
            assert got[r, c] == want


def test_a_brightening_of_a_pixel_built_nearly_all_months_before_is_no_urbanisation() -> None:
    classes = series(  # no persistent class transition in either: Sentinel-1 leads
        [2, 2, 2, 2, 2, 2, 2, 2, 5, 2, 2, 2, 2, 2],  # a city block the forests called woodland once
        [3, 3, 3, 3, 3, 3, 3, 3, 5, 2, 2, 2, 2, 2],  # a field: a new building from month 9
    )
    months = np.arange(600, 614)
    vv = np.full((14, 1, 2), -10.0, dtype=np.float32)
    vv[9:] = -4.0  # a lasting rise of 6 dB in month 9 on both
    found = detect.change_layers(classes, vv, _sar((1, 2)), months, persist=2, tolerance=1)
    assert found.urbanisation.mask.tolist() == [[False, True]]
    assert found.urbanisation.transitions.onset[0, 1] == 9
    assert dict(found.urbanisation.evidence)["SAR + built class"].tolist() == [[False, True]]
    # the omnibus test's last change a brightening in month 9, the monthly VV flat
    sar = {"last": np.array([[609, 609]]), "last_direction": np.array([[1, 1]])}
    found = detect.change_layers(classes, np.full_like(vv, -10.0), sar, months, persist=2, tolerance=1)
    assert found.urbanisation.mask.tolist() == [[False, True]]
    # the block's brightening passes every other rule: only the months before refuse it
    led, index = fusion.sar_led_urbanisation(classes, months, sar["last"], sar["last_direction"], persist=2)
    assert led.tolist() == [[True, True]] and index.tolist() == [[9, 9]]
    assert fusion.held_before(classes, index, (3, 4, 5, 6), share=0.25).tolist() == [[False, True]]
