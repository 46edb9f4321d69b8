"""Sentinel-1 GRD preprocessing written with earthengine-api: selection, border-noise
masking, dB <-> linear power (the one definition of each), and the VV/VH ratio in dB.

Speckle filters work on LINEAR power (``COPERNICUS/ids.S1_GRD_FLOAT`` or :func:`to_linear`);
see :mod:`gee_fusion.recipe.speckle`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import ee
from pydantic import BaseModel, ConfigDict, Field

from gee_fusion import ids
from gee_fusion.errors import ConfigError
from gee_fusion.recipe.aoi import validate_aoi
from gee_fusion.recipe.checks import require_images

BORDER_ANGLES = (30.63993, 45.23993)
"""Incidence-angle window kept by the border-noise mask (Mullissa et al. 2021)."""


class S1Selection(BaseModel):
    """Which Sentinel-1 GRD scenes to use."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    instrument_mode: Literal["IW", "EW", "SM"] = "IW"
    polarisations: tuple[str, ...] = ("VV", "VH")
    resolution_meters: int = Field(10, gt=0)
    orbit_pass: Literal["ASCENDING", "DESCENDING", "BOTH"] = "BOTH"
    relative_orbit: int | None = Field(None, ge=1, le=175)
    linear: bool = Field(
        True,
        description="Use COPERNICUS/S1_GRD_FLOAT (linear power) rather than COPERNICUS/S1_GRD (dB).",
    )


def s1_collection(
    aoi: ee.Geometry,
    start: str | date,
    end: str | date,
    selection: S1Selection | None = None,
    *,
    check: bool = False,
) -> ee.ImageCollection:
    """Sentinel-1 GRD scenes over ``aoi`` in [start, end) matching ``selection``, with only the
    selected polarisations and the ``angle`` band. With ``check``, an empty result raises an
    :class:`~gee_fusion.errors.EngineError` naming the filter that emptied it (one round trip).
    An invalid ``aoi`` raises a ConfigError at once (:func:`gee_fusion.recipe.aoi.validate_aoi`)."""
    validate_aoi(aoi)
    sel = selection or S1Selection()
    asset = ids.S1_GRD_FLOAT if sel.linear else ids.S1_GRD
    steps: list[tuple[str, ee.Filter]] = [
        (f"date {start}..{end}", ee.Filter.date(str(start), str(end))),
        (f"instrumentMode == {sel.instrument_mode}", ee.Filter.eq("instrumentMode", sel.instrument_mode)),
        (
            f"resolution_meters == {sel.resolution_meters}",
            ee.Filter.eq("resolution_meters", sel.resolution_meters),
        ),
    ]
    for pol in sel.polarisations:
        steps.append((f"polarisation {pol}", ee.Filter.listContains("transmitterReceiverPolarisation", pol)))
    if sel.orbit_pass != "BOTH":
        steps.append((f"pass {sel.orbit_pass}", ee.Filter.eq("orbitProperties_pass", sel.orbit_pass)))
    if sel.relative_orbit is not None:
        steps.append(
            (
                f"relative orbit {sel.relative_orbit}",
                ee.Filter.eq("relativeOrbitNumber_start", sel.relative_orbit),
            )
        )
    stages = [(asset, ee.ImageCollection(asset))]
    stages.append(("bounds(aoi)", stages[-1][1].filterBounds(aoi)))
    for what, flt in steps:
        stages.append((what, stages[-1][1].filter(flt)))
    if check:
        require_images(stages)
    return stages[-1][1].select([*sel.polarisations, "angle"])


def mask_border_noise(image: ee.Image, *, angles: tuple[float, float] = BORDER_ANGLES) -> ee.Image:
    """Mask pixels whose incidence angle lies outside ``angles`` (swath-edge border noise)."""
    lo, hi = angles
    if not 0 < lo < hi < 90:
        raise ConfigError(f"Border-noise angles must satisfy 0 < low < high < 90, got {angles}.")
    angle = image.select("angle")
    return image.updateMask(angle.gt(lo).And(angle.lt(hi)))


def to_linear(image: ee.Image, bands: tuple[str, ...] = ("VV", "VH")) -> ee.Image:
    """Backscatter from dB to linear power (other bands and properties kept)."""
    lin = ee.Image(10).pow(image.select(list(bands)).divide(10)).rename(list(bands))
    return image.addBands(lin, None, True)


def to_db(image: ee.Image, bands: tuple[str, ...] = ("VV", "VH")) -> ee.Image:
    """Backscatter from linear power to dB (other bands and properties kept)."""
    db = image.select(list(bands)).log10().multiply(10).rename(list(bands))
    return image.addBands(db, None, True)


def add_ratio(image: ee.Image, *, name: str = "VVVH") -> ee.Image:
    """Add the VV/VH polarisation ratio in dB, band ``VVVH``, to an image whose VV and VH are in dB.

    The one definition of gee_fusion's ``VVVH`` band: the seed poster's VV/VH ratio, expressed in
    dB like VV and VH, where the ratio is the difference ``VV - VH`` (= 10 log10(VV / VH) in
    linear power). Band IDs may not contain ``/``, hence the name.
    """
    ratio = image.select("VV").subtract(image.select("VH"))
    return image.addBands(ratio.rename(name))
