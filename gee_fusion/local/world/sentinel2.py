"""Sentinel-2 of the demo world: L2A surface reflectance with clouds, shadows and cirrus, the
scene classification (SCL), QA60, MSK_CLDPRB, Cloud Score+ and s2cloudless, and the
atmospheric truth (for testing cloud masks).

One acquisition is generated per 256 x 256 block of the 10 m lattice, all products at once,
and kept in an LRU; 20 m and 60 m bands are block means (SCL: the centre sample, QA60: the
bitwise OR) of the 10 m fields, so all resolutions agree and any window is tile-consistent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from affine import Affine

from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import ImageSource, WindowT
from gee_fusion.local.world import atmosphere, blocks, changes, noise, phenology, schedule, surface
from gee_fusion.local.world.blocks import BLOCK
from gee_fusion.local.world.config import PIXEL, WorldConfig
from gee_fusion.local.world.landcover import INDUSTRIAL, OPEN, WATER, WETLAND

CLOUD_SPECTRUM = np.asarray(
    (0.42, 0.44, 0.44, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.38, 0.08, 0.34, 0.24), dtype=np.float32
)[:, None, None]
SHADOW_DEPTH = np.asarray(
    (0.50, 0.55, 0.58, 0.62, 0.66, 0.70, 0.72, 0.74, 0.74, 0.74, 0.0, 0.75, 0.75), dtype=np.float32
)[:, None, None]
"""Fraction of reflectance removed under full shadow (blue less: diffuse skylight)."""

SR_BANDS = surface.BANDS
AUX_SCALE = {"SCL": 20, "MSK_CLDPRB": 20, "QA60": 60}


def _acq(i: int) -> schedule.S2Acquisition:
    return schedule.s2_acquisitions()[i]


def s2_block(cfg: WorldConfig, i: int, bx: int, by: int) -> dict[str, np.ndarray]:
    """Every Sentinel-2 product of acquisition ``i`` on one 256 x 256 block (10 m fields),
    from the shared block cache."""
    return blocks.product_block("s2", cfg, i, bx, by, lambda: _s2_block(cfg, i, bx, by))


def _s2_block(cfg: WorldConfig, i: int, bx: int, by: int) -> dict[str, np.ndarray]:
    acq = _acq(i)
    millis = float(acq.millis)
    c0, r0 = bx * BLOCK, by * BLOCK
    lc, site = changes.apply_changes(cfg, blocks.landcover_block_halo(cfg, bx, by), c0 - 1, r0 - 1, millis)
    ix, iy = blocks.halo_indices(bx, by)
    cover = phenology.green_cover(cfg, lc, millis)
    wet = phenology.wetness(cfg, millis)
    refl = surface.mix_neighbours(surface.reflectance(cfg, lc, cover, wet, ix, iy, site=site))
    label = lc.label[1:-1, 1:-1]
    sky = atmosphere.sky(cfg, millis)
    f = atmosphere.cloud_fields(cfg, sky, c0, r0, BLOCK, BLOCK)
    a, sh, ci = f.opacity[None], f.shadow[None], f.cirrus[None]
    toa = refl * (1.0 - SHADOW_DEPTH * sh)
    toa = toa * (1.0 - a) + CLOUD_SPECTRUM * a
    toa = toa + ci * np.float32(0.06)
    toa[10] = 0.003 + 0.25 * f.cirrus + 0.06 * f.opacity
    out: dict[str, np.ndarray] = {}
    dn = np.clip(np.rint(toa * 10000.0), 1, 65535).astype(np.uint16)
    for k, band in enumerate(SR_BANDS):
        out[band] = dn[k]

    pix = (ix[:, 1:-1], iy[1:-1])
    n1 = noise.normal(*pix, sky.salt ^ 0x11)
    n2 = noise.normal(*pix, sky.salt ^ 0x22)
    bright = (np.isin(label, (OPEN, INDUSTRIAL)) & (toa[1] > 0.15)).astype(np.float32)
    prob = np.clip(1.05 * f.opacity + 0.35 * f.cirrus + 0.18 * bright + 0.04 * n1, 0.0, 1.0)
    out["MSK_CLDPRB"] = np.rint(prob * 100).astype(np.uint8)
    ndvi = (toa[7] - toa[3]) / np.maximum(toa[7] + toa[3], 1e-6)
    scl = np.where(ndvi > 0.35, 4, 5).astype(np.uint8)
    scl[(np.isin(label, (WATER, WETLAND))) & (ndvi < 0.05)] = 6
    scl[(toa[1:4].mean(axis=0) < 0.03) & (scl != 6)] = 2
    scl[(f.shadow > 0.35) & (prob < 0.35)] = 3
    scl[(f.cirrus > 0.08) & (prob < 0.35)] = 10
    scl[(prob >= 0.25) & (prob < 0.35)] = 7
    scl[(prob >= 0.35) & (prob < 0.65)] = 8
    scl[prob >= 0.65] = 9
    out["SCL"] = scl
    qa = np.zeros(label.shape, dtype=np.uint16)
    qa[f.opacity > 0.5] |= 1024
    qa[f.cirrus > 0.1] |= 2048
    out["QA60"] = qa

    score = 1.0 - np.clip(1.6 * f.opacity + 1.3 * f.shadow + 0.9 * f.cirrus, 0.0, 1.0)
    # bright surfaces (chalk, metal roofs) fool the scorer now and then: false alarms
    out["cs"] = np.clip(score + 0.04 * n1 - 0.4 * bright, 0.0, 1.0).astype(np.float32)
    out["cs_cdf"] = np.clip(score * 1.02 + 0.05 * n2 - 0.35 * bright, 0.0, 1.0).astype(np.float32)
    s2cl = np.clip(1.1 * f.opacity + 0.5 * f.cirrus + 0.25 * bright + 0.06 * n2, 0.0, 1.0)
    out["probability"] = np.rint(s2cl * 100).astype(np.uint8)
    out["cloud"], out["shadow"], out["cirrus"] = f.opacity, f.shadow, f.cirrus
    return out


def _reduce(arr: np.ndarray, factor: int, how: str) -> np.ndarray:
    if factor == 1:
        return arr
    h, w = arr.shape[0] // factor, arr.shape[1] // factor
    blocks_ = arr[: h * factor, : w * factor].reshape(h, factor, w, factor)
    if how == "mean":
        return (
            np.rint(blocks_.mean(axis=(1, 3))).astype(arr.dtype)
            if arr.dtype.kind in "iu"
            else blocks_.mean(axis=(1, 3)).astype(arr.dtype)
        )
    if how == "or":
        return np.bitwise_or.reduce(np.bitwise_or.reduce(blocks_, axis=3), axis=1)
    return blocks_[:, factor // 2, :, factor // 2]


def _window10(
    cfg: WorldConfig, i: int, field: str, col0: int, row0: int, width: int, height: int
) -> np.ndarray:
    """One product field on any 10 m window, assembled from cached blocks."""
    return blocks.assemble(lambda bx, by: s2_block(cfg, i, bx, by)[field], col0, row0, width, height)


class WorldS2Source(ImageSource):
    """One Sentinel-2 acquisition as an asset: bands read from the generated products."""

    def __init__(
        self,
        cfg: WorldConfig,
        i: int,
        bands: dict[str, tuple[str, int, str, np.dtype]],
        properties: dict[str, Any],
        valid: Callable[[str], bool] | None = None,
        dn_offset: int = 0,
        *,
        toa: bool = False,
    ) -> None:
        super().__init__(
            cfg.crs,
            Affine(*cfg.transform()),
            cfg.shape(),
            {b: spec[3] for b, spec in bands.items()},
            properties,
        )
        self.cfg, self.i, self.bands = cfg, i, bands
        self.valid = valid or (lambda band: True)
        self.dn_offset = dn_offset  # COPERNICUS/S2_SR from baseline 04.00: reflectance DN + 1000
        self.toa = toa  # Level-1C: top-of-atmosphere reflectance (see TOA_PATH)

    def band_grid(self, band: str) -> tuple[Affine, tuple[int, int]]:
        scale = self.bands[band][1]
        return Affine(*self.cfg.transform(float(scale))), self.cfg.shape(float(scale))

    def footprint(self) -> list[list[float]]:
        return self.cfg.footprint

    def read(self, band: str, window: WindowT) -> Pixels:
        field, scale, how, dtype = self.bands[band]
        k = int(scale // PIXEL)
        col, row, w, h = window
        if how == "zero":  # a band the archive keeps empty (L1C QA10 / QA20)
            return np.zeros((h, w), dtype=dtype), np.full((h, w), self.valid(band), dtype=bool)
        arr = _window10(self.cfg, self.i, field, col * k, row * k, w * k, h * k)
        values = _reduce(arr, k, how).astype(dtype, copy=False)
        if self.toa and band in SR_BANDS:
            trans, path = TOA_PATH[band]
            values = np.clip(np.round(values * trans + path), 0, 65535).astype(dtype)
        if self.dn_offset and band in SR_BANDS:
            values = np.minimum(values.astype(np.uint32) + self.dn_offset, 65535).astype(dtype)
        mask = np.full(values.shape, self.valid(band), dtype=bool)
        return values, mask


BandSpec = tuple[str, int, str, np.dtype]
"""(product field, native scale in metres, 20/60 m reduction, dtype) of a band."""


TOA_PATH: dict[str, tuple[float, float]] = {
    "B1": (0.80, 900.0), "B2": (0.85, 550.0), "B3": (0.90, 320.0), "B4": (0.92, 200.0),
    "B5": (0.93, 170.0), "B6": (0.94, 130.0), "B7": (0.95, 110.0), "B8": (0.95, 100.0),
    "B8A": (0.95, 90.0), "B9": (0.70, 40.0), "B10": (1.0, 0.0), "B11": (0.96, 30.0),
    "B12": (0.95, 20.0),
}  # fmt: skip
"""Level-1C from surface reflectance, per band: TOA DN = transmittance x SR DN + path DN. A linear
stand-in for the atmosphere (two-way transmittance and path reflectance of a clear mid-latitude
sky with a rural aerosol of optical depth ~0.15 at 550 nm: the blue bands brighten most, B9 loses
to water vapour); clouds and haze are already in the generated reflectance. Documented in
docs/demo_world.md."""


def l1c_bands() -> dict[str, BandSpec]:
    """COPERNICUS/S2_HARMONIZED (Level-1C) bands: the 13 reflectance bands and QA10/QA20/QA60."""
    bands: dict[str, BandSpec] = {b: (b, surface.SCALE_M[b], "mean", np.dtype(np.uint16)) for b in SR_BANDS}
    bands["QA10"] = ("QA60", 10, "zero", np.dtype(np.uint16))  # empty in the archive, as here
    bands["QA20"] = ("QA60", 20, "zero", np.dtype(np.uint32))
    bands["QA60"] = ("QA60", 60, "or", np.dtype(np.uint16))
    return bands


def sr_bands() -> dict[str, BandSpec]:
    """COPERNICUS/S2_SR_HARMONIZED bands: (product field, scale m, reduction, dtype)."""
    bands: dict[str, BandSpec] = {b: (b, surface.SCALE_M[b], "mean", np.dtype(np.uint16)) for b in SR_BANDS}
    bands["SCL"] = ("SCL", 20, "centre", np.dtype(np.uint8))
    bands["MSK_CLDPRB"] = ("MSK_CLDPRB", 20, "mean", np.dtype(np.uint8))
    bands["QA60"] = ("QA60", 60, "or", np.dtype(np.uint16))
    return bands


def sr_properties(cfg: WorldConfig, i: int) -> dict[str, Any]:
    """The properties a real S2 SR image carries."""
    acq = _acq(i)
    s = atmosphere.sky(cfg, float(acq.millis))
    cloudy = atmosphere.cloudy_percentage(cfg, float(acq.millis))
    baseline = acq.baseline.replace(".", "")
    return {
        "system:time_start": acq.millis,
        "system:time_end": acq.millis,
        "CLOUDY_PIXEL_PERCENTAGE": cloudy,
        "CLOUD_COVERAGE_ASSESSMENT": cloudy,
        "MEAN_SOLAR_AZIMUTH_ANGLE": round(s.azimuth, 6),
        "MEAN_SOLAR_ZENITH_ANGLE": round(s.zenith, 6),
        "MGRS_TILE": "31UCQ",
        "SPACECRAFT_NAME": acq.spacecraft,
        "PROCESSING_BASELINE": acq.baseline,
        "SENSING_ORBIT_NUMBER": 51,
        "SENSING_ORBIT_DIRECTION": "DESCENDING",
        "PRODUCT_ID": f"S2{acq.spacecraft[-1]}_MSIL2A_{acq.index[:15]}_N{baseline}_R051_T31UCQ",
        "DATASTRIP_ID": f"S2{acq.spacecraft[-1]}_OPER_MSI_L2A_DS_{acq.index[:15]}",
    }


def l1c_properties(cfg: WorldConfig, i: int) -> dict[str, Any]:
    """The properties a real S2 Level-1C image carries (the SR ones, with L1C product IDs)."""
    props = sr_properties(cfg, i)
    for key in ("PRODUCT_ID", "DATASTRIP_ID"):
        props[key] = props[key].replace("MSIL2A", "MSIL1C").replace("MSI_L2A", "MSI_L1C")
    return props


def qa60_valid(i: int) -> Callable[[str], bool]:
    """QA60 is masked (empty in the archive) between 2022-01-25 and 2024-02-28."""
    d = _acq(i).when.date()
    gap = schedule.QA60_GAP[0] <= d < schedule.QA60_GAP[1]
    return lambda band: not (band == "QA60" and gap)
