"""SAR change detection for monthly monitoring: per relative orbit, one Sentinel-1 image a month,
the sequential omnibus test (:mod:`gee_fusion.recipe.omnibus`), and the change maps combined
over orbits.

One acquisition per month and orbit keeps the equivalent number of looks at the single-image
value the test assumes (4.4 for IW GRD); averaging a month's acquisitions would raise it by a
per-pixel, per-month amount the statistic does not model. Orbits are tested separately (their
incidence angles differ, so their backscatter levels differ) and combined afterwards: a change
is kept where any orbit sees it, its month is the earliest onset among orbits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import ee

from gee_fusion.errors import DataError
from gee_fusion.recipe import omnibus
from gee_fusion.recipe.composite import month_index, month_range
from gee_fusion.recipe.sentinel1 import S1Selection, mask_border_noise, s1_collection


@dataclass(frozen=True)
class OrbitSeries:
    """One relative orbit's monthly series: the months it has an image for and the images."""

    relative_orbit: int
    months: tuple[date, ...]
    images: tuple[ee.Image, ...]


def orbit_series(aoi: ee.Geometry, months: Sequence[date]) -> list[OrbitSeries]:
    """Per relative orbit over ``aoi``, the first acquisition of each month (linear VV, VH).

    One ``getInfo`` round trip lists the acquisitions; months without an acquisition of an orbit
    are left out of that orbit's series (the test compares consecutive images, whatever their
    spacing).

    Raises:
        DataError: When no orbit has at least three months with an image.
    """
    if not months:
        raise DataError("No month to monitor: give at least three months.")
    first, last = min(months), max(months)
    col = s1_collection(aoi, first, month_range(last.year, last.month)[1], S1Selection(linear=True))
    pairs = col.aggregate_array("relativeOrbitNumber_start").zip(col.aggregate_array("system:time_start"))
    info: list[list[Any]] = pairs.zip(col.aggregate_array("system:index")).getInfo() or []
    wanted = {(m.year, m.month) for m in months}
    per_orbit: dict[int, dict[tuple[int, int], tuple[int, str]]] = defaultdict(dict)
    for (orbit, millis), index in info:
        when = datetime.fromtimestamp(millis / 1000, tz=UTC)
        key = (when.year, when.month)
        if key in wanted and (key not in per_orbit[orbit] or millis < per_orbit[orbit][key][0]):
            per_orbit[int(orbit)][key] = (int(millis), str(index))
    out = []
    for orbit in sorted(per_orbit):
        keys = sorted(per_orbit[orbit])
        if len(keys) < 3:
            continue
        images = tuple(
            mask_border_noise(
                ee.Image(col.filter(ee.Filter.eq("system:index", per_orbit[orbit][k][1])).first())
            ).select(["VV", "VH"])
            for k in keys
        )
        out.append(OrbitSeries(orbit, tuple(date(y, m, 1) for y, m in keys), images))
    if not out:
        raise DataError(
            f"No relative orbit has Sentinel-1 images in three of the {len(months)} months "
            f"{first:%Y-%m}..{last:%Y-%m} over the area: the omnibus test needs at least three per orbit."
        )
    return out


def change_onset(series: OrbitSeries, *, alpha: float = 0.01) -> ee.Image:
    """One orbit's change months (months since 1970-01): ``onset`` of the first change and
    ``last`` change (masked: none), their directions ``direction`` / ``last_direction`` (1
    brighter, 2 darker, 3 mixed) and the number of changes ``count``."""
    maps = omnibus.change_maps(series.images, alpha=alpha)
    months = [month_index(m) for m in series.months]
    bands = []
    for name, which in (("onset", "smap"), ("last", "cmap")):
        interval = maps.select(which)
        when = ee.Image.constant(0).int32()
        turn = ee.Image.constant(0).toUint8()
        # interval t lies between images t and t + 1: the change shows in month t + 1
        for t in range(1, len(series.months)):
            at = interval.eq(t)
            when = when.where(at, months[t])
            turn = turn.where(at, maps.select(f"bmap_{t}"))
        changed = interval.gt(0)
        direction = "direction" if name == "onset" else "last_direction"
        bands += [when.rename(name).updateMask(changed), turn.rename(direction).updateMask(changed)]
    return ee.Image.cat([*bands, maps.select("fmap").rename("count")])


def sar_changes(aoi: ee.Geometry, months: Sequence[date], *, alpha: float = 0.01) -> ee.Image:
    """SAR changes over ``aoi`` combined over relative orbits: ``onset`` (the earliest first
    change), ``last`` (the latest last change), their directions, and ``count`` (the most changes
    any orbit saw). Months are counted since 1970-01 (:func:`~gee_fusion.recipe.composite.month_index`)."""
    per_orbit = [change_onset(s, alpha=alpha) for s in orbit_series(aoi, months)]

    def combine(band: str, reducer: str) -> ee.Image:
        return getattr(ee.ImageCollection.fromImages([p.select(band) for p in per_orbit]), reducer)()

    onset, last = combine("onset", "min"), combine("last", "max")
    first_turn = ee.ImageCollection.fromImages(
        [p.select("direction").updateMask(p.select("onset").eq(onset)) for p in per_orbit]
    ).mosaic()
    last_turn = ee.ImageCollection.fromImages(
        [p.select("last_direction").updateMask(p.select("last").eq(last)) for p in per_orbit]
    ).mosaic()
    return ee.Image.cat([
        onset.rename("onset"), first_turn.rename("direction"), last.rename("last"),
        last_turn.rename("last_direction"), combine("count", "max").rename("count"),
    ])  # fmt: skip
