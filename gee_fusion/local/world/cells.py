"""Coarser pixels from cells of a 10 m field of the demo world: the 20 m and 60 m bands of
Sentinel-2 (means in integer arithmetic, rounded half to even as ``np.rint`` of the exact mean; the
bitwise OR of QA60; the centre sample of SCL)."""

from __future__ import annotations

import sys

import numpy as np


def reduce_cells(arr: np.ndarray, factor: int, how: str) -> np.ndarray:
    """``factor`` x ``factor`` cells of a 10 m field reduced to one coarser pixel: the mean (integers
    rounded half to even, as ``np.rint`` of the exact mean), the bitwise OR, or the centre sample."""
    if factor == 1:
        return arr
    h, w = arr.shape[0] // factor, arr.shape[1] // factor
    cut = arr[: h * factor, : w * factor]
    if how == "mean":
        if arr.dtype.kind not in "iu":  # summed in a fixed order: the same for a block's part
            total = np.zeros((h, w), dtype=np.float64)
            for r in range(factor):
                for c in range(factor):
                    total += cut[r::factor, c::factor]
            return (total / (factor * factor)).astype(arr.dtype)
        if factor == 2 and arr.dtype == np.dtype("<u2") and sys.byteorder == "little":
            return pair_mean_u16(cut if cut.strides[-1] == 2 else np.ascontiguousarray(cut))
        return integer_mean(cut, factor).astype(arr.dtype)
    blocks_ = cut.reshape(h, factor, w, factor)
    if how == "or":
        return np.bitwise_or.reduce(np.bitwise_or.reduce(blocks_, axis=3), axis=1)
    return blocks_[:, factor // 2, :, factor // 2]


def integer_mean(arr: np.ndarray, factor: int) -> np.ndarray:
    """Means of the ``factor`` x ``factor`` cells of an integer field, rounded half to even, in
    integer arithmetic (exact: the same as ``np.rint`` of the float mean, several times faster)."""
    acc = np.dtype(np.uint32 if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2 else np.int64)
    rows: np.ndarray = arr[0::factor].astype(acc)
    for k in range(1, factor):
        np.add(rows, arr[k::factor], out=rows)
    total: np.ndarray = rows[:, 0::factor].copy()
    for k in range(1, factor):
        np.add(total, rows[:, k::factor], out=total)
    n = factor * factor
    q, r = np.divmod(total, acc.type(n))
    r *= 2
    return q + ((r > n) | ((r == n) & (q % 2 == 1)))


def pair_mean_u16(arr: np.ndarray) -> np.ndarray:
    """:func:`integer_mean` of 2 x 2 cells of a little-endian uint16 field whose rows are contiguous
    (a block's part): each row read as uint32 words, two pixels a word (about 15 times faster than
    strided slices)."""
    h, w = arr.shape[0] // 2, arr.shape[1] // 2
    pairs = arr.reshape(h, 2, 2 * w)
    top, bottom = pairs[:, 0, :].view(np.uint32), pairs[:, 1, :].view(np.uint32)
    low = np.uint32(0xFFFF)
    total = top & low
    total += top >> 16
    total += bottom & low
    total += bottom >> 16
    odd = total >> 2
    odd &= 1
    total += odd  # total = 4q + r: (total + 1 + (q & 1)) >> 2 rounds r = 2 to the even q
    total += 1
    total >>= 2
    return total.astype(np.uint16)
