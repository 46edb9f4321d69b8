"""Patch store layout, statistics from the training split only, atomic writes, bad input."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from gee_fusion.errors import DataError
from gee_fusion.export.patch_store import SensorPatches, band_statistics, open_patch_store, write_patch_store
from gee_fusion.export.patches import assign_splits, cut_patches
from tests.deep_data import S1_BANDS, S2_BANDS, make_store


def test_layout_and_coords(tmp_path: Path) -> None:
    store = open_patch_store(make_store(tmp_path / "s.zarr"))
    assert store.sensors == ("S2", "S1")
    assert store.bands("S2") == list(S2_BANDS) and store.bands("S1") == list(S1_BANDS)
    assert store.times("S2") == [date(2021, 7, 1), date(2021, 8, 1), date(2021, 9, 1)]
    assert store.ds["S2"].dims == ("patch", "time_S2", "band_S2", "y", "x")
    assert store.ds["labels"].dtype == np.uint8 and store.ds["labels"].dims == ("patch", "y", "x")
    assert store.patch_shape == (16, 16) and store.has_prior
    assert list(store.ds["crs"].values) == ["EPSG:32631"] * 12
    assert store.ds["transform"].shape == (12, 6)
    assert store.indices("train").tolist() == list(range(8))
    m = store.manifest
    assert m["engine"] == "local" and len(m["recipe_hash"]) == 16 and "xee" in m["versions"]
    assert store.classes[14][0] == "Water surfaces"


def test_normalisation_uses_training_split_only(tmp_path: Path) -> None:
    path = make_store(tmp_path / "s.zarr")
    store = open_patch_store(path)
    s2 = store.ds["S2"].values
    train = s2[store.indices("train")]
    for b, name in enumerate(S2_BANDS):
        vals = train[:, :, b].ravel()
        vals = vals[np.isfinite(vals)]
        st = store.normalisation["S2"][name]
        assert st.mean == pytest.approx(vals.mean(), rel=1e-6)
        assert st.std == pytest.approx(vals.std(), rel=1e-5)
        assert st.q02 == pytest.approx(np.quantile(vals, 0.02), rel=1e-6)
        assert st.q98 == pytest.approx(np.quantile(vals, 0.98), rel=1e-6)
    every = s2[:, :, 0].ravel()
    assert store.normalisation["S2"]["B2"].mean != pytest.approx(np.nanmean(every), rel=1e-9)


def test_band_statistics_rejects_empty_band() -> None:
    data = np.full((2, 1, 2, 4, 4), np.nan, np.float32)
    data[:, :, 0] = 1.0
    with pytest.raises(DataError, match="Band 1"):
        band_statistics(data)


def test_empty_training_split_is_refused(tmp_path: Path) -> None:
    split = np.array([1] * 6 + [2] * 6, np.int8)
    with pytest.raises(DataError, match="training split is empty"):
        make_store(tmp_path / "s.zarr", split=split)
    assert not (tmp_path / "s.zarr").exists()
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_atomically_and_failure_keeps_old(tmp_path: Path) -> None:
    path = make_store(tmp_path / "s.zarr", seed=1)
    before = open_patch_store(path).ds["S2"].values.copy()
    with pytest.raises(DataError):
        write_patch_store(
            path,
            sensors={"S2": SensorPatches(np.zeros((3, 1, 1, 4, 4), np.float32), [date(2021, 1, 1)], ["B2"])},
            labels=np.zeros((2, 4, 4), np.uint8), crs="EPSG:32631", transforms=np.zeros((2, 6)),
            split=np.zeros(2, np.int8), block=np.zeros(2, np.int32), classes={}, label_scheme="x",
            recipe={}, engine="local",
        )  # fmt: skip
    np.testing.assert_array_equal(open_patch_store(path).ds["S2"].values, before)
    make_store(path, seed=2)
    assert not np.array_equal(np.nan_to_num(open_patch_store(path).ds["S2"].values), np.nan_to_num(before))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No patch store"):
        open_patch_store(tmp_path / "missing.zarr")
    (tmp_path / "junk.zarr").mkdir()
    with pytest.raises(DataError):
        open_patch_store(tmp_path / "junk.zarr")
    store = open_patch_store(make_store(tmp_path / "s.zarr"))
    with pytest.raises(DataError, match="split"):
        store.indices("holdout")


def test_sensor_patches_shape_checks() -> None:
    with pytest.raises(DataError, match="do not match"):
        SensorPatches(np.zeros((1, 2, 3, 4, 4)), [date(2021, 1, 1)], ["a", "b", "c"])
    with pytest.raises(DataError, match="patch, time, band"):
        SensorPatches(np.zeros((2, 3, 4, 4)), [date(2021, 1, 1)], ["a"])


def test_cut_patches_matches_reference() -> None:
    arr = np.arange(2 * 3 * 10 * 9).reshape(2, 3, 10, 9)
    out = cut_patches(arr, 4)
    assert out.shape == (4, 2, 3, 4, 4)
    ref = [arr[..., r : r + 4, c : c + 4] for r in (0, 4) for c in (0, 4)]
    for k in range(4):
        np.testing.assert_array_equal(out[k], ref[k])


def test_assign_splits_covers_every_split() -> None:
    codes = assign_splits(10, (0.7, 0.15, 0.15), seed=3)
    assert np.bincount(codes).tolist() == [8, 1, 1]  # floor(0.15 * 10) = 1 block each
    assert np.array_equal(codes, assign_splits(10, (0.7, 0.15, 0.15), seed=3))
    assert np.bincount(assign_splits(3, (0.8, 0.1, 0.1), seed=0)).tolist() == [1, 1, 1]
    assert json.dumps(codes.tolist())


def test_a_damaged_chunk_is_a_data_error(tmp_path: Path) -> None:
    from gee_fusion.deep.datasets import PatchDataset

    path = make_store(tmp_path / "s.zarr")
    files = (path / "S2").rglob("*")
    chunks = sorted(p for p in files if p.is_file() and not p.name.startswith((".", "zarr")))
    assert chunks, "no chunk files found"
    victim = chunks[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:8] + bytes(b ^ 0x5A for b in data[8:]))
    store = open_patch_store(path)
    with pytest.raises(DataError, match=r"damaged: a chunk of 'S2' cannot be read"):
        PatchDataset(store, split="train", sensors=["S2"])
