"""End to end on the demo world: patch export through earthengine-api + local engine + xee,
`gee-fusion train`, then `gee-fusion predict` over an area that is not a multiple of the tile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from gee_fusion.classes import class_table
from gee_fusion.cli import app
from gee_fusion.export.patch_store import open_patch_store
from gee_fusion.local.world.config import DEFAULT_WORLD as W

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

    with rasterio.open(out) as ds:  # class names travel with the map
        tags = ds.tags()
    assert json.loads(tags["class_names"])[str(table.codes[0])] == table.names[0]
    assert tags[f"CLASS_{table.codes[-1]}"] == table.names[-1]
    assert out.with_suffix(".png").stat().st_size > 5_000  # the preview with its legend

    bad = runner.invoke(app, ["predict", str(ckpt), "nowhere", "--out", str(tmp_path / "x.tif")])
    assert bad.exit_code == 2 and "AREA" in bad.output

    # a lon/lat box: mapped on the recipe's grid (EPSG:32631, 10 m)
    lon, lat = W.footprint[3]  # the world's north-west corner
    box = f"{lon + 0.02},{lat - 0.012},{lon + 0.026},{lat - 0.008}"
    res = runner.invoke(app, ["predict", str(ckpt), "--bbox", box, "--out", str(tmp_path / "box.tif"),
                              "--tile", "32", "--overlap", "8"])  # fmt: skip
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "box.tif") as ds:
        assert ds.crs.to_string() == W.crs and ds.res == (10.0, 10.0) and 40 <= ds.width <= 50
    # the Gulf of Guinea is refused before any work, saying where the data are
    far = runner.invoke(
        app, ["predict", str(ckpt), "--bbox", "1.05,-0.1,1.15,0.0", "--out", str(tmp_path / "f.tif")]
    )
    assert (
        far.exit_code == 2 and "No S2 data over the area" in far.output and "demo world covers" in far.output
    )
    assert not (tmp_path / "f.tif").exists()
    # an area two thirds west of the world is mapped, with a warning
    edge = f"{x0 - 400.0},{y1 - 3000.0},60,40"
    res = runner.invoke(app, ["predict", str(ckpt), edge, "--out", str(tmp_path / "e.tif"), "--tile", "32",
                              "--overlap", "8"])  # fmt: skip
    assert res.exit_code == 0 and "warning: 67% of the map" in res.output, res.output


def test_recipe_source_reads_strips_equal_to_the_whole_area() -> None:
    from gee_fusion.deep.datasets import normalise
    from gee_fusion.deep.infer.recipe_source import RecipeSource
    from gee_fusion.export.area import AreaConfig
    from gee_fusion.export.patch_store import BandStats
    from gee_fusion.export.patches import PatchExportConfig, fetch_area

    x0, y1 = W.origin
    area = AreaConfig(origin=(x0 + 5000.0, y1 - 5000.0), size_px=(40, 50))
    recipe = PatchExportConfig(area=area, months=[8, 11], sensors=["S1"])
    stats = {
        "S1": {
            b: BandStats(mean=-10.0 + i, std=3.0, q02=-25.0, q98=0.0)
            for i, b in enumerate(("VV", "VH", "VVVH"))
        }
    }
    src = RecipeSource(
        recipe, area.grid(), bands={"S1": ["VV", "VH", "VVVH"]}, stats=stats, normalisation="zscore",
        strip_rows=20,
    )  # fmt: skip
    whole = fetch_area(recipe).sensors["S1"][0]
    ref, _ = normalise(whole, stats["S1"], ["VV", "VH", "VVVH"], "zscore")
    for r0, r1 in ((0, 16), (10, 30), (30, 50), (0, 50)):
        part = src.read(slice(r0, r1), slice(5, 37))
        np.testing.assert_allclose(part["S1"], ref[:, :, r0:r1, 5:37], rtol=1e-6)
        assert part["S1_pad"].tolist() == [False, False] and part["valid"].all()
        assert part["S1_doy"].tolist() == [227, 319]
    assert src.strips_fetched == 4  # (0,20) serves 0-16; 10-30 refetches; 30-50; then the whole

    src.begin_band(slice(8, 30))  # a column band: fetches cover its columns only
    for r0, r1, c0, c1 in ((0, 16, 8, 24), (4, 20, 14, 30), (30, 46, 8, 24)):
        part = src.read(slice(r0, r1), slice(c0, c1))
        np.testing.assert_allclose(part["S1"], ref[:, :, r0:r1, c0:c1], rtol=1e-6)
        assert part["valid"].shape == (r1 - r0, c1 - c0) and src.columns == (8, 30)
    assert src.strips_fetched == 6
    part = src.read(slice(0, 10), slice(0, 40))  # leaving the band goes back to whole rows
    np.testing.assert_allclose(part["S1"], ref[:, :, 0:10, 0:40], rtol=1e-6)
    assert src.columns == (0, 40) and src.strips_fetched == 7
