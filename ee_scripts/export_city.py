"""Export a product of the recipe over a city, as configured in a YAML file (resumable).

Usage: python ee_scripts/export_city.py ee_scripts/configs/export_fusion20.yaml [OUT_DIR]
"""

from __future__ import annotations

import sys

import gee_fusion
from gee_fusion.errors import GeeFusionError
from gee_fusion.export.job import load_export_config, run_export


def main(argv: list[str]) -> int:
    """Run the export of the config given as the first argument into OUT_DIR (outputs/export)."""
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cfg = load_export_config(argv[0])
        gee_fusion.connect(cfg.engine, project=cfg.project)  # scripts choose the engine; jobs use it
        result = run_export(cfg, argv[1] if len(argv) > 1 else "outputs/export")
    except GeeFusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = result.stats
    print(f"{cfg.name}: {stats.requests} requests, {stats.retries} retries -> {result.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
