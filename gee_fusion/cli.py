"""The ``gee-fusion`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gee_fusion.errors import GeeFusionError

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
    from gee_fusion.config import MonthlyJobConfig, load_monthly_config
    from gee_fusion.monthly import run_monthly

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
def algorithms() -> None:
    """List the Earth Engine algorithms the local engine implements."""
    from gee_fusion.local.registry import implemented

    names = implemented()
    for name in names:
        typer.echo(name)
    console.print(f"{len(names)} algorithms")


def main() -> None:
    """Entry point of the ``gee-fusion`` script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
