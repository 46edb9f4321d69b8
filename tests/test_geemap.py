"""geemap on the local engine: Map() never prompts nor opens a socket beyond the loopback tile
server, and an added layer's tiles come from that server."""

from __future__ import annotations

import io
import urllib.request

import ee
import numpy as np
import pytest
from PIL import Image as PILImage

import gee_fusion

geemap = pytest.importorskip(
    "geemap", reason="geemap is an optional dependency (pip install -e '.[notebooks]')"
)


def test_geemap_map_after_connect_local_uses_the_local_tiles(local_engine: gee_fusion.Connection) -> None:
    quiet = geemap.Map(ee_initialize=False)
    m = geemap.Map()  # would start the OAuth flow before: the session now looks initialised
    assert quiet is not None
    s2 = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2021-06-01", "2021-07-01").median()
    m.add_layer(s2, {"bands": ["B4", "B3", "B2"], "min": 0, "max": 3000}, "S2 June")
    layer = next(layer for layer in m.layers if layer.name == "S2 June")
    assert layer.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(layer.url.format(z=3, x=4, y=2), timeout=60) as response:
        tile = np.asarray(PILImage.open(io.BytesIO(response.read())).convert("RGBA"))
    assert tile.shape == (256, 256, 4)


def test_a_feature_collection_layer_is_drawn(local_engine: gee_fusion.Connection) -> None:
    from gee_fusion.local.world.config import DEFAULT_WORLD as W

    x0, y1 = W.origin
    square = ee.Geometry.Rectangle([x0 + 5000, y1 - 7000, x0 + 7000, y1 - 5000], W.crs, False)  # the centre
    m = geemap.Map()
    m.add_layer(ee.FeatureCollection([ee.Feature(square, {})]), {"color": "ff0000"}, "square")
    layer = next(layer for layer in m.layers if layer.name == "square")
    from tests.test_local_tiles import tile_xy

    x, y = tile_xy(13)
    with urllib.request.urlopen(layer.url.format(z=13, x=x, y=y), timeout=60) as response:
        tile = np.asarray(PILImage.open(io.BytesIO(response.read())).convert("RGBA"))
    red = (tile[..., 0] == 255) & (tile[..., 1] == 0) & (tile[..., 3] == 255)
    assert red.mean() > 0.01
