"""Reducers over columns that fit, count or group: ``linearFit``, ``linearRegression``,
``centeredCovariance``, ``covariance``, ``fixedHistogram``, ``countDistinctNonNull`` and
``Reducer.group``.

They work on columns (``reduceRegion``, ``reduceColumns``, ``List.reduce``); each registers its
column function with :data:`gee_fusion.local.algorithms.reducers.COLUMN_KINDS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms.reducers import COLUMN_KINDS, Reducer, _key
from gee_fusion.local.registry import algorithm


def _rows(columns: Sequence[Sequence[Any]]) -> np.ndarray:
    """Rows where every input is present, as a float (n, inputs) array."""
    rows = [r for r in zip(*columns, strict=True) if all(v is not None for v in r)]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(columns))


# -- fits -----------------------------------------------------------------------------------


@algorithm("Reducer.linearFit")
def reducer_linear_fit() -> Reducer:
    """Least-squares y = scale * x + offset over (x, y) inputs: outputs ``scale`` and ``offset``."""
    return Reducer("linearFit", ("scale", "offset"), inputs=2)


def _linear_fit(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    xy = _rows(columns)
    if len(xy) < 2:
        return {"scale": None, "offset": None}
    x, y = xy[:, 0], xy[:, 1]
    dx = x - x.mean()
    denom = float((dx * dx).sum())
    scale = float((dx * (y - y.mean())).sum() / denom) if denom else 0.0
    return {"scale": scale, "offset": float(y.mean() - scale * x.mean())}


@algorithm("Reducer.linearRegression")
def reducer_linear_regression(numX: int, numY: int = 1) -> Reducer:
    """Ordinary least squares of ``numY`` outputs on ``numX`` inputs (include a constant band for an
    intercept): ``coefficients`` (numX x numY) and ``residuals`` (root mean square, one per y)."""
    return Reducer("linearRegression", ("coefficients", "residuals"), {"numX": int(numX)},
                   inputs=int(numX) + int(numY))  # fmt: skip


def _linear_regression(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    rows = _rows(columns)
    nx = red.params["numX"]
    x, y = rows[:, :nx], rows[:, nx:]
    if len(rows) < nx:
        return {"coefficients": None, "residuals": None}
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    rms = np.sqrt(((y - x @ coef) ** 2).mean(axis=0))
    return {"coefficients": coef, "residuals": rms}


@algorithm("Reducer.centeredCovariance")
def reducer_centered_covariance() -> Reducer:
    """N x N covariance of 1-D arrays of length N that are already mean-centred
    (sum of x x^T over n - 1, the mean is not subtracted), output ``array``."""
    return Reducer("centeredCovariance", ("array",))


def _centered_covariance(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    vectors = [np.asarray(v, dtype=np.float64).ravel() for v in columns[0] if v is not None]
    if len(vectors) < 2:
        return {"array": None}
    lengths = {len(v) for v in vectors}
    if len(lengths) != 1:
        raise EngineError("Reducer.centeredCovariance: all arrays must have the same length.")
    x = np.stack(vectors)
    return {"array": x.T @ x / (len(x) - 1)}


@algorithm("Reducer.covariance")
def reducer_covariance(numInputs: int = 2) -> Reducer:
    """Sample covariance matrix (numInputs x numInputs) of the inputs, output ``covariance``."""
    return Reducer("covariance", ("covariance",), inputs=int(numInputs))


def _covariance(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    rows = _rows(columns)
    if len(rows) < 2:
        return {"covariance": None}
    return {"covariance": np.atleast_2d(np.cov(rows, rowvar=False, ddof=1))}


# -- histograms and distinct counts ---------------------------------------------------------


@algorithm("Reducer.fixedHistogram")
def reducer_fixed_histogram(min: float, max: float, steps: int, cumulative: bool = False) -> Reducer:
    """Counts in ``steps`` equal buckets of [min, max): a steps x 2 array of (bucket start, count)."""
    if int(steps) <= 0 or not max > min:
        raise EngineError("Reducer.fixedHistogram: steps must be positive and max greater than min.")
    return Reducer("fixedHistogram", ("histogram",),
                   {"min": float(min), "max": float(max), "steps": int(steps),
                    "cumulative": bool(cumulative)})  # fmt: skip


def _fixed_histogram(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    lo, hi, steps = red.params["min"], red.params["max"], red.params["steps"]
    values = np.asarray([v for v in columns[0] if v is not None], dtype=np.float64)
    width = (hi - lo) / steps
    inside = values[(values >= lo) & (values < hi)]
    idx = np.minimum(((inside - lo) / width).astype(np.int64), steps - 1)
    counts = np.bincount(idx, minlength=steps).astype(np.float64)
    if red.params["cumulative"]:
        counts = np.cumsum(counts)
    starts = lo + width * np.arange(steps)
    return {"histogram": np.stack([starts, counts], axis=1)}


@algorithm("Reducer.histogram")
def reducer_histogram(maxBuckets: int | None = None, minBucketWidth: float | None = None,
                      maxRaw: int | None = None) -> Reducer:  # fmt: skip
    """Histogram with power-of-two bucket widths (or ``minBucketWidth`` times a power of two), the
    narrowest that covers the values in at most ``maxBuckets`` (rounded up to a power of two,
    256 by default) buckets starting at a multiple of the width. Outputs ``histogram`` (counts),
    ``bucketMin``, ``bucketWidth`` and ``bucketMeans``."""
    limit = 256 if maxBuckets is None else 1 << max(int(maxBuckets) - 1, 0).bit_length()
    return Reducer("histogram", ("histogram",),
                   {"maxBuckets": limit, "minBucketWidth": minBucketWidth})  # fmt: skip


def _histogram(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    values = np.asarray([v for v in columns[0] if v is not None], dtype=np.float64)
    if not values.size:
        return {"histogram": None}
    lo, hi, limit = float(values.min()), float(values.max()), red.params["maxBuckets"]
    base = red.params["minBucketWidth"]
    # start from the narrowest power of two (possibly below 1) or from minBucketWidth, then widen
    width = 2.0 ** np.floor(np.log2(max((hi - lo) / limit, 1e-12))) if base is None else float(base)
    while np.floor(hi / width) - np.floor(lo / width) + 1 > limit:
        width *= 2
    start = np.floor(lo / width) * width
    n = int(np.floor(hi / width) - np.floor(lo / width)) + 1
    index = np.minimum(((values - start) / width).astype(np.int64), n - 1)
    counts = np.bincount(index, minlength=n)
    sums = np.bincount(index, weights=values, minlength=n)
    with np.errstate(all="ignore"):
        means = np.where(counts > 0, sums / counts, start + width * (np.arange(n) + 0.5))
    return {"histogram": {"histogram": counts.tolist(), "bucketMin": start, "bucketWidth": width,
                          "bucketMeans": means.tolist()}}  # fmt: skip


@algorithm("Reducer.countDistinctNonNull")
def reducer_count_distinct_non_null() -> Reducer:
    """Number of distinct non-null values, output ``count``."""
    return Reducer("countDistinctNonNull", ("count",))


def _count_distinct_non_null(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    return {"count": len({_key(v) for v in columns[0] if v is not None})}


# -- grouping -------------------------------------------------------------------------------


@algorithm("Reducer.group")
def reducer_group(reducer: Reducer, groupField: int = 0, groupName: str = "group") -> Reducer:
    """Group the other inputs by the value of input ``groupField``; apply ``reducer`` per group.

    The output ``groups`` is a list of dictionaries (``groupName`` and the reducer's outputs),
    ordered by group value.
    """
    return Reducer("group", ("groups",),
                   {"reducer": reducer, "groupField": int(groupField), "groupName": groupName},
                   inputs=reducer.inputs + 1)  # fmt: skip


def _group(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    inner: Reducer = red.params["reducer"]
    field = red.params["groupField"]
    if not 0 <= field < len(columns):
        raise EngineError(f"Reducer.group: groupField {field} is out of range for {len(columns)} inputs.")
    keys = columns[field]
    others = [c for i, c in enumerate(columns) if i != field]
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        if k is not None:
            groups.setdefault(k, []).append(i)
    out = []
    for k in sorted(groups):
        rows = groups[k]
        result = inner.reduce_columns([[col[i] for i in rows] for col in others])
        value = int(k) if isinstance(k, float) and k.is_integer() else k
        out.append({red.params["groupName"]: value, **result})
    return {"groups": out}


COLUMN_KINDS.update({
    "linearFit": _linear_fit, "linearRegression": _linear_regression,
    "centeredCovariance": _centered_covariance, "covariance": _covariance,
    "fixedHistogram": _fixed_histogram, "countDistinctNonNull": _count_distinct_non_null,
    "group": _group, "histogram": _histogram,
})  # fmt: skip


# -- per pixel (ImageCollection.reduce with a multi-input reducer) ---------------------------


def stack_fit(
    red: Reducer, values: np.ndarray, valid: np.ndarray
) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """Per-pixel ``linearFit`` / ``linearRegression`` of a (n images, inputs, h, w) stack.

    Returns ``(output name, values, mask, array rank)`` per output; an image counts at a pixel when
    all its inputs are valid there.
    """
    ok = np.asarray(valid.all(axis=1))  # (n, h, w)
    x = np.where(ok[:, None], values.astype(np.float64), 0.0)
    n = ok.sum(axis=0).astype(np.float64)
    if red.kind == "linearFit":
        sx, sy = x[:, 0].sum(0), x[:, 1].sum(0)
        sxx, sxy = (x[:, 0] ** 2).sum(0), (x[:, 0] * x[:, 1]).sum(0)
        with np.errstate(all="ignore"):
            denom = n * sxx - sx * sx
            scale = np.where(denom != 0, (n * sxy - sx * sy) / denom, 0.0)
            offset = (sy - scale * sx) / n
        has = n >= 2
        return [("scale", np.where(has, scale, 0.0), has, 0), ("offset", np.where(has, offset, 0.0), has, 0)]
    if red.kind == "linearRegression":
        nx = red.params["numX"]
        xs = np.moveaxis(x[:, :nx], (0, 1), (-2, -1))  # (h, w, n, nx)
        ys = np.moveaxis(x[:, nx:], (0, 1), (-2, -1))  # (h, w, n, ny)
        xtx = np.swapaxes(xs, -1, -2) @ xs
        xty = np.swapaxes(xs, -1, -2) @ ys
        has = (n >= nx) & (np.abs(np.linalg.det(xtx)) > 1e-12)
        safe = np.where(has[..., None, None], xtx, np.eye(nx))
        coef = np.linalg.solve(safe, xty)
        with np.errstate(all="ignore"):
            resid = ys - xs @ coef
            rms = np.sqrt((resid**2).sum(axis=-2) / n[..., None])
        return [("coefficients", coef, has, 2), ("residuals", rms, has, 1)]
    raise EngineError(
        f"ImageCollection.reduce: Reducer.{red.kind} with {red.inputs} inputs is not supported per pixel "
        "by the local engine yet (linearFit and linearRegression are)."
    )
