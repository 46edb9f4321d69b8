"""`gee-fusion algorithms --coverage`: the Earth Engine calls of scripts, and which the local engine lacks."""

from __future__ import annotations

import json
from pathlib import Path

import ee
from typer.testing import CliRunner

from gee_fusion.cli import app
from gee_fusion.local.coverage import graph_algorithms, missing_in, scan_paths, scan_text

JS = """
// Principal components, as in the Earth Engine guide
var arrays = image.toArray();
var covar = arrays.reduceRegion({reducer: ee.Reducer.centeredCovariance(), geometry: region});
var eigens = ee.Array(covar.get('array')).eigen();  /* a comment: .notAnAlgorithm( */
var pcs = ee.Image(eigens.slice(1, 1)).matrixMultiply(arrays.toArray(1));
var pretend = image.glcmTexture({size: 3}).filterDate('2020-01-01', '2021-01-01');
"""

PY = """
import ee
ee.Initialize()
img = ee.Image('COPERNICUS/S2_SR_HARMONIZED/x').normalizedDifference(['B8', 'B4'])
# img.cumulativeCost(source, 1000)   <- a comment, not a call
lines = img.reduceToVectors(scale=10)
"""


def test_static_and_method_calls_are_found_without_running_anything() -> None:
    calls = {c.label: c for c in scan_text(JS, language="js")}
    assert {"Reducer.centeredCovariance", "Array", "Image.glcmTexture", ".matrixMultiply"} <= set(calls)
    assert ".toArray" in calls and "Image.toArray" in calls[".toArray"].candidates
    assert not any("notAnAlgorithm" in label for label in calls)
    assert "filterDate" not in {label.lstrip(".") for label in calls}  # a client-side helper, no algorithm
    py = {c.label for c in scan_text(PY, language="py")}
    assert "Image.normalizedDifference" in py and "Image.reduceToVectors" in py
    assert "Image.cumulativeCost" not in py


def test_a_folder_report_weights_calls_by_files_and_lists_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "pca.js").write_text(JS)
    (tmp_path / "script.py").write_text(PY)
    notebook = {"cells": [{"cell_type": "code", "source": ["x = img.glcmTexture(3)\n"]},
                          {"cell_type": "markdown", "source": ["img.reduceToVectors()"]}]}  # fmt: skip
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "guide.md").write_text(
        "Text `img.unmix()` inline.\n\n```js\nvar m = img.unmix([a, b]);\n```\n"
    )
    report = scan_paths([tmp_path])
    assert report.files == 4
    assert report.uses["Image.glcmTexture"] == 2  # the script and the notebook's code cell
    assert report.uses["Image.reduceToVectors"] == 1  # the markdown cell is not code
    assert report.uses["Image.unmix"] == 1  # from the fenced block
    missing = dict(report.missing())
    assert ".matrixMultiply" not in missing and "Reducer.centeredCovariance" not in missing
    total = sum(report.uses.values())
    covered = total - sum(missing.values())
    assert abs(report.share - covered / total) < 1e-12
    assert report.to_dict(top=3)["files"] == 4


def test_the_graph_of_a_built_object_names_its_algorithms() -> None:
    image = ee.Image.constant(1).add(2).toArray()
    assert {"Image.constant", "Image.add", "Image.toArray"} <= graph_algorithms(image)
    assert missing_in(image) == []
    assert missing_in(ee.Image.constant(1).glcmTexture(3)) == ["Image.glcmTexture"]


def test_cli_coverage_lists_missing_calls_and_the_share(tmp_path: Path) -> None:
    (tmp_path / "pca.js").write_text(JS)
    result = CliRunner().invoke(app, ["algorithms", "--coverage", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Image.glcmTexture" in result.output
    assert "covers" in result.output and "% of the calls" in result.output
    bad = CliRunner().invoke(app, ["algorithms", "--coverage", str(tmp_path / "absent")])
    assert bad.exit_code == 2 and "does not exist" in bad.output
