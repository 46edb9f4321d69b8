"""Map tiles of the local engine over the demo city.

A June-August Sentinel-2 median (B4, B3, B2 stretched 0..3000) is registered with ``getMapId``.
Every zoom-14 tile of a ``--side`` x ``--side`` block over the city centre is rendered three
times: cold (the demo world generates that part of the city on first use), warm (the tile cache
emptied, the world generated: what a user panning back and forth waits for) and from the tile
cache. The baseline, measured in the same run, is the pixel cost alone: ``computePixels`` of the
same composite on each tile's Web Mercator window, warm. Prints one JSON line (ms per tile).

Usage: python benchmarks/tiles.py [--side 4]
"""

from __future__ import annotations

import argparse
import json
import time

import ee
import numpy as np
from rasterio.warp import transform as warp_points

import gee_fusion
from gee_fusion.local.tiles import MAPS, WEB_MERCATOR_HALF, tile_grid
from gee_fusion.local.world.config import DEFAULT_WORLD as W


def tile_of(z: int, x: float, y: float) -> tuple[int, int]:
    """The (x, y) index at zoom ``z`` of the tile holding a point of the world's CRS."""
    (mx,), (my,) = warp_points(W.crs, "EPSG:3857", [x], [y])
    size = 2 * WEB_MERCATOR_HALF / 2**z
    return int((mx + WEB_MERCATOR_HALF) // size), int((WEB_MERCATOR_HALF - my) // size)


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4, help="zoom-14 tiles per side of the block timed")
    args = parser.parse_args()
    gee_fusion.connect("local")
    col = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2021-06-01", "2021-09-01")
    image = col.median().select(["B4", "B3", "B2"])
    name = image.getMapId({"min": 0, "max": 3000})["mapid"]
    x0, y1 = W.origin
    side_m = W.size_px * 10.0
    cx, cy = tile_of(14, x0 + side_m / 2, y1 - side_m / 2)
    half = args.side // 2
    tiles = [(cx + i, cy + j) for i in range(-half, args.side - half) for j in range(-half, args.side - half)]
    cold, warm, cached, pixels = [], [], [], []
    for tx, ty in tiles:
        t = time.perf_counter()
        MAPS.tile(name, 14, tx, ty)
        cold.append(time.perf_counter() - t)
    MAPS.cache.clear()
    for tx, ty in tiles:
        t = time.perf_counter()
        MAPS.tile(name, 14, tx, ty)
        warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        MAPS.tile(name, 14, tx, ty)
        cached.append(time.perf_counter() - t)
        t = time.perf_counter()
        ee.data.computePixels({"expression": image, "grid": tile_grid(14, tx, ty).to_ee()})
        pixels.append(time.perf_counter() - t)
    ms = np.array([cold, warm, cached, pixels]) * 1000.0
    print(json.dumps({
        "benchmark": "tiles", "zoom": 14, "tiles": len(tiles),
        "cold_ms_median": round(float(np.median(ms[0])), 1), "cold_ms_max": round(float(ms[0].max()), 1),
        "warm_ms_median": round(float(np.median(ms[1])), 1), "warm_ms_max": round(float(ms[1].max()), 1),
        "cached_ms_median": round(float(np.median(ms[2])), 2),
        "baseline_compute_pixels_ms_median": round(float(np.median(ms[3])), 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
