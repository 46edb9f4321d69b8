"""Image algorithms of the local engine against independent numpy references.

Every test builds its expression with the ordinary earthengine-api client on the seeded
``test/syn_img`` image (B1 float32 in [-1, 1], B2 float32 in [0, 2], QA uint16; B1 and B2
share the mask ``syn.mask[0]``, QA is valid everywhere), evaluates it through
``ee.data.computePixels`` (the local engine answers) and compares values and masks with numpy.
Values are compared on valid pixels only; masked pixels must come back as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ee
import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import geometry_mask

from tests.conftest import SYN_CRS, SYN_SHAPE, SYN_TRANSFORM, Synthetic, pixels

IMG = "test/syn_img"
FLOAT = {"type": "PixelType", "precision": "float"}
BOOL = {"type": "PixelType", "precision": "int", "min": 0, "max": 1}
Expected = dict[str, tuple[Any, np.ndarray]]


@dataclass(frozen=True)
class Ref:
    """The first date of the synthetic stack as numpy arrays."""

    b1: np.ndarray
    b2: np.ndarray
    qa: np.ndarray
    m: np.ndarray  # mask of B1 and B2
    all: np.ndarray  # mask of QA (valid everywhere)
    grid: dict[str, Any]


@pytest.fixture
def ref(syn: Synthetic) -> Ref:
    """Numpy copies of ``test/syn_img``."""
    return Ref(syn.b1[0], syn.b2[0], syn.qa[0], syn.mask[0], np.ones(SYN_SHAPE, bool), syn.grid)


@pytest.fixture
def img(syn: Synthetic) -> ee.Image:
    """``ee.Image('test/syn_img')``."""
    return ee.Image(IMG)


def f32(x: float) -> np.float32:
    """A float32 scalar (the engine computes float32 bands in float32)."""
    return np.float32(x)


def check(
    image: ee.Image, grid: dict[str, Any], expected: Expected, *, rtol: float = 1e-6, atol: float = 1e-6
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Compare band names, masks and valid values of ``image`` with ``expected``."""
    out = pixels(image, grid)
    assert list(out) == list(expected), "band names"
    for name, (want_v, want_m) in expected.items():
        got_v, got_m = out[name]
        want_m = np.broadcast_to(want_m, got_m.shape)
        np.testing.assert_array_equal(got_m, want_m, err_msg=f"mask of {name}")
        want = np.broadcast_to(np.asarray(want_v), got_v.shape)
        np.testing.assert_allclose(
            got_v[want_m], want[want_m], rtol=rtol, atol=atol, equal_nan=True, err_msg=f"values of {name}"
        )
        assert not np.any(got_v[~got_m]), f"masked pixels of {name} must be 0"
    return out


def types(image: ee.Image) -> dict[str, dict[str, Any]]:
    """Band name -> ``data_type`` from ``getInfo()``."""
    return {b["id"]: b["data_type"] for b in image.getInfo()["bands"]}


def one_pixel() -> dict[str, Any]:
    """A 1x1 grid, for constant images."""
    return {
        "dimensions": {"width": 1, "height": 1},
        "crsCode": "EPSG:4326",
        "affineTransform": {"scaleX": 1.0, "scaleY": -1.0, "translateX": 0, "translateY": 1},
    }


def padded_grid(pad: int) -> dict[str, Any]:
    """The native grid grown by ``pad`` pixels on every side."""
    a, b, c, d, e, f = SYN_TRANSFORM
    keys = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
    vals = (a, b, c - pad * a, d, e, f - pad * e)
    return {
        "dimensions": {"width": SYN_SHAPE[1] + 2 * pad, "height": SYN_SHAPE[0] + 2 * pad},
        "affineTransform": dict(zip(keys, vals, strict=True)),
        "crsCode": SYN_CRS,
    }


# -- arithmetic --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("add", np.add),
        ("subtract", np.subtract),
        ("multiply", np.multiply),
        ("max", np.maximum),
        ("min", np.minimum),
    ],
)
def test_binary_image_image(img: ee.Image, ref: Ref, op: str, fn: Any) -> None:
    out = getattr(img.select("B1"), op)(img.select("B2"))
    check(out, ref.grid, {"B1": (fn(ref.b1, ref.b2), ref.m)})
    assert types(out) == {"B1": FLOAT}


def test_binary_with_scalars(img: ee.Image, ref: Ref) -> None:
    b1, qa = img.select("B1"), img.select("QA")
    check(b1.add(2), ref.grid, {"B1": (ref.b1 + f32(2), ref.m)})
    check(b1.multiply(-0.5), ref.grid, {"B1": (ref.b1 * f32(-0.5), ref.m)})
    check(qa.subtract(100), ref.grid, {"QA": (ref.qa.astype(np.int64) - 100, ref.all)})
    check(qa.max(2000), ref.grid, {"QA": (np.maximum(ref.qa, 2000), ref.all)})
    check(ee.Image(3).subtract(b1), ref.grid, {"constant": (f32(3) - ref.b1, ref.m)})
    assert types(b1.add(2)) == {"B1": FLOAT}
    assert types(qa.max(2000))["QA"]["precision"] == "int"


def test_divide_returns_zero_for_zero_divisor(img: ee.Image, ref: Ref) -> None:
    b1, b2 = img.select("B1"), img.select("B2")
    check(b1.divide(b2), ref.grid, {"B1": (ref.b1 / ref.b2, ref.m)})
    divisor = np.floor(ref.b2)  # 0 or 1
    assert (divisor == 0).any() and (divisor == 1).any()
    want = np.where(divisor == 0, f32(0), ref.b1 / np.where(divisor == 0, 1, divisor))
    check(b1.divide(b2.floor()), ref.grid, {"B1": (want, ref.m)})
    check(img.select("QA").divide(7), ref.grid, {"QA": (ref.qa / f32(7), ref.all)})
    check(ee.Image(1).divide(0), one_pixel(), {"constant": (0, np.ones((1, 1), bool))})
    assert types(img.select("QA").divide(7)) == {"QA": FLOAT}


def test_pow(img: ee.Image, ref: Ref) -> None:
    b1, b2 = img.select("B1"), img.select("B2")
    check(b2.pow(b1), ref.grid, {"B2": (np.power(ref.b2, ref.b1), ref.m)}, rtol=1e-5)
    check(b1.pow(2), ref.grid, {"B1": (ref.b1 * ref.b1, ref.m)}, rtol=1e-5)
    check(
        img.select("QA").pow(0.5), ref.grid, {"QA": (np.sqrt(ref.qa.astype(np.float32)), ref.all)}, rtol=1e-5
    )
    assert types(b2.pow(b1)) == {"B2": FLOAT}
    assert types(img.select("QA").pow(2)) == {"QA": FLOAT}  # "the type of the output is float"


def test_mod(img: ee.Image, ref: Ref) -> None:
    b1 = img.select("B1")
    check(b1.mod(0.3), ref.grid, {"B1": (np.fmod(ref.b1, f32(0.3)), ref.m)}, atol=1e-5)
    check(img.select("QA").mod(7), ref.grid, {"QA": (ref.qa % 7, ref.all)})
    # The remainder takes the sign of the dividend (ee.Number.mod's documented examples).
    grid, ok = one_pixel(), np.ones((1, 1), bool)
    check(ee.Image(-12).mod(5), grid, {"constant": (-2, ok)})
    check(ee.Image(1).mod(-2), grid, {"constant": (1, ok)})
    check(ee.Image(5.5).mod(2), grid, {"constant": (1.5, ok)})


# -- comparisons and logic -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("eq", np.equal),
        ("neq", np.not_equal),
        ("gt", np.greater),
        ("gte", np.greater_equal),
        ("lt", np.less),
        ("lte", np.less_equal),
    ],
)
def test_comparisons(img: ee.Image, ref: Ref, op: str, fn: Any) -> None:
    qa4 = img.select("QA").mod(4)
    out = getattr(qa4, op)(2)
    want = fn(ref.qa % 4, 2)
    assert want.any() and not want.all()
    check(out, ref.grid, {"QA": (want.astype(np.uint8), ref.all)})
    assert types(out) == {"QA": BOOL}
    both = getattr(img.select("B1"), op)(img.select("B2").subtract(1))
    check(both, ref.grid, {"B1": (fn(ref.b1, ref.b2 - f32(1)).astype(np.uint8), ref.m)})
    assert types(both) == {"B1": BOOL}


def test_and_or_not(img: ee.Image, ref: Ref) -> None:
    pos, big = img.select("B1").gt(0), img.select("QA").gt(2000)
    p, q = ref.b1 > 0, ref.qa > 2000
    check(pos.And(big), ref.grid, {"B1": ((p & q).astype(np.uint8), ref.m)})
    check(pos.Or(big), ref.grid, {"B1": ((p | q).astype(np.uint8), ref.m)})
    check(big.Not(), ref.grid, {"QA": ((~q).astype(np.uint8), ref.all)})
    # Non-boolean operands: non-zero is true.
    check(
        img.select("QA").mod(3).And(img.select("QA").mod(2)),
        ref.grid,
        {"QA": (((ref.qa % 3 != 0) & (ref.qa % 2 != 0)).astype(np.uint8), ref.all)},
    )
    check(img.select("QA").mod(3).Not(), ref.grid, {"QA": ((ref.qa % 3 == 0).astype(np.uint8), ref.all)})
    assert types(pos.And(big)) == {"B1": BOOL}
    assert types(big.Not()) == {"QA": BOOL}


def test_bitwise_on_qa(img: ee.Image, ref: Ref) -> None:
    qa = img.select("QA")
    q = ref.qa.astype(np.int64)
    check(qa.bitwiseAnd(0xF0), ref.grid, {"QA": (q & 0xF0, ref.all)})
    check(qa.bitwiseOr(0x1000), ref.grid, {"QA": (q | 0x1000, ref.all)})
    check(qa.leftShift(2), ref.grid, {"QA": (q << 2, ref.all)})
    check(qa.rightShift(3), ref.grid, {"QA": (q >> 3, ref.all)})
    check(qa.bitwiseAnd(qa.rightShift(4)), ref.grid, {"QA": (q & (q >> 4), ref.all)})
    # Bit tests as in cloud masks: (QA >> 3) & 1.
    check(qa.rightShift(3).bitwiseAnd(1), ref.grid, {"QA": ((q >> 3) & 1, ref.all)})
    for op in (qa.bitwiseAnd(0xF0), qa.leftShift(2), qa.rightShift(3)):
        assert types(op)["QA"]["precision"] == "int"
    with pytest.raises(ee.EEException):
        img.select("B1").bitwiseAnd(1).getInfo()


# -- unary -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "band", "fn"),
    [
        ("abs", "B1", np.abs),
        ("sqrt", "B2", np.sqrt),
        ("sqrt", "B1", np.sqrt),
        ("log", "B2", np.log),
        ("exp", "B1", np.exp),
        ("floor", "B1", np.floor),
        ("ceil", "B1", np.ceil),
    ],
)
def test_unary_float(img: ee.Image, ref: Ref, op: str, band: str, fn: Any) -> None:
    src = {"B1": ref.b1, "B2": ref.b2}[band]
    with np.errstate(invalid="ignore", divide="ignore"):
        want = fn(src * f32(3))
    out = getattr(img.select(band).multiply(3), op)()
    check(out, ref.grid, {band: (want, ref.m)}, rtol=1e-5)
    assert types(out) == {band: FLOAT}


def test_sqrt_and_log_of_negatives_are_nan(img: ee.Image, ref: Ref) -> None:
    out = pixels(img.select("B1").sqrt().addBands(img.select("B1").log().rename("L")), ref.grid)
    neg = ref.m & (ref.b1 < 0)
    assert neg.any()
    assert np.isnan(out["B1"][0][neg]).all() and np.isnan(out["L"][0][neg]).all()
    assert out["B1"][1][neg].all()  # still valid pixels, as NaN


def test_round_is_half_up(img: ee.Image, ref: Ref) -> None:
    check(
        img.select("B1").multiply(10).round(),
        ref.grid,
        {"B1": (np.floor(ref.b1 * f32(10) + f32(0.5)), ref.m)},
    )
    # ee.Number.round's documented examples: 10.4 -> 10, 10.5 -> 11, 10.9 -> 11.
    ones = np.ones((1, 1), bool)
    out = ee.Image.constant([10.4, 10.5, 10.9, 0.5, 2.5]).round()
    check(out, one_pixel(), {f"constant_{i}": (v, ones) for i, v in enumerate([10, 11, 11, 1, 3])})
    assert ee.Number(10.5).round().getInfo() == 11
    assert ee.Number(2.5).round().getInfo() == 3


# -- casts -------------------------------------------------------------------------------------
def test_casts_truncate_and_saturate(img: ee.Image, ref: Ref) -> None:
    scaled = ref.b1 * f32(1000)
    u8 = img.select("B1").multiply(1000).toUint8()
    check(u8, ref.grid, {"B1": (np.clip(np.trunc(scaled), 0, 255), ref.m)})
    assert types(u8) == {"B1": {"type": "PixelType", "precision": "int", "min": 0, "max": 255}}
    big = ref.b1 * f32(1e5)
    i16 = img.select("B1").multiply(1e5).toInt16()
    check(i16, ref.grid, {"B1": (np.clip(np.trunc(big), -32768, 32767), ref.m)})
    assert types(i16) == {"B1": {"type": "PixelType", "precision": "int", "min": -32768, "max": 32767}}
    # Truncation toward zero, not flooring: -0.7 -> 0, 1.9 -> 1.
    check(
        ee.Image.constant([-0.7, 1.9]).toInt16(),
        one_pixel(),
        {"constant_0": (0, np.ones((1, 1), bool)), "constant_1": (1, np.ones((1, 1), bool))},
    )
    check(img.select("QA").toUint8(), ref.grid, {"QA": (np.minimum(ref.qa, 255), ref.all)})
    fl = img.select("QA").toFloat()
    check(fl, ref.grid, {"QA": (ref.qa.astype(np.float32), ref.all)})
    assert types(fl) == {"QA": FLOAT}


# -- normalizedDifference, clamp, unitScale -----------------------------------------------------
def test_normalized_difference(img: ee.Image, ref: Ref) -> None:
    nd = img.normalizedDifference(["B2", "B1"])
    want = (ref.b2 - ref.b1) / (ref.b2 + ref.b1)
    # Earth Engine masks the output where either input is negative (documented).
    valid = ref.m & (ref.b1 >= 0) & (ref.b2 >= 0)
    assert (ref.m & ~valid).any()
    check(nd, ref.grid, {"nd": (want, valid)}, rtol=1e-5)
    info = nd.getInfo()
    assert [b["data_type"] for b in info["bands"]] == [FLOAT]
    assert "NAME" not in (info.get("properties") or {})  # input properties are not retained
    # Without band names: the first two bands, (B1 - B2) / (B1 + B2).
    check(
        img.normalizedDifference(),
        ref.grid,
        {"nd": ((ref.b1 - ref.b2) / (ref.b1 + ref.b2), valid)},
        rtol=1e-5,
    )


def test_clamp(img: ee.Image, ref: Ref) -> None:
    check(img.select("B1").clamp(-0.5, 0.25), ref.grid, {"B1": (np.clip(ref.b1, -0.5, 0.25), ref.m)})
    check(img.select("QA").clamp(100, 200), ref.grid, {"QA": (np.clip(ref.qa, 100, 200), ref.all)})
    assert types(img.select("B1").clamp(-0.5, 0.25)) == {"B1": FLOAT}


def test_unit_scale(img: ee.Image, ref: Ref) -> None:
    check(img.select("B1").unitScale(-1, 1), ref.grid, {"B1": ((ref.b1 + 1) / 2, ref.m)})
    qa = img.select("QA").unitScale(0, 4095)
    check(qa, ref.grid, {"QA": (ref.qa / 4095, ref.all)})
    assert types(qa) == {"QA": FLOAT}  # always floating point, values outside not clamped


# -- expression --------------------------------------------------------------------------------
def test_expression_ndvi_with_b_and_variable(img: ee.Image, ref: Ref) -> None:
    out = img.expression("(b('B2') - B1) / (b('B2') + B1)", {"B1": img.select("B1")})
    check(out, ref.grid, {"B2": ((ref.b2 - ref.b1) / (ref.b2 + ref.b1), ref.m)}, rtol=1e-5)
    assert types(out) == {"B2": FLOAT}


def test_expression_free_variable_needs_a_map(img: ee.Image) -> None:
    with pytest.raises(ee.EEException, match="B1"):
        img.expression("b('B2') - B1").getInfo()


def test_expression_operators(img: ee.Image, ref: Ref) -> None:
    v = {"v": img}
    check(img.expression("b('B2') ** 2 + 1").rename("x"), ref.grid, {"x": (ref.b2**2 + 1, ref.m)}, rtol=1e-5)
    check(img.expression("2 ** 3 ** 2").rename("x"), one_pixel(), {"x": (512, np.ones((1, 1), bool))})
    check(img.expression("-b('B1') * 2 + 10 % 4").rename("x"), ref.grid, {"x": (-ref.b1 * 2 + 2, ref.m)})
    check(
        img.expression("v.B1 > 0 && v.B2 > 1 || !(v.QA < 4000)", v).rename("x"),
        ref.grid,
        {"x": (((ref.b1 > 0) & (ref.b2 > 1) | (ref.qa >= 4000)).astype(np.uint8), ref.m)},
    )
    check(
        img.expression("v.QA % 3 == 1", v).rename("x"),
        ref.grid,
        {"x": ((ref.qa % 3 == 1).astype(np.uint8), ref.all)},
    )
    check(
        img.expression("max(v.B1, b('B2') - 1)", v).rename("x"),
        ref.grid,
        {"x": (np.maximum(ref.b1, ref.b2 - 1), ref.m)},
    )


def test_expression_ternary(img: ee.Image, ref: Ref) -> None:
    out = img.expression("v.B1 > 0 ? b('B2') : -1", {"v": img}).rename("t")
    check(out, ref.grid, {"t": (np.where(ref.b1 > 0, ref.b2, -1), ref.m)})
    nested = img.expression("b('QA') < 1000 ? 1 : b('QA') < 3000 ? 2 : 3").rename("t")
    check(nested, ref.grid, {"t": (np.select([ref.qa < 1000, ref.qa < 3000], [1, 2], 3), ref.all)})


def test_expression_band_access_and_naming(img: ee.Image, ref: Ref) -> None:
    v = {"v": img}
    # Output names follow the binary-operator rule: the first operand's name on a tie.
    check(img.expression("v.B1 * 2 + v.QA", v), ref.grid, {"B1": (ref.b1 * 2 + ref.qa, ref.m)})
    check(img.expression("2.5 * v.B1", v), ref.grid, {"constant": (f32(2.5) * ref.b1, ref.m)})
    check(img.expression("v[2] - v['B2']", v), ref.grid, {"QA": (ref.qa - ref.b2, ref.m)})
    check(img.expression("b(0, 'QA')"), ref.grid, {"B1": (ref.b1, ref.m), "QA": (ref.qa, ref.all)})
    check(
        img.expression("b()"),
        ref.grid,
        {"B1": (ref.b1, ref.m), "B2": (ref.b2, ref.m), "QA": (ref.qa, ref.all)},
    )
    check(
        img.expression("ndvi = (b('B2') - b(0)) / (b('B2') + b(0))"),
        ref.grid,
        {"ndvi": ((ref.b2 - ref.b1) / (ref.b2 + ref.b1), ref.m)},
        rtol=1e-5,
    )
    with pytest.raises(ee.EEException, match="single-band"):
        img.expression("x = b()").getInfo()


# -- bands: select, rename, addBands, constant ----------------------------------------------------
def test_select_by_name_regex_index_and_new_names(img: ee.Image, ref: Ref) -> None:
    check(img.select("QA"), ref.grid, {"QA": (ref.qa, ref.all)})
    check(img.select(["B2", "B1"]), ref.grid, {"B2": (ref.b2, ref.m), "B1": (ref.b1, ref.m)})
    check(img.select("B."), ref.grid, {"B1": (ref.b1, ref.m), "B2": (ref.b2, ref.m)})
    check(img.select([2, 0]), ref.grid, {"QA": (ref.qa, ref.all), "B1": (ref.b1, ref.m)})
    check(
        img.select(["B1", "QA"], ["red", "bits"]),
        ref.grid,
        {"red": (ref.b1, ref.m), "bits": (ref.qa, ref.all)},
    )
    assert img.select("B.|QA").bandNames().getInfo() == ["B1", "B2", "QA"]
    assert img.select("B1").get("NAME").getInfo() == "first"  # properties are kept
    assert types(img.select("QA"))["QA"] == {"type": "PixelType", "precision": "int", "min": 0, "max": 65535}


def test_select_regex_must_match_the_whole_name(img: ee.Image) -> None:
    with pytest.raises(ee.EEException, match="Pattern 'B' did not match any bands"):
        img.select("B").getInfo()


def test_select_missing_band_raises_ee_wording(img: ee.Image) -> None:
    with pytest.raises(ee.EEException, match="Pattern 'X' did not match any bands"):
        img.select("X").getInfo()
    with pytest.raises(ee.EEException):
        img.select([7]).getInfo()
    with pytest.raises(ee.EEException):
        img.select(["B1", "B2"], ["only_one"]).getInfo()


def test_rename(img: ee.Image, ref: Ref) -> None:
    check(
        img.rename(["a", "b", "c"]),
        ref.grid,
        {"a": (ref.b1, ref.m), "b": (ref.b2, ref.m), "c": (ref.qa, ref.all)},
    )
    assert img.select("B1").rename("x").bandNames().getInfo() == ["x"]
    with pytest.raises(ee.EEException, match="number of names"):
        img.rename(["a"]).getInfo()


def test_add_bands_duplicates_get_suffixes(img: ee.Image, ref: Ref) -> None:
    b1 = img.select("B1")
    out = img.addBands(b1.multiply(2))
    check(
        out,
        ref.grid,
        {"B1": (ref.b1, ref.m), "B2": (ref.b2, ref.m), "QA": (ref.qa, ref.all), "B1_1": (ref.b1 * 2, ref.m)},
    )
    assert b1.addBands(b1).addBands(b1).bandNames().getInfo() == ["B1", "B1_1", "B1_2"]
    assert out.get("NAME").getInfo() == "first"  # metadata of the first input
    picked = b1.addBands(img, ["QA"])
    check(picked, ref.grid, {"B1": (ref.b1, ref.m), "QA": (ref.qa, ref.all)})


def test_add_bands_overwrite(img: ee.Image, ref: Ref) -> None:
    out = img.addBands(img.select("B2").multiply(10).rename("B1"), None, True)
    check(out, ref.grid, {"B1": (ref.b2 * 10, ref.m), "B2": (ref.b2, ref.m), "QA": (ref.qa, ref.all)})
    new = img.addBands(ee.Image(4).rename("four"), None, True)
    assert new.bandNames().getInfo() == ["B1", "B2", "QA", "four"]


def test_constant_images(ref: Ref) -> None:
    ones = np.ones(SYN_SHAPE, bool)
    check(ee.Image.constant(3), ref.grid, {"constant": (3, ones)})
    assert types(ee.Image.constant(3)) == {
        "constant": {"type": "PixelType", "precision": "int", "min": 3, "max": 3}
    }
    two = ee.Image.constant([1, 2.5])
    check(two, ref.grid, {"constant_0": (1, ones), "constant_1": (2.5, ones)})
    assert types(two)["constant_1"]["precision"] in ("float", "double")
    check(ee.Image(7), ref.grid, {"constant": (7, ones)})
    assert ee.Image([1, 2]).bandNames().getInfo() == ["constant", "constant_1"]


# -- band pairing and masks of binary operations --------------------------------------------------
def test_one_band_against_two_takes_names_of_the_longer(img: ee.Image, ref: Ref) -> None:
    b1, two = img.select("B1"), img.select(["B2", "QA"])
    check(b1.add(two), ref.grid, {"B2": (ref.b1 + ref.b2, ref.m), "QA": (ref.b1 + ref.qa, ref.m)})
    check(two.subtract(b1), ref.grid, {"B2": (ref.b2 - ref.b1, ref.m), "QA": (ref.qa - ref.b1, ref.m)})


def test_equal_band_counts_pair_in_order_with_first_names(img: ee.Image, ref: Ref) -> None:
    out = img.select(["B1", "B2"]).multiply(img.select(["B2", "QA"]))
    check(out, ref.grid, {"B1": (ref.b1 * ref.b2, ref.m), "B2": (ref.b2 * ref.qa, ref.m)})


def test_two_bands_against_three_raise(img: ee.Image) -> None:
    with pytest.raises(ee.EEException, match="same number of bands or only 1 band"):
        img.select(["B1", "B2"]).add(img).getInfo()


def test_binary_masks_intersect(img: ee.Image, ref: Ref) -> None:
    a = img.select("B1").updateMask(img.select("B2").gt(1))
    b = img.select("B2").updateMask(img.select("B1").gt(0))
    both = ref.m & (ref.b2 > 1) & (ref.b1 > 0)
    assert both.any() and (ref.m & ~both).any()
    check(a.add(b), ref.grid, {"B1": (ref.b1 + ref.b2, both)})
    check(a.gt(b), ref.grid, {"B1": ((ref.b1 > ref.b2).astype(np.uint8), both)})
    check(img.select("QA").multiply(a), ref.grid, {"QA": (ref.qa * ref.b1, ref.m & (ref.b2 > 1))})


def test_binary_operations_drop_properties(img: ee.Image) -> None:
    assert "NAME" not in (img.add(1).getInfo().get("properties") or {})


# -- masks -------------------------------------------------------------------------------------
def test_mask_returns_the_mask_as_values(img: ee.Image, ref: Ref) -> None:
    check(img.mask(), ref.grid, {"B1": (ref.m, ref.all), "B2": (ref.m, ref.all), "QA": (ref.all, ref.all)})


def test_mask_with_an_image_replaces_the_mask(img: ee.Image, ref: Ref) -> None:
    # The (deprecated) setter replaces the mask; newly valid pixels read as 0.
    newm = ref.b2 > 1
    out = img.select("B1").mask(img.select("QA").gt(2000))
    check(out, ref.grid, {"B1": (np.where(ref.m, ref.b1, 0), ref.qa > 2000)})
    assert (~ref.m & (ref.qa > 2000)).any()
    check(img.select("B1").updateMask(img.select("B2").gt(1)), ref.grid, {"B1": (ref.b1, ref.m & newm)})


def test_update_mask(img: ee.Image, ref: Ref) -> None:
    check(
        img.select("QA").updateMask(img.select("B1").gt(0)), ref.grid, {"QA": (ref.qa, ref.m & (ref.b1 > 0))}
    )
    # A single-band mask is used for every band; a masked mask pixel masks the output.
    out = img.updateMask(img.select("B1").gt(0))
    want = ref.m & (ref.b1 > 0)
    check(out, ref.grid, {"B1": (ref.b1, want), "B2": (ref.b2, want), "QA": (ref.qa, want)})
    # A mask with as many bands pairs band by band.
    masks = img.select("B2").gt(1).addBands(img.select("QA").gt(1500))
    pair = img.select(["B1", "QA"]).updateMask(masks)
    check(pair, ref.grid, {"B1": (ref.b1, ref.m & (ref.b2 > 1)), "QA": (ref.qa, ref.qa > 1500)})


def test_self_mask(img: ee.Image, ref: Ref) -> None:
    odd = img.select("QA").bitwiseAnd(1).selfMask()
    check(odd, ref.grid, {"QA": (1, (ref.qa & 1) == 1)})


def test_unmask_with_value(img: ee.Image, ref: Ref) -> None:
    check(img.select("B1").unmask(), ref.grid, {"B1": (np.where(ref.m, ref.b1, 0), ref.all)})
    check(img.select("B1").unmask(-9), ref.grid, {"B1": (np.where(ref.m, ref.b1, -9), ref.all)})
    # An image as the fill value: its values and mask replace the masked pixels.
    check(
        img.select("B1").unmask(img.select("QA")),
        ref.grid,
        {"B1": (np.where(ref.m, ref.b1, ref.qa), ref.all)},
    )
    still = img.select("B1").unmask(img.select("B2"))  # B2 is masked where B1 is
    check(still, ref.grid, {"B1": (ref.b1, ref.m)})
    # A negative fill on an unsigned band does not wrap around.
    qa = img.select("QA").updateMask(img.select("B1").gt(0)).unmask(-1)
    check(qa, ref.grid, {"QA": (np.where(ref.m & (ref.b1 > 0), ref.qa.astype(np.int64), -1), ref.all)})
    assert types(qa)["QA"]["precision"] == "int"


def test_unmask_same_footprint(img: ee.Image, ref: Ref) -> None:
    pad = 2
    grid = padded_grid(pad)
    h, w = SYN_SHAPE
    inside = np.zeros((h + 2 * pad, w + 2 * pad), bool)
    inside[pad : pad + h, pad : pad + w] = True
    m = np.pad(ref.m, pad)
    b1 = np.pad(ref.b1, pad)
    check(img.select("B1"), grid, {"B1": (b1, m)})
    check(img.select("B1").unmask(5), grid, {"B1": (np.where(m, b1, 5), inside)})
    check(img.select("B1").unmask(5, False), grid, {"B1": (np.where(m, b1, 5), np.ones_like(inside))})


def test_clip_to_rectangle_uses_pixel_centres(img: ee.Image, ref: Ref) -> None:
    x0, y0, x1, y1 = 360012.0, 5479921.0, 360047.0, 5479968.0
    rect = ee.Geometry.Rectangle([x0, y0, x1, y1], SYN_CRS, False)
    # Hand computation: pixel (r, c) has its centre at (360005 + 10c, 5479995 - 10r).
    rows, cols = np.indices(SYN_SHAPE)
    cx, cy = 360005.0 + 10.0 * cols, 5479995.0 - 10.0 * rows
    inside = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
    assert inside.sum() == 4 * 5  # columns 1-4, rows 3-7
    by_rasterio = ~geometry_mask(
        [shapely.box(x0, y0, x1, y1)], out_shape=SYN_SHAPE, transform=Affine(*SYN_TRANSFORM)
    )
    np.testing.assert_array_equal(inside, by_rasterio)
    want = {"B1": (ref.b1, ref.m & inside), "B2": (ref.b2, ref.m & inside), "QA": (ref.qa, inside)}
    check(img.clip(rect), ref.grid, want)
    assert img.clip(rect).get("NAME").getInfo() == "first"  # metadata retained


def test_where(img: ee.Image, ref: Ref) -> None:
    out = img.select("B1").where(img.select("B2").gt(1), 5)
    check(out, ref.grid, {"B1": (np.where(ref.b2 > 1, 5, ref.b1), ref.m)})
    assert types(out) == {"B1": FLOAT}
    # Where the test or the value is masked the input is kept; the mask is the input's.
    value = img.select("B2").updateMask(img.select("B2").lt(1.5))
    q = img.select("QA").where(img.select("B1").gt(0), value)
    take = ref.m & (ref.b1 > 0) & (ref.b2 < 1.5)
    check(q, ref.grid, {"QA": (np.where(take, ref.b2, ref.qa), ref.all)})
    assert types(q) == {"QA": FLOAT}  # the larger of the input and value types
    multi = img.select(["B1", "B2"]).where(img.select("QA").lt(2000), img.select(["B2", "B1"]))
    low = ref.qa < 2000
    check(
        multi,
        ref.grid,
        {"B1": (np.where(low, ref.b2, ref.b1), ref.m), "B2": (np.where(low, ref.b1, ref.b2), ref.m)},
    )


@pytest.mark.parametrize(
    "expr",
    [
        "b - e * f",
        "2 - 3 + 4",
        "b + d * c - e * f + h",
        "b / c / d",
        "b - c - d",
        "c ** 2 ** 0.5",
        "-b ** 2",
        "b * -c + d",
        "(b < c) == 0",
        "b + c > d * 0.1 && h",
    ],
)
def test_expression_operator_precedence_matches_python(expr: str) -> None:
    env = {"b": 0.5, "c": 0.1, "d": 6.0, "e": 7.5, "f": 0.05, "h": 1.0}
    grid = {
        "dimensions": {"width": 1, "height": 1},
        "affineTransform": {"scaleX": 1, "scaleY": -1},
        "crsCode": "EPSG:4326",
    }
    img = ee.Image(0).expression(expr, env)
    out = ee.data.computePixels({"expression": img, "grid": grid, "fileFormat": "NUMPY_NDARRAY"})
    got = float(out[0][0][0])
    want = float(eval(expr.replace("&&", " and "), {}, dict(env)))
    assert got == pytest.approx(want, rel=1e-6), expr


def test_expression_variables_the_formula_never_reads_are_not_evaluated() -> None:
    """Earth Engine ignores unused variables: one that would fail (a missing asset) changes nothing."""
    image = ee.Image.constant(2)
    out = image.expression("a * 2 + b", {"a": image, "b": 1, "unused": ee.Image("no/such/asset")})
    point = ee.Geometry.Point([0, 0])
    assert out.reduceRegion(ee.Reducer.first(), point, 1000).getInfo() == {"constant": 5}
    with pytest.raises(ee.EEException, match="no/such/asset"):
        image.expression("a + unused", {"a": image, "unused": ee.Image("no/such/asset")}).getInfo()


def test_footprints_intersect_for_pixel_operations_and_unite_for_collections() -> None:
    import shapely.geometry

    from gee_fusion.local.catalog import CATALOG, register_numpy_image

    crs, ones = "EPSG:32631", np.ones((20, 20), dtype=np.float32)
    register_numpy_image(
        "test/fp_a", {"b": ones}, crs=crs, transform=(10.0, 0, 400000.0, 0, -10.0, 5400000.0)
    )
    register_numpy_image(
        "test/fp_b", {"b": ones}, crs=crs, transform=(10.0, 0, 400100.0, 0, -10.0, 5400000.0)
    )
    try:
        a, b = ee.Image("test/fp_a"), ee.Image("test/fp_b")

        def shape(img: ee.Image) -> shapely.Geometry:
            return shapely.geometry.shape(img.geometry().getInfo())

        sa, sb = shape(a), shape(b)
        assert (
            shape(a.add(b)).equals_exact(sa.intersection(sb), 1e-9)
            or shape(a.add(b)).symmetric_difference(sa.intersection(sb)).area < 1e-12
        )
        assert shape(ee.ImageCollection([a, b]).mosaic()).symmetric_difference(sa.union(sb)).area < 1e-12
        assert shape(ee.ImageCollection([a, b]).median()).symmetric_difference(sa.union(sb)).area < 1e-12
        assert shape(a.multiply(2).add(ee.Image.constant(1))).symmetric_difference(sa).area < 1e-12
        assert shape(ee.Image.constant(1)).area > 60000  # a constant is unbounded
        box = ee.Geometry.Rectangle([400000, 5399900, 400050, 5400000], crs, False)
        clipped = shape(a.multiply(3).clip(box))
        assert 0 < clipped.area < sa.area and clipped.within(sa.buffer(1e-9))
    finally:
        CATALOG.unregister("test/fp_a")
        CATALOG.unregister("test/fp_b")
