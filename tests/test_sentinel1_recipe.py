"""Sentinel-1 recipe on the demo world and the real BigEarthNet patches."""

from __future__ import annotations

import ee
import numpy as np
import pytest
from pydantic import ValidationError

from gee_fusion import ids
from gee_fusion.errors import ConfigError
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.recipe import sentinel1 as s1
from tests.conftest import world_grid


def _grid(size: int = 128) -> dict:
    return world_grid(0, 0, size, size)


def _aoi() -> ee.Geometry:
    x0, y1 = W.origin
    return ee.Geometry.Rectangle([x0, y1 - 2000, x0 + 2000, y1], W.crs, False)


def test_selection_filters_pass_orbit_and_bands() -> None:
    both = s1.s1_collection(_aoi(), "2021-01-01", "2021-03-01")
    asc = s1.s1_collection(_aoi(), "2021-01-01", "2021-03-01", s1.S1Selection(orbit_pass="ASCENDING"))
    orbit = s1.s1_collection(_aoi(), "2021-01-01", "2021-03-01", s1.S1Selection(relative_orbit=8))
    n_both, n_asc, n_orbit = (c.size().getInfo() for c in (both, asc, orbit))
    assert n_both == n_asc + n_orbit and n_asc > 0 and n_orbit > 0
    assert both.first().bandNames().getInfo() == ["VV", "VH", "angle"]
    passes = set(asc.aggregate_array("orbitProperties_pass").getInfo())
    assert passes == {"ASCENDING"}
    with pytest.raises(ValidationError):
        s1.S1Selection(relative_orbit=500)


def test_db_linear_round_trip_and_ratio() -> None:
    lin = s1.s1_collection(_aoi(), "2021-06-01", "2021-06-10").first()
    db = ee.ImageCollection(ids.S1_GRD).filterDate("2021-06-01", "2021-06-10").first()
    a = ee.data.computePixels(
        {"expression": s1.to_db(lin).select(["VV", "VH"]), "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"}
    )
    b = ee.data.computePixels(
        {"expression": db.select(["VV", "VH"]), "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"}
    )
    np.testing.assert_allclose(a["VV"], b["VV"], atol=1e-4)
    back = ee.data.computePixels(
        {"expression": s1.to_linear(db).select("VV"), "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"}
    )
    raw = ee.data.computePixels(
        {"expression": lin.select("VV"), "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"}
    )
    np.testing.assert_allclose(back["VV"], raw["VV"], rtol=1e-4)
    in_db = s1.add_ratio(s1.to_db(lin)).select("VVVH")
    ratio = ee.data.computePixels({"expression": in_db, "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"})
    # VVVH is the VV/VH ratio in dB: 10 log10(VV / VH) of the linear powers
    np.testing.assert_allclose(ratio["VVVH"], 10 * np.log10(raw["VV"] / a_lin_vh(lin)), atol=1e-4)


def a_lin_vh(img: ee.Image) -> np.ndarray:
    return ee.data.computePixels(
        {"expression": img.select("VH"), "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"}
    )["VH"]


def test_border_noise_mask_on_a_wide_world() -> None:
    from gee_fusion.local.world import schedule, sentinel1
    from gee_fusion.local.world.config import WorldConfig

    big = WorldConfig(size_km=96.0)
    i = next(
        k
        for k, a in enumerate(schedule.s1_acquisitions())
        if a.passing == "DESCENDING" and a.when.year == 2021
    )
    col = sentinel1.near_range_edge_col(big, "DESCENDING") - 2600
    src = sentinel1.WorldS1Source(big, i, linear=True, properties={})
    vv, valid = src.read("VV", (col, 4000, 2700, 4))
    angle, _ = src.read("angle", (col, 4000, 2700, 4))
    kept = valid & (angle > s1.BORDER_ANGLES[0]) & (angle < s1.BORDER_ANGLES[1])
    noisy = valid & (vv < 1e-3)
    assert noisy.any() and not (noisy & kept).any()  # the ARD window drops all border noise
    with pytest.raises(ConfigError):
        s1.mask_border_noise(ee.Image(1), angles=(50.0, 40.0))


def test_empty_selection_names_the_filter() -> None:
    from gee_fusion.errors import EngineError
    from gee_fusion.recipe import sentinel2 as s2

    with pytest.raises(EngineError, match="relative orbit 77"):
        s1.s1_collection(_aoi(), "2021-01-01", "2021-03-01", s1.S1Selection(relative_orbit=77), check=True)
    with pytest.raises(EngineError, match="date 2014-01-01"):
        s1.s1_collection(_aoi(), "2014-01-01", "2014-06-01", check=True)
    with pytest.raises(EngineError, match="CLOUDY_PIXEL_PERCENTAGE"):
        s2.s2_collection(_aoi(), "2021-01-01", "2021-01-20", max_cloud_percentage=0.0, check=True)
    far = ee.Geometry.Rectangle([10.0, 10.0, 10.1, 10.1])
    with pytest.raises(EngineError, match="bounds"):
        s2.s2_collection(far, "2021-01-01", "2021-02-01", check=True)
    assert s1.s1_collection(_aoi(), "2021-01-01", "2021-03-01", check=True).size().getInfo() > 0
