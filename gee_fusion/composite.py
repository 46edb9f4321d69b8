"""Monthly composites, written once with earthengine-api (runs on either engine).

Calendar months over a period; each month's images are reduced per pixel (median by
default); a month without any valid observation stays masked and its ``count`` band is 0, so
every month has the same bands (what xee and the patch store need).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

import ee

from gee_fusion.errors import ConfigError

Reduction = Literal["median", "mean", "min", "max"]
COUNT_BAND = "count"


def month_starts(start: date, end: date) -> list[date]:
    """First days of the calendar months from ``start``'s month up to (excluding) ``end``."""
    if end <= start:
        raise ConfigError(f"The period end {end} must come after its start {start}.")
    out, y, m = [], start.year, start.month
    while date(y, m, 1) < end:
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _reducer(method: Reduction) -> ee.Reducer:
    reducers = {"median": ee.Reducer.median, "mean": ee.Reducer.mean, "min": ee.Reducer.min,
                "max": ee.Reducer.max}  # fmt: skip
    if method not in reducers:
        raise ConfigError(f"Unknown composite method {method!r}: use one of {sorted(reducers)}.")
    return reducers[method]()


def masked_template(bands: Sequence[str]) -> ee.Image:
    """A fully masked float image with ``bands``: keeps empty months' band layout."""
    return ee.Image.constant([0.0] * len(bands)).rename(list(bands)).toFloat().updateMask(0)


def monthly_composites(
    collection: ee.ImageCollection,
    *,
    bands: Sequence[str],
    start: date,
    end: date,
    method: Reduction = "median",
) -> ee.ImageCollection:
    """One composite per calendar month, with a ``count`` band of valid observations.

    Args:
        collection: Images already masked (clouds, shadows, border noise...).
        bands: Bands to composite (all images must have them).
        start: First day of the period (its month is the first composite).
        end: End of the period (exclusive).
        method: Per-pixel reduction of each month's images.

    Returns:
        An image collection, one image per month, bands ``bands + ['count']`` (``count``
        counts valid observations of the first band), with ``system:time_start`` the month
        start, ``system:index`` ``YYYY-MM`` and ``n_images`` the month's image count.
    """
    if not bands:
        raise ConfigError("monthly_composites needs at least one band.")
    if COUNT_BAND in bands:
        raise ConfigError(f"Band name {COUNT_BAND!r} is reserved for the observation count.")
    months = month_starts(start, end)
    reducer = _reducer(method)
    selected = collection.select(list(bands))
    template = ee.ImageCollection([masked_template(bands)])

    def one(month_start: date) -> ee.Image:
        begin = ee.Date(month_start.isoformat())
        finish = begin.advance(1, "month")
        month = selected.filterDate(begin, finish)
        padded = month.merge(template)
        composite = padded.reduce(reducer).rename(list(bands))
        count = padded.select(bands[0]).count().rename(COUNT_BAND).toUint16()
        return (
            composite.toFloat()
            .addBands(count)
            .set("system:time_start", begin.millis())
            .set("system:index", month_start.strftime("%Y-%m"))
            .set("n_images", month.size())
        )

    return ee.ImageCollection.fromImages([one(m) for m in months])
