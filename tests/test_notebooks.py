"""The notebooks of ``notebooks/`` executed top to bottom on the local engine (nbclient), each in a
fresh kernel with the test suite's socket guard, and notebook 01's map rendered by headless
Chromium from its offline page with tiles from the local tile server."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

nbformat = pytest.importorskip(
    "nbformat", reason="the notebooks extra is absent (pip install -e '.[notebooks]')"
)
nbclient = pytest.importorskip(
    "nbclient", reason="the notebooks extra is absent (pip install -e '.[notebooks]')"
)
pytest.importorskip("geemap", reason="the notebooks extra is absent (pip install -e '.[notebooks]')")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
GUARD = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from tests.socket_guard import install_socket_guard
install_socket_guard()
"""


def _kernel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the kernels inherit: the local engine, a small area."""
    monkeypatch.setenv("GEE_FUSION_ENGINE", "local")
    monkeypatch.delenv("GEE_FUSION_PROJECT", raising=False)
    monkeypatch.setenv("GEE_FUSION_NOTEBOOK_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline (headless)


def _read(name: str) -> Any:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(GUARD))  # in memory only: the file is unchanged
    return nb


@contextlib.contextmanager
def running(name: str, cwd: Path) -> Iterator[Any]:
    """Execute a notebook cell by cell in ``cwd`` and keep its kernel alive inside the block."""
    nb = _read(name)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        yield nb


def _text(nb: Any) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.slow
def test_the_kernels_keep_the_socket_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _kernel_env(monkeypatch)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(GUARD),
        nbformat.v4.new_code_cell("import socket\nsocket.create_connection(('198.51.100.7', 80), timeout=1)"),
    ]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="OutboundConnectionError"):
        client.execute()


@pytest.mark.slow
def test_notebook_01_composites_explorer_runs_and_its_map_renders_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kernel_env(monkeypatch)
    with running("01_composites_explorer.ipynb", tmp_path) as nb:
        text = _text(nb)
        assert "S2 bands: ['B2'" in text and "'VVVH'" in text and "offline map page" in text
        page = tmp_path / "outputs/notebooks/01_composites_map.html"
        html = page.read_text()
        assert "cdn" not in html.lower() and "unpkg" not in html and "http://127.0.0.1:" in html
        browser = (
            shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        )
        if browser is None:
            pytest.skip(
                "headless Chromium is not installed (Debian: apt-get install chromium); the notebook ran"
            )
        shot = tmp_path / "map.png"
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=900,700", "--virtual-time-budget=60000", f"--screenshot={shot}", page.as_uri()],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    from PIL import Image as PILImage

    pixels = np.asarray(PILImage.open(shot).convert("RGB"), dtype=np.int16)[
        60:-60, 60:-260
    ]  # the map, no controls
    leaflet_grey = (np.abs(pixels - 221).max(axis=-1) <= 3) | (pixels.min(axis=-1) >= 250)
    assert leaflet_grey.mean() < 0.2, f"{leaflet_grey.mean():.0%} of the map is blank or grey: no data tiles"
    assert pixels.reshape(-1, 3).std(axis=0).mean() > 10, "the map is one flat colour"
    assert len(np.unique(pixels.reshape(-1, 3) // 8, axis=0)) > 50, "too few colours for imagery"


@pytest.mark.slow
def test_notebook_02_exports_the_city_and_reads_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gee_fusion.local.world.config import DEFAULT_WORLD as W

    _kernel_env(monkeypatch)
    source = "\n".join(
        c.source for c in nbformat.read(NOTEBOOKS / "02_city_export.ipynb", as_version=4).cells
    )
    # the notebook's grid is the demo city's
    assert f'CRS, ORIGIN = "{W.crs}", ({W.origin[0]}, {W.origin[1]})' in source
    with running("02_city_export.ipynb", tmp_path) as nb:
        text = _text(nb)
    assert "COG and Zarr hold the same pixels: True" in text and "1 requests" in text
    assert (tmp_path / "outputs/notebooks/export/fusion20_city.tif").is_file()
    outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
    assert any("image/png" in out.get("data", {}) for out in outputs)


@pytest.mark.slow
def test_notebook_03_compares_rf_and_deep_from_the_main_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kernel_env(monkeypatch)
    monkeypatch.delenv("GEE_FUSION_DEMO_OUT", raising=False)
    with running("03_rf_vs_deep.ipynb", tmp_path) as nb:
        text = _text(nb)
    assert "Best model on " in text and "best on " in text  # one best model per evaluation set
    assert "Random-pixel CV accuracy" in text
    images = [
        out for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})
    ]
    assert len(images) >= 3  # two confusion matrices and the CV figure
    assert sorted(p.name for p in (tmp_path / "outputs/notebooks/rf_vs_deep/notebook_figures").iterdir()) == [
        "confusion_0.png",
        "confusion_1.png",
        "confusion_2.png",
    ]


@pytest.mark.slow
def test_notebook_04_monitors_the_city_and_finds_the_planted_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kernel_env(monkeypatch)
    with running("04_monthly_monitoring.ipynb", tmp_path) as nb:
        text = _text(nb)
    assert "6 new month(s)" in text and "1 alert(s)" in text, text[-2000:]
    assert "planted changes in the area: ['construction'] ['2023-01']" in text
    alerts = tmp_path / "outputs/notebooks/monitoring/months/2023-01/alerts.geojson"
    assert '"onset": "2023-01"' in alerts.read_text()
    outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the built-up curve
