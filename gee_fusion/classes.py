"""The MultiSenGE land-cover nomenclature (codes 1-14) and its 10- and 6-class groupings.

Codes and names follow MultiSenGE (Wenger et al. 2022); 0 and 255 mean "no label". The
groupings are gee_fusion's (documented in docs/demo_world.md): urban classes are kept apart,
natural and agricultural ones merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_LABEL = 255


@dataclass(frozen=True)
class LandCoverClass:
    """One class: code, name and display colour (RGB)."""

    code: int
    name: str
    color: tuple[int, int, int]


MULTISENGE_14: tuple[LandCoverClass, ...] = (
    LandCoverClass(1, "Dense built-up", (200, 0, 0)),
    LandCoverClass(2, "Sparse built-up", (255, 110, 110)),
    LandCoverClass(3, "Specialized built-up areas", (160, 60, 160)),
    LandCoverClass(4, "Specialized but vegetative areas", (255, 170, 230)),
    LandCoverClass(5, "Large scale networks", (90, 90, 90)),
    LandCoverClass(6, "Arable lands", (255, 230, 120)),
    LandCoverClass(7, "Vineyards", (170, 60, 90)),
    LandCoverClass(8, "Orchards", (230, 150, 60)),
    LandCoverClass(9, "Grasslands", (170, 230, 90)),
    LandCoverClass(10, "Groves and hedges", (90, 170, 60)),
    LandCoverClass(11, "Forests", (20, 110, 40)),
    LandCoverClass(12, "Open spaces, mineral", (210, 200, 180)),
    LandCoverClass(13, "Wetlands", (110, 200, 210)),
    LandCoverClass(14, "Water surfaces", (30, 90, 200)),
)

GROUPS_10: dict[int, int] = {
    1: 1,
    2: 2,
    3: 3,
    4: 4,
    5: 5,
    6: 6,
    7: 7,
    8: 7,
    9: 8,
    10: 9,
    11: 9,
    12: 10,
    13: 10,
    14: 10,
}
"""14 -> 10: permanent crops (7, 8) and woody vegetation (10, 11) merged; open, wet and water
surfaces (12, 13, 14) merged."""

NAMES_10: dict[int, str] = {
    1: "Dense built-up",
    2: "Sparse built-up",
    3: "Specialized built-up",
    4: "Specialized vegetative",
    5: "Large scale networks",
    6: "Arable lands",
    7: "Permanent crops",
    8: "Grasslands",
    9: "Woody vegetation",
    10: "Water, wetlands and open spaces",
}

GROUPS_6: dict[int, int] = {
    1: 1,
    2: 1,
    3: 2,
    4: 2,
    5: 2,
    6: 3,
    7: 3,
    8: 3,
    9: 4,
    10: 5,
    11: 5,
    12: 6,
    13: 6,
    14: 6,
}
"""14 -> 6: urban fabrics; specialized areas and networks; agriculture; grasslands; woody
vegetation; water, wetlands and open spaces."""

NAMES_6: dict[int, str] = {
    1: "Urban fabrics",
    2: "Specialized areas and networks",
    3: "Agriculture",
    4: "Grasslands",
    5: "Woody vegetation",
    6: "Water, wetlands and open spaces",
}


def lookup_table(groups: dict[int, int]) -> np.ndarray:
    """A uint8 table mapping 14-class codes (and 0/255) to grouped codes (255 for no label)."""
    table = np.full(256, NO_LABEL, dtype=np.uint8)
    for code, group in groups.items():
        table[code] = group
    return table


def regroup(labels: np.ndarray, groups: dict[int, int]) -> np.ndarray:
    """Map a 14-class label array to a grouping (unknown codes become 255)."""
    return lookup_table(groups)[np.asarray(labels, dtype=np.uint8)]


def colormap(classes: tuple[LandCoverClass, ...] = MULTISENGE_14) -> dict[int, tuple[int, int, int, int]]:
    """A GDAL colour table (code -> RGBA)."""
    return {c.code: (*c.color, 255) for c in classes}
