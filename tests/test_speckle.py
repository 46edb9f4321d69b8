"""Speckle filters on linear Sentinel-1 power: ENL gains in homogeneous areas, mean kept."""

from __future__ import annotations

import ee
import numpy as np
import pytest

from gee_fusion import sentinel1 as s1
from gee_fusion import speckle
from gee_fusion.errors import ConfigError
from gee_fusion.local.world import blocks
from gee_fusion.local.world.config import DEFAULT_WORLD as W

KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
C0, R0, N = 256, 256, 256


def _grid() -> dict:
    x0, y1 = W.origin
    t = (10.0, 0.0, x0 + C0 * 10, 0.0, -10.0, y1 - R0 * 10)
    return {
        "dimensions": {"width": N, "height": N},
        "affineTransform": dict(zip(KEYS, t, strict=True)),
        "crsCode": W.crs,
    }


def _vv(image: ee.Image) -> np.ndarray:
    out = ee.data.computePixels(
        {"expression": image.select("VV"), "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"}
    )
    return np.asarray(out["VV"], dtype=np.float64)


def _enl(values: np.ndarray) -> float:
    """Median ENL over large arable/grass parcels (homogeneous areas)."""
    lc = blocks.landcover_window(W, C0, R0, N, N)
    homogeneous = (lc.label == 6) | (lc.label == 9)
    enls = []
    for pid in np.unique(lc.parcel[homogeneous]):
        sel = (lc.parcel == pid) & homogeneous
        if sel.sum() >= 600:
            x = values[sel]
            enls.append(x.mean() ** 2 / x.var())
    assert len(enls) >= 5
    return float(np.median(enls))


@pytest.fixture(scope="module")
def image() -> ee.Image:
    return ee.ImageCollection(s1.S1_GRD_FLOAT).filterDate("2021-07-01", "2021-07-10").first()


@pytest.mark.parametrize(
    ("method", "gain"),
    [("boxcar", 5.0), ("lee", 4.0), ("refined_lee", 3.0), ("lee_sigma", 2.0), ("gamma_map", 2.0)],
)
def test_filters_raise_enl_and_keep_the_mean(image: ee.Image, method: str, gain: float) -> None:
    raw = _vv(image)
    out = _vv(speckle.speckle_filter(image, method=method))  # type: ignore[arg-type]
    raw_enl, out_enl = _enl(raw), _enl(out)
    assert 4.0 <= raw_enl <= 5.0
    assert out_enl >= gain * raw_enl, (method, raw_enl, out_enl)
    assert abs(out.mean() / raw.mean() - 1) < 0.05


def test_multitemporal_filter_raises_enl_with_the_number_of_dates(image: ee.Image) -> None:
    col = s1.s1_collection(image.geometry(), "2021-06-01", "2021-09-01", s1.S1Selection(relative_orbit=132))
    assert col.size().getInfo() >= 10
    raw = _enl(_vv(ee.Image(col.first())))
    three = _enl(
        _vv(ee.Image(speckle.multitemporal_filter(col.limit(3), method="boxcar", kernel_size=3).first()))
    )
    six = _enl(
        _vv(ee.Image(speckle.multitemporal_filter(col.limit(6), method="boxcar", kernel_size=3).first()))
    )
    assert three > 2.0 * raw and six > three


def test_bad_options_fail_early(image: ee.Image) -> None:
    with pytest.raises(ConfigError, match="odd"):
        speckle.speckle_filter(image, kernel_size=4)
    with pytest.raises(ConfigError, match="enl"):
        speckle.speckle_filter(image, method="lee", enl=0)
    with pytest.raises(ConfigError, match="Unknown speckle filter"):
        speckle.speckle_filter(image, method="median")  # type: ignore[arg-type]


def test_filters_on_real_bigearthnet_patches(real_dir) -> None:
    col = ee.ImageCollection("local/bigearthnet/S1")
    img = s1.to_linear(ee.Image(col.first()))
    info = img.select("VV").getInfo()["bands"][0]
    grid = {
        "dimensions": {"width": 120, "height": 120},
        "affineTransform": dict(zip(KEYS, info["crs_transform"], strict=True)),
        "crsCode": info["crs"],
    }

    def cv(im: ee.Image) -> float:
        v = np.asarray(
            ee.data.computePixels(
                {"expression": im.select("VV"), "grid": grid, "fileFormat": "NUMPY_NDARRAY"}
            )["VV"],
            dtype=np.float64,
        )
        # median local coefficient of variation in 7x7 blocks
        blocks_ = v[:119, :119].reshape(17, 7, 17, 7).swapaxes(1, 2).reshape(17, 17, 49)
        return float(np.median(blocks_.std(axis=2) / blocks_.mean(axis=2)))

    raw = cv(img)
    assert 0.35 < raw < 0.65  # unfiltered GRD (PROVENANCE: local CV 0.42..0.53)
    for method in speckle.METHODS:
        assert cv(speckle.speckle_filter(img, method=method)) < 0.8 * raw  # type: ignore[arg-type]


@pytest.mark.parametrize("enl", [1.0, 4.0, 4.4])
def test_lee_sigma_range_is_unbiased_with_the_right_probability(enl: float) -> None:
    from scipy import integrate, stats

    lo, hi, xi = speckle.sigma_range(enl, 0.9)
    dist = stats.gamma(a=enl, scale=1 / enl)
    assert dist.cdf(hi) - dist.cdf(lo) == pytest.approx(0.9, abs=1e-6)
    mass = integrate.quad(dist.pdf, lo, hi)[0]
    mean = integrate.quad(lambda x: x * dist.pdf(x), lo, hi)[0] / mass
    assert mean == pytest.approx(1.0, abs=1e-4)
    assert 0 < xi < 1 / np.sqrt(enl)  # truncation reduces the speckle variation


def test_edge_preservation_index_is_sane(image: ee.Image) -> None:
    from gee_fusion.sar_quality import edge_preservation_index

    label = blocks.landcover_window(W, C0, R0, N, N).label
    edges = np.zeros(label.shape, dtype=bool)
    edges[:, 1:] |= label[:, 1:] != label[:, :-1]
    edges[1:, :] |= label[1:, :] != label[:-1, :]
    raw = _vv(image)
    epi = {
        m: edge_preservation_index(raw, _vv(speckle.speckle_filter(image, method=m)), edges)  # type: ignore[arg-type]
        for m in ("boxcar", "refined_lee", "lee_sigma")
    }
    assert all(0 < v <= 1.0 for v in epi.values()), epi
    assert epi["refined_lee"] > 2 * epi["boxcar"] and epi["lee_sigma"] > 2 * epi["boxcar"], epi
    assert edge_preservation_index(raw, raw) == 1.0
