"""The local engine's classifiers, sampling and confusion matrices, each against a scikit-learn
or numpy reference, with Earth Engine's result shapes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import ee
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, precision_score, recall_score
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

import gee_fusion
from gee_fusion.errors import EngineError, NotSupportedError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.catalog import CATALOG, register_numpy_image

CRS = "EPSG:32631"
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)
H, W = 40, 50
INPUTS = ["f0", "f1", "f2", "f3"]


class Data:
    """Four features, classes 1..3 driven by f0 and f1 (f2, f3 are noise)."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 4))
        score = self.x[:, 0] + 0.5 * self.x[:, 1]
        self.y = np.digitize(score, [-0.5, 0.5]) + 1  # 1, 2, 3

    def features(self) -> ee.FeatureCollection:
        return ee.FeatureCollection([
            ee.Feature(None, {**{k: float(v) for k, v in zip(INPUTS, row, strict=True)}, "class": int(c)})
            for row, c in zip(self.x, self.y, strict=True)
        ])  # fmt: skip


@pytest.fixture(scope="module")
def image_asset(local_engine: gee_fusion.Connection) -> Iterator[dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    bands = {k: rng.normal(size=(H, W)).astype(np.float32) for k in INPUTS}
    bands["cls"] = rng.integers(1, 4, size=(H, W)).astype(np.uint8)
    bands["cls"][:5] = 3  # class 3 is the most frequent
    mask = np.ones((H, W), bool)
    mask[10:14, 20:30] = False
    register_numpy_image("test/classify_src", bands, crs=CRS, transform=TRANSFORM, masks={"f0": mask})
    yield {**bands, "mask": mask}
    CATALOG.unregister("test/classify_src")


def classify(features: ee.FeatureCollection, classifier: ee.Classifier) -> np.ndarray:
    return np.array(features.classify(classifier).aggregate_array("classification").getInfo())


# -- confusion matrices ------------------------------------------------------------------------------


def test_error_matrix_and_its_measures_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    actual = rng.integers(1, 5, 300)
    predicted = np.where(rng.random(300) < 0.7, actual, rng.integers(1, 5, 300))
    fc = ee.FeatureCollection(
        [ee.Feature(None, {"a": int(a), "p": int(p)}) for a, p in zip(actual, predicted, strict=True)]
    )
    cm = fc.errorMatrix("a", "p")
    full = confusion_matrix(actual, predicted, labels=[0, 1, 2, 3, 4])
    assert cm.getInfo() == full.tolist()  # default order 0..max: an empty row and column 0
    ordered = fc.errorMatrix("a", "p", [1, 2, 3, 4])
    labels = [1, 2, 3, 4]
    assert ordered.getInfo() == confusion_matrix(actual, predicted, labels=labels).tolist()
    assert ordered.order().getInfo() == labels
    assert ordered.accuracy().getInfo() == pytest.approx((actual == predicted).mean())
    assert ordered.kappa().getInfo() == pytest.approx(cohen_kappa_score(actual, predicted))
    producers = np.array(ordered.producersAccuracy().getInfo())
    consumers = np.array(ordered.consumersAccuracy().getInfo())
    assert producers.shape == (4, 1) and consumers.shape == (1, 4)  # Earth Engine's shapes
    np.testing.assert_allclose(producers[:, 0], recall_score(actual, predicted, labels=labels, average=None))
    np.testing.assert_allclose(consumers[0], precision_score(actual, predicted, labels=labels, average=None))
    np.testing.assert_allclose(
        ordered.fscore().getInfo(), f1_score(actual, predicted, labels=labels, average=None)
    )
    assert np.array(full.tolist())[0].sum() == 0 and cm.producersAccuracy().getInfo()[0] == [0]
    direct = ee.ConfusionMatrix([[5, 1], [2, 7]])
    assert direct.accuracy().getInfo() == pytest.approx(12 / 15)
    assert direct.array().getInfo() == [[5, 1], [2, 7]]


# -- sampling --------------------------------------------------------------------------------------


def test_sample_stratified_sample_and_sample_regions_read_the_pixels(
    image_asset: dict[str, np.ndarray],
) -> None:
    img = ee.Image("test/classify_src")
    every = img.sample(scale=10, geometries=True).getInfo()["features"]
    valid = image_asset["mask"]
    assert len(every) == int(valid.sum())  # dropNulls: masked f0 pixels are gone
    for f in every[:50]:
        r, c = divmod(int(f["id"]), W)
        assert f["properties"]["f2"] == pytest.approx(float(image_asset["f2"][r, c]))
        x, y = f["geometry"]["coordinates"]
        assert (x, y) == (500000.0 + 10 * c + 5, 5000000.0 - 10 * r - 5)
    some = img.sample(scale=10, numPixels=100, seed=3).getInfo()["features"]
    assert 0 < len(some) <= 100 and len({f["id"] for f in some}) == len(some)
    assert (
        img.sample(scale=10, numPixels=100, seed=3).getInfo()
        == img.sample(scale=10, numPixels=100, seed=3).getInfo()
    )
    assert len(img.sample(scale=10, dropNulls=False).getInfo()["features"]) == H * W

    strat = img.stratifiedSample(numPoints=30, classBand="cls", scale=10, seed=1)
    hist = strat.aggregate_histogram("cls").getInfo()
    assert hist == {"1": 30, "2": 30, "3": 30}
    chosen = img.stratifiedSample(numPoints=5, classBand="cls", scale=10, classValues=[3], classPoints=[50])
    assert chosen.aggregate_histogram("cls").getInfo() == {"1": 5, "2": 5, "3": 50}
    for f in strat.getInfo()["features"]:
        r, c = divmod(int(f["id"]), W)
        assert f["properties"]["cls"] == int(image_asset["cls"][r, c]) and valid[r, c]

    box = ee.Geometry.Rectangle([500000, 4999900, 500050, 5000000], CRS, False)  # 5 x 10 px
    point = ee.Geometry.Point([500105, 4999705], CRS)  # pixel (29, 10)
    regions = ee.FeatureCollection(
        [ee.Feature(box, {"zone": "a", "n": 1}), ee.Feature(point, {"zone": "b", "n": 2})]
    )
    got = img.sampleRegions(regions, properties=["zone"], scale=10).getInfo()["features"]
    assert len(got) == 50 + 1
    assert {f["properties"]["zone"] for f in got} == {"a", "b"} and "n" not in got[0]["properties"]
    last = got[-1]["properties"]
    assert last["f1"] == pytest.approx(float(image_asset["f1"][29, 10]))


def test_random_column_is_seeded_per_element_and_uniform() -> None:
    fc = ee.FeatureCollection([ee.Feature(None, {"i": i}) for i in range(2000)])
    values = np.array(fc.randomColumn("r", 4).aggregate_array("r").getInfo())
    assert values.min() >= 0 and values.max() < 1 and abs(values.mean() - 0.5) < 0.02
    assert np.array_equal(values, fc.randomColumn("r", 4).aggregate_array("r").getInfo())
    assert not np.array_equal(values, fc.randomColumn("r", 5).aggregate_array("r").getInfo())
    head = fc.limit(10).randomColumn("r", 4).aggregate_array("r").getInfo()
    np.testing.assert_array_equal(head, values[:10])  # a function of the element, not its position
    normal = np.array(fc.randomColumn("z", 1, "normal").aggregate_array("z").getInfo())
    assert abs(normal.mean()) < 0.06 and abs(normal.std() - 1) < 0.06


# -- classifiers -------------------------------------------------------------------------------------


def test_random_forest_follows_smile_and_is_deterministic() -> None:
    train, test = Data(400, 1), Data(300, 2)
    rf = ee.Classifier.smileRandomForest(numberOfTrees=40, seed=7).train(train.features(), "class", INPUTS)
    predicted = classify(test.features(), rf)
    accuracy = (predicted == test.y).mean()
    assert accuracy > 0.8
    assert np.array_equal(predicted, classify(test.features(), rf))  # same seed, same forest
    other = ee.Classifier.smileRandomForest(numberOfTrees=40, seed=8).train(train.features(), "class", INPUTS)
    votes = test.features().classify(rf.setOutputMode("MULTIPROBABILITY")).aggregate_array("classification")
    other_votes = (
        test.features().classify(other.setOutputMode("MULTIPROBABILITY")).aggregate_array("classification")
    )
    assert votes.getInfo() != other_votes.getInfo()  # another seed, another forest
    from sklearn.ensemble import RandomForestClassifier

    ref = RandomForestClassifier(n_estimators=200, max_features=2, oob_score=True, random_state=0).fit(
        train.x, train.y
    )
    assert abs(accuracy - ref.score(test.x, test.y)) < 0.06
    explained = rf.explain().getInfo()
    assert explained["numberOfTrees"] == 40
    assert abs(explained["outOfBagErrorEstimate"] - (1 - ref.oob_score_)) < 0.08
    importance = explained["importance"]
    assert set(importance) == set(INPUTS)
    assert min(importance["f0"], importance["f1"]) > max(importance["f2"], importance["f3"])
    resub = rf.confusionMatrix()
    train_pred = classify(train.features(), rf)
    assert resub.getInfo() == confusion_matrix(train.y, train_pred, labels=[0, 1, 2, 3]).tolist()


def test_binary_probability_is_the_share_of_votes() -> None:
    data = Data(300, 3)
    fc = ee.FeatureCollection([
        ee.Feature(None, {**{k: float(v) for k, v in zip(INPUTS, row, strict=True)}, "class": int(c > 2)})
        for row, c in zip(data.x, data.y, strict=True)
    ])  # fmt: skip
    rf = ee.Classifier.smileRandomForest(25).train(fc, "class", INPUTS)
    prob = classify(fc, rf.setOutputMode("PROBABILITY"))
    assert ((prob >= 0) & (prob <= 1)).all() and np.allclose(prob * 25, np.round(prob * 25))
    cls = classify(fc, rf)
    assert np.array_equal(cls[prob != 0.5], (prob[prob != 0.5] > 0.5).astype(int))
    multi = fc.classify(rf.setOutputMode("MULTIPROBABILITY")).aggregate_array("classification").getInfo()
    np.testing.assert_allclose(np.array(multi)[:, 1], prob)
    assert rf.setOutputMode("PROBABILITY").mode().getInfo() == "PROBABILITY"


def test_cart_svm_and_minimum_distance_equal_their_references() -> None:
    train, test = Data(300, 4), Data(200, 5)
    cart = ee.Classifier.smileCart(maxNodes=12, minLeafPopulation=3).train(train.features(), "class", INPUTS)
    ref = DecisionTreeClassifier(max_leaf_nodes=12, min_samples_leaf=3, random_state=0).fit(train.x, train.y)
    np.testing.assert_array_equal(classify(test.features(), cart), ref.predict(test.x))
    svm = ee.Classifier.libsvm(kernelType="RBF", gamma=0.5, cost=10).train(train.features(), "class", INPUTS)
    ref_svm = SVC(kernel="rbf", gamma=0.5, C=10).fit(train.x, train.y)
    np.testing.assert_array_equal(classify(test.features(), svm), ref_svm.predict(test.x))
    linear = ee.Classifier.libsvm().train(train.features(), "class", INPUTS)  # gamma 1/inputs, cost 1
    np.testing.assert_array_equal(
        classify(test.features(), linear), SVC(kernel="linear", C=1.0).fit(train.x, train.y).predict(test.x)
    )
    md = ee.Classifier.minimumDistance().train(train.features(), "class", INPUTS)
    means = np.stack([train.x[train.y == c].mean(axis=0) for c in (1, 2, 3)])
    nearest = np.argmin(((test.x[:, None] - means[None]) ** 2).sum(axis=2), axis=1) + 1
    np.testing.assert_array_equal(classify(test.features(), md), nearest)


def test_image_classify_equals_feature_classify_at_the_same_pixels(
    image_asset: dict[str, np.ndarray],
) -> None:
    img = ee.Image("test/classify_src")
    samples = img.stratifiedSample(numPoints=40, classBand="cls", scale=10, seed=2)
    rf = ee.Classifier.smileRandomForest(15).train(samples, "cls", INPUTS)
    grid = PixelGrid(CRS, TRANSFORM, W, H).to_ee()
    out = ee.data.computePixels({"expression": img.classify(rf, "lc"), "grid": grid})
    mask = ee.data.computePixels({"expression": img.classify(rf, "lc").mask(), "grid": grid})
    assert out.dtype.names == ("lc",) and out["lc"].dtype == np.int32
    np.testing.assert_array_equal(mask["lc"] > 0, image_asset["mask"])  # masked where an input is
    points = img.sample(scale=10, numPixels=60, seed=9).classify(rf).getInfo()["features"]
    for f in points:
        r, c = divmod(int(f["id"]), W)
        assert out["lc"][r, c] == f["properties"]["classification"]


def test_bad_training_and_classification_are_typed() -> None:
    data = Data(50, 6)
    with pytest.raises(EngineError, match="training collection is empty"):
        ee.Classifier.smileRandomForest(5).train(
            ee.FeatureCollection([]), "class", INPUTS
        ).explain().getInfo()
    with pytest.raises(EngineError, match="property 'f9' of feature"):
        ee.Classifier.smileCart().train(data.features(), "class", ["f0", "f9"]).explain().getInfo()
    rf = ee.Classifier.smileRandomForest(5).train(data.features(), "class", INPUTS)
    with pytest.raises(EngineError, match="the image has no band 'f0'"):
        ee.Image.constant(1).rename("b").classify(rf).getInfo()
    probs = ee.Image.constant([1, 2, 3, 4]).rename(INPUTS).classify(rf.setOutputMode("MULTIPROBABILITY"))
    assert probs.getInfo()["bands"][0]["data_type"]["dimensions"] == 1  # an array band, as in Earth Engine
    with pytest.raises(EngineError, match="mode must be one of"):
        rf.setOutputMode("VOTES").mode().getInfo()


# -- the random forest's options, read from the fitted trees -----------------------------------------


def fitted(classifier: ee.Classifier) -> Any:
    """The local engine's trained classifier behind ``classifier`` (read only)."""
    from gee_fusion.local.graph import evaluate
    from gee_fusion.local.server import encode

    return evaluate(encode(classifier))


def forest_trees(classifier: ee.Classifier) -> list[Any]:
    """The scikit-learn trees of a trained smileRandomForest."""
    trees = fitted(classifier).model.estimators
    assert trees
    return list(trees)


def leaf_sizes(tree: Any) -> np.ndarray:
    """Training rows in each leaf of a fitted scikit-learn tree."""
    t = tree.tree_
    return np.asarray(t.n_node_samples[t.children_left == -1])


def test_random_forest_max_nodes_and_min_leaf_population_bound_every_tree() -> None:
    data = Data(300, 11)
    free = forest_trees(ee.Classifier.smileRandomForest(10, seed=1).train(data.features(), "class", INPUTS))
    assert max(t.get_n_leaves() for t in free) > 3 and min(leaf_sizes(t).min() for t in free) == 1
    small = ee.Classifier.smileRandomForest(10, maxNodes=3, seed=1).train(data.features(), "class", INPUTS)
    assert all(t.get_n_leaves() <= 3 for t in forest_trees(small))
    for k in (5, 12):
        rf = ee.Classifier.smileRandomForest(10, minLeafPopulation=k, seed=1)
        sizes = [leaf_sizes(t) for t in forest_trees(rf.train(data.features(), "class", INPUTS))]
        assert min(s.min() for s in sizes) >= k
        assert min(s.min() for s in sizes) < 2 * k + 1  # the bound binds: leaves are not all large


def test_random_forest_bag_fraction_is_the_share_of_rows_each_tree_sees() -> None:
    data = Data(200, 12)
    for bag in (0.3, 0.5, 0.8):
        rf = ee.Classifier.smileRandomForest(8, bagFraction=bag, seed=2).train(
            data.features(), "class", INPUTS
        )
        for tree in forest_trees(rf):
            in_bag = int(tree.tree_.n_node_samples[0])  # rows at the root: drawn without replacement
            assert in_bag == round(bag * 200)
            assert 1 - in_bag / 200 == pytest.approx(1 - bag)  # the out-of-bag share
    default = ee.Classifier.smileRandomForest(4).train(data.features(), "class", INPUTS)
    assert {int(t.tree_.n_node_samples[0]) for t in forest_trees(default)} == {100}  # bagFraction 0.5


def test_random_forest_variables_per_split_defaults_to_the_floor_of_the_root() -> None:
    rng = np.random.default_rng(13)
    names = [f"v{i}" for i in range(8)]  # sqrt(8) = 2.83: floor 2, round and ceil 3
    x = rng.normal(size=(120, 8))
    fc = ee.FeatureCollection([
        ee.Feature(None, {**{k: float(v) for k, v in zip(names, row, strict=True)}, "class": int(row[0] > 0)})
        for row in x
    ])  # fmt: skip
    default = ee.Classifier.smileRandomForest(5).train(fc, "class", names)
    assert {t.max_features_ for t in forest_trees(default)} == {math.floor(math.sqrt(8))} == {2}
    chosen = ee.Classifier.smileRandomForest(5, variablesPerSplit=5).train(fc, "class", names)
    assert {t.max_features_ for t in forest_trees(chosen)} == {5}


def test_train_subsampling_keeps_a_seeded_share_of_the_features() -> None:
    data = Data(250, 14)

    def resubstitution(seed: int) -> np.ndarray:
        rf = ee.Classifier.smileRandomForest(10).train(
            data.features(), "class", INPUTS, subsampling=0.3, subsamplingSeed=seed
        )
        return np.array(rf.confusionMatrix().getInfo())

    first = resubstitution(1)
    assert first.sum() == round(0.3 * 250) == 75
    assert np.array_equal(first, resubstitution(1))  # seeded
    other = resubstitution(2)
    assert other.sum() == 75 and not np.array_equal(first, other)  # another seed, other features
    full = ee.Classifier.smileRandomForest(10).train(data.features(), "class", INPUTS)
    assert np.array(full.confusionMatrix().getInfo()).sum() == 250


# -- documented divergences --------------------------------------------------------------------------


def test_probability_of_a_multi_class_classifier_is_not_supported() -> None:
    data = Data(120, 15)
    assert len(np.unique(data.y)) == 3
    rf = ee.Classifier.smileRandomForest(5).train(data.features(), "class", INPUTS)
    with pytest.raises(NotSupportedError, match="PROBABILITY output of a 3-class classifier"):
        data.features().classify(rf.setOutputMode("PROBABILITY")).getInfo()
    multi = np.array(classify(data.features(), rf.setOutputMode("MULTIPROBABILITY")))
    assert multi.shape == (120, 3)  # what to use instead
    np.testing.assert_allclose(multi.sum(axis=1), 1.0)


@pytest.mark.parametrize("metric", ["manhattan", "cosine", "mahalanobis"])
def test_minimum_distance_metrics_equal_their_references(metric: str) -> None:
    from scipy.spatial.distance import cdist
    from sklearn.covariance import EmpiricalCovariance

    train, test = Data(300, 16), Data(200, 17)
    train.x[:, 2] *= 4.0  # unequal spreads, correlated inputs: the metrics disagree
    test.x[:, 2] *= 4.0
    train.x[:, 3] += 0.8 * train.x[:, 0]
    test.x[:, 3] += 0.8 * test.x[:, 0]
    classes = np.array([1, 2, 3])
    means = np.stack([train.x[train.y == c].mean(axis=0) for c in classes])
    if metric == "mahalanobis":  # the pooled within-class covariance (docs/local_engine.md)
        residuals = train.x - means[np.searchsorted(classes, train.y)]
        precision = EmpiricalCovariance(assume_centered=True).fit(residuals).precision_
        distances = cdist(test.x, means, "mahalanobis", VI=precision)
    else:
        distances = cdist(test.x, means, {"manhattan": "cityblock", "cosine": "cosine"}[metric])
    expected = classes[distances.argmin(axis=1)]
    md = ee.Classifier.minimumDistance(metric).train(train.features(), "class", INPUTS)
    np.testing.assert_array_equal(classify(test.features(), md), expected)
    euclidean = classes[cdist(test.x, means).argmin(axis=1)]
    assert (expected != euclidean).any()  # the metric matters on these data
