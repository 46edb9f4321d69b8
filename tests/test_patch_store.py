"""Patch store layout, statistics from the training split only, atomic writes, bad input."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from gee_fusion.errors import DataError
from gee_fusion.export.blocks import assign_splits
from gee_fusion.export.patch_store import SensorPatches, open_patch_store
from gee_fusion.export.patch_writer import patch_store_writer, write_patch_store
from gee_fusion.export.patches import cut_patches
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


def store_args(n: int, size: int = 4) -> dict[str, object]:
    return {
        "crs": "EPSG:32631", "transforms": np.zeros((n, 6)), "block": np.arange(n, dtype=np.int32),
        "classes": {1: ("a", (1, 2, 3))}, "label_scheme": "x", "recipe": {}, "engine": "local",
    }  # fmt: skip


def test_a_band_with_no_training_value_is_refused(tmp_path: Path) -> None:
    data = np.full((2, 1, 2, 4, 4), np.nan, np.float32)
    data[:, :, 0] = 1.0
    with pytest.raises(DataError, match="S2 band B3 has no valid value in the training split"):
        write_patch_store(
            tmp_path / "s.zarr", sensors={"S2": SensorPatches(data, [date(2021, 1, 1)], ["B2", "B3"])},
            labels=np.zeros((2, 4, 4), np.uint8), split=np.zeros(2, np.int8), **store_args(2),  # type: ignore[arg-type]
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_streamed_runs_equal_one_write_and_statistics_match_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n, t, c = 9, 2, 3
    data = (rng.normal(size=(n, t, c, 16, 16)) * [[[[[1.0]], [[50.0]], [[1e4]]]]] + 7).astype(np.float32)
    data[0, 0, 1, :4] = np.nan
    labels = rng.integers(0, 3, size=(n, 16, 16)).astype(np.uint8)
    split = np.array([0, 0, 1, 0, 2, 0, 0, 1, 0], np.int8)
    times, bands = [date(2021, 6, 1), date(2021, 7, 1)], ["B2", "VV", "B8"]
    one = write_patch_store(
        tmp_path / "one.zarr", sensors={"S2": SensorPatches(data, times, bands)}, labels=labels, split=split,
        **store_args(n),  # type: ignore[arg-type]
    )  # fmt: skip
    with patch_store_writer(
        tmp_path / "runs.zarr", layout={"S2": (times, bands)}, patch_shape=(16, 16), split=split,
        **store_args(n),  # type: ignore[arg-type]
    ) as writer:  # fmt: skip
        for start in (0, 4, 5):  # runs of 4, 1 and 4 patches
            stop = {0: 4, 4: 5, 5: 9}[start]
            writer.write(start, sensors={"S2": data[start:stop]}, labels=labels[start:stop])
    a, b = open_patch_store(one), open_patch_store(tmp_path / "runs.zarr")
    np.testing.assert_array_equal(a.read("S2"), b.read("S2"))
    np.testing.assert_array_equal(a.read("labels"), b.read("labels"))
    train = data[split == 0]
    for k, band in enumerate(bands):
        vals = train[:, :, k].ravel().astype(np.float64)
        vals = vals[np.isfinite(vals)]
        got = b.normalisation["S2"][band]
        assert got.mean == pytest.approx(vals.mean(), rel=1e-12)
        assert got.std == pytest.approx(vals.std(), rel=1e-12)
        assert got.q02 == pytest.approx(np.quantile(vals, 0.02), rel=1e-12)
        assert vars(got) == pytest.approx(vars(a.normalisation["S2"][band]), rel=1e-12)
    with pytest.raises(DataError, match=r"were never written"), patch_store_writer(
        tmp_path / "holes.zarr", layout={"S2": (times, bands)}, patch_shape=(16, 16), split=split,
        **store_args(n),  # type: ignore[arg-type]
    ) as writer:  # fmt: skip
        writer.write(0, sensors={"S2": data[:4]}, labels=labels[:4])
    assert not (tmp_path / "holes.zarr").exists()


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
