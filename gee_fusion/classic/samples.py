"""Training and assessment samples for the in-cloud and classic classifiers, drawn on the server.

:func:`draw_samples` stacks the inputs with the reference labels, the block id and the block's
split (:class:`gee_fusion.export.blocks.BlockSplit`, computed server-side) and draws a sample
stratified by class AND split (``points_per_class`` pixels of each class in each of train,
validation and test, seeded; one pass over the stack). Two fold assignments go with every sample:

* ``block_fold``: a seeded random number per BLOCK (``randomColumn`` with ``rowKeys=['block']``)
  cut into ``folds`` -- spatial-block k-fold cross-validation: a block never lends pixels to both
  sides of a fold;
* ``pixel_fold``: a seeded random number per PIXEL -- the seed paper's random-pixel k-fold, where
  neighbouring pixels of the same field or building fall on both sides (the leak it measures).

:func:`sample_table` brings the samples here (paged, 5000 features a request) for the classic
scikit-learn baselines, so every model learns and is scored on exactly the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ee
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.classes import ClassTable
from gee_fusion.classic.labels import LABEL
from gee_fusion.errors import DataError
from gee_fusion.export.blocks import BLOCK, SPLIT, SPLITS, BlockSplit
from gee_fusion.export.fetch import grid_aoi

STRATUM = "stratum"
BLOCK_FOLD = "block_fold"
PIXEL_FOLD = "pixel_fold"
_PAGE = 5000


class SamplingConfig(BaseModel):
    """How many pixels per class, and how many cross-validation folds."""

    model_config = ConfigDict(extra="forbid")

    points_per_class: int = Field(400, ge=10, le=100_000)
    folds: int = Field(5, ge=2, le=20)
    seed: int = Field(42, ge=0)


def draw_samples(
    stack: ee.Image, labels: ee.Image, split: BlockSplit, cfg: SamplingConfig
) -> ee.FeatureCollection:
    """Stratified samples of ``stack`` with ``label``, ``block``, ``split``, ``block_fold`` and
    ``pixel_fold`` properties (an Earth Engine graph; nothing is computed yet)."""
    grid = split.grid
    split_image = split.split_image()
    strata = labels.multiply(len(SPLITS)).add(split_image).rename(STRATUM)  # (class, split) pairs
    image = stack.addBands(labels).addBands(split.block_image()).addBands(split_image).addBands(strata)
    samples = image.stratifiedSample(
        numPoints=cfg.points_per_class, classBand=STRATUM, region=grid_aoi(grid),
        projection=ee.Projection(grid.crs, list(grid.transform)), seed=cfg.seed, geometries=True,
    )  # fmt: skip
    samples = samples.randomColumn("u_block", cfg.seed + 1, "uniform", [BLOCK])
    samples = samples.randomColumn("u_pixel", cfg.seed + 2)
    k = cfg.folds

    def folds(f: ee.Feature) -> ee.Feature:
        return ee.Feature(f).set({
            BLOCK_FOLD: ee.Number(f.get("u_block")).multiply(k).floor().toInt(),
            PIXEL_FOLD: ee.Number(f.get("u_pixel")).multiply(k).floor().toInt(),
        })  # fmt: skip

    return samples.map(folds)


def check_class_counts(samples: SampleTable, table: ClassTable, *, folds: int) -> dict[int, int]:
    """Samples per class; every class present needs at least ``folds`` samples.

    Raises:
        DataError: no sample, a class value outside the table, or a class with fewer samples
            than folds (names the class and what to do).
    """
    values, numbers = np.unique(samples.y, return_counts=True)
    counts = {int(c): int(n) for c, n in zip(values, numbers, strict=True)}
    if not counts:
        raise DataError("No labelled sample in the area: check the area, the labels and their mask.")
    names = dict(zip(table.codes, table.names, strict=True))
    unknown = sorted(set(counts) - set(names))
    if unknown:
        raise DataError(
            f"Samples carry class values {unknown} outside the {table.scheme}-class table {table.codes}."
        )
    few = {c: n for c, n in counts.items() if n < folds}
    if few:
        listed = ", ".join(f"{names[c]} ({c}): {n}" for c, n in sorted(few.items()))
        raise DataError(
            f"Classes with fewer samples than the {folds} folds: {listed}. Enlarge the area, lower "
            "sampling.folds, or group classes (labels.scheme 10 or 6)."
        )
    return counts


@dataclass(frozen=True)
class SampleTable:
    """The samples, here: inputs (n, features), labels, blocks, splits and folds."""

    inputs: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    block: np.ndarray
    split: np.ndarray
    block_fold: np.ndarray
    pixel_fold: np.ndarray


def sample_table(samples: ee.FeatureCollection, inputs: Sequence[str]) -> SampleTable:
    """Bring the samples here, 5000 features a request (no separate count: drawing the samples is
    the expensive part, so each request should bring some).

    Raises:
        DataError: a sample lacks an input (the stack had a masked band there).
    """
    columns = [*inputs, LABEL, BLOCK, SPLIT, BLOCK_FOLD, PIXEL_FOLD]
    rows: list[list[float]] = []
    offset = 0
    while True:
        page = samples.toList(_PAGE, offset).getInfo() or []
        offset += _PAGE
        for feature in page:
            props = feature.get("properties", {})
            missing = [c for c in columns if props.get(c) is None]
            if missing:
                raise DataError(
                    f"Sample {feature.get('id')} has no value for {missing}: the stack is masked there."
                )
            rows.append([float(props[c]) for c in columns])
        if len(page) < _PAGE:
            break
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(columns))
    n = len(inputs)
    ints = data[:, n:].astype(np.int64)
    return SampleTable(tuple(inputs), data[:, :n], ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3], ints[:, 4])
