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
it, for rubble the classifier still calls built. A **site opening**
(:func:`site_opening`) is vegetated land that becomes bare, water or built for good (topsoil
stripped: the first state of a building site, which the classifier calls open land or built),
confirmed by a Sentinel-1 change of either direction near it (:func:`sar_changed_near`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gee_fusion.monitoring.optical import BUILT_6, Transitions, class_at, class_stack, persistent_changes

STEP_DB = 2.0
"""Least lasting step of the monthly mean VV (dB) taken as Sentinel-1 evidence of walls built or gone."""
SITE_STEP_DB = 1.5
"""Least lasting step of the monthly mean VV (dB), either way, taken as Sentinel-1 evidence of a site
opening: stripped soil, spoil heaps and machinery change the backscatter of the field or meadow they
replace by less than walls do (a rougher surface brightens it, a smoother dry one darkens it)."""
HOLD_SHARE = 0.75
"""Least share of the months from a class change to the latest month classified in its new state
(:func:`holds`): a field classified built two months running, then grassland again, was a
classification error, not a building. Measured with ``benchmarks/monitoring.py`` on two 36 km2
areas: 0.5 lets wet-spring fields through at the end of the period, 0.9 loses demolitions whose
rubble is classified built for months."""
VEGETATED_6 = (3, 4, 5)
"""Vegetated classes of the 6-class grouping: agriculture, grassland, woody."""
OPENED_6 = (1, 2, 6)
"""What a site opening turns vegetated land into: built classes, or water, wetland and open land."""


def into_built(before: np.ndarray, after: np.ndarray, *, built: Sequence[int] = BUILT_6) -> np.ndarray:
    """Which class changes (class before, class after) go from a non-built class to a built one."""
    return np.isin(after, built) & ~np.isin(before, built)


def out_of_built(before: np.ndarray, after: np.ndarray, *, built: Sequence[int] = BUILT_6) -> np.ndarray:
    """Which class changes (class before, class after) go from a built class to a non-built one."""
    return np.isin(before, built) & ~np.isin(after, built)


def urbanisation(transitions: Transitions, *, built: Sequence[int] = BUILT_6) -> np.ndarray:
    """Where a persistent transition goes from a non-built class to a built one."""
    return (transitions.onset >= 0) & into_built(transitions.before, transitions.after, built=built)


def demolition(transitions: Transitions, *, built: Sequence[int] = BUILT_6) -> np.ndarray:
    """Where a persistent transition goes from a built class to a non-built one."""
    return (transitions.onset >= 0) & out_of_built(transitions.before, transitions.after, built=built)


def _months_in(stack: np.ndarray, state: Sequence[int]) -> np.ndarray:
    """Per pixel, how many of the months before each month index are classified in ``state``:
    ``(months + 1, rows, cols)``, entry t counting months 0 .. t - 1."""
    counts = np.zeros((stack.shape[0] + 1, *stack.shape[1:]), dtype=np.int32)
    np.cumsum(np.isin(stack, state), axis=0, out=counts[1:])
    return counts


def holds(
    classes: Sequence[np.ndarray] | np.ndarray,
    onset: np.ndarray,
    state: Sequence[int],
    *,
    share: float = HOLD_SHARE,
) -> np.ndarray:
    """Where a change at month index ``onset`` (-1: none) holds: at least ``share`` of the months
    from ``onset`` to the latest one are classified in ``state`` (e.g. the built classes for an
    urbanisation). The job reruns over every month so far, so a change that reverts later is
    withdrawn then."""
    stack = class_stack(classes)
    count = stack.shape[0]
    counts = _months_in(stack, state)
    since = np.take_along_axis(counts, np.clip(onset, 0, count)[None], 0)[0]
    return np.asarray((onset >= 0) & (counts[count] - since >= share * np.maximum(count - onset, 1)))


def held_before(
    classes: Sequence[np.ndarray] | np.ndarray,
    onset: np.ndarray,
    state: Sequence[int],
    *,
    share: float,
) -> np.ndarray:
    """Where the state that a change at month index ``onset`` (-1: none) leaves had been there: at
    least ``share`` of the months before ``onset`` are classified in ``state`` (the non-built
    classes, for an urbanisation). A Sentinel-1 brightening of a pixel that the forests called built
    nearly all the time before is a block of the city, not a new building."""
    stack = class_stack(classes)
    before = np.take_along_axis(_months_in(stack, state), np.clip(onset, 0, stack.shape[0])[None], 0)[0]
    return np.asarray((onset > 0) & (before >= share * np.maximum(onset, 1)))


def lasting_change(
    classes: Sequence[np.ndarray] | np.ndarray,
    old: Sequence[int],
    new: Sequence[int],
    *,
    share: float = HOLD_SHARE,
) -> Callable[[int], np.ndarray]:
    """Per month index t, where a change at t from ``old`` classes to ``new`` ones lasts: it holds
    (:func:`holds`: ``new`` in at least ``share`` of the months from t to the latest one), and the
    state it leaves had been there (:func:`held_before`: ``old`` in at least ``1 - share`` of the
    months before t; a block of the city that the forests called woodland for two months and built
    again is no urbanisation). For the ``accept`` of
    :func:`gee_fusion.monitoring.optical.persistent_changes`."""
    stack = class_stack(classes)
    count = stack.shape[0]
    in_new, in_old = _months_in(stack, new), _months_in(stack, old)
    return lambda t: np.asarray(
        (in_new[count] - in_new[t] >= share * (count - t)) & (in_old[t] >= (1.0 - share) * t)
    )


def site_opening(
    classes: Sequence[np.ndarray] | np.ndarray, *, persist: int = 2, share: float | None = None
) -> Transitions:
    """The first month each pixel leaves the vegetated classes (:data:`VEGETATED_6`) for good: the
    ``persist`` months before it are vegetated (any of them: a meadow classified cropland one month
    is still green), the ``persist`` months from it on are built, water or open (any of them: a site
    is classified open land one month, built the next). With, as classes, those of the month
    before and of that month. With ``share``, the first such month from which the site lasts
    (:func:`lasting_change` from :data:`VEGETATED_6` to :data:`OPENED_6`).

    Raises:
        DataError: When the series is shorter than ``2 * persist`` months.
    """
    stack = class_stack(classes)
    group = np.where(np.isin(stack, VEGETATED_6), 0, np.where(np.isin(stack, OPENED_6), 1, 2))
    accept = None if share is None else lasting_change(stack, VEGETATED_6, OPENED_6, share=share)
    onset = persistent_changes(
        group, persist=persist, keep=lambda b, a: (b == 0) & (a == 1), accept=accept
    ).onset
    known = onset >= 0
    before, after = class_at(stack, onset - 1), class_at(stack, onset)
    return Transitions(onset, np.where(known, before, 0), np.where(known, after, 0))


def sar_changed_near(
    onset: np.ndarray,
    month_numbers: np.ndarray,
    sar_last: np.ndarray,
    steps: VVSteps,
    *,
    tolerance: int = 1,
    step_db: float = SITE_STEP_DB,
) -> np.ndarray:
    """Where a change at month index ``onset`` (-1: none) has Sentinel-1 evidence of either
    direction within ``tolerance`` months: the omnibus test's last change (``sar_last``, months since
    1970-01, 0: none), or the monthly VV's largest lasting rise or drop (:func:`vv_steps`) of at
    least ``step_db``."""
    known = onset >= 0
    when = np.where(known, month_numbers[np.maximum(onset, 0)], -1)
    gap = np.abs(when.astype(np.int64) - sar_last.astype(np.int64))
    by_test = known & (sar_last > 0) & (gap <= tolerance)
    rise = (steps.rise >= step_db) & (np.abs(steps.rise_at - onset) <= tolerance)
    drop = (steps.drop >= step_db) & (np.abs(steps.drop_at - onset) <= tolerance)
    return np.asarray(by_test | (known & (rise | drop)))


def sar_led_urbanisation(
    classes: Sequence[np.ndarray] | np.ndarray,
    month_numbers: np.ndarray,
    sar_month: np.ndarray,
    sar_direction: np.ndarray,
    *,
    persist: int = 2,
    built: Sequence[int] = BUILT_6,
    steps: VVSteps | None = None,
    rise_db: float = STEP_DB,
) -> tuple[np.ndarray, np.ndarray]:
    """Where the last Sentinel-1 change is a brightening (``monitoring.sar`` code 1), or (with
    ``steps``) the monthly mean VV rises for good by at least ``rise_db`` (:func:`vv_steps`) at a
    month before which the pixel was not built the whole time, and the class maps of that month
    and the ``persist - 1`` months after are built; with the index (into ``classes``) of that
    month, -1 elsewhere.

    Args:
        classes: Monthly class maps, in month order.
        month_numbers: Their months (months since 1970-01).
        sar_month: The last change month per pixel (months since 1970-01, 0: none).
        sar_direction: Its direction (1 brighter, 2 darker, 3 mixed).
        persist: Months the built class must hold from the change on.
        built: The built classes.
        steps: The monthly VV's lasting steps (:func:`vv_steps`).
        rise_db: Least lasting rise of the monthly VV.
    """
    stack = class_stack(classes)
    index = np.searchsorted(month_numbers, sar_month)
    known = (sar_month > 0) & (sar_direction == 1) & (index + persist <= len(classes))
    index = np.where(known, index, -1)
    if steps is not None:  # or a lasting rise of the monthly VV from a pixel not built before
        up, rise = steps.rise_at, steps.rise
        stepped = (rise >= rise_db) & (up >= 1) & ~known
        for t in np.unique(up[stepped]):
            sel = stepped & (up == t)
            sel &= ~np.isin(stack[max(0, t - persist) : t], built).all(axis=0)
            index = np.where(sel, t, index)
            known |= sel
    hit = np.zeros(sar_month.shape, dtype=bool)
    for t in np.unique(index[known]):
        sel = index == t
        held = np.asarray(np.isin(stack[t : t + persist], built).all(axis=0))
        hit[sel] = held[sel]
    return hit, np.where(hit, index, -1)


@dataclass(frozen=True)
class VVSteps:
    """The largest lasting rise and drop of the monthly VV per pixel (:func:`vv_steps`): the index
    of the month each starts (-1: none) and its size in dB (positive; 0: none)."""

    rise_at: np.ndarray
    rise: np.ndarray
    drop_at: np.ndarray
    drop: np.ndarray


def vv_steps(vv_db: np.ndarray, *, persist: int = 2) -> VVSteps:
    """The largest lasting rise and drop of the monthly VV per pixel, in one pass. For each month t
    with ``persist`` months before and after, a step is the smaller of the local one (median of
    the ``persist`` months from t minus the median of the ``persist`` months before: it places the
    step) and the lasting one (median of every month from t minus median of every month before:
    the new level holds); NaN months are left out, and medians let one wet or windy month move
    nothing."""
    vv = np.asarray(vv_db, dtype=np.float32)
    shape = vv.shape[1:]
    rise, drop = np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)
    rise_at, drop_at = np.full(shape, -1, dtype=np.int64), np.full(shape, -1, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN sides: no step
        for t in range(persist, vv.shape[0] - persist + 1):
            local = np.nanmedian(vv[t : t + persist], axis=0) - np.nanmedian(vv[t - persist : t], axis=0)
            lasting = np.nanmedian(vv[t:], axis=0) - np.nanmedian(vv[:t], axis=0)
            up, down = np.minimum(local, lasting), np.minimum(-local, -lasting)
            higher, lower = np.isfinite(up) & (up > rise), np.isfinite(down) & (down > drop)
            rise, rise_at = np.where(higher, up, rise), np.where(higher, t, rise_at)
            drop, drop_at = np.where(lower, down, drop), np.where(lower, t, drop_at)
    return VVSteps(rise_at, rise, drop_at, drop)


def sar_led_demolition(
    classes: Sequence[np.ndarray] | np.ndarray,
    steps: VVSteps,
    *,
    persist: int = 2,
    drop_db: float = STEP_DB,
    built: Sequence[int] = BUILT_6,
) -> tuple[np.ndarray, np.ndarray]:
    """Where the monthly mean VV drops for good by at least ``drop_db`` (:func:`vv_steps`) at a
    month t, the pixel being classified built in the
    ``persist`` months before t (walls gone: the double bounce is lost for good, not a wet or windy
    month); with t, -1 elsewhere. It catches demolitions whose rubble the classifier still calls
    built (no class transition), as :func:`sar_led_urbanisation` catches building sites. A step of
    the monthly means is used rather than the omnibus test's last change, which on vegetated
    ground (the lot a demolition leaves) is usually a later crop or mowing change.

    Args:
        classes: Monthly class maps, in month order.
        steps: The monthly VV's lasting steps (:func:`vv_steps`).
        persist: Months classified built before the drop.
        drop_db: Least lasting drop of the monthly VV.
        built: The built classes.
    """
    stack = class_stack(classes)
    index, drop = steps.drop_at, steps.drop
    hit = (index >= persist) & (drop >= drop_db)
    for t in np.unique(index[hit]):
        sel = index == t
        was_built = np.asarray(np.isin(stack[t - persist : t], built).all(axis=0))
        hit[sel] &= was_built[sel]
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
