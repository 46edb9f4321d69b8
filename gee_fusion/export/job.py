"""The city-scale export job: a product of the recipe over an area, to Zarr and COG, resumable.

Products:

* ``fusion20``: the seed paper's fusion-20 stack of one year
  (:func:`gee_fusion.recipe.stacks.fusion20_stack`);
* ``monthly_series``: the monthly S2 and S1 stacks of the deep stage as one T x C image
  (:func:`gee_fusion.recipe.monthly_stacks.series_image`).

``engine`` and ``project`` are read by the CLI and ``ee_scripts/``, which connect first; the job
runs on the connected engine. :func:`run_export` brings the pixels here (Zarr, COG);
:func:`run_batch_export` starts an Earth Engine batch task for the same image and grid instead
(the ``batch`` section says where it writes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import ee
from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.config import load_yaml
from gee_fusion.engine import EngineChoice, ensure_connected
from gee_fusion.errors import ConfigError
from gee_fusion.export.area import AreaConfig
from gee_fusion.export.batch import BatchConfig, image_task, start_task
from gee_fusion.export.fetch import grid_aoi
from gee_fusion.export.image_export import ExportResult, export_bands, export_image, prepared_image
from gee_fusion.export.requests import DEFAULT_WORKERS
from gee_fusion.grid import REQUEST_BYTE_LIMIT, PixelGrid
from gee_fusion.io.atomic import atomic_path, output_folder
from gee_fusion.recipe.monthly_stacks import StackRecipe, series_image
from gee_fusion.recipe.speckle import Method as SpeckleMethod
from gee_fusion.recipe.stacks import fusion20_stack

OutputFormat = Literal["zarr", "cog"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("zarr", "cog")


class Fusion20Settings(BaseModel):
    """Options of the fusion-20 stack."""

    model_config = ConfigDict(extra="forbid")

    relative_orbit: int | None = Field(None, ge=1, le=175, description="None: the busiest orbit of the year.")
    speckle: SpeckleMethod = "refined_lee"
    s2_months: tuple[int, int] = (6, 9)


class ProductConfig(BaseModel):
    """Which product of the recipe: the fusion-20 stack or the monthly T x C series, and its year."""

    model_config = ConfigDict(extra="forbid")

    product: Literal["fusion20", "monthly_series"] = "fusion20"
    year: int = Field(default=2021, ge=2015, le=2100)
    fusion20: Fusion20Settings = Field(default_factory=Fusion20Settings)
    series: StackRecipe = Field(default_factory=StackRecipe, description="Months, sensors, bands, masks.")


class ExportConfig(ProductConfig):
    """What to export, where on Earth, and how (the YAML of ``gee-fusion export``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    engine: EngineChoice = "local"
    project: str | None = None
    product: Literal["fusion20", "monthly_series"]
    area: AreaConfig = Field(default_factory=AreaConfig)
    dtype: Literal["float32", "float64"] = "float32"
    formats: list[OutputFormat] = Field(default_factory=lambda: list(OUTPUT_FORMATS), min_length=1)
    block: int = Field(default=512, ge=16)
    workers: int = Field(default=DEFAULT_WORKERS, ge=1, le=40)
    request_bytes: int = Field(default=REQUEST_BYTE_LIMIT, ge=2**16, le=REQUEST_BYTE_LIMIT)
    interactive_max_gib: float | None = Field(
        default=20.0, gt=0, description="Larger exports are refused with a batch proposal; null: no limit."
    )
    batch: BatchConfig | None = Field(None, description="Where a batch task (--batch) writes.")


def load_export_config(path: str | Path) -> ExportConfig:
    """Read an export YAML (errors name the file, the key, the value and what is allowed)."""
    return load_yaml(path, ExportConfig, what="export config")


def product_image(cfg: ProductConfig, grid: PixelGrid) -> ee.Image:
    """The configured product over ``grid`` (an Earth Engine graph; nothing is computed yet)."""
    aoi = grid_aoi(grid)
    if cfg.product == "fusion20":
        f = cfg.fusion20
        return fusion20_stack(
            aoi,
            year=cfg.year,
            relative_orbit=f.relative_orbit,
            speckle_method=f.speckle,
            s2_months=f.s2_months,
        )
    return series_image(cfg.series.model_copy(update={"year": cfg.year}), aoi)


def run_export(
    cfg: ExportConfig,
    out_dir: str | Path,
    *,
    area: AreaConfig | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> ExportResult:
    """Export the configured product over ``area`` (default: the config's) into ``out_dir``.

    A rerun after a crash resumes; see :func:`gee_fusion.export.image_export.export_image`.

    Raises:
        BatchSuggestedError: the export is larger than ``interactive_max_gib`` (nothing written).
    """
    where = _area(cfg, area)
    grid = where.grid()
    return export_image(
        product_image(cfg, grid),
        grid,
        out_dir,
        name=cfg.name,
        overwrite=overwrite,
        **cfg.model_dump(include={"dtype", "formats", "block", "request_bytes", "workers"}),
        recipe=_recipe(cfg, where),
        max_bytes=None if cfg.interactive_max_gib is None else int(cfg.interactive_max_gib * 2**30),
        progress=progress,
    )


@dataclass(frozen=True)
class BatchResult:
    """A started batch task and the record written beside the interactive outputs."""

    task_id: str
    state: str
    destination_uris: list[str]
    record: Path


def run_batch_export(
    cfg: ExportConfig, out_dir: str | Path, *, area: AreaConfig | None = None
) -> BatchResult:
    """Start an Earth Engine batch task for the configured product (same image and grid as
    :func:`run_export`) and write ``out_dir/NAME.batch.json`` (task id, state, destination, grid,
    recipe).

    Raises:
        ConfigError: the config has no ``batch`` section.
        ExportError: the task is invalid or failed.
    """
    if cfg.batch is None:
        raise ConfigError(
            f"Export {cfg.name!r} has no `batch` section: add e.g. `batch: {{destination: cloud_storage, "
            "bucket: my-bucket}}` (or drive with folder, or asset with asset_id) to the config."
        )
    where = _area(cfg, area)
    grid = where.grid()
    out = output_folder(out_dir)
    ensure_connected()
    image = product_image(cfg, grid)
    names = export_bands(image, None)
    fill = cfg.batch.no_data if cfg.dtype.startswith("float") else 0
    task = image_task(prepared_image(image, names, cfg.dtype, fill), grid, name=cfg.name, batch=cfg.batch)
    status = start_task(task, grid)
    record = {
        "format": "gee_fusion.batch_export/1", "task_id": task.id, "state": status.get("state"),
        "destination": cfg.batch.model_dump(mode="json"),
        "destination_uris": status.get("destination_uris", []),
        "grid": {"crs": grid.crs, "transform": list(grid.transform), "width": grid.width,
                 "height": grid.height},
        "bands": names, "dtype": cfg.dtype, "nodata": fill, "engine": ensure_connected().engine,
        "recipe": _recipe(cfg, where), "created": datetime.now(UTC).isoformat(),
        "request": {k: v for k, v in (task.config or {}).items() if k != "expression"},
    }  # fmt: skip
    path = out / f"{cfg.name}.batch.json"
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))
    return BatchResult(str(task.id), str(status.get("state")), list(record["destination_uris"]), path)


def _area(cfg: ExportConfig, area: AreaConfig | None) -> AreaConfig:
    return cfg.area if area is None else cfg.area.model_copy(update=area.model_dump(exclude_unset=True))


def _recipe(cfg: ExportConfig, where: AreaConfig) -> dict[str, object]:
    return cfg.model_dump(mode="json", exclude={"engine", "project", "batch", "interactive_max_gib"}) | {
        "area": where.model_dump(mode="json")
    }
