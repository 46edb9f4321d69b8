"""Datasets over the patch store: normalisation, labels, pads, augmentation, class weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gee_fusion.classes import GROUPS_10, class_table, regroup
from gee_fusion.deep.datasets import (
    EpochSampler,
    PatchDataset,
    check_bands,
    class_weights,
    mid_month_doy,
    rot_flip,
)
from gee_fusion.errors import DataError
from gee_fusion.export.patch_store import PatchStore, open_patch_store
from tests.deep_data import make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> PatchStore:
    return open_patch_store(make_store(tmp_path_factory.mktemp("store") / "s.zarr"))


def test_items_follow_the_batch_contract(store: PatchStore) -> None:
    ds = PatchDataset(store, split="train", sensors=("S2", "S1"), prior=True)
    item = ds[0]
    assert item["S2"].shape == (3, 4, 16, 16) and item["S2"].dtype == torch.float32
    assert item["S1"].shape == (2, 2, 16, 16)
    assert item["S2_doy"].tolist() == [196, 227, 258]  # 15 Jul, Aug, Sep 2021
    assert item["S2_pad"].tolist() == [False, True, False]  # patch 0 lost month 2 entirely
    assert item["S1_pad"].tolist() == [False, False]
    assert item["label"].dtype == torch.int64 and item["prior"].dtype == torch.int64
    assert torch.isfinite(item["S2"]).all() and (item["S2"][1] == 0).all()


def test_zscore_and_quantile_match_numpy(store: PatchStore) -> None:
    raw = store.ds["S2"].values[store.indices("val")]
    st = store.normalisation["S2"]
    mean = np.array([st[b].mean for b in store.bands("S2")])[:, None, None]
    std = np.array([st[b].std for b in store.bands("S2")])[:, None, None]
    z = PatchDataset(store, split="val", sensors=("S2",))
    np.testing.assert_allclose(z.inputs["S2"], np.nan_to_num((raw - mean) / std), rtol=1e-5, atol=1e-6)
    q = PatchDataset(store, split="val", sensors=("S2",), normalisation="quantile")
    lo = np.array([st[b].q02 for b in store.bands("S2")])[:, None, None]
    hi = np.array([st[b].q98 for b in store.bands("S2")])[:, None, None]
    np.testing.assert_allclose(q.inputs["S2"], np.clip((raw - lo) / (hi - lo), 0, 1), rtol=1e-5, atol=1e-6)


def test_labels_regrouped_to_indices(store: PatchStore) -> None:
    ds = PatchDataset(store, split="train", sensors=("S2",), scheme=10)
    raw = store.ds["labels"].values[store.indices("train")]
    table = class_table(10)
    expected = np.full(raw.shape, 255, np.int64)
    grouped = regroup(raw, GROUPS_10)
    for i, code in enumerate(table.codes):
        expected[grouped == code] = i
    np.testing.assert_array_equal(ds.labels, expected)
    assert (ds.labels == 255).sum() == (raw == 255).sum() > 0
    assert class_table(6).num_classes == 6 and class_table(14).codes == tuple(range(1, 15))


def test_augmentation_is_deterministic_and_consistent(store: PatchStore) -> None:
    ds = PatchDataset(store, split="train", sensors=("S2", "S1"), augment=True, prior=True, seed=3)
    a, b = ds[(2, 5)], ds[(2, 5)]
    for key in a:
        assert torch.equal(a[key], b[key])
    plain = PatchDataset(store, split="train", sensors=("S2", "S1"), prior=True)[5]
    seen = set()
    for epoch in range(12):
        item = ds[(epoch, 5)]
        found = None
        for k in range(4):
            for flip in (False, True):
                ref = rot_flip({"label": plain["label"].numpy(), "S2": plain["S2"].numpy()}, k=k, flip=flip)
                if np.array_equal(ref["label"], item["label"].numpy()) and np.array_equal(
                    ref["S2"], item["S2"].numpy()
                ):
                    found = (k, flip)
        assert found is not None  # inputs and labels moved together
        seen.add(found)
    assert len(seen) > 2


def test_copy_paste_pastes_a_donor_class(store: PatchStore) -> None:
    ds = PatchDataset(store, split="train", sensors=("S2",), copy_paste=1.0, seed=0)
    base = PatchDataset(store, split="train", sensors=("S2",))
    changed = 0
    for i in range(len(ds)):
        item, ref = ds[(0, i)], base[i]
        diff = (item["label"] != ref["label"]).numpy()
        if diff.any():
            changed += 1
            donors = [
                j
                for j in range(len(ds))
                if np.array_equal(item["S2"].numpy()[:, :, diff], base[j]["S2"].numpy()[:, :, diff])
            ]
            assert donors, "pasted pixels must come from one training patch"
    assert changed > 0


def test_copy_paste_recomputes_the_missing_month_masks(store: PatchStore) -> None:
    ds = PatchDataset(store, split="train", sensors=("S2",), copy_paste=1.0, seed=3)
    flipped = 0
    for epoch in range(6):
        for i in range(len(ds)):
            item = ds[(epoch, i)]
            empty = (item["S2"] == 0).flatten(1).all(dim=1)  # observed months hold non-zero values
            assert item["S2_pad"].tolist() == empty.tolist()
            flipped += int((item["S2_pad"].numpy() != ds.pad["S2"][i]).sum())
    assert flipped > 0  # some pastes brought a missing month back (patch 0 lost month 2)


def test_class_weights_formulas() -> None:
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10 + [255] * 7)
    p = np.array([0.6, 0.3, 0.1])
    inv = class_weights(labels, 4, method="inverse_frequency")
    np.testing.assert_allclose(inv[:3], (1 / p) / np.sum((1 / p) * p), rtol=1e-6)
    assert inv[3] == 0
    seed = class_weights(labels, 3, method="seed")
    np.testing.assert_allclose(seed, 1 / (p * np.sum(p**2)), rtol=1e-6)
    assert (class_weights(labels, 3, method="none") == 1).all()
    with pytest.raises(DataError):
        class_weights(np.full(5, 255), 3, method="seed")


def test_epoch_sampler_is_a_function_of_seed_and_epoch() -> None:
    s = EpochSampler(10, seed=1)
    s.set_epoch(3)
    first = list(s)
    s.set_epoch(0)
    s.set_epoch(3)
    assert list(s) == first and sorted(i for _, i in first) == list(range(10))
    assert all(e == 3 for e, _ in first)
    assert list(EpochSampler(10, seed=1, shuffle=False)) == [(0, i) for i in range(10)]


def test_epoch_sampler_shards_across_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    shards = {}
    for rank in range(3):
        monkeypatch.setattr(EpochSampler, "_shard", lambda self, r=rank: (r, 3))
        shards[rank] = (list(EpochSampler(10, seed=1, shuffle=False)), list(EpochSampler(10, seed=1)))
    evaluation = sorted(i for r in shards for _, i in shards[r][0])
    assert evaluation == list(range(10))  # each patch evaluated exactly once
    assert {len(shards[r][1]) for r in shards} == {4}  # equal training shards (wrap-around)
    assert set(i for r in shards for _, i in shards[r][1]) == set(range(10))


def test_bad_input(store: PatchStore, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing \\['B5'\\]"):
        check_bands(store, {"S2": ["B2", "B3", "B4", "B5"]})
    with pytest.raises(DataError, match="different order"):
        check_bands(store, {"S2": ["B3", "B2", "B4", "B8"]})
    nosplit = open_patch_store(make_store(tmp_path / "n.zarr", split=np.zeros(12, np.int8)))
    with pytest.raises(DataError, match=r"val split .* is empty"):
        PatchDataset(nosplit, split="val", sensors=("S2",))
    noprior = open_patch_store(make_store(tmp_path / "p.zarr", prior=False))
    with pytest.raises(DataError, match="prior"):
        PatchDataset(noprior, split="train", sensors=("S2",), prior=True)


def test_mid_month_doy() -> None:
    from datetime import date

    assert mid_month_doy([date(2021, 1, 1), date(2020, 12, 1)]).tolist() == [15, 350]
