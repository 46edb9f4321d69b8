"""Small-object removal (minimum mapping unit) for class maps, in memory or streamed by strips.

A connected component (one class, 8- or 4-connected) of fewer than ``min_size`` pixels is
replaced by the majority class of the pixels that surround it (its one-pixel ring: the dilation
of the component by the same connectivity, minus the component). Ring pixels that belong to
components that are kept (not small) vote first; a component surrounded only by other small
components takes the majority of its whole ring. Ties go to the smallest class code. All small
components are replaced at once from the original map (one pass). Nodata pixels are never
changed and never vote.

:class:`StreamingSieve` applies the same rule to a map that arrives as horizontal strips,
processing each strip with a halo of ``2 * min_size`` rows above and below. A component of fewer
than ``min_size`` pixels spans fewer than ``min_size`` rows, so every small component touching the
output rows, its ring, and the components its ring touches are classified exactly inside that
window (a component reaching the window's cut edge spans at least ``min_size`` rows, hence is truly
large). The streamed result is therefore identical to :func:`remove_small_objects` on the whole
map; memory is ``(strip + 4 min_size) x width`` pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gee_fusion.errors import ConfigError


def _structure(connectivity: int) -> np.ndarray:
    if connectivity == 8:
        return np.ones((3, 3), dtype=bool)
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    raise ConfigError(f"connectivity={connectivity}: use 4 or 8.")


def _label_by_class(codes: np.ndarray, nodata: int | None, structure: np.ndarray) -> tuple[np.ndarray, int]:
    labels = np.zeros(codes.shape, dtype=np.int64)
    total = 0
    for value in np.unique(codes):
        if nodata is not None and value == nodata:
            continue
        lab, n = ndimage.label(codes == value, structure=structure)
        mask = lab > 0
        labels[mask] = lab[mask] + total
        total += n
    return labels, total


def _vote(owner: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Majority class per owner label (ties: smallest class): returns (owners, classes)."""
    if owner.size == 0:
        return owner, cls
    pairs, counts = np.unique(np.stack([owner, cls.astype(np.int64)]), axis=1, return_counts=True)
    order = np.lexsort((pairs[1], -counts, pairs[0]))
    pairs = pairs[:, order]
    first = np.ones(pairs.shape[1], dtype=bool)
    first[1:] = pairs[0, 1:] != pairs[0, :-1]
    return pairs[0, first], pairs[1, first]


def remove_small_objects(
    codes: np.ndarray,
    min_size: int,
    *,
    nodata: int | None = None,
    connectivity: int = 8,
    keep_top: bool = False,
    keep_bottom: bool = False,
    keep_left: bool = False,
    keep_right: bool = False,
) -> np.ndarray:
    """Replace connected components smaller than ``min_size`` px by their surrounding majority class.

    Args:
        codes: (height, width) integer class map.
        min_size: Components with fewer pixels are replaced; ``<= 1`` changes nothing.
        nodata: Value that is never changed and never votes.
        connectivity: 8 or 4.
        keep_top: Keep components touching the first row (the map continues above it).
        keep_bottom: Keep components touching the last row (the map continues below it).
        keep_left: Keep components touching the first column (the map continues left of it).
        keep_right: Keep components touching the last column (the map continues right of it).

    Returns:
        A new class map.
    """
    structure = _structure(connectivity)
    out = np.array(codes, copy=True)
    if min_size <= 1 or codes.size == 0:
        return out
    labels, n = _label_by_class(codes, nodata, structure)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small_label = sizes < min_size
    small_label[0] = False
    if keep_top:
        small_label[labels[0]] = False
    if keep_bottom:
        small_label[labels[-1]] = False
    if keep_left:
        small_label[labels[:, 0]] = False
    if keep_right:
        small_label[labels[:, -1]] = False
    small = small_label[labels]
    if not small.any():
        return out
    height, width = codes.shape
    ys, xs = np.nonzero(small)
    owners, neighbours = [], []
    for dy, dx in zip(*np.nonzero(structure), strict=True):
        dy, dx = int(dy) - 1, int(dx) - 1
        if dy == 0 and dx == 0:
            continue
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        p_lab = labels[ys[inside], xs[inside]]
        q_y, q_x = ny[inside], nx[inside]
        ring = (labels[q_y, q_x] != p_lab) & (labels[q_y, q_x] > 0)
        owners.append(p_lab[ring])
        neighbours.append(q_y[ring] * width + q_x[ring])
    # Each ring pixel counts once per component, however many of its pixels it touches.
    pairs = np.unique(np.stack([np.concatenate(owners), np.concatenate(neighbours)]), axis=1)
    owner, flat = pairs[0], pairs[1]
    ring_cls = codes.ravel()[flat]
    kept = ~small.ravel()[flat]
    replacement = np.full(n + 1, -1, dtype=np.int64)
    lab_all, cls_all = _vote(owner, ring_cls)
    replacement[lab_all] = cls_all
    lab_kept, cls_kept = _vote(owner[kept], ring_cls[kept])
    replacement[lab_kept] = cls_kept  # kept neighbours vote first
    new = replacement[labels[small]]
    change = new >= 0
    out[ys[change], xs[change]] = new[change].astype(codes.dtype)
    return out


class StreamingSieve:
    """Apply :func:`remove_small_objects` to a map arriving as strips, top to bottom.

    The strips are full-width, or the columns of a column band: then the map continues beyond
    a cut side (``cut_left`` / ``cut_right``), the band must include ``halo`` columns on each cut
    side (two ``min_size``, as the rows), and only the columns at least ``halo`` px from a cut side
    are exact (the band's core).

    Args:
        height: Map height (px).
        width: Width of the strips (px).
        min_size: Minimum component size (px).
        nodata: Value never changed.
        connectivity: 8 or 4.
        cut_left: The map continues left of the strips' first column.
        cut_right: The map continues right of the strips' last column.
    """

    def __init__(
        self,
        height: int,
        width: int,
        min_size: int,
        *,
        nodata: int | None = None,
        connectivity: int = 8,
        cut_left: bool = False,
        cut_right: bool = False,
    ) -> None:
        _structure(connectivity)
        self.cut_left, self.cut_right = cut_left, cut_right
        self.height, self.width = height, width
        self.min_size = min_size
        self.halo = 2 * max(min_size, 0)
        self.nodata, self.connectivity = nodata, connectivity
        self._buffer: np.ndarray | None = None
        self._buffer_start = 0  # raster row of the buffer's first row
        self._done = 0  # rows already emitted
        self.max_rows_held = 0

    @property
    def rows_held(self) -> int:
        """Rows currently buffered."""
        return 0 if self._buffer is None else self._buffer.shape[0]

    def push(self, row: int, strip: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add the strip starting at ``row``; return the finished (row, strip) pieces."""
        if self._buffer is None:
            if row != 0:
                raise ConfigError(f"StreamingSieve expects strips from row 0, got row {row}.")
            self._buffer = np.array(strip, copy=True)
        else:
            if row != self._buffer_start + self._buffer.shape[0]:
                raise ConfigError(f"StreamingSieve expects consecutive strips; got row {row}.")
            self._buffer = np.concatenate([self._buffer, strip], axis=0)
        self.max_rows_held = max(self.max_rows_held, self._buffer.shape[0])
        end = self._buffer_start + self._buffer.shape[0]
        if end >= self.height:
            return self._emit(end, final=True)
        if end - self.halo > self._done:
            return self._emit(end - self.halo, final=False)
        return []

    def _emit(self, until: int, *, final: bool) -> list[tuple[int, np.ndarray]]:
        assert self._buffer is not None
        end = self._buffer_start + self._buffer.shape[0]
        result = remove_small_objects(
            self._buffer,
            self.min_size,
            nodata=self.nodata,
            connectivity=self.connectivity,
            keep_top=self._buffer_start > 0,
            keep_bottom=not final and end < self.height,
            keep_left=self.cut_left,
            keep_right=self.cut_right,
        )
        piece = result[self._done - self._buffer_start : until - self._buffer_start]
        out = [(self._done, piece)]
        self._done = until
        keep_from = max(0, until - self.halo)
        self._buffer = self._buffer[keep_from - self._buffer_start :].copy()
        self._buffer_start = keep_from
        return out
