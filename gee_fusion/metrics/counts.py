"""Checking what goes into a confusion matrix: class indices in range, square count matrices,
and safe division for the metrics derived from them."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from gee_fusion.errors import DataError


def divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def describe(values: np.ndarray) -> str:
    """The distinct values, the first ten of them, for an error message."""
    bad = np.unique(values)
    shown = ", ".join(str(v) for v in bad[:10].tolist())
    return shown + (f", ... ({bad.size} distinct values)" if bad.size > 10 else "")


def check_range(values: np.ndarray, k: int, what: str) -> None:
    """Refuse class indices outside 0..k-1 (naming them)."""
    if values.size == 0 or (values.min() >= 0 and values.max() < k):
        return
    bad = values[(values < 0) | (values >= k)]
    raise DataError(
        f"{what} holds {bad.size} value(s) outside the class indices 0..{k - 1}: {describe(bad)}. "
        "Map class codes to indices 0..K-1 first (and mark unlabelled pixels with ignore_index)."
    )


def count_matrix(matrix: ArrayLike, what: str) -> np.ndarray:
    """Validate a square matrix of non-negative integer counts; return it as int64."""
    try:
        m = np.asarray(matrix)
    except ValueError as exc:  # ragged nested lists
        raise DataError(f"{what} is not a rectangular matrix: {exc}") from exc
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise DataError(f"{what} must be a non-empty square 2-D matrix, got shape {m.shape}.")
    if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
        raise DataError(f"{what} must hold numeric counts, got dtype {m.dtype}.")
    if not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(m != np.round(m)):
        raise DataError(f"{what} must hold non-negative whole counts.")
    return m.astype(np.int64)
