"""A generalised reference map of the demo world (``local/demo/REFERENCE``), made from the truth
the way real land-cover products differ from the ground.

Real reference labels (Urban Atlas, CORINE, national land-cover databases) are coarser and older
than the imagery a classifier learns from. :func:`reference_labels` derives such a map from the
land-cover truth of 2021-01-01 (``local/demo/LABELS``, planted changes of that date included) with
three documented effects, in this order:

1. **Outdated polygons** (:data:`OUTDATED_SHARE`): a seeded share of land objects (one object is
   one class inside one parcel of the truth's ``parcel`` layer) keep the class they had before the
   last survey (:data:`PREVIOUS_CLASS`: arable <-> grassland, a business park still mapped as
   arable, housing on a brownfield still industrial, a densified block still sparse, ...).
2. **Displaced boundaries** (:data:`SHIFT_RMS_PX`, :data:`SHIFT_CELL_M`): the labels are sampled at
   coordinates moved by a smooth displacement field (2-octave fBm), the digitising and
   co-registration error of vector products.
3. **Minimum mapping unit** (:data:`MMU_RADII_PX`): a majority (mode) filter over a disc removes
   small objects and thin strips and rounds corners; networks (:data:`KEPT_LINEAR`) are kept
   as displaced, as real products burn their road and rail layers in.

Every step is a pure function of integer world coordinates and the seed, computed on the window
plus a halo, so any window equals the matching crop of the whole world.
"""

from __future__ import annotations

import functools

import numpy as np
from affine import Affine

from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import ImageSource, WindowT
from gee_fusion.local.world import noise
from gee_fusion.local.world.config import WorldConfig
from gee_fusion.local.world.landcover import (
    ARABLE,
    DENSE,
    GRASS,
    GROVE,
    INDUSTRIAL,
    NETWORK,
    OPEN,
    ORCHARD,
    SPARSE,
    URBAN_GREEN,
    VINEYARD,
    coords,
)
from gee_fusion.local.world.products import LABELS_MILLIS, label_band, landcover_at

OUTDATED_SHARE = 0.02
"""Share of land objects (a class within a parcel) whose reference class is the previous one."""

PREVIOUS_CLASS: dict[int, int] = {
    ARABLE: GRASS,  # grassland ploughed up since the survey
    GRASS: ARABLE,  # arable land turned to pasture
    ORCHARD: GRASS,  # an orchard planted on a meadow
    VINEYARD: ARABLE,
    GROVE: GRASS,  # scrub grown on a meadow
    OPEN: ARABLE,  # a quarry or works extended over fields
    INDUSTRIAL: ARABLE,  # a business park built on fields (industry lies on the fringe and the ring)
    SPARSE: INDUSTRIAL,  # housing on a former industrial or commercial site (brownfield)
    DENSE: SPARSE,  # densified
    URBAN_GREEN: SPARSE,  # a park on demolished housing (the planted demolitions' end state)
}
"""Current class -> the class an outdated object keeps (forests, networks, water and wetlands are
never outdated). Housing and parks keep an urban class: only industry, which lies on the fringe,
was farmland."""

SHIFT_RMS_PX = 0.5
"""Standard deviation of the boundary displacement along each axis, in 10 m pixels."""
SHIFT_CELL_M = 400.0
"""Largest cell of the displacement field's fBm (metres): neighbouring boundaries move together."""
_FBM_SD = 0.1686
"""Standard deviation of 2-octave fBm (measured over 2.7 M samples): scales the field to unit sd."""
MAX_SHIFT_PX = 3
"""The displacement is rounded to whole pixels and never exceeds this (0.5 / _FBM_SD sd)."""

MMU_RADII_PX: tuple[int, ...] = (2, 1)
"""Radii of the successive majority filters' discs: 2 px (13 pixels, 0.13 ha: objects under about half
of Urban Atlas's 0.25 ha urban minimum mapping unit vanish, larger ones lose their corners), then
1 px (5 pixels), a clean-up pass that removes the isolated pixels the first one leaves where three
or more classes meet. Calibrated with the other two effects so that the pixel forest of
``benchmarks/world_realism.py`` stays within the published 0.60-0.90 (docs/demo_world.md)."""
KEPT_LINEAR: tuple[int, ...] = (NETWORK,)
"""Classes taken as displaced, outside the majority vote (roads and railways, 20-34 m wide)."""

BANDS = ("label", "label10", "label6")


def outdated_labels(
    label: np.ndarray, parcel: np.ndarray, *, seed: int, share: float = OUTDATED_SHARE
) -> np.ndarray:
    """The truth with a seeded ``share`` of its objects set back to their previous class.

    Args:
        label: MultiSenGE codes (uint8).
        parcel: The truth's parcel ids (same shape).
        seed: The world's seed.
        share: Probability that an object (one class within one parcel) is outdated.

    Returns:
        The outdated labels (a new array).
    """
    table = np.arange(256, dtype=np.uint8)
    for now, before in PREVIOUS_CLASS.items():
        table[now] = before
    pick = noise.uniform(parcel.astype(np.int64), label.astype(np.int64), noise.salt_of(seed, "outdated"))
    return np.where(pick < share, table[label], label).astype(np.uint8)


def displacement(
    cfg: WorldConfig, col0: int, row0: int, width: int, height: int, *, rms_px: float = SHIFT_RMS_PX
) -> tuple[np.ndarray, np.ndarray]:
    """Whole-pixel displacement (columns, rows) of each pixel of a window (int arrays).

    Args:
        cfg: The world.
        col0: First lattice column of the window.
        row0: First lattice row of the window.
        width: Window width (pixels).
        height: Window height (pixels).
        rms_px: Standard deviation along each axis (pixels).

    Returns:
        Column and row offsets, each within +-MAX_SHIFT_PX.
    """
    u, v = coords(cfg, col0, row0, width, height)
    out = []
    for axis in ("shift_x", "shift_y"):
        field = noise.fbm(u, v, SHIFT_CELL_M, noise.salt_of(cfg.seed, axis), octaves=2)
        shift = np.rint(rms_px * (field - 0.5) / _FBM_SD)
        out.append(np.clip(shift, -MAX_SHIFT_PX, MAX_SHIFT_PX).astype(np.int64))
    return out[0], out[1]


def disc_offsets(radius: int) -> list[tuple[int, int]]:
    """(row, column) offsets of a disc of ``radius`` pixels (centre distance <= radius)."""
    r = range(-radius, radius + 1)
    return [(dy, dx) for dy in r for dx in r if dy * dy + dx * dx <= radius * radius]


def majority(label: np.ndarray, radius: int, *, exclude: tuple[int, ...] = KEPT_LINEAR) -> np.ndarray:
    """Mode filter over a disc; ties keep the centre's class; ``exclude`` classes cast no vote.

    Args:
        label: Codes 1..14 of a window grown by ``radius`` pixels on every side.
        radius: Disc radius (pixels); 0 returns the interior unchanged.
        exclude: Classes ignored by the vote.

    Returns:
        The filtered interior (``label`` less ``radius`` pixels on every side).
    """
    h, w = label.shape[0] - 2 * radius, label.shape[1] - 2 * radius
    centre = label[radius : radius + h, radius : radius + w]
    codes = np.array(sorted(set(np.unique(label).tolist()) - set(exclude)), dtype=np.uint8)
    if radius == 0 or codes.size == 0:
        return centre.copy()
    onehot = label[None, :, :] == codes[:, None, None]  # (classes, rows, columns)
    votes = np.zeros((codes.size, h, w), dtype=np.int16)
    for dy, dx in disc_offsets(radius):
        votes += onehot[:, radius + dy : radius + dy + h, radius + dx : radius + dx + w]
    # twice the votes, plus one for the centre's class: ties keep the centre
    score = 2 * votes + onehot[:, radius : radius + h, radius : radius + w]
    best = codes[score.argmax(axis=0)]
    return np.where(votes.max(axis=0) > 0, best, centre).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _reference(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> np.ndarray:
    grow = sum(MMU_RADII_PX)
    halo = grow + MAX_SHIFT_PX
    lc = landcover_at(cfg, col0 - halo, row0 - halo, width + 2 * halo, height + 2 * halo, LABELS_MILLIS)
    old = outdated_labels(lc.label, lc.parcel, seed=cfg.seed)
    # displaced labels on the window grown by the filters' radii
    dc, dr = displacement(cfg, col0 - grow, row0 - grow, width + 2 * grow, height + 2 * grow)
    rows = np.arange(height + 2 * grow)[:, None] + MAX_SHIFT_PX + dr
    cols = np.arange(width + 2 * grow)[None, :] + MAX_SHIFT_PX + dc
    moved = old[rows, cols]
    out = moved
    for radius in MMU_RADII_PX:
        out = majority(out, radius)
        cut = (moved.shape[0] - out.shape[0]) // 2  # the radii applied so far
        kept = moved[cut : cut + out.shape[0], cut : cut + out.shape[1]]
        out = np.where(np.isin(kept, KEPT_LINEAR), kept, out)
    out.setflags(write=False)
    return out


def reference_labels(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> np.ndarray:
    """The generalised reference map (MultiSenGE codes 1-14, uint8) of a window of the 10 m lattice."""
    return _reference(cfg, col0, row0, width, height).copy()


class ReferenceSource(ImageSource):
    """``local/demo/REFERENCE``: ``label``, ``label10`` and ``label6`` (uint8) of the generalised
    reference map, dated 2021-01-01 like ``local/demo/LABELS``."""

    def __init__(self, cfg: WorldConfig) -> None:
        super().__init__(
            cfg.crs,
            Affine(*cfg.transform()),
            cfg.shape(),
            {b: np.dtype(np.uint8) for b in BANDS},
            {"system:time_start": LABELS_MILLIS, "classes": "MultiSenGE 1-14", "product": "reference"},
        )
        self.cfg = cfg

    def footprint(self) -> list[list[float]]:
        return self.cfg.footprint

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        label = label_band(reference_labels(self.cfg, col, row, w, h), band)
        return label, np.ones(label.shape, dtype=bool)
