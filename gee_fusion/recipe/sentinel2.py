"""Sentinel-2 preprocessing written with earthengine-api: selection, cloud and shadow masking
(Cloud Score+, s2cloudless with shadow projection, SCL, QA60) and scaling to reflectance.

Options are typed models validated at construction (bad thresholds fail early, not deep in
evaluation). Parameters follow the anchors: Cloud Score+ keeps ``cs_cdf >= 0.60``;
s2cloudless uses CLD_PRB_THRESH 50, NIR_DRK_THRESH 0.15, CLD_PRJ_DIST 1 km, BUFFER 50 m
(the Earth Engine tutorial's values; for composites 40 / 2 km / 100 m are common).
"""

from __future__ import annotations

import warnings
from datetime import date
from typing import Literal

import ee
from pydantic import BaseModel, ConfigDict, Field

from gee_fusion import ids
from gee_fusion.errors import ConfigError
from gee_fusion.recipe.aoi import validate_aoi
from gee_fusion.recipe.checks import require_images

SPECTRAL_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
QA60_EMPTY = (date(2022, 1, 25), date(2024, 2, 28))
"""QA60 cloud bits are empty in the archive between these dates (processing baseline 04.00)."""


class CloudScorePlus(BaseModel):
    """Mask with Cloud Score+ (joined on ``system:index``): keep ``band >= threshold``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["cloud_score_plus"] = "cloud_score_plus"
    band: Literal["cs", "cs_cdf"] = "cs_cdf"
    threshold: float = Field(0.60, ge=0.0, le=1.0)


class S2Cloudless(BaseModel):
    """Mask with s2cloudless probability plus projected cloud shadows (Earth Engine tutorial)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["s2cloudless"] = "s2cloudless"
    cloud_probability: int = Field(50, ge=0, le=100, description="CLD_PRB_THRESH (%)")
    nir_dark: float = Field(0.15, gt=0.0, lt=1.0, description="NIR_DRK_THRESH (reflectance)")
    projection_km: float = Field(1.0, gt=0.0, le=10.0, description="CLD_PRJ_DIST (km)")
    buffer_m: int = Field(50, ge=0, le=1000, description="BUFFER (m)")


class SclMask(BaseModel):
    """Mask the Scene Classification classes given (default: no data, saturated, cloud
    shadow, medium and high cloud probability, thin cirrus)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["scl"] = "scl"
    classes: tuple[int, ...] = (0, 1, 3, 8, 9, 10)


class Qa60Mask(BaseModel):
    """Mask QA60 opaque-cloud (bit 10) and cirrus (bit 11) pixels. Warns: QA60 is empty from
    2022-01-25 to 2024-02-28, so alone it misses every cloud of that period."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["qa60"] = "qa60"


CloudMask = CloudScorePlus | S2Cloudless | SclMask | Qa60Mask


def s2_collection(
    aoi: ee.Geometry,
    start: str | date,
    end: str | date,
    *,
    max_cloud_percentage: float | None = None,
    check: bool = False,
) -> ee.ImageCollection:
    """Harmonized Sentinel-2 L2A over ``aoi`` in [start, end), optionally pre-filtered by the
    scene's ``CLOUDY_PIXEL_PERCENTAGE``. With ``check``, an empty result raises an
    :class:`~gee_fusion.errors.EngineError` naming the filter that emptied it (one round trip).
    An invalid ``aoi`` raises a ConfigError at once (:func:`gee_fusion.recipe.aoi.validate_aoi`)."""
    validate_aoi(aoi)
    if max_cloud_percentage is not None and not 0 <= max_cloud_percentage <= 100:
        raise ConfigError(f"max_cloud_percentage must lie in [0, 100], got {max_cloud_percentage}.")
    stages = [(ids.S2_SR_HARMONIZED, ee.ImageCollection(ids.S2_SR_HARMONIZED))]
    stages.append(("bounds(aoi)", stages[-1][1].filterBounds(aoi)))
    stages.append((f"date {start}..{end}", stages[-1][1].filterDate(str(start), str(end))))
    if max_cloud_percentage is not None:
        cloudy = ee.Filter.lte("CLOUDY_PIXEL_PERCENTAGE", max_cloud_percentage)
        stages.append((f"CLOUDY_PIXEL_PERCENTAGE <= {max_cloud_percentage}", stages[-1][1].filter(cloudy)))
    if check:
        require_images(stages)
    return stages[-1][1]


def scale_reflectance(image: ee.Image) -> ee.Image:
    """Spectral bands as reflectance (x 1e-4; harmonized collections need no offset), other
    bands unchanged, properties kept."""
    refl = image.select(list(SPECTRAL_BANDS)).toFloat().multiply(1e-4)
    return image.addBands(refl, None, True)


def _cloud_score_plus(col: ee.ImageCollection, opts: CloudScorePlus) -> ee.ImageCollection:
    linked = col.linkCollection(ee.ImageCollection(ids.CLOUD_SCORE_PLUS), [opts.band])

    def apply(img: ee.Image) -> ee.Image:
        return img.updateMask(img.select(opts.band).gte(opts.threshold)).select(
            img.bandNames().remove(opts.band)
        )

    return linked.map(apply)


def _scl(col: ee.ImageCollection, opts: SclMask) -> ee.ImageCollection:
    bad_classes = list(opts.classes)

    def apply(img: ee.Image) -> ee.Image:
        scl = img.select("SCL")
        bad = scl.eq(bad_classes[0])
        for code in bad_classes[1:]:
            bad = bad.Or(scl.eq(code))
        return img.updateMask(bad.Not())

    return col.map(apply)


def _qa60(col: ee.ImageCollection) -> ee.ImageCollection:
    warnings.warn(
        "QA60 cloud bits are empty from 2022-01-25 to 2024-02-28: images of that period keep "
        "their clouds. Prefer CloudScorePlus().",
        UserWarning,
        stacklevel=3,
    )

    def apply(img: ee.Image) -> ee.Image:
        qa = img.select("QA60")
        return img.updateMask(qa.bitwiseAnd(1 << 10).eq(0).And(qa.bitwiseAnd(1 << 11).eq(0)))

    return col.map(apply)


def _s2cloudless(col: ee.ImageCollection, opts: S2Cloudless) -> ee.ImageCollection:
    joined = ee.ImageCollection(
        ee.Join.saveFirst("s2cloudless").apply(
            primary=col,
            secondary=ee.ImageCollection(ids.S2_CLOUD_PROBABILITY),
            condition=ee.Filter.equals(leftField="system:index", rightField="system:index"),
        )
    )

    def apply(img: ee.Image) -> ee.Image:
        prob = ee.Image(img.get("s2cloudless")).select("probability")
        is_cloud = prob.gt(opts.cloud_probability)
        not_water = img.select("SCL").neq(6)
        dark = img.select("B8").lt(opts.nir_dark * 1e4).multiply(not_water)
        azimuth = ee.Number(90).subtract(ee.Number(img.get("MEAN_SOLAR_AZIMUTH_ANGLE")))
        projected = (
            is_cloud.directionalDistanceTransform(azimuth, opts.projection_km * 10)
            .reproject(crs=img.select("B2").projection(), scale=100)
            .select("distance")
            .mask()
        )
        shadows = projected.multiply(dark)
        cloud_shadow = is_cloud.add(shadows).gt(0)
        buffered = (
            cloud_shadow.focalMin(2)
            .focalMax(opts.buffer_m * 2 / 20)
            .reproject(crs=img.select("B2").projection(), scale=20)
        )
        return img.updateMask(buffered.Not())

    return joined.map(apply)


def mask_clouds(collection: ee.ImageCollection, method: CloudMask | None = None) -> ee.ImageCollection:
    """Mask clouds and shadows in every image (Cloud Score+ by default).

    Args:
        collection: Sentinel-2 SR harmonized images (with their ``system:index``).
        method: One of :class:`CloudScorePlus`, :class:`S2Cloudless`, :class:`SclMask`,
            :class:`Qa60Mask`.

    Returns:
        The collection with masked clouds and shadows (bands and properties kept).
    """
    method = method or CloudScorePlus()
    if isinstance(method, CloudScorePlus):
        return _cloud_score_plus(collection, method)
    if isinstance(method, S2Cloudless):
        return _s2cloudless(collection, method)
    if isinstance(method, SclMask):
        return _scl(collection, method)
    if isinstance(method, Qa60Mask):
        return _qa60(collection)
    raise ConfigError(f"Unknown cloud mask {method!r}: use CloudScorePlus, S2Cloudless, SclMask or Qa60Mask.")
