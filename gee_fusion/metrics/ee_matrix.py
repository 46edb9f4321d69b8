"""Reading Earth Engine's ``errorMatrix`` into a :class:`~gee_fusion.metrics.confusion.ConfusionMatrix`,
so the in-cloud classifiers are assessed by the same code as the local models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from gee_fusion.classes import NO_LABEL
from gee_fusion.errors import DataError
from gee_fusion.metrics.confusion import ConfusionMatrix
from gee_fusion.metrics.counts import count_matrix


def from_ee_error_matrix(
    array: ArrayLike,
    *,
    names: Sequence[str],
    codes: Sequence[int] | None = None,
    order: Sequence[int] | None = None,
    ignore_index: int | None = NO_LABEL,
) -> ConfusionMatrix:
    """Read Earth Engine's ``errorMatrix(...).getInfo()`` (rows = actual, columns = predicted).

    Args:
        array: The square list of lists Earth Engine returns.
        names: Our class names, in index order.
        codes: The class values the classifier used, one per name (default 0..K-1). Earth Engine
            rows/columns whose value is not in ``codes`` (e.g. row/column 0 when labels start at 1
            and no ``order`` was given) must be empty.
        order: The ``order`` passed to ``errorMatrix`` (class value of each row/column); default
            0..N-1, Earth Engine's default.

    Raises:
        DataError: malformed matrix, ``order`` of the wrong length or with duplicates, or samples
            counted under a class value that is not in ``codes``.
    """
    m = count_matrix(array, "Earth Engine error matrix")
    n = m.shape[0]
    values = list(range(n)) if order is None else [int(v) for v in order]
    if len(values) != n or len(set(values)) != n:
        raise DataError(f"order must list {n} distinct class values (one per matrix row), got {values}.")
    class_values = list(range(len(names))) if codes is None else [int(c) for c in codes]
    wanted = set(class_values)
    for i, value in enumerate(values):
        count = int(m[i, :].sum() + m[:, i].sum() - m[i, i])
        if value not in wanted and count:
            raise DataError(
                f"The Earth Engine matrix counts {count} sample(s) with class value {value}, which is not in "
                f"the class values {class_values}; pass codes= (and order=) matching the classifier's labels."
            )
    position = {v: i for i, v in enumerate(values)}
    ours = [k for k, v in enumerate(class_values) if v in position]
    theirs = [position[class_values[k]] for k in ours]
    out = np.zeros((len(class_values), len(class_values)), dtype=np.int64)
    out[np.ix_(ours, ours)] = m[np.ix_(theirs, theirs)]
    return ConfusionMatrix.from_matrix(out, names, codes=codes, ignore_index=ignore_index)
