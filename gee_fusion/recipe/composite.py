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
from gee_fusion.recipe.sentinel1 import to_db

Reduction = Literal["median", "mean", "min", "max", "medoid", "quality"]
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


def month_index(when: date) -> int:
    """Months since 1970-01 (the unit of change-month rasters: 0 is January 1970)."""
    return (when.year - 1970) * 12 + when.month - 1


def add_months(when: date, months: int) -> date:
    """The first day of the month ``months`` after (or before, if negative) ``when``'s month."""
    k = when.year * 12 + when.month - 1 + months
    return date(k // 12, k % 12 + 1, 1)


def month_range(year: int, month: int) -> tuple[date, date]:
    """The calendar month as a half-open range: its first day and the first day of the next."""
    if not 1 <= month <= 12:
        raise ConfigError(f"month must be 1..12, got {month}.")
    start = date(year, month, 1)
    return start, date(year + (month == 12), month % 12 + 1, 1)


_REDUCERS = {
    "median": ee.Reducer.median,
    "mean": ee.Reducer.mean,
    "min": ee.Reducer.min,
    "max": ee.Reducer.max,
}
QUALITY = "_quality"


def medoid(collection: ee.ImageCollection, bands: Sequence[str]) -> ee.Image:
    """Per pixel, the observation closest (sum of squared differences over ``bands``) to the
    per-band median: a real, spectrally consistent observation rather than a band-wise median."""
    med = collection.median()

    def score(img: ee.Image) -> ee.Image:
        dist = ee.Image(0)
        for b in bands:
            dist = dist.add(img.select(b).subtract(med.select(b)).pow(2))
        return img.addBands(dist.multiply(-1).rename(QUALITY))

    return collection.map(score).qualityMosaic(QUALITY).select(list(bands))


def _reduce(
    month: ee.ImageCollection, method: Reduction, bands: Sequence[str], quality_band: str | None
) -> ee.Image:
    if method in _REDUCERS:
        return month.reduce(_REDUCERS[method]()).rename(list(bands))
    if method == "medoid":
        return medoid(month, bands)
    if method == "quality":
        if quality_band is None or quality_band not in bands:
            raise ConfigError(
                "method='quality' needs quality_band, one of the composited bands (e.g. 'NDVI')."
            )
        return month.qualityMosaic(quality_band).select(list(bands))
    raise ConfigError(
        f"Unknown composite method {method!r}: use one of {sorted([*_REDUCERS, 'medoid', 'quality'])}."
    )


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
    quality_band: str | None = None,
) -> ee.ImageCollection:
    """One composite per calendar month, with a ``count`` band of valid observations.

    Args:
        collection: Images already masked (clouds, shadows, border noise...).
        bands: Bands to composite (all images must have them).
        start: First day of the period (its month is the first composite).
        end: End of the period (exclusive).
        method: Per-pixel reduction of each month's images: ``median``, ``mean``, ``min``,
            ``max``, ``medoid`` (the observation nearest the median over ``bands``) or
            ``quality`` (the observation with the highest ``quality_band``, e.g. NDVI).
        quality_band: The band ranking observations for ``method="quality"``.

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
    if method == "quality" and (quality_band is None or quality_band not in bands):
        raise ConfigError("method='quality' needs quality_band, one of the composited bands (e.g. 'NDVI').")
    if method not in (*_REDUCERS, "medoid", "quality"):
        raise ConfigError(
            f"Unknown composite method {method!r}: use median, mean, min, max, medoid or quality."
        )
    selected = collection.select(list(bands))
    template = ee.ImageCollection([masked_template(bands)])

    def one(month_start: date) -> ee.Image:
        begin = ee.Date(month_start.isoformat())
        finish = begin.advance(1, "month")
        month = selected.filterDate(begin, finish)
        padded = month.merge(template)
        composite = _reduce(padded, method, bands, quality_band)
        count = padded.select(bands[0]).count().rename(COUNT_BAND).toUint16()
        return ee.Image(
            composite.toFloat()
            .addBands(count)
            .set("system:time_start", begin.millis())
            .set("system:index", month_start.strftime("%Y-%m"))
            .set("n_images", month.size())
        )

    return ee.ImageCollection.fromImages([one(m) for m in months])


def monthly_s1_means(
    collection: ee.ImageCollection, *, bands: Sequence[str] = ("VV", "VH"), start: date, end: date
) -> ee.ImageCollection:
    """Monthly Sentinel-1 means computed in LINEAR power, then converted to dB (averaging dB
    values would bias the mean low). ``collection`` must hold linear power (S1_GRD_FLOAT)."""
    means = monthly_composites(collection, bands=bands, start=start, end=end, method="mean")
    return means.map(lambda img: to_db(img, tuple(bands)))
