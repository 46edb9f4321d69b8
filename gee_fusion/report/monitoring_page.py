"""``monitoring.html``: one self-contained page (figures embedded) over a monitoring folder: the
latest class map, the urbanisation map, the urban-area curve and the table of alerts."""

from __future__ import annotations

import base64
import csv
import html
import json
import tempfile
from datetime import date
from pathlib import Path

from gee_fusion.classes import class_table
from gee_fusion.io.atomic import atomic_path
from gee_fusion.report.figures import class_map_png


def _embed(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _curve_png(path: Path, csv_path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    fig = Figure(figsize=(7, 3), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([r["month"] for r in rows], [float(r["built_up_km2"]) for r in rows], marker="o", color="#b2182b")
    ax.set_ylabel("built-up area (km²)")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


def write_monitoring_page(out: Path, *, name: str, months: list[date]) -> Path:
    """Write ``out/monitoring.html`` from the job's files (class maps, changes, alerts, curve)."""
    import rasterio

    table = class_table(6)
    classes = {c: (n, col) for c, n, col in zip(table.codes, table.names, table.colors, strict=True)}
    figures = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        latest = out / "months" / f"{months[-1]:%Y-%m}" / "class.tif"
        with rasterio.open(latest) as src:
            codes = src.read(1)
        figures.append((f"Land cover, {months[-1]:%Y-%m}",
                        _embed(class_map_png(tmp / "latest.png", codes, classes, title=f"{months[-1]:%Y-%m}",
                                             nodata=0))))  # fmt: skip
        changes = out / "changes.tif"
        if changes.exists():
            with rasterio.open(changes) as src:
                index = src.read(1)
            onset = {k + 1: (f"{m:%Y-%m}", _ramp(k, len(months))) for k, m in enumerate(months)}
            present = {k: v for k, v in onset.items() if (index == k).any()}
            present[0] = ("no urbanisation", (235, 235, 235))
            png = class_map_png(tmp / "changes.png", index, present, title="urbanisation onset", nodata=255)
            figures.append(("Urbanisation by onset month", _embed(png)))
        figures.append(("Built-up area", _embed(_curve_png(tmp / "curve.png", out / "urban_area.csv"))))
    rows = []
    for m in months:
        path = out / "months" / f"{m:%Y-%m}" / "alerts.geojson"
        if path.exists():
            for f in json.loads(path.read_text())["features"]:
                p = f["properties"]
                rows.append(f"<tr><td>{html.escape(str(p.get('type', 'urbanisation')))}</td>"
                            f"<td>{p['onset']}</td><td>{p['area_m2'] / 1e4:.2f}</td>"
                            f"<td>{html.escape(classes.get(p['from_class'], ('?',))[0])}</td>"
                            f"<td>{html.escape(classes.get(p['to_class'], ('?',))[0])}</td>"
                            f"<td>{p['confidence']:.2f}</td>"
                            f"<td>{_share(p.get('class_confidence'))}</td></tr>")  # fmt: skip
    body = "".join(f"<h2>{html.escape(t)}</h2><img src='{src}' style='max-width:100%'>" for t, src in figures)
    header = (
        "<tr><th>type</th><th>onset</th><th>ha</th><th>from</th><th>to</th><th>SAR-confirmed share</th>"
        "<th>class confidence</th></tr>"
    )
    alerts = ("<table>" + header
              + "".join(rows) + "</table>") if rows else "<p>No alert yet.</p>"  # fmt: skip
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(name)}</title>"
            "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px}</style>"
            f"</head><body><h1>Monitoring: {html.escape(name)}</h1>"
            f"<p>{months[0]:%Y-%m} to {months[-1]:%Y-%m}, {len(months)} months.</p>{body}"
            f"<h2>Alerts ({len(rows)})</h2>{alerts}</body></html>")  # fmt: skip
    target = out / "monitoring.html"
    with atomic_path(target) as tmp_path:
        tmp_path.write_text(page, encoding="utf-8")
    return target


def _share(value: float | None) -> str:
    """A share for the alert table; a dash where it is unknown (floods, maps without confidence)."""
    return "-" if value is None else f"{value:.2f}"


def _ramp(k: int, n: int) -> tuple[int, int, int]:
    """A yellow-to-red colour for month k of n."""
    t = k / max(n - 1, 1)
    return 255, int(230 * (1 - t)), int(60 * (1 - t))
