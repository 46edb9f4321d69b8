"""Images made from the grid (pixelCoordinates, pixelLonLat, pixelArea), Image.remap and
Image.paint in the local engine, against numpy and rasterio references."""

from __future__ import annotations

import ee
import numpy as np
import pytest
from rasterio.warp import transform as warp_points

import gee_fusion
from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid

GRID = PixelGrid("EPSG:32631", (20.0, 0.0, 500000.0, 0.0, -20.0, 5000000.0), 6, 4)


def px(image: ee.Image) -> np.ndarray:
    return ee.data.computePixels({"expression": image, "grid": GRID.to_ee()})


def test_coordinates_lon_lat_and_area(local_engine: gee_fusion.Connection) -> None:
    rows, cols = np.indices(GRID.shape)
    x, y = 500000.0 + 20 * (cols + 0.5), 5000000.0 - 20 * (rows + 0.5)
    got = px(ee.Image.pixelCoordinates(ee.Projection("EPSG:32631")))
    np.testing.assert_array_equal(got["x"], x)
    np.testing.assert_array_equal(got["y"], y)
    lon, lat = warp_points("EPSG:32631", "EPSG:4326", x.ravel(), y.ravel())
    ll = px(ee.Image.pixelLonLat())
    np.testing.assert_allclose(ll["longitude"].ravel(), lon, atol=1e-9)
    np.testing.assert_allclose(ll["latitude"].ravel(), lat, atol=1e-9)
    assert (px(ee.Image.pixelArea())["area"] == 400.0).all()


def test_remap_and_paint(local_engine: gee_fusion.Connection) -> None:
    values = (
        ee.Image.pixelCoordinates(ee.Projection("EPSG:32631")).select("x").subtract(500010).divide(20).toInt()
    )
    remapped = values.remap([0, 1, 2], [10, 11, 12])  # columns 0..5 -> 10, 11, 12, masked
    got = px(remapped)["x"]
    mask = px(remapped.mask())["x"]
    np.testing.assert_array_equal(got[0, :3], [10, 11, 12])
    np.testing.assert_array_equal(mask[0], [1, 1, 1, 0, 0, 0])
    filled = px(values.remap([0, 1, 2], [10, 11, 12], 99))["x"]
    np.testing.assert_array_equal(filled[0], [10, 11, 12, 99, 99, 99])
    with pytest.raises(EngineError, match="Pattern 'nope' did not match any bands"):
        values.remap([0], [1], None, "nope").getInfo()
    box = ee.Geometry.Rectangle([500000, 4999960, 500040, 5000000], "EPSG:32631", False)  # 2 x 2 px
    painted = px(ee.Image(0).toInt().paint(ee.FeatureCollection([ee.Feature(box, {"c": 7})]), "c"))
    expected = np.zeros(GRID.shape, int)
    expected[:2, :2] = 7
    np.testing.assert_array_equal(painted["constant"], expected)


def test_style_draws_fill_and_outline_and_blend_overlays(local_engine: gee_fusion.Connection) -> None:
    big = PixelGrid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 20, 20)
    square = ee.Geometry.Rectangle([500050, 4999850, 500150, 4999950], "EPSG:32631", False)  # px 5..15
    styled = ee.FeatureCollection([ee.Feature(square, {})]).style(
        color="ff0000", fillColor="0000ff80", width=2
    )
    rgb = ee.data.computePixels({"expression": styled, "grid": big.to_ee()})
    mask = ee.data.computePixels({"expression": styled.mask(), "grid": big.to_ee()})["vis-red"] > 0
    assert (rgb["vis-red"][10, 10], rgb["vis-blue"][10, 10]) == (0, 255)  # inside: the fill
    assert (rgb["vis-red"][5, 10], rgb["vis-blue"][5, 10]) == (255, 0)  # on the edge: the outline
    assert not mask[0, 0] and mask[10, 10] and mask[5, 10]
    under = ee.Image.constant([1, 2, 3]).rename(["vis-red", "vis-green", "vis-blue"]).toUint8()
    blended = ee.data.computePixels({"expression": under.blend(styled), "grid": big.to_ee()})
    assert blended["vis-red"][0, 0] == 1 and blended["vis-blue"][10, 10] == 255
    with pytest.raises(EngineError, match="top image must have 1 or 3 bands"):
        under.blend(ee.Image.constant([1, 2])).getInfo()
