"""Demo world v2 realism (issue 14): Sentinel-1 point targets and incidence slopes, Sentinel-2
co-registration offsets and residual haze, each against a numpy reference or its documented figure."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import ndimage

from gee_fusion.local.world import (
    atmosphere,
    blocks,
    changes,
    s2_bands,
    schedule,
    sentinel1,
    sentinel2,
    surface,
)
from gee_fusion.local.world.blocks import BLOCK
from gee_fusion.local.world.config import DEFAULT_WORLD
from gee_fusion.local.world.landcover import DENSE, INDUSTRIAL, NETWORK, SPARSE

W = DEFAULT_WORLD
CITY = (2, 2)
"""A block of the historic centre: dense built-up with some sparse, industrial and networks."""


def _s1_dates(passing: str, n: int, year: int = 2021) -> list[int]:
    return [
        k for k, a in enumerate(schedule.s1_acquisitions()) if a.when.year == year and a.passing == passing
    ][:n]


def _clear_s2(pick: Callable[[int, atmosphere.Sky], bool], bxs: tuple[int, ...] = (2,), by: int = 2) -> int:
    """The first 2019-2020 S2 acquisition with no cloud, shadow or cirrus on blocks (bxs, by) that
    satisfies ``pick``."""
    for i, a in enumerate(schedule.s2_acquisitions()):
        if a.when.year not in (2019, 2020):
            continue
        sky = atmosphere.sky(W, float(a.millis))
        if sky.cirrus or sky.cover > 0.2 or not pick(i, sky):
            continue
        f = atmosphere.cloud_fields(W, sky, bxs[0] * BLOCK, by * BLOCK, len(bxs) * BLOCK, BLOCK)
        if not (f.opacity.any() or f.shadow.any()):
            return i
    raise AssertionError("no clear acquisition")


# -- Sentinel-1 point targets ---------------------------------------------------------------------


def _city_targets(passing: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lc = blocks.landcover_window(W, 300, 300, 600, 600)
    ix, iy = np.arange(300, 900)[None, :], np.arange(300, 900)[:, None]
    vv, vh = sentinel1.point_targets(W, passing, lc.label, ix, iy)
    return lc.label, vv, vh


def test_point_targets_share_brightness_and_passes_per_class() -> None:
    label, asc_vv, asc_vh = _city_targets("ASCENDING")
    _, desc_vv, _ = _city_targets("DESCENDING")
    base = {c: sentinel1.BACKSCATTER[c] for c in sentinel1.POINT_TARGETS}
    for code, density in sentinel1.POINT_TARGETS.items():
        sel = label == code
        n = int(sel.sum())
        assert n > 5000, (code, n)
        for vv in (asc_vv, desc_vv):
            share = float((vv[sel] > 0).mean())
            assert abs(share - density) < 5 * np.sqrt(density * (1 - density) / n), (code, share, density)
        hit = sel & (asc_vv > 0)
        boost_vv = 10 * np.log10(asc_vv[hit]) - base[code][0]
        boost_vh = 10 * np.log10(asc_vh[hit]) - base[code][1]
        assert (
            sentinel1.POINT_DB[0] - 1e-3 <= boost_vv.min() and boost_vv.max() <= sentinel1.POINT_DB[1] + 1e-3
        )
        assert abs(float(boost_vv.mean()) - 15.0) < 1.0  # uniform over 10..20 dB
        np.testing.assert_allclose(boost_vh, sentinel1.POINT_VH * boost_vv, atol=1e-3)
    assert not (asc_vv[~np.isin(label, list(sentinel1.POINT_TARGETS))] > 0).any()
    # densest in dense and industrial fabric
    d = sentinel1.POINT_TARGETS
    assert min(d[DENSE], d[INDUSTRIAL]) > d[SPARSE] > d[NETWORK]
    # pass dependence: a shared part plus one drawn per pass (independent draws rarely coincide)
    a, b = asc_vv > 0, desc_vv > 0
    both = float((a & b).sum() / a.sum())
    assert abs(both - sentinel1.POINT_SHARED) < 0.05, both


def test_point_targets_are_a_pure_function_of_world_coordinates() -> None:
    _, vv, vh = _city_targets("DESCENDING")
    lc = blocks.landcover_window(W, 437, 512, 97, 61)
    ix, iy = np.arange(437, 534)[None, :], np.arange(512, 573)[:, None]
    part_vv, part_vh = sentinel1.point_targets(W, "DESCENDING", lc.label, ix, iy)
    np.testing.assert_array_equal(part_vv, vv[212:273, 137:234])
    np.testing.assert_array_equal(part_vh, vh[212:273, 137:234])


def test_point_targets_in_the_product_are_bright_steady_and_few() -> None:
    bx, by = CITY
    dates = _s1_dates("ASCENDING", 8)
    stack = np.stack([sentinel1.s1_block(W, i, bx, by)["VV"] for i in dates]).astype(np.float64)
    millis = float(schedule.s1_acquisitions()[dates[0]].millis)
    lc, _ = changes.apply_changes(
        W, blocks.landcover_block_halo(W, bx, by), bx * BLOCK - 1, by * BLOCK - 1, millis
    )
    ix, iy = blocks.halo_indices(bx, by)
    pt, _ = sentinel1.point_targets(W, "ASCENDING", lc.label, ix, iy)
    target, label = pt[1:-1, 1:-1] > 0, lc.label[1:-1, 1:-1]
    dense = label == DENSE
    first = 10 * np.log10(stack[0])
    # a target stands 10-20 dB above its class (less 2.2 dB of PSF spread onto the neighbours)
    gap = float(np.median(first[target & dense]) - np.median(first[~target & dense]))
    assert 8.0 < gap < 16.0, gap
    # few bright pixels: the documented share of dense built-up pixels above +10 dB
    bright = float((first[dense] > 10.0).mean())
    assert 0.02 < bright < 0.08, bright
    # steadier than the speckled background across dates (temporal CV of the intensity)
    cv = stack.std(axis=0) / stack.mean(axis=0)
    clutter = dense & ~ndimage.binary_dilation(target, iterations=2)
    assert float(np.median(cv[target & dense])) < 0.25 < 0.35 < float(np.median(cv[clutter]))


def test_incidence_slopes_lie_in_the_published_ranges() -> None:
    s = sentinel1.ANGLE_SLOPE_DB
    assert -0.25 <= s["surface"][0] <= -0.1 and -0.25 <= s["surface"][1] <= -0.05  # bare and crops
    assert -0.1 <= s["woody"][0] <= -0.03 and -0.1 <= s["woody"][1] <= -0.03  # volume scattering
    assert -0.05 <= s["urban"][0] <= 0.0  # double bounce: nearly flat
    assert -0.7 <= s["water"][0] <= -0.4  # specular: steep (CMOD5 at low wind)


# -- Sentinel-2 co-registration -------------------------------------------------------------------


def test_coregistration_offsets_match_the_published_performance() -> None:
    acqs = schedule.s2_acquisitions()
    d = np.array([sentinel2.coregistration_offset(W, i) for i in range(len(acqs))])
    refined = np.array([a.when.date() >= sentinel2.GRI_REFINED for a in acqs])
    before_sd, after_sd = sentinel2.COREG_SD
    assert abs(float(d[~refined].std()) - before_sd) < 0.1 * before_sd
    assert abs(float(d[refined].std()) - after_sd) < 0.1 * after_sd
    assert np.abs(d).max() <= surface.SHIFT_MAX

    def pairwise_ce95(sel: np.ndarray) -> float:  # radial error of consecutive pairs at 95.5 %
        pairs = np.diff(d[sel], axis=0)
        return float(np.quantile(np.hypot(pairs[:, 0], pairs[:, 1]), 0.955))

    assert 1.0 < pairwise_ce95(~refined) < 1.4  # 12 m before the GRI refinement
    assert 0.25 < pairwise_ce95(refined) < 0.36  # 3 m after, one relative orbit
    np.testing.assert_array_equal(d, [sentinel2.coregistration_offset(W, i) for i in range(len(acqs))])


@pytest.mark.parametrize(("dx", "dy"), [(0.0, 0.0), (0.3, -0.2), (-1.0, 1.0), (0.55, 0.05)])
def test_shift_kernel_is_the_mixing_kernel_moved_to_the_offset(dx: float, dy: float) -> None:
    k = surface.shift_kernel(dx, dy)
    offsets = np.arange(-1, 2)
    assert k.min() >= 0.0 and k.sum() == pytest.approx(1.0)
    # the taps folded back from two pixels out keep 0.9 of the centroid
    assert float((k.sum(axis=0) * offsets).sum()) == pytest.approx(0.9 * dx)
    assert float((k.sum(axis=1) * offsets).sum()) == pytest.approx(0.9 * dy)
    if dx == dy == 0.0:
        np.testing.assert_allclose(k, [[0, 0.1, 0], [0.1, 0.6, 0.1], [0, 0.1, 0]])


def _best_shift(
    moved: np.ndarray, ref: np.ndarray, step: float, centre: tuple[float, float]
) -> tuple[float, ...]:
    """The (dx, dy) at which ``ref`` resampled bilinearly (scipy) correlates best with ``moved``."""
    best, score = centre, -2.0
    for sy in np.arange(centre[1] - 5 * step, centre[1] + 5.5 * step, step):
        for sx in np.arange(centre[0] - 5 * step, centre[0] + 5.5 * step, step):
            cand = ndimage.shift(ref, (-sy, -sx), order=1, mode="nearest")[4:-4, 4:-4]
            r = float(np.corrcoef(cand.ravel(), moved[4:-4, 4:-4].ravel())[0, 1])
            if r > score:
                best, score = (float(sx), float(sy)), r
    return best


def test_a_shifted_acquisition_correlates_best_at_its_drawn_offset() -> None:
    i = _clear_s2(lambda i, _: max(map(abs, sentinel2.coregistration_offset(W, i))) > 0.5, (2, 3))
    dx, dy = sentinel2.coregistration_offset(W, i)
    # a window across the boundary of blocks (2, 2) and (3, 2): no seam
    moved = sentinel2._window10(W, i, "B8", 704, 560, 128, 96).astype(np.float64) / 1e4
    ref = np.concatenate(
        [sentinel2.surface_block(W, i, bx, 2, shifted=False)[7] for bx in (2, 3)], axis=1
    ).astype(np.float64)[560 - 512 : 656 - 512, 192:320]
    coarse = _best_shift(moved, ref, 0.1, (0.0, 0.0))
    coarse = _best_shift(moved, ref, 0.1, coarse)  # the grid spans +-0.5 px: a second hop
    fine = _best_shift(moved, ref, 0.02, coarse)
    assert abs(fine[0] - dx) <= 0.05 and abs(fine[1] - dy) <= 0.05, (fine, (dx, dy))


# -- Sentinel-2 residual haze -----------------------------------------------------------------------


def test_haze_strength_and_field_are_small_smooth_and_per_date() -> None:
    skies = [atmosphere.sky(W, float(a.millis)) for a in schedule.s2_acquisitions()]
    haze = np.array([s.haze for s in skies])
    assert haze.max() <= atmosphere.HAZE_MAX and 0.008 < float(np.median(haze)) < 0.02
    assert 0.85 < float((haze < 0.07).mean()) < 0.95  # most dates small
    s = max(skies[:200], key=lambda s: s.haze)
    tau = atmosphere.haze_field(W, s, 0, 0, W.size_px, W.size_px)
    assert abs(float(tau.mean()) / s.haze - 1.0) < 0.5  # a 12 km world holds few 6 km features
    assert 0.05 < float(tau.std() / tau.mean()) < 0.5
    assert float(np.abs(np.diff(tau, axis=1)).max()) < 0.02 * s.haze  # smooth at 10 m
    np.testing.assert_array_equal(atmosphere.haze_field(W, s, 300, 200, 50, 40), tau[200:240, 300:350])


def test_haze_adds_the_documented_path_and_the_masks_ignore_it(monkeypatch: pytest.MonkeyPatch) -> None:
    i = _clear_s2(lambda _, sky: sky.haze > 0.04)
    bx, by = CITY
    prod = sentinel2._s2_block(W, i, bx, by)
    ground = sentinel2.surface_block(W, i, bx, by)
    sky = atmosphere.sky(W, float(schedule.s2_acquisitions()[i].millis))
    tau = atmosphere.haze_field(W, sky, bx * BLOCK, by * BLOCK, BLOCK, BLOCK)[None]
    expected = ground + tau * (s2_bands.HAZE_PATH - s2_bands.HAZE_DIMMING * ground)
    for k, band in enumerate(surface.BANDS):
        if band != "B10":
            got = prod[band].astype(np.float64) / 1e4
            np.testing.assert_allclose(got, expected[k], atol=0.6e-4, err_msg=band)
    # Angstrom-like: 0.2 per unit optical depth in B1, falling with wavelength to ~0.03 in B12
    path = s2_bands.HAZE_PATH[:, 0, 0]
    assert path[0] == pytest.approx(0.2) and path[12] == pytest.approx(0.029, abs=0.002) and path[10] == 0
    assert np.all(np.diff(np.delete(path, 10)) < 0)
    added = (prod["B2"].astype(np.float64) - ground[1] * 1e4).mean() / 1e4
    assert 0.5 * sky.haze * path[1] < added < 2.0 * sky.haze * path[1]
    # without the haze: same cloud masks, same truth; Cloud Score+ only a little higher
    monkeypatch.setattr(atmosphere, "haze_field", lambda *a: np.zeros((BLOCK, BLOCK), np.float32))
    clean = sentinel2._s2_block(W, i, bx, by)
    for name in ("MSK_CLDPRB", "probability", "QA60", "cloud", "shadow", "cirrus"):
        np.testing.assert_array_equal(prod[name], clean[name], err_msg=name)
    flagged = (3, 7, 8, 9, 10)
    np.testing.assert_array_equal(np.isin(prod["SCL"], flagged), np.isin(clean["SCL"], flagged))
    drop = clean["cs"] - prod["cs"]
    assert float(drop.min()) >= 0.0 and float(drop.max()) <= sentinel2.HAZE_CS * float(tau.max()) + 1e-6
    assert float((prod["cs"] < 0.6).mean()) < 0.05
    assert (prod["B1"] > clean["B1"]).mean() > 0.9
