"""A geemap / ipyleaflet map as one offline HTML page (Leaflet inlined, no CDN).

``geemap.Map.to_html`` loads its widget scripts from a CDN, so the page is blank on an offline
machine. :func:`save_map_page` writes the map's tile layers, its centre and zoom, a layer switcher,
a scale bar and an optional legend into one page whose only script and stylesheet (Leaflet, from
the ``XStatic-Leaflet`` package) are inlined. The tiles still come from their URLs: Earth Engine's
tile service, or the local engine's tile server on 127.0.0.1 while the Python process that made
the map runs.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gee_fusion.errors import DataError, OutputError
from gee_fusion.io.atomic import atomic_path, output_folder


@dataclass(frozen=True)
class TileLayerSpec:
    """One XYZ tile layer of the page.

    Attributes:
        name: Name shown in the layer switcher.
        url: ``{z}/{x}/{y}`` URL template.
        opacity: 0..1.
        visible: Whether the layer is on when the page opens.
        attribution: Attribution text (HTML, as Leaflet shows it).
        base: A base layer (a radio button in the switcher) rather than an overlay.
    """

    name: str
    url: str
    opacity: float = 1.0
    visible: bool = True
    attribution: str = ""
    base: bool = False


def map_layers(m: Any) -> list[TileLayerSpec]:
    """The tile layers of an ipyleaflet (geemap) map, bottom to top.

    Args:
        m: A ``geemap.Map`` or ``ipyleaflet.Map``; any object with ``layers`` whose tile layers have
            ``url`` and ``name``.

    Returns:
        One spec per tile layer (other layers, such as markers or widgets, are left out); the
        map's first layer (its basemap) is a base layer, the others are overlays.
    """
    specs: list[TileLayerSpec] = []
    for layer in getattr(m, "layers", ()):
        url = getattr(layer, "url", None)
        if not isinstance(url, str) or "{x}" not in url:
            continue
        specs.append(
            TileLayerSpec(
                name=str(getattr(layer, "name", "") or "layer"),
                url=url,
                opacity=float(getattr(layer, "opacity", 1.0)),
                visible=bool(getattr(layer, "visible", True)),
                attribution=str(getattr(layer, "attribution", "") or ""),
                base=not specs,
            )
        )
    return specs


def _leaflet_assets() -> tuple[str, str]:
    try:
        from xstatic.pkg import leaflet
    except ImportError as exc:
        raise DataError(
            "Leaflet is needed for an offline map page: pip install -e '.[notebooks]' "
            "(it installs XStatic-Leaflet)."
        ) from exc
    base = Path(leaflet.BASE_DIR)
    return (base / "leaflet.js").read_text(encoding="utf-8"), (base / "leaflet.css").read_text(
        encoding="utf-8"
    )


def map_page_html(
    layers: Sequence[TileLayerSpec],
    *,
    center: tuple[float, float],
    zoom: int,
    title: str = "Map",
    legend: Mapping[str, str] | None = None,
) -> str:
    """The HTML of an offline Leaflet page.

    Args:
        layers: Tile layers, bottom to top.
        center: (lat, lon) of the view.
        zoom: Zoom level of the view.
        title: Page title, also shown in the top-left corner.
        legend: Optional legend, label -> colour (CSS colour, e.g. ``"#ff0000"``).

    Returns:
        A complete HTML document.

    Raises:
        DataError: With no layer, or an out-of-range centre or zoom.
    """
    if not layers:
        raise DataError("The map has no tile layer to put on the page: add a layer first.")
    lat, lon = center
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or not 0 <= zoom <= 24:
        raise DataError(f"Centre {center} (lat, lon) or zoom {zoom} is out of range.")
    script, css = _leaflet_assets()
    spec = {
        "center": [lat, lon],
        "zoom": zoom,
        "layers": [
            {
                "name": s.name,
                "url": s.url,
                "opacity": s.opacity,
                "visible": s.visible,
                "attr": s.attribution,
                "base": s.base,
            }
            for s in layers
        ],
    }
    items = "".join(
        f'<div><i style="background:{html.escape(color)}"></i>{html.escape(label)}</div>'
        for label, color in (legend or {}).items()
    )
    legend_html = f'<div class="legend">{items}</div>' if items else ""
    data = json.dumps(spec).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{css}</style>
<style>html, body, #map {{ height: 100%; margin: 0; }}
.title {{ position: absolute; top: 8px; left: 56px; z-index: 1000; background: #fff; padding: 4px 8px;
  font: 14px sans-serif; border-radius: 4px; }}
.legend {{ position: absolute; bottom: 24px; right: 8px; z-index: 1000; background: #fff; padding: 6px 8px;
  font: 12px sans-serif; border-radius: 4px; }}
.legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle; }}
</style></head>
<body><div id="map"></div><div class="title">{html.escape(title)}</div>{legend_html}
<script>{script}</script>
<script>
const spec = {data};
const map = L.map("map").setView(spec.center, spec.zoom);
const base = {{}}, overlays = {{}};
spec.layers.forEach((s) => {{
  const options = {{opacity: s.opacity, attribution: s.attr, maxZoom: 24, maxNativeZoom: 24}};
  const layer = L.tileLayer(s.url, options);
  (s.base ? base : overlays)[s.name] = layer;
  if (s.visible) layer.addTo(map);
}});
L.control.layers(base, overlays, {{collapsed: false}}).addTo(map);
L.control.scale().addTo(map);
</script></body></html>
"""


def save_map_page(
    m: Any,
    path: str | Path,
    *,
    title: str = "Map",
    legend: Mapping[str, str] | None = None,
    basemaps: bool = True,
) -> Path:
    """Write a geemap / ipyleaflet map as one offline HTML page.

    Args:
        m: The map (``geemap.Map``); its tile layers, ``center`` and ``zoom`` are used.
        path: The ``.html`` file to write (atomically).
        title: Page title.
        legend: Optional legend, label -> CSS colour.
        basemaps: Keep the map's basemap (its first layer, fetched from the internet). With
            ``False`` the page shows only the layers added to the map, e.g. on an offline machine.

    Returns:
        The path written.

    Raises:
        DataError: With no tile layer.
        OutputError: When ``path`` is a folder.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target} is a folder: give the .html file to write.")
    output_folder(target.parent)
    layers = map_layers(m)
    if not basemaps:
        layers = [layer for layer in layers if not layer.base]
    center = tuple(float(v) for v in m.center)
    page = map_page_html(
        layers, center=(center[0], center[1]), zoom=round(m.zoom), title=title, legend=legend
    )
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target
