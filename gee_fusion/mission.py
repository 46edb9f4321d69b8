"""The mission's main job (``gee-fusion demo``, ``make demo``): urban land-cover mapping from
Sentinel-1 + Sentinel-2 over a city, the in-cloud Random Forest and a deep model compared on the
same held-out blocks, in one report.

Steps, on the connected engine:

1. the held-out blocks of the area (:func:`gee_fusion.export.patches.block_split`), shared by
   every model;
2. the in-cloud RF on the fusion-20 stack (:mod:`gee_fusion.classic.job`): server-drawn samples,
   block and random-pixel cross-validation, sensor ablation, scikit-learn baselines, its map;
3. the reference labels exported on the same grid (COG with colour table);
4. the patch store of the monthly S1 + S2 stacks, one deep model trained on a short schedule
   (GPU when there is one), its map of the area;
5. ``report.html`` and ``metrics.json`` comparing them all, and a one-screen summary.

The defaults are sized to finish in about ten minutes on two CPU cores from a fresh clone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.classes import NO_LABEL, class_table
from gee_fusion.classic.baselines import Baseline
from gee_fusion.classic.cloud_rf import RFOptions
from gee_fusion.classic.samples import SamplingConfig
from gee_fusion.config import load_yaml
from gee_fusion.engine import EngineChoice, ensure_connected
from gee_fusion.export.area import AreaConfig
from gee_fusion.grid import PixelGrid
from gee_fusion.io.console import say
from gee_fusion.local.world.config import DEFAULT_WORLD

_X0, _Y1 = DEFAULT_WORLD.origin
DEFAULT_BASELINES: tuple[Baseline, ...] = ("random_forest", "extra_trees", "svm_rbf", "knn", "mlp")


class DeepSettings(BaseModel):
    """The deep model of the main job and its (short) schedule."""

    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] = Field(
        default_factory=lambda: {
            "name": "unet",
            "encoder": "vgg16",
            "base_width": 16,
            "sensors": ["S1", "S2"],
        },
        description="A model spec as in an experiment YAML's `model`.",
    )
    max_epochs: int = Field(15, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(2e-3, gt=0)
    device: str = Field("auto", description="auto (GPU when there is one), cpu or cuda.")


class MissionConfig(BaseModel):
    """The main job's settings (``gee-fusion demo --config``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("demo_city", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    engine: EngineChoice = "local"
    project: str | None = None
    out: Path = Path("outputs/demo")
    area: AreaConfig = Field(
        default_factory=lambda: AreaConfig(origin=(_X0 + 2800.0, _Y1 - 2800.0), size_px=(640, 640)),
        description="Default: a 6.4 x 6.4 km part of the demo city with its centre and outskirts.",
    )
    year: int = Field(2021, ge=2015, le=2100)
    scheme: Literal[14, 10, 6] = 10
    months: list[int] = Field(
        default_factory=lambda: [6, 7, 8, 9], description="Months of the deep model's stacks."
    )
    patch_size: int = Field(32, ge=16)
    block_patches: int = Field(2, ge=1, description="Held-out block side, in patches.")
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = Field(42, ge=0)
    sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(points_per_class=200, folds=5))
    rf: RFOptions = Field(default_factory=lambda: RFOptions(number_of_trees=100))
    baselines: list[Baseline] = Field(default_factory=lambda: list(DEFAULT_BASELINES))
    deep: DeepSettings = Field(default_factory=DeepSettings)


def load_mission_config(path: str | Path) -> MissionConfig:
    """Read a main-job YAML (errors name the file, the key and what is allowed)."""
    return load_yaml(path, MissionConfig, what="main job config")


@dataclass(frozen=True)
class MissionResult:
    """Where the report is and what it found."""

    report: Path
    metrics: Path
    best: list[dict[str, Any]]
    """The best model of each evaluation set (``metrics.json``'s ``best``): models are only ranked
    against models scored on the same pixels."""
    leakage_points: float | None
    cv_pixel: float | None
    cv_block: float | None
    seconds: float
    stages: dict[str, float]

    def summary(self) -> str:
        """The one-screen summary printed at the end."""
        lines = [
            f"Best model on {b['evaluated_on']} ({b['pixels']} px, {b['models']} models compared): "
            f"{b['name']} (weighted F1 {b['f1_weighted']:.3f})"
            for b in self.best
        ]
        if self.leakage_points is not None:
            lines.append(
                f"Random-pixel CV accuracy {self.cv_pixel:.3f} vs spatial-block CV {self.cv_block:.3f}: "
                f"{self.leakage_points:+.1f} points of optimism from neighbouring pixels"
            )
        lines.append("Stages: " + ", ".join(f"{k} {v:.0f}s" for k, v in self.stages.items()))
        lines.append(f"Report: {self.report}  (metrics: {self.metrics}; {self.seconds:.0f}s in all)")
        return "\n".join(lines)


def run_mission(cfg: MissionConfig, *, progress: bool = True) -> MissionResult:
    """Run the main job into ``cfg.out`` (see the module docstring).

    Raises:
        GeeFusionError: any stage's typed error (labels, samples, exports, training).
    """
    from gee_fusion.classic.job import CloudRFConfig, run_cloud_rf
    from gee_fusion.classic.labels import LabelsConfig, grouped_labels, source_labels
    from gee_fusion.export.image_export import export_image
    from gee_fusion.export.job import ProductConfig
    from gee_fusion.export.patches import block_split
    from gee_fusion.io.atomic import output_folder
    from gee_fusion.report.comparison import read_cloud_record, read_deep_run, score_map_on_store
    from gee_fusion.report.html import write_report

    start = time.perf_counter()
    out = output_folder(cfg.out)
    ensure_connected()
    stages: dict[str, float] = {}
    patches = patch_config(cfg)
    split = block_split(patches)
    table = class_table(cfg.scheme)
    labels = LabelsConfig(scheme=cfg.scheme)
    say(
        progress,
        f"[1/4] In-cloud Random Forest on the fusion-20 stack ({split.grid.width} x {split.grid.height} px, "
        f"{split.n_blocks} blocks of {split.block_px} px)",
    )
    t0 = time.perf_counter()
    rf_cfg = CloudRFConfig(
        name="cloud_rf",
        stack=ProductConfig(product="fusion20", year=cfg.year),
        area=cfg.area,
        labels=labels,
        sampling=cfg.sampling,
        rf=cfg.rf,
        baselines=cfg.baselines,
    )
    rf = run_cloud_rf(rf_cfg, out / "cloud_rf", split=split, progress=progress)
    reference = export_image(
        grouped_labels(labels, source_labels(labels)).toUint8(),
        split.grid,
        out,
        name="reference",
        dtype="uint8",
        nodata=NO_LABEL,
        formats=("cog",),
        colormap=table.colormap(),
        overwrite=True,
        progress=False,
    ).cog
    stages["in-cloud RF"] = time.perf_counter() - t0
    run, train_seconds = _deep(cfg, patches, split.grid, out, progress)
    stages["deep model"] = train_seconds
    say(progress, "[4/4] Report")
    t0 = time.perf_counter()
    cloud = read_cloud_record(rf.record)
    deep_run = read_deep_run(run)
    on_patches = score_map_on_store(cloud.runs[0], out / "patches.zarr")
    schedule = (
        f"The deep model ({deep_run.name}) trained {cfg.deep.max_epochs} epochs at most, a short schedule "
        "sized for a CPU: the published models train for up to 200 epochs on a GPU."
    )
    notes = [
        f"Area: {split.grid.width} x {split.grid.height} px of {split.grid.crs} at "
        f"{abs(split.grid.transform[0]):g} m; engine {ensure_connected().engine}.",
        "The in-cloud RF and the baselines are scored on stratified samples of the test blocks; the deep "
        "model on every labelled pixel of the test patches (the same blocks); the in-cloud RF's map is also "
        "scored on those very pixels.",
        schedule,
    ]
    report, metrics = write_report(
        out,
        runs=[*cloud.runs, on_patches, deep_run],
        cloud=cloud,
        reference_map=reference,
        title=f"{cfg.name}: urban land cover from S1 + S2, models compared",
        notes=notes,
    )
    stages["report"] = time.perf_counter() - t0
    import json

    data = json.loads(metrics.read_text())
    cv = data.get("cv")
    return MissionResult(
        report,
        metrics,
        list(data["best"]),
        cv["leakage_points"] if cv else None,
        cv["random_pixel"]["mean"] if cv else None,
        cv["spatial_block"]["mean"] if cv else None,
        time.perf_counter() - start,
        stages,
    )


def patch_config(cfg: MissionConfig) -> Any:
    """The main job's patch export (area, months, patches and held-out blocks shared by every model)."""
    from gee_fusion.export.patches import PatchExportConfig

    return PatchExportConfig(
        area=cfg.area, year=cfg.year, months=cfg.months, patch_size=cfg.patch_size,
        block_patches=cfg.block_patches, split_fractions=cfg.split_fractions, seed=cfg.seed, prior_asset=None,
    )  # fmt: skip


def deep_experiment(
    cfg: MissionConfig, patches: Any, out: Path, *, name: str = "deep", model: dict[str, Any] | None = None
) -> Any:
    """The experiment of the main job's deep model (or of ``model`` on the same patch store,
    data and schedule: ``training/rank_demo.py`` ranks models this way)."""
    from gee_fusion.deep.config import ExperimentConfig

    return ExperimentConfig.model_validate(
        {
            "name": name,
            "seed": cfg.seed,
            "out_dir": str(out / "runs"),
            "patches": patches.model_dump(mode="json"),
            "data": {
                "store": str(out / "patches.zarr"),
                "classes": cfg.scheme,
                "batch_size": cfg.deep.batch_size,
            },
            "model": model or cfg.deep.model,
            "optim": {
                "lr": cfg.deep.lr,
                "max_epochs": cfg.deep.max_epochs,
                "plateau_patience": 2,
                "early_stopping_patience": max(3, cfg.deep.max_epochs),
                "monitor": "val_weighted_f1",
            },
        }
    )


def _deep(cfg: MissionConfig, patches: Any, grid: PixelGrid, out: Path, progress: bool) -> tuple[Path, float]:
    """Build the patch store, train the deep model, map the area with it."""
    import warnings

    from gee_fusion.deep.infer.predict import MostlyNoDataWarning, predict_area
    from gee_fusion.deep.train.training import train

    t0 = time.perf_counter()
    experiment = deep_experiment(cfg, patches, out)
    say(progress, f"[2/4] Patch store of the monthly S1 + S2 stacks ({cfg.year} months {cfg.months})")
    say(
        progress,
        f"[3/4] Deep model {cfg.deep.model.get('name')} for at most {cfg.deep.max_epochs} epochs "
        f"({cfg.deep.device})",
    )
    result = train(experiment, device=cfg.deep.device, progress=progress)
    area = AreaConfig(
        crs=grid.crs,
        origin=(grid.transform[2], grid.transform[5]),
        size_px=(grid.width, grid.height),
        scale=abs(grid.transform[0]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MostlyNoDataWarning)
        predict_area(
            result.best_checkpoint,
            area,
            out=result.run_dir / "map.tif",
            tile=128,
            overlap=32,
            device=None if cfg.deep.device == "auto" else cfg.deep.device,
            progress=progress,
        )
    return result.run_dir, time.perf_counter() - t0
