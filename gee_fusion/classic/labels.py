"""Reference labels for the in-cloud classifiers: where they come from, and the class table they
are read in (MultiSenGE 14 classes, or its 10- and 6-class groupings applied server-side).

Sources: the demo world's truth (``demo``), its generalised reference map (``demo_reference``:
coarser and older than the truth, like a real land-cover product), a raster asset with MultiSenGE codes 1..14
(``raster``), a vector FeatureCollection whose ``class_property`` holds those codes
(``vector``, painted on the server), or ESA WorldCover (``worldcover``: its own 11-class table;
a global lon/lat product, so it is always taken by nearest neighbour). The 14 -> 10 -> 6 groupings
are data
(:data:`gee_fusion.classes.GROUPS_10`, :data:`~gee_fusion.classes.GROUPS_6`) applied with
``Image.remap``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import ee
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gee_fusion import ids
from gee_fusion.classes import (
    GROUPS_6,
    GROUPS_10,
    MULTISENGE_14,
    NO_LABEL,
    WORLDCOVER_CODES,
    WORLDCOVER_SCHEME,
    ClassTable,
    class_table,
)  # fmt: skip
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.export.fetch import map_image, native_grid
from gee_fusion.grid import PixelGrid

LABEL = "label"
"""The band (and sample property) of the reference class codes, in the table's codes."""
SOURCE_CODES: tuple[int, ...] = tuple(c.code for c in MULTISENGE_14)
DEMO_ASSETS: dict[str, str] = {"demo": ids.DEMO_LABELS, "demo_reference": ids.DEMO_REFERENCE}
"""The demo world's label images, by ``labels.source`` (band ``label``, MultiSenGE codes)."""


class LabelsConfig(BaseModel):
    """Where the reference labels come from (the ``labels`` section of a job YAML)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["demo", "demo_reference", "raster", "vector", "worldcover"] = Field(
        "demo",
        description="demo: the demo world's truth; demo_reference: its generalised reference map "
        "(minimum mapping unit, displaced boundaries, outdated polygons); raster, vector: your asset; "
        "worldcover: ESA WorldCover.",
    )
    asset: str | None = Field(
        None, description="Raster image ID (raster); FeatureCollection ID or a GeoJSON file (vector)."
    )
    band: str = Field("label", description="Band of the raster holding MultiSenGE codes 1..14.")
    class_property: str = Field("class", description="Property of the vector features holding the code.")
    scheme: Literal[14, 10, 6] = Field(10, description="Class table: MultiSenGE 14, or its 10 / 6 groupings.")
    resample: bool = Field(
        False, description="Accept a label raster on another grid than the stack (nearest neighbour)."
    )

    @model_validator(mode="after")
    def _asset(self) -> LabelsConfig:
        if self.source in ("raster", "vector") and not self.asset:
            raise ValueError(f"labels source {self.source!r} needs an asset ID")
        if self.source in DEMO_ASSETS and self.asset:
            raise ValueError(
                f"labels source {self.source!r} reads {DEMO_ASSETS[self.source]}: drop labels.asset, "
                "or use source: raster to read your own image"
            )
        return self

    def raster(self) -> tuple[str, str]:
        """The image ID and band of a raster source (the demo world's assets, or ``asset``)."""
        if self.source in DEMO_ASSETS:
            return DEMO_ASSETS[self.source], "label"
        return str(self.asset), self.band

    def table(self) -> ClassTable:
        """The class table the labels are read in (WorldCover's own for ``worldcover``)."""
        return class_table(WORLDCOVER_SCHEME if self.source == "worldcover" else self.scheme)

    def source_codes(self) -> tuple[int, ...]:
        """The codes the source may hold."""
        return WORLDCOVER_CODES if self.source == "worldcover" else SOURCE_CODES


def source_labels(cfg: LabelsConfig) -> ee.Image:
    """The labels as the source holds them (MultiSenGE codes, band ``label``; unlabelled masked).

    Raises:
        DataError: a vector source's features have no ``class_property``.
    """
    if cfg.source == "vector":
        features = _vector(str(cfg.asset))
        names = features.first().propertyNames().getInfo() or []
        if cfg.class_property not in names:
            raise DataError(
                f"The label features of {cfg.asset} have no property {cfg.class_property!r} (they have "
                f"{sorted(n for n in names if not n.startswith('system:'))}): set labels.class_property."
            )
        image = ee.Image(0).toInt().paint(features, cfg.class_property).selfMask()
    elif cfg.source == "worldcover":
        image = map_image(ids.WORLDCOVER, "Map")
    else:
        asset, band = cfg.raster()
        image = ee.Image(asset).select(band)
    return image.updateMask(image.neq(NO_LABEL)).toInt().rename(LABEL)


def _vector(asset: str) -> ee.FeatureCollection:
    """A FeatureCollection asset, or a local GeoJSON file sent inline."""
    path = Path(asset)
    if path.suffix.lower() in (".geojson", ".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"Cannot read the label polygons {path}: {exc}") from exc
        return ee.FeatureCollection(data)
    return ee.FeatureCollection(asset)


def grouped_labels(cfg: LabelsConfig, labels: ee.Image) -> ee.Image:
    """The labels in the table's codes (server-side remap); codes outside the source's are masked."""
    if cfg.source == "worldcover" or cfg.scheme == 14:
        groups = {code: code for code in cfg.source_codes()}
    else:
        groups = GROUPS_10 if cfg.scheme == 10 else GROUPS_6
    keys = sorted(groups)
    return labels.remap(keys, [groups[k] for k in keys]).toInt().rename(LABEL)


def check_label_grid(cfg: LabelsConfig, grid: PixelGrid) -> None:
    """A label raster must lie on the stack's grid (same CRS and pixel size, pixel edges aligned),
    unless ``resample`` accepts nearest-neighbour resampling. Vector labels are painted on the grid.

    Raises:
        DataError: the grids differ (says how, and what to do).
    """
    if cfg.source in ("vector", "worldcover") or cfg.resample:
        return
    asset, band = cfg.raster()
    try:
        labels_grid = native_grid(ee.Image(asset), band=band)
    except ConfigError:
        raise DataError(
            f"The labels {asset} have no fixed grid: set labels.resample: true to sample them anyway."
        ) from None
    crs = labels_grid.crs
    a, _, c, _, e, f = grid.transform
    la, lb, lc, ld, le, lf = labels_grid.transform
    reasons = []
    if str(crs) != grid.crs:
        reasons.append(f"CRS {crs} vs {grid.crs}")
    if not (np.isclose(la, a) and np.isclose(le, e) and lb == 0 and ld == 0):
        reasons.append(f"pixel size {abs(la):g} x {abs(le):g} vs {abs(a):g} x {abs(e):g}")
    elif not (_aligned(c - lc, la) and _aligned(f - lf, le)):
        reasons.append(f"pixel edges offset by ({(c - lc) % la:g}, {(f - lf) % abs(le):g}) CRS units")
    if reasons:
        raise DataError(
            f"The labels {asset} are on another grid than the stack ({'; '.join(reasons)}): reproject them "
            "onto the stack's grid, or set labels.resample: true to take the nearest label."
        )


def _aligned(offset: float, size: float) -> bool:
    steps = offset / size
    return bool(np.isclose(steps, round(steps), atol=1e-6))


def check_label_values(
    labels: ee.Image, region: ee.Geometry, grid: PixelGrid, *, codes: tuple[int, ...] = SOURCE_CODES
) -> dict[int, int]:
    """Count the source codes over ``region`` (one request) and check each is one of ``codes``
    (MultiSenGE's by default).

    Returns:
        Code -> pixel count.

    Raises:
        DataError: a code is not in the class table (names the codes and where they are allowed).
    """
    histogram = labels.reduceRegion(
        reducer=ee.Reducer.frequencyHistogram(), geometry=region, crs=grid.crs,
        crsTransform=list(grid.transform), maxPixels=10**10,
    ).get(LABEL).getInfo() or {}  # fmt: skip
    counts = {int(float(k)): int(v) for k, v in histogram.items()}
    unknown = sorted(k for k in counts if k not in codes)
    if unknown:
        table = "MultiSenGE" if codes == SOURCE_CODES else "WorldCover"
        raise DataError(
            f"The labels hold class codes {unknown} ({sum(counts[k] for k in unknown)} pixels) that are "
            f"not in the {table} class table (codes {list(codes)}; {NO_LABEL} = no label): "
            "recode them, or mask them as no label."
        )
    if not counts:
        raise DataError("The labels hold no labelled pixel in the area: check the area and the label source.")
    return counts
