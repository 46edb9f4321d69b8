"""Train and assess the in-cloud Random Forest (Earth Engine's smileRandomForest) as configured
in a YAML file: samples drawn on the server, held-out spatial blocks, block vs random-pixel
cross-validation, sensor ablation, scikit-learn baselines on the same samples, land-cover map.

Usage: python ee_scripts/cloud_rf.py ee_scripts/configs/cloud_rf_fusion20.yaml [OUT_DIR]
"""

from __future__ import annotations

import sys

import gee_fusion
from gee_fusion.classic.job import load_cloud_rf_config, run_cloud_rf
from gee_fusion.errors import GeeFusionError


def main(argv: list[str]) -> int:
    """Run the job of the config given as the first argument into OUT_DIR (outputs/cloud_rf)."""
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cfg = load_cloud_rf_config(argv[0])
        gee_fusion.connect(cfg.engine, project=cfg.project)  # scripts choose the engine; jobs use it
        result = run_cloud_rf(cfg, argv[1] if len(argv) > 1 else "outputs/cloud_rf")
    except GeeFusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = result.rf.matrix
    cv = result.rf
    leak = ""
    if cv.cv_block and cv.cv_pixel:
        block, pixel = cv.cv_block.as_dict()["mean"], cv.cv_pixel.as_dict()["mean"]
        leak = f"; CV accuracy random-pixel {pixel:.3f} vs spatial-block {block:.3f}"
    print(
        f"{cfg.name}: OA {m.overall_accuracy:.3f}, kappa {m.kappa:.3f}, weighted F1 {m.weighted_f1:.3f} "
        f"on the test blocks{leak} -> {result.record}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
