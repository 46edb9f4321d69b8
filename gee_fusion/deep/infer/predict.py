"""Mapping an area with a trained checkpoint: the checkpoint's recipe over the area (fetched
strip by strip), scaled with its training statistics, then blended sliding-window inference to a
COG. Memory is bounded by one strip of inputs and the inference strip, whatever the area's height."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gee_fusion.classes import class_table
from gee_fusion.deep.infer.inference import InferenceResult, predict_raster
from gee_fusion.deep.infer.recipe_source import RecipeSource
from gee_fusion.deep.train.checkpoints import load_module
from gee_fusion.errors import ConfigError
from gee_fusion.export.patch_store import BandStats
from gee_fusion.export.patches import AreaConfig, PatchExportConfig


def parse_area(area: str | Path) -> AreaConfig:
    """``demo`` (the whole demo city), ``X0,Y1,WIDTH,HEIGHT`` (upper-left corner in the demo
    world's CRS, size in pixels) or a YAML file with an ``area`` mapping (crs, origin, size_px).

    Raises:
        ConfigError: none of these forms.
    """
    text = str(area)
    if text == "demo":
        return AreaConfig()
    parts = text.split(",")
    if len(parts) == 4:
        try:
            x0, y1, w, h = (float(p) for p in parts)
        except ValueError as exc:
            raise ConfigError(f"AREA {text!r}: expected X0,Y1,WIDTH,HEIGHT numbers.") from exc
        return AreaConfig(origin=(x0, y1), size_px=(int(w), int(h)))
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        raw = yaml.safe_load(path.read_text()) or {}
        section = raw.get("area", raw.get("patches", {}).get("area")) if isinstance(raw, dict) else None
        if not isinstance(section, dict):
            raise ConfigError(f"{path} has no `area` mapping (crs, origin, size_px).")
        return AreaConfig.model_validate(section)
    raise ConfigError(f"AREA {text!r} is not 'demo', 'X0,Y1,WIDTH,HEIGHT' or an existing YAML file.")


def area_source(hparams: dict[str, Any], area: AreaConfig, *, strip_rows: int = 512) -> RecipeSource:
    """The checkpoint's recipe over ``area`` as a lazy, strip-by-strip source scaled with its
    training statistics (the recipe's own area settings, e.g. CRS and scale, are kept unless
    ``area`` sets them)."""
    exp = hparams["experiment"]
    recipe = PatchExportConfig.model_validate(hparams.get("recipe") or exp.get("patches") or {})
    merged = recipe.area.model_copy(update=area.model_dump(exclude_unset=True))
    recipe = recipe.model_copy(update={"area": merged})
    stats = {s: {b: BandStats(**v) for b, v in hparams["normalisation"][s].items()} for s in hparams["bands"]}
    return RecipeSource(
        recipe,
        bands=hparams["bands"],
        stats=stats,
        normalisation=exp["data"].get("normalisation", "zscore"),
        prior=bool(exp["model"].get("use_prior") or exp["data"].get("prior")),
        strip_rows=strip_rows,
    )


def predict_area(
    checkpoint: str | Path,
    area: AreaConfig,
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
) -> InferenceResult:
    """Map ``area`` with ``checkpoint``: class codes of its class table, colour table embedded."""
    module = load_module(checkpoint)
    hp = dict(module.hparams)
    source = area_source(hp, area)
    table = class_table(int(hp["experiment"]["data"].get("classes", 10)))
    return predict_raster(
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
        min_object_size=min_object_size,
        write_probabilities=write_probabilities,
        progress=progress,
    )
