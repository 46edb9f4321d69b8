"""The offline map page: Leaflet inlined, the layers of a map, typed errors for bad input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gee_fusion.errors import DataError, OutputError
from gee_fusion.report.map_page import TileLayerSpec, map_layers, map_page_html, save_map_page

pytest.importorskip("xstatic.pkg.leaflet", reason="XStatic-Leaflet is in the notebooks extra")


def fake_map() -> SimpleNamespace:
    layers = [
        SimpleNamespace(url="https://tile.openstreetmap.org/{z}/{x}/{y}.png", name="OpenStreetMap"),
        SimpleNamespace(url="http://127.0.0.1:1/v1/m/tiles/{z}/{x}/{y}", name="S2 <July>", opacity=0.5,
                        visible=False),
        SimpleNamespace(name="a widget, not a tile layer"),
    ]  # fmt: skip
    return SimpleNamespace(layers=layers, center=(49.44, 1.10), zoom=13.0)


def test_the_page_holds_leaflet_and_the_maps_tile_layers(tmp_path: Path) -> None:
    specs = map_layers(fake_map())
    assert [(s.name, s.base, s.visible, s.opacity) for s in specs] == [
        ("OpenStreetMap", True, True, 1.0), ("S2 <July>", False, False, 0.5)
    ]  # fmt: skip
    page = save_map_page(fake_map(), tmp_path / "m.html", title="T & U", legend={"Urban": "#ff0000"})
    text = page.read_text()
    assert "L.tileLayer" in text and "Leaflet 1.9" in text and "<script src" not in text
    assert "T &amp; U" in text and "Urban" in text and "127.0.0.1:1" in text
    offline = save_map_page(fake_map(), tmp_path / "offline.html", basemaps=False).read_text()
    assert "openstreetmap" not in offline and "S2 <July>" in offline
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".*"))  # no temporaries


def test_bad_pages_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no tile layer"):
        map_page_html([], center=(0.0, 0.0), zoom=3)
    with pytest.raises(DataError, match="out of range"):
        map_page_html([TileLayerSpec("a", "http://x/{z}/{x}/{y}")], center=(91.0, 0.0), zoom=3)
    with pytest.raises(OutputError, match="is a folder"):
        save_map_page(fake_map(), tmp_path)
    with pytest.raises(DataError, match="no tile layer"):
        save_map_page(SimpleNamespace(layers=[], center=(0, 0), zoom=2), tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()
