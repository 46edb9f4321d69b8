"""Per-pixel confidence of the monthly class maps: the forest's vote share (against the engine's
two-class PROBABILITY output), the confident-month filter and the change confidence (against
per-pixel loops), a deep checkpoint's group probability, and the job's bands."""

from __future__ import annotations

from pathlib import Path

import ee
import numpy as np
import pytest

import gee_fusion
from gee_fusion.errors import DataError
from gee_fusion.monitoring.confidence import (
    as_percent,
    change_confidence,
    confident_classes,
    group_probability,
    read_confidence,
)
from gee_fusion.monitoring.optical import vote_share


def _loop_confident(stack: np.ndarray, conf: np.ndarray, minimum: float) -> np.ndarray:
    out = stack.copy()
    for r in range(stack.shape[1]):
        for c in range(stack.shape[2]):
            sure = [t for t in range(stack.shape[0]) if not conf[t, r, c] < minimum]
            for t in range(stack.shape[0]):
                before = [k for k in sure if k <= t]
                if before:
                    out[t, r, c] = stack[before[-1], r, c]
                elif sure:
                    out[t, r, c] = stack[sure[0], r, c]
    return out


def test_unsure_months_take_the_latest_confident_class() -> None:
    rng = np.random.default_rng(3)
    stack = rng.integers(1, 7, size=(12, 9, 8)).astype(np.uint8)
    conf = rng.uniform(0.2, 1.0, size=stack.shape).astype(np.float32)
    conf[rng.uniform(size=stack.shape) < 0.1] = np.nan  # unknown: counts as confident
    conf[:, 0, 0] = 0.1  # never confident: keeps its classes
    for minimum in (0.3, 0.5, 0.8):
        got = confident_classes(stack, conf, minimum=minimum)
        assert np.array_equal(got, _loop_confident(stack, conf, minimum))
        assert np.array_equal(got[:, 0, 0], stack[:, 0, 0])
    assert confident_classes(stack, conf, minimum=0.0) is stack
    # a blip in one unsure month neither makes nor breaks a change
    series = np.array([3, 3, 3, 1, 3, 3], np.uint8)[:, None, None]
    sure = np.array([0.9, 0.8, 0.9, 0.4, 0.9, 0.9], np.float32)[:, None, None]
    assert confident_classes(series, sure, minimum=0.5).ravel().tolist() == [3] * 6
    with pytest.raises(DataError, match="do not match"):
        confident_classes(stack, conf[:, :4], minimum=0.5)
    with pytest.raises(DataError, match="min_class_confidence"):
        confident_classes(stack, conf, minimum=1.5)


def test_change_confidence_is_the_mean_of_the_months_from_the_onset() -> None:
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.3, 1.0, size=(10, 6, 7)).astype(np.float32)
    conf[rng.uniform(size=conf.shape) < 0.15] = np.nan
    onset = rng.integers(-1, 10, size=(6, 7))
    got = change_confidence(conf, onset, persist=3)
    for r in range(6):
        for c in range(7):
            t = onset[r, c]
            values = [
                conf[k, r, c] for k in range(t, min(t + 3, 10)) if t >= 0 and np.isfinite(conf[k, r, c])
            ]
            if values:
                assert got[r, c] == pytest.approx(np.mean(values), rel=1e-6)
            else:
                assert np.isnan(got[r, c])
    assert as_percent(np.array([np.nan, 0.5, 0.996, 1.0])).tolist() == [0, 50, 100, 100]


def test_a_deep_checkpoint_confidence_sums_the_fine_classes_of_its_group() -> None:
    lut = np.zeros(256, np.uint8)
    lut[[11, 12, 21, 31]] = [1, 1, 3, 4]  # two urban codes in group 1
    probabilities = np.array([[[0.5, 0.1]], [[0.3, 0.1]], [[0.1, 0.2]], [[0.1, 0.6]]], np.float32)
    chosen = np.array([[1, 4]], np.uint8)
    share = group_probability(probabilities, [11, 12, 21, 31], lut, chosen)
    assert share[0, 0] == pytest.approx(0.8) and share[0, 1] == pytest.approx(0.6)
    assert np.isnan(group_probability(probabilities, [11, 12, 21, 31], lut, np.zeros((1, 2), np.uint8))).all()


def test_the_vote_share_is_the_two_class_probability_of_the_class_given(
    local_engine: gee_fusion.Connection,
) -> None:
    rng = np.random.default_rng(0)
    points = []
    for k in range(80):
        x = float(rng.normal(1.0 if k % 2 else -1.0, 1.0))
        points.append(ee.Feature(None, {"x": x, "y": float(rng.normal()), "label": k % 2}))
    forest = ee.Classifier.smileRandomForest(numberOfTrees=15, seed=4).train(
        ee.FeatureCollection(points), "label", ["x", "y"]
    )
    image = ee.Image.pixelLonLat().select(["longitude", "latitude"], ["x", "y"])
    grid = {"dimensions": {"width": 16, "height": 16},
            "affineTransform": {"scaleX": 0.25, "shearX": 0, "translateX": -2.0,
                                "shearY": 0, "scaleY": -0.25, "translateY": 2.0},
            "crsCode": "EPSG:4326"}  # fmt: skip
    share = ee.data.computePixels({"expression": vote_share(image, forest).rename("s"), "grid": grid})["s"]
    p1 = ee.data.computePixels(
        {"expression": image.classify(forest.setOutputMode("PROBABILITY")).rename("p"), "grid": grid}
    )["p"]
    assert np.allclose(share, np.maximum(p1, 1 - p1), atol=1e-6)
    assert share.min() >= 0.5 and len(np.unique(share)) > 2


def test_maps_without_the_band_read_as_unknown(tmp_path: Path) -> None:
    from gee_fusion.io.cog import write_cog

    old, new = tmp_path / "old.tif", tmp_path / "new.tif"
    kw = {"crs": "EPSG:32631", "transform": (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), "nodata": 0}
    write_cog(old, np.ones((2, 3, 4), np.uint8), band_names=["class", "source"], **kw)
    percent = np.array([[0, 50, 75, 100]] * 3, np.uint8)
    write_cog(
        new,
        np.stack([np.ones((3, 4), np.uint8)] * 2 + [percent]),
        band_names=["class", "source", "confidence"],
        **kw,
    )
    got = read_confidence([old, new])
    assert np.isnan(got[0]).all()
    assert np.isnan(got[1][:, 0]).all() and np.allclose(got[1][:, 1:], [0.5, 0.75, 1.0])
