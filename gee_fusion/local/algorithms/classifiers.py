"""``ee.Classifier``: Smile's random forest and CART, libsvm, minimum distance; training on a
feature collection, classifying images and features, output modes, ``explain`` and the
resubstitution ``confusionMatrix``. scikit-learn underneath, seeded and deterministic.

The random forest follows Smile, not scikit-learn's forest: each tree is grown on a sample of
``bagFraction`` of the training features drawn WITHOUT replacement, splits try
``variablesPerSplit`` inputs (default: the floor of the square root of their number), and the
forest predicts by majority vote (PROBABILITY: the share of trees voting for the class). Trees are
scikit-learn CART trees (Gini), so split choices among ties and the importance scale differ from
Smile's (see docs/local_engine.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError, NotSupportedError
from gee_fusion.local.algorithms._common import feature_matrix, subsample
from gee_fusion.local.algorithms.confusion import ConfusionMatrix
from gee_fusion.local.image import Band, FuncNode, Image, Pixels
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import FeatureCollection

MODES = ("CLASSIFICATION", "PROBABILITY", "MULTIPROBABILITY", "REGRESSION", "RAW", "RAW_REGRESSION")


class _Forest:
    """Smile-style random forest: bagging without replacement, majority vote, OOB error."""

    def __init__(self, *, trees: int, mtry: int | None, min_leaf: int, bag: float,
                 max_nodes: int | None, seed: int) -> None:  # fmt: skip
        self.trees, self.mtry, self.min_leaf, self.bag = trees, mtry, min_leaf, bag
        self.max_nodes, self.seed = max_nodes, seed
        self.estimators: list[Any] = []
        self.classes = np.zeros(0)
        self.oob_error = float("nan")
        self.importance = np.zeros(0)

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Forest:
        from sklearn.tree import DecisionTreeClassifier

        n, p = x.shape
        self.classes = np.unique(y)
        mtry = self.mtry or max(1, math.floor(math.sqrt(p)))
        rng = np.random.default_rng(self.seed)
        size = max(1, round(self.bag * n)) if self.bag < 1 else n
        votes = np.zeros((n, len(self.classes)), dtype=np.int64)
        self.importance = np.zeros(p)
        for _ in range(self.trees):
            rows = rng.choice(n, size, replace=self.bag >= 1)
            tree = DecisionTreeClassifier(
                max_features=min(mtry, p), min_samples_leaf=self.min_leaf, max_leaf_nodes=self.max_nodes,
                random_state=int(rng.integers(2**31 - 1)),
            )  # fmt: skip
            tree.fit(x[rows], y[rows])
            self.estimators.append(tree)
            self.importance += tree.tree_.compute_feature_importances(normalize=False) * len(rows)
            out = np.ones(n, dtype=bool)
            out[rows] = False
            if out.any():
                pred = np.searchsorted(self.classes, tree.predict(x[out]))
                votes[np.flatnonzero(out), pred] += 1
        seen = votes.sum(axis=1) > 0
        if seen.any():
            winner = self.classes[votes[seen].argmax(axis=1)]
            self.oob_error = float((winner != y[seen]).mean())
        return self

    def votes(self, x: np.ndarray) -> np.ndarray:
        """(n, classes) share of trees voting for each class."""
        counts = np.zeros((len(x), len(self.classes)))
        for tree in self.estimators:
            counts[np.arange(len(x)), np.searchsorted(self.classes, tree.predict(x))] += 1
        return counts / max(len(self.estimators), 1)


class _MinimumDistance:
    """Nearest class mean under euclidean, manhattan, cosine or (per-class) Mahalanobis distance."""

    def __init__(self, metric: str) -> None:
        if metric not in ("euclidean", "manhattan", "cosine", "mahalanobis"):
            raise EngineError(
                "Classifier.minimumDistance: metric must be euclidean, cosine, mahalanobis or manhattan, "
                f"got {metric!r}."
            )
        self.metric = metric
        self.classes = np.zeros(0)
        self.means = np.zeros((0, 0))
        self.inverse_cov = np.zeros((0, 0))

    def fit(self, x: np.ndarray, y: np.ndarray) -> _MinimumDistance:
        self.classes = np.unique(y)
        self.means = np.stack([x[y == c].mean(axis=0) for c in self.classes])
        if self.metric == "mahalanobis":  # pooled within-class covariance (robust with few samples)
            centred = x - self.means[np.searchsorted(self.classes, y)]
            cov = np.atleast_2d(np.cov(centred, rowvar=False))
            self.inverse_cov = np.linalg.pinv(cov + 1e-9 * np.trace(cov) * np.eye(len(cov)))
        return self

    def distances(self, x: np.ndarray) -> np.ndarray:
        if self.metric == "euclidean":
            return np.sqrt(((x[:, None, :] - self.means[None]) ** 2).sum(axis=2))
        if self.metric == "manhattan":
            return np.abs(x[:, None, :] - self.means[None]).sum(axis=2)
        if self.metric == "cosine":
            num = x @ self.means.T
            den = np.linalg.norm(x, axis=1)[:, None] * np.linalg.norm(self.means, axis=1)[None]
            return 1 - np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        d = x[:, None, :] - self.means[None]
        return np.sqrt(np.maximum(np.einsum("nkp,pq,nkq->nk", d, self.inverse_cov, d), 0.0))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes[self.distances(x).argmin(axis=1)]


@dataclass(frozen=True)
class Classifier:
    """An untrained or trained classifier: its kind and options, then the fitted model."""

    kind: str
    params: dict[str, Any]
    mode: str = "CLASSIFICATION"
    inputs: tuple[str, ...] = ()
    class_property: str | None = None
    model: Any = field(default=None, compare=False)
    train_x: np.ndarray | None = field(default=None, compare=False)
    train_y: np.ndarray | None = field(default=None, compare=False)

    def to_info(self) -> dict[str, Any]:
        """``getInfo()``: the type and options."""
        return {"type": "Classifier", "classifier": self.kind, **self.params}

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(getattr(self.model, "classes", getattr(self.model, "classes_", [])))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs of ``x`` (n, inputs) in the classifier's output mode."""
        if self.model is None:
            raise EngineError("Classifier is not trained: call train(features, classProperty) first.")
        if self.mode == "CLASSIFICATION":
            if isinstance(self.model, _Forest):
                return self.classes[self.model.votes(x).argmax(axis=1)]
            return np.asarray(self.model.predict(x))
        if self.mode in ("PROBABILITY", "MULTIPROBABILITY"):
            probs = self._probabilities(x)
            if self.mode == "MULTIPROBABILITY":
                return probs
            if probs.shape[1] != 2:
                raise NotSupportedError(
                    f"PROBABILITY output of a {probs.shape[1]}-class classifier: the local engine gives "
                    "it for two classes (the probability of the larger class value); use "
                    "MULTIPROBABILITY with FeatureCollection.classify for more."
                )
            return probs[:, 1]
        raise NotSupportedError(f"Output mode {self.mode} is not supported by the local engine yet.")

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        if isinstance(self.model, _Forest):
            return self.model.votes(x)
        if hasattr(self.model, "predict_proba") and self.kind == "smileCart":
            return np.asarray(self.model.predict_proba(x))
        raise NotSupportedError(f"Probability outputs of {self.kind} are not supported by the local engine.")


def _classifier(value: Any) -> Classifier:
    if not isinstance(value, Classifier):
        raise EngineError(f"Expected a Classifier, got {type(value).__name__}.")
    return value


@algorithm("Classifier.smileRandomForest")
def smile_random_forest(
    numberOfTrees: int,
    variablesPerSplit: int | None = None,
    minLeafPopulation: int = 1,
    bagFraction: float = 0.5,
    maxNodes: int | None = None,
    seed: int = 0,
) -> Classifier:
    """A random forest (Smile's options)."""
    if int(numberOfTrees) < 1 or not 0 < float(bagFraction) <= 1:
        raise EngineError(
            "Classifier.smileRandomForest: numberOfTrees must be >= 1 and bagFraction in (0, 1]."
        )
    return Classifier("smileRandomForest", {
        "numberOfTrees": int(numberOfTrees), "variablesPerSplit": variablesPerSplit,
        "minLeafPopulation": int(minLeafPopulation), "bagFraction": float(bagFraction), "maxNodes": maxNodes,
        "seed": int(seed),
    })  # fmt: skip


@algorithm("Classifier.smileCart")
def smile_cart(maxNodes: int | None = None, minLeafPopulation: int = 1) -> Classifier:
    """A CART decision tree."""
    return Classifier("smileCart", {"maxNodes": maxNodes, "minLeafPopulation": int(minLeafPopulation)})


_KERNELS = {"LINEAR": "linear", "RBF": "rbf", "POLY": "poly", "SIGMOID": "sigmoid"}


@algorithm("Classifier.libsvm")
def libsvm(decisionProcedure: str = "Voting", svmType: str = "C_SVC", kernelType: str = "LINEAR",
           shrinking: bool = True, degree: int | None = None, gamma: float | None = None,
           coef0: float | None = None, cost: float | None = None, nu: float | None = None,
           terminationEpsilon: float | None = None, lossEpsilon: float | None = None,
           oneClass: int | None = None) -> Classifier:  # fmt: skip
    """A support vector machine (C-SVC or nu-SVC, one-vs-one voting)."""
    if svmType not in ("C_SVC", "NU_SVC") or decisionProcedure != "Voting":
        raise NotSupportedError(
            f"Classifier.libsvm svmType={svmType!r} decisionProcedure={decisionProcedure!r}: "
            "the local engine supports C_SVC and NU_SVC with Voting."
        )
    if kernelType not in _KERNELS:
        raise EngineError(
            f"Classifier.libsvm: kernelType must be one of {sorted(_KERNELS)}, got {kernelType!r}."
        )
    return Classifier("libsvm", {
        "svmType": svmType, "kernelType": kernelType, "shrinking": bool(shrinking), "degree": degree,
        "gamma": gamma, "coef0": coef0, "cost": cost, "nu": nu, "terminationEpsilon": terminationEpsilon,
    })  # fmt: skip


@algorithm("Classifier.minimumDistance")
def minimum_distance(metric: str = "euclidean", kNearest: int = 1) -> Classifier:
    """Nearest class mean."""
    if int(kNearest) != 1:
        raise NotSupportedError("Classifier.minimumDistance: the local engine supports kNearest=1 only.")
    _MinimumDistance(metric)  # checks the metric now, as Earth Engine does
    return Classifier("minimumDistance", {"metric": metric})


def _model(c: Classifier, n_inputs: int) -> Any:
    p = c.params
    if c.kind == "smileRandomForest":
        return _Forest(trees=p["numberOfTrees"], mtry=p["variablesPerSplit"], min_leaf=p["minLeafPopulation"],
                       bag=p["bagFraction"], max_nodes=p["maxNodes"], seed=p["seed"])  # fmt: skip
    if c.kind == "smileCart":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(
            min_samples_leaf=p["minLeafPopulation"], max_leaf_nodes=p["maxNodes"], random_state=0
        )
    if c.kind == "libsvm":
        from sklearn.svm import SVC, NuSVC

        options = {
            "kernel": _KERNELS[p["kernelType"]], "degree": 3 if p["degree"] is None else int(p["degree"]),
            "gamma": 1.0 / n_inputs if p["gamma"] is None else float(p["gamma"]),  # libsvm's default
            "coef0": 0.0 if p["coef0"] is None else float(p["coef0"]), "shrinking": p["shrinking"],
            "tol": 1e-3 if p["terminationEpsilon"] is None else float(p["terminationEpsilon"]),
        }  # fmt: skip
        if p["svmType"] == "NU_SVC":
            return NuSVC(nu=0.5 if p["nu"] is None else float(p["nu"]), **options)
        return SVC(C=1.0 if p["cost"] is None else float(p["cost"]), **options)
    return _MinimumDistance(p["metric"])


@algorithm("Classifier.train")
def classifier_train(classifier: Any, features: FeatureCollection, classProperty: str,
                     inputProperties: list[str] | None = None, subsampling: float = 1.0,
                     subsamplingSeed: int = 0) -> Classifier:  # fmt: skip
    """Train on the features' ``inputProperties`` (default: every property but the class)."""
    c = _classifier(classifier)
    rows = list(features.elements)
    if not rows:
        raise EngineError("Classifier.train: the training collection is empty (no features to learn from).")
    if inputProperties is None:
        names = [k for k in rows[0].properties if k != classProperty and not k.startswith("system:")]
    else:
        names = list(inputProperties)
    inputs = [str(k) for k in names]
    if not inputs:
        raise EngineError(
            "Classifier.train: no input properties (the features only hold the class property)."
        )
    rows = subsample(rows, subsampling, subsamplingSeed)
    y = feature_matrix(rows, [classProperty], "Classifier.train")[:, 0].astype(np.int64)
    x = feature_matrix(rows, inputs, "Classifier.train")
    model = _model(c, len(inputs)).fit(x, y)
    return replace(c, inputs=tuple(inputs), class_property=classProperty, model=model, train_x=x, train_y=y)


@algorithm("Classifier.setOutputMode")
def classifier_set_output_mode(classifier: Any, mode: str) -> Classifier:
    """Choose what ``classify`` outputs."""
    if mode not in MODES:
        raise EngineError(f"Classifier.setOutputMode: mode must be one of {', '.join(MODES)}, got {mode!r}.")
    return replace(_classifier(classifier), mode=mode)


@algorithm("Classifier.mode")
def classifier_mode(classifier: Any) -> str:
    """The output mode."""
    return _classifier(classifier).mode


@algorithm("Classifier.explain")
def classifier_explain(classifier: Any) -> dict[str, Any]:
    """What the trained classifier learned: importance per input, and for forests the number of
    trees and the out-of-bag error estimate."""
    c = _classifier(classifier)
    if c.model is None:
        raise EngineError("Classifier.explain: the classifier is not trained.")
    out: dict[str, Any] = {"classifier": c.kind}
    if isinstance(c.model, _Forest):
        out.update(numberOfTrees=len(c.model.estimators), outOfBagErrorEstimate=c.model.oob_error)
        out["importance"] = dict(zip(c.inputs, (float(v) for v in c.model.importance), strict=True))
    elif c.kind == "smileCart":
        tree = c.model.tree_
        imp = tree.compute_feature_importances(normalize=False) * tree.n_node_samples[0]
        out["importance"] = dict(zip(c.inputs, (float(v) for v in imp), strict=True))
        out["numberOfNodes"] = int(tree.node_count)
    return out


@algorithm("Classifier.confusionMatrix")
def classifier_confusion_matrix(classifier: Any) -> ConfusionMatrix:
    """The resubstitution error matrix (the training data classified by the classifier)."""
    c = replace(_classifier(classifier), mode="CLASSIFICATION")
    if c.train_x is None or c.train_y is None:
        raise EngineError("Classifier.confusionMatrix: the classifier is not trained.")
    predicted = c.predict(c.train_x).astype(np.int64)
    top = int(max(c.train_y.max(), predicted.max()))
    counts = np.zeros((top + 1, top + 1), dtype=np.int64)
    np.add.at(counts, (c.train_y, predicted), 1)
    return ConfusionMatrix(counts, tuple(range(top + 1)))


@algorithm("Image.classify")
def image_classify(image: Image, classifier: Any, outputName: str = "classification") -> Image:
    """Classify every pixel from the bands named like the classifier's inputs (masked where any is)."""
    c = _classifier(classifier)
    if c.model is None:
        raise EngineError("Image.classify: the classifier is not trained.")
    by_name = {b.name: b for b in image.bands}
    missing = [k for k in c.inputs if k not in by_name]
    if missing:
        raise EngineError(
            f"Image.classify: the image has no band '{missing[0]}' "
            f"(the classifier was trained on {list(c.inputs)})."
        )
    multi = c.mode == "MULTIPROBABILITY"  # a 1-D array per pixel: one probability per class
    dtype: np.dtype[Any] = np.dtype(np.int32) if c.mode == "CLASSIFICATION" else np.dtype(np.float32)
    if multi:
        dtype = np.dtype(np.float64)
    classes = len(np.unique(c.train_y)) if multi and c.train_y is not None else 0

    def fn(*pixels: Pixels) -> Pixels:
        mask = np.logical_and.reduce([np.asarray(m, bool) for _, m in pixels])
        out = np.zeros(mask.shape + ((classes,) if multi else ()), dtype=dtype)
        if mask.any():
            x = np.stack([np.asarray(v, np.float64)[mask] for v, _ in pixels], axis=1)
            out[mask] = c.predict(x).astype(dtype)
        return out, mask

    first = by_name[c.inputs[0]]
    node = FuncNode(fn, [by_name[k].node for k in c.inputs])
    return Image(
        (Band(outputName, dtype, node, first.projection, first.dimensions, None, int(multi)),),
        dict(image.properties),
    )


@algorithm("FeatureCollection.classify")
def features_classify(
    features: FeatureCollection, classifier: Any, outputName: str = "classification"
) -> FeatureCollection:
    """Add the classifier's output to each feature as ``outputName``."""
    c = _classifier(classifier)
    rows = list(features.elements)
    if not rows:
        return features
    out = c.predict(feature_matrix(rows, list(c.inputs), "FeatureCollection.classify"))
    as_value = (lambda v: [float(p) for p in v]) if c.mode == "MULTIPROBABILITY" else (
        (lambda v: int(v)) if c.mode == "CLASSIFICATION" else (lambda v: float(v)))  # fmt: skip
    return features.with_elements(
        [f.with_properties({**f.properties, outputName: as_value(v)}) for f, v in zip(rows, out, strict=True)]
    )
