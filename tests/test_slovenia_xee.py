"""The real Slovenia series through earthengine-api + the local engine + xee, against numpy."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import ee
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from rasterio.warp import Resampling, reproject

from gee_fusion.export.fetch import native_grid, open_collection
from gee_fusion.grid import PixelGrid
from gee_fusion.ids import SLOVENIA_LULC, SLOVENIA_NDVI
from gee_fusion.local.samples import slovenia_grid
from gee_fusion.recipe.composite import monthly_composites

pytestmark = pytest.mark.real_data


def _raw(real_dir: Path, rel: str) -> np.ndarray:
    return np.load(real_dir / "eolearn_slovenia" / "TestEOPatch" / rel)[..., 0]


def test_catalog_entry_matches_files(real_dir: Path) -> None:
    col = ee.ImageCollection(SLOVENIA_NDVI)
    assert col.size().getInfo() == 68
    info = col.first().getInfo()
    assert [b["id"] for b in info["bands"]] == ["NDVI", "CLP", "CLM"]
    band = info["bands"][0]
    assert band["crs"] == "EPSG:32633"
    assert band["dimensions"] == [100, 101]
    t0 = band["crs_transform"]
    assert t0[2] == pytest.approx(465181.0522318204) and t0[5] == pytest.approx(5080254.63349641)
    stamps = json.loads((real_dir / "eolearn_slovenia/TestEOPatch/timestamps.json").read_text())
    got = col.aggregate_array("system:time_start").getInfo()
    want = [int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp() * 1000) for s in stamps]
    assert got == want
    assert len(set(col.aggregate_array("system:index").getInfo())) == 68  # unique despite same-day pairs
    assert ee.Image(SLOVENIA_LULC).bandNames().getInfo() == ["LULC", "DEM"]


def test_xee_round_trip_native_grid_is_exact(real_dir: Path) -> None:
    col = ee.ImageCollection(SLOVENIA_NDVI)
    grid = native_grid(col.first().select("NDVI"))
    ds = open_collection(col.select(["NDVI", "CLP"]), grid)
    assert ds["NDVI"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(ds["NDVI"].values, _raw(real_dir, "data/NDVI.npy"))
    np.testing.assert_array_equal(ds["CLP"].values, _raw(real_dir, "data/CLP.npy"))
    assert str(ds.time.values[0]).startswith("2015-07-11T10:00:08")


def test_xee_on_another_grid_matches_rasterio_nearest(real_dir: Path) -> None:
    crs, transform, _ = slovenia_grid(real_dir / "eolearn_slovenia" / "TestEOPatch")
    target = PixelGrid(crs, (20.0, 0.0, 465200.0, 0.0, -20.0, 5080240.0), 48, 49)
    col = ee.ImageCollection(SLOVENIA_NDVI).limit(3).select("NDVI")
    ds = xr.open_dataset(col, engine="ee", crs=target.crs, crs_transform=target.transform,
                         shape_2d=(target.width, target.height))  # fmt: skip
    raw = _raw(real_dir, "data/NDVI.npy")[:3]
    for t in range(3):
        want = np.zeros((49, 48), dtype=np.float32)
        reproject(raw[t], want, src_transform=transform, src_crs=crs,
                  dst_transform=Affine(*target.transform), dst_crs=crs,
                  resampling=Resampling.nearest)  # fmt: skip
        np.testing.assert_array_equal(ds["NDVI"].values[t], want)


def numpy_monthly_reference(real_dir: Path, start: date, end: date) -> tuple[np.ndarray, np.ndarray]:
    """Cloud-masked (CLM == 0) monthly NDVI medians and valid counts, straight from the files."""
    ndvi = _raw(real_dir, "data/NDVI.npy").astype(np.float32)
    clm = _raw(real_dir, "mask/CLM.npy")
    is_data = _raw(real_dir, "mask/IS_DATA.npy").astype(bool)
    text = (real_dir / "eolearn_slovenia/TestEOPatch/timestamps.json").read_text()
    stamps = [datetime.fromisoformat(s) for s in json.loads(text)]
    meds, counts = [], []
    y, m = start.year, start.month
    while date(y, m, 1) < end:
        idx = [i for i, s in enumerate(stamps) if (s.year, s.month) == (y, m)]
        valid = (clm[idx] == 0) & is_data[idx]
        n = valid.sum(axis=0)
        with warnings.catch_warnings():  # all-NaN pixels are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(valid, ndvi[idx], np.nan), axis=0)
        meds.append(np.where(n > 0, med, np.nan))
        counts.append(n)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return np.stack(meds).astype(np.float32), np.stack(counts)


def test_monthly_composite_through_xee_equals_numpy(real_dir: Path) -> None:
    start, end = date(2015, 7, 1), date(2018, 1, 1)
    col = ee.ImageCollection(SLOVENIA_NDVI).map(lambda img: img.updateMask(img.select("CLM").eq(0)))
    months = monthly_composites(col, bands=["NDVI"], start=start, end=end)
    grid = native_grid(ee.ImageCollection(SLOVENIA_NDVI).first().select("NDVI"))
    ds = open_collection(months, grid)
    want_med, want_n = numpy_monthly_reference(real_dir, start, end)
    assert ds.sizes["time"] == 30
    got_n = ds["count"].values.astype(np.int64)
    np.testing.assert_array_equal(got_n, want_n)
    got = np.where(got_n > 0, ds["NDVI"].values, np.nan)
    np.testing.assert_allclose(got, want_med, rtol=0, atol=1e-6, equal_nan=True)
    assert (want_n.reshape(30, -1).max(axis=1) == 0).sum() == 6  # months with no clear view stay masked
    idx = months.aggregate_array("system:index").getInfo()
    assert idx[0] == "2015-07" and idx[-1] == "2017-12"
