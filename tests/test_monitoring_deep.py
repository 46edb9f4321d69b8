"""Monthly monitoring with a deep checkpoint: the class grouping to 6 classes, the recipe
re-anchored on each month, a checkpoint without built-up classes refused, and the job end to end
with a tiny ConvLSTM trained on the demo world."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from gee_fusion.classes import GROUPS_6, GROUPS_10, WORLDCOVER_TO_6
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.monitoring.deep import SOURCE_DEEP, anchored_months, six_class_lut
from gee_fusion.monitoring.job import load_monitor_config, run_monitor


def test_class_tables_group_into_the_six_classes() -> None:
    lut14 = six_class_lut(list(range(1, 15)), 14)
    assert all(lut14[c] == GROUPS_6[c] for c in range(1, 15))
    lut10 = six_class_lut(list(range(1, 11)), 10)
    for base, fine in GROUPS_10.items():  # a 10-class code lands in its base codes' 6-class group
        assert lut10[fine] == GROUPS_6[base]
    lut_wc = six_class_lut(sorted(WORLDCOVER_TO_6), 11)
    assert lut_wc[50] == 1 and lut_wc[80] == 6 and lut_wc[255] == 0


def test_a_checkpoint_without_built_classes_is_refused() -> None:
    with pytest.raises(DataError, match="no built-up class"):
        six_class_lut([6, 7, 8, 9, 10], 10)  # a rural model: agriculture, grass, woods, water
    with pytest.raises(DataError, match="14, 10, 6 or WorldCover"):
        six_class_lut([1, 2, 3], 3)


def test_the_recipe_months_are_re_anchored_on_the_month() -> None:
    assert anchored_months([7], date(2022, 3, 1)) == [3]
    assert anchored_months([7, 9], date(2022, 5, 1)) == [3, 5]  # the gap is kept
    assert anchored_months([7, 8, 9, 11], date(2022, 2, 1)) == [2]  # nothing before January


def test_checkpoint_and_batch_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "both.yaml"
    path.write_text("checkpoint: model.ckpt\nbatch: {asset_folder: users/me/monitoring}\n")
    with pytest.raises(ConfigError, match="exclude each other"):
        load_monitor_config(path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_the_job_classifies_every_month_with_a_checkpoint(tmp_path: Path) -> None:
    from gee_fusion.deep.config import load_experiment
    from gee_fusion.deep.train.training import train

    x0, y1 = W.origin
    origin = [x0 + 3000.0, y1 - 3000.0]
    exp = {
        "name": "monthly", "seed": 1, "out_dir": str(tmp_path / "runs"),
        "patches": {"area": {"origin": origin, "size_px": [64, 64]}, "patch_size": 32, "block_patches": 1,
                    "months": [7], "split_fractions": [0.5, 0.25, 0.25]},
        "data": {"store": str(tmp_path / "p.zarr"), "batch_size": 4, "classes": 10},
        "model": {"name": "convlstm", "sensors": ["S1", "S2"], "hidden": 8, "base_width": 4},
        "optim": {"max_epochs": 1},
    }  # fmt: skip
    cfg_path = tmp_path / "exp.yaml"
    cfg_path.write_text(yaml.safe_dump(exp))
    run = train(load_experiment(cfg_path), device="cpu", progress=False)
    ckpt = Path(run.best_checkpoint)
    monitor = tmp_path / "monitor.yaml"
    monitor.write_text(
        f"area: {{origin: [{origin[0]}, {origin[1]}], size_px: [40, 36]}}\n"
        f'start: "2022-09"\nout: {tmp_path / "out"}\ncheckpoint: {ckpt}\n'
    )
    res = run_monitor(load_monitor_config(monitor), until="2022-12", progress=False)
    assert len(res.new_months) == 4
    for month in ("2022-09", "2022-10", "2022-11", "2022-12"):
        with rasterio.open(tmp_path / "out" / "months" / month / "class.tif") as src:
            classes, source, percent = src.read(1), src.read(2), src.read(3)
        assert classes.shape == (36, 40) and set(np.unique(classes)) <= set(range(1, 7))
        assert (source == SOURCE_DEEP).all()
        # the probability of the chosen 6-class group: at least its winning fine class (of 10), at most 1
        assert ((percent >= 10) & (percent <= 100)).all()
        with rasterio.open(tmp_path / "out" / "months" / month / "s1.tif") as src:
            vv = src.read(1)
        assert np.isfinite(vv).all() and -30 < float(np.median(vv)) < 5
    assert (tmp_path / "out" / "monitoring.html").exists()
