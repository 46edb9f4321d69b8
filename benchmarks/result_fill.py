"""The floor of a warm computePixels request: writing the bands into the structured result.

A ``NUMPY_NDARRAY`` answer is a structured (height, width) array, one field per band: every pixel
holds all its bands side by side, so each band is written with strides of the pixel's size (27
bytes for the 13 Sentinel-2 bands and SCL). ``benchmarks/demo_world.py``'s warm goal
(``warm_speedup_vs_cold`` 10) needs a whole warm request under about 17 ms an image on the 2-core
machine, reads of the blocks included; this measures what the writes alone cost, on a
``--size`` x ``--size`` result of those 14 bands (random data, the cold and warm requests' shape),
in the ways the engine writes them or could:

- ``memcpy_ms``: a contiguous copy of as many bytes (the baseline, measured in the same run);
- ``interleave_ms`` / ``interleave_one_thread_ms``: the engine's fill
  (``gee_fusion.local.server.interleave``) from ready full-window bands, with the pool's threads
  and with one;
- ``band_major_ms``: each band written into its field in one pass over the whole result;
- ``from_blocks_ms``: straight from 256 x 256 blocks, as a source that skips the window arrays
  would write them: the 4 bands at 10 m copied, the 7 at 20 m upsampled from 128 x 128 block
  fields, the 3 at 60 m from a window of 60 m means (nearest sampling into the strided fields).

Best of ``--repeat`` runs each. Prints one JSON line.

Usage: python benchmarks/result_fill.py [--size 1000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np

from gee_fusion.local import server, workers
from gee_fusion.local.grid import take_columns

BLOCK = 256
AT_10M = ("B2", "B3", "B4", "B8")
AT_20M = ("B5", "B6", "B7", "B8A", "B11", "B12", "SCL")
AT_60M = ("B1", "B9", "B10")
ORDER = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12", "SCL")


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    """Best time of ``fn`` over ``repeat`` runs, in ms."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * min(times)


def upsample_into(coarse: np.ndarray, out: np.ndarray, factor: int) -> None:
    """Nearest sampling of ``coarse`` onto ``out``, ``factor`` times finer and aligned at (0, 0):
    columns repeated once, then each of the ``factor`` row phases written from the same rows."""
    wide = take_columns(coarse, np.arange(out.shape[1]) // factor)
    for phase in range(min(factor, out.shape[0])):
        rows = out[phase::factor]
        rows[...] = wide[: rows.shape[0]]


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n, rng = args.size, np.random.default_rng(0)
    dtype = np.dtype([(b, np.uint8 if b == "SCL" else np.uint16) for b in ORDER])
    bands = {b: rng.integers(0, 200, (n, n)).astype(dtype[b]) for b in ORDER}
    nb = -(-n // BLOCK)
    at10 = {(bx, by): {b: bands[b][by * BLOCK : (by + 1) * BLOCK, bx * BLOCK : (bx + 1) * BLOCK].copy()
                       for b in AT_10M} for bx in range(nb) for by in range(nb)}  # fmt: skip
    half = BLOCK // 2
    at20 = {(bx, by): {b: rng.integers(0, 200, (half, half)).astype(dtype[b]) for b in AT_20M}
            for bx in range(nb) for by in range(nb)}  # fmt: skip
    at60 = {b: rng.integers(0, 200, (-(-n // 6), -(-n // 6))).astype(dtype[b]) for b in AT_60M}
    flat = np.zeros(n * n * dtype.itemsize, dtype=np.uint8)
    every = np.ones((n, n), dtype=bool)

    def interleave() -> np.ndarray:
        return server.interleave(dtype, (n, n), [(b, bands[b], every) for b in ORDER])

    def band_major() -> np.ndarray:
        out = np.empty((n, n), dtype=dtype)
        for b in ORDER:
            out[b] = bands[b]
        return out

    def from_blocks() -> np.ndarray:
        out = np.empty((n, n), dtype=dtype)
        for by in range(nb):
            for bx in range(nb):
                rs, cs = by * BLOCK, bx * BLOCK
                re_, ce = min(n, rs + BLOCK), min(n, cs + BLOCK)
                for b in AT_10M:
                    out[b][rs:re_, cs:ce] = at10[(bx, by)][b][: re_ - rs, : ce - cs]
                for b in AT_20M:
                    cells = at20[(bx, by)][b][: -(-(re_ - rs) // 2), : -(-(ce - cs) // 2)]
                    upsample_into(cells, out[b][rs:re_, cs:ce], 2)
        for b in AT_60M:
            upsample_into(at60[b], out[b], 6)
        return out

    r = args.repeat
    figures = {"memcpy_ms": best_ms(flat.copy, r), "interleave_ms": best_ms(interleave, r)}
    threads, before = workers.count(), os.environ.get(workers.ENV_WORKERS)
    os.environ[workers.ENV_WORKERS] = "1"
    try:
        figures["interleave_one_thread_ms"] = best_ms(interleave, r)
    finally:
        if before is None:
            del os.environ[workers.ENV_WORKERS]
        else:
            os.environ[workers.ENV_WORKERS] = before
    figures["band_major_ms"] = best_ms(band_major, r)
    figures["from_blocks_ms"] = best_ms(from_blocks, r)
    written = from_blocks()  # what the timed writes wrote, checked against numpy's repeat
    assert all(np.array_equal(written[b], bands[b]) for b in AT_10M)
    assert np.array_equal(written["B5"][:BLOCK, :BLOCK], np.repeat(np.repeat(at20[(0, 0)]["B5"], 2, 0), 2, 1))
    assert np.array_equal(written["B1"], np.repeat(np.repeat(at60["B1"], 6, 0), 6, 1)[:n, :n])
    print(json.dumps({
        "benchmark": "result_fill", "size": n, "bands": len(ORDER),
        "result_mib": round(flat.nbytes / 2**20, 1),
        **{k: round(v, 2) for k, v in figures.items()},
        "interleave_over_memcpy": round(figures["interleave_ms"] / figures["memcpy_ms"], 1),
        "threads": threads, "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
