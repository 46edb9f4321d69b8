"""The ``gee-fusion`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gee_fusion.errors import ConfigError, GeeFusionError

app = typer.Typer(
    add_completion=False, help="Sentinel-1/2 fusion for urban land cover, on Earth Engine or offline."
)
console = Console(stderr=True)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/demo"),
    config: Annotated[
        Path | None, typer.Option(help="YAML job config (defaults: the Slovenia series).")
    ] = None,
) -> None:
    """Run the main job on the embedded default (local engine, no credentials, no network)."""
    from gee_fusion.monitoring.config import MonthlyJobConfig, load_monthly_config
    from gee_fusion.monitoring.monthly import run_monthly

    cfg = load_monthly_config(config) if config else MonthlyJobConfig()
    cfg = cfg.model_copy(update={"out": out})
    try:
        console.print(f"Monthly {cfg.method} composites of {cfg.collection}, {cfg.start} to {cfg.end}...")
        result = run_monthly(cfg, progress=True)
    except GeeFusionError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    typer.echo(result.summary())


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
    import yaml

    from gee_fusion.export.patches import PatchExportConfig, export_patches

    try:
        raw = yaml.safe_load(config.read_text())
        if not isinstance(raw, dict):
            raise ConfigError(f"{config} must hold a mapping (an experiment or a patch-export config).")
        if "patches" in raw and not isinstance(raw["patches"], dict):
            raise ConfigError(
                f"{config}: `patches` must be a mapping of export settings (use {{}} for defaults)."
            )
        data = raw.get("data") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{config}: `data` must be a mapping.")
        section = raw.get("patches", raw)
        store = out or Path(data.get("store", "outputs/patches/store.zarr"))
        cfg = PatchExportConfig.model_validate(section)
        path = export_patches(cfg, store)
    except (GeeFusionError, OSError, ValueError, yaml.YAMLError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    typer.echo(f"patch store written: {path}")


@app.command("train")
def train_cmd(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see training/).")],
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or auto (default: the config's, auto).")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Checkpoint to resume from, or 'last'.")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Override the schedule's max_epochs.")] = None,
) -> None:
    """Train an experiment: builds its patch store if missing, trains, evaluates on the test blocks."""
    from gee_fusion.deep.config import load_experiment
    from gee_fusion.deep.train.training import train

    try:
        cfg = load_experiment(config)
        result = train(cfg, device=device, resume=resume, max_epochs=max_epochs)
    except GeeFusionError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    scores = ", ".join(
        f"{k} {v:.4f}" for k, v in result.test.items() if k in ("weighted_f1", "kappa", "miou")
    )
    typer.echo(f"{cfg.name}: {result.epochs} epochs in {result.seconds:.0f}s; test {scores}")
    typer.echo(f"best checkpoint {result.best_checkpoint}; metrics {result.metrics_json}")


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `gee-fusion train`.")],
    area: Annotated[
        str, typer.Argument(help="'demo', 'X0,Y1,WIDTH,HEIGHT' (world CRS, px) or a YAML with `area`.")
    ],
    out: Annotated[Path, typer.Option(help="Output class-map COG.")] = Path("outputs/predict/landcover.tif"),
    tile: Annotated[int, typer.Option(help="Tile size (px).")] = 256,
    overlap: Annotated[int, typer.Option(help="Overlap between tiles (px).")] = 96,
    blend: Annotated[str, typer.Option(help="cosine, gaussian or constant.")] = "cosine",
    batch_size: Annotated[int, typer.Option(help="Tiles per forward pass.")] = 8,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto.")] = None,
    band_width: Annotated[
        int | None,
        typer.Option(help="Column bands of this many px (multiple of 512) for wide areas; default: auto."),
    ] = None,
    min_object_size: Annotated[int, typer.Option(help="Remove objects smaller than this (px).")] = 0,
    probabilities: Annotated[bool, typer.Option(help="Also write class probabilities.")] = False,
) -> None:
    """Map an area with a trained model: blended sliding-window inference to a COG."""
    from gee_fusion.deep.infer.predict import parse_area, predict_area

    try:
        result = predict_area(
            checkpoint, parse_area(area), out=out, tile=tile, overlap=overlap, blend=blend,
            batch_size=batch_size, device=device, band_width=band_width, min_object_size=min_object_size,
            write_probabilities=probabilities,
        )  # fmt: skip
    except GeeFusionError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    typer.echo(f"land-cover map written: {result.path}")


@app.command()
def algorithms() -> None:
    """List the Earth Engine algorithms the local engine implements."""
    from gee_fusion.local.index import implemented

    names = implemented()
    for name in names:
        typer.echo(name)
    console.print(f"{len(names)} algorithms")


def main() -> None:
    """Entry point of the ``gee-fusion`` script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
