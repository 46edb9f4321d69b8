"""The MultiSenGE land-cover nomenclature (codes 1-14) and its 10- and 6-class groupings.

Codes and names follow MultiSenGE (Wenger et al. 2022); 0 and 255 mean "no label". The
groupings are gee_fusion's (documented in docs/demo_world.md): urban classes are kept apart,
natural and agricultural ones merged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from gee_fusion.errors import DataError

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


Scheme = Literal[14, 10, 6]
WORLDCOVER_CODES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
"""ESA WorldCover codes, in the order of their one-hot index when used as a prior map."""
WORLDCOVER_SCHEME = 11
"""``class_table(11)``: ESA WorldCover's 11 classes, when WorldCover is the reference."""
WORLDCOVER_CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass(10, "Tree cover", (0, 100, 0)),
    LandCoverClass(20, "Shrubland", (255, 187, 34)),
    LandCoverClass(30, "Grassland", (255, 255, 76)),
    LandCoverClass(40, "Cropland", (240, 150, 255)),
    LandCoverClass(50, "Built-up", (250, 0, 0)),
    LandCoverClass(60, "Bare / sparse vegetation", (180, 180, 180)),
    LandCoverClass(70, "Snow and ice", (240, 240, 240)),
    LandCoverClass(80, "Permanent water bodies", (0, 100, 200)),
    LandCoverClass(90, "Herbaceous wetland", (0, 150, 160)),
    LandCoverClass(95, "Mangroves", (0, 207, 117)),
    LandCoverClass(100, "Moss and lichen", (250, 230, 160)),
)
"""ESA WorldCover v200 legend (codes, names and colours of the product's colour table)."""
WORLDCOVER_TO_6: dict[int, int] = {
    10: 5, 20: 5, 30: 4, 40: 3, 50: 1, 60: 6, 70: 6, 80: 6, 90: 6, 95: 5, 100: 4,
}  # fmt: skip
"""WorldCover classes in gee_fusion's 6-class grouping: built-up -> urban fabrics (WorldCover has no
specialized-areas class), tree cover, shrubland and mangroves -> woody vegetation, grassland and
moss -> grasslands, cropland -> agriculture, the rest -> water, wetlands and open spaces."""


@dataclass(frozen=True)
class ClassTable:
    """The classes a model predicts: index i <-> code ``codes[i]`` named ``names[i]``."""

    scheme: int
    codes: tuple[int, ...]
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]

    @property
    def num_classes(self) -> int:
        """K."""
        return len(self.codes)

    def index_lut(self) -> np.ndarray:
        """uint8 table from MultiSenGE-14 codes to class indices 0..K-1 (255 = no label)."""
        if self.scheme == WORLDCOVER_SCHEME:
            groups = {code: code for code in WORLDCOVER_CODES}
        elif self.scheme == 14:
            groups = {c.code: c.code for c in MULTISENGE_14}
        else:
            groups = _GROUPS[self.scheme]
        grouped = lookup_table(groups)
        lut = np.full(256, NO_LABEL, dtype=np.uint8)
        for i, code in enumerate(self.codes):
            lut[grouped == code] = i
        lut[NO_LABEL] = NO_LABEL
        return lut

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """GDAL colour table of the written codes."""
        return {code: (*color, 255) for code, color in zip(self.codes, self.colors, strict=True)}


_GROUPS = {10: GROUPS_10, 6: GROUPS_6}


def class_table(scheme: int) -> ClassTable:
    """The class table of a grouping of MultiSenGE: 14, 10 or 6 classes (11: ESA WorldCover)."""
    if scheme == WORLDCOVER_SCHEME:
        return ClassTable(
            scheme,
            tuple(c.code for c in WORLDCOVER_CLASSES),
            tuple(c.name for c in WORLDCOVER_CLASSES),
            tuple(c.color for c in WORLDCOVER_CLASSES),
        )
    if scheme == 14:
        return ClassTable(
            14,
            tuple(c.code for c in MULTISENGE_14),
            tuple(c.name for c in MULTISENGE_14),
            tuple(c.color for c in MULTISENGE_14),
        )
    if scheme not in _GROUPS:
        raise DataError(f"Unknown class scheme {scheme}: use 14, 10 or 6 (or 11, ESA WorldCover).")
    names = NAMES_10 if scheme == 10 else NAMES_6
    colors: dict[int, tuple[int, int, int]] = {}
    for c in MULTISENGE_14:  # a group takes the colour of its first member
        colors.setdefault(_GROUPS[scheme][c.code], c.color)
    codes = tuple(sorted(names))
    return ClassTable(scheme, codes, tuple(names[k] for k in codes), tuple(colors[k] for k in codes))


def prior_lut() -> np.ndarray:
    """uint8 table from WorldCover codes to one-hot indices (255 = unknown)."""
    lut = np.full(256, NO_LABEL, dtype=np.uint8)
    for i, code in enumerate(WORLDCOVER_CODES):
        lut[code] = i
    return lut


def nested_groups(fine_groups: Mapping[int, int], coarse_groups: Mapping[int, int]) -> dict[int, int]:
    """Fine group code -> coarse group code, for two groupings of the same base codes.

    With ``classes.GROUPS_10`` and ``classes.GROUPS_6`` this gives the 10 -> 6 grouping.

    Raises:
        DataError: the groupings cover different base codes, or a fine group spans several
            coarse groups (the fine grouping is not nested in the coarse one).
    """
    if set(fine_groups) != set(coarse_groups):
        raise DataError(
            f"The groupings cover different base codes: {sorted(fine_groups)} vs {sorted(coarse_groups)}."
        )
    out: dict[int, int] = {}
    for base, fine in sorted(fine_groups.items()):
        coarse = coarse_groups[base]
        if out.setdefault(fine, coarse) != coarse:
            raise DataError(
                f"Fine group {fine} spans coarse groups {out[fine]} and {coarse} (base code {base}): "
                "the fine grouping is not nested in the coarse one."
            )
    return out


def group_index_map(fine_groups: Mapping[int, int], coarse_groups: Mapping[int, int]) -> tuple[int, ...]:
    """Fine class index -> coarse class index (classes ordered by code), for ``ConfusionMatrix.aggregate``.

    ``group_index_map(GROUPS_10, GROUPS_6)`` is the 10-class to 6-class evaluation of the seed paper.
    """
    codes = nested_groups(fine_groups, coarse_groups)
    coarse_position = {c: i for i, c in enumerate(sorted(set(codes.values())))}
    return tuple(coarse_position[codes[f]] for f in sorted(codes))
