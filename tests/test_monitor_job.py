"""The monitoring job end to end on a small part of the demo city around a planted construction
site: monthly class maps, an urbanisation alert in the month the truth says, the urban-area
series and the report; a rerun only processes new months."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gee_fusion.cli import app
from gee_fusion.local.world.changes import planted_changes
from gee_fusion.local.world.config import DEFAULT_WORLD as W


def config(tmp_path: Path) -> Path:
    """A 64 x 64 px area around the construction site built in 2023-01."""
    sites = [c for c in planted_changes(W) if c.kind == "construction" and str(c.end) == "2023-01-01"]
    x0, y1 = W.origin
    left, top = x0 + (sites[0].col0 - 24) * 10.0, y1 - (sites[0].row0 - 24) * 10.0
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        f"area: {{origin: [{left}, {top}], size_px: [64, 64]}}\n"
        'start: "2022-09"\nreference_months: ["2021-01", "2021-04", "2021-07", "2021-10"]\n'
        "points_per_class: 40\nrf: {number_of_trees: 12}\n"
        f"sdg: {{population_csv: {tmp_path / 'population.csv'}, district_km: 0.32}}\n"
    )
    rows = [
        f"r{r}c{c},{year},{1000 + 50 * (year - 2022)}"
        for r in (0, 1)
        for c in (0, 1)
        for year in (2022, 2023)
    ]
    (tmp_path / "population.csv").write_text("district,year,population\n" + "\n".join(rows) + "\n")
    return cfg


@pytest.mark.slow
def test_the_job_alerts_in_the_month_the_site_is_built_and_resumes(tmp_path: Path) -> None:
    cfg, out = config(tmp_path), tmp_path / "out"
    res = CliRunner().invoke(app, ["monitor", str(cfg), "--until", "2023-02", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "6 new month(s)" in res.output
    alerts = json.loads((out / "months/2023-01/alerts.geojson").read_text())["features"]
    assert alerts, "the construction site finished in 2023-01 raises an alert that month"
    site = max(alerts, key=lambda f: f["properties"]["area_m2"])["properties"]
    assert site["onset"] == "2023-01" and site["to_class"] in (1, 2) and site["area_m2"] >= 5000
    assert site["type"] == "urbanisation"
    assert site["confidence"] > 0.5  # Sentinel-1 saw the new walls
    assert 0.5 < site["class_confidence"] <= 1.0  # the forests' vote share for the new state
    import rasterio

    with rasterio.open(out / "months/2023-01/class.tif") as src:
        assert src.descriptions == ("class", "source", "confidence")
        percent, classes = src.read(3), src.read(1)
        assert ((percent >= 17) & (percent <= 100))[classes > 0].all()
    with rasterio.open(out / "changes.tif") as src:
        assert src.descriptions[-1] == "class_confidence"
        urbanised, sure = src.read(1) > 0, src.read(src.count)
        assert (sure[urbanised] > 0).all() and (
            sure[~urbanised & (src.read(3) == 0) & (src.read(6) == 0)] == 0
        ).all()
    with (out / "urban_area.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["month"] == "2022-09" and len(rows) == 6
    assert float(rows[-1]["built_up_km2"]) > float(rows[0]["built_up_km2"])
    page = (out / "monitoring.html").read_text()
    assert "Alerts (" in page and "<th>class confidence</th>" in page
    with (out / "sdg_11_3_1.csv").open() as fh:
        sdg = list(csv.DictReader(fh))
    assert {r["district"] for r in sdg} <= {"r0c0", "r0c1", "r1c0", "r1c1"} and sdg
    assert all(r["from"] == "2022-09" and r["to"] == "2023-02" and float(r["pgr"]) > 0 for r in sdg)
    first = (out / "months/2022-09/class.tif").stat().st_mtime_ns
    again = CliRunner().invoke(app, ["monitor", str(cfg), "--until", "2023-03", "--out", str(out)])
    assert again.exit_code == 0 and "1 new month(s)" in again.output, again.output
    assert (out / "months/2022-09/class.tif").stat().st_mtime_ns == first  # done months are kept


def test_bad_months_are_one_line_errors(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    res = CliRunner().invoke(app, ["monitor", str(cfg), "--until", "2022-01", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "comes before the first month" in res.output
    res = CliRunner().invoke(app, ["monitor", str(cfg), "--until", "June", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "YYYY-MM" in res.output


def test_the_script_refuses_bad_arguments(tmp_path: Path) -> None:
    from tests.scripts import load_script

    script = load_script("monthly_monitoring")
    assert script.main([]) == 2
    assert script.main([str(tmp_path / "missing.yaml"), "2023-01"]) == 2
