"""The local engine's answers to earthengine-api's server calls.

``compute_value`` answers ``ee.data.computeValue`` (what ``getInfo`` sends) with the JSON
shapes Earth Engine returns; ``compute_pixels`` answers ``ee.data.computePixels`` (what xee
sends) with a structured (h, w) numpy array, one field per band, or ``.npy`` bytes.
"""

from __future__ import annotations

import functools
import io
import math
from typing import Any

import ee
import numpy as np

from gee_fusion.errors import EngineError, GridError, NotSupportedError
from gee_fusion.grid import MAX_BANDS, REQUEST_BYTE_LIMIT, PixelGrid
from gee_fusion.local import workers
from gee_fusion.local.graph import evaluate
from gee_fusion.local.grid import request_grid
from gee_fusion.local.image import Image, PixelContext


def to_json(value: Any) -> Any:
    """Convert a local-engine value into Earth Engine's JSON result shape."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.ndarray):  # ee.Array values
        return to_json(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if hasattr(value, "to_info"):
        return to_json(value.to_info())
    raise EngineError(f"Cannot return a value of type {type(value).__name__} to the client.")


def encode(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict) and "values" in obj and "result" in obj:
        return obj
    return ee.serializer.encode(obj, for_cloud_api=True)


def _typed_errors(what: str, fn: Any, *args: Any) -> Any:
    """Run ``fn``; any error that is not already Earth Engine-typed becomes an EngineError."""
    try:
        return fn(*args)
    except ee.EEException:
        raise
    except Exception as exc:
        raise EngineError(f"{what} failed in the local engine: {type(exc).__name__}: {exc}") from exc


def compute_value(obj: Any) -> Any:
    """Evaluate an ee object (or an encoded expression) and return its JSON value."""
    return _typed_errors("computeValue", lambda: to_json(evaluate(encode(obj))))


def _as_image(value: Any) -> Image:
    if not isinstance(value, Image):
        raise EngineError(f"computePixels needs an Image expression, got {type(value).__name__}.")
    return value


def render(image: Image, grid: PixelGrid, *, band_ids: list[str] | None = None) -> np.ndarray:
    """Compute an image's bands in ``grid`` as a structured (h, w) array, one field per band.

    Masked pixels are 0, as in Earth Engine's NUMPY_NDARRAY responses (use ``unmask`` to
    choose another fill value, as xee does).
    """
    bands = list(image.bands)
    if band_ids:
        by_name = {b.name: b for b in bands}
        missing = [b for b in band_ids if b not in by_name]
        if missing:
            raise EngineError(f"computePixels: bandIds {missing} not in the image {list(by_name)}.")
        bands = [by_name[b] for b in band_ids]
    if not bands:
        raise EngineError("computePixels: the image has no bands (was the collection empty?).")
    arrays = [b.name for b in bands if b.rank]
    if arrays:
        raise EngineError(
            f"computePixels: band(s) {arrays} hold arrays; turn them into scalar bands with "
            "arrayFlatten() (or arrayGet / arrayProject first)."
        )
    if len(bands) > MAX_BANDS:
        raise EngineError(f"computePixels: {len(bands)} bands exceed the limit of {MAX_BANDS}.")
    nbytes = sum(np.dtype(b.dtype).itemsize for b in bands) * grid.width * grid.height
    if nbytes > REQUEST_BYTE_LIMIT:  # Earth Engine's own words, then what to do
        raise GridError(
            f"Total request size ({nbytes} bytes) must be less than or equal to {REQUEST_BYTE_LIMIT} bytes. "
            "Request fewer pixels or bands per call (gee_fusion.export plans requests within the limit)."
        )
    dtype = np.dtype([(b.name, b.dtype) for b in bands])
    ctx = PixelContext([b.node for b in bands])
    computed = [(band.name, *ctx.pixels(band.node, grid)) for band in bands]
    return interleave(dtype, grid.shape, computed)


INTERLEAVE_BYTES = 2**20
"""Rows of the structured result filled at a time (about this many bytes): every band's part of a
strip is written while the strip is in the CPU cache, instead of one pass over the whole result
per band."""


PARALLEL_BYTES = 4 * 2**20
"""Results of at least this many bytes are filled by the :mod:`~gee_fusion.local.workers` threads, a
run of strips each (a 1000 x 1000 px result of 14 bands: 9.6 ms in one thread, 5.7 ms in two)."""
RUNS_PER_THREAD = 4
"""Runs of strips a thread: a thread slowed by other work (the kernel writing the disk cache back,
say) leaves more of them to the others (one run a thread: 7-22 ms for the result above during a
cold year, four: 7-10 ms)."""


def interleave(dtype: np.dtype, shape: tuple[int, int], bands: list[tuple[str, Any, Any]]) -> np.ndarray:
    """The structured (h, w) array of ``bands`` ((name, values, validity) each), masked pixels 0."""
    out = np.empty(shape, dtype=dtype)
    h, w = shape
    step = max(1, INTERLEAVE_BYTES // max(1, w * dtype.itemsize))
    parts = []
    for name, vals, mask in bands:
        vals = np.broadcast_to(vals, shape)
        mask = np.asarray(mask, dtype=bool)
        parts.append((out[name], vals, None if _all_true(mask) else np.broadcast_to(mask, shape)))

    def fill(first: int, end: int) -> None:
        for r0 in range(first, end, step):
            rows = slice(r0, min(r0 + step, end))
            for field, vals, mask in parts:
                if mask is None:
                    field[rows] = vals[rows]
                else:
                    field[rows] = np.where(mask[rows], vals[rows], 0)

    n = workers.count() * RUNS_PER_THREAD if out.nbytes >= PARALLEL_BYTES else 1
    runs = [(h * k // n, h * (k + 1) // n) for k in range(n)]
    workers.run_all([functools.partial(fill, first, end) for first, end in runs if end > first])
    return out


def _all_true(mask: np.ndarray) -> bool:
    """Whether every pixel is valid (a broadcast constant is read from one element)."""
    if mask.size and all(stride == 0 for stride in mask.strides):
        return bool(mask.flat[0])
    return bool(mask.all())


def compute_pixels(params: dict[str, Any]) -> Any:
    """Answer ``ee.data.computePixels(params)`` locally."""
    return _typed_errors("computePixels", _compute_pixels, params)


def _band_ids(params: dict[str, Any]) -> list[str] | None:
    ids = params.get("bandIds")
    if ids is None:
        return None
    if isinstance(ids, str) or not all(isinstance(b, str) for b in ids):
        raise EngineError(f"computePixels: bandIds must be a list of band names, got {ids!r}.")
    if len(set(ids)) != len(ids):
        raise EngineError(f"computePixels: bandIds {ids} name a band more than once.")
    return list(ids)


def _compute_pixels(params: dict[str, Any]) -> Any:
    image = _as_image(evaluate(encode(params["expression"])))
    band_ids = _band_ids(params)
    if band_ids:
        by_name = {b.name: b for b in image.bands}
        missing = [b for b in band_ids if b not in by_name]
        if missing:
            raise EngineError(f"computePixels: bandIds {missing} not in the image {list(by_name)}.")
        image = image.with_bands([by_name[b] for b in band_ids])
    if "grid" in params and params["grid"] is not None:
        grid = request_grid(params["grid"])
    else:
        native = image.native_grid()
        if native is None:
            raise GridError(
                "computePixels: the image has no fixed grid (computed images default to "
                "EPSG:4326 at 1 degree): pass a 'grid' with dimensions, affineTransform and crsCode."
            )
        grid = native
    if params.get("visualizationOptions"):
        raise NotSupportedError("computePixels visualizationOptions are not supported locally yet.")
    arr = render(image, grid)
    fmt = str(params.get("fileFormat", "NUMPY_NDARRAY")).upper()
    if fmt == "NUMPY_NDARRAY":
        return arr
    if fmt == "NPY":
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()
    raise NotSupportedError(
        f"computePixels fileFormat {fmt!r} is not supported locally yet: use NUMPY_NDARRAY or NPY."
    )
