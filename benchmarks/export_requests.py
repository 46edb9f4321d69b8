"""computePixels requests of a planned export vs xee's defaults, with wall time and peak memory.

Cases (through the local engine, on cheap synthetic sources: the point is the plan and the
streaming, not the pixels):
  (a) a 20-band float32 single-date stack of 3000 x 3000 px;
  (b) a 14-band, 12-month float32 series (one 168-band image, ``toBands()``) of 1000 x 1000 px;
and the same two over an area 4 x larger. For each: the requests the exporter made (counted by a
wrapper around ``ee.data.computePixels``), ``min_requests`` at 48 MiB, ``xee_default_requests``
measured in the same run by opening the source with xee's defaults and computing every chunk
(counted by the same wrapper), their ratio, wall time and peak RSS. Each case runs in its own
process so peak memory is its own. Prints one JSON line.

Usage: python benchmarks/export_requests.py [--scale 1.0] [--workers 8] [--skip-xee]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CASES = {"a": (3000, 20, 1), "b": (1000, 14, 12)}  # side px, bands, months


def _source(bands: int, months: int) -> tuple[Any, Any]:
    """(the image to export, the same data as xee opens it: one image, or the monthly collection)."""
    import ee

    def month(m: int) -> ee.Image:
        img = ee.Image.constant([float(b + 100 * m) for b in range(bands)]).toFloat()
        img = img.rename([f"b{b:02d}" for b in range(bands)])
        return img.set("system:time_start", int(time.mktime((2021, m + 1, 1, 0, 0, 0, 0, 0, 0)) * 1000))

    collection = ee.ImageCollection([month(m) for m in range(months)])
    image = month(0) if months == 1 else collection.toBands()
    return image, collection


def run_case(case: str, side: int, workers: int, xee: bool) -> dict[str, Any]:
    """One case in this process: export, then (optionally) xee's default chunked reads."""
    import ee
    import xarray as xr

    import gee_fusion
    from gee_fusion.export.image_export import export_image
    from gee_fusion.export.plan import xee_default_requests
    from gee_fusion.grid import PixelGrid

    gee_fusion.connect("local", register_samples=False)
    _, bands, months = CASES[case]
    grid = PixelGrid("EPSG:32631", (10.0, 0.0, 356000.0, 0.0, -10.0, 5484000.0), side, side)
    image, collection = _source(bands, months)
    real = ee.data.computePixels
    counter = {"n": 0}

    def counting(params: dict[str, Any]) -> Any:
        counter["n"] += 1
        return real(params)

    ee.data.computePixels = counting
    out: dict[str, Any] = {"case": case, "side_px": side, "bands": bands * months}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = export_image(
            image, grid, tmp, name=case, formats=("zarr", "cog"), workers=workers, progress=False
        )
        out["export_s"] = round(time.perf_counter() - t0, 2)
    out["requests"] = counter["n"]
    out["min_requests"] = result.plan.min_requests
    out["requests_ratio"] = round(counter["n"] / result.plan.min_requests, 3)
    out["tile_px"] = [result.plan.tile_height, result.plan.tile_width]
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["xee_default_requests_expected"] = xee_default_requests(grid, bands=bands, images=months)
    if xee:
        import dask

        counter["n"] = 0
        t0 = time.perf_counter()
        ds = xr.open_dataset(
            collection, engine="ee", crs=grid.crs, crs_transform=grid.transform,
            shape_2d=(grid.width, grid.height), chunks={},
        )  # fmt: skip
        for name in ds.data_vars:  # every chunk of every variable, one at a time (bounded memory)
            for block in ds[name].data.to_delayed().ravel():
                dask.compute(block, scheduler="threads", num_workers=workers)
        out["xee_default_requests"] = counter["n"]
        out["xee_s"] = round(time.perf_counter() - t0, 2)
        out["xee_vs_ours"] = round(counter["n"] / max(out["requests"], 1), 1)
    ee.data.computePixels = real
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the case sides (0.25 for a quick run)"
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--skip-xee", action="store_true", help="do not measure xee's default requests")
    parser.add_argument("--run", nargs=2, metavar=("CASE", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_case(args.run[0], int(args.run[1]), args.workers, not args.skip_xee)))
        return
    results = []
    for case, (side, _, _) in CASES.items():
        for factor in (1, 2):  # the area, then 4 x the area
            base = max(16, round(side * args.scale))
            cmd = [sys.executable, str(Path(__file__)), "--run", case, str(base * factor),
                   "--workers", str(args.workers)]  # fmt: skip
            if args.skip_xee or factor == 2:  # xee on the 4 x area: the expected count only (too slow)
                cmd.append("--skip-xee")
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{case} x{factor * factor}: {results[-1]}", file=sys.stderr)
    print(json.dumps({
        "benchmark": "export_requests", "workers": args.workers, "scale": args.scale, "cases": results,
        "max_requests_ratio": max(r["requests_ratio"] for r in results),
        "max_peak_rss_mib": max(r["peak_rss_mib"] for r in results),
        "goals": {"requests_ratio": 1.25, "peak_rss_mib": 1536},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
