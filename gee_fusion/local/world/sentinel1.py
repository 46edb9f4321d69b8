"""Sentinel-1 IW GRD of the demo world: VV / VH backscatter and incidence angle.

Per-class sigma-nought (dB at 38 degrees) with angle dependence; double bounce and strong
texture in built-up areas, very low returns from calm water (roughened by wind on some
dates), volume scattering of vegetation in VH that follows phenology, soil-moisture rises after
rain on bare and sparsely vegetated ground; 3 x 3 mixing at class edges; then multiplicative
gamma speckle with ENL 4.4 (IW GRD). The swath geometry gives incidence 29.1-46.0 degrees
across 250 km; within ~1.5 km of a swath edge values collapse (border noise), beyond it there
is no data. The relief (:mod:`relief`) changes the local incidence and the illuminated area:
slopes facing the sensor are brighter, slopes facing away darker, with layover (capped
brightening) and radar shadow (noise floor) on the steepest ones. Built-up areas hold sparse,
persistent point targets (building corners, metal structures, :func:`point_targets`): +10 to
+20 dB above their class, part of them seen by one pass only, nearly free of speckle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import ImageSource, WindowT
from gee_fusion.local.world import blocks, changes, noise, phenology, relief, schedule
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
AREA_CAP = 10.0
"""Largest brightening of slopes facing the sensor (layover folds a whole slope into a few pixels)."""
NOISE_FLOOR = (10.0**-2.5, 10.0**-3.0)
"""VV / VH power in radar shadow (-25 / -30 dB: the residual after thermal-noise removal)."""

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
SITE_BOOST_DB = (3.0, 2.0)
"""Construction sites are brighter than bare open land (VV, VH dB)."""
SITE_TEXTURE = 2.0
"""Static texture (dB) of construction sites."""

VEGETATED = (ARABLE, GRASS, ORCHARD, VINEYARD, URBAN_GREEN, WETLAND)

ANGLE_SLOPE_DB: dict[str, tuple[float, float]] = {
    "surface": (-0.12, -0.10),
    "woody": (-0.06, -0.06),
    "urban": (0.0, -0.05),
    "water": (-0.5, -0.10),
}
"""Change of sigma0 (dB per degree of local incidence above 38, VV / VH): bare and vegetated
surfaces, forests and groves (volume scattering), built-up (double bounce), calm water (specular
reflection; its VH sits near the noise floor). docs/demo_world.md "Sentinel-1" gives the sources."""

POINT_TARGETS: dict[int, float] = {DENSE: 0.025, INDUSTRIAL: 0.035, SPARSE: 0.012, NETWORK: 0.005}
"""Share of the pixels of a class that hold a point target on one pass (dihedral building corners,
metal roofs and structures; on networks bridges, pylons, gantries): 250, 350, 120 and 50 per km2."""
POINT_SHARED = 0.4
"""Fraction of the targets seen by both passes (poles, roof edges); the others are walls facing
one look direction, drawn per pass."""
POINT_DB = (10.0, 20.0)
"""Range (uniform) of a target's VV above its class's sigma0 at 38 degrees (dB)."""
POINT_VH = 0.5
"""A target's VH boost (dB) is this fraction of its VV boost: dihedrals barely depolarise."""
POINT_ENL = 50.0
"""Equivalent number of looks of a target's own fluctuation: intensity CV 0.14, amplitude
dispersion ~0.07, well under the 0.25 that selects persistent scatterers (Ferretti et al. 2001)."""
_POINT_DENSITY = np.zeros(16, dtype=np.float64)
_BASE_DB = np.zeros((16, 2), dtype=np.float32)

PARCEL_DB = 2.0
"""Per-object backscatter offset (dB, standard deviation): soil moisture and roughness, crop
structure and row direction differ from field to field (docs/demo_world.md "Realism")."""
DATE_PARCEL_DB = 2.0
"""Per-object, per-acquisition offset of fields and grass (dB, standard deviation): tillage,
harrowing, rolling, irrigation and cutting change a field's roughness and moisture from one pass
to the next, independently of its neighbours."""
BUILT_PARCEL_DB = 3.0
"""Per-object offset in built-up classes (dB, half-width of a uniform spread): double bounce depends
on the walls' orientation to the track, so blocks of one class differ by several dB."""


for _code, _density in POINT_TARGETS.items():
    _POINT_DENSITY[_code] = _density
for _code, (_vv, _vh, _) in BACKSCATTER.items():
    _BASE_DB[_code] = (_vv, _vh)


def point_targets(
    cfg: WorldConfig, passing: str, label: np.ndarray, ix: np.ndarray, iy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """VV and VH power (linear, float32; 0 where there is none) of the point targets of a window.

    A pure function of the lattice indices: a pixel of class ``c`` holds a target seen by both
    passes where a hash of (ix, iy) is below ``POINT_SHARED x POINT_TARGETS[c]``, or one of this
    pass where a hash salted by the pass is below ``(1 - POINT_SHARED) x POINT_TARGETS[c]``; the
    hash's value within that range sets its brightness, uniform over :data:`POINT_DB` above the
    class's VV (x :data:`POINT_VH` in VH).

    Args:
        cfg: The world.
        passing: "ASCENDING" or "DESCENDING".
        label: Land-cover codes of the window.
        ix: Lattice column indices (row vector).
        iy: Lattice row indices (column vector).
    """
    density = _POINT_DENSITY[label]
    zero = np.zeros(label.shape, dtype=np.float32)
    if not density.any():
        return zero, zero
    p_shared, p_own = POINT_SHARED * density, (1.0 - POINT_SHARED) * density
    u_shared = noise.uniform(ix, iy, noise.salt_of(cfg.seed, "s1-points"))
    u_own = noise.uniform(ix, iy, noise.salt_of(cfg.seed, "s1-points", passing))
    shared, own = u_shared < p_shared, u_own < p_own
    hit = shared | own
    if not hit.any():
        return zero, zero
    rank = np.where(shared, u_shared / np.maximum(p_shared, 1e-12), u_own / np.maximum(p_own, 1e-12))[hit]
    boost = POINT_DB[0] + (POINT_DB[1] - POINT_DB[0]) * rank
    base = _BASE_DB[label[hit]]
    vv, vh = zero.copy(), zero.copy()
    vv[hit] = 10.0 ** ((base[:, 0] + boost) / 10.0)
    vh[hit] = 10.0 ** ((base[:, 1] + POINT_VH * boost) / 10.0)
    return vv, vh


def incidence(passing: str, u_m: np.ndarray) -> np.ndarray:
    """Incidence angle (degrees) at eastings ``u_m`` (metres from the world centre)."""
    sign = 1.0 if passing == "ASCENDING" else -1.0
    return CENTRE_ANGLE[passing] + sign * GRADIENT * (u_m / 1000.0)


def swath_angle(cfg: WorldConfig, passing: str, col0: int, row0: int, width: int, height: int) -> np.ndarray:
    """The ``angle`` band (float32 degrees) of a window of the 10 m lattice (as in the blocks)."""
    u, _ = coords(cfg, col0, row0, width, height)
    return np.broadcast_to(incidence(passing, u), (height, width)).astype(np.float32)


def near_range_edge_col(cfg: WorldConfig, passing: str) -> int:
    """Column of the world's 10 m lattice where a pass's near-range swath edge lies (it may
    be far outside the default world)."""
    sign = 1.0 if passing == "ASCENDING" else -1.0
    edge_u = (NEAR - CENTRE_ANGLE[passing]) / (sign * GRADIENT) * 1000.0
    return int((cfg.size_px / 2 * 10.0 + edge_u) // 10.0)


@dataclass(frozen=True)
class TerrainGeometry:
    """Radar geometry of sloping ground for one pass (arrays like the incidence angle)."""

    local_incidence: np.ndarray
    """Angle between the surface normal and the direction to the sensor (degrees)."""
    area_direct: np.ndarray
    """Illuminated-area factor of surface scatterers relative to flat ground (>= 0, capped)."""
    area_volume: np.ndarray
    """The volume-scattering counterpart (Vollrath et al. 2020's volume model)."""
    layover: np.ndarray
    """Slopes facing the sensor steeper than the incidence angle."""
    shadow: np.ndarray
    """Slopes facing away steeper than the grazing angle (no signal)."""


def terrain_geometry(passing: str, theta: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> TerrainGeometry:
    """Local incidence, area factors and layover / shadow of ground with east / north
    gradients ``gx``, ``gy`` (metres per metre) seen at ellipsoid incidence ``theta``
    (degrees) by a sensor looking east (ascending) or west (descending)."""
    look = 1.0 if passing == "ASCENDING" else -1.0
    tan_r = look * gx.astype(np.float64)  # rise along the look direction: > 0 facing the sensor
    tan_az = gy.astype(np.float64)
    th = np.radians(theta.astype(np.float64))
    cos_local = (np.cos(th) + np.sin(th) * tan_r) / np.sqrt(1.0 + tan_r**2 + tan_az**2)
    local = np.degrees(np.arccos(np.clip(cos_local, -1.0, 1.0)))
    alpha_r, alpha_az = np.arctan(tan_r), np.arctan(tan_az)
    rel = th - alpha_r  # the range-plane local incidence
    layover, shadow = rel <= 0.0, rel >= np.pi / 2
    floor = 1.0 / AREA_CAP
    direct = np.sin(th) / (np.cos(alpha_az) * np.maximum(np.sin(rel), np.sin(th) * floor))
    volume = np.tan(th) / np.maximum(np.tan(np.clip(rel, 0.0, np.pi / 2 - 1e-6)), np.tan(th) * floor)
    direct = np.where(layover, AREA_CAP, np.where(shadow, 0.0, direct))
    volume = np.where(layover, AREA_CAP, np.where(shadow, 0.0, volume))
    return TerrainGeometry(local, direct, volume, layover, shadow)


def _acq(i: int) -> schedule.S1Acquisition:
    return schedule.s1_acquisitions()[i]


def s1_block(cfg: WorldConfig, i: int, bx: int, by: int) -> blocks.Product:
    """VV and VH (linear), incidence angle and validity of acquisition ``i`` on one block
    (from the shared block cache)."""
    return blocks.product_block("s1", cfg, i, bx, by, lambda: _s1_block(cfg, i, bx, by))


def _s1_block(cfg: WorldConfig, i: int, bx: int, by: int) -> dict[str, np.ndarray]:
    acq = _acq(i)
    millis = float(acq.millis)
    c0, r0 = bx * BLOCK, by * BLOCK
    lc, site = changes.apply_changes(cfg, blocks.landcover_block_halo(cfg, bx, by), c0 - 1, r0 - 1, millis)
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
    if site.any():  # construction sites: machinery, spoil heaps, formwork: bright, rough targets
        vv[site] += SITE_BOOST_DB[0]
        vh[site] += SITE_BOOST_DB[1]
        tex[site] = SITE_TEXTURE
    geo = terrain_geometry(acq.passing, theta, *relief.gradient_block(cfg, bx, by))
    local = geo.local_incidence
    veg = np.isin(lc.label, VEGETATED)
    vv += np.where(veg, 1.5 * fv + 3.0 * wet * (1 - fv), 0.0)
    vh += np.where(veg, 6.0 * fv + 1.5 * wet * (1 - fv), 0.0)
    woody = np.isin(lc.label, (FOREST, GROVE))
    vh += np.where(woody, 0.8 * (fv - 0.6), 0.0)
    built = np.isin(lc.label, (DENSE, SPARSE, INDUSTRIAL))
    water = lc.label == WATER
    kind = np.where(built, 2, np.where(woody, 1, np.where(water, 3, 0)))
    table = [ANGLE_SLOPE_DB[k] for k in ("surface", "woody", "urban", "water")]
    slopes = np.asarray(table, dtype=np.float32)[kind]
    vv += slopes[..., 0] * (local - 38.0)
    vh += slopes[..., 1] * (local - 38.0)
    if water.any():
        wind = float(
            noise.uniform(np.int64(int(millis // 3_600_000)), np.int64(3), noise.salt_of(cfg.seed, "wind"))
        )
        gust = noise.fbm(ix * 10.0, iy * 10.0, 1500.0, salt ^ 0x5A, octaves=2)
        rough = np.clip(wind - 0.6, 0, 1) * 2.5 * gust
        vv += np.where(water, 10.0 * rough, 0.0)
        vh += np.where(water, 5.0 * rough, 0.0)
    p = lc.parcel.astype(np.int64)
    field_offset = PARCEL_DB * noise.normal(p, 11, noise.salt_of(cfg.seed, "s1-parcel"))
    wall_offset = BUILT_PARCEL_DB * (2.0 * noise.uniform(p, 13, noise.salt_of(cfg.seed, "s1-walls")) - 1.0)
    if DATE_PARCEL_DB:
        day = np.int64(int(millis // 86_400_000))
        field_offset = field_offset + np.where(
            veg, DATE_PARCEL_DB * noise.normal(p, day, noise.salt_of(cfg.seed, "s1-tillage")), 0.0
        )
    offset = np.where(built, wall_offset, field_offset)
    static = tex * noise.normal(ix, iy, noise.salt_of(cfg.seed, "s1-texture"))
    area = np.where(woody, geo.area_volume, geo.area_direct)
    vv_lin = np.where(geo.shadow, NOISE_FLOOR[0], area * 10.0 ** ((vv + offset + static) / 10.0))
    vh_lin = np.where(geo.shadow, NOISE_FLOOR[1], area * 10.0 ** ((vh + offset + 0.8 * static) / 10.0))

    def mix(a: np.ndarray) -> np.ndarray:
        return 0.6 * a[1:-1, 1:-1] + 0.1 * (a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:])

    pix = (ix[:, 1:-1], iy[1:-1])
    vv_lin = mix(vv_lin) * noise.gamma_unit_mean(*pix, salt ^ 0x1, ENL)
    vh_lin = mix(vh_lin) * noise.gamma_unit_mean(*pix, salt ^ 0x2, ENL)
    # point targets: through the same PSF, after the speckle, with their own steadier fluctuation
    pt_vv, pt_vh = point_targets(cfg, acq.passing, lc.label, ix, iy)
    if pt_vv.any():
        lit = ~geo.shadow
        vv_lin += _steady(mix(pt_vv * lit), c0, r0, salt ^ 0x4)
        vh_lin += _steady(mix(pt_vh * lit), c0, r0, salt ^ 0x5)
    angle = theta[1:-1, 1:-1].astype(np.float32)
    edge_near = (angle - NEAR) / GRADIENT  # km from the near-range edge
    edge_far = (FAR - angle) / GRADIENT
    border = np.minimum(edge_near, edge_far) < BORDER_KM
    collapse = 10.0 ** (-1.2 - noise.uniform(*pix, salt ^ 0x3))
    vv_lin = np.where(border, vv_lin * collapse, vv_lin)
    vh_lin = np.where(border, vh_lin * collapse, vh_lin)
    valid = (angle > NEAR) & (angle < FAR)
    return {"VV": vv_lin.astype(np.float32), "VH": vh_lin.astype(np.float32), "angle": angle, "valid": valid}


def _steady(power: np.ndarray, c0: int, r0: int, salt: int) -> np.ndarray:
    """``power`` (a block) times gamma variates of ENL :data:`POINT_ENL`, drawn only where it is > 0."""
    rows, cols = np.nonzero(power)
    out = np.zeros_like(power)
    out[rows, cols] = power[rows, cols] * noise.gamma_unit_mean(c0 + cols, r0 + rows, salt, POINT_ENL)
    return out


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
        angle = swath_angle(self.cfg, _acq(self.i).passing, col, row, w, h)
        valid = (angle > NEAR) & (angle < FAR)
        if band == "angle":  # geometry only: no need to generate the backscatter blocks
            return angle, valid
        values = _window(self.cfg, self.i, band, col, row, w, h)
        if not self.linear:
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
