"""Export a product of the recipe over a city, as configured in a YAML file (resumable), or start
the same export as an Earth Engine batch task (the config's `batch` section).

Usage: python ee_scripts/export_city.py CONFIG.yaml [OUT_DIR] [--area AREA] [--overwrite] [--batch]
       [--engine local|earthengine|auto] [--project P]

CONFIG.yaml: e.g. ee_scripts/configs/export_fusion20.yaml; OUT_DIR: default outputs/export.
--area takes the forms of `gee-fusion export --area`: demo, X0,Y1,WIDTH,HEIGHT or a YAML with `area`.
--engine / --project: default the config's `engine` / `project`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import gee_fusion
from gee_fusion.errors import BatchSuggestedError, GeeFusionError
from gee_fusion.export.area import parse_area
from gee_fusion.export.job import load_export_config, run_batch_export, run_export

DEFAULT_OUT = "outputs/export"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python ee_scripts/export_city.py",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("config", help="Export YAML (see ee_scripts/configs/export_*.yaml).")
    parser.add_argument("out", nargs="?", default=DEFAULT_OUT, help=f"Output folder (default {DEFAULT_OUT}).")
    parser.add_argument("--area", help="demo, X0,Y1,WIDTH,HEIGHT (metres; px) or a YAML with `area`.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an export of other settings.")
    parser.add_argument("--batch", action="store_true", help="Start an Earth Engine batch task instead.")
    parser.add_argument("--engine", choices=("local", "earthengine", "auto"), help="Default: the config's.")
    parser.add_argument("--project", help="Google Cloud project (Earth Engine only); default: the config's.")
    return parser


def batch_command(args: argparse.Namespace) -> str:
    """The command line of this script that runs the same export as a batch task."""
    script = Path(__file__).resolve()
    try:
        shown = str(script.relative_to(Path.cwd()))
    except ValueError:
        shown = str(script)
    words = ["python", shown, args.config, args.out]
    for flag, value in (("--area", args.area), ("--engine", args.engine), ("--project", args.project)):
        if value:
            words += [flag, value]
    return shlex.join([*words, "--batch"])


def main(argv: list[str]) -> int:
    """Run the export of the config into OUT_DIR; 2 on bad arguments or a refused export."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage (or --help)
        return int(exc.code or 0)
    out = args.out
    try:
        cfg = load_export_config(args.config)
        where = parse_area(args.area) if args.area else None
        # scripts choose the engine; jobs use it. Locally, batch files land in OUT_DIR.
        engine, project = args.engine or cfg.engine, args.project or cfg.project
        local_batch = args.batch and engine == "local"
        gee_fusion.connect(engine, project=project, exports_dir=out if local_batch else None)
        if args.batch:
            done = run_batch_export(cfg, out, area=where)
            print(f"{cfg.name}: task {done.task_id} {done.state} -> {done.destination_uris}; {done.record}")
            return 0
        result = run_export(cfg, out, area=where, overwrite=args.overwrite)
    except BatchSuggestedError as exc:
        print(f"error: {exc} Command: {batch_command(args)}", file=sys.stderr)
        return 2
    except GeeFusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = result.stats
    print(f"{cfg.name}: {stats.requests} requests, {stats.retries} retries -> {result.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
