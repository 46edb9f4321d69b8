"""``AggregateFeatureCollection.*``: the ``aggregate_*`` statistics of a collection property."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import comparable
from gee_fusion.local.registry import algorithm


def _values(collection: Any, property: str) -> list[Any]:
    if not hasattr(collection, "elements"):
        raise EngineError(f"aggregate_*: expected a collection, got {type(collection).__name__}.")
    return [e.get(property) for e in collection.elements if e.get(property) is not None]


def _numbers(values: list[Any], what: str) -> np.ndarray:
    try:
        return np.asarray([comparable(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EngineError(f"aggregate_{what}: the property values are not numbers.") from exc


def _stats(arr: np.ndarray) -> dict[str, Any]:
    n = int(arr.size)
    return {
        "max": float(arr.max()) if n else None, "mean": float(arr.mean()) if n else None,
        "min": float(arr.min()) if n else None, "sample_sd": float(arr.std(ddof=1)) if n > 1 else 0.0,
        "sample_var": float(arr.var(ddof=1)) if n > 1 else 0.0, "sum": float(arr.sum()),
        "sum_sq": float((arr * arr).sum()), "total_count": n, "total_sd": float(arr.std()) if n else 0.0,
        "total_var": float(arr.var()) if n else 0.0, "valid_count": n, "weight_sum": float(n),
        "weighted_sum": float(arr.sum()),
    }  # fmt: skip


def _histogram(values: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        key = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        out[key] = out.get(key, 0) + 1
    return out


def _sum(vals: list[Any]) -> Any:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return sum(vals)
    return float(_numbers(vals, "sum").sum())


_AGGS: dict[str, Callable[[list[Any]], Any]] = {
    "array": lambda vals: vals,
    "first": lambda vals: vals[0] if vals else None,
    "count": len,
    "count_distinct": lambda vals: len({repr(v) for v in vals}),
    "min": lambda vals: min(vals, key=comparable) if vals else None,
    "max": lambda vals: max(vals, key=comparable) if vals else None,
    "mean": lambda vals: float(_numbers(vals, "mean").mean()) if vals else None,
    "sum": _sum,
    "product": lambda vals: float(np.prod(_numbers(vals, "product"))),
    "sample_sd": lambda vals: float(_numbers(vals, "sample_sd").std(ddof=1)) if len(vals) > 1 else 0.0,
    "sample_var": lambda vals: float(_numbers(vals, "sample_var").var(ddof=1)) if len(vals) > 1 else 0.0,
    "total_sd": lambda vals: float(_numbers(vals, "total_sd").std()) if vals else 0.0,
    "total_var": lambda vals: float(_numbers(vals, "total_var").var()) if vals else 0.0,
    "stats": lambda vals: _stats(_numbers(vals, "stats")),
    "histogram": _histogram,
}

for _name, _fn in _AGGS.items():
    algorithm(f"AggregateFeatureCollection.{_name}")(
        lambda collection, property, _f=_fn: _f(_values(collection, property))
    )
