"""The change layers of a monitored period: every rule of :mod:`gee_fusion.monitoring.fusion` and
:mod:`gee_fusion.monitoring.flood` applied to the fetched monthly class maps, the monthly
Sentinel-1 means and the omnibus test's changes (numpy).

Each kind of change is one :class:`Layer`, the union of the rules that raise it (an alert object
is drawn over the union: a building site whose pixels were caught half by a class change, half
by Sentinel-1 is one object, not two objects each under the smallest alert size):

- ``urbanisation``: a persistent class change from non-built to built confirmed by a Sentinel-1
  brightening (the omnibus test's last change, or a lasting VV rise) within ``tolerance`` months,
  and SAR-led urbanisations (a brightening classified built from then on);
- ``demolition``: a persistent change from built to non-built confirmed by a darkening, and
  SAR-led demolitions (a lasting VV drop of a pixel classified built before it);
- ``site``: a construction site opens (:func:`fusion.site_opening`): vegetated land classified
  bare, water or built from then on, with a Sentinel-1 change either way within ``tolerance``
  months (:func:`fusion.sar_changed_near`); not where a flood or an urbanisation of the same
  months explains it.

Per pixel, each rule uses the first persistent change *of its own kind that holds*: an earlier
change of another kind (grassland mown into cropland) does not hide a later urbanisation, nor does
an earlier one that reverted (a wet field classified built for two spring months). A change holds
(:func:`fusion.holds`) when its new state is the class of at least ``hold`` (three quarters by
default) of the months from it to the latest one; a SAR-led urbanisation must hold too, and its
pixel must not have been classified built in more than ``hold`` of the months before it
(:func:`fusion.held_before`: a Sentinel-1 brightening in a block of the city is no new building).
A SAR-led demolition's persistence is the lasting drop of the monthly VV itself (its rubble stays
classified built).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gee_fusion.monitoring import flood, fusion, optical
from gee_fusion.monitoring.optical import Transitions


@dataclass(frozen=True)
class Layer:
    """One kind of change over the area.

    Attributes:
        kind: ``urbanisation``, ``demolition`` or ``site``.
        mask: Where it happened.
        transitions: Per pixel, its month index (``onset``) and the classes before and after.
        confirmed: Where the other source confirms it (Sentinel-1 for a class change, the class
            maps for a SAR-led change): an alert's confidence is the share of its pixels here.
        evidence: (label, mask) of each rule that raised it, for the alert's ``evidence``.
    """

    kind: str
    mask: np.ndarray
    transitions: Transitions
    confirmed: np.ndarray
    evidence: tuple[tuple[str, np.ndarray], ...]

    def month_band(self) -> np.ndarray:
        """1-based month index of the change (0: none), as a uint8 band."""
        return np.where(self.mask, self.transitions.onset + 1, 0).astype(np.uint8)


@dataclass(frozen=True)
class ChangeLayers:
    """Every change of a period: the three layers and the flooded months."""

    urbanisation: Layer
    demolition: Layer
    site: Layer
    flooded: np.ndarray

    @property
    def layers(self) -> tuple[Layer, Layer, Layer]:
        """The layers, in alert order."""
        return (self.urbanisation, self.demolition, self.site)


def _led_transitions(
    stack: np.ndarray, tr: Transitions, led: np.ndarray, index: np.ndarray, *,
    before_not: Sequence[int] = (), look_back: int = 1,
) -> Transitions:  # fmt: skip
    """``tr`` with, where ``led``, the month ``index`` and the classes of that month and of the month
    before; the class before is the latest of the ``look_back`` months before that is not in
    ``before_not`` (a SAR-led urbanisation may follow one month already classified built: its
    class before is the one of the months before that), else the month before's."""
    previous = optical.class_at(stack, index - 1)
    for k in range(2, look_back + 1):
        earlier = optical.class_at(stack, index - k)
        swap = np.isin(previous, before_not) & ~np.isin(earlier, before_not) & (index - k >= 0)
        previous = np.where(swap, earlier, previous)
    after = optical.class_at(stack, index)
    return Transitions(
        onset=np.where(led, index, tr.onset),
        before=np.where(led, previous, tr.before),
        after=np.where(led, after, tr.after),
    )


def _by_sar(
    mask: np.ndarray, tr: Transitions, numbers: np.ndarray, sar: Mapping[str, np.ndarray],
    steps: fusion.VVSteps, *, direction: int, tolerance: int,
) -> np.ndarray:  # fmt: skip
    """Where a class change (``mask``, month ``tr.onset``) has the omnibus test's last change, or a
    lasting step of the monthly VV (the last change of a lot that greens up after a demolition is
    a later vegetation change), in ``direction`` within ``tolerance`` months of it."""
    onset_month = np.where(mask, numbers[np.maximum(tr.onset, 0)], -1)
    by_test = fusion.confirmed(
        onset_month, sar["last"], sar["last_direction"], tolerance=tolerance, direction=direction
    )
    step_at, step = (steps.rise_at, steps.rise) if direction == 1 else (steps.drop_at, steps.drop)
    by_step = mask & (step >= fusion.STEP_DB) & (np.abs(step_at - tr.onset) <= tolerance)
    return np.asarray(by_test | by_step)


@dataclass(frozen=True)
class ClassChanges:
    """The class rules alone (no Sentinel-1): per kind, the first persistent change of that kind
    per pixel that holds, and where there is one."""

    up: Transitions
    urban: np.ndarray
    down: Transitions
    demolished: np.ndarray
    site: Transitions
    opened: np.ndarray


def class_changes(
    classes: Sequence[np.ndarray] | np.ndarray, *, persist: int = 2, hold: float = fusion.HOLD_SHARE
) -> ClassChanges:
    """Urbanisations (non-built -> built), demolitions (built -> non-built) and site openings
    (:func:`fusion.site_opening`) of the class maps: per pixel, the first persistent change of each
    kind that holds (:func:`fusion.holding`), so a wet field classified built for two spring months
    does not hide the building begun on it in the autumn."""
    stack = optical.class_stack(classes)
    built, unbuilt = optical.BUILT_6, optical.UNBUILT_6
    up = optical.persistent_changes(
        stack, persist=persist, keep=fusion.into_built,
        accept=fusion.lasting_change(stack, unbuilt, built, share=hold),
    )  # fmt: skip
    down = optical.persistent_changes(
        stack, persist=persist, keep=fusion.out_of_built,
        accept=fusion.lasting_change(stack, built, unbuilt, share=hold),
    )  # fmt: skip
    site = fusion.site_opening(stack, persist=persist, share=hold)
    return ClassChanges(up, up.onset >= 0, down, down.onset >= 0, site, site.onset >= 0)


def change_layers(
    classes: Sequence[np.ndarray] | np.ndarray,
    vv_db: np.ndarray,
    sar: Mapping[str, np.ndarray],
    month_numbers: np.ndarray,
    *,
    persist: int = 2,
    tolerance: int = 1,
    hold: float = fusion.HOLD_SHARE,
) -> ChangeLayers:
    """The change layers of a period (see the module docstring).

    Args:
        classes: Monthly 6-class maps, in month order.
        vv_db: Monthly mean VV (dB; NaN: no acquisition), (months, rows, cols).
        sar: The omnibus test's ``last`` change month (months since 1970-01, 0: none) and its
            ``last_direction`` (:func:`gee_fusion.monitoring.sar.sar_changes`).
        month_numbers: The months of ``classes`` (months since 1970-01).
        persist: Months a class must hold before and after a change.
        tolerance: Months between optical and Sentinel-1 evidence.
        hold: Least share of the months from a change to the latest one in its new state; the state
            it leaves must fill ``1 - hold`` of the months before it.
    """
    stack = optical.class_stack(classes)
    steps = fusion.vv_steps(vv_db, persist=persist)
    last, turn = sar["last"], sar["last_direction"]
    built = optical.BUILT_6

    by_class = class_changes(stack, persist=persist, hold=hold)
    tr_up, urban, tr_down, demolished = by_class.up, by_class.urban, by_class.down, by_class.demolished
    # pixels with a class transition, held or not, are the class rules' business
    into, out_of = (
        optical.persistent_changes(stack, persist=persist, keep=keep).onset >= 0
        for keep in (fusion.into_built, fusion.out_of_built)
    )
    urban_seen = _by_sar(urban, tr_up, month_numbers, sar, steps, direction=1, tolerance=tolerance)
    down_seen = _by_sar(demolished, tr_down, month_numbers, sar, steps, direction=2, tolerance=tolerance)

    # rubble the forests still call built: a lasting Sentinel-1 darkening of a built pixel
    down_led, down_index = fusion.sar_led_demolition(stack, steps, persist=persist)
    down_led &= ~out_of
    # a site the forests call built during the works has no transition: Sentinel-1 leads there
    # (not on a lot demolished in the period: its later greening is no new building)
    up_led, up_index = fusion.sar_led_urbanisation(
        stack, month_numbers, last, turn, persist=persist, steps=steps
    )
    up_led &= ~(into | down_led | out_of) & fusion.holds(stack, up_index, built, share=hold)
    # not a pixel classified built in more than `hold` of the months before: a block of the city
    up_led &= fusion.held_before(stack, up_index, optical.UNBUILT_6, share=1.0 - hold)
    urbanisation = Layer(
        "urbanisation", urban | up_led,
        _led_transitions(stack, tr_up, up_led, up_index, before_not=built, look_back=persist),
        urban_seen | up_led, (("class change + SAR", urban), ("SAR + built class", up_led)),
    )  # fmt: skip
    demolition = Layer(
        "demolition", demolished | down_led, _led_transitions(stack, tr_down, down_led, down_index),
        down_seen | down_led, (("class change + SAR", demolished), ("SAR + built class before", down_led)),
    )  # fmt: skip

    flooded = flood.flooded(vv_db)
    tr_site, opened = by_class.site, by_class.opened.copy()
    window = np.arange(stack.shape[0])[:, None, None]
    in_onset = (window >= tr_site.onset) & (window < tr_site.onset + persist)
    opened &= ~(flooded & in_onset).any(axis=0)  # a flood is no building site
    same_event = urbanisation.mask & (np.abs(urbanisation.transitions.onset - tr_site.onset) <= tolerance)
    opened &= ~same_event  # the site's urbanisation alert tells it already
    site_seen = opened & fusion.sar_changed_near(
        tr_site.onset, month_numbers, last, steps, tolerance=tolerance
    )
    site = Layer("site", opened, tr_site, site_seen, (("class change + SAR", opened),))
    return ChangeLayers(urbanisation, demolition, site, flooded)
