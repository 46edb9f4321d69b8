"""Local-engine overhead on a monthly masked-median composite.

A 1000 x 1000 px, 72-date float32 stack (one year, 6 dates a month, ~35% of pixels masked)
is registered in the local catalog; twelve monthly medians are built with earthengine-api and
evaluated by the local engine in one computePixels request on the native grid. The reference
is a hand-written numpy masked median (NaN-fill, sort along time, pick the middle values) of
the same months from the raw arrays, run in the same process; the second reference is bottleneck's
``nanmedian`` of the same NaN-filled months (``ratio_vs_bottleneck``, goal <= 1.2). Prints one JSON line.

Usage: python benchmarks/engine_overhead.py [--size 1000] [--dates 72] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ee
import numpy as np

import gee_fusion
from gee_fusion.local.catalog import CATALOG, register_numpy_collection

ASSET = "bench/engine_overhead"
KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")


def make_stack(size: int, dates: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[datetime]]:
    """Seeded values, validity masks and acquisition times spread over one year."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.5, 0.2, (dates, size, size)).astype(np.float32)
    valid = rng.random((dates, size, size)) > 0.35
    per_month = max(dates // 12, 1)
    times = [datetime(2021, 1 + i // per_month, 1 + 4 * (i % per_month), 10, tzinfo=UTC)
             for i in range(dates)]  # fmt: skip
    return values, valid, times


def reference(
    values: np.ndarray, valid: np.ndarray, months: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Numpy masked median per month: (12, h, w) medians and validity."""
    out = np.zeros((len(months), *values.shape[1:]), dtype=np.float32)
    ok = np.zeros(out.shape, dtype=bool)
    for k, idx in enumerate(months):
        sub = np.where(valid[idx], values[idx], np.float32(np.nan))
        sub.sort(axis=0)
        n = valid[idx].sum(axis=0)
        lo = np.maximum((n - 1) // 2, 0)[None]
        hi = (n // 2)[None]
        med = (np.take_along_axis(sub, lo, 0)[0] + np.take_along_axis(sub, hi, 0)[0]) * np.float32(0.5)
        out[k] = np.where(n > 0, med, 0)
        ok[k] = n > 0
    return out, ok


def bottleneck_reference(values: np.ndarray, valid: np.ndarray, months: list[np.ndarray]) -> list[np.ndarray]:
    """The second reference: bottleneck's nanmedian of the NaN-filled months (no engine)."""
    import bottleneck

    return [bottleneck.nanmedian(np.where(valid[i], values[i], np.float32(np.nan)), axis=0) for i in months]


def engine_run(size: int, transform: tuple[float, ...]) -> np.ndarray:
    """Twelve monthly medians through earthengine-api + the local engine."""
    col = ee.ImageCollection(ASSET)
    months = []
    for m in range(12):
        start = ee.Date.fromYMD(2021, m + 1, 1)
        months.append(col.filterDate(start, start.advance(1, "month")).median().rename(f"m{m + 1:02d}"))
    stack = ee.ImageCollection.fromImages(months).toBands()
    grid = {"dimensions": {"width": size, "height": size},
            "affineTransform": dict(zip(KEYS, transform, strict=True)), "crsCode": "EPSG:32631"}  # fmt: skip
    out = ee.data.computePixels({"expression": stack, "fileFormat": "NUMPY_NDARRAY", "grid": grid})
    return np.stack([out[name] for name in out.dtype.names])


def measure(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall time of ``repeat`` runs, peak traced memory (MiB) of one run, last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, result


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--dates", type=int, default=72)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    gee_fusion.connect("local", register_samples=False)
    values, valid, times = make_stack(args.size, args.dates)
    transform = (10.0, 0.0, 360000.0, 0.0, -10.0, 5480000.0)
    register_numpy_collection(ASSET, {"v": values}, masks={"v": valid}, crs="EPSG:32631",
                              transform=transform, times=times)  # fmt: skip
    months = [np.array([i for i, t in enumerate(times) if t.month == m + 1]) for m in range(12)]

    ref_s, ref_mib, (ref, ref_ok) = measure(lambda: reference(values, valid, months), args.repeat)
    eng_s, eng_mib, eng = measure(lambda: engine_run(args.size, transform), args.repeat)
    with warnings.catch_warnings():  # all-NaN pixels are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        nan_s, _, _ = measure(
            lambda: [np.nanmedian(np.where(valid[i], values[i], np.nan), axis=0) for i in months], 1
        )
    bn_s, _, _ = measure(lambda: bottleneck_reference(values, valid, months), args.repeat)
    max_abs_diff = float(np.abs(np.where(ref_ok, eng - ref, 0)).max())
    CATALOG.unregister(ASSET)
    gee_fusion.disconnect()
    print(json.dumps({
        "benchmark": "engine_overhead", "size": args.size, "dates": args.dates, "months": 12,
        "engine_s": round(eng_s, 4), "numpy_s": round(ref_s, 4), "ratio": round(eng_s / ref_s, 3),
        "goal_ratio": 1.5, "engine_peak_mib": round(eng_mib, 1), "numpy_peak_mib": round(ref_mib, 1),
        "numpy_nanmedian_s": round(nan_s, 4), "bottleneck_s": round(bn_s, 4),
        "ratio_vs_bottleneck": round(eng_s / bn_s, 3), "goal_ratio_vs_bottleneck": 1.2,
        "max_abs_diff": max_abs_diff,
        "stack_mib": round(values.nbytes / 2**20, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
