"""Sentinel-2 of the demo world: L2A surface reflectance with clouds, shadows and cirrus, the
scene classification (SCL), QA60, MSK_CLDPRB, Cloud Score+ and s2cloudless, and the
atmospheric truth (for testing cloud masks).

One acquisition is generated per 256 x 256 block of the 10 m lattice, all products at once,
and kept in an LRU; 20 m and 60 m bands are block means (SCL: the centre sample, QA60: the
bitwise OR) of the 10 m fields, so all resolutions agree and any window is tile-consistent.

Two defects of real acquisitions are reproduced: each acquisition is shifted by a sub-pixel
co-registration offset (:func:`coregistration_offset`, resampled within the neighbour mixing of
:func:`surface.mix_neighbours`), and a residual haze (:func:`atmosphere.haze_field`) adds path
reflectance, strongest in the blue, that the cloud masks do not flag.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from affine import Affine

from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import ImageSource, WindowT
from gee_fusion.local.world import (
    atmosphere,
    blocks,
    changes,
    noise,
    phenology,
    s2_bands,
    schedule,
    surface,
)
from gee_fusion.local.world.blocks import BLOCK
from gee_fusion.local.world.cells import reduce_cells
from gee_fusion.local.world.config import PIXEL, WorldConfig
from gee_fusion.local.world.landcover import WATER, WETLAND

HAZE_CS = 0.5
"""Cloud Score+ ``cs`` / ``cs_cdf`` lowered by this x the haze optical depth (at most ~0.1)."""

GRI_REFINED = date(2021, 3, 30)
"""Start of the geometric refinement on the Global Reference Image over Europe (worldwide from
2021-08-23)."""
COREG_SD = (0.34, 0.085)
"""Per-axis standard deviation (10 m pixels) of an acquisition's shift before / after
:data:`GRI_REFINED`: pairwise co-registration 12 m (before) and 3 m (after, one relative orbit) at
95.5 % circular error (docs/demo_world.md "Spectral model")."""

SR_BANDS = surface.BANDS
AUX_SCALE = {"SCL": 20, "MSK_CLDPRB": 20, "QA60": 60}


def _acq(i: int) -> schedule.S2Acquisition:
    return schedule.s2_acquisitions()[i]


@functools.lru_cache(maxsize=4096)
def coregistration_offset(cfg: WorldConfig, i: int) -> tuple[float, float]:
    """(dx, dy): sub-pixel shift of acquisition ``i`` (10 m pixels; pixel (col, row) shows the
    ground at (col + dx, row + dy)), normal with :data:`COREG_SD` by date, clipped to
    +-:data:`surface.SHIFT_MAX`."""
    acq = _acq(i)
    sd = COREG_SD[0] if acq.when.date() < GRI_REFINED else COREG_SD[1]
    salt = noise.salt_of(cfg.seed, "coreg", int(acq.millis // 1000))
    d = noise.normal(np.arange(2), np.int64(0), salt) * sd
    dx, dy = np.clip(d, -surface.SHIFT_MAX, surface.SHIFT_MAX)
    return float(dx), float(dy)


def surface_block(cfg: WorldConfig, i: int, bx: int, by: int, *, shifted: bool = True) -> np.ndarray:
    """(13, 256, 256) surface reflectance of acquisition ``i`` on a block (neighbour-mixed and, if
    ``shifted``, resampled at the acquisition's co-registration offset), before the atmosphere."""
    return _surface(cfg, i, bx, by, shifted)[0]


@dataclass(frozen=True)
class Ground:
    """What a block's Sentinel-2 surface needs that does not change from date to date (until a
    planted change alters the block): its labels, its cover objects and its spectra.

    Attributes:
        label: (256, 256) land-cover codes.
        cover: Cover objects of the block with its halo (:func:`phenology.cover_index`).
        mixture: Spectra of the block with its halo (:func:`surface.mixture`).
    """

    label: np.ndarray
    cover: phenology.CoverIndex
    mixture: surface.Mixture

    @property
    def nbytes(self) -> int:
        """Memory held."""
        return self.label.nbytes + self.cover.nbytes + self.mixture.nbytes


GROUND_MB = int(os.environ.get("GEE_FUSION_WORLD_GROUND_MB", "256"))
"""Memory for the blocks' :class:`Ground` (MiB; about 11 MiB a block): enough for the 16 blocks of
a 1000 x 1000 px window, so a time series of it computes each block's spectra once."""

GROUNDS: blocks.ByteLRU[Ground] = blocks.ByteLRU(GROUND_MB * 2**20, sizeof=lambda g: g.nbytes)


def ground(cfg: WorldConfig, bx: int, by: int, millis: float) -> Ground:
    """The :class:`Ground` of block (bx, by) at a date: cached per block and set of planted changes
    that alter it (so every date between two changes shares it)."""
    c0, r0, n = bx * BLOCK - 1, by * BLOCK - 1, BLOCK + 2
    active = changes.active_changes(cfg, c0, r0, n, n, millis)

    def build() -> Ground:
        lc, site = changes.apply_changes(cfg, blocks.landcover_block_halo(cfg, bx, by), c0, r0, millis)
        ix, iy = blocks.halo_indices(bx, by)
        return Ground(
            lc.label[1:-1, 1:-1].copy(),
            phenology.cover_index(cfg, lc),
            surface.mixture(cfg, lc, ix, iy, site=site),
        )

    return GROUNDS.get((cfg, bx, by, active), build)


def _surface(cfg: WorldConfig, i: int, bx: int, by: int, shifted: bool) -> tuple[np.ndarray, np.ndarray]:
    """The block's surface reflectance (see :func:`surface_block`) and its labels on that date."""
    millis = float(_acq(i).millis)
    g = ground(cfg, bx, by, millis)
    cover = phenology.cover_at(g.cover, millis)
    dx, dy = coregistration_offset(cfg, i) if shifted else (0.0, 0.0)
    refl = surface.mix_neighbours(surface.compose(g.mixture, cover, phenology.wetness(cfg, millis)), dx, dy)
    return refl, g.label


AT_20M: dict[str, str] = {
    **{b: "mean" for b in SR_BANDS if surface.SCALE_M[b] == 20},
    "MSK_CLDPRB": "mean",
    "SCL": "centre",
}
"""Fields also kept at 20 m in every block (field ``<name>_20m``: its 2 x 2 cells reduced by
:func:`~gee_fusion.local.world.cells.reduce_cells` when the block is generated), which the 20 m
bands of a request read: the reduction is done once per block, not once per request, and a warm
request reads a quarter of the bytes of those bands."""
SUFFIX_20M = "_20m"

TRUTH = ("cloud", "shadow", "cirrus")
"""Fields of the atmospheric truth (collection ``local/demo/S2_TRUTH``): computed from the sky when
asked (:func:`truth_block`, the same call the block's generation makes), not kept in the blocks."""

KEPT_OUT = (*TRUTH, *AT_20M)
"""Fields a generated block has but the block caches do not keep: the truth, and the 10 m version of
every field kept at 20 m (no request reads it: a 20 m band is read at 20 m). Without them a block
file is about half the size (1.8 instead of 3.4 MiB), which halves the disk cache's writes."""

GROUPS = (
    (*(b for b in SR_BANDS if b not in AT_20M), "QA60", *(f + SUFFIX_20M for f in AT_20M)),
    ("cs", "cs_cdf"),
    ("probability",),
)
"""Fields of a block read together from the disk cache, what each collection reads: Level-1C and
Level-2A (10 m and 60 m bands at 10 m, 20 m bands at 20 m), Cloud Score+, s2cloudless."""


def s2_block(cfg: WorldConfig, i: int, bx: int, by: int) -> Mapping[str, np.ndarray]:
    """Every Sentinel-2 product of acquisition ``i`` on one 256 x 256 block (10 m fields),
    from the shared block cache."""
    return blocks.product_block("s2", cfg, i, bx, by, lambda: _kept(_s2_block(cfg, i, bx, by)), GROUPS)


def _kept(fields: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fields of a generated block that the block caches keep (all but :data:`KEPT_OUT`)."""
    return {name: arr for name, arr in fields.items() if name not in KEPT_OUT}


@functools.lru_cache(maxsize=32)
def truth_block(cfg: WorldConfig, i: int, bx: int, by: int) -> dict[str, np.ndarray]:
    """The atmospheric truth (:data:`TRUTH`) of acquisition ``i`` on one block: the cloud fields
    that :func:`_s2_block` computes for it (cached, about 0.8 MiB a block)."""
    sky = atmosphere.sky(cfg, float(_acq(i).millis))
    f = atmosphere.cloud_fields(cfg, sky, bx * BLOCK, by * BLOCK, BLOCK, BLOCK)
    return {"cloud": f.opacity, "shadow": f.shadow, "cirrus": f.cirrus}


def _s2_block(cfg: WorldConfig, i: int, bx: int, by: int) -> dict[str, np.ndarray]:
    millis = float(_acq(i).millis)
    c0, r0 = bx * BLOCK, by * BLOCK
    g = ground(cfg, bx, by, millis)
    sky = atmosphere.sky(cfg, millis)
    f = atmosphere.cloud_fields(cfg, sky, c0, r0, BLOCK, BLOCK)
    haze = atmosphere.haze_field(cfg, sky, c0, r0, BLOCK, BLOCK)
    cover = phenology.cover_at(g.cover, millis)
    wet = phenology.wetness(cfg, millis)
    optics = s2_bands.render(g.mixture, cover, wet, coregistration_offset(cfg, i), f, haze, g.label)
    label, ndvi, dark, bright = g.label, optics.ndvi, optics.dark, optics.bright
    out: dict[str, np.ndarray] = {band: optics.dn[k] for k, band in enumerate(SR_BANDS)}

    ix, iy = blocks.halo_indices(bx, by)
    pix = (ix[:, 1:-1], iy[1:-1])
    n1, n2 = noise.normals(*pix, (sky.salt ^ 0x11, sky.salt ^ 0x22), np.float32)
    prob = np.clip(1.05 * f.opacity + 0.35 * f.cirrus + 0.18 * bright + 0.04 * n1, 0.0, 1.0)
    out["MSK_CLDPRB"] = np.rint(prob * 100).astype(np.uint8)
    out["SCL"] = _scene_classes(label, ndvi, dark, prob, f)
    qa = np.zeros(label.shape, dtype=np.uint16)
    qa[f.opacity > 0.5] |= 1024
    qa[f.cirrus > 0.1] |= 2048
    out["QA60"] = qa

    score = 1.0 - np.clip(1.6 * f.opacity + 1.3 * f.shadow + 0.9 * f.cirrus, 0.0, 1.0)
    # bright surfaces (chalk, metal roofs) fool the scorer now and then: false alarms
    # ... and residual haze lowers the score a little (never to a cloud's level)
    hazy = HAZE_CS * haze
    out["cs"] = np.clip(score + 0.04 * n1 - 0.4 * bright - hazy, 0.0, 1.0).astype(np.float32)
    out["cs_cdf"] = np.clip(score * 1.02 + 0.05 * n2 - 0.35 * bright - hazy, 0.0, 1.0).astype(np.float32)
    s2cl = np.clip(1.1 * f.opacity + 0.5 * f.cirrus + 0.25 * bright + 0.06 * n2, 0.0, 1.0)
    out["probability"] = np.rint(s2cl * 100).astype(np.uint8)
    out["cloud"], out["shadow"], out["cirrus"] = f.opacity, f.shadow, f.cirrus
    out.update(_at_20m(out, optics.dn))
    return out


def _at_20m(out: Mapping[str, np.ndarray], dn: np.ndarray) -> dict[str, np.ndarray]:
    """The fields kept at 20 m (:data:`AT_20M`) of a block's fields ``out``: the 20 m bands' means
    in one call on their stacked rows (a cell's two rows never straddle two bands), the others one by
    one."""
    bands = [name for name in AT_20M if name in SR_BANDS and AT_20M[name] == "mean"]
    stacked = dn[[SR_BANDS.index(b) for b in bands]]
    half = BLOCK // 2
    means = reduce_cells(stacked.reshape(-1, BLOCK), 2, "mean").reshape(len(bands), half, half)
    return {
        name + SUFFIX_20M: means[bands.index(name)] if name in bands else reduce_cells(out[name], 2, how)
        for name, how in AT_20M.items()
    }


def _scene_classes(
    label: np.ndarray, ndvi: np.ndarray, dark: np.ndarray, prob: np.ndarray, f: atmosphere.CloudFields
) -> np.ndarray:
    """The SCL of a block: vegetation / bare, water, dark pixels, then the cloud classes."""
    scl = np.where(ndvi > 0.35, 4, 5).astype(np.uint8)
    scl[(np.isin(label, (WATER, WETLAND))) & (ndvi < 0.05)] = 6
    scl[dark & (scl != 6)] = 2
    clear = prob < 0.35
    scl[(f.shadow > 0.35) & clear] = 3
    scl[(f.cirrus > 0.08) & clear] = 10
    scl[(prob >= 0.25) & clear] = 7
    scl[(prob >= 0.35) & (prob < 0.65)] = 8
    scl[prob >= 0.65] = 9
    return scl


def _window10(
    cfg: WorldConfig, i: int, field: str, col0: int, row0: int, width: int, height: int
) -> np.ndarray:
    """One product field on any 10 m window, assembled from cached blocks."""
    return blocks.assemble(functools.partial(_field_of, cfg, i, field), col0, row0, width, height)


def _window(cfg: WorldConfig, i: int, field: str, window: WindowT, factor: int, how: str) -> np.ndarray:
    """One product field on a window of the 10 m lattice reduced to ``factor`` x ``factor`` cells
    (:func:`~gee_fusion.local.world.cells.reduce_cells`): the 20 m fields kept in the blocks
    (:data:`AT_20M`), else reduced block by block when the cells do not straddle blocks, else from
    the assembled 10 m window (60 m)."""
    col, row, w, h = window
    if field not in TRUTH:
        _prefetch(cfg, i, window)
    if factor == 2 and AT_20M.get(field) == how:  # kept at 20 m in every block
        fetch = functools.partial(_field_of, cfg, i, field + SUFFIX_20M)
        return blocks.assemble(fetch, col // 2, row // 2, w // 2, h // 2, block=BLOCK // 2)
    if factor == 1 or BLOCK % factor:
        return reduce_cells(_window10(cfg, i, field, col, row, w, h), factor, how)
    fetch = functools.partial(_field_of, cfg, i, field)
    return blocks.assemble(
        fetch, col, row, w, h, reduce=lambda a: reduce_cells(a, factor, how), factor=factor
    )


S2_BLOCK_BYTES = 2 * 2**20
"""About the memory of one block's products as the caches keep them (1.8 MiB)."""


def _prefetch(cfg: WorldConfig, i: int, window: WindowT) -> None:
    """The blocks of acquisition ``i`` under a window of the 10 m lattice that are to be generated,
    made by the world's helper processes or threads (:func:`blocks.prefetch_products`). The planted
    changes come first, in this thread: they read the land cover of the whole city (by the threads
    too), which every block's ground needs, and are handed to the helpers."""
    block, plant = functools.partial(s2_block, cfg, i), functools.partial(_plant, cfg)
    blocks.prefetch_products("s2", cfg, i, window, block, S2_BLOCK_BYTES, before=plant)


def _plant(cfg: WorldConfig) -> Callable[[], object]:
    """The planted changes, placed here; returns what gives them to a helper process (placing them
    there again would read the land cover of the whole city)."""
    return functools.partial(changes.adopt_planted_changes, cfg, changes.planted_changes(cfg))


def _field_of(cfg: WorldConfig, i: int, field: str, bx: int, by: int) -> np.ndarray:
    """Field ``field`` of block (bx, by) of acquisition ``i``."""
    if field in TRUTH:
        return truth_block(cfg, i, bx, by)[field]
    return s2_block(cfg, i, bx, by)[field]


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
        values = _window(self.cfg, self.i, field, (col * k, row * k, w * k, h * k), k, how).astype(
            dtype, copy=False
        )
        if self.toa and band in SR_BANDS:
            trans, path = TOA_PATH[band]
            values = np.clip(np.round(values * trans + path), 0, 65535).astype(dtype)
        if self.dn_offset and band in SR_BANDS:
            values = np.minimum(values.astype(np.uint32) + self.dn_offset, 65535).astype(dtype)
        return values, np.broadcast_to(np.bool_(self.valid(band)), values.shape)


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
