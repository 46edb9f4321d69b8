"""Peak memory of building a patch store, streamed through the exporter vs the whole area in memory.

Over the demo world (S2 + S1 monthly stacks, labels, WorldCover prior), for an area and one 4 x
larger: ``export_patches`` (the streamed path) and, as the baseline in the same run,
``fetch_area`` (every sensor's stack of the whole area in memory through xee, what the patch
exporter did before). Each case runs in its own process so its peak RSS is its own. The demo
world's own block cache (``GEE_FUSION_WORLD_CACHE_MB``, 256 MiB by default) grows with the area
until full; ``--world-cache-mb`` caps it so the figures show the patch path's memory. Prints one
JSON line; the goal is a streamed peak that stays about the same when the area grows 4 x.

Usage: python benchmarks/patch_store.py [--side 512] [--months 6 7 8 9] [--world-cache-mb 128]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_case(kind: str, side: int, months: list[int]) -> dict[str, Any]:
    """One case in this process: ``streamed`` (export_patches) or ``whole`` (fetch_area)."""
    import gee_fusion
    from gee_fusion.export.area import AreaConfig
    from gee_fusion.export.patches import PatchExportConfig, export_patches, fetch_area
    from gee_fusion.local.world.config import DEFAULT_WORLD

    gee_fusion.connect("local", register_samples=False)
    x0, y1 = DEFAULT_WORLD.origin
    cfg = PatchExportConfig(
        area=AreaConfig(origin=(x0 + 1000.0, y1 - 1000.0), size_px=(side, side)), months=months, patch_size=64
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "streamed":
            export_patches(cfg, Path(tmp) / "p.zarr", progress=False)
        else:
            fetch_area(cfg, progress=False)
    return {
        "kind": kind, "side_px": side, "seconds": round(time.perf_counter() - t0, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=512, help="side of the smaller area (px)")
    parser.add_argument("--months", type=int, nargs="+", default=[6, 7, 8, 9])
    parser.add_argument("--world-cache-mb", type=int, default=None, help="cap the demo world's cache")
    parser.add_argument("--kinds", nargs="+", default=["whole", "streamed"], choices=["whole", "streamed"])
    parser.add_argument("--run", nargs=2, metavar=("KIND", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_case(args.run[0], int(args.run[1]), args.months)))
        return
    results = []
    for side in (args.side, 2 * args.side):
        for kind in args.kinds:
            cmd = [sys.executable, str(Path(__file__)), "--run", kind, str(side), "--months",
                   *map(str, args.months)]  # fmt: skip
            env = dict(os.environ)
            if args.world_cache_mb is not None:
                env["GEE_FUSION_WORLD_CACHE_MB"] = str(args.world_cache_mb)
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(results[-1], file=sys.stderr)
    peak = {(r["kind"], r["side_px"]): r["peak_rss_mib"] for r in results}
    small, big = args.side, 2 * args.side
    figures: dict[str, Any] = {}
    for kind in args.kinds:
        figures[f"{kind}_growth_4x_area"] = round(peak[(kind, big)] / peak[(kind, small)], 2)
    if len(args.kinds) == 2:
        figures["streamed_vs_whole_4x_area"] = round(peak[("streamed", big)] / peak[("whole", big)], 2)
    print(json.dumps({
        "benchmark": "patch_store", "months": args.months, "world_cache_mb": args.world_cache_mb,
        "cases": results, **figures,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
