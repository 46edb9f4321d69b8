"""Sun geometry, clouds, cirrus and cloud shadows of each Sentinel-2 acquisition.

Clouds are a fractal field thresholded to the date's cloud cover (drawn from a U-shaped Beta
distribution around a Normandy-like monthly mean): thick cores, thin edges. Shadows are the
same field seen from the ground along the sun direction: displaced by ``h * tan(zenith)``
away from the sun (azimuth ``phi`` clockwise from north). Fields are evaluated on a 40 m
world-aligned lattice and interpolated, so they are tile-consistent and cheap. Each date also
has a residual haze (an aerosol optical depth that the cloud masks miss): a smooth field at
~6 km scale whose strength is small on most dates (:func:`haze_field`).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
from scipy.special import ndtri

from gee_fusion.local.world import noise
from gee_fusion.local.world.config import WorldConfig
from gee_fusion.local.world.landcover import coords

MONTHLY_CLOUD = (0.80, 0.76, 0.70, 0.60, 0.57, 0.54, 0.52, 0.54, 0.58, 0.70, 0.80, 0.83)
"""Mean cloud cover per calendar month (Normandy-like: winters mostly overcast)."""

FIELD_STD = 0.1365
"""Standard deviation of the 5-octave fBm used for clouds (measured), for thresholding."""

COARSE = 40.0
"""Spacing (m) of the lattice the atmospheric fields are computed on."""

HAZE_MAX = 0.1
"""Largest residual-haze strength of a date (aerosol optical depth at 550 nm missed by the L2A
correction); drawn as ``HAZE_MAX * u**3``: median 0.0125, 90 % of dates below 0.073."""
HAZE_CELL = 6000.0
"""Lattice spacing (m) of the haze field's fBm (features of ~5-10 km)."""


def sun_position(millis: float, lon: float, lat: float) -> tuple[float, float]:
    """(azimuth, zenith) in degrees of the sun (NOAA approximations, within ~0.5 degree)."""
    when = datetime.fromtimestamp(millis / 1000.0, tz=UTC)
    doy = when.timetuple().tm_yday
    hour = when.hour + when.minute / 60 + when.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    tst = hour * 60 + eqtime + 4 * lon
    ha = math.radians(tst / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_zen)))
    az = math.degrees(math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi)))
    return (az + 180.0) % 360.0, math.degrees(zen)


@dataclass(frozen=True)
class Sky:
    """The atmosphere of one acquisition."""

    cover: float  # target cloud fraction
    threshold: float  # field value above which there is cloud
    height_m: float  # cloud-base height
    cirrus: float  # cirrus strength (0: none)
    haze: float  # residual-haze strength (AOT-like, 0..HAZE_MAX)
    azimuth: float
    zenith: float
    salt: int

    @property
    def shadow_shift(self) -> tuple[float, float]:
        """(du, dv): where to look up the cloud field to find what shades a ground point."""
        d = self.height_m * math.tan(math.radians(self.zenith))
        az = math.radians(self.azimuth)
        return d * math.sin(az), d * math.cos(az)


@functools.lru_cache(maxsize=4096)
def sky(cfg: WorldConfig, millis: float) -> Sky:
    """The sky of the acquisition at ``millis`` (deterministic by seed and date)."""
    when = datetime.fromtimestamp(millis / 1000.0, tz=UTC)
    salt = noise.salt_of(cfg.seed, "sky", int(millis // 1000))
    u = [float(noise.uniform(np.int64(k), np.int64(0), salt)) for k in range(5)]
    mean = MONTHLY_CLOUD[when.month - 1]
    cover = float(np.clip(_beta_u_quantile(u[0], mean), 0.0, 1.0))
    threshold = 0.5 + FIELD_STD * float(ndtri(min(max(1.0 - cover, 1e-4), 1 - 1e-4)))
    az, zen = sun_position(millis, cfg.lon, cfg.lat)
    cirrus = 0.0 if u[2] > 0.25 else 0.3 + 0.7 * u[3]
    haze = HAZE_MAX * u[4] ** 3
    return Sky(cover, threshold, 600.0 + 2400.0 * u[1], cirrus, haze, az, zen, salt)


def _beta_u_quantile(q: float, mean: float, concentration: float = 0.9) -> float:
    """Quantile of a U-shaped Beta(k*m, k*(1-m)): most dates clear or overcast."""
    from scipy.special import betaincinv

    return float(betaincinv(concentration * mean, concentration * (1 - mean), q))


class Lattice(NamedTuple):
    """The 40 m lattice around a window of the 10 m lattice, and how its pixels interpolate it.

    Attributes:
        lu: (1, nu) eastings of the lattice's columns.
        lv: (nv, 1) northings of its rows.
        cx: (w,) lattice column left of each pixel column.
        cy: (h,) lattice row above each pixel row.
        tx: (1, w) float32 weight of the column right of it.
        ty: (h, 1) float32 weight of the row below it.
        iu: Lattice index of the first column (eastings: ``iu x`` :data:`COARSE`).
        iv: Lattice index of the first row.
    """

    lu: np.ndarray
    lv: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    iu: int
    iv: int


@functools.lru_cache(maxsize=256)
def lattice(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> Lattice:
    """The :class:`Lattice` of a window (cached: every field of a block, at every date, uses it)."""
    u, v = coords(cfg, col0, row0, width, height)
    gu, gv = u / COARSE, v / COARSE
    iu0, iv0 = np.floor(gu).astype(np.int64), np.floor(gv).astype(np.int64)
    lu = np.arange(int(iu0.min()), int(iu0.max()) + 2)[None, :] * COARSE
    lv = np.arange(int(iv0.min()), int(iv0.max()) + 2)[:, None] * COARSE
    tx = (gu - iu0).astype(np.float32)
    ty = (gv - iv0).astype(np.float32)
    cx = (iu0 - int(iu0.min()))[0]
    cy = (iv0 - int(iv0.min()))[:, 0]
    for a in (lu, lv, tx, ty, cx, cy):
        a.flags.writeable = False  # shared by every caller
    return Lattice(lu, lv, cx, cy, tx, ty, int(iu0.min()), int(iv0.min()))


def _interpolate(nodes: np.ndarray, g: Lattice) -> np.ndarray:
    """Lattice values ``nodes`` ((nv, nu)) bilinearly interpolated to the window's pixels."""
    rows = nodes[:, g.cx] + (nodes[:, g.cx + 1] - nodes[:, g.cx]) * g.tx
    return rows[g.cy] + (rows[g.cy + 1] - rows[g.cy]) * g.ty


TILE = 1024
"""Side (10 m pixels) of the tiles whose lattice values are computed once per date: a window inside
one tile (a block) interpolates its part of them, so the 16 blocks of a tile evaluate the noise of
each date once, not 16 times."""

_tiles_lock = threading.Lock()


def _node_field(s: Sky, kind: str, g: Lattice) -> np.ndarray:
    """A field of the date on the lattice ``g`` ((nv, nu) float32; "cloud": (2, nv, nu), the cloud
    and the cloud seen from the ground along the sun, which shades it)."""
    if kind == "haze":
        return np.asarray(
            2.0 * s.haze * noise.fbm(g.lu, g.lv, HAZE_CELL, s.salt ^ 0x4A2E, octaves=3), np.float32
        )
    if kind == "cirrus":
        f = noise.fbm(g.lu * 0.35, g.lv, 3000.0, s.salt ^ 0xC1C1, octaves=4)
        return np.asarray(np.clip((f - 0.56) / 0.15, 0.0, 1.0) * s.cirrus * 0.35, np.float32)
    # the lattice and the lattice shifted towards the sun in one evaluation (the noise of a node
    # depends on its coordinates alone, not on its neighbours)
    du, dv = s.shadow_shift
    nv, nu = g.lv.shape[0], g.lu.shape[1]
    f = noise.fbm(np.hstack([g.lu, g.lu + du]), np.vstack([g.lv, g.lv + dv]), 4000.0, s.salt, octaves=5)
    both = np.asarray(np.clip((f - s.threshold) / 0.07, 0.0, 1.0) ** 0.8, np.float32)
    return np.stack([both[:nv, :nu], both[nv:, nu:]])


@functools.lru_cache(maxsize=48)
def _tile_field(cfg: WorldConfig, s: Sky, kind: str, tx: int, ty: int) -> tuple[Lattice, np.ndarray]:
    """The lattice of tile (tx, ty) and a field of the date on it (cached)."""
    g = lattice(cfg, tx * TILE, ty * TILE, TILE, TILE)
    return g, _node_field(s, kind, g)


def _nodes(cfg: WorldConfig, s: Sky, kind: str, g: Lattice, window: tuple[int, int, int, int]) -> np.ndarray:
    """A field of the date on the lattice ``g`` of a window: cut from its tile's when the window lies
    in one tile (the same values), else evaluated."""
    col0, row0, width, height = window
    tx, ty = col0 // TILE, row0 // TILE
    if (col0 + width - 1) // TILE != tx or (row0 + height - 1) // TILE != ty:
        return _node_field(s, kind, g)
    with _tiles_lock:  # once per tile and date: threads asking at the same time wait for the first
        tile, values = _tile_field(cfg, s, kind, tx, ty)
    r, c = g.iv - tile.iv, g.iu - tile.iu
    return values[..., r : r + g.lv.shape[0], c : c + g.lu.shape[1]]


@dataclass(frozen=True)
class CloudFields:
    """Per-pixel atmospheric truth of a window (all float32, 0..1)."""

    opacity: np.ndarray  # cloud optical opacity (1: opaque core)
    shadow: np.ndarray  # fraction of direct sunlight removed by cloud shadow
    cirrus: np.ndarray  # cirrus opacity


def cloud_fields(cfg: WorldConfig, s: Sky, col0: int, row0: int, width: int, height: int) -> CloudFields:
    """Cloud, shadow and cirrus fields of a window of the 10 m lattice."""
    shape = (height, width)
    if s.cover < 1e-3 and s.cirrus == 0.0:
        zero = np.zeros(shape, dtype=np.float32)
        return CloudFields(zero, zero, zero)
    window = (col0, row0, width, height)
    g = lattice(cfg, *window)
    cloud, shaded = _nodes(cfg, s, "cloud", g, window)
    opacity = _interpolate(cloud, g)
    shadow = np.clip(_interpolate(shaded, g) * (1.0 - opacity), 0.0, 1.0)
    if s.cirrus > 0:
        cirrus = _interpolate(_nodes(cfg, s, "cirrus", g, window), g)
    else:
        cirrus = np.zeros(shape, dtype=np.float32)
    f32 = np.float32
    return CloudFields(
        opacity.astype(f32, copy=False), shadow.astype(f32, copy=False), cirrus.astype(f32, copy=False)
    )


def haze_field(cfg: WorldConfig, s: Sky, col0: int, row0: int, width: int, height: int) -> np.ndarray:
    """Residual-haze optical depth (float32, 550 nm) of a window of the 10 m lattice.

    ``s.haze`` x 2 x a 3-octave fBm at :data:`HAZE_CELL` (mean ``s.haze``, about +-30 % across
    the world), on the 40 m lattice like the clouds. Not part of the cloud truth: the masks
    ignore it.
    """
    window = (col0, row0, width, height)
    g = lattice(cfg, *window)
    return _interpolate(_nodes(cfg, s, "haze", g, window), g).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4096)
def cloudy_percentage(cfg: WorldConfig, millis: float) -> float:
    """CLOUDY_PIXEL_PERCENTAGE over the world (opacity > 0.35, on a 400 m sample)."""
    s = sky(cfg, millis)
    step = 40
    n = cfg.size_px // step
    u, v = coords(cfg, 0, 0, cfg.size_px, cfg.size_px)
    us, vs = u[:, ::step][:, :n], v[::step][:n]
    f = noise.fbm(us, vs, 4000.0, s.salt, octaves=5)
    opacity = np.clip((f - s.threshold) / 0.07, 0.0, 1.0) ** 0.8
    return round(float((opacity > 0.35).mean() * 100.0), 4)
