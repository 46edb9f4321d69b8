"""Figures people look at: a grid of monthly maps."""

from __future__ import annotations

from collections.abc import Sequence
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
