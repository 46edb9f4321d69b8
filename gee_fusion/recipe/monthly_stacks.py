"""The deep stage's inputs, written once with earthengine-api: monthly Sentinel-2 composites and
monthly Sentinel-1 means of chosen months of one year.

* S2: Cloud Score+ masked, reflectance (0-1) median composites of ``s2_bands``.
* S1: border-noise masked (optionally speckle-filtered) means in LINEAR power, then dB, plus
  ``VVVH``, the VV/VH ratio in dB (:func:`gee_fusion.recipe.sentinel1.add_ratio`).

Every month carries a ``count`` band (0 where it had no valid observation, which is masked), so
all months have the same bands. The patch exporter cuts these stacks into patches; inference
runs the same recipe over the area it maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import ee
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gee_fusion.errors import ConfigError
from gee_fusion.recipe import sentinel1, sentinel2, speckle
from gee_fusion.recipe.composite import COUNT_BAND, month_range, monthly_composites, monthly_s1_means

Sensor = Literal["S2", "S1"]
SENSORS: tuple[Sensor, ...] = ("S2", "S1")
S2_DEFAULT_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
S1_BANDS = ("VV", "VH", "VVVH")
SpeckleChoice = Literal["none", speckle.Method]


class StackRecipe(BaseModel):
    """Which months, sensors, bands and masks make the monthly stacks."""

    model_config = ConfigDict(extra="forbid")

    year: int = Field(default=2021, ge=2015, le=2100)
    months: list[int] = Field(default_factory=lambda: [7, 8, 9, 11], min_length=1)
    sensors: list[Sensor] = Field(default=["S2", "S1"], min_length=1)
    s2_bands: list[str] = Field(default_factory=lambda: list(S2_DEFAULT_BANDS), min_length=1)
    cs_threshold: float = Field(default=0.60, ge=0.0, le=1.0)
    s1_orbit: int | None = Field(default=None, description="Relative orbit (None: all orbits).")
    speckle: SpeckleChoice = "none"

    @field_validator("months")
    @classmethod
    def _months(cls, months: list[int]) -> list[int]:
        if any(m < 1 or m > 12 for m in months) or len(set(months)) != len(months):
            raise ValueError(f"months must be distinct calendar months 1..12, got {months}")
        return sorted(months)

    @field_validator("sensors")
    @classmethod
    def _sensors(cls, sensors: list[Sensor]) -> list[Sensor]:
        if len(set(sensors)) != len(sensors):
            raise ValueError(f"sensors must not repeat, got {sensors}")
        return [s for s in SENSORS if s in sensors]

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> StackRecipe:
        """The recipe part of a larger settings mapping (e.g. a patch-export config stored in a
        checkpoint); other keys are ignored."""
        return cls.model_validate({k: v for k, v in settings.items() if k in cls.model_fields})

    def times(self) -> list[date]:
        """The month starts the stacks stand for."""
        return [date(self.year, m, 1) for m in self.months]

    def period(self) -> tuple[date, date]:
        """First day of the first month, first day after the last month."""
        return date(self.year, self.months[0], 1), month_range(self.year, self.months[-1])[1]

    def bands(self, sensor: str) -> list[str]:
        """The band names of a sensor's stack."""
        if sensor == "S2":
            return list(self.s2_bands)
        if sensor == "S1":
            return list(S1_BANDS)
        raise ConfigError(f"Unknown sensor {sensor!r}: use S2 or S1.")


def s2_monthly(recipe: StackRecipe, aoi: ee.Geometry) -> ee.ImageCollection:
    """Cloud Score+ masked monthly median reflectance composites for the recipe's months."""
    start, end = recipe.period()
    col = sentinel2.s2_collection(aoi, start, end)
    masked = sentinel2.mask_clouds(col, sentinel2.CloudScorePlus(threshold=recipe.cs_threshold))
    scaled = masked.map(sentinel2.scale_reflectance)
    months = [
        ee.Image(monthly_composites(scaled, bands=recipe.s2_bands, start=s, end=e).first())
        for s, e in (month_range(recipe.year, m) for m in recipe.months)
    ]
    return ee.ImageCollection.fromImages(months)


def s1_monthly(recipe: StackRecipe, aoi: ee.Geometry) -> ee.ImageCollection:
    """Monthly S1 means (linear -> dB) of VV and VH, and their ratio VVVH in dB."""
    start, end = recipe.period()
    sel = sentinel1.S1Selection(relative_orbit=recipe.s1_orbit)
    col = sentinel1.s1_collection(aoi, start, end, sel).map(sentinel1.mask_border_noise)
    method = recipe.speckle
    if method != "none":
        col = col.map(lambda img: speckle.speckle_filter(img, method=method))
    months = []
    for m in recipe.months:
        s, e = month_range(recipe.year, m)
        means = monthly_s1_means(col, bands=("VV", "VH"), start=s, end=e)
        months.append(ee.Image(means.map(sentinel1.add_ratio).first()))
    return ee.ImageCollection.fromImages(months)


def sensor_stack(recipe: StackRecipe, sensor: str, aoi: ee.Geometry) -> ee.ImageCollection:
    """One sensor's monthly stack over ``aoi``: its bands (:meth:`StackRecipe.bands`) and ``count``."""
    bands = recipe.bands(sensor)
    col = s2_monthly(recipe, aoi) if sensor == "S2" else s1_monthly(recipe, aoi)
    return col.select([*bands, COUNT_BAND])


def series_image(recipe: StackRecipe, aoi: ee.Geometry) -> ee.Image:
    """Every sensor's monthly stack as ONE multi-band image (T x C, month-major per sensor), bands
    named ``<sensor>_<band>_<YYYY-MM>`` (``count`` included: 0 where a month had no valid
    observation), so one request fetches every band and date of a tile."""
    parts = []
    for sensor in recipe.sensors:
        bands = [*recipe.bands(sensor), COUNT_BAND]
        names = [f"{sensor}_{b}_{t.strftime('%Y-%m')}" for t in recipe.times() for b in bands]
        parts.append(sensor_stack(recipe, sensor, aoi).toBands().rename(names))
    return ee.Image.cat(parts)
