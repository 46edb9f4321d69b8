"""Flood alerts from the monthly Sentinel-1 means (numpy, on fetched monthly rasters).

Open water is a specular reflector: calm floodwater returns almost nothing to the radar, so a
flooded field drops from about -12 dB to below -15 dB in VV, whatever the clouds (the basis of
the UN-SPIDER recommended practice for flood mapping with Sentinel-1 and of most operational
services, e.g. the Copernicus Global Flood Monitoring's change detection). Each month's VV is first
smoothed by a 30 m focal mean (UN-SPIDER's practice smooths with 50 m). A pixel is **flooded** in month t
when its smoothed monthly mean VV is below ``water_db`` and at least ``drop_db`` below its own
median over the months monitored (its usual level: a flood lasts a month or two, so the median is
the dry state). The drop rule leaves out what is always dark: permanent water, radar shadow
behind steep slopes, smooth tarmac.

Floods are events, not lasting changes: no persistence rule applies. Flooded pixels of one month
form 8-connected objects; an object that overlaps one of the month before continues that event,
so an event has an onset month and an end month. The classification evidence is the monthly class
maps: an event's **confidence** is the share of its pixels classified water, wetland or open
(class 6 of the 6-class grouping) in at least one of its months.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gee_fusion.errors import DataError

WATER_DB = -15.0
"""Monthly mean VV (dB) below which a pixel may be open water (UN-SPIDER-style threshold)."""
DROP_DB = 3.0
"""Drop below the pixel's median level (dB) that makes dark water a flood, not permanent water."""
WATER_6 = 6
"""The 6-class code of water, wetlands and open spaces."""


SMOOTHING_PX = 3
"""Radius (pixels) of the circular focal mean applied to each month's VV before the thresholds:
30 m at 10 m. Speckle leaves the darkest pixels of a smooth field under the water threshold in a
dry month; a flood is dark over hectares. The UN-SPIDER recommended practice smooths with 50 m; on
the demo world's planted flood 50 m lost the fragmented edges (77 % of its flooded pixels found
instead of over 80 %), 30 m keeps them and still removes the speckle of dark fields."""


def focal_mean(vv_db: np.ndarray, radius_px: int) -> np.ndarray:
    """Circular focal mean of each month (axis 0) of ``vv_db``, NaN-aware (NaN pixels are left out
    of their neighbours' means and stay NaN); ``radius_px`` 0: unchanged."""
    vv = np.asarray(vv_db, dtype=np.float32)
    if radius_px <= 0:
        return vv
    yy, xx = np.mgrid[-radius_px : radius_px + 1, -radius_px : radius_px + 1]
    disc = ((yy**2 + xx**2) <= radius_px**2).astype(np.float32)[None]
    valid = np.isfinite(vv)
    total = ndimage.convolve(np.where(valid, vv, 0.0).astype(np.float32), disc, mode="constant")
    weight = ndimage.convolve(valid.astype(np.float32), disc, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, total / weight, np.nan).astype(np.float32)


def flooded(
    vv_db: np.ndarray,
    *,
    water_db: float = WATER_DB,
    drop_db: float = DROP_DB,
    smoothing_px: int = SMOOTHING_PX,
) -> np.ndarray:
    """Where each month is flooded (bool, same shape as ``vv_db``).

    Args:
        vv_db: Monthly mean VV backscatter in dB, shape (months, rows, cols); NaN where a month has no
            acquisition (never flooded).
        water_db: Open-water threshold.
        drop_db: Least drop below the pixel's median over the months.
        smoothing_px: Radius of the focal mean applied first (:func:`focal_mean`; 0: none).

    Raises:
        DataError: Fewer than three months (the median would be the flood itself).
    """
    vv = np.asarray(vv_db, dtype=np.float32)
    if vv.ndim != 3 or vv.shape[0] < 3:
        raise DataError(
            f"Flood mapping needs monthly VV of at least three months, shape (months, rows, cols); "
            f"got {vv.shape}. Monitor more months."
        )
    vv = focal_mean(vv, smoothing_px)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # never observed (e.g. off the swaths): never flooded
        usual = np.nanmedian(vv, axis=0)
        return (vv < water_db) & (usual - vv >= drop_db)


@dataclass(frozen=True)
class FloodEvent:
    """One flood: its pixels, first and last month (indices into the months monitored)."""

    mask: np.ndarray
    first: int
    last: int


def flood_events(flooded_months: np.ndarray, *, min_pixels: int = 1) -> list[FloodEvent]:
    """Flood events: 8-connected objects of each month of at least ``min_pixels``, chained across
    consecutive months where they overlap (an event's mask is the union of its months' objects).
    """
    structure = np.ones((3, 3), dtype=bool)
    events: list[tuple[np.ndarray, int, int]] = []
    open_events: list[int] = []  # indices into events still flooded last month
    for t, month in enumerate(np.asarray(flooded_months, dtype=bool)):
        labels, n = ndimage.label(month, structure=structure)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        still_open = []
        for k in range(1, n + 1):
            if sizes[k] < min_pixels:
                continue
            obj = labels == k
            joined = [e for e in open_events if (events[e][0] & obj).any()]
            if joined:
                target = joined[0]
                mask = events[target][0] | obj
                for other in joined[1:]:  # two floods merging
                    mask |= events[other][0]
                    events[other] = (np.zeros_like(obj), -1, -1)
                events[target] = (mask, events[target][1], t)
                still_open.append(target)
            else:
                events.append((obj, t, t))
                still_open.append(len(events) - 1)
        open_events = sorted(set(still_open))
    return [FloodEvent(m, a, b) for m, a, b in events if a >= 0]


def event_confidence(event: FloodEvent, classes: Sequence[np.ndarray]) -> float:
    """Share of the event's pixels classified water/wetland/open in at least one of its months."""
    seen = np.zeros(event.mask.shape, dtype=bool)
    for t in range(event.first, event.last + 1):
        seen |= np.asarray(classes[t]) == WATER_6
    return float(seen[event.mask].mean()) if event.mask.any() else 0.0
