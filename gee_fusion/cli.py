"""The ``gee-fusion`` command line.

The CLI is one of the three places that choose an engine (with ``ee_scripts/`` and notebooks):
each command connects to the engine its config (or ``--engine``) names, then calls library jobs,
which run on that connection. Every command reports a user error as one ``error:`` line and exit
status 2 (:func:`user_errors`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import shlex
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.markup import escape

from gee_fusion.engine import EngineChoice
from gee_fusion.errors import ConfigError, GeeFusionError
from gee_fusion.io.console import CONSOLE, say

app = typer.Typer(
    add_completion=False, help="Sentinel-1/2 fusion for urban land cover, on Earth Engine or offline."
)

ENGINE_HELP = "local, earthengine or auto (Earth Engine when credentials are configured)."


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn gee_fusion's typed errors into one red ``error:`` line and exit status 2."""
    try:
        yield
    except GeeFusionError as exc:
        CONSOLE.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from exc


def _connect(engine: str, project: str | None, *, exports_dir: Path | None = None) -> None:
    """Connect the engine a command was asked for (``connect`` refuses unknown names)."""
    from gee_fusion.engine import connect

    connect(cast(EngineChoice, engine), project=project, exports_dir=exports_dir)


def _batch_command(config: Path, out: Path, area: str | None, engine: str | None, project: str | None) -> str:
    """The ``gee-fusion export`` command line that runs the same export as a batch task."""
    args = ["gee-fusion", "export", str(config), "--out", str(out)]
    for flag, value in (("--area", area), ("--engine", engine), ("--project", project)):
        if value:
            args += [flag, value]
    return shlex.join([*args, "--batch"])


JobOut = Annotated[
    Path | None, typer.Option(help="Output folder (default: the config's `out`, else outputs/demo).")
]
"""The ``--out`` of the jobs configured by a YAML with an ``out`` key."""


@app.command()
def demo(
    out: JobOut = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Main-job YAML (default: the demo city; see ee_scripts/configs/demo_city.yaml)."),
    ] = None,
    engine: Annotated[str | None, typer.Option(help=f"{ENGINE_HELP} Default: the config's.")] = None,
    project: Annotated[str | None, typer.Option(help="Google Cloud project (Earth Engine only).")] = None,
) -> None:
    """The main job: in-cloud RF, baselines and a deep model on S1 + S2, compared in one report."""
    from gee_fusion.io.atomic import output_folder
    from gee_fusion.mission import MissionConfig, load_mission_config, run_mission

    with user_errors():
        cfg = load_mission_config(config) if config else MissionConfig()
        if out is not None:
            cfg = cfg.model_copy(update={"out": out})
        output_folder(cfg.out)
        _connect(engine or cfg.engine, project or cfg.project)
        result = run_mission(cfg, progress=True)
    typer.echo(result.summary())


@app.command()
def monitor(
    config: Annotated[
        Path, typer.Argument(help="Monitoring YAML (see ee_scripts/configs/demo_city_monitoring.yaml).")
    ],
    until: Annotated[str, typer.Option(help="Last month to process (YYYY-MM).")],
    out: JobOut = None,
) -> None:
    """Monthly monitoring: class maps, urbanisation alerts (optical + SAR), urban area, report."""
    from gee_fusion.io.atomic import output_folder
    from gee_fusion.monitoring.job import load_monitor_config, run_monitor

    with user_errors():
        cfg = load_monitor_config(config)
        if out is not None:
            cfg = cfg.model_copy(update={"out": out})
        output_folder(cfg.out)
        _connect(cfg.engine, cfg.project)
        result = run_monitor(cfg, until=until, progress=True)
    typer.echo(result.summary())


@app.command()
def monthly(
    config: Annotated[
        Path, typer.Argument(help="Monthly-composite YAML (see ee_scripts/configs/*_monthly.yaml).")
    ],
    out: JobOut = None,
) -> None:
    """Monthly composites of a collection (COG per index, counts, PNG grid), e.g. the Slovenia series."""
    from gee_fusion.io.atomic import output_folder
    from gee_fusion.monitoring.config import load_monthly_config
    from gee_fusion.monitoring.monthly import run_monthly

    with user_errors():
        cfg = load_monthly_config(config)
        if out is not None:
            cfg = cfg.model_copy(update={"out": out})
        output_folder(cfg.out)
        _connect(cfg.engine, cfg.project)
        what = f"Monthly {cfg.method} composites of {cfg.collection}"
        say(True, f"{what}, {cfg.start} to {cfg.end} -> {cfg.out}")
        result = run_monthly(cfg, progress=True)
    typer.echo(result.summary())


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Folder for report.html and metrics.json.")],
    rf: Annotated[
        Path | None, typer.Option(help="In-cloud RF record (NAME.json of ee_scripts/cloud_rf.py).")
    ] = None,
    runs: Annotated[list[Path] | None, typer.Option("--run", help="A deep run folder (repeatable).")] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Reference label map (COG) on the models' grid, for the maps.")
    ] = None,
) -> None:
    """Compare the in-cloud RF, the baselines and deep runs assessed on the same held-out blocks."""
    from gee_fusion.report.comparison import read_cloud_record, read_deep_run
    from gee_fusion.report.html import write_report

    with user_errors():
        cloud = read_cloud_record(rf) if rf else None
        models = [*(cloud.runs if cloud else []), *(read_deep_run(r) for r in runs or [])]
        page, metrics = write_report(out, runs=models, cloud=cloud, reference_map=reference)
    typer.echo(f"{len(models)} models compared -> {page} ({metrics})")


@app.command()
def patches(
    config: Annotated[
        Path, typer.Argument(help="Experiment YAML (its `patches` section) or a patch-export YAML.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Patch store to write (default: the experiment's data.store).")
    ] = None,
) -> None:
    """Build a patch store (Zarr) for the deep stage from the server-side recipe."""
    from gee_fusion.config import read_yaml_mapping, validate
    from gee_fusion.export.patches import PatchExportConfig, export_patches

    with user_errors():
        raw = read_yaml_mapping(config, what="experiment or patch-export config")
        store = out
        if "patches" in raw or "model" in raw:  # an experiment
            section = raw.get("patches")
            if section is None:
                raise ConfigError(f"{config} has no `patches` section to build a patch store from.")
            if not isinstance(section, dict):
                raise ConfigError(
                    f"{config}: `patches` must be a mapping of export settings (use {{}} for defaults)."
                )
            cfg = validate(PatchExportConfig, section, source=f"{config} (section `patches`)")
            data = raw.get("data") or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{config}: `data` must be a mapping.")
            store = store or Path(data.get("store", "outputs/patches/store.zarr"))
        else:
            cfg = validate(PatchExportConfig, raw, source=config)
        store = store or Path("outputs/patches/store.zarr")
        if store.exists() and not store.is_dir():
            raise ConfigError(
                f"The patch store path {store} is a file: choose a folder (e.g. outputs/p.zarr)."
            )
        _connect(cfg.engine, cfg.project)
        path = export_patches(cfg, store)
    typer.echo(f"patch store written: {path}")


@app.command("export")
def export_cmd(
    config: Annotated[Path, typer.Argument(help="Export YAML (see ee_scripts/configs/export_*.yaml).")],
    out: Annotated[Path, typer.Option(help="Output folder: NAME.zarr, NAME.tif, NAME.manifest.json.")] = Path(
        "outputs/export"
    ),
    area: Annotated[
        str | None,
        typer.Option(help="'demo', 'X0,Y1,WIDTH,HEIGHT' (projected CRS, metres; px) or a YAML with `area`."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an export of other settings in --out.")] = False,
    batch: Annotated[
        bool, typer.Option(help="Start an Earth Engine batch task (the config's `batch` section) instead.")
    ] = False,
    engine: Annotated[str | None, typer.Option(help=f"{ENGINE_HELP} Default: the config's.")] = None,
    project: Annotated[str | None, typer.Option(help="Google Cloud project (Earth Engine only).")] = None,
) -> None:
    """Export a product of the recipe over an area: planned requests, retries, resume after a crash."""
    from gee_fusion.errors import BatchSuggestedError
    from gee_fusion.export.area import parse_area
    from gee_fusion.export.job import load_export_config, run_batch_export, run_export

    with user_errors():
        cfg = load_export_config(config)
        where = parse_area(area) if area else None
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file: choose a folder.")
        chosen = engine or cfg.engine
        _connect(chosen, project or cfg.project, exports_dir=out if batch and chosen == "local" else None)
        if batch:
            done = run_batch_export(cfg, out, area=where)
            typer.echo(
                f"{cfg.name}: batch task {done.task_id} {done.state} -> "
                f"{', '.join(done.destination_uris) or 'see the task'}; record {done.record}"
            )
            return
        try:
            result = run_export(cfg, out, area=where, overwrite=overwrite)
        except BatchSuggestedError as exc:
            raise BatchSuggestedError(
                f"{exc} Command: {_batch_command(config, out, area, engine, project)}",
                total_bytes=exc.total_bytes,
                max_bytes=exc.max_bytes,
            ) from None
    stats = result.stats
    written = ", ".join(str(p) for p in (result.zarr, result.cog) if p is not None)
    typer.echo(
        f"{cfg.name}: {result.plan.requests} tiles ({result.skipped_tiles} already done), "
        f"{stats.requests} requests, {stats.retries} retries, {stats.splits} splits, "
        f"{stats.bytes / 2**20:.0f} MiB in {result.seconds:.0f}s -> {written}; manifest {result.manifest}"
    )


@app.command("train")
def train_cmd(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see training/).")],
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda (cuda:N) or gpu (default: the config's, auto).")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Checkpoint to resume from, or 'last'.")] = None,
    max_epochs: Annotated[
        int | None, typer.Option(min=1, help="Override the schedule's max_epochs (>= 1).")
    ] = None,
) -> None:
    """Train an experiment: builds its patch store if missing, trains, evaluates on the test blocks."""
    from gee_fusion.deep.config import load_experiment
    from gee_fusion.deep.devices import resolve_device
    from gee_fusion.deep.train.training import train

    with user_errors():
        cfg = load_experiment(config)
        resolve_device(device or cfg.trainer.accelerator)  # a bad device fails before any work
        if cfg.patches is not None and not Path(cfg.data.store).exists():
            _connect(cfg.patches.engine, cfg.patches.project)
        result = train(cfg, device=device, resume=resume, max_epochs=max_epochs)
    scores = ", ".join(
        f"{k} {v:.4f}" for k, v in result.test.items() if k in ("weighted_f1", "kappa", "miou")
    )
    typer.echo(f"{cfg.name}: {result.epochs} epochs in {result.seconds:.0f}s; test {scores}")
    typer.echo(f"best checkpoint {result.best_checkpoint}; metrics {result.metrics_json}")


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `gee-fusion train`.")],
    area: Annotated[
        str | None,
        typer.Argument(
            help="'demo', 'X0,Y1,WIDTH,HEIGHT' (upper-left corner in the recipe's projected CRS, metres "
            "- EPSG:32631 for the demo world - and size in px) or a YAML with `area`. Or use --bbox."
        ),
    ] = None,
    bbox: Annotated[
        str | None,
        typer.Option(help="W,S,E,N in degrees (lon/lat, EPSG:4326), mapped on the recipe's grid."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output class-map COG.")] = Path("outputs/predict/landcover.tif"),
    tile: Annotated[int, typer.Option(help="Tile size (px).")] = 256,
    overlap: Annotated[int, typer.Option(help="Overlap between tiles (px).")] = 96,
    blend: Annotated[str, typer.Option(help="cosine, gaussian or constant.")] = "cosine",
    batch_size: Annotated[int, typer.Option(help="Tiles per forward pass.")] = 8,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda (cuda:N) or gpu.")] = None,
    band_width: Annotated[
        int | None,
        typer.Option(help="Column bands of this many px (multiple of 512) for wide areas; default: auto."),
    ] = None,
    min_object_size: Annotated[int, typer.Option(help="Remove objects smaller than this (px).")] = 0,
    probabilities: Annotated[bool, typer.Option(help="Also write class probabilities.")] = False,
    engine: Annotated[str, typer.Option(help=ENGINE_HELP)] = "auto",
    project: Annotated[str | None, typer.Option(help="Google Cloud project (Earth Engine only).")] = None,
) -> None:
    """Map an area with a trained model: blended sliding-window inference to a COG and a PNG preview."""
    from gee_fusion.deep.devices import resolve_device
    from gee_fusion.deep.infer.predict import MostlyNoDataWarning, predict_area
    from gee_fusion.export.area import AreaConfig, LonLatBox, parse_area

    with user_errors():
        if (area is None) == (bbox is None):
            raise ConfigError("Give either AREA or --bbox W,S,E,N (not both).")
        where: AreaConfig | LonLatBox = LonLatBox.parse(bbox) if bbox else parse_area(area or "")
        if out.exists() and out.is_dir():
            raise ConfigError(
                f"--out {out} is a folder: name the COG to write (e.g. {out / 'landcover.tif'})."
            )
        resolve_device(device)
        _connect(engine, project)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MostlyNoDataWarning)
            result = predict_area(
                checkpoint, where, out=out, tile=tile, overlap=overlap, blend=blend,
                batch_size=batch_size, device=device, band_width=band_width,
                min_object_size=min_object_size, write_probabilities=probabilities,
            )  # fmt: skip
        for w in caught:
            if issubclass(w.category, MostlyNoDataWarning):
                CONSOLE.print(
                    f"[yellow]warning:[/yellow] {escape(str(w.message))}", highlight=False, soft_wrap=True
                )
    typer.echo(f"land-cover map written: {result.path} (preview {result.preview})")


@app.command()
def algorithms(
    coverage: Annotated[
        list[Path] | None,
        typer.Option(
            help="Scripts, notebooks or folders to check (repeatable): list the Earth Engine "
            "calls the local engine lacks, before running them."
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="With --coverage: how many missing calls to list.")] = 40,
) -> None:
    """List the Earth Engine algorithms the local engine implements, or check scripts against them."""
    from gee_fusion.local.index import implemented

    if coverage:
        with user_errors():
            _coverage_report(coverage, top=top)
        return
    names = implemented()
    for name in names:
        typer.echo(name)
    say(True, f"{len(names)} algorithms")


def _coverage_report(paths: list[Path], *, top: int) -> None:
    from gee_fusion.local.coverage import scan_paths

    report = scan_paths(paths)
    missing = report.missing()
    for label, files in missing[:top]:
        candidates = sorted(report.candidates[label])
        typer.echo(f"{files:5d}  {label}" + (f"  ({', '.join(candidates)})" if label.startswith(".") else ""))
    say(
        True,
        f"{report.files} files call {len(report.uses)} Earth Engine algorithms; {len(missing)} missing; "
        f"the local engine covers {100 * report.share:.1f} % of the calls (weighted by files)",
    )


world_app = typer.Typer(add_completion=False, help="The demo world (the local engine's procedural city).")
app.add_typer(world_app, name="world")


@world_app.command("cache")
def world_cache(
    info: Annotated[bool, typer.Option("--info", help="Show its location, size, blocks and keys.")] = False,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove every cached block (other files in the folder stay).")
    ] = False,
) -> None:
    """The demo world's on-disk cache of generated Sentinel-1/2 blocks: show it or empty it."""
    from gee_fusion.local.world import cache_info

    with user_errors():
        if info == clear:
            raise ConfigError("Give one of --info (show the cache) or --clear (empty it).")
        if clear:
            gone = cache_info.clear()
            mib = gone.bytes / 2**20
            say(True, f"removed {gone.blocks} blocks ({mib:.1f} MiB) from {escape(str(gone.root))}")
            return
        report = cache_info.info()
    for line in report.lines():
        typer.echo(line)


def main() -> None:
    """Entry point of the ``gee-fusion`` script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
