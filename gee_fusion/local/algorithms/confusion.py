"""``ee.ConfusionMatrix`` and ``Collection.errorMatrix``: accuracy, kappa, producer's and
consumer's accuracy and F-scores with Earth Engine's shapes.

Rows are actual classes and columns predicted ones. Without ``order`` the matrix covers class
values 0..max (Earth Engine's default, so labels starting at 1 leave an empty row and column 0).
``producersAccuracy`` is N x 1 (recall per actual class), ``consumersAccuracy`` 1 x N (precision
per predicted class); a class with no sample gives 0 there (and in its F-score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import FeatureCollection


@dataclass(frozen=True)
class ConfusionMatrix:
    """A square count matrix (rows actual, columns predicted) and the class value of each row."""

    counts: np.ndarray
    order: tuple[int, ...]

    def to_info(self) -> list[list[int]]:
        """``getInfo()``: the matrix as a list of lists."""
        return [[int(v) for v in row] for row in self.counts]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def _int_class(value: Any, what: str, feature: Any) -> int:
    if value is None:
        raise EngineError(f"Collection.errorMatrix: property '{what}' of feature '{feature}' is missing.")
    if float(value) != int(value) or int(value) < 0:
        raise EngineError(
            f"Collection.errorMatrix: property '{what}' must hold non-negative whole class values, "
            f"got {value!r} (feature '{feature}')."
        )
    return int(value)


@algorithm("Collection.errorMatrix")
def collection_error_matrix(
    collection: FeatureCollection, actual: str, predicted: str, order: list[int] | None = None
) -> ConfusionMatrix:
    """Count the features by (``actual``, ``predicted``) class value."""
    pairs = [
        (_int_class(f.get(actual), actual, f.id), _int_class(f.get(predicted), predicted, f.id))
        for f in collection.elements
    ]
    if order is None:
        top = max((max(a, p) for a, p in pairs), default=0)
        values = list(range(top + 1))
    else:
        values = [int(v) for v in order]
        if len(set(values)) != len(values):
            raise EngineError(f"Collection.errorMatrix: order {values} names a class more than once.")
    index = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(values), len(values)), dtype=np.int64)
    for a, p in pairs:
        if a in index and p in index:  # Earth Engine skips values outside the order
            counts[index[a], index[p]] += 1
    return ConfusionMatrix(counts, tuple(values))


@algorithm("ConfusionMatrix")
def confusion_matrix_new(array: Any, order: list[int] | None = None) -> ConfusionMatrix:
    """A confusion matrix from a square array of counts."""
    counts = np.asarray(array.to_info() if hasattr(array, "to_info") else array, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise EngineError(f"ConfusionMatrix: the array must be square, got shape {list(counts.shape)}.")
    values = list(range(counts.shape[0])) if order is None else [int(v) for v in order]
    if len(values) != counts.shape[0]:
        raise EngineError(
            f"ConfusionMatrix: order has {len(values)} values for a {counts.shape[0]}-row array."
        )
    return ConfusionMatrix(counts, tuple(values))


def _matrix(confusionMatrix: Any) -> ConfusionMatrix:
    if not isinstance(confusionMatrix, ConfusionMatrix):
        raise EngineError(f"Expected a ConfusionMatrix, got {type(confusionMatrix).__name__}.")
    return confusionMatrix


@algorithm("ConfusionMatrix.accuracy")
def cm_accuracy(confusionMatrix: Any) -> float:
    """Overall accuracy: the diagonal over the total."""
    m = _matrix(confusionMatrix).counts
    total = m.sum()
    return float(np.trace(m) / total) if total else 0.0


@algorithm("ConfusionMatrix.kappa")
def cm_kappa(confusionMatrix: Any) -> float:
    """Cohen's kappa."""
    m = _matrix(confusionMatrix).counts.astype(np.float64)
    total = m.sum()
    if not total:
        return 0.0
    observed = np.trace(m) / total
    expected = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / total**2
    return float((observed - expected) / (1 - expected)) if expected != 1 else 0.0


@algorithm("ConfusionMatrix.producersAccuracy")
def cm_producers(confusionMatrix: Any) -> np.ndarray:
    """Recall of each actual class, N x 1."""
    m = _matrix(confusionMatrix).counts.astype(np.float64)
    return _ratio(np.diag(m), m.sum(axis=1))[:, None]


@algorithm("ConfusionMatrix.consumersAccuracy")
def cm_consumers(confusionMatrix: Any) -> np.ndarray:
    """Precision of each predicted class, 1 x N."""
    m = _matrix(confusionMatrix).counts.astype(np.float64)
    return _ratio(np.diag(m), m.sum(axis=0))[None, :]


@algorithm("ConfusionMatrix.fscore")
def cm_fscore(confusionMatrix: Any, beta: float = 1.0) -> np.ndarray:
    """F-beta score of each class (precision = consumer's, recall = producer's accuracy)."""
    precision = cm_consumers(confusionMatrix)[0]
    recall = cm_producers(confusionMatrix)[:, 0]
    b2 = float(beta) ** 2
    return _ratio((1 + b2) * precision * recall, b2 * precision + recall)


@algorithm("ConfusionMatrix.array")
def cm_array(confusionMatrix: Any) -> np.ndarray:
    """The counts."""
    return _matrix(confusionMatrix).counts.copy()


@algorithm("ConfusionMatrix.order")
def cm_order(confusionMatrix: Any) -> list[int]:
    """The class value of each row and column."""
    return list(_matrix(confusionMatrix).order)
