"""Monthly composites of a collection, as configured in a YAML file.

Usage: python ee_scripts/monthly_composite.py ee_scripts/configs/demo_city_monthly.yaml
"""

from __future__ import annotations

import sys

import gee_fusion
from gee_fusion.errors import GeeFusionError
from gee_fusion.monitoring.config import load_monthly_config
from gee_fusion.monitoring.monthly import run_monthly


def main(argv: list[str]) -> int:
    """Run the job of the config given as the only argument."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cfg = load_monthly_config(argv[0])
        gee_fusion.connect(cfg.engine, project=cfg.project)  # scripts choose the engine; jobs use it
        print(run_monthly(cfg, progress=True).summary())
    except GeeFusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
