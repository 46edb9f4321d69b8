"""One test per documented divergence from Earth Engine (docs/local_engine.md).

Each asserts the local behaviour the document states, so a change in behaviour forces the
document to change with it.
"""

from __future__ import annotations

import ee
import numpy as np
import pytest

from tests.conftest import SYN_CRS, pixels


def _grid(width: int = 4, height: int = 3) -> dict:
    return {
        "dimensions": {"width": width, "height": height},
        "affineTransform": {
            "scaleX": 10,
            "shearX": 0,
            "translateX": 360000,
            "shearY": 0,
            "scaleY": -10,
            "translateY": 5480000,
        },
        "crsCode": SYN_CRS,
    }


def test_1_masks_are_binary() -> None:
    img = ee.Image.constant(3.0).updateMask(0.25)
    vals, mask = pixels(img, _grid())["constant"]
    assert mask.all() and (vals == 3.0).all()
    assert pixels(img.mask(), _grid())["constant"][0].max() == 1


def test_2_integer_add_widens_type() -> None:
    img = ee.Image.constant(60000).toUint16().add(ee.Image.constant(60000).toUint16())
    info = img.getInfo()["bands"][0]["data_type"]
    assert info["precision"] == "int" and (info["min"], info["max"]) == (-(2**31), 2**31 - 1)
    assert pixels(img, _grid())["constant"][0][0, 0] == 120000


def test_3_reduce_region_counts_pixel_centres(syn) -> None:
    # a rectangle covering 1.4 x 1 pixels: only one pixel centre is inside
    x0, y0 = 360000.0, 5480000.0 - 10.0
    rect = ee.Geometry.Rectangle([x0, y0, x0 + 14.0, y0 + 10.0], SYN_CRS, False)
    out = ee.Image("test/syn_img").select("QA").reduceRegion(ee.Reducer.count(), rect, 10).getInfo()
    assert out["QA"] == 1


def test_4_median_is_exact_with_even_counts() -> None:
    col = ee.ImageCollection([ee.Image.constant(v).toFloat() for v in (1.0, 2.0, 10.0, 20.0)])
    vals, _ = pixels(col.median(), _grid())["constant"]
    assert vals[0, 0] == pytest.approx(6.0)


def test_5_geometry_predicates_are_planar() -> None:
    # A long east-west segment at 60N: the geodesic bulges north of latitude 60 at the middle,
    # the planar (lon/lat) segment stays on it; a tiny box just north of 60 at lon 0 shows which.
    line = ee.Geometry.LineString([[-40, 60], [40, 60]])
    box = ee.Geometry.Rectangle([-0.5, 60.5, 0.5, 61])
    assert line.intersects(box).getInfo() is False


def test_6_resample_only_changes_asset_bands(syn) -> None:
    computed = ee.Image("test/syn_img").select("B2").multiply(1).resample("bilinear")
    leaf = ee.Image("test/syn_img").select("B2").resample("bilinear")
    half = _grid(8, 10)
    half["affineTransform"]["translateX"] = 360005.0  # half a pixel east: resampling matters
    a = pixels(computed, half)["B2"][0]
    b = pixels(leaf, half)["B2"][0]
    assert not np.allclose(a, b)


def test_7_fractional_months_are_rejected() -> None:
    with pytest.raises(ee.EEException, match="fractional"):
        ee.Date("2020-01-31").advance(1.5, "month").getInfo()


def test_8_band_regex_is_python_full_match(syn) -> None:
    names = ee.Image("test/syn_img").select("B[12]").bandNames().getInfo()
    assert names == ["B1", "B2"]
    with pytest.raises(ee.EEException, match="did not match"):
        ee.Image("test/syn_img").select("B").getInfo()


def test_9_clip_is_binary_pixel_centre(syn) -> None:
    x0, y0 = 360000.0, 5480000.0
    rect = ee.Geometry.Rectangle([x0, y0 - 14.0, x0 + 14.0, y0], SYN_CRS, False)
    _, mask = pixels(ee.Image("test/syn_img").select("QA").clip(rect), _grid())["QA"]
    assert mask.sum() == 1 and mask[0, 0]


def test_10_float_constants_run_in_float32(syn) -> None:
    img = ee.Image("test/syn_img").select("B1").multiply(0.1)
    assert img.getInfo()["bands"][0]["data_type"]["precision"] == "float"


def test_11_percentile_is_nearest_rank() -> None:
    col = ee.ImageCollection([ee.Image.constant(v).toFloat() for v in (1.0, 2.0, 3.0, 4.0)])
    vals, _ = pixels(col.reduce(ee.Reducer.percentile([50])), _grid())["constant_p50"]
    assert vals[0, 0] == 2.0


def test_12_mode_ties_go_to_the_smallest_value() -> None:
    col = ee.ImageCollection([ee.Image.constant(v).toInt16() for v in (5, 3, 5, 3, 9)])
    vals, _ = pixels(col.mode(), _grid())["constant"]
    assert vals[0, 0] == 3


def test_13_string_split_keeps_trailing_empty_strings() -> None:
    assert ee.String("a,b,").split(",").getInfo() == ["a", "b", ""]


def test_14_reduce_needs_the_same_bands_in_every_image(syn) -> None:
    mixed = ee.ImageCollection([ee.Image("test/syn_img").select("B1"),
                                ee.Image("test/syn_img").select("B2")])  # fmt: skip
    with pytest.raises(ee.EEException, match="no band 'B1'"):
        mixed.median().getInfo()


def test_15_month_difference_uses_the_average_month() -> None:
    days = 31.0  # 2021-01-01 -> 2021-02-01
    got = ee.Date("2021-02-01").difference(ee.Date("2021-01-01"), "month").getInfo()
    assert got == pytest.approx(days / (365.2425 / 12))


def test_16_normalized_difference_of_zeros_is_zero() -> None:
    vals, mask = pixels(ee.Image.constant([0, 0]).normalizedDifference(), _grid())["nd"]
    assert mask.all() and (vals == 0).all()


def test_17_nan_cast_to_integer_is_zero() -> None:
    img = ee.Image.constant(-1.0).sqrt().toInt16()
    vals, mask = pixels(img, _grid())["constant"]
    assert mask.all() and (vals == 0).all()


def test_18_ternary_takes_the_condition_band_name(syn) -> None:
    img = ee.Image("test/syn_img").expression("B1 > 0 ? B2 : QA", {
        "B1": ee.Image("test/syn_img").select("B1"), "B2": ee.Image("test/syn_img").select("B2"),
        "QA": ee.Image("test/syn_img").select("QA")})  # fmt: skip
    assert img.bandNames().getInfo() == ["B1"]


def test_19_round_takes_half_up_for_negative_ties() -> None:
    assert ee.Number(-2.5).round().getInfo() == -2
    vals, _ = pixels(ee.Image.constant(-2.5).round(), _grid())["constant"]
    assert vals[0, 0] == -2.0


def test_a_mapped_function_fails_only_where_its_elements_are_used(syn) -> None:
    """Earth Engine's map is lazy: the collection's size and properties do not run into an error of
    the mapped function; using an element does."""
    col = ee.ImageCollection("test/syn").set("NOTE", "kept")
    failing = col.map(lambda img: img.select("NOT_A_BAND"))
    assert failing.get("NOTE").getInfo() == "kept"
    assert failing.size().getInfo() == col.size().getInfo()
    with pytest.raises(ee.EEException, match="NOT_A_BAND"):
        failing.first().bandNames().getInfo()
    with pytest.raises(ee.EEException, match="NOT_A_BAND"):
        failing.getInfo()
