"""Fusing the two kinds of evidence of urban change (numpy, on fetched monthly rasters).

Optical classification sees what a pixel became (built-up) but confuses bare fields with building
sites and needs clear months; the SAR omnibus test sees when the backscatter changed, through
clouds, but also flags every crop cycle. An **urbanisation** is a persistent transition from a
non-built class to a built one (:func:`urbanisation`); it is **confirmed** when Sentinel-1 saw a
brightening (new walls: double bounce) within ``tolerance`` months of it (:func:`confirmed`). A
**demolition** is the reverse, a persistent transition from a built class to a non-built one
(:func:`demolition`), confirmed by a darkening (walls gone) within ``tolerance`` months.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gee_fusion.monitoring.optical import BUILT_6, Transitions


def urbanisation(transitions: Transitions, *, built: Sequence[int] = BUILT_6) -> np.ndarray:
    """Where a persistent transition goes from a non-built class to a built one."""
    into = np.isin(transitions.after, built) & ~np.isin(transitions.before, built)
    return (transitions.onset >= 0) & into


def demolition(transitions: Transitions, *, built: Sequence[int] = BUILT_6) -> np.ndarray:
    """Where a persistent transition goes from a built class to a non-built one."""
    out_of = np.isin(transitions.before, built) & ~np.isin(transitions.after, built)
    return (transitions.onset >= 0) & out_of


def confirmed(
    optical_month: np.ndarray,
    sar_month: np.ndarray,
    sar_direction: np.ndarray,
    *,
    tolerance: int = 1,
    direction: int = 1,
) -> np.ndarray:
    """Where an optical change month (months since 1970-01, < 0: none) has a Sentinel-1 change of
    ``direction`` (``monitoring.sar``'s codes: 1 brightening, 2 darkening) within ``tolerance`` months
    (``sar_month`` 0: none)."""
    seen = (optical_month >= 0) & (sar_month > 0) & (sar_direction == direction)
    return seen & (np.abs(optical_month.astype(np.int64) - sar_month.astype(np.int64)) <= tolerance)
