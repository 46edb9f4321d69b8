"""Radiometric terrain flattening of Sentinel-1 GRD, written with earthengine-api.

Sloping ground facing the radar looks brighter than the same surface on flat ground, and
slopes facing away look darker, because the area seen per resolution cell grows or shrinks
with the slope. Following the angular-based flattening of Vollrath et al. (2020), as used by
the S1 ARD recipe of Mullissa et al. (2021), each pixel's sigma0 is turned into gamma0
(sigma0 / cos(theta_i)) and divided by a scattering-model factor computed from a DEM:

- ``theta_i``: ellipsoid incidence (the ``angle`` band);
- ``phi_i``: the direction from the ground towards the sensor, estimated once per image as the
  circular mean over the scene of the aspect of the ``angle`` band (the incidence grows away
  from the sensor);
- ``alpha_s``, ``phi_s``: DEM slope and aspect; ``alpha_r = atan(tan(alpha_s) cos(phi_i -
  phi_s))`` the slope in the range direction (> 0 facing the sensor) and ``alpha_az =
  atan(tan(alpha_s) sin(phi_i - phi_s))`` the slope along track;
- volume model (vegetation canopies): ``tan(90 - theta_i + alpha_r) / tan(90 - theta_i)``;
  direct model (surface scattering): ``cos(90 - theta_i) / (cos(alpha_az) cos(90 - theta_i +
  alpha_r))``.

Layover (``alpha_r >= theta_i``) and shadow (``alpha_r <= theta_i - 90``) are the local, slope-
based ("active") conditions; they are masked, optionally with a buffer. Input must be LINEAR
power (``COPERNICUS/S1_GRD_FLOAT`` or :func:`gee_fusion.recipe.sentinel1.to_linear`); the output bands
are terrain-flattened gamma0, linear.
"""

from __future__ import annotations

import math
from typing import Literal

import ee
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gee_fusion import ids
from gee_fusion.errors import ConfigError

Model = Literal["volume", "direct"]


class TerrainFlattening(BaseModel):
    """Options of :func:`terrain_flatten` (validated on construction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: Model = "volume"
    buffer_m: float = Field(0.0, ge=0.0, le=5000.0, description="Grow layover/shadow masks (metres).")
    keep_masks: bool = False
    bands: tuple[str, ...] = Field(("VV", "VH"), min_length=1)
    dem_band: str = Field("elevation", min_length=1)
    dem_scale_m: float | None = Field(None, gt=0.0, le=1000.0)
    heading_scale_m: float = Field(1000.0, gt=0.0, le=100_000.0)


def _options(**kwargs: object) -> TerrainFlattening:
    try:
        return TerrainFlattening.model_validate(kwargs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid terrain-flattening options: {problems}.") from exc


def satellite_heading(image: ee.Image, *, scale_m: float = 1000.0) -> ee.Number:
    """Direction from the ground towards the sensor (radians, clockwise from north).

    It is the circular mean over ``image.geometry()`` of the aspect of the ``angle`` band:
    the incidence angle grows away from the sensor, so its "downhill" direction points at it.
    """
    aspect = ee.Terrain.aspect(image.select("angle")).multiply(math.pi / 180.0)
    stats = (
        ee.Image.cat([aspect.sin(), aspect.cos()])
        .rename(["sin", "cos"])
        .reduceRegion(
            reducer=ee.Reducer.mean(),
            geometry=image.geometry(),
            scale=scale_m,
            maxPixels=10**9,
            bestEffort=True,
        )
    )
    return ee.Number(stats.get("sin")).atan2(ee.Number(stats.get("cos")))


def slope_components(elevation: ee.Image, heading: ee.Number | float) -> tuple[ee.Image, ee.Image]:
    """(alpha_r, alpha_az) in radians: terrain slope in the range direction (> 0 on slopes
    facing the sensor) and along track, from ``elevation`` (metres) and the heading towards
    the sensor (radians from north)."""
    slope = ee.Terrain.slope(elevation).multiply(math.pi / 180.0)
    aspect = ee.Terrain.aspect(elevation).multiply(math.pi / 180.0)
    phi_r = ee.Image.constant(heading).subtract(aspect)
    tan_s = slope.tan()
    return tan_s.multiply(phi_r.cos()).atan(), tan_s.multiply(phi_r.sin()).atan()


def scattering_factor(model: Model, theta: ee.Image, alpha_r: ee.Image, alpha_az: ee.Image) -> ee.Image:
    """The model's correction factor (gamma0 is divided by it); ``theta`` is the ellipsoid
    incidence in radians."""
    grazing = ee.Image.constant(math.pi / 2.0).subtract(theta)
    if model == "volume":
        return grazing.add(alpha_r).tan().divide(grazing.tan())
    return grazing.cos().divide(alpha_az.cos().multiply(grazing.add(alpha_r).cos()))


def terrain_flatten(
    image: ee.Image,
    *,
    dem: ee.Image | None = None,
    model: Model = "volume",
    buffer_m: float = 0.0,
    keep_masks: bool = False,
    bands: tuple[str, ...] = ("VV", "VH"),
    dem_band: str = "elevation",
    dem_scale_m: float | None = None,
    heading_scale_m: float = 1000.0,
) -> ee.Image:
    """Radiometric terrain flattening of a Sentinel-1 GRD image in LINEAR power.

    Args:
        image: ``COPERNICUS/S1_GRD_FLOAT`` image (or :func:`~gee_fusion.recipe.sentinel1.to_linear`)
            with ``bands`` and ``angle``.
        dem: Elevation image in metres; default ``ee.Image("USGS/SRTMGL1_003")``. It is read
            with bilinear resampling.
        model: ``"volume"`` (vegetation, the ARD default) or ``"direct"`` (surface scattering).
        buffer_m: Grow the layover and shadow masks by this distance (metres, 0 = none).
        keep_masks: Also return ``layover`` and ``shadow`` bands (uint8, 1 where affected,
            not masked themselves).
        bands: Backscatter bands to flatten; the others (``angle``) are kept unchanged.
        dem_band: The elevation band of ``dem``.
        dem_scale_m: Compute slopes on the DEM reprojected to the image's CRS at this scale
            (metres), so every request sees the same geometry; default: in the request grid
            (cheaper; the same at the image's native 10 m).
        heading_scale_m: Scale of the scene-wide reduction that estimates the heading.

    Returns:
        ``image`` with ``bands`` replaced by terrain-flattened gamma0 (linear power), masked
        where the slope causes layover or shadow; properties kept.

    Raises:
        ConfigError: an option is invalid (checked before anything is sent to the server).
    """
    opts = _options(
        model=model,
        buffer_m=buffer_m,
        keep_masks=keep_masks,
        bands=tuple(bands),
        dem_band=dem_band,
        dem_scale_m=dem_scale_m,
        heading_scale_m=heading_scale_m,
    )
    if not isinstance(image, ee.Image):
        raise ConfigError(f"terrain_flatten needs an ee.Image, got {type(image).__name__}.")
    if dem is not None and not isinstance(dem, ee.Image):
        raise ConfigError(
            f"dem must be an ee.Image of elevations in metres (e.g. ee.Image('{ids.SRTM}')), "
            f"got {type(dem).__name__}."
        )
    elevation = (ee.Image(ids.SRTM) if dem is None else dem).select(opts.dem_band).resample("bilinear")
    if opts.dem_scale_m is not None:
        crs = image.select(opts.bands[0]).projection().crs()
        elevation = elevation.reproject(crs=crs, scale=opts.dem_scale_m)
    theta = image.select("angle").multiply(math.pi / 180.0)
    alpha_r, alpha_az = slope_components(elevation, satellite_heading(image, scale_m=opts.heading_scale_m))
    layover = alpha_r.gte(theta)
    shadow = alpha_r.lte(theta.subtract(math.pi / 2.0))
    if opts.buffer_m > 0:
        layover = layover.focalMax(opts.buffer_m, "circle", "meters")
        shadow = shadow.focalMax(opts.buffer_m, "circle", "meters")
    keep = layover.Or(shadow).Not()
    gamma0 = image.select(list(opts.bands)).divide(theta.cos())
    flat = gamma0.divide(scattering_factor(opts.model, theta, alpha_r, alpha_az))
    out = image.addBands(flat.updateMask(keep).rename(list(opts.bands)).toFloat(), None, True)
    if opts.keep_masks:
        out = out.addBands(ee.Image.cat([layover, shadow]).rename(["layover", "shadow"]).toUint8())
    return out
