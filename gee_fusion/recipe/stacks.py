"""Model-input stacks written with earthengine-api: the seed paper's fusion-20 stack and its
Sentinel-1 date selection (one date per month for Jul, Aug, Sep, Nov, >= 17 days apart).

fusion-20 bands, in this order: ``VV_1..VV_4, VH_1..VH_4, VVVH_1..VVVH_4`` (four speckle-
filtered S1 dates; VV and VH in dB, ``VVVH`` the VV/VH ratio in dB, i.e. VV - VH, see
:func:`gee_fusion.recipe.sentinel1.add_ratio`) then ``NDVI, SAVI, BAI, NDWI, B2, B3, B4, B8``
(reflectance) from a cloud-masked Sentinel-2 median composite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import ee

from gee_fusion.errors import ConfigError, EngineError
from gee_fusion.recipe import indices, sentinel1, sentinel2, speckle
from gee_fusion.recipe.aoi import validate_aoi
from gee_fusion.recipe.composite import COUNT_BAND, month_range, month_starts, monthly_composites

FUSION20_BANDS: tuple[str, ...] = (
    *(f"VV_{k}" for k in range(1, 5)),
    *(f"VH_{k}" for k in range(1, 5)),
    *(f"VVVH_{k}" for k in range(1, 5)),
    "NDVI",
    "SAVI",
    "BAI",
    "NDWI",
    "B2",
    "B3",
    "B4",
    "B8",
)
SEED_MONTHS = (7, 8, 9, 11)
SEED_MIN_GAP_DAYS = 17


def select_dates(
    times_ms: Sequence[int], *, months: Sequence[int] = SEED_MONTHS, min_gap_days: int = SEED_MIN_GAP_DAYS
) -> list[int]:
    """One acquisition per month in ``months`` (in order), consecutive picks >= ``min_gap_days``
    apart: the earliest date of each month that keeps the gap (deterministic).

    Raises:
        ConfigError: a month has no acquisition satisfying the gap.
    """
    picked: list[int] = []
    ordered = sorted(set(int(t) for t in times_ms))
    for month in months:
        cands = [t for t in ordered if datetime.fromtimestamp(t / 1000, tz=UTC).month == month]
        if picked:
            last = picked[-1]
            cands = [t for t in cands if t - last >= min_gap_days * 86_400_000 and t > last]
        if not cands:
            have = sorted({datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d") for t in ordered})
            raise ConfigError(
                f"No Sentinel-1 acquisition in month {month} at least {min_gap_days} days after the "
                f"previous pick; available dates: {have}."
            )
        picked.append(cands[0])
    return picked


def _busiest_orbit(col: ee.ImageCollection) -> int:
    orbits = col.aggregate_array("relativeOrbitNumber_start").getInfo() or []
    if not orbits:
        raise EngineError(
            "The Sentinel-1 collection is empty for this AOI and year (filters: IW, VV+VH, 10 m)."
        )
    return max(set(orbits), key=lambda o: (orbits.count(o), -o))


def fusion20_stack(
    aoi: ee.Geometry,
    *,
    year: int,
    relative_orbit: int | None = None,
    speckle_method: speckle.Method = "refined_lee",
    cloud_mask: sentinel2.CloudMask | None = None,
    s2_months: tuple[int, int] = (6, 9),
) -> ee.Image:
    """The fusion-20 stack of ``year`` over ``aoi``.

    Args:
        aoi: Area of interest.
        year: The year (S1 dates from Jul, Aug, Sep, Nov; S2 composite over ``s2_months``).
        relative_orbit: S1 relative orbit; default: the orbit with most acquisitions that year
            (one geometry for all four dates).
        speckle_method: Speckle filter applied to each S1 date (on linear power).
        cloud_mask: Sentinel-2 cloud mask (Cloud Score+ by default).
        s2_months: First and last month (inclusive) of the S2 median composite.

    Returns:
        A 20-band float image with the bands of :data:`FUSION20_BANDS`, in that order.

    Raises:
        ConfigError: invalid ``aoi`` (see :func:`gee_fusion.recipe.aoi.validate_aoi`), year or months.
    """
    validate_aoi(aoi)
    if not 2015 <= year <= 2100:
        raise ConfigError(f"year must be 2015 or later (Sentinel-2), got {year}.")
    first, last = s2_months
    if not 1 <= first <= last <= 12:
        raise ConfigError(f"s2_months must be (first, last) with 1 <= first <= last <= 12, got {s2_months}.")
    s1_all = sentinel1.s1_collection(aoi, f"{year}-07-01", f"{year}-12-01")
    orbit = relative_orbit if relative_orbit is not None else _busiest_orbit(s1_all)
    s1_orbit = s1_all.filter(ee.Filter.eq("relativeOrbitNumber_start", orbit))
    times = s1_orbit.aggregate_array("system:time_start").getInfo() or []
    if not times:
        raise EngineError(f"No Sentinel-1 image of relative orbit {orbit} over the AOI in Jul-Nov {year}.")
    dates = select_dates(times)

    s1_bands: dict[str, list[ee.Image]] = {"VV": [], "VH": [], "VVVH": []}
    for ms in dates:
        img = ee.Image(s1_orbit.filter(ee.Filter.eq("system:time_start", ms)).first())
        img = speckle.speckle_filter(sentinel1.mask_border_noise(img), method=speckle_method)
        db = sentinel1.add_ratio(sentinel1.to_db(img))
        for name in ("VV", "VH", "VVVH"):
            s1_bands[name].append(db.select(name))
    parts = [
        img.rename(f"{name}_{k + 1}").toFloat()
        for name in ("VV", "VH", "VVVH")
        for k, img in enumerate(s1_bands[name])
    ]

    s2_col = sentinel2.s2_collection(aoi, date(year, first, 1), month_range(year, last)[1])
    masked = sentinel2.mask_clouds(s2_col, cloud_mask)
    composite = masked.select(["B2", "B3", "B4", "B8", "B11"]).median()
    refl = composite.toFloat().multiply(1e-4)
    with_idx = indices.add_indices(refl, ["NDVI", "SAVI", "BAI", "NDWI"], scale=1.0)
    optical = with_idx.select(["NDVI", "SAVI", "BAI", "NDWI", "B2", "B3", "B4", "B8"])
    stack = ee.Image.cat([*parts, optical]).toFloat()
    proj = ee.Image(s2_col.first()).select("B2").projection()
    return stack.setDefaultProjection(proj).set(
        {
            "s1_dates": [datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d") for t in dates],
            "s1_relative_orbit": orbit,
            "year": year,
        }
    )


def time_series_stack(
    collection: ee.ImageCollection,
    *,
    bands: Sequence[str],
    start: date,
    end: date,
    method: str = "median",
) -> ee.Image:
    """A T x C stack for temporal models: one composite per calendar month, bands named
    ``<band>_<YYYY-MM>`` (month-major: all bands of month 1, then month 2, ...), plus a
    ``count_<YYYY-MM>`` band per month (0 where the month had no valid observation, which is
    then masked).

    Args:
        collection: Masked, scaled images of one sensor (e.g. S2 reflectance + indices, or S1 dB).
        bands: The C bands.
        start: First day of the period.
        end: End of the period (exclusive).
        method: Monthly reduction (see :func:`gee_fusion.recipe.composite.monthly_composites`).
    """
    months = month_starts(start, end)
    monthly = monthly_composites(collection, bands=bands, start=start, end=end, method=method)  # type: ignore[arg-type]
    names = [f"{b}_{m.strftime('%Y-%m')}" for m in months for b in [*bands, COUNT_BAND]]
    return monthly.toBands().rename(names)
