"""Experiment configuration of the deep stage: one YAML per experiment (see ``training/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.config import load_yaml
from gee_fusion.deep.models.spec import ModelSpec
from gee_fusion.export.patches import PatchExportConfig


class DataSection(BaseModel):
    """Which patches, how they are scaled and augmented."""

    model_config = ConfigDict(extra="forbid")

    store: Path = Field(description="Patch store (.zarr); built from `patches` when missing.")
    classes: Literal[14, 10, 6] = 10
    normalisation: Literal["zscore", "quantile"] = "zscore"
    augment: bool = Field(default=True, description="Random rot90 + flip of training patches.")
    copy_paste: float = Field(default=0.0, ge=0.0, le=1.0, description="Copy-paste probability.")
    prior: bool = Field(default=False, description="Feed the store's prior map (e.g. WorldCover).")
    batch_size: int = Field(default=8, ge=1)
    num_workers: int = Field(default=0, ge=0)
    bands: dict[Literal["S2", "S1"], list[str]] | None = Field(
        default=None, description="Expected bands per sensor; a store that differs is refused."
    )


class OptimSection(BaseModel):
    """Optimiser, schedule and stopping (the seed paper's protocol by default)."""

    model_config = ConfigDict(extra="forbid")

    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    plateau_factor: float = Field(default=0.1, gt=0, lt=1)
    plateau_patience: int = Field(default=5, ge=0)
    early_stopping_patience: int = Field(default=20, ge=1)
    max_epochs: int = Field(default=200, ge=1)
    class_weighting: Literal["inverse_frequency", "seed", "none"] = "inverse_frequency"
    loss: Literal["ce", "ce_dice"] = "ce"
    dice_weight: float = Field(default=1.0, ge=0)
    monitor: Literal["val_loss", "val_weighted_f1"] = "val_loss"


class TrainerSection(BaseModel):
    """Where and how Lightning runs (``auto`` picks the GPU when there is one)."""

    model_config = ConfigDict(extra="forbid")

    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = "auto"
    num_nodes: int = Field(default=1, ge=1)
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true"] = "auto"
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    deterministic: bool = True
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    log_every_n_steps: int = Field(default=10, ge=1)


class ExperimentConfig(BaseModel):
    """One experiment: data, model, optimisation and trainer settings, and where outputs go."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    out_dir: Path = Path("outputs/runs")
    patches: PatchExportConfig | None = Field(
        default=None, description="How to build data.store when it does not exist yet."
    )
    data: DataSection
    model: ModelSpec
    optim: OptimSection = Field(default_factory=OptimSection)
    trainer: TrainerSection = Field(default_factory=TrainerSection)

    @property
    def run_dir(self) -> Path:
        """Folder of this experiment's checkpoints, curves and metrics."""
        return self.out_dir / self.name


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML; relative paths stay relative to the working folder.

    Raises:
        ConfigError: unreadable or empty file, or invalid settings (the message lists every
            bad key, what was given and what is allowed).
    """
    return load_yaml(path, ExperimentConfig, what="experiment config")
