"""ConfusionMatrix metrics against scikit-learn, hierarchical aggregation, EE errorMatrix, JSON and plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from gee_fusion.classes import (
    GROUPS_6,
    GROUPS_10,
    MULTISENGE_14,
    NAMES_6,
    NAMES_10,
    group_index_map,
    nested_groups,
    regroup,
)
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.metrics.confusion import (
    SUMMARY_METRICS,
    ConfusionMatrix,
)
from gee_fusion.metrics.ee_matrix import from_ee_error_matrix
from gee_fusion.report.confusion_plot import plot_confusion, plot_per_class

K = 7
NAMES = [f"class {i}" for i in range(K)]
ONLY_PREDICTED, ONLY_REFERENCE, ABSENT = 5, 6, 3


def _labels(seed: int, shape: tuple[int, ...] = (6, 40, 40)) -> tuple[np.ndarray, np.ndarray]:
    """Seeded reference/prediction with a class only predicted, one only in the reference, one absent
    from both, and ~10% ignored reference pixels (whose prediction is out of range on purpose)."""
    rng = np.random.default_rng(seed)
    reference_classes = np.array([0, 1, 2, 4, ONLY_REFERENCE])
    predicted_classes = np.array([0, 1, 2, 4, ONLY_PREDICTED])
    t = rng.choice(reference_classes, size=shape, p=[0.4, 0.25, 0.15, 0.15, 0.05]).astype(np.uint8)
    p = np.where(rng.random(shape) < 0.7, t, rng.choice(predicted_classes, size=shape)).astype(np.uint8)
    p[p == ONLY_REFERENCE] = 0
    ignored = rng.random(shape) < 0.1
    t[ignored] = 255
    p[ignored] = 200  # nodata in the prediction where there is no label: must not be checked
    return t, p


def _valid(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = t != 255
    return t[keep].astype(np.int64), p[keep].astype(np.int64)


@pytest.fixture(params=[0, 1, 2])
def case(request: pytest.FixtureRequest) -> tuple[ConfusionMatrix, np.ndarray, np.ndarray]:
    t, p = _labels(request.param)
    cm = ConfusionMatrix(NAMES).update(t, p)
    return (cm, *_valid(t, p))


def test_case_has_the_traps() -> None:
    t, p = _valid(*_labels(0))
    assert ONLY_PREDICTED not in t and ONLY_PREDICTED in p
    assert ONLY_REFERENCE in t and ONLY_REFERENCE not in p
    assert ABSENT not in t and ABSENT not in p


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_matrix_and_scalars_match_sklearn(case: tuple[ConfusionMatrix, np.ndarray, np.ndarray]) -> None:
    cm, t, p = case
    labels = list(range(K))
    np.testing.assert_array_equal(cm.matrix, skm.confusion_matrix(t, p, labels=labels))
    assert cm.total == t.size
    assert cm.overall_accuracy == pytest.approx(skm.accuracy_score(t, p), abs=1e-12)
    assert cm.kappa == pytest.approx(skm.cohen_kappa_score(t, p, labels=labels), abs=1e-12)
    assert cm.weighted_f1 == pytest.approx(
        skm.f1_score(t, p, labels=labels, average="weighted", zero_division=0), abs=1e-12
    )
    assert cm.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(t, p), abs=1e-12)


def test_per_class_match_sklearn(case: tuple[ConfusionMatrix, np.ndarray, np.ndarray]) -> None:
    cm, t, p = case
    labels = list(range(K))
    precision, recall, f1, support = skm.precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    np.testing.assert_allclose(cm.precision, precision, atol=1e-12)
    np.testing.assert_allclose(cm.recall, recall, atol=1e-12)
    np.testing.assert_allclose(cm.f1, f1, atol=1e-12)
    np.testing.assert_array_equal(cm.support, support)
    iou = skm.jaccard_score(t, p, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose(cm.iou, iou, atol=1e-12)
    assert cm.precision[ONLY_REFERENCE] == 0.0  # never predicted: zero_division=0
    assert cm.recall[ONLY_PREDICTED] == 0.0  # no reference pixel
    assert cm.present.tolist() == [i != ABSENT for i in range(K)]
    assert cm.fw_iou == pytest.approx(float(np.average(iou, weights=support)), abs=1e-12)


def test_macro_averages_run_over_present_classes(
    case: tuple[ConfusionMatrix, np.ndarray, np.ndarray],
) -> None:
    cm, t, p = case
    # scikit-learn's default label set is the union of reference and prediction = classes present
    assert cm.macro_f1 == pytest.approx(skm.f1_score(t, p, average="macro", zero_division=0), abs=1e-12)
    assert cm.macro_precision == pytest.approx(
        skm.precision_score(t, p, average="macro", zero_division=0), abs=1e-12
    )
    assert cm.macro_recall == pytest.approx(
        skm.recall_score(t, p, average="macro", zero_division=0), abs=1e-12
    )
    assert cm.miou == pytest.approx(skm.jaccard_score(t, p, average="macro", zero_division=0), abs=1e-12)
    # the trap: forcing every label in would count the absent class as 0 and lower the scores
    all_labels = skm.jaccard_score(t, p, labels=list(range(K)), average="macro", zero_division=0)
    assert all_labels == pytest.approx(cm.miou * (K - 1) / K, abs=1e-12)
    micro = skm.jaccard_score(t, p, average="micro")
    assert abs(micro - cm.miou) > 1e-3  # micro Jaccard is not mIoU


def test_miou_hand_computed_absent_class_excluded() -> None:
    cm = ConfusionMatrix(["a", "b", "never"]).update(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    # IoU a = 1 / (2 + 1 - 1) = 1/2; IoU b = 2 / (2 + 3 - 2) = 2/3; "never" is excluded
    assert cm.iou.tolist() == pytest.approx([0.5, 2 / 3, 0.0])
    assert cm.miou == pytest.approx(7 / 12)
    assert cm.macro_f1 == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert cm.fw_iou == pytest.approx((2 * 0.5 + 2 * 2 / 3) / 4)
    two = ConfusionMatrix(["a", "b"]).update(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert two.miou == pytest.approx(cm.miou)  # adding a class absent from both changes nothing


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_kappa_single_class_defined() -> None:
    cm = ConfusionMatrix(["a", "b"]).update(np.zeros(5, np.int64), np.zeros(5, np.int64))
    assert cm.kappa == skm.cohen_kappa_score([0] * 5, [0] * 5, replace_undefined_by=0.0) == 0.0
    assert cm.overall_accuracy == 1.0


def test_batches_accumulate_like_one_shot() -> None:
    t, p = _labels(3)
    one = ConfusionMatrix(NAMES).update(t, p)
    batched = ConfusionMatrix(NAMES)
    for i in range(t.shape[0]):
        batched.update(t[i], p[i])  # 2-D batches
    assert batched == one
    halves = ConfusionMatrix(NAMES).update(t[:2], p[:2]) + ConfusionMatrix(NAMES).update(t[2:], p[2:])
    assert halves == one and halves.matrix.dtype == np.int64
    assert ConfusionMatrix(NAMES).update(t.ravel(), p.ravel()) == one  # shape does not matter
    assert ConfusionMatrix(NAMES).update(t.astype(np.int32), p.astype(np.int16)) == one


def test_empty_matrix() -> None:
    cm = ConfusionMatrix(NAMES).update(np.full((3, 3), 255, np.uint8), np.zeros((3, 3), np.uint8))
    assert cm.total == 0
    assert cm.f1.tolist() == [0.0] * K
    with pytest.raises(DataError, match="empty"):
        _ = cm.overall_accuracy
    with pytest.raises(DataError, match="empty"):
        _ = cm.miou
    record = cm.to_dict()
    assert record["metrics"] == dict.fromkeys(SUMMARY_METRICS)
    json.dumps(record, allow_nan=False)


def test_update_errors() -> None:
    cm = ConfusionMatrix(NAMES)
    with pytest.raises(DataError, match="shape"):
        cm.update(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(DataError, match="dtype float"):
        cm.update(np.zeros(3), np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"y_true holds 2 value\(s\) outside the class indices 0..6: 7, 9"):
        cm.update(np.array([0, 7, 9, 255]), np.array([0, 1, 2, 3]))
    with pytest.raises(DataError, match=r"y_pred .* -1"):
        cm.update(np.array([0, 1]), np.array([0, -1]))
    with pytest.raises(DataError, match=r"y_pred .* 255"):  # 255 predicted on a labelled pixel
        cm.update(np.array([0, 1]), np.array([0, 255]))
    assert cm.total == 0  # a rejected batch adds nothing
    no_ignore = ConfusionMatrix(NAMES, ignore_index=None)
    with pytest.raises(DataError, match="255"):
        no_ignore.update(np.array([255]), np.array([0]))


def test_table_errors() -> None:
    with pytest.raises(ConfigError, match="ignore_index=2"):
        ConfusionMatrix(NAMES, ignore_index=2)
    with pytest.raises(ConfigError, match="unique"):
        ConfusionMatrix(["a", "a"])
    with pytest.raises(ConfigError, match="non-empty"):
        ConfusionMatrix("ab")
    with pytest.raises(ConfigError, match="distinct"):
        ConfusionMatrix(["a", "b"], codes=[1])
    with pytest.raises(DataError, match="different class tables"):
        ConfusionMatrix(["a", "b"]).merge(ConfusionMatrix(["a", "c"]))
    with pytest.raises(DataError, match="different class tables"):
        _ = ConfusionMatrix(["a", "b"], codes=[1, 2]) + ConfusionMatrix(["a", "b"], codes=[0, 1])
    with pytest.raises(DataError, match="non-negative whole"):
        ConfusionMatrix.from_matrix([[1, -1], [0, 2]], ["a", "b"])
    with pytest.raises(DataError, match="non-negative whole"):
        ConfusionMatrix.from_matrix([[1.5, 0], [0, 2]], ["a", "b"])
    with pytest.raises(DataError, match="3 class names"):
        ConfusionMatrix.from_matrix(np.eye(2, dtype=int), ["a", "b", "c"])
    with pytest.raises(DataError, match="square"):
        ConfusionMatrix.from_matrix([[1, 2, 3]], ["a"])


def _fourteen(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 14, size=(4, 32, 32)).astype(np.uint8)
    p = np.where(rng.random(t.shape) < 0.6, t, rng.integers(0, 14, size=t.shape)).astype(np.uint8)
    t[rng.random(t.shape) < 0.05] = 255
    return t, p


def test_aggregate_equals_recomputing_on_regrouped_labels() -> None:
    t, p = _fourteen(4)
    cm14 = ConfusionMatrix([c.name for c in MULTISENGE_14], codes=[c.code for c in MULTISENGE_14]).update(
        t, p
    )

    def regrouped(groups: dict[int, int], names: dict[int, str]) -> ConfusionMatrix:
        # index -> code (+1), regroup codes (255 stays 255), code -> index (-1)
        tc, pc = (regroup(np.where(a == 255, 255, a + 1), groups) for a in (t, p))
        tc = np.where(tc == 255, 255, tc.astype(np.int64) - 1)
        return ConfusionMatrix.from_names(names).update(tc, pc.astype(np.int64) - 1)

    cm10, cm6 = regrouped(GROUPS_10, NAMES_10), regrouped(GROUPS_6, NAMES_6)
    assert cm14.aggregate_codes(GROUPS_10, NAMES_10) == cm10
    assert cm14.aggregate_codes(GROUPS_6, NAMES_6) == cm6
    ten_to_six = group_index_map(GROUPS_10, GROUPS_6)
    assert ten_to_six == (0, 0, 1, 1, 1, 2, 2, 3, 4, 5)
    coarse = cm10.aggregate(ten_to_six, list(NAMES_6.values()), codes=sorted(NAMES_6))
    assert coarse == cm6 == cm10.aggregate_codes(nested_groups(GROUPS_10, GROUPS_6), NAMES_6)
    assert coarse.overall_accuracy >= cm10.overall_accuracy >= cm14.overall_accuracy
    as_dict = cm10.aggregate(dict(enumerate(ten_to_six)), list(NAMES_6.values()), codes=sorted(NAMES_6))
    assert as_dict == cm6


def test_grouping_errors() -> None:
    with pytest.raises(DataError, match="not nested"):
        nested_groups({1: 1, 2: 1}, {1: 1, 2: 2})
    with pytest.raises(DataError, match="different base codes"):
        nested_groups({1: 1}, {1: 1, 2: 2})
    cm = ConfusionMatrix(["a", "b", "c"]).update(np.array([0, 1, 2]), np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"fine class index\(es\) \[2\]"):
        cm.aggregate({0: 0, 1: 1}, ["x", "y"])
    with pytest.raises(DataError, match=r"coarse index 0..1"):
        cm.aggregate([0, 1, 2], ["x", "y"])
    with pytest.raises(DataError, match="needs class codes"):
        cm.aggregate_codes({1: 1}, {1: "x"})


def test_dict_and_json_round_trip(tmp_path: Path) -> None:
    t, p = _labels(5)
    cm = ConfusionMatrix(NAMES, codes=range(10, 10 + K)).update(t, p)
    record = json.loads(json.dumps(cm.to_dict(), allow_nan=False))
    back = ConfusionMatrix.from_dict(record)
    assert back == cm and back.ignore_index == 255 and back.codes == tuple(range(10, 10 + K))
    assert record["metrics"] == cm.summary()
    assert set(record["metrics"]) == set(SUMMARY_METRICS)
    assert record["per_class"][ABSENT]["present"] is False
    assert record["per_class"][2]["code"] == 12 and record["per_class"][2]["name"] == "class 2"
    assert [row["iou"] for row in record["per_class"]] == cm.iou.tolist()
    path = cm.save_json(tmp_path / "run" / "metrics.json")
    assert ConfusionMatrix.load_json(path) == cm
    assert sorted(q.name for q in path.parent.iterdir()) == ["metrics.json"]  # no temp file left
    with pytest.raises(DataError, match="format"):
        ConfusionMatrix.from_dict({"names": ["a"], "matrix": [[1]]})
    with pytest.raises(DataError, match="Cannot read"):
        ConfusionMatrix.load_json(tmp_path / "missing.json")


def _ee_matrix(t: np.ndarray, p: np.ndarray, order: list[int]) -> list[list[int]]:
    """What errorMatrix(actual, predicted, order).getInfo() returns: rows = actual, in ``order``."""
    position = {v: i for i, v in enumerate(order)}
    m = np.zeros((len(order), len(order)), dtype=np.int64)
    np.add.at(m, ([position[v] for v in t], [position[v] for v in p]), 1)
    return m.tolist()


def test_ee_error_matrix() -> None:
    rng = np.random.default_rng(6)
    codes = [1, 2, 3, 4]  # labels start at 1
    t = rng.choice(codes[:3], size=300)  # code 4 never sampled
    p = np.where(rng.random(300) < 0.7, t, rng.choice(codes[:3], size=300))
    ours = ConfusionMatrix(["a", "b", "c", "d"], codes=codes).update(t - 1, p - 1)
    default = _ee_matrix(t, p, order=[0, 1, 2, 3])  # no order: values 0..max, row/col 0 empty
    assert from_ee_error_matrix(default, names=ours.names, codes=codes) == ours
    shuffled = [3, 1, 4, 2]
    cm = from_ee_error_matrix(_ee_matrix(t, p, shuffled), names=ours.names, codes=codes, order=shuffled)
    assert cm == ours
    assert cm.recall[:3] == pytest.approx(skm.recall_score(t, p, labels=[1, 2, 3], average=None))
    zero_based = from_ee_error_matrix(_ee_matrix(t - 1, p - 1, [0, 1, 2]), names=["a", "b", "c"])
    np.testing.assert_array_equal(zero_based.matrix, ours.matrix[:3, :3])
    with pytest.raises(DataError, match="class value 0"):
        from_ee_error_matrix(_ee_matrix(t - 1, p - 1, [0, 1, 2, 3]), names=ours.names, codes=codes)
    with pytest.raises(DataError, match="order must list 4"):
        from_ee_error_matrix(default, names=ours.names, codes=codes, order=[1, 2, 3])
    with pytest.raises(DataError, match="order must list 4"):
        from_ee_error_matrix(default, names=ours.names, codes=codes, order=[1, 1, 2, 3])
    with pytest.raises(DataError, match=r"rectangular|square"):
        from_ee_error_matrix([[1, 2], [3]], names=["a", "b"])


def test_ee_documented_example() -> None:
    # The array and order of the ee.ConfusionMatrix reference page (rows = actual).
    array = [
        [32, 0, 0, 0, 1, 0],
        [0, 5, 0, 0, 1, 0],
        [0, 0, 1, 3, 0, 0],
        [0, 1, 4, 26, 8, 0],
        [0, 0, 0, 7, 15, 0],
        [0, 0, 0, 1, 0, 5],
    ]
    order = [11, 22, 42, 52, 71, 81]
    cm = from_ee_error_matrix(array, names=[str(c) for c in order], codes=order, order=order)
    t = np.repeat(np.repeat(np.arange(6), 6), np.ravel(array))
    p = np.repeat(np.tile(np.arange(6), 6), np.ravel(array))
    assert cm.overall_accuracy == pytest.approx(84 / 110)
    assert cm.kappa == pytest.approx(skm.cohen_kappa_score(t, p))
    assert cm.precision == pytest.approx(skm.precision_score(t, p, average=None))


def test_plots(tmp_path: Path) -> None:
    from matplotlib.image import imread

    t, p = _fourteen(7)
    cm = ConfusionMatrix([c.name for c in MULTISENGE_14]).update(t, np.where(p == 9, 3, p))
    small = ConfusionMatrix(NAMES[:4]).update(t % 4, p % 4)
    paths = [plot_confusion(cm, tmp_path / "cm_true.png", dpi=40)]  # 14 classes, the readable-size case
    paths += [
        plot_confusion(small, tmp_path / f"cm_{mode}.png", normalize=mode, dpi=40) for mode in ("pred", None)
    ]
    paths.append(plot_per_class(cm, tmp_path / "per_class.png", title="test", dpi=40))
    for path in paths:
        assert path.exists() and path.stat().st_size > 0
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image[..., :3].std() > 0.05  # something was drawn
    assert sorted(q.name for q in tmp_path.iterdir()) == sorted(q.name for q in paths)
    with pytest.raises(ConfigError, match="normalize"):
        plot_confusion(cm, tmp_path / "bad.png", normalize="all")  # type: ignore[arg-type]
    empty = plot_confusion(ConfusionMatrix(["a", "b"]), tmp_path / "empty.png", dpi=40)
    assert empty.stat().st_size > 0


def test_metrics_import_is_torch_free() -> None:
    code = "import sys, gee_fusion.metrics.confusion; sys.exit(int('torch' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
