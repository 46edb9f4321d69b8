"""connect / disconnect, credentials, unsupported calls, the socket guard, grid validation."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest

import gee_fusion
from gee_fusion import engine
from gee_fusion.errors import (
    AlgorithmNotImplementedError,
    CredentialsError,
    GridError,
    NotSupportedError,
    UnknownAssetError,
)
from gee_fusion.grid import PixelGrid


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(ee.oauth, "get_credentials_path", lambda: str(tmp_path / "ee" / "credentials"))


def test_earthengine_without_credentials_raises_typed_error(no_credentials) -> None:
    assert not gee_fusion.has_credentials()
    try:
        with pytest.raises(CredentialsError, match="earthengine authenticate"):
            gee_fusion.connect("earthengine", project="some-project")
    finally:
        gee_fusion.connect("local")


def test_auto_picks_local_without_credentials(no_credentials) -> None:
    conn = gee_fusion.connect()
    assert conn.engine == "local"
    assert ee.Number(2).add(3).getInfo() == 5


def test_disconnect_restores_earthengine_api() -> None:
    routed = ee.data.computeValue
    gee_fusion.disconnect()
    try:
        assert ee.data.computeValue is not routed
        assert ee.data.computeValue.__module__ == "ee.data"
        assert not ee.data.is_initialized()
    finally:
        gee_fusion.connect("local")
    assert ee.data.computeValue is routed  # routed to the local engine again
    assert ee.String("ok").getInfo() == "ok"


def test_thumbnails_and_table_exports_not_supported_yet() -> None:
    img = ee.Image.constant(1)
    with pytest.raises(NotSupportedError, match="Thumbnails"):
        img.getThumbURL({})
    task = ee.batch.Export.table.toDrive(ee.FeatureCollection([ee.Feature(None, {"a": 1})]), description="x")
    with pytest.raises(NotSupportedError, match="Batch exports other than images"):
        task.start()


def test_unknown_collection_lists_registered_ids() -> None:
    with pytest.raises(ee.EEException, match=r"local/slovenia/S2_NDVI|Registered IDs") as info:
        ee.ImageCollection("NOT/THERE").size().getInfo()
    assert isinstance(info.value, UnknownAssetError)
    assert "NOT/THERE" in str(info.value)


def test_unimplemented_algorithm_is_named() -> None:
    with pytest.raises(AlgorithmNotImplementedError, match=r"Image\.entropy"):
        ee.Image.constant(1).entropy(ee.Kernel.square(1)).getInfo()


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, -1), (32769, 1), (1, 40000)])
def test_bad_grid_sizes(width: int, height: int) -> None:
    if width <= 0 or height <= 0:  # any grid must have pixels; the 32768 px limit is per request
        with pytest.raises(GridError):
            PixelGrid("EPSG:32631", (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width, height)
    else:
        assert PixelGrid("EPSG:32631", (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), width, height).width == width
    grid = {
        "dimensions": {"width": width, "height": height},
        "affineTransform": {"scaleX": 10, "scaleY": -10},
        "crsCode": "EPSG:32631",
    }
    with pytest.raises(ee.EEException, match=r"px|positive"):
        ee.data.computePixels(
            {"expression": ee.Image.constant(1), "fileFormat": "NUMPY_NDARRAY", "grid": grid}
        )


def test_computed_image_without_grid_is_an_error() -> None:
    with pytest.raises(GridError, match="grid"):
        ee.data.computePixels({"expression": ee.Image.constant(1), "fileFormat": "NUMPY_NDARRAY"})


def test_request_byte_limit() -> None:
    grid = {
        "dimensions": {"width": 4000, "height": 4000},
        "affineTransform": {"scaleX": 10, "scaleY": -10},
        "crsCode": "EPSG:32631",
    }
    with pytest.raises(
        GridError,
        match=r"Total request size \(128000000 bytes\) must be less than or equal to 50331648 bytes",
    ):
        ee.data.computePixels(
            {"expression": ee.Image.constant(1.5).toDouble(), "grid": grid, "fileFormat": "NUMPY_NDARRAY"}
        )


def test_npy_bytes_format() -> None:
    import io

    grid = {
        "dimensions": {"width": 3, "height": 2},
        "affineTransform": {"scaleX": 10, "scaleY": -10},
        "crsCode": "EPSG:32631",
    }
    raw = ee.data.computePixels(
        {"expression": ee.Image.constant(7).toInt16(), "grid": grid, "fileFormat": "NPY"}
    )
    arr = np.load(io.BytesIO(raw))
    assert arr.shape == (2, 3) and arr.dtype.names == ("constant",)
    assert (arr["constant"] == 7).all()


def test_socket_guard_blocks_outbound_connections() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(RuntimeError, match="no network"):
            sock.connect(("8.8.8.8", 443))
    finally:
        sock.close()


def test_importing_gee_fusion_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, gee_fusion, gee_fusion.local.algorithms; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_connection_state() -> None:
    assert engine.current() is not None
    assert engine.current().engine == "local"  # type: ignore[union-attr]


def test_switching_engines_resets_the_offline_algorithm_table(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(engine, "has_credentials", lambda: True)
    real_initialize = ee.Initialize

    def fake_initialize(*args: object, **kwargs: object) -> None:
        if args[:2] == (None, ""):  # the local engine's own offline initialisation
            real_initialize(*args, **kwargs)
            return
        calls.append("init")
        assert not ee.apifunction.ApiFunction._api, "offline algorithm table still loaded"
        raise ee.EEException("no server here")

    monkeypatch.setattr(ee, "Initialize", fake_initialize)
    try:
        with pytest.raises(CredentialsError, match="refused"):
            gee_fusion.connect("earthengine", project="p")
        assert calls == ["init"]
        # the failed connection left the working local one as it was
        active = gee_fusion.current()
        assert active is not None and active.engine == "local"
        assert ee.Number(1).add(2).getInfo() == 3
        assert ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").limit(1).size().getInfo() == 1
    finally:
        monkeypatch.undo()
        gee_fusion.connect("local")


def test_connect_without_credentials_keeps_the_local_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "has_credentials", lambda: False)
    with pytest.raises(CredentialsError, match="earthengine authenticate"):
        gee_fusion.connect("earthengine", project="p")
    active = gee_fusion.current()
    assert active is not None and active.engine == "local"
    assert ee.Number(2).multiply(3).getInfo() == 6


class SentToEarthEngineError(Exception):
    """Raised by the fake Earth Engine when a request reaches it."""


def _job_monthly(tmp: Path) -> None:
    from gee_fusion.monitoring.config import MonthlyJobConfig
    from gee_fusion.monitoring.monthly import run_monthly

    run_monthly(MonthlyJobConfig(out=tmp / "monthly", start="2021-06-01", end="2021-07-01"))


def _job_patches(tmp: Path) -> None:
    from gee_fusion.export.area import AreaConfig
    from gee_fusion.export.patches import PatchExportConfig, fetch_area

    fetch_area(PatchExportConfig(area=AreaConfig(size_px=(32, 32)), months=[7], sensors=["S1"]))


def _job_recipe_source(tmp: Path) -> None:
    from gee_fusion.deep.infer.recipe_source import RecipeSource
    from gee_fusion.export.area import AreaConfig
    from gee_fusion.export.patch_store import BandStats
    from gee_fusion.recipe.monthly_stacks import StackRecipe

    stats = {"S1": {b: BandStats(mean=0.0, std=1.0, q02=-1.0, q98=1.0) for b in ("VV", "VH", "VVVH")}}
    src = RecipeSource(
        StackRecipe(months=[7], sensors=["S1"]), AreaConfig(size_px=(32, 32)).grid(),
        bands={"S1": ["VV", "VH", "VVVH"]}, stats=stats, normalisation="zscore",
    )  # fmt: skip
    src.read(slice(0, 16), slice(0, 16))


def _job_cloud_rf(tmp: Path) -> None:
    from gee_fusion.classic.job import CloudRFConfig, run_cloud_rf

    cfg = CloudRFConfig.model_validate({
        "area": {"size_px": [32, 32]}, "blocks": {"block_px": 16}, "rf": {"number_of_trees": 2},
        "sampling": {"points_per_class": 10, "folds": 2}, "baselines": [], "map": False, "ablation": False,
    })  # fmt: skip
    run_cloud_rf(cfg, tmp / "cloud_rf", progress=False)


@pytest.mark.parametrize("job", [_job_monthly, _job_patches, _job_recipe_source, _job_cloud_rf])
def test_jobs_run_on_the_connected_engine_and_never_switch(
    job: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After connect('earthengine') (credentials faked), a job sends its requests to Earth Engine
    and leaves the connection alone: no hidden switch to the local engine."""
    from ee import apitestcase

    monkeypatch.setattr(engine, "has_credentials", lambda: True)
    real_initialize = ee.Initialize
    sent: list[str] = []

    def fake_earth_engine(name: str) -> Any:
        def call(*args: object, **kwargs: object) -> Any:
            sent.append(name)
            raise SentToEarthEngineError(name)

        return call

    def fake_initialize(*args: object, **kwargs: object) -> None:
        if args[:2] == (None, ""):  # the local engine's own offline initialisation
            real_initialize(*args, **kwargs)
            return
        # "Earth Engine": the algorithm table of the wheel, requests answered by the fakes above
        monkeypatch.setattr(ee.data, "getAlgorithms", apitestcase.GetAlgorithms)
        monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
        monkeypatch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
        for name in ("computeValue", "computePixels", "getAsset", "getInfo", "listAssets", "getList"):
            monkeypatch.setattr(ee.data, name, fake_earth_engine(name))
        real_initialize(None, "", project="fake-project")

    monkeypatch.setattr(ee, "Initialize", fake_initialize)
    switches: list[object] = []
    real_connect_local = engine._connect_local
    monkeypatch.setattr(
        engine, "_connect_local", lambda *a, **k: switches.append(a) or real_connect_local(*a, **k)
    )
    try:
        gee_fusion.connect("earthengine", project="fake-project")
        with pytest.raises(SentToEarthEngineError):
            job(tmp_path)
        active = gee_fusion.current()
        assert active is not None and active.engine == "earthengine" and active.project == "fake-project"
        assert sent and not switches
    finally:
        monkeypatch.undo()
        gee_fusion.connect("local")


def test_scripts_that_authenticate_and_initialise_first_run_locally() -> None:
    # what nearly every Earth Engine script starts with
    assert ee.Authenticate() is True
    ee.Initialize(project="my-project")
    assert ee.Number(2).add(3).getInfo() == 5
    connection = engine.current()
    assert connection is not None and connection.engine == "local"
