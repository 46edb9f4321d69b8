"""Training an experiment end to end: data, model, Lightning trainer, test metrics, figures."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader

from gee_fusion.classes import GROUPS_6, GROUPS_10, NAMES_6, nested_groups
from gee_fusion.deep.config import ExperimentConfig
from gee_fusion.deep.datasets import EpochSampler, PatchDataset, check_bands, class_weights
from gee_fusion.deep.devices import resolve_device
from gee_fusion.deep.train.curves import LearningCurves
from gee_fusion.deep.train.module import TEST_MATRIX, LandCoverModule
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.export.patch_store import PatchStore, config_hash, open_patch_store
from gee_fusion.io.atomic import atomic_path
from gee_fusion.metrics.confusion import ConfusionMatrix


@dataclass(frozen=True)
class TrainResult:
    """Where a run's outputs are, and its test metrics."""

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics_json: Path
    test: dict[str, float]
    epochs: int
    seconds: float


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bf16 mixed precision on a GPU that supports it, full float32 elsewhere."""
    if precision != "auto":
        return precision
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


class ReleaseSpawnedGroup(L.Callback):
    """Ends the process group in each worker that ``ddp_spawn`` started, once its stage is over.

    Lightning destroys only NCCL groups when a process exits. A gloo group left to the interpreter's
    teardown can abort a worker that already finished its work ("terminate called without an active
    exception", SIGABRT) while its peer is still sending its results, and the whole run then fails.
    Both ranks meet at a barrier and then destroy the group, while each peer is still alive.
    """

    def __init__(self) -> None:
        self.caller = os.getpid()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dist = torch.distributed
        if os.getpid() == self.caller or not (dist.is_available() and dist.is_initialized()):
            return  # the caller's own process (any strategy but spawn) keeps its group
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Keep Lightning's advertisements ("Tip: ... try installing litlogger") and its known,
    harmless warnings away from users; real warnings still show."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*tensorboardX.*")
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def ensure_store(cfg: ExperimentConfig, *, progress: bool = True) -> PatchStore:
    """Open the experiment's patch store, building it from ``cfg.patches`` when it is missing."""
    if not cfg.data.store.exists():
        if cfg.patches is None:
            raise ConfigError(
                f"No patch store at {cfg.data.store} and the experiment has no `patches` section to build it."
            )
        from gee_fusion.export.patches import export_patches

        export_patches(cfg.patches, cfg.data.store, progress=progress)
    store = open_patch_store(cfg.data.store)
    if cfg.patches is not None:
        want = config_hash(cfg.patches.model_dump(mode="json"))
        if want != store.manifest.get("recipe_hash"):
            raise ConfigError(
                f"The patch store {cfg.data.store} was built by another recipe (hash "
                f"{store.manifest.get('recipe_hash')}, the experiment's `patches` gives {want}): delete the "
                "store to rebuild it, or point data.store elsewhere."
            )
    if cfg.data.bands:
        check_bands(store, {str(k): v for k, v in cfg.data.bands.items()})
    return store


def datasets(cfg: ExperimentConfig, store: PatchStore) -> dict[str, PatchDataset]:
    """train / val / test datasets of the experiment (augmentation on train only)."""
    sensors = cfg.model.sensors
    prior = cfg.data.prior or getattr(cfg.model, "use_prior", False)
    common: dict[str, Any] = {
        "sensors": sensors,
        "scheme": cfg.data.classes,
        "normalisation": cfg.data.normalisation,
        "prior": prior,
        "seed": cfg.seed,
    }
    return {
        "train": PatchDataset(
            store, split="train", augment=cfg.data.augment, copy_paste=cfg.data.copy_paste, **common
        ),
        "val": PatchDataset(store, split="val", **common),
        "test": PatchDataset(store, split="test", **common),
    }


def check_world_size(ds: Mapping[str, PatchDataset], world: int) -> None:
    """Evaluation shards each split's patches over the processes: every process needs one.

    Raises:
        DataError: A validation or test split with fewer patches than processes.
    """
    for split in ("val", "test"):
        if len(ds[split]) < world:
            raise DataError(
                f"The {split} split has {len(ds[split])} patches for {world} training processes: use at "
                f"most {len(ds[split])} devices (trainer.devices x num_nodes) or a store with more patches."
            )


def loader(ds: PatchDataset, cfg: ExperimentConfig, *, train: bool) -> DataLoader[dict[str, torch.Tensor]]:
    """A DataLoader whose sampler makes batches a function of (seed, epoch)."""
    return DataLoader(
        ds,  # indexed by (epoch, i) tuples from EpochSampler
        batch_size=cfg.data.batch_size,
        sampler=EpochSampler(len(ds), seed=cfg.seed, shuffle=train),
        num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def build_module(cfg: ExperimentConfig, store: PatchStore, train: PatchDataset) -> LandCoverModule:
    """The Lightning module for ``cfg`` (seeded: same weights for the same seed)."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    table = train.table
    weights = class_weights(train.labels, table.num_classes, method=cfg.optim.class_weighting)
    inputs = {s: [train.inputs[s].shape[1], train.inputs[s].shape[2]] for s in train.sensors}
    return LandCoverModule(
        experiment=cfg.model_dump(mode="json"),
        inputs=inputs,
        class_names=list(table.names),
        class_codes=list(table.codes),
        class_weights=[float(w) for w in weights],
        bands={s: store.bands(s) for s in train.sensors},
        normalisation={s: {b: vars(st) for b, st in store.normalisation[s].items()} for s in train.sensors},
        recipe=dict(store.manifest.get("recipe", {})),
    )


def build_trainer(
    cfg: ExperimentConfig, *, device: str, progress: bool, max_epochs: int | None, resume: bool = False
) -> L.Trainer:
    """The Lightning trainer with checkpoints (best, and last = every epoch), early stopping and
    learning curves."""
    run = cfg.run_dir
    monitor, mode = (cfg.optim.monitor, "min" if cfg.optim.monitor == "val_loss" else "max")
    folder = run / "checkpoints"
    callbacks: list[L.Callback] = [
        ModelCheckpoint(
            dirpath=folder, filename="best", monitor=monitor, mode=mode, enable_version_counter=False
        ),
        ModelCheckpoint(dirpath=folder, filename="last", save_top_k=1, enable_version_counter=False),
        EarlyStopping(monitor=monitor, mode=mode, patience=cfg.optim.early_stopping_patience),
        LearningCurves(run / "learning_curves.png"),
        ReleaseSpawnedGroup(),
    ]
    t = cfg.trainer
    return L.Trainer(
        accelerator=device,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=resolve_precision(t.precision, device),  # type: ignore[arg-type]
        deterministic=True
        if (t.deterministic and device == "cpu")
        else ("warn" if t.deterministic else False),
        max_epochs=cfg.optim.max_epochs if max_epochs is None else max_epochs,
        callbacks=callbacks,
        default_root_dir=run,
        logger=L.pytorch.loggers.CSVLogger(run, name="logs", version=None if resume else ""),
        enable_progress_bar=progress,
        enable_model_summary=progress,
        use_distributed_sampler=False,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        log_every_n_steps=t.log_every_n_steps,
        num_sanity_val_steps=0,
    )


def evaluation_report(cm: ConfusionMatrix, scheme: int) -> dict[str, Any]:
    """metrics.json content: the matrix with every metric, and the 6-class aggregation of 10."""
    report: dict[str, Any] = {"classes": scheme, "test": cm.to_dict()}
    if scheme == 10:
        coarse = cm.aggregate_codes(nested_groups(GROUPS_10, GROUPS_6), NAMES_6)
        report["test_aggregated_6"] = coarse.to_dict()
    return report


def train(
    cfg: ExperimentConfig,
    *,
    device: str | None = None,
    resume: str | Path | None = None,
    max_epochs: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``cfg``'s model, evaluate the best checkpoint on the test split, write outputs.

    Args:
        cfg: The experiment.
        device: ``cpu``, ``cuda`` or ``auto`` (overrides ``cfg.trainer.accelerator``).
        resume: A checkpoint to resume from (``last`` = this run's last checkpoint).
        max_epochs: Override of ``cfg.optim.max_epochs``.
        progress: Show progress bars and the model summary.

    Returns:
        Paths of the checkpoints and ``metrics.json``, and the test summary metrics.

    Raises:
        ConfigError: ``max_epochs`` below 1, an unknown device, or an output folder that is a file.
    """
    with quiet_lightning():
        return _train(cfg, device=device, resume=resume, max_epochs=max_epochs, progress=progress)


def _train(
    cfg: ExperimentConfig,
    *,
    device: str | None,
    resume: str | Path | None,
    max_epochs: int | None,
    progress: bool,
) -> TrainResult:
    t0 = time.perf_counter()
    if max_epochs is not None and max_epochs < 1:
        raise ConfigError(f"max_epochs must be at least 1, got {max_epochs}.")
    if cfg.run_dir.exists() and not cfg.run_dir.is_dir():
        raise ConfigError(f"The run folder {cfg.run_dir} is a file: change out_dir or name.")
    dev = resolve_device(device or cfg.trainer.accelerator).type  # an explicit device wins
    store = ensure_store(cfg, progress=progress)
    ds = datasets(cfg, store)
    module = build_module(cfg, store, ds["train"])
    trainer = build_trainer(
        cfg, device=dev, progress=progress, max_epochs=max_epochs, resume=resume is not None
    )
    check_world_size(ds, trainer.num_nodes * trainer.num_devices)
    train_loader = loader(ds["train"], cfg, train=True)
    ckpt = None
    if resume is not None:
        ckpt = cfg.run_dir / "checkpoints" / "last.ckpt" if str(resume) == "last" else Path(resume)
        from gee_fusion.deep.train.checkpoints import check_checkpoint, next_epoch

        checkpoint = check_checkpoint(ckpt, module)
        # Lightning may build the first resumed epoch's loader iterator (with workers, reading the
        # sampler) before it sets the epoch: set it now, or that epoch would replay epoch 0's batches.
        cast(EpochSampler, train_loader.sampler).set_epoch(next_epoch(checkpoint))
    trainer.fit(module, train_loader, loader(ds["val"], cfg, train=False), ckpt_path=ckpt, weights_only=True)
    run = cfg.run_dir
    last = run / "checkpoints" / "last.ckpt"
    best = run / "checkpoints" / "best.ckpt"
    best = best if best.is_file() else last
    trainer.test(
        module, loader(ds["test"], cfg, train=False), ckpt_path=str(best), verbose=False, weights_only=True
    )
    trainer.strategy.barrier("test-matrix")  # rank 0 has written the summed matrix
    from gee_fusion.deep.train.checkpoints import read_checkpoint

    epochs = int(read_checkpoint(last)["epoch"]) + 1
    cm = ConfusionMatrix.load_json(run / TEST_MATRIX)
    result = TrainResult(
        run_dir=run,
        best_checkpoint=best,
        last_checkpoint=last,
        metrics_json=run / "metrics.json",
        test=cm.summary() if cm.total else {},
        epochs=epochs,
        seconds=time.perf_counter() - t0,
    )
    if not trainer.is_global_zero:
        return result
    report = evaluation_report(cm, cfg.data.classes)
    report.update(
        {
            "experiment": cfg.name,
            "model": cfg.model.model_dump(mode="json"),
            "parameters": sum(p.numel() for p in module.model.parameters()),
            "epochs": epochs,
            "best_checkpoint": best.name,
            "device": dev,
            "patch_store": {"path": str(cfg.data.store), "recipe_hash": store.manifest.get("recipe_hash")},
            "split_id": store.manifest.get("split_id"),
            "engine": store.manifest.get("engine"),
        }
    )
    with atomic_path(run / "metrics.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=float))
    from gee_fusion.report.confusion_plot import plot_confusion

    plot_confusion(cm, run / "confusion_test.png", normalize="true", title=f"{cfg.name} - test split")
    return result
