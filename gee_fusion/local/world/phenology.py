"""Seasonal green-vegetation cover of the demo world, and soil wetness from rain events.

Cover curves are piecewise linear in day of year, one per crop (arable parcels rotate through
the crops year by year), grassland (with a mowing dip), deciduous and evergreen forest,
orchards and vineyards. Each parcel shifts its calendar by up to +-8 days and scales its
amplitude by up to +-8 %, so parcels of one crop differ as real fields do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import numpy as np

from gee_fusion.local.world import noise
from gee_fusion.local.world.config import WorldConfig
from gee_fusion.local.world.landcover import (
    ARABLE,
    DENSE,
    FOREST,
    GRASS,
    GROVE,
    INDUSTRIAL,
    ORCHARD,
    SPARSE,
    URBAN_GREEN,
    VINEYARD,
    WETLAND,
    LandCover,
    crop_of,
)

Curve = tuple[tuple[int, float], ...]

CROP_CURVES: dict[str, Curve] = {
    "wheat": (
        (1, 0.30),
        (60, 0.35),
        (100, 0.60),
        (135, 0.90),
        (165, 0.85),
        (190, 0.35),
        (200, 0.08),
        (280, 0.05),
        (300, 0.12),
        (335, 0.25),
        (366, 0.30),
    ),
    "barley": (
        (1, 0.30),
        (60, 0.40),
        (95, 0.65),
        (125, 0.88),
        (155, 0.70),
        (180, 0.25),
        (190, 0.06),
        (280, 0.05),
        (300, 0.12),
        (335, 0.25),
        (366, 0.30),
    ),
    "rapeseed": (
        (1, 0.45),
        (60, 0.50),
        (90, 0.75),
        (115, 0.85),
        (140, 0.80),
        (170, 0.45),
        (190, 0.08),
        (230, 0.05),
        (250, 0.35),
        (300, 0.55),
        (366, 0.45),
    ),
    "maize": (
        (1, 0.04),
        (130, 0.04),
        (160, 0.15),
        (190, 0.60),
        (215, 0.90),
        (250, 0.85),
        (275, 0.50),
        (290, 0.06),
        (366, 0.04),
    ),
    "sugar_beet": (
        (1, 0.04),
        (100, 0.04),
        (130, 0.15),
        (165, 0.70),
        (200, 0.92),
        (260, 0.90),
        (290, 0.60),
        (305, 0.06),
        (366, 0.04),
    ),
    "flax": (
        (1, 0.04),
        (80, 0.04),
        (110, 0.30),
        (140, 0.80),
        (170, 0.85),
        (190, 0.40),
        (205, 0.06),
        (366, 0.04),
    ),
}

CURVES: dict[str, Curve] = {
    "grass": (
        (1, 0.55),
        (60, 0.60),
        (110, 0.85),
        (140, 0.92),
        (158, 0.62),
        (175, 0.80),
        (220, 0.72),
        (260, 0.80),
        (320, 0.68),
        (366, 0.55),
    ),
    "deciduous": (
        (1, 0.25),
        (100, 0.28),
        (125, 0.75),
        (150, 0.95),
        (260, 0.92),
        (290, 0.70),
        (315, 0.35),
        (366, 0.25),
    ),
    "evergreen": ((1, 0.78), (120, 0.80), (200, 0.85), (300, 0.80), (366, 0.78)),
    "orchard": (
        (1, 0.30),
        (100, 0.32),
        (130, 0.62),
        (160, 0.78),
        (270, 0.72),
        (300, 0.45),
        (330, 0.32),
        (366, 0.30),
    ),
    "vineyard": (
        (1, 0.15),
        (120, 0.16),
        (150, 0.35),
        (180, 0.55),
        (260, 0.50),
        (290, 0.30),
        (310, 0.16),
        (366, 0.15),
    ),
}


def curve_value(curve: Curve, doy: np.ndarray | float) -> np.ndarray:
    """Evaluate a piecewise-linear cover curve at day(s) of year (wrapping at year ends)."""
    days = np.array([d for d, _ in curve], dtype=np.float64)
    vals = np.array([v for _, v in curve], dtype=np.float64)
    return np.interp(np.mod(np.asarray(doy, dtype=np.float64) - 1.0, 365.0) + 1.0, days, vals)


def day_of_year(millis: float) -> tuple[int, float]:
    """(year, fractional day of year) of a timestamp."""
    when = datetime.fromtimestamp(millis / 1000.0, tz=UTC)
    start = datetime(when.year, 1, 1, tzinfo=UTC)
    return when.year, 1.0 + (when - start).total_seconds() / 86400.0


WINTER_SOWING = {"wheat": 280.0, "barley": 275.0, "rapeseed": 240.0}
"""Sowing day of the autumn-sown crops: from then on the parcel shows next year's crop."""


def _arable_cover(now: np.ndarray, nxt: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Cover of arable parcels under rotation: this year's crop until harvest, bare stubble,
    then next year's crop from its sowing if it is autumn-sown."""
    names = list(CROP_CURVES)
    vals = np.zeros(day.shape, dtype=np.float64)
    for k, name in enumerate(names):
        sel = now == k
        cur = curve_value(CROP_CURVES[name], day[sel])
        if name in WINTER_SOWING:  # its own autumn part belongs to the next rotation step
            cur = np.where(day[sel] >= 230.0, 0.05, cur)
        vals[sel] = cur
    for k, name in enumerate(names):
        if name not in WINTER_SOWING:
            continue
        sel = (nxt == k) & (day >= WINTER_SOWING[name])
        vals[sel] = np.maximum(vals[sel], curve_value(CROP_CURVES[name], day[sel]))
    return vals


@dataclass(frozen=True)
class CoverIndex:
    """The date-independent part of :func:`green_cover` for one land-cover window.

    Cover depends on a pixel's class and parcel (calendar shift, amplitude, crop rotation, evergreen
    stands), plus its tree and sealed fractions in built-up classes. The window's distinct (class,
    parcel) objects are found once; at each date their curves are evaluated once per object and
    gathered back to the pixels.

    Attributes:
        inverse: (h, w) index of each pixel's object.
        label: Class code of each object.
        parcel: Parcel identifier of each object.
        shift: Calendar shift of each object (days).
        gain: Amplitude gain of each object.
        evergreen: Whether each object is an evergreen stand (woody classes).
        urban: Flat indices of the built-up pixels (trees in gardens, grass in open spaces).
        urban_tree: Their tree fraction.
        urban_open: Their green share of unsealed ground (0.08 x unsealed fraction).
    """

    inverse: np.ndarray
    label: np.ndarray
    parcel: np.ndarray
    shift: np.ndarray
    gain: np.ndarray
    evergreen: np.ndarray
    urban: np.ndarray
    urban_tree: np.ndarray
    urban_open: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays."""
        return sum(getattr(self, f.name).nbytes for f in fields(self))


URBAN = (DENSE, SPARSE, INDUSTRIAL)
GRASSY = (GRASS, URBAN_GREEN, WETLAND)
WOODY = (FOREST, GROVE)


def cover_index(cfg: WorldConfig, lc: LandCover) -> CoverIndex:
    """The objects of a land-cover window and what their cover curves need (see :class:`CoverIndex`)."""
    key = (lc.label.astype(np.uint64) << np.uint64(32)) | lc.parcel.astype(np.uint64)
    keys, inverse = np.unique(key.ravel(), return_inverse=True)
    label = (keys >> np.uint64(32)).astype(np.uint8)
    parcel = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    p = parcel.astype(np.int64)
    shift = (noise.uniform(p, 0, noise.salt_of(cfg.seed, "pheno-shift")) - 0.5) * 16.0
    gain = 1.0 + (noise.uniform(p, 1, noise.salt_of(cfg.seed, "pheno-gain")) - 0.5) * 0.16
    evergreen = noise.uniform(p, 7, noise.salt_of(cfg.seed, "evergreen")) < 0.3
    urban = np.flatnonzero(np.isin(lc.label, URBAN))
    return CoverIndex(
        inverse=inverse.reshape(lc.label.shape).astype(np.int32),
        label=label,
        parcel=parcel,
        shift=shift,
        gain=gain,
        evergreen=evergreen,
        urban=urban.astype(np.int32),
        urban_tree=lc.tree.ravel()[urban],
        urban_open=0.08 * (1 - lc.impervious.ravel()[urban]),
    )


def cover_at(index: CoverIndex, millis: float) -> np.ndarray:
    """Green-vegetation fraction (0..1, float32) of every pixel of an indexed window at a date."""
    year, doy = day_of_year(millis)
    day = doy + index.shift
    label = index.label
    vals = np.zeros(label.shape, dtype=np.float64)
    arable = label == ARABLE
    if arable.any():
        parcel = index.parcel[arable]
        vals[arable] = _arable_cover(crop_of(parcel, year), crop_of(parcel, year + 1), day[arable])
    for codes, name in ((GRASSY, "grass"), ((ORCHARD,), "orchard"), ((VINEYARD,), "vineyard")):
        sel = np.isin(label, codes)
        vals[sel] = curve_value(CURVES[name], day[sel])
    woody = np.isin(label, WOODY)
    if woody.any():
        eve = curve_value(CURVES["evergreen"], day[woody])
        vals[woody] = np.where(index.evergreen[woody], eve, curve_value(CURVES["deciduous"], day[woody]))
    # a pixel's cover is first rounded to float32, then scaled by its object's gain
    per_object = np.clip(vals.astype(np.float32) * index.gain, 0.0, 1.0).astype(np.float32)
    out = per_object[index.inverse]
    if index.urban.size:
        objects = index.inverse.ravel()[index.urban]
        deciduous = curve_value(CURVES["deciduous"], day)[objects]
        raw = (index.urban_tree * deciduous + index.urban_open).astype(np.float32)
        out.ravel()[index.urban] = np.clip(raw * index.gain[objects], 0.0, 1.0)
    return out


def green_cover(cfg: WorldConfig, lc: LandCover, millis: float) -> np.ndarray:
    """Green-vegetation fraction (0..1, float32) of every pixel at a date."""
    return cover_at(cover_index(cfg, lc), millis)


@functools.lru_cache(maxsize=4096)
def wetness(cfg: WorldConfig, millis: float) -> float:
    """Top-soil wetness 0..1: rain events (about 1 in 4 days, more in winter) decaying over ~3 days."""
    day = int(millis // 86_400_000)
    total = 0.0
    for back in range(0, 10):
        d = day - back
        _, doy = day_of_year(d * 86_400_000.0)
        p_rain = 0.22 + 0.12 * np.cos(2 * np.pi * (doy - 15) / 365.0)
        u = float(noise.uniform(np.int64(d), np.int64(0), noise.salt_of(cfg.seed, "rain")))
        if u < p_rain:
            amount = float(noise.uniform(np.int64(d), np.int64(1), noise.salt_of(cfg.seed, "rain-mm")))
            total += (0.4 + 0.6 * amount) * np.exp(-back / 3.0)
    return float(min(total, 1.0))
