"""Generation throughput of the demo world: one year of Sentinel-2 L2A through earthengine-api.

Every acquisition of ``--year`` in COPERNICUS/S2_SR_HARMONIZED (the local engine's procedural
demo world) is requested the way users consume it: one ``ee.data.computePixels`` request per
image, with the selected bands (default: the 13 spectral bands and SCL), on a ``--size`` x
``--size`` window of the world's 10 m lattice (20 m and 60 m bands come back resampled to
10 m). The block caches are cleared first, so the first request is cold: it also generates the
land cover of the window; its time is reported apart from the rest. Throughput is in
megapixel-bands per second, 10 m-equivalent: size^2 * bands * images / 1e6.

The baseline, measured in the same run, is the pure numpy cost of producing the same amount
of uint16 output: ``np.random.default_rng(0).integers`` of shape (bands, size, size) per image
(``numpy_fill``), and a memcpy of such an array per image (``numpy_copy``). Peak memory is the
process's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), read before
the requests and after them. The world's blocks are made by ``world_processes`` processes
(``GEE_FUSION_WORLD_PROCESSES``: this one and its helpers, once they have started) or, until then,
by ``world_workers`` threads (``GEE_FUSION_LOCAL_WORKERS``; docs/demo_world.md). Progress goes to
stderr; one JSON line goes to stdout.

The cold run fills the world's disk cache (``gee_fusion/local/world/disk_cache.py``) in a fresh
folder (``--cache-dir``, else a temporary folder removed at the end; no size bound). The same
requests then run again, warm, as a second process would meet them: every in-memory cache of the
world emptied (blocks, ground, land cover, relief, atmosphere, changes, wetness, truth), blocks read
from disk.
``warm_speedup_vs_cold`` is the cold run's time over the warm run's.

``cold_speedup_vs_v1`` compares the cold run with the v1 generator (the world before issue 14,
commit ``V1_REV``; ``--v1 REV`` another): its own ``benchmarks/demo_world.py`` runs the same
requests from a temporary git worktree of that commit in a child process, after this run, and
the figure is its cold time over this run's (null, with ``v1_error``, without git history).
``--city-year`` also runs the city-year job (``gee-fusion monthly`` on
``ee_scripts/configs/demo_city_monthly.yaml``: monthly NDVI medians of a year of Sentinel-2 over
the whole 12 x 12 km city) in a child process with a cold disk cache, and reports its peak RSS
(``city_year_peak_rss_mib``: the peak of the summed RSS of the job and the world's helper processes,
sampled every 50 ms, or the job's own ``ru_maxrss`` if larger) and time.

Usage: python benchmarks/demo_world.py [--size 1000] [--year 2021] [--bands B2,B3,B4,B8,SCL]
       [--col 0] [--row 0] [--max-images 0] [--repeat 3] [--cache-dir DIR] [--v1 REV] [--no-v1]
       [--city-year]
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ee
import numpy as np

import gee_fusion
from gee_fusion.ids import S2_SR_HARMONIZED as S2_SR
from gee_fusion.local import workers
from gee_fusion.local.world import (
    atmosphere,
    blocks,
    cache_info,
    changes,
    disk_cache,
    landcover,
    phenology,
    processes,
    relief,
    sentinel2,
)
from gee_fusion.local.world.blocks import BLOCK
from gee_fusion.local.world.config import DEFAULT_WORLD, PIXEL
from gee_fusion.local.world.surface import BANDS as SPECTRAL

DEFAULT_BANDS = (*SPECTRAL, "SCL")
V1_REV = "4618f90^"
"""The last commit of the v1 demo world (before the planted changes of issue 14)."""
ROOT = Path(__file__).resolve().parents[1]
KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def clear_world_caches() -> None:
    """Empty the demo world's in-process block caches (land cover, the blocks' Sentinel-2 ground
    and the products)."""
    blocks.PRODUCTS.clear()
    sentinel2.GROUNDS.clear()
    blocks.landcover_block_halo.cache_clear()
    blocks._landcover_block.cache_clear()


def clear_memory_caches() -> None:
    """Empty every in-process cache of the world (what a new process starts with), the
    acquisition calendars aside (the listing built them)."""
    clear_world_caches()
    for module in (atmosphere, changes, landcover, phenology, relief, sentinel2):
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def window_grid(col: int, row: int, size: int) -> dict[str, Any]:
    """computePixels grid of a size x size window of the world's 10 m lattice at (col, row)."""
    x0, y1 = DEFAULT_WORLD.origin
    transform = (PIXEL, 0.0, x0 + col * PIXEL, 0.0, -PIXEL, y1 - row * PIXEL)
    return {
        "dimensions": {"width": size, "height": size},
        "affineTransform": dict(zip(KEYS, transform, strict=True)),
        "crsCode": DEFAULT_WORLD.crs,
    }


def year_indices(year: int) -> list[str]:
    """``system:index`` of every S2 SR acquisition of ``year``, in time order."""
    col = ee.ImageCollection(S2_SR).filterDate(f"{year}-01-01", f"{year + 1}-01-01").sort("system:time_start")
    return [str(i) for i in col.aggregate_array("system:index").getInfo()]


def request(index: str, bands: list[str], grid: dict[str, Any]) -> np.ndarray:
    """One image, the selected bands, on the window grid: a structured (h, w) array."""
    image = ee.Image(f"{S2_SR}/{index}").select(bands)
    out = ee.data.computePixels({"expression": image, "fileFormat": "NUMPY_NDARRAY", "grid": grid})
    return np.asarray(out)


def baseline(images: int, bands: int, size: int, repeat: int) -> tuple[float, float]:
    """Best time over ``repeat`` runs of producing ``images`` uint16 (bands, size, size) arrays:
    with a seeded random fill, and with a memcpy of a ready array."""

    def fill() -> None:
        rng = np.random.default_rng(0)
        for _ in range(images):
            rng.integers(0, 10000, size=(bands, size, size), dtype=np.uint16)

    src = np.random.default_rng(1).integers(0, 10000, size=(bands, size, size), dtype=np.uint16)

    def copy() -> None:
        for _ in range(images):
            src.copy()

    def best(fn: Callable[[], None]) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(fill), best(copy)


def run_v1(rev: str, argv: list[str]) -> dict[str, Any]:
    """The v1 benchmark's JSON line: its own script, from a temporary worktree of ``rev``, in a
    child process (its world cache in a temporary folder)."""
    tmp = Path(tempfile.mkdtemp(prefix="gee_fusion_v1_"))
    tree = tmp / "tree"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                       check=True, capture_output=True, text=True)  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(tree), "GEE_FUSION_WORLD_CACHE_DIR": str(tmp / "cache")}
        done = subprocess.run([sys.executable, str(tree / "benchmarks" / "demo_world.py"), *argv], cwd=tree,
                              env=env, check=True, capture_output=True, text=True)  # fmt: skip
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


def tree_rss_mib(pid: int) -> float:
    """Summed resident set size of process ``pid`` and its descendants (the world's helper
    processes), from /proc (0 where there is none)."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry.name)] = float(fields.get("VmRSS", "0 kB").split()[0]) / 1024.0
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(rss.get(p, 0.0) for p in tree)


def run_city_year() -> dict[str, Any]:
    """Peak RSS and time of the city-year job (``gee-fusion monthly`` on the demo city's year) in a
    child process with a cold disk cache: the peak of the job's and its helper processes' summed RSS
    (sampled every 50 ms) and the job process's own peak (``ru_maxrss``)."""
    tmp = Path(tempfile.mkdtemp(prefix="gee_fusion_city_year_"))
    try:
        env = {**os.environ, "GEE_FUSION_WORLD_CACHE_DIR": str(tmp / "cache")}
        config = ROOT / "ee_scripts" / "configs" / "demo_city_monthly.yaml"
        code = "from gee_fusion.cli import app; app()"
        argv = [sys.executable, "-c", code, "monthly", str(config), "--out", str(tmp / "out")]
        t0 = time.perf_counter()
        with open(tmp / "stderr.txt", "w") as err:  # a file, not a pipe: the job's progress never blocks it
            job = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
            tree_peak = 0.0
            while job.poll() is None:
                tree_peak = max(tree_peak, tree_rss_mib(job.pid))
                time.sleep(0.05)
        seconds = time.perf_counter() - t0
        if job.returncode:
            stderr = (tmp / "stderr.txt").read_text()
            raise subprocess.CalledProcessError(job.returncode, "gee-fusion monthly", stderr=stderr)
        own = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        return {
            "city_year_peak_rss_mib": round(max(tree_peak, own), 1),
            "city_year_job_process_peak_rss_mib": round(own, 1),
            "city_year_seconds": round(seconds, 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def log(msg: str) -> None:
    """Progress to stderr."""
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1000, help="window side in 10 m pixels")
    parser.add_argument("--year", type=int, default=2021)
    parser.add_argument("--bands", default=",".join(DEFAULT_BANDS), help="comma-separated band names")
    parser.add_argument("--col", type=int, default=0, help="window's first column on the world lattice")
    parser.add_argument("--row", type=int, default=0, help="window's first row on the world lattice")
    parser.add_argument("--max-images", type=int, default=0, help="stop after this many images (0: all)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of the numpy baseline (best kept)")
    parser.add_argument(
        "--cache-dir", default=None, help="empty folder for the disk cache (default: a temporary one)"
    )
    parser.add_argument("--v1", default=V1_REV, help="commit of the v1 generator to compare with")
    parser.add_argument("--no-v1", action="store_true", help="skip the v1 comparison")
    parser.add_argument("--city-year", action="store_true", help="also measure the city-year job's peak RSS")
    args = parser.parse_args()
    bands = [b.strip() for b in args.bands.split(",") if b.strip()]
    n_world = DEFAULT_WORLD.size_px
    if args.size <= 0 or args.col < 0 or args.row < 0 or max(args.col, args.row) + args.size > n_world:
        parser.error(f"the window must lie inside the {n_world} x {n_world} px default world")

    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="gee_fusion_world_bench_")
    if args.cache_dir and os.path.isdir(cache_dir) and os.listdir(cache_dir):
        parser.error(f"--cache-dir {cache_dir} is not empty: the cold run needs an empty cache")
    if not args.cache_dir:
        atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    os.environ[disk_cache.ENV_DIR] = cache_dir
    os.environ[disk_cache.ENV_SWITCH] = "1"
    os.environ[disk_cache.ENV_MB] = str(10**7)  # no eviction: the warm run finds every block

    gee_fusion.connect("local", register_samples=False)
    t0 = time.perf_counter()
    indices = year_indices(args.year)  # builds the collection (properties of every acquisition)
    listing_s = time.perf_counter() - t0
    if args.max_images > 0:
        indices = indices[: args.max_images]
    if not indices:
        parser.error(f"no Sentinel-2 acquisition in {args.year}")
    grid = window_grid(args.col, args.row, args.size)
    blocks_per_side = [
        (start + args.size - 1) // BLOCK - start // BLOCK + 1 for start in (args.col, args.row)
    ]  # fmt: skip

    clear_world_caches()
    rss_before = peak_rss_mib()
    times: list[float] = []
    digests: list[bytes] = []
    for k, index in enumerate(indices):
        t = time.perf_counter()
        arr = request(index, bands, grid)
        times.append(time.perf_counter() - t)
        if arr.shape != (args.size, args.size) or list(arr.dtype.names or ()) != bands:
            raise RuntimeError(f"unexpected result for {index}: {arr.shape} {arr.dtype}")
        digests.append(hashlib.blake2b(arr.tobytes(), digest_size=16).digest())
        log(f"{k + 1}/{len(indices)} {index}: {times[-1]:.2f} s")
    rss_after = peak_rss_mib()
    cache = cache_info.info()

    clear_memory_caches()
    warm: list[float] = []
    for k, index in enumerate(indices):
        t = time.perf_counter()
        again = request(index, bands, grid)
        warm.append(time.perf_counter() - t)
        if hashlib.blake2b(again.tobytes(), digest_size=16).digest() != digests[k]:
            raise RuntimeError(f"the warm run's pixels of {index} differ from the cold run's")
        log(f"warm {k + 1}/{len(indices)} {index}: {warm[-1]:.2f} s")
    gee_fusion.disconnect()

    n = len(indices)
    fill_s, copy_s = baseline(n, len(bands), args.size, args.repeat)
    extra: dict[str, Any] = {"v1_rev": None if args.no_v1 else args.v1, "cold_speedup_vs_v1": None}
    if not args.no_v1:
        log(f"v1 generator ({args.v1}) on the same requests")
        argv = ["--size", str(args.size), "--year", str(args.year), "--bands", ",".join(bands),
                "--col", str(args.col), "--row", str(args.row), "--max-images", str(len(indices)),
                "--repeat", "1"]  # fmt: skip
        try:
            v1 = run_v1(args.v1, argv)
        except (subprocess.CalledProcessError, OSError, ValueError) as exc:
            extra["v1_error"] = str(getattr(exc, "stderr", "") or exc).strip().splitlines()[-1:]
        else:
            extra.update(v1_seconds=v1["seconds"], v1_mpx_bands_per_s=v1["mpx_bands_per_s"],
                         cold_speedup_vs_v1=round(float(v1["seconds"]) / sum(times), 2))  # fmt: skip
    if args.city_year:
        log("city-year job (gee-fusion monthly, demo_city_monthly.yaml)")
        extra.update(run_city_year())
    total_s = sum(times)
    mpx_bands = args.size**2 * len(bands) * n / 1e6
    rest = times[1:]
    rest_mpx = args.size**2 * len(bands) * len(rest) / 1e6
    print(json.dumps({
        "benchmark": "demo_world", "collection": S2_SR, "year": args.year, "size": args.size,
        "window": [args.col, args.row], "bands": len(bands), "band_names": bands, "images": n,
        "blocks_per_image": blocks_per_side[0] * blocks_per_side[1],
        "mpx_bands": round(mpx_bands, 3), "seconds": round(total_s, 3),
        "mpx_bands_per_s": round(mpx_bands / total_s, 3),
        "first_request_s": round(times[0], 3),
        "rest_s": round(sum(rest), 3),
        "rest_median_s": round(statistics.median(rest), 3) if rest else None,
        "rest_mpx_bands_per_s": round(rest_mpx / sum(rest), 3) if rest else None,
        "listing_s": round(listing_s, 3),
        "warm_s": round(sum(warm), 3), "warm_mpx_bands_per_s": round(mpx_bands / sum(warm), 3),
        "warm_speedup_vs_cold": round(total_s / sum(warm), 2),
        "disk_cache_mib": round(cache.bytes / 2**20, 1), "disk_cache_blocks": cache.blocks,
        "numpy_fill_s": round(fill_s, 4), "numpy_copy_s": round(copy_s, 4),
        "ratio_vs_numpy_fill": round(total_s / fill_s, 1),
        "ratio_vs_numpy_copy": round(total_s / copy_s, 1),
        "peak_rss_mib": round(rss_after, 1), "peak_rss_before_requests_mib": round(rss_before, 1),
        "memory": "resource.getrusage(RUSAGE_SELF).ru_maxrss (process peak RSS)",
        "cpus": os.cpu_count(), "world_workers": workers.count(), "world_processes": processes.count(),
        "loadavg_1m": round(os.getloadavg()[0], 2), **extra,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
