"""The monthly monitoring job (``gee-fusion monitor CONFIG --until YYYY-MM``).

Every month from ``start`` to ``until`` not yet processed is classified by the in-cloud forests
(:mod:`gee_fusion.monitoring.optical`) and written as ``months/YYYY-MM/class.tif`` (a COG with the
class colour table and a ``source`` band: 1 S1 + S2, 2 S1 only); finished months are skipped on
the next run, so the job is idempotent and resumable (a month is written to a temporary name and
renamed). Then, over every month so far: persistent transitions, urbanisations (non-built ->
built) and demolitions (built -> non-built), the Sentinel-1 omnibus changes of the whole period
and their fusion. For each month whose changes can be confirmed (``persist - 1`` later months
exist) the job writes ``months/YYYY-MM/alerts.geojson``: one polygon per 8-connected urbanisation
or demolition of at least ``min_area_m2`` whose pixels' median onset is that month, with its
``type``, onset month, area, the classes before and after, and its confidence (the share of its
pixels a Sentinel-1 brightening, for a demolition a darkening, confirms; objects under
``min_confidence`` are dropped: a class change the radar did not see is a classification error
more often than a building).
``urban_area.csv`` holds the built-up area per month
and ``monitoring.html`` the maps, the alerts and the curve.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import ee
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gee_fusion.classes import class_table
from gee_fusion.classic.cloud_rf import RFOptions
from gee_fusion.config import load_yaml
from gee_fusion.engine import EngineChoice, ensure_connected
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.export.area import AreaConfig
from gee_fusion.export.fetch import compute_by_tile, grid_aoi
from gee_fusion.grid import PixelGrid
from gee_fusion.io.atomic import atomic_path, output_folder
from gee_fusion.io.cog import write_cog
from gee_fusion.io.console import say
from gee_fusion.monitoring import fusion, optical
from gee_fusion.monitoring.sar import sar_changes
from gee_fusion.recipe.composite import add_months, month_index, month_starts


def parse_month(text: str) -> date:
    """``YYYY-MM`` -> the first day of that month."""
    try:
        year, month = (int(p) for p in str(text).split("-")[:2])
        return date(year, month, 1)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Expected a month as YYYY-MM, got {text!r}.") from exc


class SdgSettings(BaseModel):
    """SDG 11.3.1 per district between the first and the last month monitored."""

    model_config = ConfigDict(extra="forbid")

    population_csv: Path = Field(description="CSV with district, year, population.")
    district_km: float = Field(1.0, gt=0, description="Side of the square districts (a regular grid).")
    districts: Path | None = Field(
        None,
        description="GeoJSON district polygons (instead of the square grid); names from district_property.",
    )
    district_property: str = Field("name", description="The districts' name property (matches the table).")


class MonitorConfig(BaseModel):
    """The monitoring job's settings (YAML)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("demo_city_monitoring", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    engine: EngineChoice = "local"
    project: str | None = None
    out: Path = Path("outputs/monitoring")
    area: AreaConfig = Field(default_factory=AreaConfig)
    start: str = Field("2021-07", description="First month monitored (YYYY-MM).")
    reference_months: list[str] = Field(
        default_factory=lambda: ["2021-01", "2021-04", "2021-07", "2021-10"], min_length=1,
        description="Months whose labels train the forests (one per season).",
    )  # fmt: skip
    labels: Literal["demo", "worldcover"] = Field(
        "demo",
        description="'demo': the demo world's monthly truth (local engine); 'worldcover': ESA WorldCover "
        "2021 grouped into the 6 classes, the same reference for every month (anywhere on Earth Engine).",
    )
    points_per_class: int = Field(100, ge=10)
    rf: RFOptions = Field(
        default_factory=lambda: RFOptions(number_of_trees=40), description="The monthly forests' options."
    )
    persist: int = Field(2, ge=1, le=12, description="Months a class change must hold.")
    alpha: float = Field(0.01, gt=0, lt=1, description="Significance level of the SAR tests.")
    tolerance: int = Field(1, ge=0, le=6, description="Months between optical and SAR evidence.")
    min_area_m2: float = Field(5000.0, ge=0, description="Smallest alert (0.5 ha).")
    sdg: SdgSettings | None = Field(None, description="SDG 11.3.1 per district (needs a population table).")
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="Share of an object's pixels Sentinel-1 must confirm for an alert."
    )

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        parse_month(value)
        return value

    @field_validator("reference_months")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        for v in value:
            parse_month(v)
        return value


def load_monitor_config(path: str | Path) -> MonitorConfig:
    """Read a monitoring YAML (errors name the file, the key and what is allowed)."""
    return load_yaml(path, MonitorConfig, what="monitoring config")


@dataclass(frozen=True)
class MonitorResult:
    """What a run did."""

    months: list[date]
    new_months: list[date]
    alerts: int
    report: Path
    seconds: float

    def summary(self) -> str:
        """One-screen summary."""
        span = f"{self.months[0]:%Y-%m}..{self.months[-1]:%Y-%m}" if self.months else "no month"
        return (
            f"Monitored {span}: {len(self.new_months)} new month(s), {self.alerts} alert(s) "
            f"so far; report: {self.report} ({self.seconds:.0f}s)"
        )


def _labels(cfg: MonitorConfig) -> Any:
    if cfg.labels == "demo":
        return optical.reference_labels
    return optical.worldcover_labels


def _class_path(out: Path, month: date) -> Path:
    return out / "months" / f"{month:%Y-%m}" / "class.tif"


def _read_classes(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return np.asarray(src.read(1))


def read_class_maps(out: Path, months: list[date]) -> list[np.ndarray]:
    """The monthly class maps a run wrote into ``out`` (class band), in month order."""
    missing = [f"{m:%Y-%m}" for m in months if not _class_path(out, m).exists()]
    if missing:
        raise DataError(f"{out} has no class map for {', '.join(missing)}: run gee-fusion monitor first.")
    return [_read_classes(_class_path(out, m)) for m in months]


def run_monitor(cfg: MonitorConfig, *, until: str, progress: bool = True) -> MonitorResult:
    """Process the months from ``cfg.start`` to ``until`` not yet done, then update the changes,
    alerts, urban-area series and report (see the module docstring).

    Raises:
        ConfigError: ``until`` before ``start``, or fewer than ``2 * persist`` months to monitor.
    """
    t0 = time.perf_counter()
    ensure_connected()
    first, last = parse_month(cfg.start), parse_month(until)
    if last < first:
        raise ConfigError(f"--until {until} comes before the first month monitored ({cfg.start}).")
    months = month_starts(first, add_months(last, 1))
    out = output_folder(cfg.out)
    grid = cfg.area.grid()
    aoi = grid_aoi(grid)
    table = class_table(6)
    todo = [m for m in months if not _class_path(out, m).exists()]
    if todo:
        say(progress, f"Training the monthly forests on {', '.join(cfg.reference_months)}")
        forests = optical.train_forests(
            aoi, [parse_month(m) for m in cfg.reference_months], _labels(cfg),
            points_per_class=cfg.points_per_class, rf=cfg.rf,
        )  # fmt: skip
    for k, month in enumerate(todo, 1):
        say(progress, f"  [{k}/{len(todo)}] classifying {month:%Y-%m}")
        maps = compute_by_tile(optical.classify_month(forests, aoi, month), grid)
        path = _class_path(out, month)
        output_folder(path.parent)
        write_cog(path, np.stack([maps["class"], maps["source"]]), crs=grid.crs, transform=grid.transform,
                  nodata=0, band_names=["class", "source"], colormap=table.colormap(),
                  resampling="nearest")  # fmt: skip
    classes = read_class_maps(out, months)
    built = np.isin(np.stack(classes), optical.BUILT_6)
    _write_urban_area(
        out / "urban_area.csv", months, built.sum(axis=(1, 2)) * abs(grid.transform[0] * grid.transform[4])
    )
    if cfg.sdg is not None:
        _write_sdg(cfg.sdg, out / "sdg_11_3_1.csv", built, months, grid)
    alerts = 0
    if len(months) >= max(3, 2 * cfg.persist):
        alerts = _changes(cfg, out, grid, aoi, months, classes, progress)
    else:
        say(progress, f"  changes need {max(3, 2 * cfg.persist)} months: {len(months)} so far")
    report = _report(cfg, out, months)
    return MonitorResult(months, todo, alerts, report, time.perf_counter() - t0)


SDG_COLUMNS = (
    "district", "from", "to", "built_from_m2", "built_to_m2", "population_from", "population_to",
    "lcr", "pgr", "lcrpgr", "built_m2_per_capita_from", "built_m2_per_capita_to",
)  # fmt: skip


def _write_sdg(sdg: SdgSettings, path: Path, built: np.ndarray, months: list[date], grid: PixelGrid) -> None:
    """SDG 11.3.1 per district (the user's polygons, or squares) between the first and the last month
    (``sdg_11_3_1.csv``)."""
    from gee_fusion.monitoring.sdg import (
        district_indicators,
        grid_districts,
        polygon_districts,
        read_population,
    )

    years = (month_index(months[-1]) - month_index(months[0])) / 12.0
    if years <= 0:
        return
    if sdg.districts is not None:
        ids, names = polygon_districts(sdg.districts, grid, name_property=sdg.district_property)
    else:
        cell = max(1, round(sdg.district_km * 1000 / abs(grid.transform[0])))
        ids, names = grid_districts(grid.shape, cell)
    pixel_area = abs(grid.transform[0] * grid.transform[4])
    rows = district_indicators(
        built[0], built[-1], ids, names, read_population(sdg.population_csv),
        year_t0=months[0].year, year_t1=months[-1].year, pixel_area_m2=pixel_area, years=years,
    )  # fmt: skip
    span = (f"{months[0]:%Y-%m}", f"{months[-1]:%Y-%m}")
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SDG_COLUMNS)
        for r in rows:
            ratio = "" if r.ratio is None else f"{r.ratio:.3f}"
            w.writerow([r.district, *span, r.built_t0_m2, r.built_t1_m2, r.population_t0, r.population_t1,
                        f"{r.lcr:.5f}", f"{r.pgr:.5f}", ratio, f"{r.built_per_capita_t0:.1f}",
                        f"{r.built_per_capita_t1:.1f}"])  # fmt: skip


def _write_urban_area(path: Path, months: list[date], area_m2: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "built_up_km2"])
        for m, a in zip(months, area_m2, strict=True):
            w.writerow([f"{m:%Y-%m}", f"{a / 1e6:.4f}"])


def _changes(
    cfg: MonitorConfig, out: Path, grid: PixelGrid, aoi: ee.Geometry, months: list[date],
    classes: list[np.ndarray], progress: bool,
) -> int:  # fmt: skip
    say(progress, f"  Sentinel-1 changes over {len(months)} months")
    sar = compute_by_tile(sar_changes(aoi, months, alpha=cfg.alpha).unmask(0), grid)
    tr = optical.persistent_changes(classes, persist=cfg.persist)
    urban, demolished = fusion.urbanisation(tr), fusion.demolition(tr)
    numbers = np.array([month_index(m) for m in months])

    def sar_confirmed(mask: np.ndarray, direction: int) -> np.ndarray:
        onset_month = np.where(mask, numbers[np.maximum(tr.onset, 0)], -1)
        return fusion.confirmed(onset_month, sar["last"], sar["last_direction"], tolerance=cfg.tolerance,
                                direction=direction)  # fmt: skip

    confirmed, confirmed_down = sar_confirmed(urban, 1), sar_confirmed(demolished, 2)  # brighter / darker
    # a site the forests call built during the works has no transition: Sentinel-1 leads there
    sar_led, sar_index = fusion.sar_led_urbanisation(
        classes, numbers, sar["last"], sar["last_direction"], persist=cfg.persist
    )
    sar_led &= ~urban
    stack = np.stack(classes)
    previous = np.take_along_axis(stack, np.maximum(sar_index - 1, 0)[None], 0)[0]
    after = np.take_along_axis(stack, np.maximum(sar_index, 0)[None], 0)[0]
    up = optical.Transitions(
        onset=np.where(sar_led, sar_index, tr.onset),
        before=np.where(sar_led, previous, tr.before),
        after=np.where(sar_led, after, tr.after),
    )
    total = 0
    # objects over the whole change mask (a site's pixels flip over a month or two); each
    # object's onset is the median onset of its pixels
    objects = _alerts(
        urban, tr, confirmed, grid, months, cfg.min_area_m2, "urbanisation", "class change + SAR"
    )
    objects += _alerts(
        sar_led, up, sar_led, grid, months, cfg.min_area_m2, "urbanisation", "SAR + built class"
    )
    objects += _alerts(demolished, tr, confirmed_down, grid, months, cfg.min_area_m2, "demolition",
                       "class change + SAR")  # fmt: skip
    kept = [f for f in objects if f["properties"]["confidence"] >= cfg.min_confidence]
    if len(objects) > len(kept):
        say(progress, f"  {len(objects) - len(kept)} class change(s) without Sentinel-1 evidence dropped")
    crs = {"type": "name", "properties": {"name": grid.crs}}
    for month in months[: len(months) - cfg.persist + 1]:  # later months cannot be confirmed yet
        features = [f for f in kept if f["properties"]["onset"] == f"{month:%Y-%m}"]
        total += len(features)
        path = out / "months" / f"{month:%Y-%m}" / "alerts.geojson"
        output_folder(path.parent)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    change = np.where(urban | sar_led, up.onset + 1, 0).astype(np.uint8)
    down = np.where(demolished, tr.onset + 1, 0).astype(np.uint8)
    bands = [change, (confirmed | sar_led).astype(np.uint8), down, confirmed_down.astype(np.uint8)]
    write_cog(out / "changes.tif", np.stack(bands), crs=grid.crs, transform=grid.transform, nodata=None,
              band_names=["urbanisation_month_index", "sar_confirmed", "demolition_month_index",
                          "sar_confirmed_demolition"], resampling="nearest")  # fmt: skip
    return total


def _alerts(
    mask: np.ndarray, tr: optical.Transitions, confirmed: np.ndarray, grid: PixelGrid, months: list[date],
    min_area_m2: float, kind: str, evidence: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """GeoJSON features (``type`` ``kind``) of the 8-connected objects of ``mask`` of at least
    ``min_area_m2``: onset (the median of its pixels' onsets), area, classes before and after,
    SAR-confirmed share."""
    from rasterio.features import shapes
    from scipy import ndimage

    pixel_area = abs(grid.transform[0] * grid.transform[4])
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    features = []
    for k in range(1, n + 1):
        obj = labels == k
        area = float(obj.sum() * pixel_area)
        if area < min_area_m2:
            continue
        polygons = shapes(obj.astype(np.uint8), mask=obj, transform=grid.affine)
        rings = [g["coordinates"] for g, v in polygons if v]
        geometry = {"type": "Polygon", "coordinates": rings[0]} if len(rings) == 1 else {
            "type": "MultiPolygon", "coordinates": rings}  # fmt: skip
        onset = months[int(np.median(tr.onset[obj]))]
        properties = {
            "type": kind, "evidence": evidence, "onset": f"{onset:%Y-%m}", "area_m2": area,
            "from_class": int(np.bincount(tr.before[obj]).argmax()),
            "to_class": int(np.bincount(tr.after[obj]).argmax()),
            "confidence": round(float(confirmed[obj].mean()), 3),
        }  # fmt: skip
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return features


def _report(cfg: MonitorConfig, out: Path, months: list[date]) -> Path:
    from gee_fusion.report.monitoring_page import write_monitoring_page

    if not months:
        raise DataError("Nothing to report: no month was monitored.")
    return write_monitoring_page(out, name=cfg.name, months=months)
