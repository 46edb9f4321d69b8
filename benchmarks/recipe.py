"""The server-side recipe on the local engine vs the same pipeline in plain numpy.

One year of monthly composites over the demo city (default: the whole 12 x 12 km, 1200 x 1200
px): Sentinel-2 masked with Cloud Score+ (cs_cdf >= 0.6), scaled to reflectance, monthly
medians of B2, B3, B4, B8 plus NDVI, SAVI, BAI, NDWI from the median bands; Sentinel-1 (one
relative orbit) monthly means of VV and VH in linear power, then dB.

Both pipelines read the same generated pixels: the raw per-image arrays are fetched first
(which also warms the demo world's block cache, sized for the whole year), the numpy
reference then runs on them, and the engine pipeline (earthengine-api + local engine, one
computePixels request per month) is timed on the warm cache. Generation cost is reported
apart. Prints one JSON line (progress on stderr).

Usage: python benchmarks/recipe.py [--size 1200] [--year 2021] [--orbit 132]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import UTC, date, datetime
from typing import Any

os.environ.setdefault("GEE_FUSION_WORLD_CACHE_MB", "12000")  # hold the whole year in memory

import ee
import numpy as np

import gee_fusion
from gee_fusion import ids
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.recipe import indices, sentinel1, sentinel2
from gee_fusion.recipe.composite import monthly_composites, monthly_s1_means

KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
S2_BANDS = ("B2", "B3", "B4", "B8", "B11")
OUT_S2 = ("B2", "B3", "B4", "B8", "NDVI", "SAVI", "BAI", "NDWI")


def grid(size: int) -> dict[str, Any]:
    """The 10 m grid of the city's top-left ``size`` x ``size`` window."""
    return {
        "dimensions": {"width": size, "height": size},
        "affineTransform": dict(zip(KEYS, W.transform(), strict=True)),
        "crsCode": W.crs,
    }


def fetch(image: ee.Image, g: dict[str, Any]) -> np.ndarray:
    """All bands of an image on the grid as a (bands, h, w) float array (masked -> NaN)."""
    vals = ee.data.computePixels({"expression": image, "grid": g, "fileFormat": "NUMPY_NDARRAY"})
    masks = ee.data.computePixels({"expression": image.mask(), "grid": g, "fileFormat": "NUMPY_NDARRAY"})
    names = vals.dtype.names
    return np.stack([np.where(masks[n] > 0, vals[n].astype(np.float32), np.float32(np.nan)) for n in names])


def numpy_pipeline(
    s2: list[tuple[int, np.ndarray]], s1: list[tuple[int, np.ndarray]]
) -> dict[int, np.ndarray]:
    """Monthly composites in plain numpy: month -> (12, h, w) [8 optical + VV, VH dB]."""
    out: dict[int, np.ndarray] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for month in range(1, 13):
            opt = [a for t, a in s2 if datetime.fromtimestamp(t / 1000, tz=UTC).month == month]
            rad = [a for t, a in s1 if datetime.fromtimestamp(t / 1000, tz=UTC).month == month]
            stack = np.stack(opt)  # (n, 6, h, w): B2 B3 B4 B8 B11 cs_cdf
            clear = stack[:, 5] >= 0.6
            refl = np.where(clear[:, None], stack[:, :5] * 1e-4, np.nan)
            med = np.nanmedian(refl, axis=0)
            sym = {"B": med[0], "G": med[1], "R": med[2], "N": med[3], "S1": med[4]}
            idx = [indices.compute(n, sym) for n in ("NDVI", "SAVI", "BAI", "NDWI")]
            lin = np.nanmean(np.stack(rad), axis=0)  # (2, h, w)
            out[month] = np.concatenate([med[:4], np.stack(idx), 10 * np.log10(lin)])
    return out


def engine_pipeline(aoi: ee.Geometry, year: int, orbit: int, g: dict[str, Any]) -> dict[int, np.ndarray]:
    """The same monthly composites with the recipe modules on the local engine."""
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    s2 = sentinel2.mask_clouds(sentinel2.s2_collection(aoi, start, end), sentinel2.CloudScorePlus())
    s2 = s2.map(
        lambda img: (
            img.select(list(S2_BANDS)).toFloat().multiply(1e-4).copyProperties(img, ["system:time_start"])
        )
    )
    s2_months = monthly_composites(s2, bands=list(S2_BANDS), start=start, end=end)
    s2_months = s2_months.map(lambda m: indices.add_indices(m, ["NDVI", "SAVI", "BAI", "NDWI"], scale=1.0))
    sel = sentinel1.S1Selection(relative_orbit=orbit)
    s1_months = monthly_s1_means(sentinel1.s1_collection(aoi, start, end, sel), start=start, end=end)
    out = {}
    for k in range(12):  # two requests a month: a whole-city request must stay under 48 MiB
        optical = fetch(ee.Image(s2_months.toList(12).get(k)).select(list(OUT_S2)), g)
        radar = fetch(ee.Image(s1_months.toList(12).get(k)).select(["VV", "VH"]), g)
        out[k + 1] = np.concatenate([optical, radar])
    return out


def main() -> None:
    """Run both pipelines and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=W.size_px)
    parser.add_argument("--year", type=int, default=2021)
    parser.add_argument("--orbit", type=int, default=132)
    args = parser.parse_args()
    gee_fusion.connect("local", register_samples=False)
    g = grid(args.size)
    x0, y1 = W.origin
    aoi = ee.Geometry.Rectangle([x0, y1 - args.size * 10, x0 + args.size * 10, y1], W.crs, False)
    start, end = f"{args.year}-01-01", f"{args.year + 1}-01-01"

    t0 = time.perf_counter()
    s2_col = sentinel2.s2_collection(aoi, start, end).linkCollection(
        ee.ImageCollection(ids.CLOUD_SCORE_PLUS), ["cs_cdf"]
    )
    s2_times: list[int] = s2_col.aggregate_array("system:time_start").getInfo() or []
    s2_raw = []
    for i, t in enumerate(s2_times):
        img = ee.Image(s2_col.filter(ee.Filter.eq("system:time_start", t)).first()).select(
            [*S2_BANDS, "cs_cdf"]
        )
        s2_raw.append((t, fetch(img, g)))
        print(f"S2 {i + 1}/{len(s2_times)}", file=sys.stderr)
    s1_col = sentinel1.s1_collection(aoi, start, end, sentinel1.S1Selection(relative_orbit=args.orbit))
    s1_times: list[int] = s1_col.aggregate_array("system:time_start").getInfo() or []
    s1_raw = []
    for i, t in enumerate(s1_times):
        img = ee.Image(s1_col.filter(ee.Filter.eq("system:time_start", t)).first()).select(["VV", "VH"])
        s1_raw.append((t, fetch(img, g)))
        print(f"S1 {i + 1}/{len(s1_times)}", file=sys.stderr)
    generation_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    ref = numpy_pipeline(s2_raw, s1_raw)
    numpy_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    eng = engine_pipeline(aoi, args.year, args.orbit, g)
    engine_s = time.perf_counter() - t2
    diffs = [np.nanmax(np.abs(np.where(np.isnan(ref[m]), np.nan, eng[m] - ref[m]))) for m in ref]
    print(
        json.dumps(
            {
                "benchmark": "recipe",
                "year": args.year,
                "size": args.size,
                "s2_images": len(s2_times),
                "s1_images": len(s1_times),
                "months": 12,
                "bands_per_month": len(OUT_S2) + 2,
                "generation_s": round(generation_s, 2),
                "engine_s": round(engine_s, 2),
                "numpy_s": round(numpy_s, 2),
                "ratio": round(engine_s / numpy_s, 3),
                "max_abs_diff": float(np.nanmax(diffs)),
            }
        )
    )


if __name__ == "__main__":
    main()
