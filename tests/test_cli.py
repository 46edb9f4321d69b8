"""The CLI as a new user meets it: bad input gets one clear error line (exit 2, no traceback),
outputs are checked before any work, and `gee-fusion demo` runs anywhere on the demo world."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ee
import pytest
from typer.testing import CliRunner

from gee_fusion.cli import app
from gee_fusion.errors import EngineError
from gee_fusion.export.area import AreaConfig, LonLatBox
from gee_fusion.export.fetch import open_collection

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def assert_user_error(code: int, output: str, *needles: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output and "pydantic.dev" not in output, output
    for needle in needles:
        assert needle in output, (needle, output)


def test_demo_and_monthly_config_errors_are_one_line(tmp_path: Path) -> None:
    assert_user_error(*run("monthly", str(tmp_path / "missing.yaml")), "error:", "missing.yaml")
    assert_user_error(*run("demo", "--config", str(tmp_path / "missing.yaml")), "error:", "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert_user_error(*run("monthly", str(empty)), "is empty")
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: mediam\nbandz: [NDVI]\n")
    code, out = run("monthly", str(bad))
    assert_user_error(code, out, "bad.yaml", "method", "'mediam'", "median", "bandz", "unknown key")
    bad.write_text("scheme: 12\nmonthz: [6]\n")
    code, out = run("demo", "--config", str(bad))
    assert_user_error(code, out, "bad.yaml", "scheme", "12", "monthz", "unknown key")


def test_demo_output_is_checked_before_any_work(tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    assert_user_error(*run("demo", "--out", str(a_file)), "is a file")
    # without --out, the YAML's `out` is the output folder
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"out: {a_file}\n")
    assert_user_error(*run("demo", "--config", str(cfg)), str(a_file), "is a file")
    assert_user_error(*run("monthly", str(cfg)), str(a_file), "is a file")


def test_an_empty_period_names_the_filter_that_emptied_it(tmp_path: Path) -> None:
    cfg = tmp_path / "old.yaml"
    cfg.write_text("start: 2012-01-01\nend: 2012-03-01\n")  # before Sentinel-2
    code, out = run("monthly", str(cfg), "--out", str(tmp_path / "o"))
    assert_user_error(code, out, "No image left after filter", "date 2012-01-01..2012-03-01")


def test_xee_on_an_empty_collection_is_an_engine_error() -> None:
    empty = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2012-01-01", "2012-02-01")
    with pytest.raises(EngineError, match="collection to open is empty"):
        open_collection(empty, AreaConfig(size_px=(16, 16)).grid())


def test_train_option_checks(tmp_path: Path) -> None:
    exp = Path(__file__).parents[1] / "training" / "unet_vgg16_s1s2_10.yaml"
    for bad in ("0", "-1"):
        code, out = run("train", str(exp), "--max-epochs", bad)
        assert code == 2 and "max-epochs" in out and "Traceback" not in out, out
    assert_user_error(*run("train", str(exp), "--device", "tpu"), "Unknown device 'tpu'")


def test_predict_bad_checkpoints_and_areas(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(os.urandom(2048))
    assert_user_error(
        *run("predict", str(junk), "demo", "--out", str(tmp_path / "m.tif")), "not a checkpoint"
    )
    code, out = run("predict", str(junk), "1.05,49.40,1.15,49.48", "--out", str(tmp_path / "m.tif"))
    assert_user_error(code, out, "--bbox 1.05,49.40,1.15,49.48")
    assert_user_error(*run("predict", str(junk), "--bbox", "1.2,49.5,1.1,49.4"), "west < east")
    assert_user_error(*run("predict", str(junk)), "either AREA or --bbox")
    assert_user_error(*run("predict", str(junk), "demo", "--out", str(tmp_path)), "is a folder")


def test_lonlat_box_becomes_the_covering_rectangle() -> None:
    box = LonLatBox(1.06, 49.41, 1.13, 49.46)
    area = box.to_area("EPSG:32631", scale=10.0)
    grid = area.grid()
    assert grid.crs == "EPSG:32631" and grid.transform[0] == 10.0
    assert grid.transform[2] % 10 == 0 and grid.transform[5] % 10 == 0  # snapped to the 10 m lattice
    from rasterio.warp import transform_bounds

    x0, y0, x1, y1 = transform_bounds("EPSG:4326", "EPSG:32631", *box.bounds())
    gx0, gy0, gx1, gy1 = grid.bounds()
    assert gx0 <= x0 and gy0 <= y0 and gx1 >= x1 and gy1 >= y1  # covers the box
    assert gx1 - x1 < 10 and x0 - gx0 < 10 and gy1 - y1 < 10 and y0 - gy0 < 10  # and no more


@pytest.mark.slow
def test_monthly_job_runs_outside_the_repository_without_real_samples(tmp_path: Path) -> None:
    """A user's clone has no ../shared: the monthly job runs on the demo world from any folder."""
    cfg = tmp_path / "short.yaml"
    cfg.write_text("start: 2021-06-01\nend: 2021-08-01\nname: short\n")
    env = {**os.environ, "GEE_FUSION_REAL_DATA": str(tmp_path / "no-such-folder")}
    exe = Path(sys.executable).with_name("gee-fusion")
    out = subprocess.run(
        [str(exe), "monthly", str(cfg), "--out", "here"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "2 monthly composites" in out.stdout
    written = sorted(p.name for p in (tmp_path / "here").iterdir())
    assert written == ["short.json", "short.png", "short.tif", "short_count.tif"], written


def test_patches_command_prints_its_stages_and_checks_the_store_path(tmp_path: Path) -> None:
    from gee_fusion.local.world.config import DEFAULT_WORLD as W

    x0, y1 = W.origin
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        f"area: {{origin: [{x0 + 3000.0}, {y1 - 3000.0}], size_px: [64, 64]}}\n"
        "months: [7]\nsensors: [S1]\npatch_size: 32\nblock_patches: 1\nprior_asset: null\n"
        "split_fractions: [0.5, 0.25, 0.25]\n"
    )
    taken = tmp_path / "taken.zarr"
    taken.write_text("x")
    assert_user_error(*run("patches", str(cfg), "--out", str(taken)), "is a file")
    code, out = run("patches", str(cfg), "--out", str(tmp_path / "s.zarr"))
    assert code == 0, out
    assert "64 x 64 px" in out and "S1: 1 months x 3 bands" in out and "patch store written" in out
    experiment = tmp_path / "e.yaml"
    experiment.write_text("name: x\ndata: {store: s.zarr}\nmodel: {name: unet, sensors: [S1]}\n")
    assert_user_error(*run("patches", str(experiment)), "no `patches` section")
