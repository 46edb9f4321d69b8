"""Map tiles from the local engine: getMapId's url_format fetched over plain HTTP on the loopback
address equals computePixels on the same Web Mercator window with the visualisation applied in
numpy; bad visualisations raise Earth Engine's errors at getMapId; bad tile requests get a 400."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import ee
import numpy as np
import pytest
from PIL import Image as PILImage
from rasterio.warp import transform as warp_points

import gee_fusion
from gee_fusion.errors import EngineError
from gee_fusion.local.tiles import tile_grid
from gee_fusion.local.world.config import DEFAULT_WORLD as W


def tile_xy(z: int) -> tuple[int, int]:
    """The tile over the centre of the demo city at zoom z."""
    x0, y1 = W.origin
    cx, cy = x0 + 6000.0, y1 - 6000.0
    (mx,), (my,) = warp_points(W.crs, "EPSG:3857", [cx], [cy])
    size = 2 * 20037508.342789244 / 2**z
    return int((mx + 20037508.342789244) // size), int((20037508.342789244 - my) // size)


def fetch(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.headers["Content-Type"] == "image/png"
        return np.asarray(PILImage.open(io.BytesIO(response.read())).convert("RGBA"))


def test_a_palette_tile_equals_the_numpy_visualisation(local_engine: gee_fusion.Connection) -> None:
    ndvi = (ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2021-06-01", "2021-09-01")
            .median().normalizedDifference(["B8", "B4"]).rename("NDVI"))  # fmt: skip
    vis = {"min": -0.2, "max": 0.8, "palette": ["blue", "white", "00ff00"]}
    url = ndvi.getMapId(vis)["tile_fetcher"].url_format
    assert url.startswith("http://127.0.0.1:")
    z = 14
    x, y = tile_xy(z)
    got = fetch(url.format(z=z, x=x, y=y))
    grid = tile_grid(z, x, y).to_ee()
    values = ee.data.computePixels({"expression": ndvi, "grid": grid})["NDVI"].astype(np.float64)
    mask = ee.data.computePixels({"expression": ndvi.mask(), "grid": grid})["NDVI"] > 0
    unit = np.clip((values + 0.2) / 1.0, 0, 1)
    palette = np.array([[0, 0, 255], [255, 255, 255], [0, 255, 0]], dtype=np.float64)
    pos = unit * 2
    i0 = np.clip(np.floor(pos).astype(int), 0, 2)
    i1 = np.clip(i0 + 1, 0, 2)
    frac = (pos - i0)[..., None]
    want = np.clip(np.round(palette[i0] * (1 - frac) + palette[i1] * frac), 0, 255).astype(np.uint8)
    assert mask.any()
    np.testing.assert_array_equal(got[..., 3], np.where(mask, 255, 0))
    np.testing.assert_array_equal(got[..., :3][mask], want[mask])
    again = fetch(url.format(z=z, x=x, y=y))  # served from the cache
    np.testing.assert_array_equal(again, got)


def test_rgb_tiles_outside_the_data_are_transparent_and_bad_requests_are_400(
    local_engine: gee_fusion.Connection,
) -> None:
    s2 = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2021-06-01", "2021-07-01").median()
    mapid = s2.getMapId({"bands": ["B4", "B3", "B2"], "min": 0, "max": 3000, "gamma": 1.4})
    url = mapid["tile_fetcher"].url_format
    far = fetch(url.format(z=3, x=0, y=0))  # over the Pacific: no data
    assert (far[..., 3] == 0).all()
    z = 13
    x, y = tile_xy(z)
    city = fetch(ee.data.getTileUrl(mapid, x, y, z))
    assert (city[..., 3] == 255).mean() > 0.5 and city[..., :3].std() > 5
    for bad in (url.format(z=30, x=0, y=0), url.format(z=2, x=9, y=0)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)
        assert err.value.code == 400 and b"out of range" in err.value.read()
    fetch(url.format(z=z, x=x, y=y))  # the server still serves


def test_bad_visualisations_raise_earth_engines_errors_at_get_map_id(
    local_engine: gee_fusion.Connection,
) -> None:
    img = ee.Image.constant([1, 2, 3]).rename(["a", "b", "c"])
    with pytest.raises(EngineError, match="Pattern 'x' did not match any bands"):
        img.getMapId({"bands": ["x"]})
    with pytest.raises(EngineError, match="Can't specify a palette with more than one band"):
        img.getMapId({"bands": ["a", "b", "c"], "palette": ["red", "blue"]})
    with pytest.raises(EngineError, match="Can't parse color 'notacolour'"):
        img.getMapId({"bands": ["a"], "palette": ["red", "notacolour"]})


def test_min_above_max_inverts_the_ramp(local_engine: gee_fusion.Connection) -> None:
    # Earth Engine accepts min > max (a common way to reverse a palette): the ramp runs backwards.
    grid = {"dimensions": {"width": 4, "height": 1},
            "affineTransform": {"scaleX": 1, "shearX": 0, "translateX": 0, "shearY": 0, "scaleY": -1,
                                "translateY": 1},
            "crsCode": "EPSG:32631"}  # fmt: skip
    ramp = ee.Image.pixelCoordinates("EPSG:32631").select("x")  # 0.5, 1.5, 2.5, 3.5
    up = ee.data.computePixels({"expression": ramp.visualize(min=0, max=4), "grid": grid})
    down = ee.data.computePixels({"expression": ramp.visualize(min=4, max=0), "grid": grid})
    x = np.array([0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(up["vis-red"][0], np.round(x / 4 * 255))
    np.testing.assert_array_equal(down["vis-red"][0], np.round((4 - x) / 4 * 255))
