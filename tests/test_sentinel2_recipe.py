"""Sentinel-2 recipe on the demo world (known truth): cloud/shadow recall of each mask."""

from __future__ import annotations

import ee
import numpy as np
import pytest
from pydantic import ValidationError

from gee_fusion import ids
from gee_fusion.local.world import atmosphere, schedule
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.recipe import sentinel2 as s2
from tests.conftest import world_grid

SIZE = 512


def _grid() -> dict:
    return world_grid(0, 0, SIZE, SIZE)


def _partly_cloudy_day() -> str:
    for a in schedule.s2_acquisitions():
        if (
            a.when.year == 2021
            and 4 <= a.when.month <= 9
            and 0.3 < atmosphere.sky(W, float(a.millis)).cover < 0.6
        ):
            return a.when.date().isoformat()
    raise AssertionError("no partly cloudy day")


@pytest.fixture(scope="module")
def day() -> tuple[str, str]:
    d = _partly_cloudy_day()
    nxt = (np.datetime64(d) + np.timedelta64(1, "D")).astype(str)
    return d, str(nxt)


def _truth(day: tuple[str, str]) -> dict[str, np.ndarray]:
    img = ee.ImageCollection("local/demo/S2_TRUTH").filterDate(*day).first()
    out = ee.data.computePixels({"expression": img, "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"})
    return {k: np.asarray(out[k]) for k in ("cloud", "shadow", "cirrus")}


def _kept(col: ee.ImageCollection) -> np.ndarray:
    img = ee.Image(col.first()).select("B2").mask()
    return (
        ee.data.computePixels({"expression": img, "grid": _grid(), "fileFormat": "NUMPY_NDARRAY"})["B2"] > 0
    )


def test_cloud_score_plus_recall(day: tuple[str, str]) -> None:
    x0, y1 = W.origin
    aoi = ee.Geometry.Rectangle([x0, y1 - SIZE * 10, x0 + SIZE * 10, y1], W.crs, False)
    col = s2.s2_collection(aoi, day[0], day[1])
    assert col.size().getInfo() == 1
    kept = _kept(s2.mask_clouds(col, s2.CloudScorePlus()))
    t = _truth(day)
    cloud, shadow = t["cloud"] >= 0.25, (t["shadow"] >= 0.35) & (t["cloud"] < 0.25)
    clear = (t["cloud"] == 0) & (t["shadow"] == 0) & (t["cirrus"] == 0)
    assert cloud.sum() > 1000 and shadow.sum() > 200
    recall_cloud = float((~kept[cloud]).mean())
    recall_shadow = float((~kept[shadow]).mean())
    false_mask = float((~kept[clear]).mean())
    assert recall_cloud >= 0.95, recall_cloud
    assert recall_shadow >= 0.80, recall_shadow
    assert false_mask < 0.05, false_mask


def test_scl_mask_misses_what_scl_misses(day: tuple[str, str]) -> None:
    col = ee.ImageCollection(ids.S2_SR_HARMONIZED).filterDate(*day)
    kept = _kept(s2.mask_clouds(col, s2.SclMask()))
    t = _truth(day)
    assert float((~kept[t["cloud"] >= 0.5]).mean()) > 0.95


def test_qa60_warns_about_its_empty_years() -> None:
    col = ee.ImageCollection(ids.S2_SR_HARMONIZED).filterDate("2023-05-01", "2023-05-10")
    with pytest.warns(UserWarning, match="2022-01-25"):
        masked = s2.mask_clouds(col, s2.Qa60Mask())
    assert masked.size().getInfo() == col.size().getInfo()


def test_options_fail_at_construction() -> None:
    with pytest.raises(ValidationError):
        s2.CloudScorePlus(threshold=1.5)
    with pytest.raises(ValidationError):
        s2.S2Cloudless(cloud_probability=120)
    with pytest.raises(ValidationError):
        s2.CloudScorePlus(treshold=0.5)  # type: ignore[call-arg]


def test_scale_reflectance_keeps_properties(day: tuple[str, str]) -> None:
    img = s2.scale_reflectance(ee.ImageCollection(ids.S2_SR_HARMONIZED).filterDate(*day).first())
    info = img.getInfo()
    types = {b["id"]: b["data_type"]["precision"] for b in info["bands"]}
    assert types["B4"] == "float" and types["SCL"] == "int"
    assert "CLOUDY_PIXEL_PERCENTAGE" in info["properties"]


def test_s2cloudless_masks_clouds_and_projected_shadows(day: tuple[str, str]) -> None:
    col = ee.ImageCollection(ids.S2_SR_HARMONIZED).filterDate(*day)
    kept = _kept(s2.mask_clouds(col, s2.S2Cloudless()))
    t = _truth(day)
    cloud, shadow = t["cloud"] >= 0.5, (t["shadow"] >= 0.5) & (t["cloud"] < 0.25)
    recall_cloud = float((~kept[cloud]).mean())
    recall_shadow = float((~kept[shadow]).mean())
    assert recall_cloud >= 0.95, recall_cloud
    assert recall_shadow >= 0.3, recall_shadow  # projection + dark-NIR test: partial, as in the archive
