"""The in-cloud Random Forest job: samples drawn on the server over the area, the forest trained
and assessed on the server on held-out spatial blocks, block vs random-pixel cross-validation,
the sensor ablation, the classic baselines on the same samples, and the land-cover map.

``engine`` and ``project`` are read by the CLI and ``ee_scripts/``; the job runs on the engine
already connected. The samples are drawn once on the server, brought here (the baselines need
them) and sent back inline for every forest, so the stack is computed once for sampling.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ee
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.classes import NO_LABEL, ClassTable
from gee_fusion.classic.baselines import BASELINES, Baseline, BaselineResult, run_baselines
from gee_fusion.classic.cloud_rf import PREDICTED, RFAssessment, RFOptions, assess_rf
from gee_fusion.classic.labels import (
    LABEL,
    LabelsConfig,
    check_label_grid,
    check_label_values,
    grouped_labels,
    source_labels,
)  # fmt: skip
from gee_fusion.classic.samples import (
    BLOCK_FOLD,
    PIXEL_FOLD,
    SampleTable,
    SamplingConfig,
    check_class_counts,
    draw_samples,
    sample_table,
)  # fmt: skip
from gee_fusion.config import load_yaml
from gee_fusion.engine import EngineChoice, ensure_connected
from gee_fusion.export.area import AreaConfig
from gee_fusion.export.blocks import BLOCK, SPLIT, BlockSplit
from gee_fusion.export.fetch import grid_aoi
from gee_fusion.export.image_export import export_image
from gee_fusion.export.job import ProductConfig, product_image
from gee_fusion.io.atomic import atomic_path, output_folder
from gee_fusion.io.console import say

SERIES_FILL = -9999.0
"""Value of monthly-series inputs in months without a valid observation (trees split it off)."""


class BlocksConfig(BaseModel):
    """The held-out spatial blocks."""

    model_config = ConfigDict(extra="forbid")

    block_px: int = Field(256, ge=8, description="Block side in pixels.")
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = Field(42, ge=0)


class CloudRFConfig(BaseModel):
    """The in-cloud RF job (the YAML of ``ee_scripts/cloud_rf.py``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("cloud_rf", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    engine: EngineChoice = "local"
    project: str | None = None
    stack: ProductConfig = Field(default_factory=ProductConfig)
    area: AreaConfig = Field(default_factory=AreaConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    blocks: BlocksConfig = Field(default_factory=BlocksConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    rf: RFOptions = Field(default_factory=RFOptions)
    ablation: bool = Field(True, description="Also assess S1-only and S2-only forests.")
    baselines: list[Baseline] = Field(default_factory=lambda: list(BASELINES))
    map: bool = Field(True, description="Write the forest's land-cover map (COG with colour table).")


def load_cloud_rf_config(path: str | Path) -> CloudRFConfig:
    """Read an in-cloud RF YAML (errors name the file, the key and what is allowed)."""
    return load_yaml(path, CloudRFConfig, what="in-cloud RF config")


@dataclass(frozen=True)
class CloudRFResult:
    """What the job measured and wrote."""

    table: ClassTable
    split: BlockSplit
    inputs: list[str]
    samples: SampleTable
    rf: RFAssessment
    ablation: dict[str, RFAssessment]
    baselines: list[BaselineResult]
    map_path: Path | None
    record: Path
    seconds: float


def sensor_of(band: str) -> str:
    """``S1`` or ``S2``: the sensor an input band comes from."""
    if band.startswith(("S1_", "VV_", "VH_", "VVVH_")):
        return "S1"
    return "S2"


def stack_inputs(cfg: CloudRFConfig, stack: ee.Image) -> tuple[ee.Image, list[str]]:
    """The classifier's inputs: the product's bands (valid-observation counts left out; months
    without an observation filled with :data:`SERIES_FILL`)."""
    names = [str(b) for b in stack.bandNames().getInfo() or []]
    inputs = [b for b in names if "_count_" not in b]
    image = stack.select(inputs)
    if cfg.stack.product == "monthly_series":
        image = image.unmask(SERIES_FILL, False)
    return image, inputs


def table_collection(table: SampleTable) -> ee.FeatureCollection:
    """The samples as an inline FeatureCollection (what the server-side forests learn from)."""
    features = []
    for i in range(len(table.y)):
        props: dict[str, Any] = {k: float(v) for k, v in zip(table.inputs, table.x[i], strict=True)}
        props.update({
            LABEL: int(table.y[i]), BLOCK: int(table.block[i]), SPLIT: int(table.split[i]),
            BLOCK_FOLD: int(table.block_fold[i]), PIXEL_FOLD: int(table.pixel_fold[i]),
        })  # fmt: skip
        features.append(ee.Feature(None, props))
    return ee.FeatureCollection(features)


def run_cloud_rf(
    cfg: CloudRFConfig,
    out_dir: str | Path,
    *,
    split: BlockSplit | None = None,
    progress: bool = True,
) -> CloudRFResult:
    """Run the in-cloud RF job over ``cfg.area`` into ``out_dir``.

    Args:
        cfg: The job's settings.
        out_dir: Output folder (``NAME.json``, ``NAME_map.tif``).
        split: The held-out blocks to use (default: ``cfg.blocks`` over the area). The main job
            passes the patch store's, so the forest and the deep models hold out the same ground.
        progress: Stages and progress bars on stderr.

    Raises:
        DataError: labels outside the class table, a class with fewer samples than folds, a
            vector label source without its class property, no training or test sample.
    """
    start = time.perf_counter()
    out = output_folder(out_dir)
    ensure_connected()
    grid = cfg.area.grid()
    split = split or BlockSplit(grid, cfg.blocks.block_px, cfg.blocks.fractions, cfg.blocks.seed)
    table = cfg.labels.table()
    stack, inputs = stack_inputs(cfg, product_image(cfg.stack, split.grid))
    check_label_grid(cfg.labels, split.grid)
    raw = source_labels(cfg.labels)
    check_label_values(raw, grid_aoi(split.grid), split.grid, codes=cfg.labels.source_codes())
    labels = grouped_labels(cfg.labels, raw)
    say(progress, f"In-cloud RF {cfg.name}: {len(inputs)} inputs ({cfg.stack.product}), "
         f"{table.scheme} classes, "
         f"{split.n_blocks} blocks of {split.block_px} px")  # fmt: skip
    t0 = time.perf_counter()
    samples = sample_table(draw_samples(stack, labels, split, cfg.sampling), inputs)
    check_class_counts(samples, table, folds=cfg.sampling.folds)
    say(progress, f"  {len(samples.y)} samples drawn in {time.perf_counter() - t0:.0f}s")
    inline = table_collection(samples)
    t0 = time.perf_counter()
    rf, assessment = assess_rf(inline, inputs, cfg.rf, table, folds=cfg.sampling.folds)
    say(progress, f"  forest + {2 * cfg.sampling.folds} CV forests in {time.perf_counter() - t0:.0f}s: "
         f"OA {assessment.matrix.overall_accuracy:.3f} on the test blocks")  # fmt: skip
    ablation = {}
    sensors = sorted({sensor_of(b) for b in inputs})
    if cfg.ablation and len(sensors) > 1:
        for sensor in sensors:
            subset = [b for b in inputs if sensor_of(b) == sensor]
            ablation[sensor] = assess_rf(inline, subset, cfg.rf, table)[1]
    baselines = run_baselines(samples, table, names=cfg.baselines, seed=cfg.rf.seed) if cfg.baselines else []
    map_path = None
    if cfg.map:
        classified = stack.classify(rf, PREDICTED).toUint8()
        done = export_image(
            classified, split.grid, out, name=f"{cfg.name}_map", dtype="uint8", nodata=NO_LABEL,
            formats=("cog",),
            colormap=table.colormap(), overwrite=True, progress=progress,
        )  # fmt: skip
        map_path = done.cog
    seconds = time.perf_counter() - start
    result = CloudRFResult(table, split, inputs, samples, assessment, ablation, baselines, map_path,
                           out / f"{cfg.name}.json", seconds)  # fmt: skip
    _write_record(cfg, result)
    return result


def _assessment_dict(a: RFAssessment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "matrix": a.matrix.to_dict(),
        "importance": a.importance,
        "oob_error": a.out_of_bag_error,
    }
    if a.cv_block and a.cv_pixel:
        out["cv"] = {"spatial_block": a.cv_block.as_dict(), "random_pixel": a.cv_pixel.as_dict()}
    return out


def _write_record(cfg: CloudRFConfig, r: CloudRFResult) -> None:
    counts = {int(c): int(n) for c, n in zip(*np.unique(r.samples.y, return_counts=True), strict=True)}
    splits = np.unique(r.samples.split, return_counts=True)
    per_split = {int(k): int(v) for k, v in zip(*splits, strict=True)}
    record = {
        "format": "gee_fusion.cloud_rf/1",
        "config": cfg.model_dump(mode="json", exclude={"engine", "project"}),
        "engine": ensure_connected().engine, "split_id": r.split.fingerprint(), "inputs": r.inputs,
        "samples": {"total": len(r.samples.y), "per_class": counts,
                    "per_split": per_split},
        "rf": _assessment_dict(r.rf), "ablation": {k: _assessment_dict(v) for k, v in r.ablation.items()},
        "baselines": [{"name": b.name, "matrix": b.matrix.to_dict(), "fit_seconds": b.fit_seconds,
                       "importance": b.importance} for b in r.baselines],
        "map": None if r.map_path is None else r.map_path.name, "seconds": round(r.seconds, 1),
    }  # fmt: skip
    with atomic_path(r.record, suffix=".json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, allow_nan=False))
