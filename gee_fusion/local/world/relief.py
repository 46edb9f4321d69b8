"""Relief of the demo world and its SRTM-like DEM (``USGS/SRTMGL1_003``, band ``elevation``).

A Rouen-like incised valley: the river flows on a valley floor at 5-9 m; a chalk plateau at
about 120-150 m lies beyond valley sides that follow the meanders, steep on the outer bank of
each bend (with chalk cliffs in places) and gentle on the inner, slip-off side. The relief is a
pure, smooth function of world coordinates (metres from the centre) and the seed, so the DEM and
the Sentinel-1 terrain response agree wherever they are computed.

The DEM is served like the real asset: EPSG:4326, 1 arc-second pixels (edges at half
arc-seconds, as SRTMGL1_003), int16 metres, covering the world plus a 1 km margin.
"""

from __future__ import annotations

import functools

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import ImageSource, WindowT
from gee_fusion.local.world import noise
from gee_fusion.local.world.blocks import BLOCK
from gee_fusion.local.world.config import PIXEL, WorldConfig
from gee_fusion.local.world.landcover import coords, layout, river_centre

ARCSEC = 1.0 / 3600.0
DEM_MARGIN_DEG = 0.01
"""Margin of the DEM around the world footprint (degrees; about 1 km), so slopes are defined
at the world's edges."""

FLOOR_M = (5.0, 9.0)
PLATEAU_M = (112.0, 158.0)
CLIFF_WIDTH_M = 90.0


def _bend(cfg: WorldConfig, u: np.ndarray) -> np.ndarray:
    """Which bank is outer in the main meanders: +1 where the north bank is the outer (cut)
    bank of a bend, -1 where it is the inner one (the main harmonic's curvature, normalised)."""
    lay = layout(cfg)
    k1 = 2 * np.pi / lay.river_wave[0]
    return np.sin(k1 * u + lay.river_phase[0])


def elevation(cfg: WorldConfig, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Terrain height (metres, float64) at world-centred coordinates ``u`` east, ``v`` north.

    ``u`` and ``v`` broadcast (a row and a column vector give a north-up grid).
    """
    s = cfg.seed
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    vr, slope = river_centre(layout(cfg), u)
    across = (v - vr) / np.sqrt(1.0 + slope * slope)  # signed distance to the river, + north
    dist = np.abs(across)
    # +1 on the outer (cut) bank of a bend, -1 on the inner (slip-off) side
    outer = np.clip(1.3 * _bend(cfg, u), -1.0, 1.0) * np.where(across >= 0.0, 1.0, -1.0)
    foot = 1000.0 - 450.0 * outer  # distance from the river centre to the foot of the valley side
    width = 700.0 - 400.0 * outer  # horizontal extent of the valley side
    cliffs = noise.fbm(u, v, 1500.0, noise.salt_of(s, "relief-cliff"), octaves=2)
    cliff = np.clip((cliffs - 0.5) / 0.08, 0.0, 1.0) * np.clip((outer - 0.25) / 0.35, 0.0, 1.0)
    width = width * (1.0 - cliff) + CLIFF_WIDTH_M * cliff
    t = np.clip((dist - foot) / width, 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)
    lo, hi = FLOOR_M
    floor = lo + (hi - lo) * np.clip(
        noise.fbm(u, v, 2500.0, noise.salt_of(s, "relief-floor"), octaves=2) * 1.6 - 0.3, 0.0, 1.0
    )
    p_lo, p_hi = PLATEAU_M
    plateau = p_lo + (p_hi - p_lo) * noise.fbm(u, v, 3500.0, noise.salt_of(s, "relief-plateau"), octaves=3)
    rough = 6.0 * (noise.fbm(u, v, 400.0, noise.salt_of(s, "relief-rough"), octaves=2) - 0.5)
    return floor + (plateau - floor) * ramp + rough * ramp


@functools.lru_cache(maxsize=96)
def gradient_block(cfg: WorldConfig, bx: int, by: int) -> tuple[np.ndarray, np.ndarray]:
    """(dz/du east, dz/dv north) of block (bx, by) with a one-pixel halo, float32 (metres per
    metre), by central differences of :func:`elevation` on the 10 m lattice."""
    u, v = coords(cfg, bx * BLOCK - 2, by * BLOCK - 2, BLOCK + 4, BLOCK + 4)
    z = elevation(cfg, u, v)
    gx = (z[1:-1, 2:] - z[1:-1, :-2]) / (2.0 * PIXEL)
    gy = (z[:-2, 1:-1] - z[2:, 1:-1]) / (2.0 * PIXEL)  # rows run south
    return gx.astype(np.float32), gy.astype(np.float32)


def dem_transform(cfg: WorldConfig) -> tuple[Affine, tuple[int, int]]:
    """The DEM's native grid (EPSG:4326, 1 arc-second, SRTM phase) and (height, width)."""
    lons = [p[0] for p in cfg.footprint]
    lats = [p[1] for p in cfg.footprint]
    west, east = min(lons) - DEM_MARGIN_DEG, max(lons) + DEM_MARGIN_DEG
    south, north = min(lats) - DEM_MARGIN_DEG, max(lats) + DEM_MARGIN_DEG
    c0 = int(np.floor(west / ARCSEC + 0.5))
    c1 = int(np.ceil(east / ARCSEC + 0.5))
    r0 = int(np.floor(-north / ARCSEC + 0.5))
    r1 = int(np.ceil(-south / ARCSEC + 0.5))
    origin = Affine(ARCSEC, 0.0, (c0 - 0.5) * ARCSEC, 0.0, -ARCSEC, -(r0 - 0.5) * ARCSEC)
    return origin, (r1 - r0, c1 - c0)


def dem_window(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> np.ndarray:
    """int16 elevations (metres) of a window of the DEM grid (pixel centres)."""
    transform, _ = dem_transform(cfg)
    cols = np.arange(col0, col0 + width) + 0.5
    rows = np.arange(row0, row0 + height) + 0.5
    lon = np.broadcast_to(transform.c + cols[None, :] * transform.a, (height, width))
    lat = np.broadcast_to(transform.f + rows[:, None] * transform.e, (height, width))
    xs, ys = warp_transform(CRS.from_epsg(4326), CRS.from_user_input(cfg.crs), lon.ravel(), lat.ravel())
    cx, cy = cfg.centre
    u = np.asarray(xs).reshape(height, width) - cx
    v = np.asarray(ys).reshape(height, width) - cy
    return np.rint(elevation(cfg, u, v)).astype(np.int16)


class DemSource(ImageSource):
    """``USGS/SRTMGL1_003`` of the demo world: band ``elevation`` (int16 metres)."""

    def __init__(self, cfg: WorldConfig) -> None:
        transform, shape = dem_transform(cfg)
        super().__init__(
            "EPSG:4326",
            transform,
            shape,
            {"elevation": np.dtype(np.int16)},
            {"system:time_start": 950227200000, "system:time_end": 951177600000},
        )
        self.cfg = cfg

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        values = dem_window(self.cfg, col, row, w, h)
        return values, np.ones(values.shape, dtype=bool)
