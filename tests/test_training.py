"""Training end to end on a tiny generated store: outputs, resume == uninterrupted, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gee_fusion.deep.config import ExperimentConfig, load_experiment
from gee_fusion.deep.train.checkpoints import load_module, read_checkpoint
from gee_fusion.deep.train.training import train
from gee_fusion.errors import CheckpointError, ConfigError, DataError
from gee_fusion.metrics.confusion import ConfusionMatrix
from tests.deep_data import make_store

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def config(tmp: Path, name: str, **model: Any) -> ExperimentConfig:
    spec = {"name": "unet", "encoder": "vgg16", "base_width": 4, "sensors": ["S2", "S1"], **model}
    return ExperimentConfig.model_validate(
        {
            "name": name,
            "seed": 7,
            "out_dir": str(tmp / "runs"),
            "data": {"store": str(tmp / "s.zarr"), "batch_size": 4, "classes": 10},
            "model": spec,
            "optim": {"max_epochs": 3, "lr": 5e-3, "plateau_patience": 0, "plateau_factor": 0.5},
        }
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    make_store(root / "s.zarr", n=16)
    return root


@pytest.fixture(scope="module")
def trained(tmp: Path) -> Any:
    return train(config(tmp, "full"), progress=False)


def test_outputs_and_metrics(trained: Any, tmp: Path) -> None:
    run = trained.run_dir
    for name in ("metrics.json", "learning_curves.png", "learning_curves.csv", "confusion_test.png"):
        assert (run / name).stat().st_size > 0
    report = json.loads((run / "metrics.json").read_text())
    cm = ConfusionMatrix.from_dict(report["test"])
    assert cm.total > 0
    assert report["test"]["metrics"]["kappa"] == pytest.approx(cm.kappa)
    coarse = ConfusionMatrix.from_dict(report["test_aggregated_6"])
    assert coarse.num_classes == 6 and coarse.total == cm.total
    assert coarse.overall_accuracy >= cm.overall_accuracy - 1e-12  # merging classes cannot hurt OA
    curves = (run / "learning_curves.csv").read_text().splitlines()
    assert len(curves) == 1 + trained.epochs
    first, last = (
        dict(zip(curves[0].split(","), r.split(","), strict=True)) for r in (curves[1], curves[-1])
    )
    assert float(last["train_loss"]) < float(first["train_loss"])
    assert trained.test["overall_accuracy"] == pytest.approx(cm.overall_accuracy)


def test_resume_reaches_the_same_model(trained: Any, tmp: Path) -> None:
    part = config(tmp, "part")
    train(part, progress=False, max_epochs=2)
    resumed = train(part, progress=False, resume="last", max_epochs=3)
    full_last, part_last = read_checkpoint(trained.last_checkpoint), read_checkpoint(resumed.last_checkpoint)
    assert full_last["epoch"] == part_last["epoch"] == 2  # last.ckpt is the last epoch, not the best
    assert resumed.epochs == trained.epochs == 3
    # the plateau schedule (patience 0) is part of the checkpoint, stepped before it is saved
    assert full_last["plateau"] == part_last["plateau"]
    lrs = [
        float(r.split(",")[-1])
        for r in (trained.run_dir / "learning_curves.csv").read_text().splitlines()[1:]
    ]
    part_lrs = [
        float(r.split(",")[-1])
        for r in (resumed.run_dir / "learning_curves.csv").read_text().splitlines()[1:]
    ]
    assert lrs == part_lrs and len(lrs) == 3
    a, b = full_last["state_dict"], part_last["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    assert resumed.test == pytest.approx(trained.test)


def test_checkpoint_loads_weights_only_and_checks_tables(trained: Any, tmp: Path) -> None:
    module = load_module(trained.best_checkpoint)
    assert not module.training and module.hparams["bands"]["S1"] == ["VV", "VH"]
    with pytest.raises(CheckpointError, match="predicts classes"):
        load_module(trained.best_checkpoint, expect_classes=["a", "b"])
    with pytest.raises(CheckpointError, match="trained on bands"):
        load_module(trained.best_checkpoint, expect_bands={"S2": ["B2"], "S1": ["VV", "VH"]})
    other = config(tmp, "other", encoder="resnet18")
    with pytest.raises(CheckpointError, match="does not match this experiment: model"):
        train(other, progress=False, resume=trained.last_checkpoint, max_epochs=4)
    six = config(tmp, "six").model_copy(deep=True)
    six.data.classes = 6
    with pytest.raises(CheckpointError, match="classes"):
        train(six, progress=False, resume=trained.last_checkpoint, max_epochs=4)
    junk = tmp / "junk.ckpt"
    torch.save({"state_dict": {}}, junk)
    with pytest.raises(CheckpointError, match="not a gee_fusion"):
        read_checkpoint(junk)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        read_checkpoint(tmp / "none.ckpt")


def test_random_truncated_and_corrupt_files_are_checkpoint_errors(trained: Any, tmp: Path) -> None:
    rng = np.random.default_rng(3)
    good = Path(trained.best_checkpoint).read_bytes()
    cases = {
        "random.ckpt": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "truncated.ckpt": good[: len(good) // 2],
        "flipped.ckpt": good[:200] + bytes(b ^ 0xFF for b in good[200:4000]) + good[4000:],
    }
    for name, data in cases.items():
        path = tmp / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            load_module(path)
        message = str(info.value)
        assert name in message and "weights_only` set to `False`" not in message, message


def test_loss_without_weighted_labels_is_zero_not_nan(trained: Any) -> None:
    module = load_module(trained.best_checkpoint)
    logits = torch.randn(2, module.num_classes, 4, 4, requires_grad=True)
    unlabelled = torch.full((2, 4, 4), 255)
    assert module.loss(logits, unlabelled).item() == 0.0
    absent = int(torch.nonzero(module.class_weight == 0)[0]) if (module.class_weight == 0).any() else None
    if absent is not None:
        assert module.loss(logits, torch.full((2, 4, 4), absent)).item() == 0.0
    labels = torch.randint(0, module.num_classes, (2, 4, 4))
    ref = torch.nn.functional.cross_entropy(logits, labels, weight=module.class_weight, ignore_index=255)
    if bool(module.class_weight[labels].sum() > 0):
        torch.testing.assert_close(module.loss(logits, labels), ref)


def test_store_from_another_recipe_is_refused(tmp: Path) -> None:
    from gee_fusion.export.patches import PatchExportConfig

    cfg = config(tmp, "recipe")
    cfg.patches = PatchExportConfig(year=2020)
    with pytest.raises(ConfigError, match="another recipe"):
        train(cfg, progress=False, max_epochs=1)


def test_bad_experiments(tmp: Path) -> None:
    cfg = config(tmp, "bands")
    cfg.data.bands = {"S2": ["B2", "B3", "B4", "B8", "B11"]}
    with pytest.raises(DataError, match="missing \\['B11'\\]"):
        train(cfg, progress=False, max_epochs=1)
    nostore = config(tmp, "nostore")
    nostore.data.store = tmp / "absent.zarr"
    with pytest.raises(ConfigError, match="no `patches` section"):
        train(nostore, progress=False, max_epochs=1)
    bad = tmp / "bad.yaml"
    bad.write_text("name: x\ndata: {store: s.zarr}\nmodel: {name: unet, sensors: [S3]}\n")
    with pytest.raises(ConfigError, match=r"Invalid settings in .*bad\.yaml") as info:
        load_experiment(bad)
    message = str(info.value)  # names the file, the key, what was given and what is allowed
    assert "sensors" in message and "'S3'" in message and "'S2' or 'S1'" in message
    assert "pydantic.dev" not in message
    typo = tmp / "typo.yaml"
    typo.write_text("name: x\ndata: {store: s.zarr, batchsize: 4}\nmodel: {name: unet, sensors: [S2]}\n")
    with pytest.raises(ConfigError, match=r"data\.batchsize: unknown key; allowed keys: .*batch_size"):
        load_experiment(typo)
    empty = tmp / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_experiment(empty)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            train(config(tmp, "gpu"), device="cuda", progress=False)


def test_training_yamls_validate() -> None:
    files = sorted((Path(__file__).parent.parent / "training").glob("*.yaml"))
    assert len(files) >= 10
    names = {load_experiment(f).name for f in files}
    assert len(names) == len(files)
    assert np.all([load_experiment(f).data.classes in (6, 10) for f in files])


@pytest.mark.slow
def test_ddp_spawn_on_two_cpu_processes_counts_each_test_patch_once(tmp: Path) -> None:
    from gee_fusion.export.patch_store import open_patch_store

    cfg = config(tmp, "ddp")
    cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy = "cpu", 2, "ddp_spawn"
    result = train(cfg, progress=False, max_epochs=1)
    store = open_patch_store(cfg.data.store)
    labels = store.ds["labels"].values[store.indices("test")]
    cm = ConfusionMatrix.load_json(result.run_dir / "test_confusion.json")
    assert cm.total == int((labels != 255).sum())  # sharded evaluation: no patch twice, none lost
    assert result.epochs == 1 and json.loads(result.metrics_json.read_text())["epochs"] == 1


def test_bf16_mixed_precision_runs_the_model_in_bfloat16(tmp: Path) -> None:
    """The GPU default (bf16-mixed) exercised on the CPU: convolutions run in bfloat16, loss stays finite."""
    seen: set[torch.dtype] = set()

    def record(module: torch.nn.Module, args: Any, output: Any) -> None:
        if isinstance(module, torch.nn.Conv2d) and module.training:
            seen.add(output.dtype)

    cfg = config(tmp, "bf16")
    cfg.trainer.precision = "bf16-mixed"
    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        result = train(cfg, progress=False, max_epochs=2, device="cpu")
    finally:
        handle.remove()
    assert seen == {torch.bfloat16}
    curves = (result.run_dir / "learning_curves.csv").read_text().splitlines()
    losses = [
        float(dict(zip(curves[0].split(","), r.split(","), strict=True))["train_loss"]) for r in curves[1:]
    ]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    module = load_module(result.run_dir / "checkpoints" / "last.ckpt")
    assert all(p.dtype == torch.float32 for p in module.parameters())  # master weights stay float32
    assert 0.0 <= result.test["overall_accuracy"] <= 1.0


def test_resume_with_loader_workers_replays_no_earlier_epoch(trained: Any, tmp: Path) -> None:
    part = config(tmp, "workers")
    part.data.num_workers = 1
    train(part, progress=False, max_epochs=2)
    resumed = train(part, progress=False, resume="last", max_epochs=3)
    a = read_checkpoint(trained.last_checkpoint)["state_dict"]
    b = read_checkpoint(resumed.last_checkpoint)["state_dict"]
    for key in a:  # the uninterrupted run used no workers: batches depend on (seed, epoch) only
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_resume_refuses_other_codes_and_training_settings(trained: Any, tmp: Path) -> None:
    with pytest.raises(CheckpointError, match="writes class codes"):
        load_module(trained.best_checkpoint, expect_codes=list(range(10, 0, -1)))
    ckpt = torch.load(trained.last_checkpoint, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["class_codes"] = ckpt["hyper_parameters"]["class_codes"][::-1]
    reversed_codes = tmp / "reversed_codes.ckpt"
    torch.save(ckpt, reversed_codes)
    with pytest.raises(CheckpointError, match="class codes"):
        train(config(tmp, "codes"), progress=False, resume=reversed_codes, max_epochs=4)
    seed = config(tmp, "seed")
    seed.seed = 8
    with pytest.raises(CheckpointError, match="experiment 'seed' 7 vs 8"):
        train(seed, progress=False, resume=trained.last_checkpoint, max_epochs=4)
    weighting = config(tmp, "weighting")
    weighting.optim.class_weighting = "none"
    with pytest.raises(CheckpointError, match="'optim'"):
        train(weighting, progress=False, resume=trained.last_checkpoint, max_epochs=4)


def test_splits_too_small_or_unlabelled_are_refused(tmp: Path) -> None:
    from gee_fusion.deep.train.training import check_world_size, datasets, ensure_store

    cfg = config(tmp, "world")
    ds = datasets(cfg, ensure_store(cfg))
    check_world_size(ds, 2)
    with pytest.raises(DataError, match="val split has 2 patches for 3 training processes"):
        check_world_size(ds, 3)
    make_store(tmp / "unlabelled.zarr", n=12, unlabelled=(8, 9))  # the two validation patches
    cfg.data.store = tmp / "unlabelled.zarr"
    with pytest.raises(DataError, match=r"val split .* has no labelled pixel"):
        train(cfg, progress=False, max_epochs=1)


def test_lightning_advertisements_do_not_reach_the_user(tmp: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO):
        train(config(tmp, "quiet"), progress=False, max_epochs=1)
    shown = " ".join(r.getMessage() for r in caplog.records)
    assert "litlogger" not in shown and "Tip:" not in shown, shown
