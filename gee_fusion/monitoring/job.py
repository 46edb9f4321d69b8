"""The monthly monitoring job (``gee-fusion monitor CONFIG --until YYYY-MM``).

Every month from ``start`` to ``until`` not yet processed is classified by the in-cloud forests
(:mod:`gee_fusion.monitoring.optical`) and written as ``months/YYYY-MM/s1.tif`` (the month's
Sentinel-1 means, VV and VH dB) and ``months/YYYY-MM/class.tif`` (a COG with the class colour
table and a ``source`` band: 1 S1 + S2, 2 S1 only), each to a temporary name renamed on success,
the class map last; months with both are skipped on the next run, so the job is idempotent and
resumable. With a ``batch`` section the months are classified by Earth Engine batch tasks
instead (:mod:`gee_fusion.monitoring.batch`). Then, over every month so far, the change layers
of :mod:`gee_fusion.monitoring.detect`: urbanisations (non-built -> built), demolitions (built ->
non-built) and site openings (vegetated -> open or built), from the persistent class transitions,
the Sentinel-1 omnibus changes of the whole period and the steps of the monthly VV; and the
floods of the monthly VV (:mod:`gee_fusion.monitoring.flood`). Every month gets
``months/YYYY-MM/alerts.geojson`` (:mod:`gee_fusion.monitoring.alerts`): one polygon per
8-connected object of a layer of at least ``min_area_m2`` whose onset is that month, with its
``type``, ``evidence``, onset month, area, the classes before and after, and its confidence (the
share of its pixels the other source confirms: a Sentinel-1 brightening for an urbanisation, a
darkening for a demolition, a change either way for a site, a water class for a flood; objects
under ``min_confidence`` are dropped: a class change the radar did not see is a classification
error more often than a building). Urbanisations, demolitions and sites appear once they can be
confirmed (``persist - 1`` later months exist); floods at once.
``urban_area.csv`` holds the built-up area per month and ``monitoring.html`` the maps, the
alerts and the curve.
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
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
from gee_fusion.monitoring import alerts, confidence, detect, fusion, optical
from gee_fusion.monitoring.batch import MonitorBatch, classify_by_batch
from gee_fusion.monitoring.sar import sar_changes
from gee_fusion.monitoring.sdg import SdgSettings, write_sdg_table
from gee_fusion.recipe.composite import add_months, month_index, month_starts


def parse_month(text: str) -> date:
    """``YYYY-MM`` -> the first day of that month."""
    try:
        year, month = (int(p) for p in str(text).split("-")[:2])
        return date(year, month, 1)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Expected a month as YYYY-MM, got {text!r}.") from exc


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
    hold: float = Field(
        fusion.HOLD_SHARE, gt=0, le=1,
        description="Least share of the months from a class change to the latest one in its new state "
        "(a change that reverts is withdrawn at the next run); the state it leaves must fill 1 - hold "
        "of the months before it.",
    )  # fmt: skip
    alpha: float = Field(0.01, gt=0, lt=1, description="Significance level of the SAR tests.")
    tolerance: int = Field(1, ge=0, le=6, description="Months between optical and SAR evidence.")
    min_area_m2: float = Field(5000.0, ge=0, description="Smallest alert (0.5 ha).")
    sdg: SdgSettings | None = Field(None, description="SDG 11.3.1 per district (needs a population table).")
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="Share of an object's pixels Sentinel-1 must confirm for an alert."
    )
    min_class_confidence: float = Field(
        0.0, ge=0, le=1,
        description="Class-map pixels whose forest vote share (or deep probability) is below this take the "
        "class of the pixel's latest confident month before the change rules (0: every month counts).",
    )  # fmt: skip
    batch: MonitorBatch | None = Field(
        None, description="Classify the months by Earth Engine batch tasks into this asset folder."
    )
    checkpoint: Path | None = Field(
        None, description="Classify the months with this deep checkpoint (gee-fusion train), not the forests."
    )

    @model_validator(mode="after")
    def _one_classifier(self) -> MonitorConfig:
        if self.checkpoint is not None and self.batch is not None:
            raise ValueError(
                "checkpoint and batch exclude each other: a deep checkpoint runs here, batch tasks run the "
                "in-cloud forests on Earth Engine; drop one of them"
            )
        return self

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


def _s1_path(out: Path, month: date) -> Path:
    return out / "months" / f"{month:%Y-%m}" / "s1.tif"


def _month_done(out: Path, month: date) -> bool:
    """A month is done when its class map exists (written last, after ``s1.tif``)."""
    return _class_path(out, month).exists() and _s1_path(out, month).exists()


def write_month(out: Path, month: date, maps: dict[str, np.ndarray], grid: PixelGrid) -> None:
    """Write one month's ``s1.tif`` (VV, VH dB) then its ``class.tif`` (class, source and, when
    ``maps`` has it, confidence in percent), each to a
    temporary name renamed on success: a month with a class map is complete."""
    path = _class_path(out, month)
    output_folder(path.parent)
    s1 = np.stack([maps["VV"], maps["VH"]]).astype(np.float32)
    s1[s1 <= optical.NO_BACKSCATTER] = np.nan
    write_cog(_s1_path(out, month), s1, crs=grid.crs,
              transform=grid.transform, nodata=float("nan"), band_names=["VV", "VH"])  # fmt: skip
    bands, names = [maps["class"], maps["source"]], ["class", "source"]
    if optical.CONFIDENCE_BAND in maps:  # percent, 0 (nodata) where unknown
        bands.append(
            confidence.as_percent(np.where(maps["class"] > 0, maps[optical.CONFIDENCE_BAND], np.nan))
        )
        names.append(optical.CONFIDENCE_BAND)
    write_cog(path, np.stack(bands).astype(np.uint8), crs=grid.crs, transform=grid.transform, nodata=0,
              band_names=names, colormap=class_table(6).colormap(), resampling="nearest")  # fmt: skip


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


def read_backscatter(out: Path, months: list[date], band: str = "VV") -> np.ndarray:
    """The monthly Sentinel-1 means (dB; NaN: no acquisition) a run wrote, (months, rows, cols)."""
    import rasterio

    missing = [f"{m:%Y-%m}" for m in months if not _s1_path(out, m).exists()]
    if missing:
        raise DataError(f"{out} has no s1.tif for {', '.join(missing)}: run gee-fusion monitor first.")
    layers = []
    for m in months:
        with rasterio.open(_s1_path(out, m)) as src:
            layers.append(src.read(1 + src.descriptions.index(band)))
    return np.stack(layers)


def _classify_deep(
    checkpoint: Path, months: list[date], out: Path, grid: PixelGrid, aoi: ee.Geometry, progress: bool
) -> None:
    """Classify ``months`` with a deep checkpoint (:mod:`gee_fusion.monitoring.deep`); the class
    table is checked before the first month."""
    from gee_fusion.deep.train.checkpoints import load_module
    from gee_fusion.monitoring import deep

    hparams = dict(load_module(checkpoint).hparams)
    deep.six_class_lut(list(hparams["class_codes"]), int(hparams["experiment"]["data"].get("classes", 10)))
    for k, month in enumerate(months, 1):
        say(progress, f"  [{k}/{len(months)}] classifying {month:%Y-%m} with {checkpoint.name}")
        maps = deep.classify_month_deep(checkpoint, grid, month, hparams=hparams)
        maps |= deep.backscatter_maps(optical.month_features(aoi, month)[1], grid)
        write_month(out, month, maps, grid)


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
    todo = [m for m in months if not _month_done(out, m)]
    if todo and cfg.checkpoint is not None:
        _classify_deep(cfg.checkpoint, todo, out, grid, aoi, progress)
    elif todo:
        say(progress, f"Training the monthly forests on {', '.join(cfg.reference_months)}")
        forests = optical.train_forests(
            aoi, [parse_month(m) for m in cfg.reference_months], _labels(cfg),
            points_per_class=cfg.points_per_class, rf=cfg.rf,
        )  # fmt: skip

        def image_of(month: date) -> ee.Image:
            return optical.classify_month(forests, aoi, month, backscatter=True)

        if cfg.batch is not None:
            done = classify_by_batch(
                todo, image_of, name=cfg.name, grid=grid, out=out, batch=cfg.batch,
                write=lambda month, maps: write_month(out, month, maps, grid),
            )  # fmt: skip
            say(progress, f"  batch: {len(done.started)} task(s) started, {len(done.fetched)} month(s) "
                          f"fetched, {len(done.running)} still running on Earth Engine")  # fmt: skip
        else:
            for k, month in enumerate(todo, 1):
                say(progress, f"  [{k}/{len(todo)}] classifying {month:%Y-%m}")
                write_month(out, month, compute_by_tile(image_of(month), grid), grid)
    missing = [m for m in months if not _month_done(out, m)]
    if missing:  # batch tasks still running: analyse the months before the first one
        say(
            progress, f"  {len(missing)} month(s) from {missing[0]:%Y-%m} not classified yet: run again later"
        )
        months = months[: months.index(missing[0])]
        todo = [m for m in todo if m in months]
        if not months:
            return MonitorResult(months, todo, 0, out / "monitoring.html", time.perf_counter() - t0)
    classes = read_class_maps(out, months)
    built = np.isin(np.stack(classes), optical.BUILT_6)
    _write_urban_area(
        out / "urban_area.csv", months, built.sum(axis=(1, 2)) * abs(grid.transform[0] * grid.transform[4])
    )
    if cfg.sdg is not None:
        write_sdg_table(cfg.sdg, out / "sdg_11_3_1.csv", built, months, grid)
    alerts = 0
    if len(months) >= max(3, 2 * cfg.persist):
        alerts = _changes(cfg, out, grid, aoi, months, classes, progress)
    else:
        say(progress, f"  changes need {max(3, 2 * cfg.persist)} months: {len(months)} so far")
    report = _report(cfg, out, months)
    return MonitorResult(months, todo, alerts, report, time.perf_counter() - t0)


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
    numbers = np.array([month_index(m) for m in months])
    sure = confidence.read_confidence([_class_path(out, m) for m in months])
    chosen = confidence.confident_classes(classes, sure, minimum=cfg.min_class_confidence)
    found = detect.change_layers(
        chosen, read_backscatter(out, months), sar, numbers, persist=cfg.persist, tolerance=cfg.tolerance,
        hold=cfg.hold,
    )  # fmt: skip
    certainty = {
        layer.kind: confidence.change_confidence(sure, layer.transitions.onset, persist=cfg.persist)
        for layer in found.layers
    }
    # objects over the whole change mask of each kind (a site's pixels flip over a month or two,
    # some by a class change, some by Sentinel-1); each object's onset is its core's median onset
    objects = []
    for layer in found.layers:
        objects += alerts.change_alerts(
            layer.mask, layer.transitions, layer.confirmed, grid=grid, months=months,
            min_area_m2=cfg.min_area_m2, kind=layer.kind, evidence=layer.evidence, tolerance=cfg.tolerance,
            class_confidence=certainty[layer.kind],
        )  # fmt: skip
    objects += alerts.flood_alerts(
        found.flooded, classes, grid=grid, months=months, min_area_m2=cfg.min_area_m2
    )
    kept = [f for f in objects if f["properties"]["confidence"] >= cfg.min_confidence]
    if len(objects) > len(kept):
        dropped = len(objects) - len(kept)
        say(progress, f"  {dropped} change(s) without confirmation by the other source dropped")
    total = _write_alerts(out, months, kept, grid, confirmable=len(months) - cfg.persist + 1)
    up, down = found.urbanisation, found.demolition
    flooded = found.flooded
    flood_first = np.where(flooded.any(axis=0), flooded.argmax(axis=0) + 1, 0).astype(np.uint8)
    certain = np.full(flood_first.shape, np.nan, dtype=np.float32)
    for layer in reversed(found.layers):  # an urbanisation's, then a demolition's, then a site's
        certain = np.where(layer.mask, certainty[layer.kind], certain)
    bands = [up.month_band(), (up.mask & up.confirmed).astype(np.uint8), down.month_band(),
             (down.mask & down.confirmed).astype(np.uint8), flood_first, found.site.month_band(),
             confidence.as_percent(certain)]  # fmt: skip
    write_cog(out / "changes.tif", np.stack(bands), crs=grid.crs, transform=grid.transform, nodata=None,
              band_names=["urbanisation_month_index", "sar_confirmed", "demolition_month_index",
                          "sar_confirmed_demolition", "flood_month_index", "site_month_index",
                          "class_confidence"], resampling="nearest")  # fmt: skip
    return total


def _write_alerts(
    out: Path, months: list[date], features: list[dict[str, Any]], grid: PixelGrid, *, confirmable: int
) -> int:
    """Write ``months/YYYY-MM/alerts.geojson`` for every month: its floods, and its urbanisations and
    demolitions when the month is among the first ``confirmable`` (later ones cannot have held
    ``persist`` months yet). Returns the number of alerts written."""
    crs = {"type": "name", "properties": {"name": grid.crs}}
    total = 0
    for k, month in enumerate(months):
        onset = f"{month:%Y-%m}"
        chosen = [
            f for f in features
            if f["properties"]["onset"] == onset and (k < confirmable or f["properties"]["type"] == "flood")
        ]  # fmt: skip
        total += len(chosen)
        path = out / "months" / onset / "alerts.geojson"
        output_folder(path.parent)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": chosen}))
    return total


def _report(cfg: MonitorConfig, out: Path, months: list[date]) -> Path:
    from gee_fusion.report.monitoring_page import write_monitoring_page

    if not months:
        raise DataError("Nothing to report: no month was monitored.")
    return write_monitoring_page(out, name=cfg.name, months=months)
