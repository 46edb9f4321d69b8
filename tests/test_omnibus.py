"""Sequential omnibus change detection (recipe/omnibus.py) and the special functions it needs
(Image.gammainc, gamma, digamma, trigamma), against scipy and a numpy implementation of
Conradsen et al. (2016) on the same pixels; then on the demo world's planted changes."""

from __future__ import annotations

from datetime import UTC, datetime

import ee
import numpy as np
import pytest
from scipy import special, stats

import gee_fusion
from gee_fusion.errors import DataError
from gee_fusion.local.catalog import register_numpy_collection, register_numpy_image
from gee_fusion.recipe import omnibus
from tests.conftest import ee_grid

CRS = "EPSG:32631"
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5500000.0)
H, W, K = 24, 30, 7


def grid() -> dict:
    return ee_grid(CRS, TRANSFORM, W, H)


def compute(image: ee.Image) -> dict[str, np.ndarray]:
    out = ee.data.computePixels({"expression": image, "grid": grid()})
    return {name: np.asarray(out[name]) for name in out.dtype.names}


def test_special_functions_equal_scipy(local_engine: gee_fusion.Connection) -> None:
    x = np.linspace(0.05, 12.0, W)[None, :].repeat(H, 0).astype(np.float64)
    a = np.linspace(0.5, 9.0, H)[:, None].repeat(W, 1).astype(np.float64)
    register_numpy_image("test/special", {"x": x, "a": a}, crs=CRS, transform=TRANSFORM)
    img = ee.Image("test/special")
    got = compute(ee.Image.cat([
        img.select("x").gammainc(img.select("a")).rename("P"), img.select("x").gamma().rename("G"),
        img.select("x").digamma().rename("D"), img.select("x").trigamma().rename("T"),
    ]))  # fmt: skip
    np.testing.assert_allclose(got["P"], special.gammainc(a, x), rtol=1e-12)
    np.testing.assert_allclose(got["G"], special.gamma(x), rtol=1e-12)
    np.testing.assert_allclose(got["D"], special.digamma(x), rtol=1e-12)
    np.testing.assert_allclose(got["T"], special.polygamma(1, x), rtol=1e-12)
    assert ee.Number(3.0).gammainc(2.0).getInfo() == pytest.approx(special.gammainc(2.0, 3.0))
    assert ee.Number(4.5).gamma().getInfo() == pytest.approx(special.gamma(4.5))


def make_series(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(K, H, W) VV and VH: 4.4-look gamma speckle; the left third changes at interval 3 (darker),
    the middle third at intervals 2 (brighter) and 5 (back), the right third never. (Single
    4.4-look pixels need strong changes: a -7 dB drop is found about 65 % of the time at 1 %.)"""
    rng = np.random.default_rng(seed)
    vv = np.full((K, H, W), 0.1)
    vh = np.full((K, H, W), 0.02)
    vv[3:, :, :10] *= 0.05  # flooded: -13 dB VV, -10 dB VH
    vh[3:, :, :10] *= 0.1
    vv[2:5, :, 10:20] *= 10.0  # a building site: +10 dB VV, +9 dB VH, then cleared
    vh[2:5, :, 10:20] *= 8.0
    speckle = rng.gamma(omnibus.ENL, 1.0 / omnibus.ENL, (2, K, H, W))
    return vv * speckle[0], vh * speckle[1]


def reference(vv: np.ndarray, vh: np.ndarray, alpha: float, m: float = omnibus.ENL) -> dict[str, np.ndarray]:
    """The sequential omnibus procedure in numpy/scipy (float64), written from the paper."""
    k = vv.shape[0]
    logdet = lambda a, b: np.log(a) + np.log(b)  # noqa: E731

    def row(i: int) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        a, b = vv[i - 1 :], vh[i - 1 :]
        m2 = []
        for j in range(2, len(a) + 1):
            sp, sj = (a[: j - 1].sum(0), b[: j - 1].sum(0)), (a[:j].sum(0), b[:j].sum(0))
            val = 2 * (j * np.log(j) - (j - 1) * np.log(j - 1)) + (j - 1) * logdet(*sp)
            val = val + logdet(a[j - 1], b[j - 1]) - j * logdet(*sj)
            m2.append(-2 * m * val)
        q = np.sum(m2, axis=0)
        return stats.chi2.sf(q, 2 * (len(a) - 1)), [stats.chi2.sf(s, 2) for s in m2], m2

    cmap = np.zeros(vv.shape[1:], int)
    smap, fmap = cmap.copy(), cmap.copy()
    bmap = np.zeros((k - 1, *vv.shape[1:]), int)
    for i in range(1, k):
        p_q, p_r, _ = row(i)
        for jj, pr in enumerate(p_r):
            t = i + jj  # interval (1-based)
            hit = (pr < alpha) & (p_q < alpha) & (cmap == i - 1)
            before = (vv[i - 1 : t].mean(0), vh[i - 1 : t].mean(0))
            up_vv, up_vh = vv[t] - before[0], vh[t] - before[1]
            direction = np.where((up_vv > 0) & (up_vh > 0), 1, np.where((up_vv < 0) & (up_vh < 0), 2, 3))
            cmap = np.where(hit, t, cmap)
            fmap = np.where(hit, fmap + 1, fmap)
            if i == 1:
                smap = np.where(hit, t, smap)
            bmap[t - 1] = np.where(hit, direction, bmap[t - 1])
    return {"cmap": cmap, "smap": smap, "fmap": fmap, "bmap": bmap, "row1": row(1)}


@pytest.fixture(scope="module")
def series(local_engine: gee_fusion.Connection) -> tuple[list[ee.Image], np.ndarray, np.ndarray]:
    vv, vh = make_series()
    times = [datetime(2021, 1 + t, 5, tzinfo=UTC) for t in range(K)]
    register_numpy_collection("test/omnibus", {"VV": vv, "VH": vh}, crs=CRS, transform=TRANSFORM, times=times)
    col = ee.ImageCollection("test/omnibus")
    return [ee.Image(col.toList(K).get(t)) for t in range(K)], vv, vh


def test_the_statistics_equal_scipy_on_the_same_pixels(series: tuple) -> None:
    images, vv, vh = series
    ref_q, ref_p, ref_m2 = reference(vv, vh, 0.01)["row1"]
    tests = omnibus.row_tests(images, 1)
    p_r = [p.rename(f"p{j}") for j, p in enumerate(tests.p_r)]
    m2log_r = [omnibus.m2log_r(images, j).rename(f"r{j}") for j in range(2, K + 1)]
    got = compute(ee.Image.cat([tests.p_q, tests.m2log_q, *p_r, *m2log_r]))
    for j in range(2, K + 1):
        np.testing.assert_allclose(got[f"r{j}"], ref_m2[j - 2], rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(got[f"p{j - 2}"], ref_p[j - 2], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got["m2logQ"], np.sum(ref_m2, axis=0), rtol=2e-5, atol=2e-4)
    np.testing.assert_allclose(got["pQ"], ref_q, rtol=1e-4, atol=1e-7)


def test_the_change_maps_equal_the_reference_and_find_the_planted_changes(series: tuple) -> None:
    images, vv, vh = series
    ref = reference(vv, vh, 0.01)
    got = compute(omnibus.change_maps(images, alpha=0.01))
    for name in ("cmap", "smap", "fmap"):
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    for t in range(1, K):
        np.testing.assert_array_equal(got[f"bmap_{t}"], ref["bmap"][t - 1], err_msg=f"bmap_{t}")
    left, middle, right = (
        (slice(None), slice(0, 10)),
        (slice(None), slice(10, 20)),
        (slice(None), slice(20, 30)),
    )
    assert (got["bmap_3"][left] == 2).mean() > 0.95 and (got["fmap"][left] >= 1).mean() > 0.95
    assert (got["bmap_2"][middle] == 1).mean() > 0.95 and (got["bmap_5"][middle] == 2).mean() > 0.95
    assert (got["fmap"][right] > 0).mean() < 0.1  # false alarms at alpha = 0.01 over 6 intervals


def test_bad_series_are_refused(series: tuple) -> None:
    images, _, _ = series
    with pytest.raises(DataError, match="at least three images"):
        omnibus.change_maps(images[:2])
    with pytest.raises(DataError, match="alpha"):
        omnibus.change_maps(images, alpha=1.5)


@pytest.mark.slow
def test_a_planted_construction_site_is_seen_by_sentinel1_when_it_is_built(
    local_engine: gee_fusion.Connection,
) -> None:
    from datetime import date

    from gee_fusion.export.fetch import grid_aoi
    from gee_fusion.grid import PixelGrid
    from gee_fusion.local.world.changes import ChangeKind, planted_changes
    from gee_fusion.local.world.config import DEFAULT_WORLD as W
    from gee_fusion.monitoring.sar import sar_changes

    site = next(c for c in planted_changes(W) if c.kind == ChangeKind.CONSTRUCTION and c.end.year == 2023)
    x0, y1 = W.origin
    pad = 16
    g = PixelGrid(W.crs, (10.0, 0.0, x0 + (site.col0 - pad) * 10, 0.0, -10.0, y1 - (site.row0 - pad) * 10),
                  site.col1 - site.col0 + 2 * pad, site.row1 - site.row0 + 2 * pad)  # fmt: skip
    months = [date(2021 + (6 + k) // 12, (6 + k) % 12 + 1, 1) for k in range(24)]  # 2021-07 .. 2023-06
    out = ee.data.computePixels({"expression": sar_changes(grid_aoi(g), months).unmask(0), "grid": g.to_ee()})
    inside = np.zeros(out.shape, bool)
    inside[pad:-pad, pad:-pad] = True
    built = site.end.year * 12 + site.end.month - 1 - 1970 * 12
    last, turn = out["last"][inside], out["last_direction"][inside]
    assert (out["count"][inside] > 0).all()
    # the buildings appear: the last change is a brightening within a month of the truth's end
    assert ((np.abs(last.astype(int) - built) <= 1) & (turn == 1)).mean() > 0.8
