"""The comparison report: metrics.json from one confusion matrix per model, a self-contained HTML
page, refusal to mix splits or class tables, and (where Chromium is installed) a real browser
rendering it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from gee_fusion.classes import class_table
from gee_fusion.errors import DataError
from gee_fusion.io.cog import write_cog
from gee_fusion.metrics.confusion import ConfusionMatrix
from gee_fusion.report.comparison import (
    CloudRecord,
    ModelRun,
    best_per_evaluation,
    model_metrics,
    read_deep_run,
)
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
    assert [(b["evaluated_on"], b["name"]) for b in data["best"]] == [
        ("samples", "in-cloud RF"),
        ("patches", "unet"),
    ]
    assert data["cv"]["leakage_points"] == pytest.approx(16.0)
    assert data["cv"]["random_pixel"]["std"] == 0.01 and set(data["ablation"]) == {"S1", "S1+S2"}
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 4 and "http" not in page.split("<body>")[1][:200]
    assert "Leakage: random-pixel CV reports +16.0 points" in page and "a note" in page


def test_the_best_model_is_picked_among_models_scored_on_the_same_pixels(tmp_path: Path) -> None:
    rf, knn, deep = runs()  # weighted F1: deep > rf > knn, but deep is scored on other pixels
    fewer = ConfusionMatrix(list(TABLE.names), codes=list(TABLE.codes)).update(
        np.arange(10).repeat(5), np.arange(10).repeat(5)
    )  # a perfect model on 50 sample pixels only: not the same pixels as rf and knn
    perfect = ModelRun("svm", "classic", fewer, "s1", "local", "samples")
    best = best_per_evaluation([model_metrics(r) for r in (rf, knn, deep, perfect)])
    assert [(b["evaluated_on"], b["pixels"], b["name"], b["models"]) for b in best] == [
        ("samples", 2000, "in-cloud RF", 2), ("patches", 2000, "unet", 1), ("samples", 50, "svm", 1),
    ]  # fmt: skip
    _, record = write_report(tmp_path, runs=[rf, knn, deep])
    data = json.loads(record.read_text())
    assert [b["name"] for b in data["best"]] == ["in-cloud RF", "unet"]
    assert data["best"][0]["f1_weighted"] == pytest.approx(data["models"][0]["f1_weighted"])
    page = (tmp_path / "report.html").read_text()
    highlighted = re.findall(r"<tr class=best><td>([^<]+)</td>", page)
    assert highlighted == ["in-cloud RF", "unet"]  # one best row per evaluation set, knn not


def test_every_model_has_per_class_precision_recall_f1_and_iou_in_the_page(tmp_path: Path) -> None:
    report, record = write_report(tmp_path, runs=runs())
    models = json.loads(record.read_text())["models"]
    page = report.read_text()
    assert "<h2>Precision, recall, F1 and IoU per class</h2>" in page
    for m in models:
        start = page.index(f"<details><summary>{m['name']}</summary>")
        table = page[start : page.index("</details>", start)]
        assert "<th>precision</th><th>recall</th><th>F1</th><th>IoU</th>" in table
        for c in m["per_class"]:
            assert set(c) >= {"precision", "recall", "f1", "iou"}
            cells = [c["name"], c["support"], *(f"{c[k]:.3f}" for k in ("precision", "recall", "f1", "iou"))]
            assert "<tr><td>" + "</td><td>".join(str(v) for v in cells) + "</td></tr>" in table


def test_importance_charts_are_chosen_by_family_and_model(tmp_path: Path) -> None:
    rf, knn, deep = runs()
    imp = {"NDVI": 2.0, "VV_1": 1.0}
    chosen = [
        rf,
        ModelRun("extra_trees (scikit-learn)", "classic", knn.matrix, "s1", "local", "samples", imp,
                 key="extra_trees"),
        ModelRun("random_forest (scikit-learn)", "classic", knn.matrix, "s1", "local", "samples", imp,
                 key="random_forest"),
        ModelRun("RF-like deep", "deep", deep.matrix, "s1", "local", "patches", imp, key="unet"),
    ]  # fmt: skip
    page = write_report(tmp_path, runs=chosen)[0].read_text()
    assert re.findall(r'alt="importance: ([^"]+)"', page) == ["in-cloud RF", "extra_trees (scikit-learn)"]


def class_maps(folder: Path) -> tuple[Path, dict[str, Path]]:
    """A reference and two model maps (10-class codes, 64 x 64 px, COGs with the colour table)."""
    rng = np.random.default_rng(0)
    reference = np.kron(rng.choice(np.array(TABLE.codes), size=(8, 8)), np.ones((8, 8))).astype(np.uint8)
    reference[:4] = 255  # a strip without labels
    maps = {"reference": reference}
    for name, wrong in (("rf", 0.3), ("unet", 0.1)):
        flip = np.kron(rng.random((16, 16)) < wrong, np.ones((4, 4), bool))
        maps[name] = np.where(
            flip, rng.choice(np.array(TABLE.codes), size=reference.shape), reference
        ).astype(np.uint8)
    transform = (10.0, 0.0, 0.0, 0.0, -10.0, 640.0)
    paths = {
        name: write_cog(folder / f"{name}.tif", arr, crs="EPSG:32631", transform=transform, nodata=255,
                        colormap=TABLE.colormap(), resampling="nearest")
        for name, arr in maps.items()
    }  # fmt: skip
    return paths.pop("reference"), paths


def mapped_runs(folder: Path) -> tuple[list[ModelRun], Path]:
    """``runs()`` with maps for the in-cloud RF and the deep model, and the reference map."""
    reference, maps = class_maps(folder)
    rf, knn, deep = runs()
    return [
        dataclasses.replace(rf, map_path=maps["rf"]),
        knn,
        dataclasses.replace(deep, map_path=maps["unet"]),
    ], reference


def test_the_maps_show_each_mapped_model_beside_the_reference_and_say_why_baselines_are_not(
    tmp_path: Path,
) -> None:
    models, reference = mapped_runs(tmp_path / "maps")
    page = write_report(tmp_path / "r", runs=models, reference_map=reference)[0].read_text()
    maps = page[page.index("<h2>Maps</h2>") :]
    for alt in ("reference", "in-cloud RF", "unet", "agreement with the reference"):
        assert f'alt="{alt}"' in maps, alt
    assert 'alt="knn"' not in maps
    assert "Mapped: in-cloud RF, unet." in maps and "baselines are not mapped" in maps


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


def _share_of(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: float = 8.0) -> float:
    """Share of the screenshot's pixels within ``tolerance`` of the colour ``rgb`` (each channel)."""
    return float((np.abs(pixels - np.array(rgb, dtype=np.float64)) <= tolerance).all(axis=-1).mean())


@pytest.mark.skipif(_browser() is None, reason="no Chromium on this machine (Debian: apt install chromium)")
def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    models, reference = mapped_runs(tmp_path / "maps")
    cv = {"random_pixel": {"mean": 0.97, "std": 0.01, "folds": [0.96, 0.98]},
          "spatial_block": {"mean": 0.81, "std": 0.05, "folds": [0.76, 0.86]}}  # fmt: skip
    cloud = CloudRecord(models[:2], cv, {"S1+S2": models[0].matrix}, "s1", {})
    report, _ = write_report(tmp_path / "r", runs=models, cloud=cloud, reference_map=reference)
    browser = [str(_browser()), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1200,6000", report.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.std() > 20  # not blank
    assert (pixels[..., 2] > pixels[..., 0] + 40).mean() > 0.005  # the confusion matrices' blues
    # the agreement map's green (agrees) and red (disagrees), and the maps' class colours
    assert _share_of(pixels, (51, 153, 76)) > 0.003 and _share_of(pixels, (217, 51, 51)) > 0.0003
    assert _share_of(pixels, TABLE.colors[5]) > 0.0003  # arable land in the reference and model maps
    assert _share_of(pixels, (243, 243, 243)) > 0.002  # the tables' header cells
    dom = subprocess.run(
        [*browser, "--dump-dom", report.as_uri()], check=True, capture_output=True, timeout=120, text=True
    ).stdout  # the page as the browser built it: tables and every figure
    assert "<td>in-cloud RF</td>" in dom and "<td>unet</td>" in dom and "<th>F1 weighted</th>" in dom
    assert "<th>precision</th><th>recall</th><th>F1</th><th>IoU</th>" in dom
    assert "<td>spatial blocks</td>" in dom and dom.count("data:image/png;base64,") >= 8


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
