"""Exporting an image: Zarr and COG equal to one direct request, identical under injected faults,
resumed after kill -9 with only the missing tiles fetched, and refusing to mix exports."""

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
from gee_fusion.local.catalog import CATALOG
from tests import export_data

REPO = Path(__file__).resolve().parents[1]
SMALL = {"block": 16, "request_bytes": 16 * 16 * 8, "progress": False}  # 16 x 16 px tiles: 7 x 9 = 63


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
    return export_image(export_data.image(), export_data.grid(), out, name="x", **SMALL)


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
    assert sorted(p.name for p in clean.zarr.parent.iterdir()) == ["x.manifest.json", "x.tif", "x.zarr"]


def test_faults_give_the_same_output_bit_for_bit(clean: Any, tmp_path: Path) -> None:
    gee_fusion.connect("local", faults="rate=0.25,seed=7")
    try:
        export_data.register()
        faulty = export_image(export_data.image(), export_data.grid(), tmp_path, name="x", **SMALL)
    finally:
        gee_fusion.connect("local")
        export_data.register()
    assert zarr_data(faulty.zarr).tobytes() == zarr_data(clean.zarr).tobytes()
    with rasterio.open(faulty.cog) as a, rasterio.open(clean.cog) as b:
        assert a.read().tobytes() == b.read().tobytes()
    fetch = json.loads(faulty.manifest.read_text())["fetch"]
    assert fetch["retries"] > 0 and fetch["requests"] > 63 and sum(fetch["failures"].values()) > 0


def test_kill_9_then_rerun_fetches_only_the_missing_tiles(clean: Any, tmp_path: Path) -> None:
    script = tmp_path / "run.py"
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
        "    time.sleep(0.1)\n"
        "    return real(params)\n"
        "ee.data.computePixels = slow\n"
        f"export_image(export_data.image(), export_data.grid(), {str(tmp_path / 'out')!r}, name='x', "
        "block=16, request_bytes=2048, workers=2, progress=False)\n"
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

    calls = []
    real = ee.data.computePixels

    def counting(params: dict[str, Any]) -> Any:
        calls.append(1)
        return real(params)

    ee.data.computePixels = counting
    try:
        resumed = export_image(export_data.image(), export_data.grid(), tmp_path / "out", name="x", **SMALL)
    finally:
        ee.data.computePixels = real
    # only the tiles not in the ledger are fetched again (those in flight at the kill included)
    assert len(calls) == 63 - logged and resumed.skipped_tiles == logged
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
