"""The demo world's block files against a Zarr store: writing a block and reading its L2A group.

The disk cache (``gee_fusion/local/world/disk_cache.py``) keeps each generated Sentinel-2 block as
one uncompressed ``.npz`` written by ``npz.py`` (its fields at aligned offsets, an index of CRC-32Cs
in the archive comment), published by an atomic rename; a warm request reads the L2A group
(``sentinel2.GROUPS[0]``) of each block in one read. The alternative measured here is what issue 14
first named: a Zarr (v3) group per block, one array per field, one chunk each, uncompressed (the
cheapest Zarr layout for these fields).

``--blocks`` blocks of 2021 acquisitions are generated first (disk cache off); then each store
writes all of them, and reads the L2A group of each, ``--repeat`` times (best kept). Prints one JSON
line: milliseconds a block for each, and their ratios (``zarr_over_npz_write``,
``zarr_over_npz_read``), with the files a block takes in each store.

Usage: python benchmarks/block_store.py [--blocks 16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ["GEE_FUSION_WORLD_DISK_CACHE"] = "0"  # the blocks are generated, not read from a cache

import numpy as np
import zarr

from gee_fusion.local.world import npz, schedule, sentinel2
from gee_fusion.local.world.config import DEFAULT_WORLD


def best_ms(fn: Callable[[], None], n: int, repeat: int) -> float:
    """Best time of ``fn`` over ``repeat`` runs, in ms per block (``n`` blocks a run)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * min(times) / n


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    acqs = [k for k, a in enumerate(schedule.s2_acquisitions()) if a.when.year == 2021]
    blocks = [
        sentinel2._kept(sentinel2._s2_block(DEFAULT_WORLD, acqs[3 + k % 40], k % 4, (k // 4) % 4))
        for k in range(args.blocks)
    ]
    group = sentinel2.GROUPS[0]
    root = Path(tempfile.mkdtemp(prefix="gee_fusion_block_store_"))
    try:

        def npz_write() -> None:
            for k, fields in enumerate(blocks):
                tmp = root / f"b{k}.npz.tmp"
                with open(tmp, "wb") as fh:
                    npz.write(fh, fields)
                os.replace(tmp, root / f"b{k}.npz")

        def npz_read() -> None:
            for k in range(len(blocks)):
                arrays, _ = npz.read_part(root / f"b{k}.npz", group)
                assert len(arrays) == len(group)

        def zarr_write() -> None:
            for k, fields in enumerate(blocks):
                path = str(root / f"z{k}.zarr")
                zarr.open_group(path, mode="w")
                for name, arr in fields.items():
                    made = zarr.create_array(path, name=name, shape=arr.shape, dtype=arr.dtype,
                                             chunks=arr.shape, compressors=None)  # fmt: skip
                    made[...] = arr

        def zarr_read() -> None:
            for k in range(len(blocks)):
                store = zarr.open_group(str(root / f"z{k}.zarr"), mode="r")
                arrays = {}
                for name in group:
                    stored = store[name]
                    assert isinstance(stored, zarr.Array)
                    arrays[name] = np.asarray(stored[...])
                assert len(arrays) == len(group)

        n, r = len(blocks), args.repeat
        figures = {
            "npz_write_ms": best_ms(npz_write, n, r), "npz_read_l2a_ms": best_ms(npz_read, n, r),
            "zarr_write_ms": best_ms(zarr_write, n, r), "zarr_read_l2a_ms": best_ms(zarr_read, n, r),
        }  # fmt: skip
        zarr_files = sum(len(files) for _, _, files in os.walk(root / "z0.zarr"))
        print(json.dumps({
            "benchmark": "block_store", "blocks": n, "block_bytes": (root / "b0.npz").stat().st_size,
            **{k: round(v, 3) for k, v in figures.items()},
            "zarr_over_npz_write": round(figures["zarr_write_ms"] / figures["npz_write_ms"], 1),
            "zarr_over_npz_read": round(figures["zarr_read_l2a_ms"] / figures["npz_read_l2a_ms"], 1),
            "files_per_block": {"npz": 1, "zarr": zarr_files}, "zarr": zarr.__version__,
            "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
        }))  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
