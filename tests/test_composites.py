"""Monthly composite methods against numpy references: medoid, quality mosaic, S1 means."""

from __future__ import annotations

import warnings
from datetime import date

import ee
import numpy as np
import pytest

from gee_fusion.errors import ConfigError
from gee_fusion.recipe.composite import monthly_composites, monthly_s1_means
from tests.conftest import pixels


def _feb(syn) -> np.ndarray:
    return np.array([t.startswith("2021-02") for t in syn.times])


def test_medoid_picks_the_observation_nearest_the_median(syn) -> None:
    col = ee.ImageCollection("test/syn")
    out = monthly_composites(
        col, bands=["B1", "B2"], start=date(2021, 2, 1), end=date(2021, 3, 1), method="medoid"
    )
    got = pixels(ee.Image(out.first()).select(["B1", "B2"]), syn.grid)
    idx = np.flatnonzero(_feb(syn))
    x = np.stack([syn.b1[idx], syn.b2[idx]]).astype(np.float64)  # (band, n, h, w)
    valid = syn.mask[idx]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-masked pixels
        med = np.nanmedian(np.where(valid[None], x, np.nan), axis=1)
    dist = np.where(valid, ((x - med[:, None]) ** 2).sum(axis=0), np.inf)
    pick = np.argmin(dist, axis=0)
    srt = np.sort(dist, axis=0)
    tie = np.isclose(srt[0], srt[1], rtol=1e-4, atol=1e-9)  # e.g. two observations: both equidistant
    has = valid.any(axis=0)
    for k, band in enumerate(("B1", "B2")):
        want = np.take_along_axis(x[k], pick[None], axis=0)[0]
        vals, mask = got[band]
        np.testing.assert_array_equal(mask, has)
        np.testing.assert_allclose(vals[has & ~tie], want[has & ~tie], rtol=1e-6)


def test_quality_mosaic_takes_the_highest_quality(syn) -> None:
    col = ee.ImageCollection("test/syn")
    out = monthly_composites(
        col,
        bands=["B1", "B2"],
        start=date(2021, 2, 1),
        end=date(2021, 3, 1),
        method="quality",
        quality_band="B2",
    )
    vals, mask = pixels(ee.Image(out.first()).select("B1"), syn.grid)["B1"]
    idx = np.flatnonzero(_feb(syn))
    q = np.where(syn.mask[idx], syn.b2[idx], -np.inf)
    want = np.take_along_axis(syn.b1[idx], np.argmax(q, axis=0)[None], axis=0)[0]
    np.testing.assert_allclose(vals[mask], want[mask])
    with pytest.raises(ConfigError, match="quality_band"):
        monthly_composites(col, bands=["B1"], start=date(2021, 2, 1), end=date(2021, 3, 1), method="quality")


def test_s1_monthly_means_average_linear_power(syn) -> None:
    col = ee.ImageCollection("test/syn").select(["B2"], ["VV"])
    out = monthly_s1_means(col, bands=["VV"], start=date(2021, 1, 1), end=date(2021, 3, 1))
    vals, mask = pixels(ee.Image(out.toList(2).get(1)).select("VV"), syn.grid)["VV"]
    idx = np.flatnonzero(_feb(syn))
    lin = np.where(syn.mask[idx], syn.b2[idx], np.nan).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-masked pixels
        want = 10 * np.log10(np.nanmean(lin, axis=0))
        mean_of_db = np.nanmean(10 * np.log10(lin), axis=0)[mask]
    np.testing.assert_allclose(vals[mask], want[mask], rtol=1e-5, atol=1e-5)
    assert np.abs(mean_of_db - vals[mask]).max() > 0.1  # not a mean of dB
