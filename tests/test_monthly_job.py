"""The main job end to end, its config, and atomic outputs."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio

from gee_fusion.errors import ConfigError, OutputError
from gee_fusion.io.atomic import atomic_path
from gee_fusion.io.cog import write_cog
from gee_fusion.monitoring.config import MonthlyJobConfig, load_monthly_config
from gee_fusion.monitoring.monthly import run_monthly


@pytest.mark.slow
@pytest.mark.real_data
def test_main_job_writes_cogs_png_and_summary(real_dir: Path, tmp_path: Path) -> None:
    slovenia = load_monthly_config(Path(__file__).parents[1] / "ee_scripts/configs/slovenia_monthly.yaml")
    cfg = slovenia.model_copy(
        update={"out": tmp_path / "out", "start": date(2016, 1, 1), "end": date(2017, 1, 1)}
    )
    result = run_monthly(cfg)
    stamps = json.loads((real_dir / "eolearn_slovenia/TestEOPatch/timestamps.json").read_text())
    assert result.months == 12
    assert result.images_used == sum(s.startswith("2016") for s in stamps)
    assert 0 < result.months_with_data < 12
    with rasterio.open(result.cog) as ds:
        assert ds.count == 12 and ds.crs.to_epsg() == 32633 and ds.shape == (101, 100)
        assert ds.descriptions[0] == "2016-01" and ds.descriptions[-1] == "2016-12"
        assert ds.profile["tiled"] and ds.profile["compress"].lower() == "deflate"
        ndvi = ds.read()
    with rasterio.open(result.count_cog) as ds:
        count = ds.read()
        assert ds.dtypes[0] == "uint16"
    assert np.isnan(ndvi[count == 0]).all() and np.isfinite(ndvi[count > 0]).all()
    assert Path(result.png).stat().st_size > 10_000
    summary = json.loads((tmp_path / "out" / f"{cfg.name}.json").read_text())
    assert summary["months"] == 12
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files
    assert "monthly composites" in result.summary()


def test_config_from_yaml_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "job.yaml"
    good.write_text("bands: [NDVI]\nstart: 2016-01-01\nend: 2016-06-01\nmethod: mean\n")
    cfg = load_monthly_config(good)
    assert cfg.method == "mean" and str(cfg.start) == "2016-01-01"
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: 2016-06-01\nend: 2016-01-01\n")
    with pytest.raises(ConfigError, match="end"):
        load_monthly_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("bandz: [NDVI]\n")
    with pytest.raises(ConfigError, match="bandz"):
        load_monthly_config(typo)
    with pytest.raises(ConfigError, match="Cannot read"):
        load_monthly_config(tmp_path / "missing.yaml")


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_a_killed_runs_temporaries_are_removed_by_the_next_write(tmp_path: Path) -> None:
    """kill -9 leaves hidden temporaries (GDAL's .ovr.tmp too); the next write of that target
    removes those of dead processes and keeps those of live ones."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    target = tmp_path / "map.tif"
    left = [tmp_path / f".map.tif.{dead_pid}.abcd.tif", tmp_path / f".map.tif.{dead_pid}.abcd.tif.ovr.tmp"]
    for path in left:
        path.write_text("half")
    (tmp_path / f".map.tif.{dead_pid}.efgh").mkdir()  # a streamed writer's folder
    alive = tmp_path / f".map.tif.{os.getppid()}.ijkl.tif"  # a running process's: kept
    alive.write_text("busy")
    other = tmp_path / ".other.tif.123.tif"  # another target's: not ours to remove
    other.write_text("x")
    write_cog(target, np.zeros((1, 4, 4), np.float32), crs="EPSG:32633", transform=(10, 0, 0, 0, -10, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "map.tif"])


def test_write_cog_roundtrip_and_bad_input(tmp_path: Path) -> None:
    data = np.arange(2 * 300 * 260, dtype=np.float32).reshape(2, 300, 260)
    path = write_cog(
        tmp_path / "x.tif",
        data,
        crs="EPSG:32631",
        transform=(10, 0, 300000, 0, -10, 5000000),
        band_names=["a", "b"],
    )
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(), data)
        assert ds.descriptions == ("a", "b")
        assert ds.overviews(1), "COG must carry overviews"
    with pytest.raises(OutputError, match="band names"):
        write_cog(
            tmp_path / "y.tif",
            data,
            crs="EPSG:32631",
            transform=(10, 0, 0, 0, -10, 0),
            band_names=["only-one"],
        )
    assert not (tmp_path / "y.tif").exists()


def test_outputs_get_the_usual_file_mode_and_backend_is_left_alone(tmp_path: Path) -> None:
    import os

    import matplotlib

    from gee_fusion.report.figures import month_grid_png

    before = matplotlib.get_backend()
    png = month_grid_png(tmp_path / "m.png", np.zeros((2, 4, 4), np.float32), ["a", "b"], title="t")
    assert matplotlib.get_backend() == before
    umask = os.umask(0)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_cog_bad_crs_and_nodata_are_output_errors(tmp_path: Path) -> None:
    data = np.zeros((1, 4, 4), np.uint8)
    with pytest.raises(OutputError):
        write_cog(tmp_path / "a.tif", data, crs="EPSG:999999", transform=(10, 0, 0, 0, -10, 0))
    with pytest.raises(OutputError, match="NaN nodata"):
        write_cog(
            tmp_path / "b.tif", data, crs="EPSG:32631", transform=(10, 0, 0, 0, -10, 0), nodata=float("nan")
        )
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_main_job_on_the_demo_world_with_scl_and_ndvi(tmp_path: Path) -> None:
    import gee_fusion
    from gee_fusion.local.world.config import DEFAULT_WORLD, WorldConfig

    gee_fusion.connect("local", world=WorldConfig(size_km=3.0))
    try:
        cfg = MonthlyJobConfig(
            collection="COPERNICUS/S2_SR_HARMONIZED",
            bands=["NDVI"],
            ndvi_from=("B8", "B4"),
            cloud_mask="scl",
            start="2021-06-01",
            end="2021-08-01",
            out=tmp_path,
            name="city",
        )
        result = run_monthly(cfg)
    finally:
        gee_fusion.connect("local", world=DEFAULT_WORLD)
    from gee_fusion.local.world import schedule

    expected = sum(
        1 for a in schedule.s2_acquisitions() if (a.when.year, a.when.month) in ((2021, 6), (2021, 7))
    )
    assert result.months == 2 and result.images_used == expected
    with rasterio.open(result.cog) as ds:
        assert ds.shape == (300, 300) and ds.crs.to_epsg() == 32631
        ndvi = ds.read()
    assert 0.2 < float(np.nanmean(ndvi)) < 0.9 and np.isfinite(ndvi).mean() > 0.5
