"""Batch exports: the task requests earthengine-api sends for each destination, validated offline;
the local engine running them (files, splits, assets, Earth Engine's failures); the job and
`gee-fusion export --batch`; and the batch proposal of an interactive export that is too large."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

import gee_fusion
from gee_fusion.cli import app
from gee_fusion.errors import BatchSuggestedError, ConfigError, ExportError
from gee_fusion.export.batch import BatchConfig, check_task_config, image_task, start_task
from gee_fusion.export.image_export import export_image, prepared_image
from gee_fusion.export.job import ExportConfig, run_batch_export, run_export
from gee_fusion.grid import PixelGrid
from gee_fusion.local import tasks
from gee_fusion.local.catalog import CATALOG
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from tests import export_data

X0, Y1 = W.origin
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def exports(local_engine: gee_fusion.Connection, tmp_path: Path) -> Iterator[Path]:
    export_data.register()
    folder = tmp_path / "ee_exports"
    tasks.set_exports_dir(folder)
    yield folder
    tasks.set_exports_dir(None)


def grid_values(image: ee.Image, grid: PixelGrid) -> dict[str, np.ndarray]:
    arr = ee.data.computePixels({"expression": image, "grid": grid.to_ee(), "fileFormat": "NUMPY_NDARRAY"})
    return {name: arr[name] for name in arr.dtype.names}


def without_expression(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "expression"}


# -- the requests earthengine-api sends -------------------------------------------------------------


def test_each_destination_sends_earth_engines_request_on_the_exact_grid() -> None:
    grid = export_data.grid()
    image = export_data.image()
    gcs = image_task(
        image, grid, name="city",
        batch=BatchConfig(bucket="my-bucket", prefix="exports/city", file_dimensions=1024, priority=50),
    )  # fmt: skip
    assert without_expression(gcs.config) == {
        "description": "city",
        "fileExportOptions": {
            "fileFormat": "GEO_TIFF",
            "cloudStorageDestination": {"bucket": "my-bucket", "filenamePrefix": "exports/city"},
            "geoTiffOptions": {
                "cloudOptimized": True, "noData": {"floatValue": -9999.0},
                "tileDimensions": {"width": 1024, "height": 1024}, "tileSize": {"value": 256},
            },
        },
        "maxPixels": {"value": str(grid.width * grid.height)},
        "priority": {"value": 50},
    }  # fmt: skip
    drive = image_task(image, grid, name="city", batch=BatchConfig(destination="drive", folder="gee"))
    assert drive.config["fileExportOptions"]["driveDestination"] == {
        "folder": "gee", "filenamePrefix": "city",
    }  # fmt: skip
    to_asset = BatchConfig(destination="asset", asset_id="projects/my-proj/assets/city")
    asset = image_task(image, grid, name="city", batch=to_asset)
    assert without_expression(asset.config) == {
        "description": "city",
        "assetExportOptions": {
            "earthEngineDestination": {"name": "projects/my-proj/assets/city", "overwrite": False}
        },
        "maxPixels": {"value": str(grid.width * grid.height)},
    }
    for task in (gcs, drive, asset):
        check_task_config(task.config, grid)
        # the grid is folded into the image: crsTransform + dimensions, an exact rectangle
        encoded = json.dumps(ee.serializer.encode(task.config["expression"], for_cloud_api=True))
        assert '"Image.clipToBoundsAndScale"' in encoded and '"Image.reproject"' in encoded
        info = task.config["expression"].getInfo()["bands"][0]
        assert info["crs"] == grid.crs and info["crs_transform"] == list(grid.transform)
        assert info["dimensions"] == [grid.width, grid.height]


def test_batch_settings_are_checked_before_anything_is_queued(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of shard_size 256"):
        BatchConfig(bucket="my-bucket", file_dimensions=1000)
    with pytest.raises(ValueError, match="needs a bucket name"):
        BatchConfig()
    with pytest.raises(ValueError, match="asset_id 'projects/<project>/assets/<name>'"):
        BatchConfig(destination="asset", asset_id="city")
    grid = export_data.grid()
    with pytest.raises(ConfigError, match="below the grid's 14000 pixels"):
        image_task(export_data.image(), grid, name="x", batch=BatchConfig(bucket="my-bucket", max_pixels=100))
    task = image_task(export_data.image(), grid, name="x", batch=BatchConfig(bucket="my-bucket"))
    with pytest.raises(ExportError, match="exactly one destination"):
        check_task_config({**task.config, "assetExportOptions": {}}, grid)
    bad = json.loads(json.dumps(without_expression(task.config)))
    bad["fileExportOptions"]["geoTiffOptions"]["tileDimensions"] = {"width": 300, "height": 256}
    with pytest.raises(ExportError, match="multiples of shardSize 256"):
        check_task_config({**bad, "expression": task.config["expression"]}, grid)
    with pytest.raises(ExportError, match="Export too large: specified 14000 pixels"):
        check_task_config({**task.config, "maxPixels": {"value": "10"}}, grid)


# -- the local engine runs them --------------------------------------------------------------------


def test_a_started_task_writes_the_interactive_exports_pixels(exports: Path, tmp_path: Path) -> None:
    grid = export_data.grid()
    prepared = prepared_image(export_data.image(), ["a", "b"], "float32", -9999.0)
    status = start_task(image_task(prepared, grid, name="x", batch=BatchConfig(bucket="my-bucket")), grid)
    assert status["state"] == "COMPLETED"
    path = exports / "gcs" / "my-bucket" / "x.tif"
    assert status["destination_uris"] == [path.resolve().as_uri()]
    interactive = export_image(
        export_data.image(), grid, tmp_path / "i", name="x", formats=("cog",), block=16, progress=False
    )
    with rasterio.open(path) as batch, rasterio.open(interactive.cog) as inter:
        assert batch.profile["tiled"] and batch.profile["blockxsize"] % 16 == 0
        assert batch.transform == inter.transform and batch.crs == inter.crs
        assert batch.descriptions == ("a", "b") and batch.nodata == -9999.0
        got, want = batch.read(), inter.read()
    masked = np.isnan(want)
    assert np.array_equal(got == -9999.0, masked)
    assert np.array_equal(got[~masked], want[~masked])  # bit for bit


def test_file_dimensions_split_the_export_as_earth_engine_names_the_files(exports: Path) -> None:
    grid = export_data.grid()  # 140 x 100
    image = ee.Image(export_data.ASSET)
    task = ee.batch.Export.image.toCloudStorage(
        image, description="tiles", bucket="b", fileNamePrefix="run/tiles", crs=grid.crs,
        crsTransform=list(grid.transform), dimensions=f"{grid.width}x{grid.height}", fileDimensions=64,
        shardSize=32,
    )  # fmt: skip
    task.start()
    assert task.status()["state"] == "COMPLETED"
    names = sorted(p.name for p in (exports / "gcs" / "b" / "run").iterdir())
    assert names == [f"tiles-{r:010d}-{c:010d}.tif" for r in (0, 64) for c in (0, 64, 128)]
    mosaic = np.zeros((2, grid.height, grid.width), np.float32)
    for name in names:
        r, c = (int(v) for v in name[len("tiles-") : -len(".tif")].split("-"))
        with rasterio.open(exports / "gcs" / "b" / "run" / name) as src:
            mosaic[:, r : r + src.height, c : c + src.width] = src.read()
            assert src.transform.c == grid.transform[2] + 10.0 * c
            assert src.nodata is None  # no noData asked: masked pixels are 0, as computePixels sends
    want = grid_values(image, grid)
    assert np.array_equal(mosaic[0], want["a"]) and np.array_equal(mosaic[1], want["b"])


def test_a_tutorial_style_script_runs_unchanged(exports: Path) -> None:
    # as in the Earth Engine guide "Exporting images": region + scale + crs, then poll the task
    image = ee.Image(export_data.ASSET).select("b")
    region = ee.Geometry.Rectangle([400100, 5499300, 400700, 5499800], "EPSG:32631", False)
    task = ee.batch.Export.image.toDrive(
        image=image, description="imageToDriveExample", folder="ee_demos", scale=20, region=region,
        crs="EPSG:32631",
    )  # fmt: skip
    task.start()
    while task.active():
        pass
    status = task.status()
    assert status["state"] == "COMPLETED" and status["task_type"] == "EXPORT_IMAGE"
    assert any(t.id == task.id for t in ee.batch.Task.list())
    assert ee.data.getTaskStatus(task.id)[0]["state"] == "COMPLETED"
    with rasterio.open(exports / "drive" / "ee_demos" / "imageToDriveExample.tif") as src:
        assert (src.width, src.height) == (30, 25) and src.transform.a == 20.0
        assert src.transform.c == 400100.0 and src.transform.f == 5499800.0


def test_to_asset_registers_the_asset_and_failures_are_the_tasks(exports: Path) -> None:
    grid = export_data.grid()
    image = ee.Image(export_data.ASSET)
    task = image_task(
        image, grid, name="to_asset", batch=BatchConfig(destination="asset", asset_id="users/me/exported")
    )  # fmt: skip
    start_task(task, grid)
    try:
        info = ee.Image("users/me/exported").getInfo()["bands"][0]
        assert info["crs_transform"] == list(grid.transform)
        assert info["dimensions"] == [grid.width, grid.height]
        back = grid_values(ee.Image("users/me/exported"), grid)
        assert np.array_equal(back["b"], grid_values(image, grid)["b"])
        again = image_task(
            image, grid, name="to_asset", batch=BatchConfig(destination="asset", asset_id="users/me/exported")
        )  # fmt: skip
        with pytest.raises(ExportError, match="Cannot overwrite asset 'users/me/exported'"):
            start_task(again, grid)
    finally:
        CATALOG.unregister("users/me/exported")
    # Earth Engine accepts the task and fails it: so does the local engine
    big = ee.batch.Export.image.toCloudStorage(image, bucket="b", scale=10, region=ee.Geometry.Rectangle(
        [400000, 5499000, 401400, 5500000], "EPSG:32631", False), maxPixels=1000)  # fmt: skip
    big.start()
    status = big.status()
    assert status["state"] == "FAILED"
    assert status["error_message"] == (
        "Export too large: specified 14000 pixels (max: 1000). "
        "Specify higher maxPixels value if you intend to export a large area."
    )


# -- the job, the CLI and the batch proposal -------------------------------------------------------


def small_config(**extra: Any) -> ExportConfig:
    return ExportConfig.model_validate(
        {"name": "f20", "product": "fusion20", "block": 16, "formats": ["cog"],
         "area": {"origin": [X0 + 3000.0, Y1 - 3000.0], "size_px": [40, 32]}, **extra}
    )  # fmt: skip


def test_the_job_starts_the_same_export_as_a_batch_task(exports: Path, tmp_path: Path) -> None:
    cfg = small_config(batch={"bucket": "city-exports", "prefix": "demo/f20"})
    done = run_batch_export(cfg, tmp_path / "out")
    assert done.state == "COMPLETED" and done.destination_uris
    record = json.loads(done.record.read_text())
    assert record["grid"]["width"] == 40 and record["request"]["fileExportOptions"]["cloudStorageDestination"]
    inter = run_export(cfg, tmp_path / "inter", progress=False)
    written = exports / "gcs" / "city-exports" / "demo" / "f20.tif"
    with rasterio.open(written) as b, rasterio.open(inter.cog) as i:
        got, want = b.read(), i.read()
        assert b.descriptions == i.descriptions and b.transform == i.transform
    masked = np.isnan(want)
    assert np.array_equal(got == -9999.0, masked) and np.array_equal(got[~masked], want[~masked])
    with pytest.raises(ConfigError, match="has no `batch` section"):
        run_batch_export(small_config(), tmp_path / "out")


def test_too_large_an_interactive_export_proposes_the_exact_batch_command(tmp_path: Path) -> None:
    cfg_path = tmp_path / "f20.yaml"
    cfg_path.write_text(
        "name: f20\nproduct: fusion20\nblock: 16\nformats: [cog]\ninteractive_max_gib: 0.00001\n"
        "batch: {destination: drive, folder: gee}\n"
    )
    out = tmp_path / "out"
    area = f"{X0 + 3000.0},{Y1 - 3000.0},80,64"
    with pytest.raises(BatchSuggestedError) as err:
        run_export(small_config(interactive_max_gib=0.00001), out, progress=False)
    assert err.value.total_bytes == 40 * 32 * 20 * 4
    assert not out.exists() or not any(out.iterdir())  # nothing fetched, nothing written
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(cfg_path), "--out", str(out), "--area", area])
    assert res.exit_code != 0
    assert "over the interactive limit" in res.output
    command = f"gee-fusion export {cfg_path} --out {out} --area {area} --batch"
    assert command in " ".join(res.output.split())
    res = runner.invoke(app, command.split()[1:])
    assert res.exit_code == 0, res.output
    assert (out / "drive" / "gee" / "f20.tif").exists() and (out / "f20.batch.json").exists()


def test_the_export_script_starts_a_batch_task(tmp_path: Path) -> None:
    from tests.scripts import load_script

    script = load_script("export_city")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: small\nproduct: fusion20\n"
        f"area: {{origin: [{X0 + 3000.0}, {Y1 - 3000.0}], size_px: [32, 16]}}\n"
        "batch: {destination: cloud_storage, bucket: my-gee-exports, prefix: runs/small}\n"
    )
    with export_data.reconnected():  # the script connects with its own exports folder
        assert script.main([str(cfg), str(tmp_path / "out"), "--batch"]) == 0
    with rasterio.open(tmp_path / "out" / "gcs" / "my-gee-exports" / "runs" / "small.tif") as src:
        assert (src.width, src.height, src.count) == (32, 16, 20)


def test_the_export_script_takes_the_clis_options_and_proposes_its_own_batch_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.scripts import load_script

    script = load_script("export_city")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: small\nproduct: fusion20\nblock: 16\nformats: [cog]\n")
    cfg.write_text(cfg.read_text() + "batch: {destination: drive, folder: gee}\n")
    big = tmp_path / "big.yaml"
    big.write_text(cfg.read_text() + "interactive_max_gib: 0.00001\n")
    out, corner = tmp_path / "out", f"{X0 + 3000.0},{Y1 - 3000.0}"
    area, other = f"{corner},32,16", f"{corner},16,16"
    with export_data.reconnected():  # the script connects
        assert script.main([str(cfg), str(out), "--area", area, "--engine", "local", "--project", "p-1"]) == 0
        assert gee_fusion.current() == gee_fusion.Connection("local", "p-1")
        with rasterio.open(out / "small.tif") as cog:
            assert (cog.width, cog.height, cog.count) == (32, 16, 20)
        assert script.main([str(cfg), str(out), "--area", other]) == 2  # another grid: refused
        assert "--overwrite" in capsys.readouterr().err
        assert script.main([str(cfg), str(out), "--area", other, "--overwrite"]) == 0
        with rasterio.open(out / "small.tif") as cog:
            assert (cog.width, cog.height) == (16, 16)
        assert script.main([str(cfg), "--engine", "nowhere"]) == 2
        capsys.readouterr()
        assert script.main([str(big), str(out / "b"), "--area", area, "--engine", "local"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        command = f"ee_scripts/export_city.py {big} {out / 'b'} --area {area} --engine local --batch"
        match = re.search(rf"Command: (python \S*{re.escape(command)})", err)
        assert "over the interactive limit" in err and match, err
        assert script.main(shlex.split(match.group(1))[2:]) == 0  # the proposed command runs
    assert (out / "b" / "drive" / "gee" / "small.tif").exists() and (out / "b" / "small.batch.json").exists()
