"""Rank deep models on the main job's data: the same patch store, held-out blocks and short schedule.

The main job (``make demo`` / ``gee-fusion demo``) trains one deep model (a U-Net) on the monthly
S1 + S2 patch store of its area. This script trains other architectures of ``training/`` on that
store with the job's own data settings and schedule (``mission.deep_experiment``: same seed,
batch size, learning rate, epochs, early stopping on validation weighted F1), each scored on the
test blocks, and prints one JSON line: per model its test weighted F1, kappa, overall accuracy,
epochs and seconds, and, from the job's ``metrics.json``, the in-cloud RF and U-Net figures on the
same test-patch pixels. The patch store is built when missing (as the job builds it).

Usage: python training/rank_demo.py [--job outputs/demo] [--config ee_scripts/configs/demo_city.yaml]
       [--models unet,convlstm,convlstm_inception,utae] [--epochs 15] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gee_fusion
from gee_fusion.deep.train.training import train
from gee_fusion.mission import deep_experiment, load_mission_config, patch_config

ROOT = Path(__file__).resolve().parents[1]
MODELS: dict[str, dict[str, Any]] = {
    "unet": {"name": "unet", "encoder": "vgg16", "base_width": 16, "sensors": ["S1", "S2"]},
    "convlstm": {"name": "convlstm", "sensors": ["S1", "S2"], "hidden": 16, "kernel_size": 3},
    "convlstm_inception": {"name": "convlstm", "sensors": ["S1", "S2"], "hidden": 16, "kernel_size": 3,
                           "inception": True},
    "utae": {"name": "utae", "sensors": ["S1", "S2"]},
}  # fmt: skip
"""CPU-sized variants of the experiments in ``training/`` (widths reduced, same architectures)."""


def job_figures(job: Path) -> dict[str, Any]:
    """The main job's figures on the test-patch pixels (in-cloud RF map, its deep model), if present."""
    path = job / "metrics.json"
    if not path.exists():
        return {}
    metrics = json.loads(path.read_text())
    return {
        f"job: {model.get('name')}": round(float(model["f1_weighted"]), 4)
        for model in metrics.get("models", [])
        if "test patches" in str(model.get("evaluated_on", "")) and model.get("f1_weighted") is not None
    }


def main() -> None:
    """Train each model on the job's patch store and print one JSON line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", type=Path, default=ROOT / "outputs" / "demo")
    p.add_argument("--config", type=Path, default=ROOT / "ee_scripts" / "configs" / "demo_city.yaml")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epochs", type=int, default=None, help="default: the job's max_epochs")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        p.error(f"unknown model(s) {unknown}: choose among {sorted(MODELS)}")
    cfg = load_mission_config(args.config)
    if args.epochs is not None:
        cfg = cfg.model_copy(update={"deep": cfg.deep.model_copy(update={"max_epochs": args.epochs})})
    gee_fusion.connect("local")
    patches = patch_config(cfg)
    figures: dict[str, Any] = {"benchmark": "rank_demo", "job": str(args.job), "epochs": cfg.deep.max_epochs}
    for name in names:
        exp = deep_experiment(cfg, patches, args.job, name=f"rank_{name}", model=MODELS[name])
        t0 = time.perf_counter()
        result = train(exp, device=args.device, progress=False)
        test = result.test
        figures[name] = {
            "f1_weighted": round(float(test.get("weighted_f1", float("nan"))), 4),
            "kappa": round(float(test.get("kappa", float("nan"))), 4),
            "overall_accuracy": round(float(test.get("overall_accuracy", float("nan"))), 4),
            "epochs": result.epochs,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    figures |= job_figures(args.job)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
