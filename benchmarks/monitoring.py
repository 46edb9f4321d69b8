"""Change detection against the demo world's planted-change truth (``local/demo/CHANGES``).

The SAR detector (``gee_fusion.monitoring.sar``: the sequential omnibus test per relative orbit, one
Sentinel-1 image a month) runs over a square of the demo city for ``--months`` months. Two rules are
scored: ``sar_any`` (every pixel the test flags) and ``sar`` (the monitoring rule: the last change
has held for ``--persist`` months). Detections are objects: 8-connected components of at least 0.5
ha. A truth change (>= 0.5 ha, starting or ending in the period) is scored when that event has
``--margin`` months monitored on both sides and the change lies wholly inside the square (the others
are listed as ``truth_changes_at_edges`` of the period and ``truth_changes_at_borders`` of the
square: a change cut by the square's edge may keep less than the smallest alert inside it); a scored
change is found when 30 % of its rectangle is covered by detected objects. A detected object is true
when it touches any truth change, scored or not (an alert on a change at an edge is no false alarm).
Prints one JSON line: ``<rule>_precision``, ``<rule>_recall``, ``<rule>_onset_delay_months`` (median
over found changes of the object's median last-change month minus the nearest truth month, start or
end) and ``<rule>_false_alarms_per_km2_month``. The optical and fused figures come from the
monitoring job (``gee-fusion monitor``) run over the same square and months: ``optical`` is every
persistent class transition into or out of built-up and every site opening (vegetated land
classified built, water or open from then on) that holds (the monthly in-cloud forests alone, with
the job's ``persist`` and hold rules), ``fused`` every alert the job wrote (urbanisations,
demolitions and site openings with at least ``min_confidence`` of their pixels confirmed by
Sentinel-1 within ``tolerance`` months, Sentinel-1 brightenings classified built from then on,
darkenings of built pixels, and floods of the monthly VV confirmed by the water class). All
detectors are scored against the same scored changes; ``fused_found_<type>`` says how many of each
type of change the alerts found (``truth_<type>``: how many there were), and ``urban_truth_changes``
/ ``fused_urban_recall`` the urbanisations (construction, industrial, road) alone.

Usage: python benchmarks/monitoring.py [--size-km 4] [--start 2021-01] [--months 24] [--sar-only]
       [--origin X Y] [--out DIR]
       (e.g. --origin 363420 5480720 --size-km 2.4: the demo monitoring config's area; --out keeps
       the job's outputs, and a rerun with the same --out reuses its monthly class maps)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import ee
import numpy as np
from rasterio.features import rasterize
from scipy import ndimage
from shapely.geometry import box, shape

import gee_fusion
from gee_fusion.export.fetch import compute_by_tile, grid_aoi
from gee_fusion.grid import PixelGrid
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.monitoring.sar import sar_changes
from gee_fusion.recipe.composite import add_months, month_index, month_starts

MIN_PX = 50  # 0.5 ha of 10 m pixels


def truth(grid: PixelGrid, first: int, last: int) -> list[dict[str, Any]]:
    """Truth changes over the grid with their start or end in (first, last] (months since 1970),
    rasterised (the part inside the grid); ``inside`` says whether the whole change lies inside the
    grid (see :func:`scoreable`)."""
    table = ee.FeatureCollection("local/demo/CHANGES").getInfo()["features"]
    left, top = grid.transform[2], grid.transform[5]
    area = box(left, top - 10.0 * grid.height, left + 10.0 * grid.width, top)
    out = []
    for feature in table:
        p = feature["properties"]
        start = month_index(date.fromisoformat(p["start"] + "-01"))
        end = month_index(date.fromisoformat(p["end"] + "-01"))
        if p["changed_area_m2"] < MIN_PX * 100 or not (first < start <= last or first < end <= last):
            continue
        polygon = shape(feature["geometry"])
        mask = rasterize([(polygon, 1)], out_shape=grid.shape, transform=grid.affine, dtype="uint8")
        mask = mask.astype(bool)
        if mask.sum() >= MIN_PX:
            out.append(
                {
                    "mask": mask,
                    "months": (start, end),
                    "type": p["type"],
                    "start": p["start"],
                    "end": p["end"],
                    "inside": bool(area.covers(polygon)),
                }
            )
    return out


URBANISATION = ("construction", "industrial", "road")


def monitored(grid: PixelGrid, months: list[date], out: Path) -> tuple[dict[str, np.ndarray], float]:
    """Run the monitoring job over the grid and months: its optical detections (persistent
    transitions into or out of built-up) and its fused ones (every alert it wrote), with months."""
    from gee_fusion.export.area import AreaConfig
    from gee_fusion.monitoring import detect
    from gee_fusion.monitoring.job import MonitorConfig, read_class_maps, run_monitor

    x0, y1 = grid.transform[2], grid.transform[5]
    cfg = MonitorConfig(out=out, area=AreaConfig(origin=(x0, y1), size_px=(grid.width, grid.height)),
                        start=f"{months[0]:%Y-%m}")  # fmt: skip
    t0 = time.perf_counter()
    run_monitor(cfg, until=f"{months[-1]:%Y-%m}", progress=False)
    seconds = time.perf_counter() - t0
    classes = read_class_maps(out, months)
    numbers = np.array([month_index(m) for m in months])
    urban = np.zeros(grid.shape, dtype=bool)
    when = np.zeros(grid.shape, dtype=np.int64)
    found = detect.class_changes(classes, persist=cfg.persist, hold=cfg.hold)
    for tr, held in ((found.up, found.urban), (found.down, found.demolished), (found.site, found.opened)):
        new = held & ~urban
        when[new] = numbers[tr.onset[new]]
        urban |= new
    fused = np.zeros(grid.shape, dtype=bool)
    fused_when = np.zeros(grid.shape, dtype=np.int64)
    for path in sorted(out.glob("months/*/alerts.geojson")):
        for feature in json.loads(path.read_text())["features"]:
            p = feature["properties"]
            mask = rasterize([(shape(feature["geometry"]), 1)], out_shape=grid.shape, transform=grid.affine,
                             dtype="uint8").astype(bool)  # fmt: skip
            fused |= mask
            fused_when[mask] = month_index(date.fromisoformat(p["onset"] + "-01"))
    return {"optical": urban, "optical_when": when, "fused": fused, "fused_when": fused_when}, seconds


def score(
    detected: np.ndarray,
    when: np.ndarray,
    changes: list[dict[str, Any]],
    km2: float,
    months: int,
    *,
    unscored: Sequence[dict[str, Any]] = (),
) -> dict:
    """Object precision, recall, onset delay and false alarms of a detection mask; ``found``: which
    of ``changes`` it found (popped by the caller). An object touching one of the ``unscored``
    changes (real, but at an edge of the period or of the area) is true, not a false alarm."""
    labels, _ = ndimage.label(detected, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())
    keep = np.flatnonzero(sizes >= MIN_PX)
    keep = keep[keep > 0]
    kept = np.isin(labels, keep)
    truth_any = np.zeros(detected.shape, bool)
    found, delays, which = 0, [], []
    for ch in changes:
        truth_any |= ch["mask"]
        which.append(bool((kept & ch["mask"]).sum() >= 0.3 * ch["mask"].sum()))
        if which[-1]:
            found += 1
            seen = float(np.median(when[kept & ch["mask"]]))
            delays.append(min((seen - m for m in ch["months"]), key=abs))
    for ch in unscored:
        truth_any |= ch["mask"]
    true_objects = sum(bool((labels == k)[truth_any].any()) for k in keep)
    false_objects = len(keep) - true_objects
    return {
        "precision": round(true_objects / len(keep), 3) if len(keep) else None,
        "recall": round(found / len(changes), 3) if changes else None,
        "onset_delay_months": float(np.median(delays)) if delays else None,
        "false_alarms_per_km2_month": round(false_objects / km2 / months, 4),
        "found": which,
    }


def scoreable(change: dict[str, Any], first: int, last: int, margin: int) -> bool:
    """Whether the change starts or ends in a month with ``margin`` months monitored before it and
    ``margin`` months from it on (an event in the period's first or last months cannot be confirmed
    by any persistence rule within the period: its before or after state is not observed), and lies
    wholly inside the area (a change cut by the area's edge may keep less than the smallest alert
    inside it)."""
    timely = any(first + margin <= m <= last - margin + 1 for m in change["months"])
    return timely and bool(change["inside"])


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-km", type=float, default=4.0, help="side of the square scored")
    parser.add_argument("--start", default="2021-01", help="first month (YYYY-MM)")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--persist", type=int, default=3, help="months a last change must hold (rule sar)")
    parser.add_argument("--sar-only", action="store_true", help="skip the monitoring job (optical, fused)")
    parser.add_argument(
        "--margin",
        type=int,
        default=2,
        help="months an event needs on each side (the job's persist)",
    )
    parser.add_argument("--origin", type=float, nargs=2, metavar=("X", "Y"), default=None,
                        help="upper-left corner, world CRS (default: centred on the city)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="keep the monitoring job's outputs here")
    args = parser.parse_args()
    gee_fusion.connect("local")
    first = date.fromisoformat(args.start + "-01")
    months = month_starts(first, add_months(first, args.months))
    side = round(args.size_km * 100)
    cx, cy = W.centre
    x0, y1 = args.origin or (cx - side * 5.0, cy + side * 5.0)
    grid = PixelGrid(W.crs, (10.0, 0.0, x0, 0.0, -10.0, y1), side, side)
    t0 = time.perf_counter()
    maps = compute_by_tile(sar_changes(grid_aoi(grid), months, alpha=args.alpha).unmask(0), grid)
    seconds = time.perf_counter() - t0
    lo, hi = month_index(months[0]), month_index(months[-1])
    every = truth(grid, lo, hi)
    changes = [c for c in every if scoreable(c, lo, hi, args.margin)]
    unscored = [c for c in every if not scoreable(c, lo, hi, args.margin)]
    edge = [f"{c['type']} {c['start']}..{c['end']}" for c in unscored if c["inside"]]
    border = [f"{c['type']} {c['start']}..{c['end']}" for c in unscored if not c["inside"]]
    km2 = side * side / 1e4
    figures: dict[str, Any] = {"benchmark": "monitoring", "area_km2": km2, "months": args.months,
                               "truth_changes": len(changes), "truth_changes_at_edges": edge,
                               "truth_changes_at_borders": border,
                               "sar_seconds": round(seconds, 1)}  # fmt: skip
    rules = {
        "sar_any": (maps["count"] > 0, maps["last"]),
        "sar": ((maps["count"] > 0) & (maps["last"] <= hi - args.persist), maps["last"]),
    }
    for rule, (mask, when) in rules.items():
        result = score(mask, when, changes, km2, args.months, unscored=unscored)
        result.pop("found")
        for key, value in result.items():
            figures[f"{rule}_{key}"] = value
    urban = [c["type"] in URBANISATION for c in changes]
    figures["urban_truth_changes"] = sum(urban)
    kinds = sorted({c["type"] for c in changes})
    figures.update({f"truth_{kind}": sum(c["type"] == kind for c in changes) for kind in kinds})
    if args.sar_only:
        for source in ("optical", "fused"):
            for key in ("precision", "recall", "onset_delay_months", "false_alarms_per_km2_month"):
                figures[f"{source}_{key}"] = None
    else:
        with tempfile.TemporaryDirectory() as tmp:
            detections, job_seconds = monitored(grid, months, args.out or Path(tmp) / "monitoring")
        figures["monitor_seconds"] = round(job_seconds, 1)
        for source in ("optical", "fused"):
            result = score(
                detections[source], detections[f"{source}_when"], changes, km2, args.months, unscored=unscored
            )
            which = result.pop("found")
            for key, value in result.items():
                figures[f"{source}_{key}"] = value
            if source == "fused":
                for kind in kinds:
                    figures[f"fused_found_{kind}"] = sum(
                        f for f, c in zip(which, changes, strict=True) if c["type"] == kind
                    )
                figures["fused_missed"] = [
                    f"{c['type']} {c['start']}..{c['end']}"
                    for f, c in zip(which, changes, strict=True)
                    if not f
                ]
                hits = [f for f, u in zip(which, urban, strict=True) if u]
                figures["fused_urban_recall"] = round(sum(hits) / len(hits), 3) if hits else None
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
