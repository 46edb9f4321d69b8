"""Exporting an image: Zarr and COG equal to one direct request, identical under injected faults
(given to connect or in the environment), resumed after kill -9 with only the missing tiles fetched,
split beyond 32768 px a side, and refusing to mix exports or to replace files it did not write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest
import rasterio
import xarray as xr

import gee_fusion
from gee_fusion.errors import ConfigError, ExportError, OutputError
from gee_fusion.export.image_export import export_image
from gee_fusion.grid import PixelGrid
from gee_fusion.local import faults as local_faults
from gee_fusion.local.catalog import CATALOG
from tests import export_data

REPO = Path(__file__).resolve().parents[1]
SMALL = {"block": 16, "request_bytes": 16 * 16 * 8, "progress": False}  # 16 x 16 px tiles: 7 x 9 = 63
RECIPE = {"source": export_data.ASSET, "bands": ["a", "b"]}


@pytest.fixture(scope="module", autouse=True)
def source(local_engine: gee_fusion.Connection) -> Iterator[None]:
    export_data.register()
    yield
    CATALOG.unregister(export_data.ASSET)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The whole grid in one request: (band, y, x) float32, NaN where masked."""
    image = export_data.image()
    values = ee.data.computePixels(
        {"expression": image, "grid": export_data.grid().to_ee(), "fileFormat": "NUMPY_NDARRAY"}
    )
    masks = ee.data.computePixels(
        {"expression": image.mask(), "grid": export_data.grid().to_ee(), "fileFormat": "NUMPY_NDARRAY"}
    )
    out = np.stack([values[b] for b in ("a", "b")]).astype(np.float32)
    out[np.stack([masks[b] for b in ("a", "b")]) == 0] = np.nan
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("clean")
    return export_image(export_data.image(), export_data.grid(), out, name="x", recipe=RECIPE, **SMALL)


def zarr_data(path: Path) -> np.ndarray:
    return np.asarray(xr.open_zarr(path, consolidated=True)["data"].values)


def test_zarr_cog_and_manifest(clean: Any, reference: np.ndarray) -> None:
    assert clean.plan.requests == 63 and clean.stats.requests == 63 and clean.skipped_tiles == 0
    ds = xr.open_zarr(clean.zarr, consolidated=True)
    assert ds["data"].dims == ("band", "y", "x") and list(ds["band"].values) == ["a", "b"]
    np.testing.assert_array_equal(ds["data"].values, reference)  # NaN where masked, equal elsewhere
    assert np.isnan(reference).any()
    with rasterio.open(clean.cog) as cog:
        assert cog.descriptions == ("a", "b") and cog.crs.to_string() == "EPSG:32631"
        assert cog.transform.c == export_data.TRANSFORM[2] and cog.block_shapes[0] == (
            128,
            128,
        )  # GDAL COG blocks are >= 128 px
        assert cog.overviews(1)  # a COG with overviews
        np.testing.assert_array_equal(cog.read(), reference)
    manifest = json.loads(clean.manifest.read_text())
    assert manifest["engine"] == "local" and manifest["plan"]["requests"] == 63
    assert manifest["fetch"]["requests"] == 63 and manifest["grid"]["width"] == export_data.W
    assert {"gee-fusion", "earthengine-api", "numpy", "zarr", "rasterio"} <= set(manifest["versions"])
    assert manifest["recipe"] == RECIPE and len(manifest["recipe_hash"]) == 16
    assert manifest["grid"] == {"crs": export_data.CRS, "transform": list(export_data.TRANSFORM),
                                "width": export_data.W, "height": export_data.H}  # fmt: skip
    x0, y1 = export_data.TRANSFORM[2], export_data.TRANSFORM[5]
    bounds = [x0, y1 - 10.0 * export_data.H, x0 + 10.0 * export_data.W, y1]
    assert manifest["aoi"] == {"crs": export_data.CRS, "bounds": bounds}
    assert manifest["plan"]["tile_height"] == manifest["plan"]["tile_width"] == 16
    fetch = manifest["fetch"]
    assert fetch["retries"] == 0 and fetch["bytes"] == 2 * 4 * export_data.H * export_data.W
    assert isinstance(manifest["seconds"], float) and manifest["seconds"] > 0
    assert sorted(p.name for p in clean.zarr.parent.iterdir()) == ["x.manifest.json", "x.tif", "x.zarr"]


def test_faults_give_the_same_output_bit_for_bit(clean: Any, tmp_path: Path) -> None:
    with export_data.reconnected(faults="rate=0.25,seed=7"):
        faulty = export_image(export_data.image(), export_data.grid(), tmp_path, name="x", **SMALL)
    assert zarr_data(faulty.zarr).tobytes() == zarr_data(clean.zarr).tobytes()
    with rasterio.open(faulty.cog) as a, rasterio.open(clean.cog) as b:
        assert a.read().tobytes() == b.read().tobytes()
    fetch = json.loads(faulty.manifest.read_text())["fetch"]
    assert fetch["retries"] > 0 and fetch["requests"] > 63 and sum(fetch["failures"].values()) > 0


def test_the_faults_variable_alone_makes_a_retried_identical_export(
    clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(local_faults.ENV_VAR, "rate=0.2,seed=7")
    with export_data.reconnected():  # no faults argument: the variable alone
        injector = local_faults.active()
        assert injector is not None and injector.faults == local_faults.Faults(rate=0.2, seed=7)
        faulty = export_image(export_data.image(), export_data.grid(), tmp_path, name="x", **SMALL)
    assert local_faults.active() is None  # the session's connection is back, fault-free
    assert zarr_data(faulty.zarr).tobytes() == zarr_data(clean.zarr).tobytes()
    with rasterio.open(faulty.cog) as a, rasterio.open(clean.cog) as b:
        assert a.read().tobytes() == b.read().tobytes()
    fetch = json.loads(faulty.manifest.read_text())["fetch"]
    assert fetch["retries"] > 0 and sum(fetch["failures"].values()) == sum(injector.injected.values())


def test_kill_9_then_rerun_fetches_only_the_missing_tiles(clean: Any, tmp_path: Path) -> None:
    script, requested = tmp_path / "run.py", tmp_path / "requested.log"  # the child logs each request
    workers = 2
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "import ee, gee_fusion\n"
        "from tests import export_data\n"
        "from gee_fusion.export.image_export import export_image\n"
        "gee_fusion.connect('local', register_samples=False)\n"
        "export_data.register()\n"
        "real = ee.data.computePixels\n"
        "def slow(params):\n"
        f"    with open({str(requested)!r}, 'a') as log:\n"
        "        log.write(export_data.request_key(params) + '\\n')\n"
        "    time.sleep(0.1)\n"
        "    return real(params)\n"
        "ee.data.computePixels = slow\n"
        f"export_image(export_data.image(), export_data.grid(), {str(tmp_path / 'out')!r}, name='x', "
        f"block=16, request_bytes=2048, workers={workers}, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO)
    ledger = tmp_path / "out" / ".x.zarr.partial.ledger"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger.exists() and len(ledger.read_text().split()) >= 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the export finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    logged = len(ledger.read_text().split())
    assert 20 <= logged < 63 and not (tmp_path / "out" / "x.zarr").exists()  # nothing published

    before = requested.read_text().split()
    assert len(set(before)) == len(before) >= logged  # fault-free: one request a tile
    calls: list[str] = []
    real = ee.data.computePixels

    def counting(params: dict[str, Any]) -> Any:
        calls.append(export_data.request_key(params))
        return real(params)

    ee.data.computePixels = counting
    try:
        resumed = export_image(export_data.image(), export_data.grid(), tmp_path / "out", name="x", **SMALL)
    finally:
        ee.data.computePixels = real
    # only the tiles not in the ledger are fetched again (those in flight at the kill included)
    assert len(calls) == 63 - logged and resumed.skipped_tiles == logged
    # re-requested: tiles requested before the kill and again after; at most those in flight
    assert len(set(calls) & set(before)) <= workers
    assert zarr_data(resumed.zarr).tobytes() == zarr_data(clean.zarr).tobytes()
    with rasterio.open(resumed.cog) as a, rasterio.open(clean.cog) as b:
        assert a.read().tobytes() == b.read().tobytes()


def test_another_export_into_the_same_output_is_refused(clean: Any, tmp_path: Path) -> None:
    export_image(export_data.image(), export_data.grid(), tmp_path, name="x", **SMALL)
    smaller = export_data.grid()
    from gee_fusion.grid import PixelGrid

    other = PixelGrid(smaller.crs, smaller.transform, 64, 64)
    with pytest.raises(ExportError, match="overwrite"):
        export_image(export_data.image(), other, tmp_path, name="x", **SMALL)
    again = export_image(export_data.image(), other, tmp_path, name="x", overwrite=True, **SMALL)
    assert zarr_data(again.zarr).shape == (2, 64, 64)
    same = export_image(export_data.image(), other, tmp_path, name="x", **SMALL)  # same settings: fine
    assert zarr_data(same.zarr).shape == (2, 64, 64)


def test_bad_input_is_typed_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"Image\.select: Pattern 'c' did not match any bands"):
        export_image(
            export_data.image(), export_data.grid(), tmp_path / "o", name="x", bands=["a", "c"], **SMALL
        )
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        export_image(export_data.image(), export_data.grid(), a_file, name="x", **SMALL)
    with pytest.raises(ConfigError, match="Export name"):
        export_image(export_data.image(), export_data.grid(), tmp_path / "o", name="../x", **SMALL)
    with pytest.raises(ConfigError, match="dtype"):
        export_image(
            export_data.image(), export_data.grid(), tmp_path / "o", name="x", dtype="complex64", **SMALL
        )
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_foreign_or_corrupt_store_is_refused_unless_overwrite(tmp_path: Path) -> None:
    staging = tmp_path / ".x.zarr.partial"
    staging.mkdir()
    (staging / "zarr.json").write_text("{not json")
    with pytest.raises(ExportError, match="not a readable export staging store"):
        export_image(export_data.image(), export_data.grid(), tmp_path, name="x", **SMALL)
    final = tmp_path / "y.zarr"
    final.mkdir()
    (final / "zarr.json").write_text("{}")
    with pytest.raises(ExportError, match="overwrite"):
        export_image(export_data.image(), export_data.grid(), tmp_path, name="y", **SMALL)
    done = export_image(export_data.image(), export_data.grid(), tmp_path, name="x", overwrite=True, **SMALL)
    assert zarr_data(done.zarr).shape == (2, export_data.H, export_data.W)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: the check cannot fail")
def test_a_read_only_output_folder_is_refused_before_any_request(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            export_image(export_data.image(), export_data.grid(), folder, name="x", **SMALL)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_an_output_folder_on_a_read_only_file_system_is_refused(tmp_path: Path) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc (a file system nobody can write, root included)")
    with pytest.raises(OutputError, match="Cannot create the output folder /proc/self/gee_fusion_out"):
        export_image(export_data.image(), export_data.grid(), "/proc/self/gee_fusion_out", name="x", **SMALL)


def test_an_existing_file_no_export_wrote_is_refused_and_left_untouched(clean: Any, tmp_path: Path) -> None:
    cog, store = tmp_path / "x.tif", tmp_path / "x.zarr"
    cog.write_bytes(b"someone else's map")
    with pytest.raises(ExportError, match=r"x\.tif already exists and was not written.*--overwrite"):
        export_image(export_data.image(), export_data.grid(), tmp_path, name="x", **SMALL)
    assert cog.read_bytes() == b"someone else's map" and [p.name for p in tmp_path.iterdir()] == ["x.tif"]
    store.write_bytes(b"not a store")  # a file where the Zarr store goes
    with pytest.raises(ExportError, match="overwrite"):
        export_image(export_data.image(), export_data.grid(), tmp_path, name="x", formats=("zarr",), **SMALL)
    assert store.read_bytes() == b"not a store" and cog.read_bytes() == b"someone else's map"
    done = export_image(export_data.image(), export_data.grid(), tmp_path, name="x", overwrite=True, **SMALL)
    assert zarr_data(done.zarr).tobytes() == zarr_data(clean.zarr).tobytes()
    # the exporter's own COG is recognised (by its tag) without the manifest
    done.manifest.unlink()
    again = export_image(export_data.image(), export_data.grid(), tmp_path, name="x", **SMALL)
    with rasterio.open(again.cog) as a, rasterio.open(clean.cog) as b:
        assert a.read().tobytes() == b.read().tobytes()


def test_a_grid_over_32768_px_a_side_is_split_into_requests(tmp_path: Path) -> None:
    grid = PixelGrid(export_data.CRS, export_data.TRANSFORM, 40000, 4)
    done = export_image(ee.Image.constant(7).rename("c"), grid, tmp_path, name="wide", dtype="uint8",
                        formats=("zarr",), progress=False)  # fmt: skip
    assert done.plan.tile_width <= 32768 and done.stats.requests >= 2 and done.cog is None
    data = zarr_data(done.zarr)
    assert data.shape == (1, 4, 40000) and data.dtype == np.uint8 and (data == 7).all()
