"""Classic machine-learning baselines (scikit-learn, no torch) on exactly the samples and blocks
of the in-cloud forest: trained on the training blocks' samples, scored on the test blocks'.

Models: ``random_forest`` (100 trees, sqrt of the inputs per split, bootstrap),
``extra_trees`` (100 trees, with its impurity importance), ``svm_rbf`` (standardised inputs,
C = 10, gamma 'scale'), ``knn`` (standardised, 5 neighbours), ``decision_tree`` and ``mlp``
(standardised, two hidden layers of 64, early stopping). Seeded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gee_fusion.classes import ClassTable
from gee_fusion.classic.samples import SampleTable
from gee_fusion.errors import DataError
from gee_fusion.export.blocks import SPLITS
from gee_fusion.metrics.confusion import ConfusionMatrix

Baseline = Literal["random_forest", "extra_trees", "svm_rbf", "knn", "decision_tree", "mlp"]
BASELINES: tuple[Baseline, ...] = ("random_forest", "extra_trees", "svm_rbf", "knn", "decision_tree", "mlp")


@dataclass(frozen=True)
class BaselineResult:
    """A baseline's held-out matrix, its fit time and (for forests) its importance."""

    name: str
    matrix: ConfusionMatrix
    fit_seconds: float
    importance: dict[str, float] = field(default_factory=dict)


def make_model(name: Baseline, *, seed: int) -> Any:
    """The scikit-learn estimator of a baseline."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    if name == "random_forest":
        return RandomForestClassifier(n_estimators=100, max_features="sqrt", n_jobs=-1, random_state=seed)
    if name == "extra_trees":
        return ExtraTreesClassifier(n_estimators=100, max_features="sqrt", n_jobs=-1, random_state=seed)
    if name == "svm_rbf":
        return make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale", random_state=seed))
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5))
    if name == "decision_tree":
        return DecisionTreeClassifier(min_samples_leaf=2, random_state=seed)
    if name == "mlp":
        mlp = MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=500, early_stopping=True, random_state=seed)
        return make_pipeline(StandardScaler(), mlp)
    raise DataError(f"Unknown baseline {name!r}: use one of {BASELINES}.")


def run_baselines(
    table: SampleTable, classes: ClassTable, *, names: Sequence[Baseline] = BASELINES, seed: int = 0
) -> list[BaselineResult]:
    """Fit each baseline on the training blocks' samples and score it on the test blocks'.

    Raises:
        DataError: no training or no test sample.
    """
    train = table.split == SPLITS["train"]
    test = table.split == SPLITS["test"]
    if not train.any() or not test.any():
        raise DataError(
            f"Baselines need samples in the training and the test blocks (have {int(train.sum())} and "
            f"{int(test.sum())}): enlarge the area or the sample."
        )
    index = {code: i for i, code in enumerate(classes.codes)}
    y_true = np.array([index[int(v)] for v in table.y[test]])
    out = []
    for name in names:
        model = make_model(name, seed=seed)
        t0 = time.perf_counter()
        model.fit(table.x[train], table.y[train])
        seconds = time.perf_counter() - t0
        y_pred = np.array([index[int(v)] for v in model.predict(table.x[test])])
        matrix = ConfusionMatrix(list(classes.names), codes=list(classes.codes)).update(y_true, y_pred)
        importance = {}
        if hasattr(model, "feature_importances_"):
            importance = {k: float(v) for k, v in zip(table.inputs, model.feature_importances_, strict=True)}
        out.append(BaselineResult(name, matrix, round(seconds, 3), importance))
    return out
