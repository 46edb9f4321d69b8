"""Quality on the held-out spatial blocks of the demo city: the in-cloud Random Forest, the classic
baselines and the deep models of ``training/``, in one report.

Trains each named experiment (its patch store built when missing), runs the in-cloud RF job on
the fusion-20 stack with the patch store's held-out blocks, and writes ``report.html`` and
``metrics.json`` (see :mod:`gee_fusion.report.html`). Every step is a library call.

CPU-sized by default (``--width`` scales every model's first width, ``--epochs`` caps the schedule);
on a GPU run the YAMLs unchanged with ``gee-fusion train``.

Usage: python training/quality_demo.py [--epochs 12] [--width 32] [--models unet_vgg16_s1s2_10,...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gee_fusion
from gee_fusion.classic.job import CloudRFConfig, run_cloud_rf
from gee_fusion.deep.config import load_experiment
from gee_fusion.deep.train.training import train
from gee_fusion.export.job import ProductConfig
from gee_fusion.export.patches import block_split
from gee_fusion.report.comparison import read_cloud_record, read_deep_run
from gee_fusion.report.html import write_report

HERE = Path(__file__).parent
DEFAULT = ("unet_vgg16_s1s2_10", "convlstm_s1s2_10", "convlstm_inception_s1s2_10", "utae_s1s2_10")


def main() -> None:
    """Train every model, run the in-cloud RF on the same blocks, write the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--models", default=",".join(DEFAULT))
    p.add_argument("--out", default="outputs/quality")
    args = p.parse_args()
    gee_fusion.connect("local")
    out = Path(args.out)
    runs = []
    split = None
    for name in args.models.split(","):
        cfg = load_experiment(HERE / f"{name}.yaml")
        update = {"base_width": args.width} if "base_width" in type(cfg.model).model_fields else {}
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update=update), "out_dir": out / "runs"})
        if cfg.patches is None:
            raise SystemExit(f"{name} has no `patches` section: its held-out blocks are unknown.")
        split = split or block_split(cfg.patches)
        runs.append(read_deep_run(train(cfg, max_epochs=args.epochs, progress=False).run_dir))
    assert split is not None and cfg.patches is not None
    rf_cfg = CloudRFConfig(stack=ProductConfig(year=cfg.patches.year), area=cfg.patches.area)
    cloud = read_cloud_record(run_cloud_rf(rf_cfg, out / "cloud_rf", split=split).record)
    page, _ = write_report(out, runs=[*cloud.runs, *runs], cloud=cloud)
    print(page)


if __name__ == "__main__":
    main()
