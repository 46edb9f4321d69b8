"""Quality on the held-out spatial blocks of the demo city: a pixel Random Forest and the deep models.

Trains each experiment of ``training/`` named below on the same patch store (built from its
``patches`` section when missing), evaluates on the store's test blocks, and trains a scikit-learn
Random Forest on pixels of the training blocks with the same inputs (every S2 and S1 band of every
month, normalised the same way). Prints one JSON line per model and a final summary line.

CPU-sized by default (``--width`` scales every model's first width, ``--epochs`` caps the schedule);
on a GPU run the YAMLs unchanged with ``gee-fusion train``.

Usage: python training/quality_demo.py [--epochs 12] [--width 32] [--models unet,convlstm_s1s2,...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gee_fusion.classes import NO_LABEL
from gee_fusion.deep.config import ExperimentConfig, load_experiment
from gee_fusion.deep.datasets import PatchDataset
from gee_fusion.deep.train.training import datasets, ensure_store, train
from gee_fusion.metrics.confusion import ConfusionMatrix

HERE = Path(__file__).parent
DEFAULT = (
    "unet_vgg16_s1s2_10",
    "convlstm_s1_10",
    "convlstm_s2_10",
    "convlstm_s1s2_10",
    "convlstm_inception_s1s2_10",
    "utae_s1s2_10",
)


def pixels(ds: PatchDataset) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, features) of every sensor/time/band, and the labels (255 kept)."""
    parts = [ds.inputs[s].reshape(len(ds), -1, *ds.inputs[s].shape[-2:]) for s in ds.sensors]
    feats = np.concatenate(parts, axis=1)  # (N, F, H, W)
    x = np.moveaxis(feats, 1, -1).reshape(-1, feats.shape[1])
    return x, ds.labels.reshape(-1)


def random_forest(cfg: ExperimentConfig, *, n_pixels: int, seed: int) -> dict[str, object]:
    """Pixel RF (100 trees) on the training blocks, scored on the test blocks."""
    from sklearn.ensemble import RandomForestClassifier

    store = ensure_store(cfg)
    ds = datasets(cfg, store)
    x, y = pixels(ds["train"])
    keep = np.flatnonzero(y != NO_LABEL)
    pick = np.random.default_rng(seed).choice(keep, min(n_pixels, keep.size), replace=False)
    t0 = time.perf_counter()
    rf = RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed).fit(x[pick], y[pick])
    xt, yt = pixels(ds["test"])
    cm = ConfusionMatrix(list(ds["test"].table.names), codes=list(ds["test"].table.codes))
    labelled = yt != NO_LABEL
    cm.update(yt[labelled], rf.predict(xt[labelled]))
    return {"model": "random_forest_pixels", "seconds": round(time.perf_counter() - t0, 1), **_scores(cm)}


def _scores(cm: ConfusionMatrix) -> dict[str, float]:
    return {
        "weighted_f1": round(cm.weighted_f1, 4),
        "kappa": round(cm.kappa, 4),
        "oa": round(cm.overall_accuracy, 4),
        "miou": round(cm.miou, 4),
        "test_pixels": cm.total,
    }


def main() -> None:
    """Train and score every model, one JSON line each."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--models", default=",".join(DEFAULT))
    p.add_argument("--rf-pixels", type=int, default=200_000)
    p.add_argument("--out", default="outputs/quality")
    args = p.parse_args()
    results = []
    for name in args.models.split(","):
        cfg = load_experiment(HERE / f"{name}.yaml")
        update = {"base_width": args.width} if "base_width" in type(cfg.model).model_fields else {}
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update=update), "out_dir": Path(args.out)})
        if name == DEFAULT[0] or not results:
            results.append(random_forest(cfg, n_pixels=args.rf_pixels, seed=cfg.seed))
            print(json.dumps(results[-1]), flush=True)
        t0 = time.perf_counter()
        res = train(cfg, max_epochs=args.epochs, progress=False)
        report = json.loads(res.metrics_json.read_text())
        cm = ConfusionMatrix.from_dict(report["test"])
        row = {"model": name, "epochs": res.epochs, "parameters": report["parameters"],
               "seconds": round(time.perf_counter() - t0, 1), **_scores(cm)}  # fmt: skip
        results.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"summary": results, "epochs": args.epochs, "width": args.width}))


if __name__ == "__main__":
    main()
