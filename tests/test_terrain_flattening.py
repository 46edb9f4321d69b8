"""Radiometric terrain flattening on the demo world's relief, against a numpy reference."""

from __future__ import annotations

import math

import ee
import numpy as np
import pytest
from scipy import ndimage

from gee_fusion import ids
from gee_fusion.errors import ConfigError
from gee_fusion.ids import SRTM
from gee_fusion.local.world import blocks
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.local.world.landcover import ARABLE
from gee_fusion.recipe.terrain_flattening import (
    Model,
    TerrainFlattening,
    satellite_heading,
    terrain_flatten,
)
from tests.conftest import world_grid

SLOPES = (900, 300, 200, 200)  # (col, row, width, height): a valley side with fore- and back-slopes
CLIFFS = (0, 300, 200, 200)  # chalk cliffs facing east: layover (descending pass) or shadow (ascending)


def _grid(col: int, row: int, width: int, height: int) -> dict:
    return world_grid(col, row, width, height)


def _pixels(image: ee.Image, window: tuple[int, int, int, int]) -> dict[str, np.ndarray]:
    out = ee.data.computePixels({"expression": image, "grid": _grid(*window), "fileFormat": "NUMPY_NDARRAY"})
    return {name: np.asarray(out[name]) for name in out.dtype.names}


def _scene(passing: str) -> ee.Image:
    col = ee.ImageCollection(ids.S1_GRD_FLOAT).filterDate("2021-07-01", "2021-08-01")
    return ee.Image(col.filter(ee.Filter.eq("orbitProperties_pass", passing)).first())


def _reference(passing: str, window: tuple[int, int, int, int], model: str) -> dict[str, np.ndarray]:
    """Flattening in numpy from the DEM (bilinear, read one pixel wider), ``angle`` and VV."""
    col, row, w, h = window
    dem = _pixels(ee.Image(SRTM).resample("bilinear"), (col - 1, row - 1, w + 2, h + 2))["elevation"]
    z = dem.astype(np.float64)
    gx = (z[1:-1, 2:] - z[1:-1, :-2]) / 20.0  # east
    gy = (z[:-2, 1:-1] - z[2:, 1:-1]) / 20.0  # north (rows run south)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, -gy)  # the direction the slope faces, clockwise from north
    heading = -math.pi / 2 if passing == "ASCENDING" else math.pi / 2  # the world's sensor: due west / east
    raw = _pixels(_scene(passing).select(["VV", "angle"]), window)
    theta = np.radians(raw["angle"].astype(np.float64))
    alpha_r = np.arctan(np.tan(slope) * np.cos(heading - aspect))
    alpha_az = np.arctan(np.tan(slope) * np.sin(heading - aspect))
    if model == "volume":
        scf = np.tan(np.pi / 2 - theta + alpha_r) / np.tan(np.pi / 2 - theta)
    else:
        scf = np.cos(np.pi / 2 - theta) / (np.cos(alpha_az) * np.cos(np.pi / 2 - theta + alpha_r))
    return {
        "VV": raw["VV"] / np.cos(theta) / scf,
        "sigma0": raw["VV"].astype(np.float64),
        "gamma0": raw["VV"] / np.cos(theta),
        "layover": alpha_r >= theta,
        "shadow": alpha_r <= theta - np.pi / 2,
        "margin": np.minimum(np.abs(alpha_r - theta), np.abs(alpha_r - theta + np.pi / 2)),
        "alpha_r": alpha_r,
    }


@pytest.mark.parametrize(("passing", "expected"), [("ASCENDING", -math.pi / 2), ("DESCENDING", math.pi / 2)])
def test_heading_points_at_the_sensor(passing: str, expected: float) -> None:
    assert satellite_heading(_scene(passing)).getInfo() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("passing", "present"), [("DESCENDING", "layover"), ("ASCENDING", "shadow")])
def test_masks_and_values_match_the_numpy_geometry(passing: str, present: str) -> None:
    out = _pixels(terrain_flatten(_scene(passing), keep_masks=True), CLIFFS)
    ref = _reference(passing, CLIFFS, "volume")
    assert ref[present].sum() > 100  # east-facing cliffs: layover seen from the east, shadow from the west
    for name in ("layover", "shadow"):
        differ = out[name].astype(bool) != ref[name]
        assert not (differ & (ref["margin"] > 1e-4)).any(), name  # only float ties may differ
    kept = ~(ref["layover"] | ref["shadow"])
    np.testing.assert_allclose(out["VV"][kept], ref["VV"][kept], rtol=2e-3)
    masked = _pixels(terrain_flatten(_scene(passing)).select("VV").mask(), CLIFFS)["VV"]
    assert (masked[ref["margin"] > 1e-4] == kept[ref["margin"] > 1e-4]).all()


@pytest.mark.parametrize(("model", "shrink"), [("volume", 0.2), ("direct", 0.7)])
def test_fore_and_back_slopes_agree_after_flattening(model: Model, shrink: float) -> None:
    out = _pixels(terrain_flatten(_scene("ASCENDING"), model=model).select("VV"), SLOPES)
    ref = _reference("ASCENDING", SLOPES, model)
    np.testing.assert_allclose(out["VV"], ref["VV"], rtol=2e-3)
    label = blocks.landcover_window(W, *SLOPES).label
    steep = np.radians(8.0)
    fore = (label == ARABLE) & (ref["alpha_r"] > steep)
    back = (label == ARABLE) & (ref["alpha_r"] < -steep)
    assert fore.sum() > 500 and back.sum() > 500

    def contrast(values: np.ndarray) -> float:
        return float(10 * np.log10(values[fore].mean() / values[back].mean()))

    before, after = contrast(ref["gamma0"]), contrast(out["VV"].astype(np.float64))
    assert before > 4.0  # slopes facing the sensor are much brighter in the raw GRD
    assert abs(after) < shrink * before, (model, before, after)


def test_buffer_grows_the_masks_by_the_distance() -> None:
    plain = _pixels(terrain_flatten(_scene("DESCENDING"), keep_masks=True).select("layover"), CLIFFS)
    grown = _pixels(
        terrain_flatten(_scene("DESCENDING"), keep_masks=True, buffer_m=30.0).select("layover"), CLIFFS
    )
    a, b = plain["layover"].astype(bool), grown["layover"].astype(bool)
    assert a.sum() > 100 and (b & ~a).sum() > 0 and not (a & ~b).any()
    dist = ndimage.distance_transform_edt(~a) * 10.0  # metres to the nearest layover pixel
    inner = (slice(4, -4), slice(4, -4))  # away from the window edge (the mask continues outside)
    np.testing.assert_array_equal(b[inner], (dist <= 30.0)[inner])


def test_fixed_dem_scale_gives_the_same_result_at_native_resolution() -> None:
    window = (950, 350, 64, 64)
    a = _pixels(terrain_flatten(_scene("ASCENDING")).select("VV"), window)["VV"]
    b = _pixels(terrain_flatten(_scene("ASCENDING"), dem_scale_m=10.0).select("VV"), window)["VV"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_options_are_validated_before_any_request() -> None:
    img = _scene("ASCENDING")
    for bad in (
        {"model": "surface"},
        {"buffer_m": -5.0},
        {"bands": ()},
        {"dem_scale_m": 0.0},
        {"heading_scale_m": -1.0},
        {"dem": SRTM},
    ):
        with pytest.raises(ConfigError):
            terrain_flatten(img, **bad)
    with pytest.raises(ConfigError, match=r"ee\.Image"):
        terrain_flatten("COPERNICUS/S1_GRD_FLOAT/x")  # type: ignore[arg-type]
    assert TerrainFlattening().model == "volume"
