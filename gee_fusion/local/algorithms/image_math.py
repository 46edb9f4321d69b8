"""Per-pixel arithmetic, comparison, logical, bitwise and unary operators on images and
numbers, plus ``normalizedDifference``, ``clamp`` and ``unitScale``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import as_image, float_of, promote
from gee_fusion.local.algorithms.image_bands import select_bands
from gee_fusion.local.algorithms.image_mask import pair_bands
from gee_fusion.local.image import Band, FuncNode, Image, Pixels
from gee_fusion.local.registry import algorithm

BinFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Earth Engine's divide: 0 where the divisor is 0."""
    a, b = np.asarray(a), np.asarray(b)
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
    np.divide(a, b, out=out, where=b != 0)
    return out


def _safe_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
    np.fmod(a, b, out=out, where=b != 0)
    return out


def _first_non_zero(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a != 0, a, b)


def _gammainc(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Earth Engine's ``gammainc(x, a)``: the regularized lower incomplete gamma P(a, x)."""
    from scipy import special

    return np.asarray(special.gammainc(a, x))


def _special(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """A scipy.special function of one argument (``trigamma``: polygamma of order 1)."""

    def fn(a: np.ndarray) -> np.ndarray:
        from scipy import special

        if name == "trigamma":
            return np.asarray(special.polygamma(1, a))
        return np.asarray(getattr(special, name)(a))

    return fn


# name -> (function, result-type rule)
_BINARY: dict[str, tuple[BinFn, str]] = {
    "gammainc": (_gammainc, "float"),
    "add": (np.add, "widen"),
    "subtract": (np.subtract, "widen"),
    "multiply": (np.multiply, "widen"),
    "divide": (_safe_divide, "float"),
    "mod": (_safe_mod, "promote"),
    "pow": (np.power, "float"),
    "max": (np.maximum, "promote"),
    "min": (np.minimum, "promote"),
    "atan2": (np.arctan2, "float"),
    "hypot": (np.hypot, "float"),
    "first": (lambda a, b: np.broadcast_to(a, np.broadcast_shapes(np.shape(a), np.shape(b))), "promote"),
    "firstNonZero": (_first_non_zero, "promote"),
    "eq": (np.equal, "bool"),
    "neq": (np.not_equal, "bool"),
    "gt": (np.greater, "bool"),
    "gte": (np.greater_equal, "bool"),
    "lt": (np.less, "bool"),
    "lte": (np.less_equal, "bool"),
    "and": (lambda a, b: np.logical_and(a != 0, b != 0), "bool"),
    "or": (lambda a, b: np.logical_or(a != 0, b != 0), "bool"),
    "bitwiseAnd": (np.bitwise_and, "int"),
    "bitwiseOr": (np.bitwise_or, "int"),
    "bitwiseXor": (np.bitwise_xor, "int"),
    "leftShift": (np.left_shift, "int"),
    "rightShift": (np.right_shift, "int"),
}
_SNAKE = {"firstNonZero": "first_nonzero", "bitwiseAnd": "bitwise_and", "bitwiseOr": "bitwise_or",
          "bitwiseXor": "bitwise_xor", "leftShift": "left_shift", "rightShift": "right_shift"}  # fmt: skip


def _result_dtype(rule: str, a: Band, b: Band) -> np.dtype:
    if rule == "bool":
        return np.dtype(np.uint8)
    if rule == "float":
        return float_of(promote(a, b))
    if rule == "int":
        out = promote(a, b)
        if out.kind == "f":
            raise EngineError("Bitwise operations need integer images; cast with toInt() first.")
        return out
    return promote(a, b, widen=(rule == "widen"))


def _trailing(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give a scalar operand trailing axes so it applies to every element of an array operand."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim < b.ndim:
        a = a.reshape(a.shape + (1,) * (b.ndim - a.ndim))
    elif b.ndim < a.ndim:
        b = b.reshape(b.shape + (1,) * (a.ndim - b.ndim))
    return a, b


def binary(op: str, image1: Any, image2: Any) -> Image:
    """Apply a binary operator band-wise with Earth Engine's band pairing and naming rules.

    One single-band operand is used against every band of the other; otherwise the counts
    must match. Output bands are named after the longer operand (``image1`` on a tie); masks
    are intersected; properties are dropped.
    """
    fn, rule = _BINARY[op]
    a, b = as_image(image1), as_image(image2)
    names_from_b = len(b.bands) > len(a.bands)
    bands = []
    for ba, bb in pair_bands(a, b, f"Image.{op}"):
        dtype = _result_dtype(rule, ba, bb)
        calc = np.float64 if rule == "float" and dtype == np.float64 else None

        def compute(pa: Pixels, pb: Pixels, _fn: BinFn = fn, _dt: np.dtype = dtype,
                    _calc: Any = calc, _rule: str = rule) -> Pixels:  # fmt: skip
            va, vb = pa[0], pb[0]
            if _rule != "bool":
                va = va.astype(_calc or _dt, copy=False)
                vb = vb.astype(_calc or _dt, copy=False)
            va, vb = _trailing(va, vb)
            with np.errstate(all="ignore"):
                out = _fn(va, vb)
            return np.asarray(out).astype(_dt, copy=False), pa[1] & pb[1]

        ref = bb if names_from_b else ba
        proj_ref = ba if ba.dimensions is not None or not bb.dimensions else bb
        rank = max(ba.rank, bb.rank)
        bands.append(Band(ref.name, np.dtype(np.float64) if rank else dtype,
                          FuncNode(compute, [ba.node, bb.node]), proj_ref.projection,
                          proj_ref.dimensions, (0, 1) if rule == "bool" and not rank else None,
                          rank))  # fmt: skip
    return Image(tuple(bands))


def _register_binary(op: str) -> None:
    def image_op(image1: Any, image2: Any) -> Image:
        return binary(op, image1, image2)

    def number_op(left: Any, right: Any) -> Any:
        return number_binary(op, left, right)

    names = [f"Image.{op}"] + ([f"Image.{_SNAKE[op]}"] if op in _SNAKE else [])
    algorithm(*names)(image_op)
    algorithm(f"Number.{op}", *([f"Number.{_SNAKE[op]}"] if op in _SNAKE else []))(number_op)


def number_binary(op: str, left: Any, right: Any) -> Any:
    """The Number version of a binary operator on Python numbers."""
    if left is None or right is None:
        raise EngineError(f"Number.{op}: operand is null.")
    fn, rule = _BINARY[op]
    if rule == "bool":
        return int(bool(fn(np.asarray(left), np.asarray(right))))
    if rule == "float":
        return float(fn(np.asarray(float(left)), np.asarray(float(right))))
    if rule == "int":
        return int(fn(np.asarray(int(left)), np.asarray(int(right))))
    out = fn(np.asarray(left), np.asarray(right))
    if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
        return int(out)
    return float(out)


for _op in _BINARY:
    _register_binary(_op)


UnFn = Callable[[np.ndarray], np.ndarray]


def _round_half_up(a: np.ndarray) -> np.ndarray:
    """Earth Engine's round: the nearest integer, ties toward +infinity (10.5 -> 11).

    numpy's ``round`` rounds ties to even (10.5 -> 10), which Earth Engine does not.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "fc":
        return a
    return np.floor(a + a.dtype.type(0.5))


_UNARY: dict[str, tuple[UnFn, str]] = {
    "abs": (np.abs, "same"), "floor": (np.floor, "same"), "ceil": (np.ceil, "same"),
    "round": (_round_half_up, "same"), "signum": (np.sign, "same"),
    "sqrt": (np.sqrt, "float"), "exp": (np.exp, "float"), "log": (np.log, "float"),
    "log10": (np.log10, "float"), "sin": (np.sin, "float"), "cos": (np.cos, "float"),
    "tan": (np.tan, "float"), "asin": (np.arcsin, "float"), "acos": (np.arccos, "float"),
    "atan": (np.arctan, "float"), "sinh": (np.sinh, "float"), "cosh": (np.cosh, "float"),
    "tanh": (np.tanh, "float"), "cbrt": (np.cbrt, "float"),
    "gamma": (_special("gamma"), "float"), "digamma": (_special("digamma"), "float"),
    "trigamma": (_special("trigamma"), "float"),
    "not": (lambda a: a == 0, "bool"), "bitwiseNot": (np.invert, "same"),
}  # fmt: skip


def unary(op: str, value: Any) -> Image:
    """Apply a unary operator to every band (masks kept, properties dropped)."""
    fn, rule = _UNARY[op]
    image = as_image(value)
    bands = []
    for band in image.bands:
        dtype = {"bool": np.dtype(np.uint8), "float": float_of(band.dtype)}.get(rule, band.dtype)

        def compute(px: Pixels, _fn: UnFn = fn, _dt: np.dtype = dtype) -> Pixels:
            vals = px[0].astype(_dt, copy=False) if _dt.kind == "f" else px[0]
            with np.errstate(all="ignore"):
                out = _fn(vals)
            return np.asarray(out).astype(_dt, copy=False), px[1]

        bands.append(Band(band.name, dtype, FuncNode(compute, [band.node]), band.projection,
                          band.dimensions, (0, 1) if rule == "bool" and not band.rank else None,
                          band.rank))  # fmt: skip
    return Image(tuple(bands))


def _register_unary(op: str) -> None:
    def image_op(value: Any) -> Image:
        return unary(op, value)

    def number_op(input: Any) -> Any:
        fn, rule = _UNARY[op]
        out = fn(np.asarray(input))
        if rule == "bool":
            return int(bool(out))
        if op in ("round", "floor", "ceil") or isinstance(input, int):
            return int(out) if rule != "float" else float(out)
        return float(out)

    algorithm(f"Image.{op}", *(["Image.bitwise_not"] if op == "bitwiseNot" else []))(image_op)
    algorithm(f"Number.{op}", *(["Number.bitwise_not"] if op == "bitwiseNot" else []))(number_op)


for _op in _UNARY:
    _register_unary(_op)


@algorithm("Image.normalizedDifference")
def image_normalized_difference(input: Image, bandNames: list[str] | None = None) -> Image:
    """(first - second) / (first + second) of two bands, as band ``nd`` (0 where the sum is 0).

    As in Earth Engine, the output is masked where either input is negative, and the input
    image's properties are dropped.
    """
    bands = select_bands(input, bandNames) if bandNames else list(input.bands[:2])
    if len(bands) != 2:
        raise EngineError(
            f"Image.normalizedDifference: need exactly 2 bands, got {len(bands)} ({[b.name for b in bands]})."
        )
    a, b = bands
    dtype = np.dtype(np.float64) if np.float64 in (a.dtype, b.dtype) else np.dtype(np.float32)

    def compute(pa: Pixels, pb: Pixels) -> Pixels:
        va: np.ndarray = pa[0].astype(dtype, copy=False)
        vb: np.ndarray = pb[0].astype(dtype, copy=False)
        with np.errstate(all="ignore"):
            nd = _safe_divide(va - vb, va + vb).astype(dtype, copy=False)
        # Earth Engine masks the output where either input is negative (documented).
        return nd, pa[1] & pb[1] & (va >= 0) & (vb >= 0)

    return Image((Band("nd", dtype, FuncNode(compute, [a.node, b.node]), a.projection, a.dimensions),))


@algorithm("Image.clamp")
def image_clamp(input: Image, low: float, high: float) -> Image:
    """Clamp values to [low, high]."""
    return binary("min", binary("max", input, low), high)


@algorithm("Image.unitScale")
def image_unit_scale(input: Image, low: float, high: float) -> Image:
    """Linearly map [low, high] to [0, 1] (float)."""
    if high == low:
        raise EngineError("Image.unitScale: low and high must differ.")
    return binary("divide", binary("subtract", input, float(low)), float(high - low))


@algorithm("Number.clamp")
def number_clamp(number: float, min: float, max: float) -> float:
    """Clamp a number to [min, max]."""
    return type(number)(np.clip(number, min, max))


@algorithm("Number.unitScale")
def number_unit_scale(number: float, min: float, max: float) -> float:
    """Map [min, max] to [0, 1]."""
    return (number - min) / (max - min)


def _color_image(image: Any, fn: Callable[[np.ndarray], np.ndarray], names: tuple[str, str, str],
                 where: str) -> Image:  # fmt: skip
    img = as_image(image)
    if len(img.bands) != 3:
        raise EngineError(f"{where}: expected a 3-band image, got {len(img.bands)} bands.")
    nodes = [b.node for b in img.bands]

    def channel(i: int) -> Callable[..., Pixels]:
        def compute(*pxs: Pixels) -> Pixels:
            rgb = np.stack([np.asarray(v, dtype=np.float64) for v, _ in pxs], axis=-1)
            mask = np.logical_and.reduce([np.asarray(m) for _, m in pxs])
            return fn(rgb)[..., i], mask

        return compute

    first = img.bands[0]
    return Image(tuple(Band(name, np.dtype(np.float64), FuncNode(channel(i), nodes), first.projection,
                            first.dimensions) for i, name in enumerate(names)))  # fmt: skip


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    from matplotlib.colors import rgb_to_hsv

    return np.asarray(rgb_to_hsv(np.clip(rgb, 0, 1)))


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    from matplotlib.colors import hsv_to_rgb

    return np.asarray(hsv_to_rgb(np.clip(hsv, 0, 1)))


@algorithm("Image.rgbToHsv")
def image_rgb_to_hsv(image: Any) -> Image:
    """Red, green, blue in [0, 1] to bands ``hue``, ``saturation``, ``value`` in [0, 1]."""
    return _color_image(image, _rgb_to_hsv, ("hue", "saturation", "value"), "Image.rgbToHsv")


@algorithm("Image.hsvToRgb")
def image_hsv_to_rgb(image: Any) -> Image:
    """Hue, saturation, value in [0, 1] to bands ``red``, ``green``, ``blue`` in [0, 1]."""
    return _color_image(image, _hsv_to_rgb, ("red", "green", "blue"), "Image.hsvToRgb")
