"""The rolling strip accumulator of streamed sliding-window inference.

It holds ``tile`` rows x raster width of weighted class probabilities (``num_classes`` planes),
their weight sum and the valid mask, on the inference device. Tiles of the current tile row are
added at row 0 of the strip; :meth:`StripAccumulator.finish` hands out the first ``n`` rows
(divided by their weight sum) once no later tile can touch them and slides the rest up. Its size
never depends on the raster's height: ``rows`` is fixed at construction.
"""

from __future__ import annotations

import numpy as np
import torch

from gee_fusion.errors import InferenceError


class StripAccumulator:
    """Weighted-probability and weight-sum strip of ``rows`` x ``width``.

    Args:
        num_classes: Number of probability planes K.
        rows: Strip height (the tile size).
        width: Raster width.
        device: Torch device of the sums.
    """

    def __init__(self, num_classes: int, rows: int, width: int, device: torch.device) -> None:
        self.rows, self.width, self.num_classes = rows, width, num_classes
        self.weighted = torch.zeros((num_classes, rows, width), dtype=torch.float32, device=device)
        self.weight = torch.zeros((rows, width), dtype=torch.float32, device=device)
        self.valid = np.ones((rows, width), dtype=bool)

    @property
    def nbytes(self) -> int:
        """Bytes held by the accumulator."""
        return int(self.weighted.numel() * 4 + self.weight.numel() * 4 + self.valid.nbytes)

    def add(
        self,
        probabilities: torch.Tensor,
        window: torch.Tensor,
        col: int,
        valid: np.ndarray | None = None,
        *,
        add_weight: bool = True,
    ) -> None:
        """Add one tile's (K, h, w) probabilities weighted by its (h, w) window at column ``col``.

        ``h`` and ``w`` are the tile's part inside the raster; the tile starts at strip row 0.
        With ``add_weight=False`` the caller adds the weights itself (:meth:`add_weight`).
        """
        h, w = window.shape
        if h > self.rows or col < 0 or col + w > self.width:
            raise InferenceError(f"A {h} x {w} tile at column {col} does not fit the {self.rows}-row strip.")
        self.weighted[:, :h, col : col + w].addcmul_(probabilities, window)
        if add_weight:
            self.weight[:h, col : col + w] += window
        if valid is not None:
            self.valid[:h, col : col + w] = valid

    def add_weight(self, weight: torch.Tensor) -> None:
        """Add a (h, width) weight plane (e.g. a whole tile row's windows) at strip row 0."""
        self.weight[: weight.shape[0]] += weight

    def finish(self, n: int) -> tuple[torch.Tensor, np.ndarray]:
        """Blended (K, n, width) probabilities and (n, width) valid mask of the first ``n`` rows.

        The remaining rows slide up by ``n``; the freed rows are cleared.

        Raises:
            InferenceError: If a finished pixel has no weight (it was covered by no tile).
        """
        if not 0 < n <= self.rows:
            raise InferenceError(f"Cannot finish {n} rows of a {self.rows}-row strip.")
        weight = self.weight[:n]
        if bool((weight <= 0).any()):
            raise InferenceError(
                f"{int((weight <= 0).sum())} pixels were covered by no tile or got zero total weight: "
                "use 0 <= overlap < tile and a blend with positive weights."
            )
        probabilities = self.weighted[:, :n] / weight
        valid = self.valid[:n].copy()
        keep = self.rows - n
        if keep:  # slide the unfinished rows up (clone first where source and target overlap)
            overlapping = n < keep
            self.weighted[:, :keep] = self.weighted[:, n:].clone() if overlapping else self.weighted[:, n:]
            self.weight[:keep] = self.weight[n:].clone() if overlapping else self.weight[n:]
            self.valid[:keep] = self.valid[n:]
        self.weighted[:, keep:] = 0
        self.weight[keep:] = 0
        self.valid[keep:] = True
        return probabilities, valid
