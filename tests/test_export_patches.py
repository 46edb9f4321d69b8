"""The patch store streamed through the exporter: equal to xee's whole-area fetch cut into patches,
split by block, resumed from the staged export after a crash, and leaving no staging behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest

import gee_fusion.export.patches as patches_module
from gee_fusion.classes import NO_LABEL
from gee_fusion.export.area import AreaConfig
from gee_fusion.export.fetch import load_by_window, open_map
from gee_fusion.export.patch_store import open_patch_store
from gee_fusion.export.patches import PatchExportConfig, cut_patches, export_patches, fetch_area
from gee_fusion.local.world.config import DEFAULT_WORLD as W

X0, Y1 = W.origin


def small_config() -> PatchExportConfig:
    area = AreaConfig(origin=(X0 - 240.0, Y1 - 4200.0), size_px=(80, 56))  # 24 px west of the world
    return PatchExportConfig(
        area=area, months=[7, 8], sensors=["S2", "S1"], patch_size=16, block_patches=2, min_labelled=0.5
    )


def test_the_streamed_store_equals_xees_whole_area_cut_into_patches(tmp_path: Path) -> None:
    cfg = small_config()
    path = export_patches(cfg, tmp_path / "p.zarr", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.zarr"]  # staging removed
    store = open_patch_store(path)
    grid = cfg.area.grid()
    labels_all = load_by_window(open_map(cfg.labels_asset, cfg.labels_band, grid), ["label"], progress=False)
    labels = cut_patches(np.nan_to_num(labels_all["label"][0], nan=NO_LABEL).astype(np.uint8), 16)
    keep = (labels != NO_LABEL).mean(axis=(1, 2)) >= 0.5
    assert 0 < keep.sum() < keep.size  # some patches dropped: the rule is exercised
    np.testing.assert_array_equal(store.read("labels"), labels[keep])
    area = fetch_area(cfg, progress=False)
    for sensor in ("S2", "S1"):
        want = cut_patches(area.sensors[sensor][0], 16)[keep]
        got = store.read(sensor)
        assert store.bands(sensor) == area.sensors[sensor][1]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
    rows, cols = np.divmod(np.flatnonzero(keep), 5)
    np.testing.assert_allclose(store.read("transform")[:, 2], grid.transform[2] + cols * 160.0)
    np.testing.assert_allclose(store.read("transform")[:, 5], grid.transform[5] - rows * 160.0)
    np.testing.assert_array_equal(store.read("block"), (rows // 2) * 3 + cols // 2)
    assert store.has_prior and store.read("prior").shape == store.read("labels").shape


def test_a_crash_after_staging_resumes_without_refetching(tmp_path: Path, monkeypatch: Any) -> None:
    cfg = small_config()
    real_writer = patches_module.patch_store_writer

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt("simulated crash while cutting patches")

    monkeypatch.setattr(patches_module, "patch_store_writer", crash)
    with pytest.raises(KeyboardInterrupt):
        export_patches(cfg, tmp_path / "p.zarr", progress=False)
    assert (tmp_path / ".p.zarr.fetch").is_dir() and not (tmp_path / "p.zarr").exists()
    monkeypatch.setattr(patches_module, "patch_store_writer", real_writer)
    calls = []
    compute_pixels = ee.data.computePixels
    monkeypatch.setattr(ee.data, "computePixels", lambda params: calls.append(1) or compute_pixels(params))
    export_patches(cfg, tmp_path / "p.zarr", progress=False)
    assert calls == []  # every tile came from the staged export
    assert open_patch_store(tmp_path / "p.zarr").read("labels").shape[1:] == (16, 16)
    assert not (tmp_path / ".p.zarr.fetch").exists()


def test_strips_of_a_wide_area_are_cut_by_columns_within_the_byte_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = small_config()  # 5 x 3 patches of 16 px
    staged = patches_module._stage_area(cfg, cfg.area.grid(), tmp_path / "staged", progress=False)
    whole = list(patches_module._strips(staged, cfg, 16, 3, 5))  # the default budget: all rows at once
    keep = patches_module._labelled_patches(staged.labels, 16, 3, 5, cfg.min_labelled)
    n_bands = len(patches_module._staged_data(staged.series)["band"])
    budget = 2 * n_bands * 16 * 16 * 4  # two patches of every band: less than a row of five
    reads: list[int] = []
    real_read = patches_module._read

    def recording(data: Any, bands: slice, rows: slice, cols: slice) -> np.ndarray:
        out = real_read(data, bands, rows, cols)
        reads.append(out.nbytes)
        return out

    monkeypatch.setattr(patches_module, "_STRIP_BYTES", budget)
    monkeypatch.setattr(patches_module, "_read", recording)
    parts = list(patches_module._strips(staged, cfg, 16, 3, 5))
    np.testing.assert_array_equal(patches_module._labelled_patches(staged.labels, 16, 3, 5, 0.5), keep)
    assert len(parts) == 9 and reads and max(reads) <= budget  # 3 rows of 2 + 2 + 1 patches
    firsts = [first for first, _ in parts]
    assert firsts == [0, 2, 4, 5, 7, 9, 10, 12, 14]  # consecutive runs in patch order
    assert len(whole) == 1
    for sensor in ("S2", "S1"):
        cut = np.concatenate([strip.sensors[sensor] for _, strip in parts])
        assert cut.tobytes() == whole[0][1].sensors[sensor].tobytes()
    np.testing.assert_array_equal(np.concatenate([s.labels for _, s in parts]), whole[0][1].labels)
    prior = [s.prior for _, s in parts]
    assert whole[0][1].prior is not None and all(p is not None for p in prior)
    np.testing.assert_array_equal(np.concatenate(prior), whole[0][1].prior)
