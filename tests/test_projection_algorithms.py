"""Projection metadata and forced grids: projection, setDefaultProjection, reproject,
clipToBoundsAndScale, and requests without an explicit grid."""

from __future__ import annotations

import ee
import numpy as np
import pytest

from tests.conftest import SYN_CRS, SYN_SHAPE, SYN_TRANSFORM, pixels


def test_projection_of_asset_and_composite(syn) -> None:
    proj = ee.Image("test/syn_img").select("B1").projection()
    info = proj.getInfo()
    assert info["crs"] == SYN_CRS and info["transform"] == list(SYN_TRANSFORM)
    assert proj.nominalScale().getInfo() == pytest.approx(10.0)
    comp = ee.ImageCollection("test/syn").median().projection().getInfo()
    assert comp["crs"] == "EPSG:4326" and comp["transform"] == [1, 0, 0, 0, 1, 0]


def test_set_default_projection_changes_metadata_not_pixels(syn) -> None:
    img = ee.ImageCollection("test/syn").select("QA").max()
    fixed = img.setDefaultProjection(SYN_CRS, None, 30)
    band = fixed.getInfo()["bands"][0]
    assert band["crs"] == SYN_CRS and band["crs_transform"][0] == 30.0
    a = pixels(img, syn.grid)["QA"][0]
    b = pixels(fixed, syn.grid)["QA"][0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, syn.qa.max(axis=0))


def test_reproject_computes_in_the_coarse_grid(syn) -> None:
    x0, y0 = SYN_TRANSFORM[2], SYN_TRANSFORM[5]
    coarse = ee.Image("test/syn_img").select("QA").reproject(SYN_CRS, [30, 0, x0, 0, -30, y0])
    vals, mask = pixels(coarse, syn.grid)["QA"]
    h, w = SYN_SHAPE
    rows = 3 * (np.arange(h) // 3) + 1
    cols = 3 * (np.arange(w) // 3) + 1
    want = syn.qa[0][np.ix_(rows, cols)]  # the 10 m pixel under each 30 m pixel centre
    np.testing.assert_array_equal(vals, want)
    assert mask.all()


def test_clip_to_bounds_and_scale_gives_a_native_grid(syn) -> None:
    x0, y0 = SYN_TRANSFORM[2], SYN_TRANSFORM[5]
    region = ee.Geometry.Rectangle([x0, y0 - 60, x0 + 40, y0], SYN_CRS, False)
    img = ee.Image("test/syn_img").select("QA").clipToBoundsAndScale(geometry=region, scale=10)
    band = img.getInfo()["bands"][0]
    assert band["dimensions"] == [4, 6]
    out = ee.data.computePixels({"expression": img, "fileFormat": "NUMPY_NDARRAY"})
    assert out.shape == (6, 4)
    np.testing.assert_array_equal(out["QA"], syn.qa[0][:6, :4])


def test_asset_without_grid_uses_its_native_grid(syn) -> None:
    out = ee.data.computePixels({"expression": ee.Image("test/syn_img").select("QA"),
                                 "fileFormat": "NUMPY_NDARRAY", "bandIds": ["QA"]})  # fmt: skip
    np.testing.assert_array_equal(out["QA"], syn.qa[0])


def test_cast_band_types_date_and_cat(syn) -> None:
    img = ee.Image("test/syn_img")
    cast = img.cast({"QA": "int16", "B1": "double"}, ["QA", "B1", "B2"])
    types = cast.bandTypes().getInfo()
    assert list(cast.bandNames().getInfo()) == ["QA", "B1", "B2"]
    assert types["QA"]["min"] == -32768 and types["B1"]["precision"] == "double"
    assert img.date().millis().getInfo() == 1609840800000
    cat = ee.Image.cat([img.select("B1"), img.select("B1")])
    assert cat.bandNames().getInfo() == ["B1", "B1_1"]
