"""Helpers shared by the algorithm modules: promotion to images, pixel-type rules, dates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from dateutil import parser as dtparser

from gee_fusion.errors import EngineError
from gee_fusion.local.image import Band, ConstantNode, Image
from gee_fusion.local.values import Date

_WIDER: dict[np.dtype, np.dtype] = {
    np.dtype(np.bool_): np.dtype(np.int16),
    np.dtype(np.uint8): np.dtype(np.int16),
    np.dtype(np.int8): np.dtype(np.int16),
    np.dtype(np.uint16): np.dtype(np.int32),
    np.dtype(np.int16): np.dtype(np.int32),
    np.dtype(np.uint32): np.dtype(np.int64),
    np.dtype(np.int32): np.dtype(np.int64),
}


def constant_image(value: Any) -> Image:
    """Earth Engine's ``Image.constant``: one band named ``constant`` per value.

    An ``ee.Array`` value gives one array band holding that array in every pixel.
    """
    if isinstance(value, np.ndarray):
        arr = value.astype(np.float64)
        return Image((Band("constant", arr.dtype, ConstantNode(arr, arr.dtype), rank=arr.ndim),))
    values = value if isinstance(value, list) else [value]
    bands = []
    for i, v in enumerate(values):
        if isinstance(v, bool):
            v = int(v)
        if not isinstance(v, (int, float)):
            raise EngineError(f"Image.constant: expected numbers, got {type(v).__name__}.")
        dtype = np.min_scalar_type(v) if isinstance(v, int) else np.dtype(np.float64)
        if isinstance(v, int) and dtype.kind == "u" and v < 0:  # pragma: no cover (numpy quirk)
            dtype = np.dtype(np.int64)
        name = "constant" if len(values) == 1 else f"constant_{i}"
        bands.append(Band(name, np.dtype(dtype), ConstantNode(v, np.dtype(dtype)),
                          value_range=(v, v) if isinstance(v, int) else None))  # fmt: skip
    return Image(tuple(bands))


def as_image(value: Any) -> Image:
    """Promote a number (or list of numbers) to a constant image; images pass through."""
    if isinstance(value, Image):
        return value
    if value is None:
        raise EngineError("Expected an Image, got null (did a collection turn out empty?).")
    return constant_image(value)


def band_named(image: Image, name: str | None, where: str) -> Band:
    """The band called ``name`` (default: the first), with Earth Engine's message when missing."""
    if not image.bands:
        raise EngineError(f"{where}: the image has no bands.")
    names = [b.name for b in image.bands]
    chosen = name or names[0]
    if chosen not in names:
        raise EngineError(f"{where}: Pattern '{chosen}' did not match any bands.")
    return image.bands[names.index(chosen)]


def is_weak(band: Band) -> bool:
    """Whether a band is a scalar constant (takes its type from the other operand)."""
    return isinstance(band.node, ConstantNode)


def float_of(dtype: np.dtype) -> np.dtype:
    """The float type a computation on ``dtype`` produces (double only when needed)."""
    dtype = np.dtype(dtype)
    if dtype == np.float64 or dtype in (np.dtype(np.int32), np.dtype(np.uint32), np.dtype(np.int64)):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def promote(a: Band, b: Band, *, widen: bool = False) -> np.dtype:
    """Result pixel type of a binary arithmetic operation (Earth Engine-like, weak scalars)."""
    da, db = a.dtype, b.dtype
    if is_weak(a) and not is_weak(b):
        da, db = db, da
        a, b = b, a
    if is_weak(b) and not is_weak(a):
        value = b.node.value  # type: ignore[attr-defined]
        if da.kind == "f":
            return da
        if db.kind == "f" or isinstance(value, float):
            return float_of(da)
        out = np.promote_types(da, np.min_scalar_type(value))
        return _WIDER.get(out, out) if widen else out
    out = np.promote_types(da, db)
    if out == np.float16:
        return np.dtype(np.float32)
    if widen and out.kind in "biu":
        return _WIDER.get(out, out)
    return out


def to_millis(value: Any) -> float:
    """Milliseconds of a Date, a number of ms, or an ISO date string."""
    if isinstance(value, Date):
        return value.millis
    if isinstance(value, bool):
        raise EngineError("Expected a date, got a boolean.")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return parse_date(value).millis
    raise EngineError(f"Expected a date, got {type(value).__name__}.")


def comparable(value: Any) -> Any:
    """A value prepared for comparison in filters (dates become milliseconds)."""
    if isinstance(value, Date):
        return value.millis
    return value


def time_zone(timeZone: str | None) -> Any:
    """A tzinfo for an Earth Engine time-zone argument (None, 'UTC' and 'Z' mean UTC)."""
    return UTC if timeZone in (None, "UTC", "Z") else ZoneInfo(timeZone)


def from_datetime(value: datetime) -> Date:
    """An Earth Engine Date (whole milliseconds) from an aware datetime."""
    return Date(round(value.timestamp() * 1000.0))


def parse_date(value: str, timeZone: str | None = None) -> Date:
    """Parse an ISO-like date string (naive times are in ``timeZone``, default UTC)."""
    try:
        parsed = dtparser.isoparse(value)
    except ValueError:
        try:
            parsed = dtparser.parse(value)
        except (ValueError, OverflowError) as exc:
            raise EngineError(f"Date: cannot parse {value!r} as a date.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=time_zone(timeZone))
    return from_datetime(parsed)


def subsample(rows: list[Any], fraction: float, seed: int) -> list[Any]:
    """A seeded share ``fraction`` of ``rows`` (at least one), in their order; all when >= 1."""
    if float(fraction) >= 1:
        return rows
    rng = np.random.default_rng(int(seed))
    keep = np.sort(rng.choice(len(rows), max(1, round(fraction * len(rows))), replace=False))
    return [rows[i] for i in keep]


def feature_matrix(rows: list[Any], names: list[str], where: str) -> np.ndarray:
    """(features, properties) float values of ``names``; a missing one names the feature."""
    x = np.empty((len(rows), len(names)))
    for i, f in enumerate(rows):
        for j, k in enumerate(names):
            value = f.get(k)
            if value is None:
                raise EngineError(f"{where}: property '{k}' of feature '{f.id}' is missing.")
            x[i, j] = float(value)
    return x
