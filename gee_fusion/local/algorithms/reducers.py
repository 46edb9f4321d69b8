"""Reducers: the Reducer value, its per-pixel (stack) and per-column (list) forms, and the
algorithms that build them.

Per-pixel reductions skip masked pixels; a pixel with no valid input is masked in the output
(except for ``count``, which is 0 and valid there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:  # a well-kept C library for NaN-aware reductions; numpy below when absent
    import bottleneck as _bn
except ImportError:  # pragma: no cover
    _bn = None

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import float_of
from gee_fusion.local.registry import algorithm

_OUTPUTS = {
    "mean": ("mean",), "median": ("median",), "min": ("min",), "max": ("max",),
    "sum": ("sum",), "count": ("count",), "countEvery": ("count",), "first": ("first",),
    "last": ("last",), "firstNonNull": ("first",), "lastNonNull": ("last",),
    "minMax": ("min", "max"), "stdDev": ("stdDev",), "variance": ("variance",),
    "product": ("product",), "toList": ("list",), "mode": ("mode",),
    "frequencyHistogram": ("histogram",), "and": ("and",), "or": ("or",),
    "sampleStdDev": ("stdDev",), "sampleVariance": ("variance",), "countDistinct": ("count",),
}  # fmt: skip


ColumnFn = Callable[["Reducer", Sequence[Sequence[Any]]], dict[str, Any]]
#: Column reductions defined in other modules (fits, histograms, groups), by reducer kind.
COLUMN_KINDS: dict[str, ColumnFn] = {}


@dataclass(frozen=True)
class Reducer:
    """An Earth Engine reducer: a kind, its output names and parameters."""

    kind: str
    outputs: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    inputs: int = 1

    def to_info(self) -> dict[str, Any]:
        """A readable JSON form."""
        return {"type": "Reducer", "kind": self.kind, "outputs": list(self.outputs)}

    # -- per-pixel --------------------------------------------------------------------------
    def output_dtypes(self, dtype: np.dtype) -> list[np.dtype]:
        """Pixel type of each output for an input band of ``dtype``."""
        out: list[np.dtype] = []
        for name in self.outputs:
            if self.kind in ("count", "countEvery", "countDistinct"):
                out.append(np.dtype(np.int32))
            elif self.kind in ("mean", "median", "stdDev", "variance", "sampleStdDev",
                               "sampleVariance", "percentile"):  # fmt: skip
                out.append(float_of(dtype) if dtype.kind != "f" else dtype)
            elif self.kind == "sum" or self.kind == "product":
                out.append(dtype if dtype.kind == "f" else np.dtype(np.int64))
            elif self.kind in ("and", "or"):
                out.append(np.dtype(np.uint8))
            elif self.kind == "combine":
                raise EngineError(f"combined reducer output {name}: use reduce_stack")
            else:
                out.append(dtype)
        return out

    def reduce_stack(self, values: np.ndarray, valid: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Reduce a (n, h, w) stack along its first axis; one (values, mask) per output."""
        return reduce_stack(self, values, valid)

    # -- per-column -------------------------------------------------------------------------
    def reduce_columns(self, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """Reduce lists of values (one list per input) to a dictionary of outputs."""
        return reduce_columns(self, columns)


def _fill(dtype: np.dtype, high: bool) -> Any:
    if dtype.kind == "f":
        return np.inf if high else -np.inf
    info = np.iinfo(dtype)
    return info.max if high else info.min


def masked_median(values: np.ndarray, valid: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Median along axis 0 over valid entries (mean of the two middle values for even counts).

    bottleneck's selection-based ``nanmedian`` gives the same values as sorting (tested), faster;
    the sort below is the fallback without it.
    """
    work = np.where(valid, values.astype(dtype, copy=False), np.asarray(np.nan, dtype=dtype))
    if _bn is not None and dtype.kind == "f":
        return median_of_filled(work, dtype)
    n = valid.sum(axis=0)
    work.sort(axis=0)  # NaN (masked) sorts last
    lo = np.maximum((n - 1) // 2, 0)[None]
    hi = (n // 2)[None]
    hi = np.minimum(hi, values.shape[0] - 1)
    a = np.take_along_axis(work, lo, axis=0)[0]
    b = np.take_along_axis(work, hi, axis=0)[0]
    out = (a + b) * np.asarray(0.5, dtype=dtype)
    has = n > 0
    return np.where(has, out, 0).astype(dtype, copy=False), has


def median_of_filled(work: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Median along axis 0 of a float stack whose masked entries are NaN (values, validity)."""
    if _bn is None:  # pragma: no cover
        return masked_median(work, ~np.isnan(work), dtype)
    out = np.asarray(_bn.nanmedian(work, axis=0), dtype=dtype)
    has = ~np.isnan(out)  # NaN: no valid value at that pixel
    out[~has] = 0
    return out, has


def _squared_deviations(values: np.ndarray, valid: np.ndarray, mean: np.ndarray, acc_dt: Any) -> np.ndarray:
    """Sum over the valid entries of each pixel of (value - mean)^2, accumulated in ``acc_dt``.

    One layer at a time (no stack-sized temporaries); the layers are added in order, as a
    reduction along axis 0 adds them, so the result is the same to the last bit.
    """
    acc = np.zeros(values.shape[1:], dtype=acc_dt)
    dev = np.empty(values.shape[1:], dtype=np.result_type(values.dtype, mean.dtype))
    for layer, ok in zip(values, valid, strict=True):
        np.subtract(layer, mean, out=dev)
        np.multiply(dev, dev, out=dev)
        np.add(acc, dev.astype(acc_dt, copy=False), out=acc, where=ok)
    return acc


def reduce_stack(red: Reducer, values: np.ndarray, valid: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-pixel reduction of a (n, h, w) stack with its validity (implementation)."""
    if red.kind == "combine":
        first, second = red.params["reducers"]
        return first.reduce_stack(values, valid) + second.reduce_stack(values, valid)
    dtype = values.dtype
    (out_dt, *_) = red.output_dtypes(dtype)
    n = valid.sum(axis=0)
    has = n > 0
    k = red.kind
    if k in ("count", "countEvery"):
        cnt = n if k == "count" else np.full(n.shape, values.shape[0])
        return [(cnt.astype(np.int32), np.ones(n.shape, dtype=bool))]
    if k == "median":
        return [masked_median(values, valid, out_dt)]
    if k in ("mean", "sum", "variance", "stdDev", "sampleVariance", "sampleStdDev"):
        acc_dt = np.float64 if out_dt == np.float64 or (k == "sum" and out_dt.kind != "f") else out_dt
        if k == "sum" and out_dt.kind != "f":
            acc_dt = out_dt
        total = np.where(valid, values, 0).sum(axis=0, dtype=acc_dt)
        if k == "sum":
            return [(total.astype(out_dt, copy=False), has)]
        mean = total / np.maximum(n, 1)
        if k == "mean":
            return [(mean.astype(out_dt, copy=False), has)]
        sample = k.startswith("sample")
        var = _squared_deviations(values, valid, mean, acc_dt) / np.maximum(n - 1 if sample else n, 1)
        res = var if k.endswith("ariance") else np.sqrt(var)
        return [(res.astype(out_dt, copy=False), n > 1 if sample else has)]
    if k == "mode":
        return [_stack_mode(values, valid)]
    if k == "countDistinct":
        distinct = np.zeros(n.shape, dtype=np.int32)
        for i in range(values.shape[0]):  # count each value at its first valid occurrence
            seen = np.zeros(n.shape, dtype=bool)
            for j in range(i):
                seen |= valid[j] & (values[j] == values[i])
            distinct += valid[i] & ~seen
        return [(distinct, np.ones(n.shape, dtype=bool))]
    if k in ("min", "max", "minMax"):
        outs = []
        for which in ("min", "max") if k == "minMax" else (k,):
            fill = _fill(dtype, high=(which == "min"))
            arr = np.where(valid, values, fill)
            red_arr = arr.min(axis=0) if which == "min" else arr.max(axis=0)
            outs.append((np.where(has, red_arr, 0).astype(dtype, copy=False), has))
        return outs
    if k in ("first", "firstNonNull", "last", "lastNonNull"):
        if k in ("last", "lastNonNull"):
            idx = values.shape[0] - 1 - np.argmax(valid[::-1], axis=0)
        else:
            idx = np.argmax(valid, axis=0)
        picked = np.take_along_axis(values, idx[None], axis=0)[0]
        return [(np.where(has, picked, 0).astype(dtype, copy=False), has)]
    if k == "product":
        prod = np.where(valid, values, 1).prod(axis=0, dtype=out_dt)
        return [(prod, has)]
    if k in ("and", "or"):
        truth = np.where(valid, values != 0, k == "and")
        res = truth.all(axis=0) if k == "and" else truth.any(axis=0)
        return [(np.asarray(res).astype(np.uint8), has)]
    if k == "percentile":
        return _percentiles(red, values, valid, out_dt)
    raise EngineError(f"Reducer.{k} is not supported per pixel by the local engine yet.")


def _stack_mode(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent valid value per pixel; ties go to the smallest value."""
    best = np.zeros(values.shape[1:], dtype=values.dtype)
    best_count = np.zeros(values.shape[1:], dtype=np.int64)
    for i in range(values.shape[0]):
        count = np.zeros(values.shape[1:], dtype=np.int64)
        for j in range(values.shape[0]):
            count += valid[j] & (values[j] == values[i])
        count = np.where(valid[i], count, 0)
        better = (count > best_count) | ((count == best_count) & (count > 0) & (values[i] < best))
        best = np.where(better, values[i], best)
        best_count = np.where(better, count, best_count)
    return best, best_count > 0


def _percentiles(red: Reducer, values: np.ndarray, valid: np.ndarray,
                 dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    n = valid.sum(axis=0)
    work = np.where(valid, values.astype(dtype, copy=False), np.nan)
    work.sort(axis=0)
    has = n > 0
    outs = []
    for p in red.params["percentiles"]:
        # Earth Engine: nearest-rank on the sorted valid values
        rank = np.clip(np.ceil(p / 100.0 * n).astype(np.int64) - 1, 0, None)
        picked = np.take_along_axis(work, rank[None], axis=0)[0]
        outs.append((np.where(has, picked, 0).astype(dtype, copy=False), has))
    return outs


def reduce_columns(red: Reducer, columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Per-column reduction (for ``reduceColumns``, ``List.reduce`` and ``reduceRegion``)."""
    if red.kind in COLUMN_KINDS:
        return COLUMN_KINDS[red.kind](red, columns)
    if red.kind == "repeat":
        inner: Reducer = red.params["reducer"]
        results = [inner.reduce_columns([col]) for col in columns]
        return {name: [r[name] for r in results] for name in inner.outputs}
    if red.kind == "combine":
        first, second = red.params["reducers"]
        shared = red.params.get("sharedInputs", False)
        cols1 = columns if shared else columns[: first.inputs]
        cols2 = columns if shared else columns[first.inputs :]
        prefix = red.params.get("outputPrefix", "")
        out = first.reduce_columns(cols1)
        out.update({prefix + k: v for k, v in second.reduce_columns(cols2).items()})
        return out
    col = [v for v in columns[0] if v is not None]
    k = red.kind
    if k == "toList":
        if red.inputs > 1:
            return {"list": [list(row) for row in zip(*columns, strict=True)]}
        return {"list": list(col)}
    if k == "count":
        return {"count": len(col)}
    if k == "countDistinct":
        return {"count": len({_key(v) for v in col})}
    if k == "countEvery":
        return {"count": len(columns[0])}
    if k in ("first", "firstNonNull"):
        return {"first": col[0] if col else None}
    if k in ("last", "lastNonNull"):
        return {"last": col[-1] if col else None}
    if k == "frequencyHistogram":
        hist: dict[str, int] = {}
        for v in col:
            hist[_key(v)] = hist.get(_key(v), 0) + 1
        return {"histogram": hist}
    if not col:
        return {name: None for name in red.outputs}
    arr = np.asarray(col, dtype=np.float64)
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in col)
    if k == "mean":
        return {"mean": float(arr.mean())}
    if k == "median":
        return {"median": float(np.median(arr))}
    if k == "sum":
        return {"sum": int(arr.sum()) if ints else float(arr.sum())}
    if k in ("min", "max"):
        val = arr.min() if k == "min" else arr.max()
        return {k: int(val) if ints else float(val)}
    if k == "minMax":
        return {"min": int(arr.min()) if ints else float(arr.min()),
                "max": int(arr.max()) if ints else float(arr.max())}  # fmt: skip
    if k == "stdDev":
        return {"stdDev": float(arr.std())}
    if k == "variance":
        return {"variance": float(arr.var())}
    if k in ("sampleStdDev", "sampleVariance"):
        var = float(arr.var(ddof=1)) if len(arr) > 1 else None
        if k == "sampleVariance" or var is None:
            return {red.outputs[0]: var}
        return {red.outputs[0]: float(np.sqrt(var))}
    if k == "mode":
        counts: dict[float, int] = {}
        for v in arr.tolist():
            counts[v] = counts.get(v, 0) + 1
        top = max(counts.values())
        mode = min(v for v, c in counts.items() if c == top)
        return {"mode": int(mode) if ints else float(mode)}
    if k == "product":
        return {"product": float(arr.prod())}
    if k == "percentile":
        srt = np.sort(arr)
        names = red.outputs
        return {
            name: float(srt[max(int(np.ceil(p / 100.0 * len(srt))) - 1, 0)])
            for name, p in zip(names, red.params["percentiles"], strict=True)
        }
    raise EngineError(f"Reducer.{k} is not supported on columns by the local engine yet.")


def _key(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _simple(kind: str) -> Reducer:
    return Reducer(kind, _OUTPUTS[kind])


for _kind in ("mean", "count", "countEvery", "sum", "minMax", "stdDev", "variance",
              "product", "first", "last", "firstNonNull", "lastNonNull", "frequencyHistogram",
              "and", "or", "sampleStdDev", "sampleVariance", "countDistinct"):  # fmt: skip
    algorithm(f"Reducer.{_kind}")(lambda _k=_kind: _simple(_k))


@algorithm("Reducer.median")
def reducer_median(maxBuckets: int | None = None, minBucketWidth: float | None = None,
                   maxRaw: int | None = None) -> Reducer:  # fmt: skip
    """Median (exact in the local engine; Earth Engine may bucket large inputs)."""
    return _simple("median")


@algorithm("Reducer.mode")
def reducer_mode(maxBuckets: int | None = None, minBucketWidth: float | None = None,
                 maxRaw: int | None = None) -> Reducer:  # fmt: skip
    """Mode."""
    return _simple("mode")


@algorithm("Reducer.min")
def reducer_min(numInputs: int = 1) -> Reducer:
    """Minimum."""
    return _simple("min")


@algorithm("Reducer.max")
def reducer_max(numInputs: int = 1) -> Reducer:
    """Maximum."""
    return _simple("max")


@algorithm("Reducer.toList")
def reducer_to_list(tupleSize: int | None = None, numOptional: int = 0) -> Reducer:
    """Collect values into a list (tuples when ``tupleSize`` > 1)."""
    return Reducer("toList", ("list",), inputs=int(tupleSize or 1))


@algorithm("Reducer.percentile")
def reducer_percentile(percentiles: list[float], outputNames: list[str] | None = None,
                       maxBuckets: int | None = None, minBucketWidth: float | None = None,
                       maxRaw: int | None = None) -> Reducer:  # fmt: skip
    """Percentiles (nearest rank); outputs ``p<N>`` unless named."""
    for p in percentiles:
        if not 0 <= p <= 100:
            raise EngineError(f"Reducer.percentile: percentiles must lie in [0, 100], got {p}.")
    default = tuple(f"p{int(p) if float(p).is_integer() else p}" for p in percentiles)
    names = tuple(outputNames) if outputNames else default
    return Reducer("percentile", names, {"percentiles": list(percentiles)})


@algorithm("Reducer.repeat")
def reducer_repeat(reducer: Reducer, count: int) -> Reducer:
    """Apply ``reducer`` to ``count`` inputs independently; outputs become lists."""
    return Reducer("repeat", reducer.outputs, {"reducer": reducer}, inputs=int(count))


@algorithm("Reducer.combine")
def reducer_combine(reducer1: Reducer, reducer2: Reducer, outputPrefix: str = "",
                    sharedInputs: bool = False) -> Reducer:  # fmt: skip
    """Two reducers side by side (e.g. mean + stdDev); outputs of the second get the prefix."""
    outputs = reducer1.outputs + tuple(outputPrefix + o for o in reducer2.outputs)
    inputs = reducer1.inputs if sharedInputs else reducer1.inputs + reducer2.inputs
    params = {"reducers": (reducer1, reducer2), "outputPrefix": outputPrefix,
              "sharedInputs": sharedInputs}  # fmt: skip
    return Reducer("combine", outputs, params, inputs=inputs)


@algorithm("Reducer.unweighted")
def reducer_unweighted(reducer: Reducer) -> Reducer:
    """The same reducer (the local engine's region reductions are unweighted already)."""
    return reducer


@algorithm("Reducer.getOutputs")
def reducer_get_outputs(reducer: Reducer) -> list[str]:
    """Names of the reducer's outputs."""
    return list(reducer.outputs)


@algorithm("Reducer.setOutputs")
def reducer_set_outputs(reducer: Reducer, outputs: list[str]) -> Reducer:
    """Rename the outputs."""
    if len(outputs) != len(reducer.outputs):
        raise EngineError("Reducer.setOutputs: the number of names must match the outputs.")
    return Reducer(reducer.kind, tuple(outputs), reducer.params, reducer.inputs)
