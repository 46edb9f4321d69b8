"""Monthly composites of a collection, as configured in a YAML file.

Usage: python ee_scripts/monthly_composite.py ee_scripts/configs/slovenia_monthly.yaml
"""

from __future__ import annotations

import sys

from gee_fusion.monitoring.config import load_monthly_config
from gee_fusion.monitoring.monthly import run_monthly


def main(argv: list[str]) -> int:
    """Run the job of the config given as the only argument."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(run_monthly(load_monthly_config(argv[0])).summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
