"""Export a product of the recipe over a city, as configured in a YAML file (resumable), or start
the same export as an Earth Engine batch task (the config's `batch` section).

Usage: python ee_scripts/export_city.py ee_scripts/configs/export_fusion20.yaml [OUT_DIR] [--batch]
"""

from __future__ import annotations

import sys

import gee_fusion
from gee_fusion.errors import GeeFusionError
from gee_fusion.export.job import load_export_config, run_batch_export, run_export


def main(argv: list[str]) -> int:
    """Run the export of the config given as the first argument into OUT_DIR (outputs/export)."""
    batch = "--batch" in argv
    args = [a for a in argv if a != "--batch"]
    if not 1 <= len(args) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = args[1] if len(args) > 1 else "outputs/export"
    try:
        cfg = load_export_config(args[0])
        # scripts choose the engine; jobs use it. Locally, batch files land in OUT_DIR.
        local_batch = batch and cfg.engine == "local"
        gee_fusion.connect(cfg.engine, project=cfg.project, exports_dir=out if local_batch else None)
        if batch:
            done = run_batch_export(cfg, out)
            print(f"{cfg.name}: task {done.task_id} {done.state} -> {done.destination_uris}; {done.record}")
            return 0
        result = run_export(cfg, out)
    except GeeFusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = result.stats
    print(f"{cfg.name}: {stats.requests} requests, {stats.retries} retries -> {result.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
