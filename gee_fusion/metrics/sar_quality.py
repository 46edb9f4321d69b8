"""Speckle-filter quality measures on numpy arrays of linear SAR intensity."""

from __future__ import annotations

import numpy as np

from gee_fusion.errors import ConfigError


def enl(values: np.ndarray) -> float:
    """Equivalent number of looks of a homogeneous sample: mean^2 / variance."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2 or x.var() == 0:
        raise ConfigError("ENL needs at least two distinct finite values.")
    return float(x.mean() ** 2 / x.var())


def edge_preservation_index(
    original: np.ndarray, filtered: np.ndarray, edges: np.ndarray | None = None
) -> float:
    """Edge-preservation index: sum of absolute neighbour differences after filtering over the
    same sum before (horizontal and vertical), on ``edges`` pixels if given (e.g. true class
    boundaries). 1 keeps edge contrast, lower values blur it.
    """
    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(filtered, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ConfigError(f"EPI needs two 2-D arrays of one shape, got {a.shape} and {b.shape}.")
    sel_x = np.ones(a[:, 1:].shape, dtype=bool) if edges is None else (edges[:, 1:] | edges[:, :-1])
    sel_y = np.ones(a[1:, :].shape, dtype=bool) if edges is None else (edges[1:, :] | edges[:-1, :])
    num = np.abs(np.diff(b, axis=1))[sel_x].sum() + np.abs(np.diff(b, axis=0))[sel_y].sum()
    den = np.abs(np.diff(a, axis=1))[sel_x].sum() + np.abs(np.diff(a, axis=0))[sel_y].sum()
    if den == 0:
        raise ConfigError("EPI is undefined on a constant image.")
    return float(num / den)
