"""Classification metrics, all derived from one accumulated confusion matrix (numpy only).

Rows are the reference (actual) class, columns the predicted class: Earth Engine's ``errorMatrix``
convention. The deep stage, the scikit-learn baselines and the in-cloud Random Forest (read from
``errorMatrix().getInfo()``) are therefore all assessed by the same code.

Conventions where a metric would be undefined:

- per-class precision, recall, F1 and IoU with a zero denominator are 0 (scikit-learn's
  ``zero_division=0``): a class never predicted has precision 0, a class without reference pixels
  has recall 0;
- macro averages (F1, precision, recall) and mIoU run over the classes *present*, i.e. in the
  reference or in the prediction (scikit-learn's default label set). A class absent from both is
  excluded, never counted as 0; a class only predicted counts (its F1 and IoU are 0);
- balanced accuracy averages recall over classes with reference pixels (as scikit-learn);
- Cohen's kappa is 0 when chance agreement is 1 (one single class in reference and prediction);
- summary metrics of an empty matrix raise :class:`DataError`; per-class arrays are then all 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from gee_fusion.classes import NO_LABEL
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.io.atomic import atomic_path
from gee_fusion.metrics.counts import check_range, count_matrix, divide

FORMAT = "gee_fusion.confusion_matrix/1"
SUMMARY_METRICS = (
    "overall_accuracy",
    "kappa",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "balanced_accuracy",
    "miou",
    "fw_iou",
)
PER_CLASS_METRICS = ("support", "predicted", "precision", "recall", "f1", "iou", "present")


class ConfusionMatrix:
    """An accumulating K x K confusion matrix (rows = reference, columns = prediction).

    Args:
        names: Class names, in index order (index i is class i in ``y_true`` / ``y_pred``).
        codes: Optional class codes (e.g. 1..14 of MultiSenGE), in index order.
        ignore_index: Reference value that is not counted (default 255 = no label); ``None``
            to count every pixel.

    Example:
        >>> cm = ConfusionMatrix(["built", "water"])
        >>> _ = cm.update(np.array([0, 1, 255]), np.array([0, 0, 1]))
        >>> cm.overall_accuracy
        0.5
    """

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(
        self, names: Sequence[str], *, codes: Sequence[int] | None = None, ignore_index: int | None = NO_LABEL
    ) -> None:
        if isinstance(names, str) or len(names) == 0:
            raise ConfigError("names must be a non-empty sequence of class names (one per class index).")
        self._names = tuple(str(n) for n in names)
        if len(set(self._names)) != len(self._names):
            raise ConfigError(f"Class names must be unique, got {list(self._names)}.")
        k = len(self._names)
        self._codes = None if codes is None else tuple(int(c) for c in codes)
        if self._codes is not None and (len(self._codes) != k or len(set(self._codes)) != k):
            raise ConfigError(
                f"codes must be {k} distinct integers (one per class), got {list(self._codes)}."
            )
        if ignore_index is not None and 0 <= ignore_index < k:
            raise ConfigError(
                f"ignore_index={ignore_index} is a valid class index (0..{k - 1}); use a value outside "
                "that range (255 by default) or None."
            )
        self._ignore_index = None if ignore_index is None else int(ignore_index)
        self._matrix = np.zeros((k, k), dtype=np.int64)

    # -- construction and accumulation ---------------------------------------------------------
    @classmethod
    def from_matrix(
        cls,
        matrix: ArrayLike,
        names: Sequence[str],
        *,
        codes: Sequence[int] | None = None,
        ignore_index: int | None = NO_LABEL,
    ) -> ConfusionMatrix:
        """Wrap an existing count matrix (rows = reference, columns = prediction)."""
        m = count_matrix(matrix, "matrix")
        cm = cls(names, codes=codes, ignore_index=ignore_index)
        if m.shape[0] != cm.num_classes:
            raise DataError(
                f"matrix is {m.shape[0]}x{m.shape[1]} but {cm.num_classes} class names were given."
            )
        cm._matrix = m
        return cm

    @classmethod
    def from_names(
        cls, names_by_code: Mapping[int, str], *, ignore_index: int | None = NO_LABEL
    ) -> ConfusionMatrix:
        """An empty matrix for a code -> name table (e.g. ``NAMES_10``), classes ordered by code."""
        codes = sorted(names_by_code)
        return cls([names_by_code[c] for c in codes], codes=codes, ignore_index=ignore_index)

    def update(self, y_true: ArrayLike, y_pred: ArrayLike) -> ConfusionMatrix:
        """Count reference/prediction pairs of integer class indices (arrays of any, equal, shape).

        Pixels whose reference equals ``ignore_index`` are skipped (the prediction there is not
        checked, so a prediction nodata value aligned with unlabelled pixels is fine).

        Returns:
            self, for chaining.

        Raises:
            DataError: shapes differ, non-integer dtype, or a counted value is outside 0..K-1.
        """
        t, p = np.asarray(y_true), np.asarray(y_pred)
        if t.shape != p.shape:
            raise DataError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}; they must match.")
        for what, a in (("y_true", t), ("y_pred", p)):
            if not np.issubdtype(a.dtype, np.integer):
                raise DataError(
                    f"{what} has dtype {a.dtype}; pass integer class indices (e.g. argmax of scores)."
                )
        t, p = t.ravel(), p.ravel()
        if self._ignore_index is not None:
            keep = t != self._ignore_index
            if not keep.all():
                t, p = t[keep], p[keep]
        k = self.num_classes
        check_range(t, k, "y_true")
        check_range(p, k, "y_pred")
        flat = t.astype(np.int64) * k + p.astype(np.int64)
        self._matrix += np.bincount(flat, minlength=k * k).reshape(k, k)
        return self

    def reset(self) -> None:
        """Set every count back to 0."""
        self._matrix[:] = 0

    def _check_same_table(self, other: ConfusionMatrix) -> None:
        if not isinstance(other, ConfusionMatrix):
            raise DataError(f"Cannot merge a ConfusionMatrix with {type(other).__name__}.")
        if other._names != self._names or other._codes != self._codes:
            raise DataError(
                f"Cannot merge confusion matrices of different class tables: {list(self._names)} "
                f"(codes {self._codes}) vs {list(other._names)} (codes {other._codes})."
            )

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """A new matrix holding the counts of both (same names and codes required)."""
        self._check_same_table(other)
        return ConfusionMatrix.from_matrix(
            self._matrix + other._matrix, self._names, codes=self._codes, ignore_index=self._ignore_index
        )

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return self.merge(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return (
            self._names == other._names
            and self._codes == other._codes
            and bool(np.array_equal(self._matrix, other._matrix))
        )

    def __repr__(self) -> str:
        return f"ConfusionMatrix(classes={self.num_classes}, total={self.total})"

    # -- table and counts ----------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Class names, in index order."""
        return self._names

    @property
    def codes(self) -> tuple[int, ...] | None:
        """Class codes, in index order (None when not given)."""
        return self._codes

    @property
    def ignore_index(self) -> int | None:
        """The reference value skipped by :meth:`update`."""
        return self._ignore_index

    @property
    def num_classes(self) -> int:
        """K."""
        return len(self._names)

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the int64 counts (rows = reference, columns = prediction)."""
        return self._matrix.copy()

    @property
    def total(self) -> int:
        """Number of counted pixels."""
        return int(self._matrix.sum())

    @property
    def support(self) -> np.ndarray:
        """Reference pixels per class (row sums)."""
        return self._matrix.sum(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        """Predicted pixels per class (column sums)."""
        return self._matrix.sum(axis=0)

    @property
    def present(self) -> np.ndarray:
        """Boolean mask of the classes present in the reference or the prediction."""
        return (self.support + self.predicted) > 0

    # -- per-class metrics ---------------------------------------------------------------------
    @property
    def precision(self) -> np.ndarray:
        """Per-class precision = user's accuracy = EE consumersAccuracy (0 if never predicted)."""
        return divide(np.diag(self._matrix), self.predicted)

    @property
    def recall(self) -> np.ndarray:
        """Per-class recall = producer's accuracy = EE producersAccuracy (0 if no reference pixel)."""
        return divide(np.diag(self._matrix), self.support)

    @property
    def f1(self) -> np.ndarray:
        """Per-class F1 = 2 TP / (support + predicted) (0 if the class is absent from both)."""
        return divide(2 * np.diag(self._matrix), self.support + self.predicted)

    @property
    def iou(self) -> np.ndarray:
        """Per-class IoU = TP / (support + predicted - TP) (0 if absent from both; see :attr:`miou`)."""
        tp = np.diag(self._matrix)
        return divide(tp, self.support + self.predicted - tp)

    # -- summary metrics -----------------------------------------------------------------------
    def _counted(self) -> int:
        n = self.total
        if n == 0:
            raise DataError(
                "The confusion matrix is empty: no labelled pixel was counted, so no metric exists."
            )
        return n

    @property
    def overall_accuracy(self) -> float:
        """Correct pixels / counted pixels."""
        return float(np.trace(self._matrix) / self._counted())

    @property
    def kappa(self) -> float:
        """Cohen's kappa, (p_o - p_e) / (1 - p_e); 0 when p_e == 1 (a single class everywhere)."""
        n = self._counted()
        p_o = np.trace(self._matrix) / n
        p_e = float(np.dot(self.support.astype(np.float64), self.predicted.astype(np.float64))) / n**2
        return 0.0 if p_e >= 1.0 else float((p_o - p_e) / (1.0 - p_e))

    def _macro(self, values: np.ndarray) -> float:
        self._counted()
        return float(values[self.present].mean())

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes present (reference or prediction)."""
        return self._macro(self.f1)

    @property
    def macro_precision(self) -> float:
        """Mean precision over the classes present (reference or prediction)."""
        return self._macro(self.precision)

    @property
    def macro_recall(self) -> float:
        """Mean recall over the classes present (reference or prediction)."""
        return self._macro(self.recall)

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes with reference pixels."""
        self._counted()
        return float(self.recall[self.support > 0].mean())

    @property
    def weighted_f1(self) -> float:
        """F1 averaged with reference-pixel (support) weights."""
        return float(np.dot(self.f1, self.support) / self._counted())

    @property
    def miou(self) -> float:
        """Mean IoU over the classes present; a class absent from both sides is excluded, not 0."""
        return self._macro(self.iou)

    @property
    def fw_iou(self) -> float:
        """Frequency-weighted IoU: IoU averaged with reference-pixel weights."""
        return float(np.dot(self.iou, self.support) / self._counted())

    def summary(self) -> dict[str, float]:
        """Every summary metric by name (see ``SUMMARY_METRICS``)."""
        return {name: float(getattr(self, name)) for name in SUMMARY_METRICS}

    def per_class(self) -> list[dict[str, Any]]:
        """One row per class: index, code, name, support, predicted, precision, recall, f1, iou, present."""
        cols = {key: getattr(self, key).tolist() for key in PER_CLASS_METRICS}
        codes = self._codes or (None,) * self.num_classes
        return [
            {"index": i, "code": codes[i], "name": name, **{key: vals[i] for key, vals in cols.items()}}
            for i, name in enumerate(self._names)
        ]

    # -- hierarchical evaluation ---------------------------------------------------------------
    def aggregate(
        self,
        mapping: Mapping[int, int] | Sequence[int],
        names: Sequence[str],
        *,
        codes: Sequence[int] | None = None,
    ) -> ConfusionMatrix:
        """The coarse matrix obtained by summing blocks of fine classes.

        Args:
            mapping: Fine index -> coarse index, for every fine index (a mapping or a sequence).
            names: Coarse class names, in coarse index order.
            codes: Optional coarse class codes.
        """
        k, m = self.num_classes, len(names)
        if isinstance(mapping, Mapping):
            missing = sorted(set(range(k)) - set(mapping))
            if missing:
                raise DataError(f"The grouping gives no coarse class for fine class index(es) {missing}.")
            mapping = [mapping[i] for i in range(k)]
        index = np.asarray(mapping, dtype=np.int64)
        if index.shape != (k,) or index.min() < 0 or index.max() >= m:
            raise DataError(
                f"The grouping must map each of the {k} fine indices to a coarse index 0..{m - 1}."
            )
        onehot = np.zeros((k, m), dtype=np.int64)
        onehot[np.arange(k), index] = 1
        return ConfusionMatrix.from_matrix(
            onehot.T @ self._matrix @ onehot, names, codes=codes, ignore_index=self._ignore_index
        )

    def aggregate_codes(self, groups: Mapping[int, int], names_by_code: Mapping[int, str]) -> ConfusionMatrix:
        """Coarse matrix from a fine code -> coarse code grouping (e.g. ``GROUPS_6`` on a 14-class matrix).

        Coarse classes are ordered by code, named from ``names_by_code``.
        """
        if self._codes is None:
            raise DataError(
                "aggregate_codes needs class codes; build the matrix with codes= or use aggregate()."
            )
        coarse_codes = sorted(names_by_code)
        unknown = sorted({c for c in self._codes if groups.get(c) not in names_by_code})
        if unknown:
            raise DataError(
                f"Fine class code(s) {unknown} have no coarse class in the grouping / name table."
            )
        position = {c: i for i, c in enumerate(coarse_codes)}
        mapping = [position[groups[c]] for c in self._codes]
        return self.aggregate(mapping, [names_by_code[c] for c in coarse_codes], codes=coarse_codes)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable: class table, matrix, summary metrics (None if empty), per-class table."""
        return {
            "format": FORMAT,
            "axes": "rows = reference (actual), columns = prediction",
            "names": list(self._names),
            "codes": None if self._codes is None else list(self._codes),
            "ignore_index": self._ignore_index,
            "matrix": self._matrix.tolist(),
            "total": self.total,
            "metrics": self.summary() if self.total else dict.fromkeys(SUMMARY_METRICS),
            "per_class": self.per_class(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfusionMatrix:
        """Rebuild from :meth:`to_dict` output (metrics are recomputed from the matrix)."""
        if data.get("format") != FORMAT:
            raise DataError(
                f"Not a gee_fusion confusion matrix (format {data.get('format')!r}, expected {FORMAT})."
            )
        try:
            names, matrix = data["names"], data["matrix"]
        except KeyError as exc:
            raise DataError(f"Confusion matrix record lacks the key {exc}.") from exc
        return cls.from_matrix(matrix, names, codes=data.get("codes"), ignore_index=data.get("ignore_index"))

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON atomically (e.g. a run's ``metrics.json``)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        with atomic_path(path, suffix=".json") as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> ConfusionMatrix:
        """Read a file written by :meth:`save_json`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"Cannot read a confusion matrix from {path}: {exc}") from exc
        return cls.from_dict(data)
