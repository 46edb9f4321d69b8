"""Fusing the two kinds of evidence of urban change (numpy, on fetched monthly rasters).

Optical classification sees what a pixel became (built-up) but confuses bare fields with building
sites and needs clear months; the SAR omnibus test sees when the backscatter changed, through
clouds, but also flags every crop cycle. An **urbanisation** is a persistent transition from a
non-built class to a built one (:func:`urbanisation`); it is **confirmed** when Sentinel-1 saw a
brightening (new walls: double bounce) within ``tolerance`` months of it (:func:`confirmed`). A
**SAR-led urbanisation** is the other way round: a Sentinel-1 brightening whose month and the
``persist - 1`` months after it are classified built (:func:`sar_led_urbanisation`); it catches
building sites that the classifier already calls built-up during the works (rubble and concrete
look like roofs), where no class transition happens in the period. A **demolition** is the
reverse, a persistent transition from a built class to a non-built one (:func:`demolition`),
confirmed by a darkening (walls gone) within ``tolerance`` months; a **SAR-led demolition**
(:func:`sar_led_demolition`) is a lasting Sentinel-1 darkening of a pixel classified built before
it, for rubble the classifier still calls built.
"""

from __future__ import annotations

import warnings
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


def sar_led_urbanisation(
    classes: Sequence[np.ndarray],
    month_numbers: np.ndarray,
    sar_month: np.ndarray,
    sar_direction: np.ndarray,
    *,
    persist: int = 2,
    built: Sequence[int] = BUILT_6,
) -> tuple[np.ndarray, np.ndarray]:
    """Where the last Sentinel-1 change is a brightening (``monitoring.sar`` code 1) and the class
    maps of its month and the ``persist - 1`` months after are built; with the index (into
    ``classes``) of that month, -1 elsewhere.

    Args:
        classes: Monthly class maps, in month order.
        month_numbers: Their months (months since 1970-01).
        sar_month: The last change month per pixel (months since 1970-01, 0: none).
        sar_direction: Its direction (1 brighter, 2 darker, 3 mixed).
        persist: Months the built class must hold from the change on.
        built: The built classes.
    """
    stack = np.stack([np.asarray(c) for c in classes])
    index = np.searchsorted(month_numbers, sar_month)
    known = (sar_month > 0) & (sar_direction == 1) & (index + persist <= len(classes))
    index = np.where(known, index, -1)
    hit = np.zeros(sar_month.shape, dtype=bool)
    for t in np.unique(index[known]):
        sel = index == t
        held = np.asarray(np.isin(stack[t : t + persist], built).all(axis=0))
        hit[sel] = held[sel]
    return hit, np.where(hit, index, -1)


def sar_led_demolition(
    classes: Sequence[np.ndarray],
    month_numbers: np.ndarray,
    vv_db: np.ndarray,
    sar_month: np.ndarray,
    sar_direction: np.ndarray,
    *,
    persist: int = 2,
    drop_db: float = 3.0,
    built: Sequence[int] = BUILT_6,
) -> tuple[np.ndarray, np.ndarray]:
    """Where the last Sentinel-1 change is a darkening (code 2) of a pixel classified built in the
    ``persist`` months before it, after which its monthly mean VV stays at least ``drop_db`` below
    its mean before (walls gone: the double bounce is lost for good, not a wet or windy month);
    with the index of the change month, -1 elsewhere. It catches demolitions whose rubble the
    classifier still calls built (no class transition), as :func:`sar_led_urbanisation` catches
    building sites.

    Args:
        classes: Monthly class maps, in month order.
        month_numbers: Their months (months since 1970-01).
        vv_db: Monthly mean VV (dB, NaN: no acquisition), shape (months, rows, cols).
        sar_month: The last change month per pixel (months since 1970-01, 0: none).
        sar_direction: Its direction (1 brighter, 2 darker, 3 mixed).
        persist: Months classified built before the change, and months of VV after it.
        drop_db: Least drop of the mean VV after the change against before.
        built: The built classes.
    """
    stack = np.stack([np.asarray(c) for c in classes])
    vv = np.asarray(vv_db, dtype=np.float32)
    index = np.searchsorted(month_numbers, sar_month)
    known = (sar_month > 0) & (sar_direction == 2) & (index >= persist) & (index + persist <= len(classes))
    index = np.where(known, index, -1)
    hit = np.zeros(sar_month.shape, dtype=bool)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN spans: no evidence
        for t in np.unique(index[known]):
            sel = index == t
            was_built = np.isin(stack[t - persist : t], built).all(axis=0)
            drop = np.nanmean(vv[:t], axis=0) - np.nanmean(vv[t:], axis=0)
            hit[sel] = (was_built & (drop >= drop_db))[sel]
    return hit, np.where(hit, index, -1)


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
