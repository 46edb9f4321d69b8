"""Sequential omnibus change detection for Sentinel-1 dual-polarisation intensity series.

Conradsen, Nielsen and Skriver (2016), "Determining the points of change in time series of
polarimetric SAR data" (IEEE TGRS 54(5)), as the Earth Engine community tutorial "Detecting
Changes in Sentinel-1 Imagery" (parts 2 and 3) writes it for VV/VH intensities: each image is a
diagonal 2 x 2 covariance matrix ``X_i = diag(VV, VH)`` (linear power, ``S1_GRD_FLOAT``) with
``m`` equivalent looks (4.4 for IW GRD), so ``|X| = VV * VH`` and ``p = 2``.

For a series ``X_1 .. X_k`` with ``S_j = X_1 + ... + X_j``:

- ``-2 log R_j = -2 m [ p (j log j - (j-1) log(j-1)) + (j-1) log|S_{j-1}| + log|X_j| - j log|S_j| ]``
  tests "no change between ``X_{j-1}`` and ``X_j`` given none before", asymptotically chi-square
  with ``p = 2`` degrees of freedom;
- ``-2 log Q_k = sum_{j=2..k} -2 log R_j`` tests "no change anywhere in the series",
  chi-square with ``2 (k - 1)`` degrees of freedom.

P values are ``1 - P(f/2, stat/2)`` with ``P`` the regularized lower incomplete gamma function
(``Image.gammainc``). The sequential procedure runs the test on ``X_i .. X_k`` for the first row
``i = 1``, and after a change found at interval ``c`` restarts on ``X_{c+1} .. X_k``: a change at
interval ``j`` of row ``i`` needs ``P(R_j) < alpha`` and ``P(Q) < alpha`` for that row, and that
the last change found so far is just before the row. Results: ``cmap`` (interval of the last
change, 0: none), ``smap`` (interval of the first change), ``fmap`` (how many changes) and one
``bmap`` band per interval: 0 no change, 1 brighter (both polarisations up against the mean
since the previous change), 2 darker (both down), 3 mixed.

This module only builds Earth Engine graphs (client-side loops over the known series length);
it runs on Earth Engine or the local engine alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import ee

from gee_fusion.errors import DataError

ENL = 4.4
"""Equivalent number of looks of Sentinel-1 IW GRD (the tutorial's and Conradsen et al.'s value)."""
P = 2
"""Dimension of the (diagonal) covariance matrix: VV and VH."""


def chi2_sf(statistic: ee.Image, dof: float) -> ee.Image:
    """Chi-square survival function (the P value) of an image of statistics with ``dof`` degrees
    of freedom: ``1 - gammainc(statistic / 2, dof / 2)``."""
    return ee.Image.constant(1).subtract(statistic.divide(2).gammainc(ee.Image.constant(dof / 2.0)))


def _log_det(image: ee.Image) -> ee.Image:
    """log |X| of a diagonal VV/VH covariance image: log VV + log VH."""
    return image.select(0).log().add(image.select(1).log())


def m2log_r(series: Sequence[ee.Image], j: int, *, enl: float = ENL) -> ee.Image:
    """``-2 log R_j`` of a series (``j`` from 2 to ``len(series)``, 1-based as in the paper)."""
    if not 2 <= j <= len(series):
        raise DataError(f"R_j needs 2 <= j <= {len(series)}, got j = {j}.")
    s_prev = ee.ImageCollection.fromImages(list(series[: j - 1])).sum()
    s_j = s_prev.add(series[j - 1])
    const = P * (j * math.log(j) - (j - 1) * math.log(j - 1))
    inner = _log_det(s_prev).multiply(j - 1).add(_log_det(series[j - 1])).add(const)
    inner = inner.subtract(_log_det(s_j).multiply(j))
    return inner.multiply(-2.0 * enl).rename("m2logR")


@dataclass(frozen=True)
class RowTests:
    """The tests of one row of the sequential procedure (the series from image ``i`` on)."""

    i: int
    p_q: ee.Image
    p_r: tuple[ee.Image, ...]  # P(R_j) for j = 2 .. len(row)
    m2log_q: ee.Image


def row_tests(series: Sequence[ee.Image], i: int, *, enl: float = ENL) -> RowTests:
    """``-2 log R_j`` P values and the omnibus ``Q`` of ``series[i-1:]`` (``i`` 1-based)."""
    row = list(series[i - 1 :])
    stats = [m2log_r(row, j, enl=enl) for j in range(2, len(row) + 1)]
    m2log_q = ee.ImageCollection.fromImages(stats).sum().rename("m2logQ")
    return RowTests(
        i=i,
        p_q=chi2_sf(m2log_q, P * (len(row) - 1)).rename("pQ"),
        p_r=tuple(chi2_sf(s, P).rename("pR") for s in stats),
        m2log_q=m2log_q,
    )


def _direction(before_mean: ee.Image, after: ee.Image) -> ee.Image:
    """1 where both polarisations rise, 2 where both fall, 3 otherwise."""
    up = after.subtract(before_mean)
    both_up = up.select(0).gt(0).And(up.select(1).gt(0))
    both_down = up.select(0).lt(0).And(up.select(1).lt(0))
    return ee.Image.constant(3).where(both_up, 1).where(both_down, 2)


def _pick(rows: Sequence[ee.Image], active: Sequence[ee.Image]) -> ee.Image:
    """Per pixel, the value of the one active row (rows are 0 where inactive)."""
    return ee.ImageCollection.fromImages([r.multiply(a) for r, a in zip(rows, active, strict=True)]).sum()


def change_maps(series: Sequence[ee.Image], *, alpha: float = 0.01, enl: float = ENL) -> ee.Image:
    """The sequential omnibus change maps of a VV/VH series of ONE relative orbit.

    Args:
        series: Linear-power images (first band VV, second VH), in time order, same orbit.
        alpha: Significance level of each test.
        enl: Equivalent number of looks.

    Returns:
        One image: ``cmap``, ``smap``, ``fmap`` and ``bmap_1 .. bmap_{k-1}`` (uint8; interval
        ``t`` lies between images ``t`` and ``t + 1``, 1-based), masked where any image of the
        series is masked (the statistics need every date).

    Raises:
        DataError: With fewer than three images, or alpha outside (0, 1).
    """
    k = len(series)
    if k < 3:
        raise DataError(
            f"The omnibus test needs at least three images of one relative orbit, got {k}: "
            "lengthen the period or add the other orbit's series separately."
        )
    if not 0.0 < alpha < 1.0:
        raise DataError(f"alpha must lie in (0, 1), got {alpha}.")
    series = [ee.Image(s).select([0, 1]) for s in series]
    # Row i (1-based) tests the series from image i on. Its first significant interval, and the
    # direction there, are computed for every row at once (flat graphs), then chained: the active
    # row is the one just after the last change found. The graph depth grows with k, not k^2,
    # which keeps it serialisable for long series.
    never = ee.Image.constant(k).toUint8()
    firsts, directions = [], []
    for i in range(1, k):
        tests = row_tests(series, i, enl=enl)
        candidates, turns = [], []
        for jj, p_r in enumerate(tests.p_r):
            interval = i + jj  # R_j (j = jj + 2) compares row images j-1 and j: series interval i+j-2
            hit = p_r.lt(alpha).And(tests.p_q.lt(alpha))
            candidates.append(never.where(hit, interval))
            before_mean = ee.ImageCollection.fromImages(series[i - 1 : interval]).mean()
            turns.append(_direction(before_mean, series[interval]).toUint8())
        first = ee.ImageCollection.fromImages(candidates).min()
        first = first.where(first.eq(k), 0)
        direction = ee.Image.constant(0).toUint8()
        for jj, turn in enumerate(turns):
            direction = direction.where(first.eq(i + jj), turn)
        firsts.append(first.toUint8())
        directions.append(direction)
    zero = ee.Image.constant(0).toUint8()
    last, fmap = zero, zero
    bmap = [zero for _ in range(k - 1)]
    for _ in range(k - 1):  # at most k - 1 changes
        active = [last.eq(i - 1) for i in range(1, k)]
        nxt = ee.ImageCollection.fromImages(
            [f.multiply(a) for f, a in zip(firsts, active, strict=True)]
        ).sum()
        turn = ee.ImageCollection.fromImages(
            [d.multiply(a) for d, a in zip(directions, active, strict=True)]
        ).sum()
        found = nxt.gt(0)
        for t in range(1, k):
            bmap[t - 1] = bmap[t - 1].where(nxt.eq(t), turn)
        fmap = fmap.add(found)
        last = last.where(found, nxt).toUint8()
    cmap, smap = last, firsts[0]
    names = ["cmap", "smap", "fmap", *[f"bmap_{t}" for t in range(1, k)]]
    valid = ee.ImageCollection.fromImages([s.mask().reduce(ee.Reducer.min()) for s in series]).min()
    return ee.Image.cat([cmap, smap, fmap, *bmap]).toUint8().rename(names).updateMask(valid)
