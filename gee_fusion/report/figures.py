"""Figures people look at: a grid of monthly maps, a land-cover map with its legend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gee_fusion.io.atomic import atomic_path


def month_grid_png(
    path: str | Path,
    stack: np.ndarray,
    labels: Sequence[str],
    *,
    title: str,
    vmin: float = -0.2,
    vmax: float = 0.9,
    cmap: str = "RdYlGn",
    colorbar_label: str = "NDVI",
) -> Path:
    """Save a (months, h, w) stack as a grid of small maps; masked (NaN) pixels in grey."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = stack.shape[0]
    cols = min(6, max(n, 1))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(2.2 * cols, 2.3 * rows + 0.6))
    FigureCanvasAgg(fig)  # no pyplot: the caller's matplotlib backend is left alone
    axes = fig.subplots(rows, cols, squeeze=False)
    colormap = colormaps[cmap].with_extremes(bad="#bbbbbb")
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        im = ax.imshow(np.ma.masked_invalid(stack[i]), cmap=colormap, vmin=vmin, vmax=vmax)
        valid = float(np.isfinite(stack[i]).mean()) * 100
        ax.set_title(f"{labels[i]}  ({valid:.0f}% valid)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label=colorbar_label)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def class_map_png(
    path: str | Path,
    codes: np.ndarray,
    classes: Mapping[int, tuple[str, tuple[int, int, int]]],
    *,
    title: str,
    nodata: int = 255,
) -> Path:
    """Save a class-code map as a PNG with a legend of the classes it shows (name and colour);
    nodata in light grey, named in the legend when present.

    Args:
        path: The PNG to write (atomically).
        codes: (h, w) class codes (e.g. a decimated read of the map COG).
        classes: Code -> (name, RGB colour).
        title: Figure title.
        nodata: The code of pixels without a prediction.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    codes = np.asarray(codes)
    rgb = np.full((*codes.shape, 3), 0.85, dtype=np.float32)
    handles = []
    present = set(np.unique(codes).tolist())
    for code, (name, color) in sorted(classes.items()):
        colour = (color[0] / 255.0, color[1] / 255.0, color[2] / 255.0)
        rgb[codes == code] = colour
        if code in present:
            share = float((codes == code).mean()) * 100
            handles.append(Patch(facecolor=colour, edgecolor="none", label=f"{code} {name} ({share:.1f}%)"))
    if nodata in present:
        share = float((codes == nodata).mean()) * 100
        handles.append(Patch(facecolor=(0.85, 0.85, 0.85), edgecolor="none", label=f"no data ({share:.1f}%)"))
    height, width = codes.shape
    aspect = width / max(height, 1)
    fig = Figure(figsize=(4.5 * min(max(aspect, 0.6), 2.5) + 3.2, 4.8))
    FigureCanvasAgg(fig)  # no pyplot: the caller's matplotlib backend is left alone
    ax = fig.add_axes((0.02, 0.04, 0.6, 0.86))
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.63, 0.5), fontsize=7, frameon=False)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
