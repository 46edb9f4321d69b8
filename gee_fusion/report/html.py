"""One comparison report: ``report.html`` (self-contained: figures embedded, opens offline) and
``metrics.json``, for the in-cloud RF, the classic baselines and the deep models assessed on the
same held-out blocks.

Contents: the metrics table (OA, kappa, weighted and macro F1, mIoU, and the 10 -> 6 aggregation)
with the best model of each evaluation set (models are only ranked against models scored on the
same pixels), per-class F1 and each model's per-class precision / recall / F1 / IoU, the
random-pixel vs spatial-block cross-validation (the leakage, in points of accuracy), the sensor
ablation, the confusion matrices, the RF / ExtraTrees importance, the maps of the in-cloud RF and
the deep models beside the reference with an agreement map (the baselines are not mapped: they
run on the sample table), and the learning curves of deep runs.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gee_fusion.classes import class_table
from gee_fusion.errors import DataError
from gee_fusion.io.atomic import atomic_path, output_folder
from gee_fusion.io.cog import read_preview
from gee_fusion.report.comparison import (
    CloudRecord,
    ModelRun,
    best_per_evaluation,
    check_comparable,
    model_metrics,
    shows_importance,
)
from gee_fusion.report.confusion_plot import plot_confusion
from gee_fusion.report.figures import class_map_png

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.best{font-weight:bold;background:#e8f5e9}
.figs{display:flex;flex-wrap:wrap;gap:12px}.figs figure{margin:0}
.figs img{max-width:560px;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}.note{color:#555;font-size:.9em}
"""


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], best_rows: Collection[int] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr{' class=best' if i in best_rows else ''}>"
        + "".join(f"<td>{_fmt(v)}</td>" for v in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _importance_png(importance: dict[str, float], title: str, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:20][::-1]
    total = sum(importance.values()) or 1.0
    fig = Figure(figsize=(5.5, 0.25 * len(top) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh([k for k, _ in top], [100 * v / total for _, v in top], color="#4a7")
    ax.set_xlabel("share of the total importance (%)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _agreement_png(reference: np.ndarray, maps: dict[str, np.ndarray], path: Path, nodata: int = 255) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(3.6 * len(maps) + 0.5, 4.2))
    FigureCanvasAgg(fig)
    for k, (name, pred) in enumerate(maps.items()):
        ax = fig.add_subplot(1, len(maps), k + 1)
        rgb = np.full((*reference.shape, 3), 0.85)
        labelled = (reference != nodata) & (pred != nodata)
        rgb[labelled & (pred == reference)] = (0.2, 0.6, 0.3)
        rgb[labelled & (pred != reference)] = (0.85, 0.2, 0.2)
        share = float((pred == reference)[labelled].mean()) * 100 if labelled.any() else 0.0
        ax.imshow(rgb, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{name}\n{share:.1f}% of labelled pixels agree", fontsize=8)
    fig.legend(
        handles=[
            Patch(color=(0.2, 0.6, 0.3), label="agrees with the reference"),
            Patch(color=(0.85, 0.2, 0.2), label="disagrees"),
            Patch(color=(0.85, 0.85, 0.85), label="no label / no data"),
        ],
        loc="lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    fig.savefig(path, dpi=100)
    return path


def _same_shape(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        raise DataError(f"The maps have different shapes {sorted(shapes)}: they were not made on one grid.")
    return arrays


def write_report(
    out_dir: str | Path,
    *,
    runs: Sequence[ModelRun],
    cloud: CloudRecord | None = None,
    reference_map: Path | None = None,
    title: str = "Land-cover models compared on the same held-out blocks",
    notes: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``metrics.json`` into ``out_dir``.

    Raises:
        DataError: models of different splits or class tables (the report never mixes them).
    """
    check_comparable(runs)
    out = output_folder(out_dir)
    models = [model_metrics(r) for r in runs]
    metrics: dict[str, Any] = {
        "format": "gee_fusion.report/2",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "split_id": runs[0].split_id,
        "classes": list(runs[0].matrix.names),
        "models": models,
        "best": best_per_evaluation(models),
    }
    if cloud is not None and cloud.cv:
        block, pixel = cloud.cv["spatial_block"], cloud.cv["random_pixel"]
        metrics["cv"] = {
            "random_pixel": {"mean": pixel["mean"], "std": pixel["std"], "folds": pixel["folds"]},
            "spatial_block": {"mean": block["mean"], "std": block["std"], "folds": block["folds"]},
            "leakage_points": round(100 * (pixel["mean"] - block["mean"]), 2),
        }
    if cloud is not None and cloud.ablation:
        metrics["ablation"] = {
            k: model_metrics(ModelRun(k, "in-cloud", m, runs[0].split_id, "", ""))
            for k, m in cloud.ablation.items()
        }
    with tempfile.TemporaryDirectory() as tmp_dir:
        body = _body(metrics, runs, cloud, reference_map, Path(tmp_dir), title, notes)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    report, record = out / "report.html", out / "metrics.json"
    with atomic_path(record, suffix=".json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False))
    with atomic_path(report, suffix=".html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return report, record


def _body(
    metrics: dict[str, Any],
    runs: Sequence[ModelRun],
    cloud: CloudRecord | None,
    reference_map: Path | None,
    tmp: Path,
    title: str,
    notes: Sequence[str],
) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p class=note>{html.escape(n)}</p>" for n in notes]
    parts.append(
        f"<p class=note>Held-out split {metrics['split_id']}; {len(metrics['classes'])} classes; "
        f"written {metrics['created']}.</p>"
    )
    rows = [
        [
            m["name"],
            m["family"],
            m["evaluated_on"],
            m["pixels"],
            m["oa"],
            m["kappa"],
            m["f1_weighted"],
            m["f1_macro"],
            m["miou"],
            m.get("aggregated_6", {}).get("oa"),
            m.get("aggregated_6", {}).get("f1_weighted"),
        ]
        for m in metrics["models"]
    ]
    parts.append("<h2>Metrics on the held-out blocks</h2>")
    parts.append(
        _table(
            [
                "model",
                "family",
                "evaluated on",
                "pixels",
                "OA",
                "kappa",
                "F1 weighted",
                "F1 macro",
                "mIoU",
                "OA (6 classes)",
                "F1 w. (6 classes)",
            ],
            rows,
            best_rows=_best_rows(metrics["models"], metrics["best"]),
        )
    )
    parts.append(_best_note(metrics["best"]))
    names = metrics["classes"]
    per_class = [
        [n, *[m["per_class"][i]["f1"] if m["per_class"][i]["present"] else None for m in metrics["models"]]]
        for i, n in enumerate(names)
    ]
    parts.append("<h2>F1 per class</h2>")
    parts.append("<p class=note>Blank: the class is neither in the reference nor in the prediction.</p>")
    parts.append(_table(["class", *[m["name"] for m in metrics["models"]]], per_class))
    parts.append(_per_class_tables(metrics["models"]))
    if "cv" in metrics:
        cv = metrics["cv"]
        parts.append("<h2>Random-pixel vs spatial-block cross-validation (in-cloud RF)</h2>")
        parts.append(
            _table(
                ["cross-validation", "mean OA", "std", "folds"],
                [
                    [
                        "random pixels (the seed paper's)",
                        cv["random_pixel"]["mean"],
                        cv["random_pixel"]["std"],
                        ", ".join(f"{v:.3f}" for v in cv["random_pixel"]["folds"]),
                    ],
                    [
                        "spatial blocks",
                        cv["spatial_block"]["mean"],
                        cv["spatial_block"]["std"],
                        ", ".join(f"{v:.3f}" for v in cv["spatial_block"]["folds"]),
                    ],
                ],
            )
        )
        parts.append(
            f"<p>Leakage: random-pixel CV reports {cv['leakage_points']:+.1f} points of accuracy more "
            "than spatial-block CV, because neighbouring pixels of the same object fall in the "
            "training and the test folds.</p>"
        )
    if "ablation" in metrics:
        parts.append("<h2>Sensor ablation (in-cloud RF)</h2>")
        parts.append(
            _table(
                ["inputs", "OA", "kappa", "F1 weighted"],
                [[k, v["oa"], v["kappa"], v["f1_weighted"]] for k, v in metrics["ablation"].items()],
            )
        )
    figs = [
        _img(plot_confusion(r.matrix, tmp / f"cm{i}.png", normalize="true", title=r.name), r.name)
        for i, r in enumerate(runs)
    ]
    parts.append("<h2>Confusion matrices (rows: reference, % of each reference class)</h2>")
    parts.append(f"<div class=figs>{''.join(figs)}</div>")
    imp = [
        _img(_importance_png(r.importance, r.name, tmp / f"imp{i}.png"), f"importance: {r.name}")
        for i, r in enumerate(runs)
        if shows_importance(r)
    ]
    if imp:
        parts.append("<h2>Importance of the inputs</h2>")
        parts.append(f"<div class=figs>{''.join(imp)}</div>")
    parts.append(_maps(runs, reference_map, tmp))
    curves = [_img(r.curves_png, f"learning curves: {r.name}") for r in runs if r.curves_png]
    if curves:
        parts.append("<h2>Learning curves of the deep runs</h2>")
        parts.append(f"<div class=figs>{''.join(curves)}</div>")
    return "".join(parts)


def _best_rows(models: Sequence[dict[str, Any]], best: Sequence[dict[str, Any]]) -> set[int]:
    """Rows of the metrics table holding the best model of an evaluation set."""
    picks = {(b["evaluated_on"], b["pixels"], b["name"]) for b in best}
    return {i for i, m in enumerate(models) if (m["evaluated_on"], m["pixels"], m["name"]) in picks}


def _best_note(best: Sequence[dict[str, Any]]) -> str:
    """The best model of each evaluation set, in words (highlighted in the table)."""
    items = "".join(
        f"<li>on {html.escape(b['evaluated_on'])} ({b['pixels']} pixels, {b['models']} models): "
        f"<b>{html.escape(b['name'])}</b>, weighted F1 {b['f1_weighted']:.3f}</li>"
        for b in best
    )
    return (
        "<p>Best model per evaluation set (highlighted; models are only ranked against models scored "
        f"on the same pixels):</p><ul>{items}</ul>"
    )


def _per_class_tables(models: Sequence[dict[str, Any]]) -> str:
    """Each model's per-class precision, recall, F1 and IoU (one folded table per model)."""
    parts = ["<h2>Precision, recall, F1 and IoU per class</h2>"]
    for m in models:
        rows = [
            [c["name"], c["support"], c["precision"], c["recall"], c["f1"], c["iou"]]
            if c["present"]
            else [c["name"], c["support"], None, None, None, None]
            for c in m["per_class"]
        ]
        table = _table(["class", "reference pixels", "precision", "recall", "F1", "IoU"], rows)
        parts.append(f"<details><summary>{html.escape(m['name'])}</summary>{table}</details>")
    return "".join(parts)


def _maps(runs: Sequence[ModelRun], reference_map: Path | None, tmp: Path) -> str:
    mapped = [r for r in runs if r.map_path is not None]
    if not mapped:
        return ""
    names = runs[0].matrix.names
    if len(names) not in (14, 11, 10, 6):
        return ""  # maps are drawn with the colours of the known tables
    table = class_table(len(names))
    classes = {c: (n, col) for c, n, col in zip(table.codes, table.names, table.colors, strict=True)}
    arrays = {r.name: read_preview(r.map_path, max_side=600)[0] for r in mapped if r.map_path}
    figs = []
    if reference_map is not None:
        reference = read_preview(reference_map, max_side=600)[0]
        arrays = _same_shape({"reference": reference, **arrays})
        figs.append(
            _img(class_map_png(tmp / "ref.png", reference, classes, title="Reference labels"), "reference")
        )
    for i, (name, arr) in enumerate(arrays.items()):
        if name != "reference":
            figs.append(_img(class_map_png(tmp / f"map{i}.png", arr, classes, title=name), name))
    parts = ["<h2>Maps</h2>", _mapped_note(runs, mapped), f"<div class=figs>{''.join(figs)}</div>"]
    if reference_map is not None:
        preds = {k: v for k, v in arrays.items() if k != "reference"}
        agreement = _agreement_png(arrays["reference"], preds, tmp / "agree.png")
        parts.append(f"<div class=figs>{_img(agreement, 'agreement with the reference')}</div>")
    return "".join(parts)


def _mapped_note(runs: Sequence[ModelRun], mapped: Sequence[ModelRun]) -> str:
    """Which models are mapped, and why the baselines are not."""
    note = "Mapped: " + ", ".join(r.name for r in mapped) + "."
    if any(r.family == "classic" for r in runs):
        note += (
            " The scikit-learn baselines are not mapped: they are fitted and scored on the sample table "
            "brought from the server, and mapping them would mean bringing every pixel of the stack here; "
            "only the in-cloud RF (classified on the server) and the deep models are mapped."
        )
    return f"<p class=note>{html.escape(note)}</p>"
