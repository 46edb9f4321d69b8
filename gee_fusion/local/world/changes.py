"""Planted land-cover changes of the demo world, with their truth.

A static city has nothing to monitor. :func:`planted_changes` draws, deterministically from the
seed, ``WorldConfig.changes`` events between 2019 and 2024 (sizes scaled by
``WorldConfig.change_scale``):

- **construction** (housing): arable / grass / orchard land at the urban fringe becomes a bare
  construction site (``start``), then sparse or dense built-up (``end``);
- **industrial**: the same near industrial zones or the motorway, ending as industrial buildings;
- **road**: a 20 m wide strip of farmland becomes a site, then a paved road (networks);
- **demolition**: built-up blocks become rubble (a site) at ``start``, then a grassy urban lot
  (specialized vegetative) at ``end``;
- **flood**: in winter, the low-lying farmland and meadows of a stretch of the river plain lie
  under water from ``start`` to ``end`` (then return to what they were).

:func:`apply_changes` gives the land cover of a window at a date; every product that depends on
land cover (Sentinel-1, Sentinel-2, the monthly labels, WorldCover) goes through it, so a change
appears in every product in the months its truth says. Sites are bare soil with rubble (not chalk),
and rough, bright targets for the radar. :func:`truth_features` is the truth served as the
``local/demo/CHANGES`` table: one polygon per change with its type, start and end months, and
classes before and after.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import numpy as np

from gee_fusion.errors import ConfigError
from gee_fusion.local.world import blocks, landcover, noise, relief
from gee_fusion.local.world.config import PIXEL, WorldConfig
from gee_fusion.local.world.landcover import (
    ARABLE,
    DENSE,
    GRASS,
    INDUSTRIAL,
    NETWORK,
    OPEN,
    ORCHARD,
    SPARSE,
    URBAN_GREEN,
    VINEYARD,
    WATER,
    WETLAND,
    LandCover,
)

FIRST_YEAR, LAST_YEAR = 2019, 2024
CITY_PX = 1200
"""Changes are planted in the central 12 x 12 km (the city) of larger worlds."""
"""Changes start between January of the first and December of the last year."""

VEGETATED = (ARABLE, GRASS, ORCHARD, VINEYARD, URBAN_GREEN)
BUILT = (DENSE, SPARSE, INDUSTRIAL)
FLOODABLE = (ARABLE, GRASS, WETLAND, URBAN_GREEN, ORCHARD)
SITE_PARCEL = np.uint64(0xC4A2_0000_0000)
"""Parcel ids of planted objects: SITE_PARCEL + change id (per-object variability)."""


class ChangeKind(StrEnum):
    """What a planted change is."""

    CONSTRUCTION = "construction"
    INDUSTRIAL = "industrial"
    ROAD = "road"
    DEMOLITION = "demolition"
    FLOOD = "flood"


SHARES: tuple[tuple[ChangeKind, float], ...] = (
    (ChangeKind.CONSTRUCTION, 0.40),
    (ChangeKind.INDUSTRIAL, 0.15),
    (ChangeKind.ROAD, 0.15),
    (ChangeKind.DEMOLITION, 0.20),
    (ChangeKind.FLOOD, 0.10),
)
"""How the planted changes divide between kinds."""


@dataclass(frozen=True)
class PlantedChange:
    """One planted change: a rectangle of the 10 m lattice, its kind and months.

    Attributes:
        id: 0, 1, ... in drawing order.
        kind: What happens.
        col0: First lattice column (inclusive).
        row0: First lattice row (inclusive).
        col1: Last lattice column (exclusive).
        row1: Last lattice row (exclusive).
        start: First month of the change (a site, rubble or the flood begins).
        end: First month of the final state (built, paved, grassed over, or the water gone).
        to_code: MultiSenGE code of the final state (during a flood: water).
        level_m: Flood level (metres): floodable pixels lower than this are under water.
    """

    id: int
    kind: ChangeKind
    col0: int
    row0: int
    col1: int
    row1: int
    start: date
    end: date
    to_code: int
    level_m: float = 0.0

    def millis(self, when: date) -> int:
        """Milliseconds since the epoch of a month start."""
        return int(datetime(when.year, when.month, 1, tzinfo=UTC).timestamp() * 1000)

    def phase(self, millis: float) -> str:
        """``before``, ``during`` or ``after`` at a date."""
        if millis < self.millis(self.start):
            return "before"
        return "during" if millis < self.millis(self.end) else "after"


def _add_months(d: date, months: int) -> date:
    k = d.year * 12 + d.month - 1 + months
    return date(k // 12, k % 12 + 1, 1)


_DURATION = {  # months from start to end (inclusive ranges)
    ChangeKind.CONSTRUCTION: (5, 14),
    ChangeKind.INDUSTRIAL: (6, 15),
    ChangeKind.ROAD: (3, 9),
    ChangeKind.DEMOLITION: (2, 6),
    ChangeKind.FLOOD: (1, 2),
}


def _size_px(kind: ChangeKind, rng: np.random.Generator, scale: float) -> tuple[int, int]:
    if kind == ChangeKind.ROAD:
        length = round(rng.uniform(300, 800) * scale / PIXEL)
        return (length, 2) if rng.random() < 0.5 else (2, length)
    if kind == ChangeKind.FLOOD:
        return round(rng.uniform(700, 1500) * scale / PIXEL), round(rng.uniform(400, 800) * scale / PIXEL)
    low, high = {
        ChangeKind.CONSTRUCTION: (70, 200),
        ChangeKind.INDUSTRIAL: (90, 250),
        ChangeKind.DEMOLITION: (50, 140),
    }[kind]
    return round(rng.uniform(low, high) * scale / PIXEL), round(rng.uniform(low, high) * scale / PIXEL)


def _fits(kind: ChangeKind, around: np.ndarray, margin: int) -> bool:
    """Whether a candidate rectangle (labels with ``margin`` pixels of context) suits ``kind``."""
    inner = around[margin:-margin, margin:-margin]
    share = lambda codes, a: float(np.isin(a, codes).mean())  # noqa: E731
    if kind in (ChangeKind.CONSTRUCTION, ChangeKind.ROAD):
        return share(VEGETATED, inner) >= 0.85 and share(BUILT, around) >= 0.05
    if kind == ChangeKind.INDUSTRIAL:
        return share(VEGETATED, inner) >= 0.85 and share((INDUSTRIAL, NETWORK), around) >= 0.03
    if kind == ChangeKind.DEMOLITION:
        return share(BUILT, inner) >= 0.8
    return share(FLOODABLE, inner) >= 0.4 and share((WATER,), around) >= 0.02


_placing = threading.Lock()


def planted_changes(cfg: WorldConfig) -> tuple[PlantedChange, ...]:
    """The world's planted changes (deterministic by seed; ``cfg.change_count`` of them), placed
    once: threads that ask at the same time wait for the first (placing them reads the land cover of
    the whole city).

    Raises:
        ConfigError: When the world has no room for the number of changes ``cfg.changes`` asks
            for (with the default count, as many as fit are planted).
    """
    with _placing:
        adopted = _adopted.get(cfg)
        return adopted if adopted is not None else _place(cfg)


_adopted: dict[WorldConfig, tuple[PlantedChange, ...]] = {}


def adopt_planted_changes(cfg: WorldConfig, placed: tuple[PlantedChange, ...]) -> None:
    """Take the planted changes another process of the same code placed for ``cfg`` (a helper
    process of :mod:`~gee_fusion.local.world.processes`), instead of placing them again."""
    with _placing:
        _adopted.setdefault(cfg, placed)


@functools.lru_cache(maxsize=8)
def _place(cfg: WorldConfig) -> tuple[PlantedChange, ...]:
    """:func:`planted_changes` (cached)."""
    count = cfg.change_count
    if count <= 0:
        return ()
    rng = np.random.default_rng(noise.salt_of(cfg.seed, "changes") % 2**63)
    shares = np.array([share for _, share in SHARES]) * count
    quota = np.floor(shares).astype(int)
    for k in np.argsort(-(shares - quota), kind="stable")[: count - int(quota.sum())]:
        quota[k] += 1  # largest remainders
    order = [kind for (kind, _), n in zip(SHARES, quota, strict=True) for _ in range(int(n))]
    # the central city (12 km at most): the whole area's labels, through the block cache (the
    # products read the same blocks)
    n_px = min(cfg.size_px, CITY_PX)
    off = (cfg.size_px - n_px) // 2
    world = blocks.landcover_window(cfg, off, off, n_px, n_px).label
    taken: list[tuple[int, int, int, int]] = []
    out: list[PlantedChange] = []
    gap = 5  # pixels kept free between two changes
    for kind in order:
        for _ in range(400):
            w, h = _size_px(kind, rng, cfg.change_scale)
            margin = 20
            if w + 2 * margin >= n_px or h + 2 * margin >= n_px:
                break
            c0 = int(rng.integers(margin, n_px - w - margin))
            r0 = int(rng.integers(margin, n_px - h - margin))
            if any(c0 < b[2] + gap and b[0] < c0 + w + gap and r0 < b[3] + gap and b[1] < r0 + h + gap
                   for b in taken):  # fmt: skip
                continue
            around = world[r0 - margin : r0 + h + margin, c0 - margin : c0 + w + margin]
            if not _fits(kind, around, margin):
                continue
            lo, hi = _DURATION[kind]
            if kind == ChangeKind.FLOOD:
                year = int(rng.integers(FIRST_YEAR, LAST_YEAR + 1))
                start = date(year, int(rng.choice([1, 2, 12])), 1)
            else:
                start = _add_months(
                    date(FIRST_YEAR, 1, 1), int(rng.integers(0, (LAST_YEAR - FIRST_YEAR + 1) * 12))
                )
            end = _add_months(start, int(rng.integers(lo, hi + 1)))
            to_code = {
                ChangeKind.CONSTRUCTION: DENSE if rng.random() < 0.3 else SPARSE,
                ChangeKind.INDUSTRIAL: INDUSTRIAL,
                ChangeKind.ROAD: NETWORK,
                ChangeKind.DEMOLITION: URBAN_GREEN,
                ChangeKind.FLOOD: WATER,
            }[kind]
            level = float(rng.uniform(6.5, 8.5)) if kind == ChangeKind.FLOOD else 0.0
            taken.append((c0, r0, c0 + w, r0 + h))  # in the central square's pixels
            c0, r0 = c0 + off, r0 + off
            out.append(PlantedChange(len(out), kind, c0, r0, c0 + w, r0 + h, start, end, to_code, level))
            break
        else:
            if cfg.changes is None:  # the default count: as many as fit
                continue
            raise ConfigError(
                f"The demo world has no room for {cfg.changes} planted changes (placed {len(out)}): "
                "lower WorldConfig.changes or change_scale, or enlarge size_km."
            )
    return tuple(out)


def _flooded(cfg: WorldConfig, ch: PlantedChange, lc: LandCover, c0: int, r0: int) -> np.ndarray:
    """Which pixels of a window (already cut to the change's rectangle) the flood covers."""
    h, w = lc.label.shape
    u, v = landcover.coords(cfg, c0, r0, w, h)
    low = relief.elevation(cfg, u, v) < ch.level_m
    return low & np.isin(lc.label, FLOODABLE)


def active_changes(
    cfg: WorldConfig, col0: int, row0: int, width: int, height: int, millis: float
) -> tuple[tuple[PlantedChange, str], ...]:
    """The planted changes that alter a window at a date, each with its phase (``during`` or
    ``after``): the window's land cover at that date is a function of these alone (a key for
    caching what is derived from it)."""
    hits = []
    for c in planted_changes(cfg):
        if c.col0 < col0 + width and col0 < c.col1 and c.row0 < row0 + height and row0 < c.row1:
            phase = c.phase(millis)
            if phase == "during" or (phase == "after" and c.kind != ChangeKind.FLOOD):
                hits.append((c, phase))
    return tuple(hits)


def apply_changes(
    cfg: WorldConfig, lc: LandCover, col0: int, row0: int, millis: float
) -> tuple[LandCover, np.ndarray]:
    """The land cover of a window at a date, and where construction sites (bare soil) are.

    Args:
        cfg: The world.
        lc: The static land cover of the window whose upper-left pixel is (col0, row0).
        col0: Lattice column of the window's first pixel.
        row0: Lattice row of the window's first pixel.
        millis: The date (milliseconds since the epoch).

    Returns:
        The changed land cover (``lc`` itself when nothing changes there) and a boolean site mask.
    """
    h, w = lc.label.shape
    site = np.zeros((h, w), dtype=bool)
    hits = active_changes(cfg, col0, row0, w, h, millis)
    if not hits:
        return lc, site
    label, parcel = lc.label.copy(), lc.parcel.copy()
    impervious, tree = lc.impervious.copy(), lc.tree.copy()
    for ch, phase in hits:
        rs, re_ = max(ch.row0, row0) - row0, min(ch.row1, row0 + h) - row0
        cs, ce = max(ch.col0, col0) - col0, min(ch.col1, col0 + w) - col0
        win = (slice(rs, re_), slice(cs, ce))
        if ch.kind == ChangeKind.FLOOD:
            part = LandCover(label[win], parcel[win], impervious[win], tree[win])
            wet = _flooded(cfg, ch, part, col0 + cs, row0 + rs)
            label[win] = np.where(wet, WATER, label[win])
            continue
        parcel[win] = SITE_PARCEL + np.uint64(ch.id)
        if phase == "during":
            label[win], impervious[win], tree[win] = OPEN, 0.0, 0.0
            site[win] = True
        else:
            label[win] = ch.to_code
            impervious[win] = {DENSE: 0.85, SPARSE: 0.6, INDUSTRIAL: 0.9, NETWORK: 1.0}.get(ch.to_code, 0.0)
            tree[win] = 0.05 if ch.to_code in (DENSE, SPARSE) else 0.0
    return replace(lc, label=label, parcel=parcel, impervious=impervious, tree=tree), site


Bounds = tuple[float, float, float, float]


def truth_rows(cfg: WorldConfig) -> list[tuple[Bounds, dict[str, Any]]]:
    """One record per planted change: its rectangle (west, south, east, north in the world's CRS)
    and its attributes."""
    x0, y1 = cfg.origin
    rows: list[tuple[Bounds, dict[str, Any]]] = []
    for ch in planted_changes(cfg):
        lc = blocks.landcover_window(cfg, ch.col0, ch.row0, ch.col1 - ch.col0, ch.row1 - ch.row0)
        codes, counts = np.unique(lc.label, return_counts=True)
        changed = (ch.col1 - ch.col0) * (ch.row1 - ch.row0)
        if ch.kind == ChangeKind.FLOOD:
            changed = int(_flooded(cfg, ch, lc, ch.col0, ch.row0).sum())
        bounds = (x0 + ch.col0 * PIXEL, y1 - ch.row1 * PIXEL, x0 + ch.col1 * PIXEL, y1 - ch.row0 * PIXEL)
        rows.append((bounds, {
            "change_id": ch.id, "type": str(ch.kind),
            "start": ch.start.strftime("%Y-%m"), "end": ch.end.strftime("%Y-%m"),
            "start_millis": ch.millis(ch.start), "end_millis": ch.millis(ch.end),
            "from_class": int(codes[np.argmax(counts)]), "to_class": ch.to_code,
            "changed_area_m2": float(changed * PIXEL * PIXEL),
        }))  # fmt: skip
    return rows
