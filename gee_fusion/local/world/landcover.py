"""Procedural land-cover truth of the demo world, computed for any window of its 10 m lattice.

Every layer is a pure function of world coordinates and the seed: a meandering river with
islands, bridges and quays; a dense centre and satellite towns fading into sparse residential
areas; industrial and commercial zones; a motorway, radial main roads, a street grid and a
railway; parks; forests, hedges and groves; arable parcels (crop rotation by year), grassland,
orchards and a few vineyards; wetlands, lakes and quarries. Codes are MultiSenGE's (1-14).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from gee_fusion.local.world import noise
from gee_fusion.local.world.config import PIXEL, WorldConfig

DENSE, SPARSE, INDUSTRIAL, URBAN_GREEN, NETWORK = 1, 2, 3, 4, 5
ARABLE, VINEYARD, ORCHARD, GRASS, GROVE, FOREST, OPEN, WETLAND, WATER = 6, 7, 8, 9, 10, 11, 12, 13, 14

CROPS = ("wheat", "barley", "rapeseed", "maize", "sugar_beet", "flax")
"""Arable crop types; each parcel follows a rotation through them, one step per year."""


@dataclass(frozen=True)
class Layout:
    """Seed-derived geometry of the world (independent of any window)."""

    river_amp: tuple[float, float]
    river_wave: tuple[float, float]
    river_phase: tuple[float, float]
    river_offset: float
    islands: tuple[tuple[float, float], ...]  # (u centre, half length)
    centre: tuple[float, float]  # (u, v) of the historic centre
    towns: tuple[tuple[float, float, float], ...]  # (u, v, radius)
    road_angles: tuple[float, ...]
    motorway: tuple[float, float, float]  # ellipse (u centre, v centre, radius)
    rail_angle: float
    street_angle: float


@functools.lru_cache(maxsize=16)
def layout(cfg: WorldConfig) -> Layout:
    """The world's large-scale geometry for ``cfg`` (deterministic by seed)."""
    rng = np.random.default_rng(noise.salt_of(cfg.seed, "layout") % 2**63)
    half = cfg.size_px * PIXEL / 2.0
    amp = (float(rng.uniform(0.10, 0.16)) * 2 * half, float(rng.uniform(0.02, 0.035)) * 2 * half)
    wave = (float(rng.uniform(0.7, 0.9)) * 2 * half, float(rng.uniform(0.22, 0.3)) * 2 * half)
    phase = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi)))
    islands = tuple((float(u), float(rng.uniform(250, 600))) for u in rng.uniform(-0.7, 0.7, 3) * half)
    centre = (float(rng.uniform(-0.1, 0.1) * half), 0.0)
    towns = tuple(
        (float(r * np.cos(a)), float(r * np.sin(a)), float(rng.uniform(500, 800)))
        for r, a in zip(rng.uniform(0.55, 0.8, 3) * half, rng.uniform(0, 2 * np.pi, 3), strict=True)
    )
    angles = tuple(float(a) for a in np.sort(rng.uniform(0, 2 * np.pi, 7)))
    motorway = (
        float(rng.uniform(-0.1, 0.1) * half),
        float(rng.uniform(-0.1, 0.1) * half),
        float(rng.uniform(0.42, 0.5) * half),
    )
    return Layout(
        amp,
        wave,
        phase,
        float(rng.uniform(-0.05, 0.05) * half),
        islands,
        centre,
        towns,
        angles,
        motorway,
        float(rng.uniform(0, np.pi)),
        float(rng.uniform(0, np.pi / 2)),
    )


@dataclass(frozen=True)
class LandCover:
    """Land-cover layers of one window (all (h, w))."""

    label: np.ndarray  # uint8 MultiSenGE code
    parcel: np.ndarray  # uint32 parcel / patch identifier (per-object variability)
    impervious: np.ndarray  # float32 sealed-surface fraction (streets in urban fabric)
    tree: np.ndarray  # float32 tree fraction (gardens, alignments, hedges)


def coords(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """World-centred coordinates (u east, v north) of pixel centres: a row and a column vector."""
    x0, y1 = cfg.origin
    cx, cy = cfg.centre
    u = (x0 + (np.arange(col0, col0 + width) + 0.5) * PIXEL - cx)[None, :]
    v = (y1 - (np.arange(row0, row0 + height) + 0.5) * PIXEL - cy)[:, None]
    return u, v


def river_centre(lay: Layout, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre-line northing of the river and its slope, at eastings ``u``."""
    (a1, a2), (l1, l2), (p1, p2) = lay.river_amp, lay.river_wave, lay.river_phase
    k1, k2 = 2 * np.pi / l1, 2 * np.pi / l2
    vr = lay.river_offset + a1 * np.sin(k1 * u + p1) + a2 * np.sin(k2 * u + p2)
    slope = a1 * k1 * np.cos(k1 * u + p1) + a2 * k2 * np.cos(k2 * u + p2)
    return vr, slope


def _line_distance(
    u: np.ndarray, v: np.ndarray, angle: float, u0: float = 0.0, v0: float = 0.0
) -> np.ndarray:
    """Distance to the infinite line through (u0, v0) with direction ``angle``."""
    return np.abs(-(u - u0) * np.sin(angle) + (v - v0) * np.cos(angle))


def _ray_distance(u: np.ndarray, v: np.ndarray, angle: float, u0: float, v0: float) -> np.ndarray:
    """Distance to the half-line from (u0, v0) in direction ``angle``."""
    du, dv = u - u0, v - v0
    along = du * np.cos(angle) + dv * np.sin(angle)
    across = np.abs(-du * np.sin(angle) + dv * np.cos(angle))
    return np.where(along > 0, across, np.hypot(du, dv))


def _near_ray(u: np.ndarray, v: np.ndarray, angle: float, u0: float, v0: float, limit: float) -> np.ndarray:
    """Pixels nearer than ``limit`` to the half-line from (u0, v0) in direction ``angle``; none, at no
    cost, when the window's centre is farther than ``limit`` plus its half-diagonal (a distance to a
    convex set changes by at most the step taken, so no pixel can then be near)."""
    uc, vc = 0.5 * (float(u.min()) + float(u.max())), 0.5 * (float(v.min()) + float(v.max()))
    half = 0.5 * float(np.hypot(float(u.max()) - float(u.min()), float(v.max()) - float(v.min())))
    centre = float(_ray_distance(np.array(uc), np.array(vc), angle, u0, v0))
    if centre > limit + half + 1.0:
        return np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=bool)
    return _ray_distance(u, v, angle, u0, v0) < limit


def _parcels(u: np.ndarray, v: np.ndarray, salt: int, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Jittered-lattice Voronoi parcels: (id hash, distance to the nearest boundary).

    ``u`` is a row vector and ``v`` a column vector: sites are hashed once per lattice node
    and gathered, so the cost is a few array gathers per neighbour cell.
    """
    cu, cv = np.floor(u / cell).astype(np.int64), np.floor(v / cell).astype(np.int64)
    lu0, lv0 = int(cu.min()) - 1, int(cv.min()) - 1
    iu = np.arange(lu0, int(cu.max()) + 2)[None, :]
    iv = np.arange(lv0, int(cv.max()) + 2)[:, None]
    site_u = ((iu + 0.15 + 0.7 * noise.uniform(iu, iv, salt)) * cell).astype(np.float64)
    site_v = ((iv + 0.15 + 0.7 * noise.uniform(iu, iv, salt ^ 0xABCD)) * cell).astype(np.float64)
    ids = noise.hash2(iu, iv, salt)
    best = np.full(np.broadcast_shapes(u.shape, v.shape), np.inf, dtype=np.float32)
    second = best.copy()
    ident = np.zeros(best.shape, dtype=np.uint64)
    for du in (-1, 0, 1):
        for dv in (-1, 0, 1):
            # the neighbour cell of a pixel is that of its row and that of its column: two takes
            gi, gj = (cv + dv - lv0)[:, 0], (cu + du - lu0)[0]
            su, sv = site_u.take(gi, axis=0).take(gj, axis=1), site_v.take(gi, axis=0).take(gj, axis=1)
            d = np.hypot(u - su, v - sv).astype(np.float32)
            closer = d < best
            np.minimum(second, d, out=second)
            np.copyto(second, best, where=closer)  # the former best becomes the second
            np.copyto(ident, ids.take(gi, axis=0).take(gj, axis=1), where=closer)
            np.minimum(best, d, out=best)
    return ident, (second - best) / 2.0


def generate(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> LandCover:
    """Land cover of the window (col0, row0, width, height) of the 10 m world lattice."""
    lay = layout(cfg)
    s = cfg.seed
    u, v = coords(cfg, col0, row0, width, height)
    shape = (height, width)
    half = cfg.size_px * PIXEL / 2.0

    # -- rural base: parcels, crops, grassland, orchards, vineyards, hedges -------------------
    parcel, edge = _parcels(u, v, noise.salt_of(s, "parcels"), 320.0)
    kind = (parcel >> np.uint64(40)).astype(np.float64) / float(2**24)
    label = np.full(shape, ARABLE, dtype=np.uint8)
    label[kind < 0.22] = GRASS
    label[(kind >= 0.22) & (kind < 0.27)] = ORCHARD
    label[(kind >= 0.27) & (kind < 0.285)] = VINEYARD
    hedge_parcel = ((parcel >> np.uint64(20)) & np.uint64(3)) == 0
    tree = np.zeros(shape, dtype=np.float32)
    hedges = (edge < 6.0) & hedge_parcel
    label[hedges] = GROVE
    tree[hedges] = 0.8

    # -- forests and groves (large low-frequency patches away from the centre) -----------------
    r_c = np.hypot(u - lay.centre[0], v - lay.centre[1])
    woods = noise.fbm(u, v, 2400.0, noise.salt_of(s, "forest"), octaves=4)
    forest = woods > 0.62 - 0.08 * np.clip((r_c - 0.5 * half) / half, 0, 1)
    label[forest] = FOREST
    groves = (noise.fbm(u, v, 300.0, noise.salt_of(s, "groves"), octaves=3) > 0.74) & ~forest
    label[groves] = GROVE

    # -- river geometry, floodplain wetlands and gravel-pit lakes ------------------------------
    vr, slope = river_centre(lay, u)
    dist = np.abs(v - vr) / np.sqrt(1.0 + slope * slope)
    width_r = 170.0 + 40.0 * np.sin(u / 1300.0 + lay.river_phase[1])
    island_mask = np.zeros(shape, dtype=bool)
    for ui, li in lay.islands:
        wide = np.exp(-(((u - ui) / (1.3 * li)) ** 2))
        width_r = width_r * (1.0 + 0.9 * wide)
        island_mask |= (((u - ui) / li) ** 2 + ((v - vr) / (0.28 * width_r)) ** 2) < 1.0
    wet = (dist < width_r / 2 + 350.0) & (noise.fbm(u, v, 500.0, noise.salt_of(s, "wet"), octaves=3) > 0.63)
    label[wet] = WETLAND
    lakes = (dist > width_r / 2 + 80.0) & (dist < width_r / 2 + 900.0)
    lakes &= noise.fbm(u, v, 350.0, noise.salt_of(s, "lakes"), octaves=3) > 0.75
    label[lakes] = WATER

    # -- urban intensity: centre + satellite towns, ragged by noise -----------------------------
    urb = np.exp(-((r_c / (0.5 * half)) ** 2))
    for tu, tv, tr in lay.towns:
        urb = np.maximum(urb, np.exp(-((np.hypot(u - tu, v - tv) / tr) ** 2)))
    urb = urb + 0.25 * (noise.fbm(u, v, 700.0, noise.salt_of(s, "urban"), octaves=4) - 0.5)
    sparse = urb > 0.38
    dense = urb > 0.72
    label[sparse] = SPARSE
    label[dense] = DENSE
    tree[sparse] = 0.0
    impervious = np.where(dense, 0.85, np.where(sparse, 0.45, 0.0)).astype(np.float32)
    garden_trees = noise.fbm(u, v, 60.0, noise.salt_of(s, "gardens"), octaves=2)
    tree = np.where(sparse & ~dense, np.clip(garden_trees - 0.35, 0, 0.5), tree).astype(np.float32)

    # -- industrial / commercial zones: urban fringe, riverside port, near the motorway ---------
    ind_noise = noise.fbm(u, v, 900.0, noise.salt_of(s, "industry"), octaves=3)
    mu, mv, mr = lay.motorway
    ring = np.abs(np.hypot(u - mu, v - mv) - mr)
    industrial = (urb > 0.3) & (ind_noise > 0.6)
    industrial |= (dist < width_r / 2 + 500.0) & (dist > width_r / 2 + 30) & (u > 0.35 * half) & (urb > 0.25)
    industrial |= (ring < 400.0) & (ind_noise > 0.55) & (urb > 0.2)
    label[industrial] = INDUSTRIAL
    impervious[industrial] = 0.9
    tree[industrial] = 0.02

    # -- parks, sports grounds, cemeteries inside the urban area --------------------------------
    parks = (urb > 0.45) & (noise.fbm(u, v, 250.0, noise.salt_of(s, "parks"), octaves=3) > 0.68)
    label[parks] = URBAN_GREEN
    impervious[parks] = 0.05
    tree[parks] = 0.4

    # -- quarries and construction sites (open mineral surfaces) --------------------------------
    quarry = (noise.fbm(u, v, 900.0, noise.salt_of(s, "quarry"), octaves=3) > 0.78) & (urb < 0.5)
    quarry &= (dist > width_r / 2 + 150.0) & (dist < width_r / 2 + 2500.0)  # chalk pits of the valley
    label[quarry] = OPEN

    # -- street grid in urban fabric (sealed fraction, label unchanged) ------------------------
    ca, sa = np.cos(lay.street_angle), np.sin(lay.street_angle)
    su, sv = u * ca + v * sa, -u * sa + v * ca
    street = (np.abs(((su + 1000.0) % 110.0) - 55.0) > 47.0) | (np.abs(((sv + 1000.0) % 95.0) - 47.5) > 40.0)
    urban_fabric = (label == DENSE) | (label == SPARSE)
    impervious = np.where(urban_fabric & street, np.minimum(impervious + 0.35, 1.0), impervious)

    # -- networks: motorway ring, radial main roads, railway -----------------------------------
    network = ring < 17.0
    for a in lay.road_angles:
        network |= _near_ray(u, v, a, lay.centre[0], lay.centre[1], 11.0)
    network |= _line_distance(u, v, lay.rail_angle, lay.centre[0], lay.centre[1] - 300.0) < 14.0
    label[network] = NETWORK
    impervious[network] = 1.0
    tree[network] = 0.0

    # -- the river last: water, islands, bridges, quays in the centre ---------------------------
    river = dist < width_r / 2
    label[river] = WATER
    label[river & island_mask] = np.where(urb[river & island_mask] > 0.5, URBAN_GREEN, FOREST)
    bridges = river & network & ~island_mask
    label[bridges] = NETWORK
    quays = (dist >= width_r / 2) & (dist < width_r / 2 + 25.0) & (urb > 0.6)
    label[quays] = NETWORK
    impervious[quays | bridges] = 1.0
    tree[quays | bridges] = 0.0
    impervious[label == WATER] = 0.0
    tree[label == WATER] = 0.0
    tree[label == FOREST] = 0.95
    return LandCover(label, (parcel & np.uint64(0xFFFFFFFF)).astype(np.uint32), impervious, tree)


def crop_of(parcel: np.ndarray, year: int) -> np.ndarray:
    """Crop index (into CROPS) of each arable parcel in ``year`` (a rotation per parcel)."""
    start = (noise.uniform(parcel.astype(np.int64), 99, 0x5EED) * len(CROPS)).astype(np.int64)
    return ((start + year) % len(CROPS)).astype(np.uint8)
