"""End to end on the demo world: patch export through earthengine-api + local engine + xee,
`gee-fusion train`, then `gee-fusion predict` over an area that is not a multiple of the tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from gee_fusion.cli import app
from gee_fusion.deep.datasets import class_table
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.patch_store import open_patch_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
]


def test_export_train_predict(tmp_path: Path) -> None:
    x0, y1 = W.origin
    origin = [x0 + 3000.0, y1 - 3000.0]
    exp = {
        "name": "e2e",
        "seed": 1,
        "out_dir": str(tmp_path / "runs"),
        "patches": {"area": {"origin": origin, "size_px": [96, 96]}, "patch_size": 32, "block_patches": 1,
                    "months": [7, 9], "split_fractions": [0.6, 0.2, 0.2]},
        "data": {"store": str(tmp_path / "p.zarr"), "batch_size": 4, "classes": 10,
                 "bands": {"S1": ["VV", "VH", "VVVH"]}},
        "model": {"name": "convlstm", "sensors": ["S1", "S2"], "hidden": 8, "base_width": 4,
                  "inception": True},
        "optim": {"max_epochs": 2},
    }  # fmt: skip
    cfg = tmp_path / "e2e.yaml"
    cfg.write_text(yaml.safe_dump(exp))
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(cfg), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    store = open_patch_store(tmp_path / "p.zarr")
    assert store.ds.sizes["patch"] == 9 and store.bands("S1") == ["VV", "VH", "VVVH"]
    assert store.manifest["engine"] == "local" and store.manifest["recipe"]["months"] == [7, 9]
    ckpt = tmp_path / "runs" / "e2e" / "checkpoints" / "best.ckpt"
    assert ckpt.is_file() and "weighted_f1" in res.output

    out = tmp_path / "map.tif"
    area = f"{origin[0]},{origin[1]},70,45"
    res = runner.invoke(
        app, ["predict", str(ckpt), area, "--out", str(out), "--tile", "32", "--overlap", "8"]
    )
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (70, 45) and ds.crs.to_string() == W.crs
        assert ds.transform.c == origin[0] and ds.transform.f == origin[1]
        codes = ds.read(1)
        cmap = ds.colormap(1)
    table = class_table(10)
    assert set(np.unique(codes)) <= {*table.codes, 255}
    assert cmap[table.codes[0]][:3] == table.colors[0]

    bad = runner.invoke(app, ["predict", str(ckpt), "nowhere", "--out", str(tmp_path / "x.tif")])
    assert bad.exit_code == 2 and "AREA" in bad.output
