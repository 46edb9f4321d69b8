"""Training throughput (patches/s) per model: our Lightning pipeline vs a bare torch loop.

For each default model of ``training/`` (U-Net, ConvLSTM-S1S2, ConvLSTM+Inception-S1S2, U-TAE,
dual-encoder fusion) on generated 64 x 64 patches (T = 4; S2 10 bands, S1 3 bands, 10 classes):

* ``pipeline``: ``gee_fusion.deep.train.training`` as ``gee-fusion train`` runs it (patch-store dataset,
  augmentation, EpochSampler, DataLoader, Lightning with weighted CE, checkpoints off) for a fixed
  number of optimiser steps after a warm-up;
* ``bare``: the same model, batches pre-stacked in memory, a plain forward / backward / Adam loop —
  the baseline measured in the same run.

Prints one JSON line: per model patches/s of both and their ratio (pipeline / bare throughput).
Usage: python benchmarks/training.py [--device cpu|cuda] [--steps 8] [--batch 8] [--width 64]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gee_fusion.deep.config import ExperimentConfig
from gee_fusion.deep.train.training import build_module, datasets, loader
from gee_fusion.export.patch_store import SensorPatches, open_patch_store
from gee_fusion.export.patch_writer import write_patch_store

MODELS: dict[str, dict[str, Any]] = {
    "unet_vgg16_s1s2": {"name": "unet", "encoder": "vgg16", "sensors": ["S1", "S2"]},
    "convlstm_s1s2": {"name": "convlstm", "sensors": ["S1", "S2"]},
    "convlstm_inception_s1s2": {"name": "convlstm", "sensors": ["S1", "S2"], "inception": True},
    "utae_s1s2": {"name": "utae", "sensors": ["S1", "S2"]},
    "dual_fusion_worldcover": {"name": "dual_fusion", "sensors": ["S1", "S2"], "prior_classes": 11},
}


def make_store(path: Path, n: int, size: int = 64) -> None:
    """A generated patch store with the demo recipe's bands (values irrelevant to throughput)."""
    from datetime import date

    rng = np.random.default_rng(0)
    times = [date(2021, m, 1) for m in (7, 8, 9, 11)]
    s2 = rng.normal(0.1, 0.05, (n, 4, 10, size, size)).astype(np.float32)
    s1 = rng.normal(-12, 4, (n, 4, 3, size, size)).astype(np.float32)
    labels = rng.integers(1, 15, (n, size, size)).astype(np.uint8)
    write_patch_store(
        path,
        sensors={
            "S2": SensorPatches(s2, times, [f"B{i}" for i in range(10)]),
            "S1": SensorPatches(s1, times, ["VV", "VH", "VVVH"]),
        },
        labels=labels,
        prior=rng.choice([10, 20, 30, 40, 50, 60, 80], (n, size, size)).astype(np.uint8),
        crs="EPSG:32631",
        transforms=np.tile([10.0, 0, 0, 0, -10.0, 0], (n, 1)),
        split=np.array([0] * (n - 2) + [1, 2], np.int8),
        block=np.arange(n, dtype=np.int32),
        classes={i: (f"c{i}", (i, i, i)) for i in range(1, 15)},
        label_scheme="multisenge14",
        recipe={"benchmark": "training"},
        engine="local",
    )


def _to(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def bare(module: Any, batches: list[dict[str, torch.Tensor]], device: str, steps: int) -> float:
    """Patches/s of a plain forward / backward / Adam loop over pre-stacked batches."""
    model = module.model.to(device).train()
    weight = module.class_weight.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gpu = [_to(b, device) for b in batches]

    def step(b: dict[str, torch.Tensor]) -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(b), b["label"], weight=weight, ignore_index=255)
        loss.backward()
        opt.step()

    step(gpu[0])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(gpu[i % len(gpu)])
    _sync(device)
    return steps * batches[0]["label"].shape[0] / (time.perf_counter() - t0)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def pipeline(cfg: ExperimentConfig, device: str, steps: int) -> tuple[float, Any]:
    """Patches/s of the Lightning pipeline (time of ``steps`` steps after one warm-up step)."""
    import lightning as L

    store = open_patch_store(cfg.data.store)
    ds = datasets(cfg, store)
    module = build_module(cfg, store, ds["train"])
    params = module.parameters
    module.configure_optimizers = lambda: torch.optim.Adam(params(), lr=1e-3)  # type: ignore[method-assign]
    times: list[float] = []

    class Clock(L.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            _sync(device)
            times.append(time.perf_counter())

    trainer = L.Trainer(
        accelerator=device, devices=1, max_steps=steps + 1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[Clock()], limit_val_batches=0,
        use_distributed_sampler=False, num_sanity_val_steps=0, precision="32-true",
    )  # fmt: skip
    trainer.fit(module, loader(ds["train"], cfg, train=True))
    _sync(device)
    times.append(time.perf_counter())
    per_step = (times[-1] - times[1]) / steps
    return cfg.data.batch_size / per_step, module


def main() -> None:
    """Measure every model and print one JSON line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--width", type=int, default=64, help="base_width of U-Net / ConvLSTM / fusion models")
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args()
    torch.manual_seed(0)
    out: dict[str, Any] = {"benchmark": "training", "device": args.device, "batch": args.batch, "patch": 64}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.zarr"
        make_store(store, n=args.batch * 4 + 2)
        for name in args.models.split(","):
            spec = dict(MODELS[name])
            if spec["name"] != "utae":
                spec["base_width"] = args.width
            cfg = ExperimentConfig.model_validate(
                {"name": name, "out_dir": tmp, "model": spec,
                 "data": {"store": str(store), "batch_size": args.batch, "classes": 10}},
            )  # fmt: skip
            ours, module = pipeline(cfg, args.device, args.steps)
            train_loader = loader(datasets(cfg, open_patch_store(store))["train"], cfg, train=True)
            batches = list(itertools.islice(iter(train_loader), 4))
            base = bare(module, batches, args.device, args.steps)
            out[name] = {
                "pipeline_patches_s": round(ours, 2),
                "bare_patches_s": round(base, 2),
                "ratio": round(ours / base, 3),
                "parameters": sum(q.numel() for q in module.model.parameters()),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
