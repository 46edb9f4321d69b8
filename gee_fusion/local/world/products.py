"""Land-cover products of the demo world: the land-cover truth (``local/demo/LABELS`` at its date,
``local/demo/LABELS_MONTHLY`` month by month, both with the planted changes of their date), an
ESA WorldCover-like map (``ESA/WorldCover/v200``, 2021) derived from it with realistic errors,
and the truth of the planted changes (``local/demo/CHANGES``)."""

from __future__ import annotations

import numpy as np
from affine import Affine

from gee_fusion.classes import GROUPS_6, GROUPS_10, regroup
from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import ImageSource, WindowT
from gee_fusion.local.world import blocks, changes, noise
from gee_fusion.local.world.config import WorldConfig
from gee_fusion.local.world.landcover import LandCover

WORLDCOVER = {
    1: 50,
    2: 50,
    3: 50,
    4: 30,
    5: 50,
    6: 40,
    7: 40,
    8: 40,
    9: 30,
    10: 10,
    11: 10,
    12: 60,
    13: 90,
    14: 80,
}
"""MultiSenGE code -> ESA WorldCover code (built-up classes merged into 50)."""

COARSE = 3
"""WorldCover boundaries follow a 30 m lattice (3 x 3 world pixels)."""

LABELS_MILLIS = 1609459200000
"""``local/demo/LABELS`` is the land cover of 2021-01-01."""
WORLDCOVER_MILLIS = 1625097600000
"""The WorldCover map shows the land cover of 2021-07-01 (mid-year of its 2021 epoch)."""


def landcover_at(cfg: WorldConfig, col0: int, row0: int, width: int, height: int, millis: float) -> LandCover:
    """Land cover of a window at a date (the planted changes of that date applied)."""
    lc = blocks.landcover_window(cfg, col0, row0, width, height)
    return changes.apply_changes(cfg, lc, col0, row0, millis)[0]


class LabelsSource(ImageSource):
    """``label`` (MultiSenGE 1-14), ``label10`` and ``label6`` (the groupings), uint8, as the land
    was at ``millis`` (default: 2021-01-01)."""

    def __init__(self, cfg: WorldConfig, millis: int = LABELS_MILLIS) -> None:
        dtypes = {b: np.dtype(np.uint8) for b in ("label", "label10", "label6")}
        super().__init__(
            cfg.crs,
            Affine(*cfg.transform()),
            cfg.shape(),
            dtypes,
            {"system:time_start": millis, "classes": "MultiSenGE 1-14"},
        )
        self.cfg = cfg
        self.millis = millis

    def footprint(self) -> list[list[float]]:
        return self.cfg.footprint

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        label = label_band(landcover_at(self.cfg, col, row, w, h, self.millis).label, band)
        return label, np.ones(label.shape, dtype=bool)


def label_band(label: np.ndarray, band: str) -> np.ndarray:
    """MultiSenGE codes as band ``band`` of a labels product: ``label`` as they are, ``label10`` and
    ``label6`` in gee_fusion's groupings."""
    if band == "label10":
        return regroup(label, GROUPS_10)
    if band == "label6":
        return regroup(label, GROUPS_6)
    return label


def worldcover(cfg: WorldConfig, col0: int, row0: int, width: int, height: int) -> np.ndarray:
    """WorldCover codes of a window: mapped truth, boundaries snapped to a 30 m lattice (so thin
    features vanish and edges go blocky), trees in gardens counted as tree cover."""
    k = COARSE
    c0, r0 = (col0 // k) * k, (row0 // k) * k
    c1, r1 = -(-(col0 + width) // k) * k, -(-(row0 + height) // k) * k
    lc = landcover_at(cfg, c0, r0, c1 - c0, r1 - r0, WORLDCOVER_MILLIS)
    table = np.zeros(256, dtype=np.uint8)
    for code, wc in WORLDCOVER.items():
        table[code] = wc
    fine = table[lc.label]
    fine[(lc.tree > 0.3) & (fine == 50)] = 10
    centre = fine[k // 2 :: k, k // 2 :: k]
    coarse = np.repeat(np.repeat(centre, k, axis=0), k, axis=1)
    ix = np.arange(c0, c1)[None, :]
    iy = np.arange(r0, r1)[:, None]
    keep_fine = noise.uniform(ix, iy, noise.salt_of(cfg.seed, "worldcover")) < 0.25
    out = np.where(keep_fine, fine, coarse)
    return out[row0 - r0 : row0 - r0 + height, col0 - c0 : col0 - c0 + width]


class WorldCoverSource(ImageSource):
    """``ESA/WorldCover/v200``: band ``Map`` (uint8 WorldCover codes), 2021."""

    def __init__(self, cfg: WorldConfig) -> None:
        super().__init__(
            cfg.crs,
            Affine(*cfg.transform()),
            cfg.shape(),
            {"Map": np.dtype(np.uint8)},
            {"system:time_start": 1609459200000, "system:time_end": 1640995200000, "version": "v200"},
        )
        self.cfg = cfg

    def footprint(self) -> list[list[float]]:
        return self.cfg.footprint

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        values = worldcover(self.cfg, col, row, w, h)
        return values, np.ones(values.shape, dtype=bool)
