"""Sentinel-1 IW GRD of the demo world: VV / VH backscatter and incidence angle.

Per-class sigma-nought (dB at 38 degrees) with angle dependence; double bounce and strong
texture in built-up areas, very low returns from calm water (roughened by wind on some
dates), volume scattering of vegetation in VH that follows phenology, soil-moisture rises after
rain on bare and sparsely vegetated ground; 3 x 3 mixing at class edges; then multiplicative
gamma speckle with ENL 4.4 (IW GRD). The swath geometry gives incidence 29.1-46.0 degrees
across 250 km; within ~1.5 km of a swath edge values collapse (border noise), beyond it there
is no data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from affine import Affine

from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import ImageSource, WindowT
from gee_fusion.local.world import blocks, noise, phenology, schedule
from gee_fusion.local.world.blocks import BLOCK
from gee_fusion.local.world.config import WorldConfig
from gee_fusion.local.world.landcover import (
    ARABLE,
    DENSE,
    FOREST,
    GRASS,
    GROVE,
    INDUSTRIAL,
    NETWORK,
    OPEN,
    ORCHARD,
    SPARSE,
    URBAN_GREEN,
    VINEYARD,
    WATER,
    WETLAND,
    coords,
)

ENL = 4.4
NEAR, FAR = 29.1, 46.0
GRADIENT = (FAR - NEAR) / 250.0  # degrees per km across track
CENTRE_ANGLE = {"ASCENDING": 39.0, "DESCENDING": 31.8}
"""Incidence at the world centre for each pass (the descending swath's near edge lies ~40 km east)."""
BORDER_KM = 1.5

#            code:       (VV dB, VH dB, texture dB)
BACKSCATTER: dict[int, tuple[float, float, float]] = {
    DENSE: (1.0, -8.5, 3.0),
    SPARSE: (-4.5, -12.5, 2.5),
    INDUSTRIAL: (-2.0, -11.0, 2.8),
    URBAN_GREEN: (-9.0, -15.5, 0.6),
    NETWORK: (-14.0, -22.0, 0.8),
    ARABLE: (-12.0, -21.0, 0.25),
    VINEYARD: (-10.5, -17.0, 0.5),
    ORCHARD: (-9.0, -15.0, 0.5),
    GRASS: (-11.0, -18.5, 0.25),
    GROVE: (-7.5, -13.0, 0.5),
    FOREST: (-7.0, -12.5, 0.3),
    OPEN: (-13.0, -21.5, 0.6),
    WETLAND: (-13.5, -20.0, 0.5),
    WATER: (-22.0, -28.0, 0.2),
}
VEGETATED = (ARABLE, GRASS, ORCHARD, VINEYARD, URBAN_GREEN, WETLAND)


def incidence(passing: str, u_m: np.ndarray) -> np.ndarray:
    """Incidence angle (degrees) at eastings ``u_m`` (metres from the world centre)."""
    sign = 1.0 if passing == "ASCENDING" else -1.0
    return CENTRE_ANGLE[passing] + sign * GRADIENT * (u_m / 1000.0)


def near_range_edge_col(cfg: WorldConfig, passing: str) -> int:
    """Column of the world's 10 m lattice where a pass's near-range swath edge lies (it may
    be far outside the default world)."""
    sign = 1.0 if passing == "ASCENDING" else -1.0
    edge_u = (NEAR - CENTRE_ANGLE[passing]) / (sign * GRADIENT) * 1000.0
    return int((cfg.size_px / 2 * 10.0 + edge_u) // 10.0)


def _acq(i: int) -> schedule.S1Acquisition:
    return schedule.s1_acquisitions()[i]


def s1_block(cfg: WorldConfig, i: int, bx: int, by: int) -> dict[str, np.ndarray]:
    """VV and VH (linear), incidence angle and validity of acquisition ``i`` on one block
    (from the shared block cache)."""
    return blocks.PRODUCTS.get(("s1", cfg, i, bx, by), lambda: _s1_block(cfg, i, bx, by))


def _s1_block(cfg: WorldConfig, i: int, bx: int, by: int) -> dict[str, np.ndarray]:
    acq = _acq(i)
    millis = float(acq.millis)
    c0, r0 = bx * BLOCK, by * BLOCK
    lc = blocks.landcover_block_halo(cfg, bx, by)
    fv = phenology.green_cover(cfg, lc, millis)
    wet = phenology.wetness(cfg, millis)
    ix, iy = blocks.halo_indices(bx, by)
    u, _ = coords(cfg, c0 - 1, r0 - 1, BLOCK + 2, BLOCK + 2)
    theta = np.broadcast_to(incidence(acq.passing, u), lc.label.shape)
    salt = noise.salt_of(cfg.seed, "s1", acq.index)

    vv = np.zeros(lc.label.shape, dtype=np.float32)
    vh = np.zeros(lc.label.shape, dtype=np.float32)
    tex = np.zeros(lc.label.shape, dtype=np.float32)
    for code, (b_vv, b_vh, t) in BACKSCATTER.items():
        sel = lc.label == code
        vv[sel], vh[sel], tex[sel] = b_vv, b_vh, t
    veg = np.isin(lc.label, VEGETATED)
    vv += np.where(veg, 1.5 * fv + 3.0 * wet * (1 - fv), 0.0)
    vh += np.where(veg, 6.0 * fv + 1.5 * wet * (1 - fv), 0.0)
    woody = np.isin(lc.label, (FOREST, GROVE))
    vh += np.where(woody, 0.8 * (fv - 0.6), 0.0)
    urban = np.isin(lc.label, (DENSE, SPARSE, INDUSTRIAL))
    vv += np.where(urban, 0.0, -0.12 * (theta - 38.0))
    vh += np.where(urban, -0.05 * (theta - 38.0), -0.10 * (theta - 38.0))
    water = lc.label == WATER
    if water.any():
        wind = float(
            noise.uniform(np.int64(int(millis // 3_600_000)), np.int64(3), noise.salt_of(cfg.seed, "wind"))
        )
        gust = noise.fbm(ix * 10.0, iy * 10.0, 1500.0, salt ^ 0x5A, octaves=2)
        rough = np.clip(wind - 0.6, 0, 1) * 2.5 * gust
        vv += np.where(water, 10.0 * rough, 0.0)
        vh += np.where(water, 5.0 * rough, 0.0)
    p = lc.parcel.astype(np.int64)
    offset = 0.5 * noise.normal(p, 11, noise.salt_of(cfg.seed, "s1-parcel"))
    static = tex * noise.normal(ix, iy, noise.salt_of(cfg.seed, "s1-texture"))
    vv_lin = 10.0 ** ((vv + offset + static) / 10.0)
    vh_lin = 10.0 ** ((vh + offset + 0.8 * static) / 10.0)

    def mix(a: np.ndarray) -> np.ndarray:
        return 0.6 * a[1:-1, 1:-1] + 0.1 * (a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:])

    pix = (ix[:, 1:-1], iy[1:-1])
    vv_lin = mix(vv_lin) * noise.gamma_unit_mean(*pix, salt ^ 0x1, ENL)
    vh_lin = mix(vh_lin) * noise.gamma_unit_mean(*pix, salt ^ 0x2, ENL)
    angle = theta[1:-1, 1:-1].astype(np.float32)
    edge_near = (angle - NEAR) / GRADIENT  # km from the near-range edge
    edge_far = (FAR - angle) / GRADIENT
    border = np.minimum(edge_near, edge_far) < BORDER_KM
    collapse = 10.0 ** (-1.2 - noise.uniform(*pix, salt ^ 0x3))
    vv_lin = np.where(border, vv_lin * collapse, vv_lin)
    vh_lin = np.where(border, vh_lin * collapse, vh_lin)
    valid = (angle > NEAR) & (angle < FAR)
    return {"VV": vv_lin.astype(np.float32), "VH": vh_lin.astype(np.float32), "angle": angle, "valid": valid}


def _window(
    cfg: WorldConfig, i: int, field: str, col0: int, row0: int, width: int, height: int
) -> np.ndarray:
    return blocks.assemble(lambda bx, by: s1_block(cfg, i, bx, by)[field], col0, row0, width, height)


class WorldS1Source(ImageSource):
    """One Sentinel-1 acquisition: ``VV``, ``VH`` in dB (S1_GRD) or linear (S1_GRD_FLOAT), ``angle``."""

    def __init__(self, cfg: WorldConfig, i: int, *, linear: bool, properties: dict[str, Any]) -> None:
        dtypes = {b: np.dtype(np.float32) for b in ("VV", "VH", "angle")}
        super().__init__(cfg.crs, Affine(*cfg.transform()), cfg.shape(), dtypes, properties)
        self.cfg, self.i, self.linear = cfg, i, linear

    def footprint(self) -> list[list[float]]:
        return self.cfg.footprint

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        values = _window(self.cfg, self.i, band, col, row, w, h)
        valid = _window(self.cfg, self.i, "valid", col, row, w, h)
        if band != "angle" and not self.linear:
            values = (10.0 * np.log10(np.maximum(values, 1e-10))).astype(np.float32)
        return values, valid


def s1_properties(i: int) -> dict[str, Any]:
    """The properties a real S1 GRD image carries."""
    a = _acq(i)
    return {
        "system:time_start": a.millis,
        "system:time_end": a.millis + 25_000,
        "instrumentMode": "IW",
        "instrumentSwath": "IW",
        "productType": "GRD",
        "transmitterReceiverPolarisation": ["VV", "VH"],
        "orbitProperties_pass": a.passing,
        "relativeOrbitNumber_start": a.relative_orbit,
        "relativeOrbitNumber_stop": a.relative_orbit,
        "orbitNumber_start": a.absolute_orbit,
        "resolution": "H",
        "resolution_meters": 10,
        "platform_number": a.platform,
        "instrument": "Synthetic Aperture Radar (C-SAR)",
    }
