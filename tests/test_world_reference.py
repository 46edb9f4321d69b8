"""The demo world's generalised reference map (``local/demo/REFERENCE``): tile consistency,
determinism, agreement with the truth, minimum mapping unit, outdated objects, the planted changes of
its date only, serving through earthengine-api, and the ``labels.source: demo_reference`` option."""

from __future__ import annotations

from pathlib import Path

import ee
import numpy as np
import pytest

from gee_fusion import ids
from gee_fusion.classes import GROUPS_6, GROUPS_10, regroup
from gee_fusion.errors import ConfigError
from gee_fusion.local.world import changes, reference
from gee_fusion.local.world.config import DEFAULT_WORLD, WorldConfig
from gee_fusion.local.world.landcover import ARABLE, GRASS, GROVE, NETWORK, WATER
from gee_fusion.local.world.products import LABELS_MILLIS, landcover_at
from tests.conftest import world_grid

W = DEFAULT_WORLD
N = W.size_px


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return landcover_at(W, 0, 0, N, N, LABELS_MILLIS).label


@pytest.fixture(scope="module")
def ref() -> np.ndarray:
    return reference.reference_labels(W, 0, 0, N, N)


def isolated(label: np.ndarray) -> np.ndarray:
    """Pixels none of whose 8 neighbours shares their class (the border excluded)."""
    centre = label[1:-1, 1:-1]
    same = np.zeros(centre.shape, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                same |= label[1 + dy : label.shape[0] - 1 + dy, 1 + dx : label.shape[1] - 1 + dx] == centre
    out = np.zeros(label.shape, dtype=bool)
    out[1:-1, 1:-1] = ~same
    return out


def test_a_window_is_the_crop_of_a_larger_one(ref: np.ndarray) -> None:
    small = reference.reference_labels(W, 237, 301, 61, 45)  # across a 256 px block edge
    np.testing.assert_array_equal(small, ref[301:346, 237:298])
    edge = reference.reference_labels(W, -5, N - 20, 30, 30)  # beyond the world's edge
    np.testing.assert_array_equal(edge[:20, 5:], ref[N - 20 :, :25])


def test_deterministic_and_seeded() -> None:
    cfg = WorldConfig(seed=7, size_km=3.0, changes=0)
    a = reference.reference_labels(cfg, 0, 0, 200, 200)
    reference._reference.cache_clear()
    np.testing.assert_array_equal(a, reference.reference_labels(cfg, 0, 0, 200, 200))
    other = reference.reference_labels(WorldConfig(seed=8, size_km=3.0, changes=0), 0, 0, 200, 200)
    assert (a != other).mean() > 0.2


def test_agreement_with_the_truth_in_the_documented_range(truth: np.ndarray, ref: np.ndarray) -> None:
    # docs/demo_world.md: 94.0 % at 14 and 10 classes, 94.6 % at 6 (default world)
    assert 0.90 < float((ref == truth).mean()) < 0.96
    assert 0.90 < float((regroup(ref, GROUPS_10) == regroup(truth, GROUPS_10)).mean()) < 0.96
    assert 0.91 < float((regroup(ref, GROUPS_6) == regroup(truth, GROUPS_6)).mean()) < 0.97
    # proportions move a little: no class gains or loses more than 2 points
    for code in range(1, 15):
        assert abs(float((ref == code).mean() - (truth == code).mean())) < 0.02, code


def test_minimum_mapping_unit_removes_small_objects_and_keeps_networks(
    truth: np.ndarray, ref: np.ndarray
) -> None:
    lone = isolated(truth)
    assert lone.sum() > 200
    assert (ref[lone] == truth[lone]).mean() < 0.02  # isolated pixels of the truth vanish
    kept = isolated(ref) & (ref != NETWORK)
    assert kept.sum() < 0.1 * lone.sum() and kept.mean() < 1e-4
    # hedges (1-2 px strips of groves) merge into the fields; roads and railways stay
    assert (ref == GROVE).mean() < 0.8 * (truth == GROVE).mean()
    assert abs(float((ref == NETWORK).mean() / (truth == NETWORK).mean()) - 1.0) < 0.05


def test_majority_filter_on_a_toy_map() -> None:
    radius = reference.MMU_RADII_PX[0]
    field = np.full((21, 21), ARABLE, dtype=np.uint8)
    field[5, 5] = WATER  # one pixel
    field[6:8, 14:16] = WATER  # a 2 x 2 pond
    field[:, 9:10] = GROVE  # a 1 px hedge
    field[15:17, :] = NETWORK  # a 2 px road
    field[:, 0:4] = GRASS  # a meadow
    out = reference.majority(field, radius)
    assert out.shape == (21 - 2 * radius, 21 - 2 * radius)
    off_road = np.r_[out[: 15 - radius], out[17 - radius :]]  # the road's own pixels are burned in later
    assert not np.isin(off_road, [WATER, GROVE, NETWORK]).any()  # networks cast no vote
    assert (out[:, 0] == GRASS).all() and (off_road[:, 2:] == ARABLE).all()
    assert (reference.majority(field, 0) == field).all()


def test_outdated_share_of_objects_near_the_parameter() -> None:
    lc = landcover_at(W, 0, 0, 600, 600, LABELS_MILLIS)
    old = reference.outdated_labels(lc.label, lc.parcel, seed=W.seed)
    changed = old != lc.label
    assert set(np.unique(lc.label[changed]).tolist()) <= set(reference.PREVIOUS_CLASS)
    eligible = np.isin(lc.label, list(reference.PREVIOUS_CLASS))
    keys = lc.parcel.astype(np.uint64)[eligible] * np.uint64(256) + lc.label[eligible]
    objects, first = np.unique(keys, return_index=True)
    share = float(changed[eligible][first].mean())
    assert objects.size > 500
    assert abs(share - reference.OUTDATED_SHARE) < 0.015, share
    # every pixel of an object shares its fate
    flags = changed[eligible]
    inverse = np.unique(keys, return_inverse=True)[1]
    assert np.array_equal(flags, flags[first][inverse])
    # no outdated object without a previous class
    assert not changed[~eligible].any()


def test_reference_keeps_the_state_of_its_date() -> None:
    built = (changes.ChangeKind.CONSTRUCTION, changes.ChangeKind.INDUSTRIAL, changes.ChangeKind.DEMOLITION)
    later = [
        c
        for c in changes.planted_changes(W)
        if c.kind in built
        and c.millis(c.start) > LABELS_MILLIS
        and min(c.col1 - c.col0, c.row1 - c.row0) >= 10
    ]
    assert len(later) >= 3
    for c in later[:3]:
        w, h = c.col1 - c.col0, c.row1 - c.row0
        after = landcover_at(W, c.col0, c.row0, w, h, c.millis(c.end)).label[3:-3, 3:-3]
        ref = reference.reference_labels(W, c.col0, c.row0, w, h)[3:-3, 3:-3]
        assert (after == c.to_code).mean() > 0.9
        assert (ref == c.to_code).mean() < 0.5


def test_served_through_earthengine_api(ref: np.ndarray) -> None:
    image = ee.Image(ids.DEMO_REFERENCE)
    out = ee.data.computePixels(
        {"expression": image, "grid": world_grid(700, 300, 120, 90), "fileFormat": "NUMPY_NDARRAY"}
    )
    np.testing.assert_array_equal(out["label"], ref[300:390, 700:820])
    np.testing.assert_array_equal(out["label10"], regroup(out["label"], GROUPS_10))
    np.testing.assert_array_equal(out["label6"], regroup(out["label"], GROUPS_6))
    info = image.getInfo()
    assert [b["id"] for b in info["bands"]] == ["label", "label10", "label6"]
    assert info["bands"][0]["dimensions"] == [N, N]
    assert info["properties"]["system:time_start"] == LABELS_MILLIS


def test_labels_config_demo_reference(tmp_path: Path, ref: np.ndarray) -> None:
    from pydantic import ValidationError

    from gee_fusion.classic.job import load_cloud_rf_config
    from gee_fusion.classic.labels import LabelsConfig, check_label_grid, source_labels
    from gee_fusion.grid import PixelGrid

    cfg = LabelsConfig(source="demo_reference", scheme=6)
    assert cfg.raster() == (ids.DEMO_REFERENCE, "label")
    assert LabelsConfig().raster() == (ids.DEMO_LABELS, "label")  # the default is unchanged
    x0, y1 = W.origin
    check_label_grid(cfg, PixelGrid(W.crs, (10.0, 0.0, x0 + 500.0, 0.0, -10.0, y1 - 300.0), 40, 30))
    out = ee.data.computePixels(
        {"expression": source_labels(cfg), "grid": world_grid(50, 30, 40, 30), "fileFormat": "NUMPY_NDARRAY"}
    )
    np.testing.assert_array_equal(out["label"], ref[30:60, 50:90])
    with pytest.raises(ValidationError, match=r"drop labels\.asset"):
        LabelsConfig(source="demo_reference", asset="projects/p/assets/labels")
    path = tmp_path / "job.yaml"
    path.write_text("labels: {source: demo_reference, scheme: 10}\n", encoding="utf-8")
    assert load_cloud_rf_config(path).labels.source == "demo_reference"
    path.write_text("labels: {source: reference}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="demo_reference"):
        load_cloud_rf_config(path)
