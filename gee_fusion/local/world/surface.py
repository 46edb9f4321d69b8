"""Surface reflectance of the demo world (Sentinel-2 bands, BOA, 0..1).

Each pixel is a linear mixture of endmember spectra: green vegetation (its seasonal cover
from :mod:`phenology`) over a class-specific background (soil that darkens when wet, dry
vegetation, litter, roofs, asphalt, chalk, water). Parcels and pixels carry multiplicative
variability; a 3 x 3 blend with the neighbours makes mixed pixels at class edges, and the same
pass resamples an acquisition at its sub-pixel co-registration offset (:func:`shift_kernel`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    NETWORK,
    OPEN,
    ORCHARD,
    SPARSE,
    VINEYARD,
    WATER,
    WETLAND,
    LandCover,
)

BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
"""Sentinel-2 MSI bands in Earth Engine's naming and order."""

SCALE_M = {
    "B1": 60,
    "B2": 10,
    "B3": 10,
    "B4": 10,
    "B5": 20,
    "B6": 20,
    "B7": 20,
    "B8": 10,
    "B8A": 20,
    "B9": 60,
    "B10": 60,
    "B11": 20,
    "B12": 20,
}
"""Native resolution of each band (metres)."""

#                     B1     B2     B3     B4     B5     B6     B7     B8     B8A    B9     B10    B11    B12
ENDMEMBERS: dict[str, tuple[float, ...]] = {
    "green": (0.025, 0.035, 0.070, 0.035, 0.110, 0.320, 0.400, 0.440, 0.450, 0.440, 0.004, 0.210, 0.100),
    "canopy": (0.020, 0.025, 0.050, 0.025, 0.080, 0.260, 0.330, 0.360, 0.370, 0.360, 0.003, 0.160, 0.070),
    "dry": (0.050, 0.065, 0.095, 0.140, 0.170, 0.200, 0.220, 0.240, 0.250, 0.250, 0.005, 0.330, 0.260),
    "litter": (0.035, 0.040, 0.060, 0.080, 0.110, 0.150, 0.170, 0.190, 0.200, 0.200, 0.004, 0.250, 0.180),
    "soil": (0.060, 0.075, 0.105, 0.160, 0.180, 0.200, 0.210, 0.220, 0.240, 0.240, 0.005, 0.330, 0.290),
    "roof": (0.080, 0.090, 0.100, 0.120, 0.140, 0.150, 0.160, 0.170, 0.180, 0.180, 0.005, 0.210, 0.190),
    "bright": (0.150, 0.170, 0.190, 0.210, 0.230, 0.240, 0.250, 0.260, 0.270, 0.270, 0.006, 0.290, 0.260),
    "asphalt": (0.050, 0.055, 0.065, 0.075, 0.085, 0.090, 0.095, 0.100, 0.105, 0.105, 0.003, 0.120, 0.110),
    "water": (0.045, 0.040, 0.045, 0.030, 0.022, 0.015, 0.012, 0.010, 0.009, 0.006, 0.002, 0.004, 0.003),
    "chalk": (0.160, 0.190, 0.220, 0.250, 0.270, 0.280, 0.290, 0.300, 0.310, 0.310, 0.007, 0.330, 0.290),
}


# Within-class variability, matched to the real Berlin L1C scene with its OSM land use
# (benchmarks/world_realism.py, docs/demo_world.md "Realism"):
PARCEL_GAIN = 0.5
"""Width of the uniform per-object brightness gain (+-22 %): fields, roofs and stands differ."""
PARCEL_TILT = 0.4
"""Width of the uniform per-object spectral tilt (visible vs NIR/SWIR, +-15 %): crop, soil and roof kinds."""
PARCEL_COVER = 0.60
"""Width of the uniform per-parcel green-cover gain of fields and grass (sowing date, stage, grazing)."""
TEXTURE = 0.22
"""Amplitude of within-object texture (fBm at ~40 m: soil patches, tree crowns, roof and yard mosaics)."""
PIXEL_NOISE = 0.05
"""Per-pixel multiplicative noise (sub-pixel heterogeneity at 10 m)."""
IMPERVIOUS_JITTER = 0.5
"""Per-pixel spread of the sealed fraction in built-up classes (buildings, yards and gardens mix
differently in each 10 m pixel)."""


def _em(name: str) -> np.ndarray:
    return np.asarray(ENDMEMBERS[name], dtype=np.float32)


@dataclass(frozen=True)
class Mixture:
    """The date-independent part of a window's surface reflectance (before neighbour mixing).

    Every pixel is a linear mixture whose only date-dependent inputs are its green cover ``fv``
    and the soil brightness ``s = 1 - 0.3 x wetness``, so its reflectance is
    ``base + fv x green + s x (1 - fv) x soil`` with per-pixel spectra that fold in the class
    endmembers, the sealed fraction, turbidity, and the object and pixel variability. They are
    computed once per block and shared by every acquisition (:func:`compose`).

    Attributes:
        base: (13, h, w) float32 reflectance of the bare background without soil.
        green: (13, h, w) float32 change per unit green cover.
        soil: (13, h, w) float32 soil share (None when the window has no exposed soil).
        cover_gain: (h, w) float32 per-parcel gain of the green cover (1 outside fields and grass).
    """

    base: np.ndarray
    green: np.ndarray
    soil: np.ndarray | None
    cover_gain: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held by the spectra."""
        arrays = (self.base, self.green, self.soil, self.cover_gain)
        return sum(a.nbytes for a in arrays if a is not None)


# rows of the per-class spectra: background without soil, green vegetation, soil share
_DRY, _GREEN_ROW, _ARABLE, _TENDED, _WOODS, _WET, _WATER, _OPEN, _URBAN, _SITE = range(10)
_GROUP_OF: dict[int, int] = {
    ARABLE: _ARABLE, ORCHARD: _TENDED, VINEYARD: _TENDED, FOREST: _WOODS, GROVE: _WOODS,
    WETLAND: _WET, WATER: _WATER, OPEN: _OPEN, DENSE: _URBAN, SPARSE: _URBAN, INDUSTRIAL: _URBAN,
    NETWORK: _URBAN,
}  # fmt: skip
"""Spectral group of each class (the others, grass and urban green, take the default :data:`_DRY`)."""


def _group_spectra() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(background, vegetation, soil) spectra of each spectral group, (10, 13) float32 each; the
    built-up group's are per pixel (:func:`_urban_spectra`)."""
    bg = np.zeros((10, len(BANDS)), dtype=np.float32)
    veg = np.zeros_like(bg)
    soil = np.zeros_like(bg)
    bg[:] = _em("dry")
    veg[:] = _em("green")
    bg[_ARABLE], soil[_ARABLE] = 0.45 * _em("dry"), 0.55 * _em("soil")
    bg[_TENDED], soil[_TENDED] = 0.5 * _em("dry"), 0.5 * _em("soil")
    bg[_WOODS], veg[_WOODS] = _em("litter"), _em("canopy")
    bg[_WET], soil[_WET] = 0.5 * _em("water"), 0.5 * np.float32(0.7) * _em("soil")
    # water, chalk and construction sites show no vegetation: their green spectrum is their background
    bg[_WATER] = veg[_WATER] = _em("water")
    bg[_OPEN] = veg[_OPEN] = _em("chalk")
    bg[_SITE] = veg[_SITE] = 0.2 * _em("dry") + 0.2 * _em("bright")
    soil[_SITE] = 0.6 * _em("soil")
    return bg, veg, soil


def _urban_spectra(
    cfg: WorldConfig, lc: LandCover, sel: np.ndarray, ix: np.ndarray, iy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(background, vegetation) spectra (13, n), float32, of the built-up pixels ``sel``: roofs,
    bright industrial roofs and asphalt over the sealed fraction, gardens (green over dry) elsewhere."""
    label = lc.label[sel]
    jitter = IMPERVIOUS_JITTER * (noise.uniform(ix, iy, noise.salt_of(cfg.seed, "imperv")) - 0.5)
    jitter = np.broadcast_to(jitter, lc.label.shape)[sel]
    imperv = lc.impervious[sel]
    imp = np.clip(imperv + jitter * (imperv > 0), 0.0, 1.0).astype(np.float32)
    kind = noise.uniform(lc.parcel[sel].astype(np.int64), 3, noise.salt_of(cfg.seed, "roof"), np.float32)
    kind[label == INDUSTRIAL] = -1.0  # bright roofs: (0.5 + 0.5 k) roof + (0.5 - 0.5 k) bright at k = -1
    em = {name: _em(name)[:, None] for name in ("roof", "bright", "asphalt", "green", "dry")}
    roofs = (0.5 * (em["roof"] + em["bright"])) + (0.5 * (em["roof"] - em["bright"])) * kind
    sealed = 0.75 * roofs + 0.25 * em["asphalt"]
    sealed[:, label == NETWORK] = em["asphalt"]
    bg = imp * (sealed - em["dry"]) + em["dry"]
    return bg, bg + (1 - imp) * (em["green"] - em["dry"])


def _per_pixel(rows: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(13, h, w) spectra of each pixel's group from the (groups, 13) table ``rows``."""
    return np.ascontiguousarray(rows.T).take(group.ravel(), axis=1).reshape(len(BANDS), *group.shape)


def mixture(
    cfg: WorldConfig, lc: LandCover, ix: np.ndarray, iy: np.ndarray, *, site: np.ndarray | None = None
) -> Mixture:
    """The date-independent spectra of a window (see :class:`Mixture`).

    Args:
        cfg: The world.
        lc: Land cover of the window.
        ix: Lattice column indices (row vector), for per-pixel variability.
        iy: Lattice row indices (column vector).
        site: Construction sites (bare soil, rubble and concrete rather than a quarry's chalk).
    """
    label = lc.label
    shape = label.shape
    p = lc.parcel.astype(np.int64)
    lut = np.full(256, _DRY, dtype=np.intp)
    for code, row in _GROUP_OF.items():
        lut[code] = row
    group = lut[label]
    if site is not None:
        group[site] = _SITE
    bg_rows, veg_rows, soil_rows = _group_spectra()
    bg, veg = _per_pixel(bg_rows, group), _per_pixel(veg_rows, group)  # (13, h, w)
    urban = group == _URBAN
    if urban.any():
        bg[:, urban], veg[:, urban] = _urban_spectra(cfg, lc, urban, ix, iy)
    water = label == WATER
    if water.any():
        t = noise.fbm(ix * 10.0, iy * 10.0, 900.0, noise.salt_of(cfg.seed, "turbidity"), octaves=2)
        boost = np.broadcast_to(0.6 + 0.8 * t, shape)[water].astype(np.float32)
        bg[1:5, water] *= boost[None]
        veg[1:5, water] *= boost[None]

    # variability: per object (gain and spectral tilt), within-object texture, per pixel
    parcel_gain = 1.0 + PARCEL_GAIN * (noise.uniform(p, 5, noise.salt_of(cfg.seed, "pgain")) - 0.5)
    texture = (
        1.0
        + TEXTURE
        * (noise.fbm(ix * 10.0, iy * 10.0, 40.0, noise.salt_of(cfg.seed, "texture"), octaves=2) - 0.5)
        * 2.0
    )
    pixel_gain = 1.0 + PIXEL_NOISE * noise.normal(ix, iy, noise.salt_of(cfg.seed, "pxgain"))
    gain = (parcel_gain * texture * pixel_gain).astype(np.float32)
    gain[water] = 1.0 + (gain[water] - 1.0) * 0.3
    tilt = PARCEL_TILT * (noise.uniform(p, 7, noise.salt_of(cfg.seed, "ptilt")) - 0.5)
    slope = np.linspace(-1.0, 1.0, len(BANDS), dtype=np.float32)[:, None, None]
    scale = (1.0 + slope * np.where(water, 0.0, tilt).astype(np.float32)[None]) * gain[None]
    veg -= bg
    veg *= scale
    bg *= scale
    soil = None
    has_soil: np.ndarray = np.any(soil_rows != 0.0, axis=1)
    if has_soil[group].any():
        soil = _per_pixel(soil_rows, group)
        soil *= scale
    tended = np.isin(label, (ARABLE, ORCHARD, VINEYARD, GRASS))
    cover_gain = 1.0 + PARCEL_COVER * (noise.uniform(p, 11, noise.salt_of(cfg.seed, "pcover")) - 0.5)
    return Mixture(bg, veg, soil, np.where(tended, cover_gain, 1.0).astype(np.float32))


def compose(mix: Mixture, cover: np.ndarray, wet: float) -> np.ndarray:
    """(13, h, w) float32 surface reflectance of a mixture at a date (before neighbour mixing).

    Args:
        mix: The window's spectra (:func:`mixture`).
        cover: Green-vegetation fraction of each pixel (0..1, :func:`phenology.green_cover`; 0 on
            water, chalk and sites).
        wet: Soil wetness 0..1 of the date.
    """
    fv = cover * mix.cover_gain
    np.clip(fv, 0.0, 1.0, out=fv)
    refl = mix.green * fv[None]
    refl += mix.base
    if mix.soil is not None:
        s = np.float32(1.0 - 0.3 * wet)
        bare = (1.0 - fv) * s
        refl += mix.soil * bare[None]
    return refl


def reflectance(
    cfg: WorldConfig,
    lc: LandCover,
    cover: np.ndarray,
    wet: float,
    ix: np.ndarray,
    iy: np.ndarray,
    *,
    site: np.ndarray | None = None,
) -> np.ndarray:
    """(13, h, w) float32 surface reflectance before neighbour mixing.

    Args:
        cfg: The world.
        lc: Land cover of the window.
        cover: Green-vegetation fraction of each pixel (0..1).
        wet: Soil wetness 0..1 of the date.
        ix: Lattice column indices (row vector), for per-pixel variability.
        iy: Lattice row indices (column vector).
        site: Construction sites (bare soil, rubble and concrete rather than a quarry's chalk).
    """
    return compose(mixture(cfg, lc, ix, iy, site=site), cover, wet)


NEIGHBOUR_WEIGHTS = (0.6, 0.1)
"""Weights of a pixel and of each of its 4 neighbours in the edge mixing (a stand-in for the PSF)."""

SHIFT_MAX = 1.0
"""Largest sub-pixel shift (pixels, per axis) :func:`mix_neighbours` can apply within the 3 x 3 kernel."""


def shift_kernel(dx: float, dy: float) -> np.ndarray:
    """The 3 x 3 kernel of the neighbour mixing followed by a bilinear shift by (dx, dy) pixels.

    The 4-neighbour mixing kernel is convolved with the bilinear interpolation kernel that samples
    at ``(col + dx, row + dy)``; the taps that fall two pixels out (weight 0.1 x shift) fold onto
    the adjacent ones so the kernel fits the one-pixel halo. The image then correlates best with
    the unshifted one at (dx, dy); the kernel's centroid sits at 0.9 x (dx, dy).

    Args:
        dx: Shift along columns (pixels, positive: each pixel shows the ground further east).
        dy: Shift along rows (pixels, positive: further south). Both within +-:data:`SHIFT_MAX`.

    Returns:
        (3, 3) float64 weights summing to 1, indexed [row offset + 1, column offset + 1].
    """
    centre, side = NEIGHBOUR_WEIGHTS
    plus = np.zeros((5, 5))
    plus[2, 2] = centre
    plus[1, 2] = plus[3, 2] = plus[2, 1] = plus[2, 3] = side
    out = np.zeros((3, 3))
    fx, fy = float(np.clip(dx, -SHIFT_MAX, SHIFT_MAX)), float(np.clip(dy, -SHIFT_MAX, SHIFT_MAX))
    taps_x = ((0, 1.0 - abs(fx)), (int(np.sign(fx)), abs(fx)))
    taps_y = ((0, 1.0 - abs(fy)), (int(np.sign(fy)), abs(fy)))
    for oy, wy in taps_y:
        for ox, wx in taps_x:
            if wx * wy == 0.0:
                continue
            for r in range(-1, 2):
                for c in range(-1, 2):
                    w = plus[r + 2, c + 2] * wx * wy
                    if w:
                        rr, cc = min(max(r + oy, -1), 1), min(max(c + ox, -1), 1)
                        out[rr + 1, cc + 1] += w
    return out


def mix_neighbours(refl: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """Blend each pixel with its 4 neighbours (weights 0.6 / 0.1): mixed pixels at edges; with
    (dx, dy), also resample the result bilinearly at ``(col + dx, row + dy)`` (a sub-pixel
    co-registration offset), in the same 3 x 3 pass (:func:`shift_kernel`).

    ``refl`` carries a one-pixel halo, which the result drops.
    """
    if dx == 0.0 and dy == 0.0:
        centre, side = NEIGHBOUR_WEIGHTS
        return (
            centre * refl[:, 1:-1, 1:-1]
            + side * (refl[:, :-2, 1:-1] + refl[:, 2:, 1:-1] + refl[:, 1:-1, :-2] + refl[:, 1:-1, 2:])
        ).astype(np.float32)
    kernel = shift_kernel(dx, dy).astype(np.float32)
    h, w = refl.shape[1] - 2, refl.shape[2] - 2
    out = np.empty((refl.shape[0], h, w), dtype=np.float32)
    tmp = np.empty_like(out)
    first = True
    for r in range(3):
        for c in range(3):
            if kernel[r, c] != 0.0:
                np.multiply(refl[:, r : r + h, c : c + w], kernel[r, c], out=out if first else tmp)
                if not first:
                    out += tmp
                first = False
    return out
