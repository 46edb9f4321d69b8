"""The in-cloud Random Forest: ``ee.Classifier.smileRandomForest`` trained, applied and assessed
on the server, with spatial-block and random-pixel cross-validation side by side.

Everything here is earthengine-api code that runs on either engine. The held-out assessment is
the error matrix of the test blocks' samples (the classifier never saw those blocks); the two
cross-validations train one forest per fold on all samples and report the overall accuracy of each
fold. Their difference is the optimism of random-pixel CV: neighbouring pixels of the same object
land in the training and the test folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ee
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.classes import ClassTable
from gee_fusion.classic.labels import LABEL
from gee_fusion.classic.samples import BLOCK_FOLD, PIXEL_FOLD
from gee_fusion.errors import DataError
from gee_fusion.export.blocks import SPLIT, SPLITS
from gee_fusion.metrics.confusion import ConfusionMatrix
from gee_fusion.metrics.ee_matrix import from_ee_error_matrix

PREDICTED = "classification"


class RFOptions(BaseModel):
    """``smileRandomForest``'s options (Earth Engine's defaults but the number of trees)."""

    model_config = ConfigDict(extra="forbid")

    number_of_trees: int = Field(100, ge=1, le=2000)
    variables_per_split: int | None = Field(None, ge=1, description="Default: sqrt of the inputs.")
    min_leaf_population: int = Field(1, ge=1)
    bag_fraction: float = Field(0.5, gt=0, le=1)
    max_nodes: int | None = Field(None, ge=2)
    seed: int = Field(0, ge=0)

    def classifier(self) -> ee.Classifier:
        """The untrained classifier."""
        return ee.Classifier.smileRandomForest(
            numberOfTrees=self.number_of_trees,
            variablesPerSplit=self.variables_per_split,
            minLeafPopulation=self.min_leaf_population,
            bagFraction=self.bag_fraction,
            maxNodes=self.max_nodes,
            seed=self.seed,
        )


@dataclass(frozen=True)
class CrossValidation:
    """Overall accuracy of each fold."""

    folds: list[float]
    samples: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """``mean``, ``std`` over the folds that hold samples, their accuracies, and the samples
        of every fold."""
        return {
            "mean": float(np.mean(self.folds)),
            "std": float(np.std(self.folds)),
            "folds": self.folds,
            "fold_samples": self.samples,
        }


@dataclass(frozen=True)
class RFAssessment:
    """What the in-cloud forest scored on the held-out blocks, and what it learned."""

    matrix: ConfusionMatrix
    importance: dict[str, float]
    out_of_bag_error: float | None
    cv_block: CrossValidation | None = None
    cv_pixel: CrossValidation | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def split_of(samples: ee.FeatureCollection, name: str) -> ee.FeatureCollection:
    """The samples of one split (``train``, ``val`` or ``test``)."""
    return samples.filter(ee.Filter.eq(SPLIT, SPLITS[name]))


def train_rf(samples: ee.FeatureCollection, inputs: Sequence[str], options: RFOptions) -> ee.Classifier:
    """A forest trained on ``samples`` (all of them: filter the split first)."""
    return options.classifier().train(features=samples, classProperty=LABEL, inputProperties=list(inputs))


def _accuracies(
    samples: ee.FeatureCollection,
    inputs: Sequence[str],
    options: RFOptions,
    fold_property: str,
    folds: int,
    order: list[int],
) -> ee.List:
    """[accuracy, samples] of each fold."""
    out = []
    for k in range(folds):
        rf = train_rf(samples.filter(ee.Filter.neq(fold_property, k)), inputs, options)
        held = samples.filter(ee.Filter.eq(fold_property, k)).classify(rf, PREDICTED)
        out.append(ee.List([held.errorMatrix(LABEL, PREDICTED, order).accuracy(), held.size()]))
    return ee.List(out)


def _folds(pairs: list[list[float]], kind: str) -> CrossValidation:
    """The folds that hold samples (a fold of few large blocks can be empty)."""
    kept = [float(acc) for acc, n in pairs if n]
    if len(kept) < 2:
        raise DataError(
            f"{kind} cross-validation: fewer than two folds hold samples: enlarge the area or use "
            "smaller blocks."
        )
    return CrossValidation(kept, [int(n) for _, n in pairs])


def assess_rf(
    samples: ee.FeatureCollection,
    inputs: Sequence[str],
    options: RFOptions,
    table: ClassTable,
    *,
    folds: int | None = None,
) -> tuple[ee.Classifier, RFAssessment]:
    """Train on the training blocks, assess on the test blocks; with ``folds``, also run the
    block and random-pixel cross-validations. One ``getInfo`` for everything.

    Returns:
        The trained classifier (to map the area with) and its assessment.
    """
    order = list(table.codes)
    rf = train_rf(split_of(samples, "train"), inputs, options)
    held = split_of(samples, "test").classify(rf, PREDICTED).errorMatrix(LABEL, PREDICTED, order)
    request: dict[str, Any] = {"matrix": held.array(), "explain": rf.explain()}
    if folds:
        request["cv_block"] = _accuracies(samples, inputs, options, BLOCK_FOLD, folds, order)
        request["cv_pixel"] = _accuracies(samples, inputs, options, PIXEL_FOLD, folds, order)
    got: dict[str, Any] = ee.Dictionary(request).getInfo() or {}
    matrix = from_ee_error_matrix(
        got["matrix"], names=table.names, codes=table.codes, order=order, ignore_index=None
    )
    explain = got.get("explain") or {}
    importance = {str(k): float(v) for k, v in (explain.get("importance") or {}).items()}
    oob = explain.get("outOfBagErrorEstimate")
    cv_block = _folds(got["cv_block"], "Spatial-block") if folds else None
    cv_pixel = _folds(got["cv_pixel"], "Random-pixel") if folds else None
    return rf, RFAssessment(matrix, importance, None if oob is None else float(oob), cv_block, cv_pixel)
