"""File-backed assets in the local catalog: GeoTIFF, Zarr, numpy."""

from __future__ import annotations

from pathlib import Path

import ee
import numpy as np
import pytest
import rasterio
from affine import Affine

import gee_fusion
from gee_fusion.errors import UnknownAssetError
from gee_fusion.local.catalog import (
    CATALOG,
    register_geotiff_collection,
    register_geotiff_image,
    register_zarr_collection,
)
from tests.conftest import pixels, world_grid

CRS = "EPSG:32631"
TRANSFORM = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5500000.0)


def _grid(width: int, height: int, transform: Affine = TRANSFORM) -> dict:
    keys = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
    return {
        "dimensions": {"width": width, "height": height},
        "affineTransform": dict(zip(keys, tuple(transform)[:6], strict=True)),
        "crsCode": CRS,
    }


def _write_tif(path: Path, data: np.ndarray, nodata: float | None = None) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype.name, crs=CRS, transform=TRANSFORM,
                       nodata=nodata) as ds:  # fmt: skip
        ds.write(data)


def test_geotiff_image_with_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(1, 1000, (2, 20, 30)).astype(np.uint16)
    data[0, 3, 4] = 0
    _write_tif(tmp_path / "a.tif", data, nodata=0)
    register_geotiff_image("test/tif", tmp_path / "a.tif", band_names=["red", "nir"])
    try:
        img = ee.Image("test/tif")
        assert img.bandNames().getInfo() == ["red", "nir"]
        # a window straddling the right edge: outside pixels are masked
        out = pixels(img, _grid(10, 5, TRANSFORM @ Affine.translation(25, 2)))
        vals, mask = out["red"]
        np.testing.assert_array_equal(vals[:, :5][mask[:, :5]], data[0, 2:7, 25:30][mask[:, :5]])
        assert not mask[:, 5:].any()
        full = pixels(img, _grid(30, 20))
        assert not full["red"][1][3, 4] and full["nir"][1][3, 4]
    finally:
        CATALOG.unregister("test/tif")


def test_geotiff_collection_and_zarr(tmp_path: Path) -> None:
    import zarr

    rng = np.random.default_rng(2)
    stack = rng.normal(size=(3, 16, 16)).astype(np.float32)
    paths = []
    for i in range(3):
        _write_tif(tmp_path / f"t{i}.tif", stack[i : i + 1])
        paths.append(tmp_path / f"t{i}.tif")
    times = ["2020-01-01", "2020-01-11", "2020-02-01"]
    register_geotiff_collection("test/tifs", paths, times=times, band_names=["v"])
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    arr = group.create_array("v", shape=stack.shape, dtype="float32", chunks=(1, 8, 8))
    arr[:] = stack
    register_zarr_collection("test/zarr", tmp_path / "s.zarr", bands=["v"], crs=CRS,
                             transform=TRANSFORM, times=times)  # fmt: skip
    try:
        for asset in ("test/tifs", "test/zarr"):
            col = ee.ImageCollection(asset)
            assert col.size().getInfo() == 3
            jan = col.filterDate("2020-01-01", "2020-02-01").mean()
            vals, mask = pixels(jan, _grid(16, 16))["v"]
            np.testing.assert_allclose(vals, stack[:2].mean(axis=0), rtol=1e-6)
            assert mask.all()
    finally:
        CATALOG.unregister("test/tifs")
        CATALOG.unregister("test/zarr")


def test_collection_vs_image_confusion_has_clear_errors(syn) -> None:
    with pytest.raises(UnknownAssetError, match="image collection"):
        ee.Image("test/syn").getInfo()
    with pytest.raises(UnknownAssetError, match="is an image"):
        ee.ImageCollection("test/syn_img").getInfo()
    first_id = ee.ImageCollection("test/syn").first().get("system:id").getInfo()
    assert ee.Image(first_id).bandNames().getInfo() == ["B1", "B2", "QA"]


def test_a_missing_real_sample_says_how_to_get_it() -> None:
    from gee_fusion.errors import UnknownAssetError
    from gee_fusion.ids import SLOVENIA_NDVI
    from gee_fusion.local.catalog import Catalog

    with pytest.raises(UnknownAssetError, match="GEE_FUSION_REAL_DATA"):
        Catalog().entry(SLOVENIA_NDVI)


def test_the_deprecated_s2_sr_collection_carries_the_baseline_offset(
    local_engine: gee_fusion.Connection,
) -> None:
    grid = world_grid(300, 300, 8, 8)

    def pair(start: str, end: str) -> tuple[dict, dict]:
        new, old = (ee.ImageCollection(i).filterDate(start, end).first().select(["B4", "SCL"])
                    for i in ("COPERNICUS/S2_SR_HARMONIZED", "COPERNICUS/S2_SR"))  # fmt: skip
        return pixels(new, grid), pixels(old, grid)

    new, old = pair("2021-06-01", "2021-06-10")  # processing baseline 03.00: the same numbers
    np.testing.assert_array_equal(new["B4"][0], old["B4"][0])
    new, old = pair("2022-06-01", "2022-06-10")  # baseline 04.00: reflectance DN + 1000
    np.testing.assert_array_equal(old["B4"][0].astype(int), new["B4"][0].astype(int) + 1000)
    np.testing.assert_array_equal(old["SCL"][0], new["SCL"][0])


def test_level_1c_collections_are_top_of_atmosphere_reflectance(local_engine: gee_fusion.Connection) -> None:
    from gee_fusion.local.world.sentinel2 import TOA_PATH

    grid = world_grid(300, 300, 8, 8)
    l1c = ee.ImageCollection("COPERNICUS/S2_HARMONIZED").filterDate("2021-06-01", "2021-06-10").first()
    assert l1c.bandNames().getInfo()[-3:] == ["QA10", "QA20", "QA60"]
    assert "SCL" not in l1c.bandNames().getInfo()
    assert "MSIL1C" in l1c.get("PRODUCT_ID").getInfo()
    sr = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2021-06-01", "2021-06-10").first()
    for band in ("B2", "B4", "B8"):
        trans, path = TOA_PATH[band]
        boa = pixels(sr.select(band), grid)[band][0].astype(float)
        toa = pixels(l1c.select(band), grid)[band][0].astype(float)
        np.testing.assert_array_equal(toa, np.clip(np.round(boa * trans + path), 0, 65535))
    assert (pixels(l1c.select("QA10"), grid)["QA10"][0] == 0).all()

    def b4(collection: str, start: str, end: str) -> np.ndarray:
        image = ee.ImageCollection(collection).filterDate(start, end).first().select("B4")
        return pixels(image, grid)["B4"][0].astype(int)

    assert np.array_equal(
        b4("COPERNICUS/S2", "2021-06-01", "2021-06-10"),
        b4("COPERNICUS/S2_HARMONIZED", "2021-06-01", "2021-06-10"),
    )
    assert np.array_equal(
        b4("COPERNICUS/S2", "2022-06-01", "2022-06-10"),
        b4("COPERNICUS/S2_HARMONIZED", "2022-06-01", "2022-06-10") + 1000,
    )
