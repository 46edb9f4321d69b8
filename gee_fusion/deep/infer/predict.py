"""Mapping an area with a trained checkpoint: the checkpoint's recipe over the area (fetched
strip by strip), scaled with its training statistics, then blended sliding-window inference to a
COG, with a PNG preview and its legend beside it. Memory is bounded by one strip of inputs and
the inference strip, whatever the area's height."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gee_fusion.classes import class_table
from gee_fusion.deep.infer.inference import InferenceResult, predict_raster
from gee_fusion.deep.infer.recipe_source import RecipeSource
from gee_fusion.deep.train.checkpoints import load_module
from gee_fusion.engine import ensure_connected
from gee_fusion.errors import ConfigError, DataError, EngineError
from gee_fusion.export.area import AreaConfig, LonLatBox
from gee_fusion.export.fetch import grid_aoi
from gee_fusion.export.patch_store import BandStats
from gee_fusion.grid import PixelGrid
from gee_fusion.io.cog import read_preview
from gee_fusion.recipe import sentinel1, sentinel2
from gee_fusion.recipe.monthly_stacks import StackRecipe
from gee_fusion.report.figures import class_map_png

MOSTLY_NODATA = 0.5
"""A written map with more nodata than this share gets a warning."""


class MostlyNoDataWarning(UserWarning):
    """A map was written, but most of it has no prediction (no valid input there)."""


@dataclass(frozen=True)
class MapResult:
    """What :func:`predict_area` wrote: the inference outcome, the preview and the nodata share."""

    inference: InferenceResult
    preview: Path
    nodata_fraction: float

    @property
    def path(self) -> Path:
        """The class-map COG."""
        return self.inference.path


def stored_recipe(hparams: dict[str, Any]) -> dict[str, Any]:
    """The recipe settings a checkpoint was trained with (its patch-export config)."""
    exp = hparams["experiment"]
    return dict(hparams.get("recipe") or exp.get("patches") or {})


def resolve_area(hparams: dict[str, Any], area: AreaConfig | LonLatBox) -> PixelGrid:
    """The grid to map: ``area`` on the checkpoint's recipe grid (its CRS and pixel size are kept
    unless ``area`` sets them); a lon/lat box becomes the rectangle covering it in that grid."""
    trained = AreaConfig.model_validate(stored_recipe(hparams).get("area") or {})
    if isinstance(area, LonLatBox):
        return area.to_area(trained.grid().crs, scale=trained.scale).grid()
    return trained.model_copy(update=area.model_dump(exclude_unset=True)).grid()


def check_coverage(recipe: StackRecipe, grid: PixelGrid) -> None:
    """Refuse an area that no image of the recipe's sensors covers in its period.

    Raises:
        DataError: naming the sensor, the area and, on the local engine, where the demo world is.
    """
    aoi, (start, end) = grid_aoi(grid), recipe.period()
    for sensor in recipe.sensors:
        try:
            if sensor == "S2":
                sentinel2.s2_collection(aoi, start, end, check=True)
            else:
                sentinel1.s1_collection(aoi, start, end, check=True)
        except EngineError as exc:
            x0, y0, x1, y1 = grid.bounds()
            hint = ""
            if ensure_connected().engine == "local":
                from gee_fusion.local.world.config import DEFAULT_WORLD

                lons = [p[0] for p in DEFAULT_WORLD.footprint]
                lats = [p[1] for p in DEFAULT_WORLD.footprint]
                hint = (
                    " The local engine's demo world covers lon/lat "
                    f"{min(lons):.3f},{min(lats):.3f},{max(lons):.3f},{max(lats):.3f} (--bbox W,S,E,N), "
                    "or use AREA 'demo'."
                )
            raise DataError(
                f"No {sensor} data over the area {x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f} ({grid.crs}) in "
                f"{start}..{end}: {exc}{hint}"
            ) from exc


def area_source(hparams: dict[str, Any], grid: PixelGrid, *, strip_rows: int = 512) -> RecipeSource:
    """The checkpoint's recipe over ``grid`` as a lazy, strip-by-strip source scaled with its
    training statistics."""
    exp = hparams["experiment"]
    stored = stored_recipe(hparams)
    prior = None
    if exp["model"].get("use_prior") or exp["data"].get("prior"):
        if not stored.get("prior_asset"):
            raise ConfigError("The model reads a prior map but its recipe has no prior_asset.")
        prior = (str(stored["prior_asset"]), str(stored.get("prior_band", "Map")))
    stats = {s: {b: BandStats(**v) for b, v in hparams["normalisation"][s].items()} for s in hparams["bands"]}
    return RecipeSource(
        StackRecipe.of(stored),
        grid,
        bands=hparams["bands"],
        stats=stats,
        normalisation=exp["data"].get("normalisation", "zscore"),
        prior=prior,
        strip_rows=strip_rows,
        window=int(stored.get("window", 256)),
    )


def predict_area(
    checkpoint: str | Path,
    area: AreaConfig | LonLatBox,
    *,
    out: str | Path,
    tile: int = 256,
    overlap: int = 96,
    blend: str = "cosine",
    batch_size: int = 8,
    device: str | None = None,
    band_width: int | None = None,
    min_object_size: int = 0,
    write_probabilities: bool = False,
    progress: bool = True,
    recipe_overrides: Mapping[str, Any] | None = None,
) -> MapResult:
    """Map ``area`` with ``checkpoint`` on the connected engine: class codes of its class table,
    colour table and class names embedded, and a PNG preview with the legend beside the COG.

    ``recipe_overrides`` replaces settings of the checkpoint's recipe (e.g. ``year`` and ``months``:
    the same model on another period, as monthly monitoring does).

    Warns:
        MostlyNoDataWarning: more than half of the written map has no prediction.

    Raises:
        DataError: no image of the recipe's sensors covers the area.
        ConfigError: bad options or area.
    """
    module = load_module(checkpoint)
    hp = dict(module.hparams)
    if recipe_overrides:
        hp["recipe"] = {**stored_recipe(hp), **recipe_overrides}
    grid = resolve_area(hp, area)
    check_coverage(StackRecipe.of(stored_recipe(hp)), grid)
    source = area_source(hp, grid)
    table = class_table(int(hp["experiment"]["data"].get("classes", 10)))
    result = predict_raster(
        module.model,
        source,
        out_path=out,
        num_classes=len(hp["class_names"]),
        tile=tile,
        overlap=overlap,
        blend=blend,
        batch_size=batch_size,
        device=device,
        band_width=band_width,
        class_codes=list(hp["class_codes"]),
        colormap=table.colormap(),
        class_names=dict(zip(table.codes, table.names, strict=True)),
        min_object_size=min_object_size,
        write_probabilities=write_probabilities,
        progress=progress,
    )
    codes, nodata = read_preview(result.path)
    nodata_code = int(nodata) if nodata is not None else 255
    fraction = float((codes == nodata_code).mean())
    classes = {c: (n, col) for c, n, col in zip(table.codes, table.names, table.colors, strict=True)}
    preview = class_map_png(
        Path(result.path).with_suffix(".png"),
        codes,
        classes,
        title=f"{Path(checkpoint).name}: {grid.width} x {grid.height} px ({grid.crs})",
        nodata=nodata_code,
    )
    if fraction > MOSTLY_NODATA:
        warnings.warn(
            f"{fraction:.0%} of the map {result.path} has no prediction: the area lies mostly outside "
            "the data (or every month is masked there).",
            MostlyNoDataWarning,
            stacklevel=2,
        )
    return MapResult(result, preview, fraction)
