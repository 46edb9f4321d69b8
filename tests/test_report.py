"""The comparison report: metrics.json from one confusion matrix per model, a self-contained HTML
page, refusal to mix splits or class tables, and (where Chromium is installed) a real browser
rendering it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from gee_fusion.classes import class_table
from gee_fusion.errors import DataError
from gee_fusion.metrics.confusion import ConfusionMatrix
from gee_fusion.report.comparison import CloudRecord, ModelRun, read_deep_run
from gee_fusion.report.html import write_report

TABLE = class_table(10)


def matrix(seed: int, accuracy: float) -> tuple[ConfusionMatrix, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, 2000)
    p = np.where(rng.random(2000) < accuracy, y, rng.integers(0, 10, 2000))
    return ConfusionMatrix(list(TABLE.names), codes=list(TABLE.codes)).update(y, p), y, p


def runs(split: str = "s1") -> list[ModelRun]:
    rf, _, _ = matrix(0, 0.8)
    knn, _, _ = matrix(1, 0.6)
    deep, _, _ = matrix(2, 0.9)
    return [
        ModelRun("in-cloud RF", "in-cloud", rf, split, "local", "samples", {"NDVI": 3.0, "VV_1": 1.0}),
        ModelRun("knn", "classic", knn, split, "local", "samples"),
        ModelRun("unet", "deep", deep, split, "local", "patches"),
    ]


def test_metrics_json_holds_every_model_from_its_matrix(tmp_path: Path) -> None:
    cv = {"random_pixel": {"mean": 0.97, "std": 0.01, "folds": [0.96, 0.98]},
          "spatial_block": {"mean": 0.81, "std": 0.05, "folds": [0.76, 0.86]}}  # fmt: skip
    cloud = CloudRecord(runs()[:2], cv, {"S1": runs()[1].matrix, "S1+S2": runs()[0].matrix}, "s1", {})
    report, record = write_report(tmp_path, runs=runs(), cloud=cloud, notes=["a note"])
    data = json.loads(record.read_text())
    assert [m["name"] for m in data["models"]] == ["in-cloud RF", "knn", "unet"]
    _, y, p = matrix(2, 0.9)
    deep = data["models"][2]
    assert deep["kappa"] == pytest.approx(cohen_kappa_score(y, p))
    assert deep["f1_weighted"] == pytest.approx(f1_score(y, p, average="weighted"))
    assert deep["f1_macro"] == pytest.approx(f1_score(y, p, average="macro"))
    assert ConfusionMatrix.from_dict(deep["matrix"]).total == len(y)
    assert set(deep["aggregated_6"]) == {"oa", "kappa", "f1_weighted", "f1_macro", "miou"}
    assert deep["aggregated_6"]["oa"] >= deep["oa"]  # merging classes only removes confusions
    assert data["best"]["name"] == "unet"
    assert data["cv"]["leakage_points"] == pytest.approx(16.0)
    assert data["cv"]["random_pixel"]["std"] == 0.01 and set(data["ablation"]) == {"S1", "S1+S2"}
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 4 and "http" not in page.split("<body>")[1][:200]
    assert "Leakage: random-pixel CV reports +16.0 points" in page and "a note" in page


def test_a_report_never_mixes_splits_or_class_tables(tmp_path: Path) -> None:
    mixed = runs()
    mixed[2] = ModelRun("unet", "deep", mixed[2].matrix, "other", "local", "patches")
    with pytest.raises(DataError, match=r"other held-out blocks .* never mixes splits"):
        write_report(tmp_path, runs=mixed)
    six = ConfusionMatrix(list(class_table(6).names), codes=list(class_table(6).codes))
    other_table = [*runs()[:2], ModelRun("unet6", "deep", six, "s1", "local", "patches")]
    with pytest.raises(DataError, match="unet6 predicts another class table \\(6 classes"):
        write_report(tmp_path, runs=other_table)
    assert not (tmp_path / "report.html").exists()
    run = tmp_path / "old_run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test": runs()[0].matrix.to_dict()}))
    with pytest.raises(DataError, match="no test matrix or split identity"):
        read_deep_run(run)


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no Chromium on this machine (Debian: apt install chromium)")
def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    report, _ = write_report(tmp_path, runs=runs())
    shot = tmp_path / "shot.png"
    subprocess.run(
        [str(_browser()), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1200,2400", report.as_uri()], check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.std() > 20  # not blank
    blue = (pixels[..., 2] > pixels[..., 0] + 40).mean()  # the confusion matrices' blues
    assert blue > 0.005


def test_cli_report_from_an_rf_record_and_a_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gee_fusion.cli import app

    record = tmp_path / "rf.json"
    rf = runs()[0].matrix.to_dict()
    record.write_text(json.dumps({
        "format": "gee_fusion.cloud_rf/1", "split_id": "s1", "engine": "local", "map": None,
        "rf": {"matrix": rf, "importance": {"NDVI": 1.0}, "oob_error": 0.1,
               "cv": {"random_pixel": {"mean": 0.9, "std": 0.0, "folds": [0.9]},
                      "spatial_block": {"mean": 0.8, "std": 0.0, "folds": [0.8]}}},
        "baselines": [
            {"name": "knn", "matrix": runs()[1].matrix.to_dict(), "fit_seconds": 0.1, "importance": {}}
        ],
    }))  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test": runs()[2].matrix.to_dict(), "split_id": "other"}))
    cli = CliRunner()
    res = cli.invoke(app, ["report", "--rf", str(record), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0 and "2 models compared" in res.output, res.output
    res = cli.invoke(app, ["report", "--rf", str(record), "--run", str(run), "--out", str(tmp_path / "r2")])
    assert res.exit_code == 2 and "never mixes splits" in res.output
