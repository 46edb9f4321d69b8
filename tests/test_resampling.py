"""Leaves read into other grids: nearest by index arithmetic, bilinear without masked values,
tile-independent results, typed errors and request validation."""

from __future__ import annotations

import ee
import numpy as np
import pytest
from affine import Affine
from rasterio.warp import Resampling, reproject

from gee_fusion.grid import PixelGrid
from gee_fusion.local.catalog import CATALOG, register_numpy_image
from gee_fusion.local.grid import warp

CRS = "EPSG:32631"
T = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5500000.0)
KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")


def _grid(t: Affine, w: int, h: int) -> dict:
    return {
        "dimensions": {"width": w, "height": h},
        "affineTransform": dict(zip(KEYS, tuple(t)[:6], strict=True)),
        "crsCode": CRS,
    }


def test_nearest_index_path_equals_rasterio() -> None:
    rng = np.random.default_rng(3)
    src = rng.normal(size=(40, 50)).astype(np.float32)
    for dst_t in (
        Affine(20.0, 0, 400003.0, 0, -20.0, 5499997.0),
        Affine(7.0, 0, 400011.0, 0, -7.0, 5499981.0),
        Affine(10.0, 0, 399955.0, 0, -10.0, 5500025.0),
    ):
        dst = PixelGrid(CRS, tuple(dst_t)[:6], 30, 25)  # type: ignore[arg-type]
        got, valid = warp(src, np.ones(src.shape, bool), CRS, T, dst)
        want = np.full(dst.shape, np.nan, dtype=np.float32)
        reproject(
            src,
            want,
            src_transform=T,
            src_crs=CRS,
            dst_transform=dst_t,
            dst_crs=CRS,
            resampling=Resampling.nearest,
            dst_nodata=np.nan,
        )
        np.testing.assert_array_equal(np.where(valid, got, np.nan), want)


def test_bilinear_ignores_masked_values() -> None:
    vals = np.full((8, 8), 0.5, dtype=np.float32)
    mask = np.ones((8, 8), dtype=bool)
    vals[:, 4:], mask[:, 4:] = -9999.0, False
    dst = PixelGrid(CRS, (10.0, 0.0, 400002.5, 0.0, -10.0, 5500000.0), 8, 8)
    got, valid = warp(vals, mask, CRS, T, dst, resampling="bilinear")
    assert valid[:, :3].all() and not valid[:, 5:].any()
    np.testing.assert_allclose(got[valid], 0.5, rtol=1e-6)


def test_bilinear_int8_does_not_wrap() -> None:
    vals = np.tile(np.array([-1, 1], dtype=np.int8), (6, 3))
    dst = PixelGrid(CRS, (10.0, 0.0, 400005.0, 0.0, -10.0, 5500000.0), 4, 4)
    got, _ = warp(vals, np.ones(vals.shape, bool), CRS, T, dst, resampling="bilinear")
    assert got.dtype == np.int8 and np.abs(got).max() <= 1


def test_tiled_bilinear_downsampling_has_no_seams() -> None:
    rng = np.random.default_rng(5)
    register_numpy_image(
        "test/seams", {"v": rng.normal(size=(128, 128)).astype(np.float32)}, crs=CRS, transform=T
    )
    try:
        img = ee.Image("test/seams").resample("bilinear")
        coarse = T @ Affine.scale(7.0)
        whole = ee.data.computePixels(
            {"expression": img, "grid": _grid(coarse, 18, 18), "fileFormat": "NUMPY_NDARRAY"}
        )
        for r0, c0 in ((0, 0), (0, 9), (9, 0), (9, 9)):
            part = ee.data.computePixels(
                {
                    "expression": img,
                    "grid": _grid(coarse @ Affine.translation(c0, r0), 9, 9),
                    "fileFormat": "NUMPY_NDARRAY",
                }
            )
            np.testing.assert_allclose(part["v"], whole["v"][r0 : r0 + 9, c0 : c0 + 9], atol=1e-6)
    finally:
        CATALOG.unregister("test/seams")


def test_band_ids_pick_their_own_native_grid() -> None:
    register_numpy_image("test/two_res", {"a": np.zeros((20, 20), np.uint8)}, crs=CRS, transform=T)
    try:
        fine = ee.Image("test/two_res")
        coarse = fine.select("a").rename("b").reproject(CRS, [20, 0, 400000, 0, -20, 5500000])
        both = fine.addBands(
            coarse.clipToBoundsAndScale(
                geometry=ee.Geometry.Rectangle([400000, 5499800, 400200, 5500000], CRS, False), scale=20
            )
        )
        out = ee.data.computePixels({"expression": both, "bandIds": ["b"], "fileFormat": "NUMPY_NDARRAY"})
        assert out.shape == (10, 10) and out.dtype.names == ("b",)
        with pytest.raises(ee.EEException, match="more than once"):
            ee.data.computePixels({"expression": both, "bandIds": ["a", "a"], "fileFormat": "NUMPY_NDARRAY"})
        with pytest.raises(ee.EEException, match="list of band names"):
            ee.data.computePixels({"expression": both, "bandIds": "ab", "fileFormat": "NUMPY_NDARRAY"})
    finally:
        CATALOG.unregister("test/two_res")


def test_errors_are_typed() -> None:
    fc = ee.FeatureCollection([ee.Feature(ee.Geometry.Point([0, 0]), {"a": 1})])
    with pytest.raises(ee.EEException):
        ee.Image(fc.first()).rename("x").getInfo()
    bad_grid = {
        "dimensions": {"width": 2, "height": 2},
        "affineTransform": [10, 0, 0, 0, -10, 0],
        "crsCode": CRS,
    }
    with pytest.raises(ee.EEException, match="affineTransform"):
        ee.data.computePixels({"expression": ee.Image(1), "grid": bad_grid, "fileFormat": "NUMPY_NDARRAY"})


def test_unmask_same_footprint_does_not_materialise_the_native_raster() -> None:
    import tracemalloc

    register_numpy_image(
        "test/big", {"v": np.broadcast_to(np.float32(1), (20000, 20000))}, crs=CRS, transform=T
    )
    try:
        img = ee.Image("test/big").unmask(0)
        tracemalloc.start()
        out = ee.data.computePixels(
            {
                "expression": img,
                "grid": _grid(T @ Affine.translation(19990, 19990), 16, 16),
                "fileFormat": "NUMPY_NDARRAY",
            }
        )
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 20 * 2**20, peak
        assert out["v"][:10, :10].min() == 1
    finally:
        CATALOG.unregister("test/big")
