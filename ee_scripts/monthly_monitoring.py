"""Monthly monitoring of urban change as configured in a YAML file: the months up to UNTIL that
are not done yet are classified by the in-cloud forests, then urbanisation alerts (class changes
confirmed by Sentinel-1), the built-up area series and monitoring.html are updated.

Run it every month (after the month's acquisitions are in the archive), e.g. from cron:
    0 6 5 * * cd /srv/gee_fusion && .venv/bin/python ee_scripts/monthly_monitoring.py \\
        ee_scripts/configs/demo_city_monitoring.yaml "$(date -d 'last month' +\\%Y-\\%m)"

Usage: python ee_scripts/monthly_monitoring.py CONFIG.yaml UNTIL(YYYY-MM)
"""

from __future__ import annotations

import sys

import gee_fusion
from gee_fusion.errors import GeeFusionError
from gee_fusion.monitoring.job import load_monitor_config, run_monitor


def main(argv: list[str]) -> int:
    """Run the monitoring job of the config given as the first argument up to the second."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cfg = load_monitor_config(argv[0])
        gee_fusion.connect(cfg.engine, project=cfg.project)  # scripts choose the engine; jobs use it
        result = run_monitor(cfg, until=argv[1])
    except GeeFusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
