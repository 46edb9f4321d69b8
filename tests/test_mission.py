"""The main job end to end on a small part of the demo city: the in-cloud RF, baselines and a deep
model in one report, from the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gee_fusion.cli import app
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.mission import MissionConfig, load_mission_config
from gee_fusion.report.comparison import PATCHES, SAMPLES
from tests.scripts import EE_SCRIPTS

X0, Y1 = W.origin


def test_the_default_main_job_is_the_mission() -> None:
    cfg = MissionConfig()
    assert cfg.area.grid().width * 10 <= 8000 and cfg.deep.model["name"] == "unet"
    assert len(cfg.baselines) >= 3 and cfg.sampling.folds == 5
    # the config `gee-fusion demo --config` points to: the defaults written out
    shipped = load_mission_config(EE_SCRIPTS / "configs" / "demo_city.yaml")
    assert shipped.model_dump() == cfg.model_dump()


@pytest.mark.slow
def test_the_main_job_writes_one_report_comparing_every_family(tmp_path: Path) -> None:
    cfg = tmp_path / "small.yaml"
    cfg.write_text(
        f"area: {{origin: [{X0 + 3000.0}, {Y1 - 3000.0}], size_px: [192, 192]}}\nmonths: [7, 8]\n"
        "block_patches: 1\nsampling: {points_per_class: 40, folds: 3}\nrf: {number_of_trees: 20}\n"
        "baselines: [random_forest, extra_trees, knn]\n"
        "deep: {max_epochs: 1, device: cpu,\n"
        "       model: {name: unet, encoder: vgg16, base_width: 8, sensors: [S1, S2]}}\n"
    )
    res = CliRunner().invoke(app, ["demo", "--config", str(cfg), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "Report:" in res.output
    assert f"Best model on {SAMPLES} (" in res.output and f"Best model on {PATCHES} (" in res.output
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    families = [m["family"] for m in metrics["models"]]
    assert families.count("in-cloud") == 2 and families.count("classic") == 3 and families.count("deep") == 1
    rf_on_patches, deep = metrics["models"][-2], metrics["models"][-1]
    assert rf_on_patches["name"].endswith("map on the test patches")
    assert rf_on_patches["pixels"] == deep["pixels"]  # scored on the very pixels the deep model is
    assert {"mean", "std"} <= set(metrics["cv"]["random_pixel"]) and {"mean", "std"} <= set(
        metrics["cv"]["spatial_block"]
    )
    assert len({m["split_id"] for m in metrics["models"]}) == 1
    for m in metrics["models"]:
        assert m["engine"] == "local", m["name"]
        assert m["per_class"] and all({"precision", "recall", "f1", "iou"} <= set(c) for c in m["per_class"])
    # the best model of each evaluation set, among models scored on the same pixels only
    best = {b["evaluated_on"]: b for b in metrics["best"]}
    assert set(best) == {SAMPLES, PATCHES} and best[SAMPLES]["models"] == 4 and best[PATCHES]["models"] == 2
    for b in best.values():
        rivals = [m for m in metrics["models"] if m["evaluated_on"] == b["evaluated_on"]]
        assert {m["pixels"] for m in rivals} == {b["pixels"]}
        assert b["f1_weighted"] == max(m["f1_weighted"] for m in rivals)
    page = (out / "report.html").read_text()
    assert "Maps" in page and "agreement with the reference" in page and "baselines are not mapped" in page
    assert "<h2>Learning curves of the deep runs</h2>" in page and 'alt="learning curves: ' in page
    assert "<h2>Precision, recall, F1 and IoU per class</h2>" in page
    charts = re.findall(r'alt="importance: ([^"]+)"', page)
    assert charts == [metrics["models"][0]["name"], "extra_trees (scikit-learn)"]  # not random_forest's
    for written in ("reference.tif", "cloud_rf/cloud_rf_map.tif", "runs/deep/map.tif", "runs/deep/map.png"):
        assert (out / written).exists(), written
