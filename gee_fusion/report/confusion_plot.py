"""Figures of a :class:`~gee_fusion.metrics.confusion.ConfusionMatrix`: the matrix and per-class scores.

Drawn with matplotlib's Agg canvas (pyplot is never touched, so the caller's backend is left alone)
and written atomically as PNG.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from gee_fusion.errors import ConfigError
from gee_fusion.io.atomic import atomic_path
from gee_fusion.metrics.confusion import ConfusionMatrix

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Normalize = Literal["true", "pred"] | None
_NORMALIZE_LABELS = {
    "true": "% of reference pixels (row)",
    "pred": "% of predicted pixels (column)",
    None: "pixels",
}


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _wrap(name: str, width: int = 22) -> str:
    return "\n".join(textwrap.wrap(name, width=width)) or name


def _compact(count: int) -> str:
    """1234 -> '1.2k', 5600000 -> '5.6M'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            value = count / scale
            return f"{value:.0f}{suffix}" if value >= 100 else f"{value:.1f}{suffix}"
    return str(count)


def _default_title(cm: ConfusionMatrix) -> str:
    if cm.total == 0:
        return "Confusion matrix (no labelled pixel)"
    return (
        f"Confusion matrix ({_compact(cm.total)} px): OA {cm.overall_accuracy:.3f}, "
        f"kappa {cm.kappa:.3f}, macro F1 {cm.macro_f1:.3f}, mIoU {cm.miou:.3f}"
    )


def _normalized(cm: ConfusionMatrix, normalize: Normalize) -> np.ndarray:
    counts = cm.matrix.astype(np.float64)
    if normalize is None:
        return counts
    axis = 1 if normalize == "true" else 0
    sums = counts.sum(axis=axis, keepdims=True)
    out = np.zeros_like(counts)
    np.divide(counts, sums, out=out, where=sums > 0)
    return out


def _cell_text(count: int, value: float, normalize: Normalize) -> str:
    if count == 0:
        return ""  # empty cells stay blank: the eye goes to the errors that exist
    if normalize is None:
        return _compact(count)
    percent = 100.0 * value
    return "<1" if percent < 0.5 else f"{percent:.0f}"


def _style_absent_ticks(cm: ConfusionMatrix, ax: Axes) -> None:
    """Grey italic tick labels for classes absent from reference and prediction."""
    for present, xt, yt in zip(cm.present.tolist(), ax.get_xticklabels(), ax.get_yticklabels(), strict=True):
        if not present:
            for label in (xt, yt):
                label.set_color("0.55")
                label.set_fontstyle("italic")


def plot_confusion(
    cm: ConfusionMatrix,
    path: str | Path,
    *,
    normalize: Normalize = "true",
    title: str | None = None,
    cmap: str = "Blues",
    dpi: int = 120,
) -> Path:
    """Save the confusion matrix as an annotated heat map (PNG).

    Args:
        cm: The matrix (rows = reference, columns = prediction).
        path: Output PNG path (written atomically; folders are created).
        normalize: ``"true"``: each row in % of its reference pixels (diagonal = recall);
            ``"pred"``: each column in % of its predicted pixels (diagonal = precision);
            ``None``: raw pixel counts (square-root colour scale, counts abbreviated 1.2k, 3.4M).
        title: Figure title (default: pixel count, OA, kappa, macro F1 and mIoU).
        cmap: A matplotlib colour map name.
        dpi: Output resolution.

    Returns:
        The path written. Zero cells are left blank; classes absent from both reference and
        prediction have grey italic labels.
    """
    if normalize not in _NORMALIZE_LABELS:
        raise ConfigError(f"normalize must be 'true', 'pred' or None, got {normalize!r}.")
    from matplotlib.colors import Normalize as LinearNorm
    from matplotlib.colors import PowerNorm

    k = cm.num_classes
    counts = cm.matrix
    values = _normalized(cm, normalize)
    vmax = 1.0 if normalize is not None else max(float(values.max()), 1.0)
    norm = LinearNorm(0.0, vmax) if normalize is not None else PowerNorm(0.5, vmin=0.0, vmax=vmax)
    side = max(5.0, 0.62 * k + 3.2)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
    fontsize = max(5.5, min(10.0, 120.0 / k))
    for (i, j), count in np.ndenumerate(counts):
        text = _cell_text(int(count), float(values[i, j]), normalize)
        if text:
            dark = norm(values[i, j]) > 0.6
            color = "white" if dark else "black"
            # in_layout=False: the cells sit inside the axes, the layout need not measure 196 texts
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color, in_layout=False)
    labels = [_wrap(n) for n in cm.names]
    ax.set_xticks(range(k), labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=fontsize + 0.5)
    ax.set_yticks(range(k), labels, fontsize=fontsize + 0.5)
    _style_absent_ticks(cm, ax)
    ax.set_xlabel("Prediction")
    ax.set_ylabel("Reference (actual)")
    ax.set_title(title if title is not None else _default_title(cm), fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.75, label=_NORMALIZE_LABELS[normalize])
    return _save(fig, path, dpi)


def plot_per_class(
    cm: ConfusionMatrix, path: str | Path, *, title: str | None = None, dpi: int = 120
) -> Path:
    """Save a horizontal bar chart of per-class F1 and IoU, with macro F1 and mIoU as dashed lines.

    Classes absent from both reference and prediction carry no bars and are marked "absent"
    (they are excluded from macro F1 and mIoU). Written atomically as PNG.
    """
    k = cm.num_classes
    f1, iou, present = cm.f1, cm.iou, cm.present
    fig = _new_figure(8.5, max(3.5, 0.5 * k + 1.6))
    ax = fig.add_subplot()
    y = np.arange(k)
    height = 0.38
    bars = (("F1", f1, -height / 2, "#3b75af"), ("IoU", iou, height / 2, "#ef8636"))
    for label, scores, offset, color in bars:
        shown = np.where(present, scores, 0.0)
        ax.barh(y + offset, shown, height=height, color=color, label=label)
        for yi, score, ok in zip(y + offset, scores.tolist(), present.tolist(), strict=True):
            if ok:
                ax.text(min(score, 1.0) + 0.01, yi, f"{score:.2f}", va="center", fontsize=7)
    for i in np.flatnonzero(~present).tolist():
        ax.text(0.01, i, "absent", va="center", fontsize=8, color="0.45", fontstyle="italic")
    if cm.total:
        ax.axvline(
            cm.macro_f1, color="#3b75af", linestyle="--", linewidth=1, label=f"macro F1 {cm.macro_f1:.3f}"
        )
        ax.axvline(cm.miou, color="#ef8636", linestyle="--", linewidth=1, label=f"mIoU {cm.miou:.3f}")
    support = cm.support.tolist()
    ax.set_yticks(y, [f"{_wrap(n, 30)} (n={_compact(s)})" for n, s in zip(cm.names, support, strict=True)])
    ax.invert_yaxis()  # class 0 on top, as in the confusion matrix
    ax.set_xlim(0.0, 1.12)
    ax.set_xlabel("score")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.set_title(title if title is not None else "Per-class F1 and IoU", fontsize=10)
    return _save(fig, path, dpi)
