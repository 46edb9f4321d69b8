"""The fusion-20 stack and the seed's Sentinel-1 date selection."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import ee
import numpy as np
import pytest

from gee_fusion.errors import ConfigError
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.recipe import stacks
from tests.conftest import world_grid


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def test_select_dates_one_per_month_with_gap() -> None:
    days = ["2021-07-20", "2021-07-28", "2021-08-01", "2021-08-07", "2021-08-19", "2021-09-06", "2021-11-02"]
    picked = stacks.select_dates([_ms(d) for d in days])
    got = [datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d") for t in picked]
    assert got == ["2021-07-20", "2021-08-07", "2021-09-06", "2021-11-02"]  # Aug 1 is 12 days after Jul 20
    with pytest.raises(ConfigError, match="month 11"):
        stacks.select_dates([_ms(d) for d in days[:-1]])


@pytest.fixture(scope="module")
def stack() -> ee.Image:
    x0, y1 = W.origin
    aoi = ee.Geometry.Rectangle([x0 + 3000, y1 - 3640, x0 + 3640, y1 - 3000], W.crs, False)
    return stacks.fusion20_stack(aoi, year=2021)


def test_fusion20_band_names_order_and_properties(stack: ee.Image) -> None:
    assert tuple(stack.bandNames().getInfo()) == stacks.FUSION20_BANDS
    props = stack.toDictionary(["s1_dates", "s1_relative_orbit", "year"]).getInfo()
    dates = [datetime.fromisoformat(d) for d in props["s1_dates"]]
    assert [d.month for d in dates] == [7, 8, 9, 11]
    assert all((b - a).days >= 17 for a, b in itertools.pairwise(dates))
    graph = json.dumps(ee.serializer.encode(stack, for_cloud_api=True))
    assert len(graph) < 250_000  # compact: shared sub-expressions are referenced, not repeated


def test_fusion20_values_are_consistent(stack: ee.Image) -> None:
    grid = world_grid(300, 300, 64, 64)
    out = ee.data.computePixels({"expression": stack, "grid": grid, "fileFormat": "NUMPY_NDARRAY"})
    b4, b8 = out["B4"].astype(np.float64), out["B8"].astype(np.float64)
    valid = (b4 + b8) > 0
    assert valid.mean() > 0.9 and 0.0 < float(np.median(b8[valid])) < 0.6  # reflectance, not DN
    np.testing.assert_allclose(out["NDVI"][valid], ((b8 - b4) / (b8 + b4))[valid], rtol=1e-4, atol=1e-5)
    for k in range(1, 5):
        vv, vh = out[f"VV_{k}"].astype(np.float64), out[f"VH_{k}"].astype(np.float64)
        assert -30 < np.median(vv) < 5 and np.median(vh) < np.median(vv)  # dB, VH below VV
        np.testing.assert_allclose(out[f"VVVH_{k}"], vv - vh, atol=1e-4)  # the ratio in dB


def test_fusion20_bad_input() -> None:
    x0, y1 = W.origin
    aoi = ee.Geometry.Rectangle([x0, y1 - 100, x0 + 100, y1], W.crs, False)
    with pytest.raises(ConfigError, match="year"):
        stacks.fusion20_stack(aoi, year=2010)
    with pytest.raises(ConfigError, match="s2_months"):
        stacks.fusion20_stack(aoi, year=2021, s2_months=(9, 6))


def test_time_series_stack_names_and_values(syn) -> None:
    from datetime import date

    from tests.conftest import pixels

    col = ee.ImageCollection("test/syn")
    ts = stacks.time_series_stack(col, bands=["B1", "B2"], start=date(2021, 1, 1), end=date(2021, 5, 1))
    names = ts.bandNames().getInfo()
    assert names[:3] == ["B1_2021-01", "B2_2021-01", "count_2021-01"] and len(names) == 12
    got = pixels(ts.select(["B1_2021-02", "count_2021-03"]), syn.grid)
    feb = np.array([t.startswith("2021-02") for t in syn.times])
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(np.where(syn.mask[feb], syn.b1[feb], np.nan), axis=0)
    vals, mask = got["B1_2021-02"]
    np.testing.assert_allclose(vals[mask], want[mask], rtol=1e-6)
    count, _ = got["count_2021-03"]
    assert (count == 0).all()  # no image in March: a masked month, never a crash
