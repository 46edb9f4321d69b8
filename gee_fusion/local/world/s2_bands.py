"""The 13 reflectance bands of one Sentinel-2 block of the demo world, rendered a few at a time.

From a block's spectra (:class:`~gee_fusion.local.world.surface.Mixture`, with its one-pixel halo)
and the date's green cover, soil wetness, co-registration shift, clouds and haze, each group of
:data:`GROUP` bands goes through the whole chain before the next one starts: composed at the date,
mixed with its neighbours and shifted (:func:`~gee_fusion.local.world.surface.shift_kernel`),
shaded by the cloud shadows, seen through the clouds and the cirrus, hazed, then scaled to DN. A
group's planes (4 x 256 x 258 float32, 1 MiB) stay in the CPU cache from one step to the next, where
the (13, 256, 256) arrays of the whole-block formula did not; and each numpy call is large enough to
run long without the GIL, so that two threads rendering two blocks do not wait on each other at
every call, as they did band by band (64 K-element calls: two threads no faster than one, on 2
cores).

The planes are flat, each row of the block followed by two spare values, so that every tap of the
3 x 3 kernel reads one contiguous run of the halo plane (a 258-wide row shifted by the tap's offset)
instead of 256 strided rows. The spare values are computed and dropped; every pixel gets the same
float32 operations, in the same order, as :func:`~gee_fusion.local.world.surface.compose`,
:func:`~gee_fusion.local.world.surface.mix_neighbours` and the whole-block top of atmosphere, so
the DN are identical to theirs (``tests/test_world_fast_paths.py`` compares them).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gee_fusion.local.world import atmosphere, surface
from gee_fusion.local.world.landcover import INDUSTRIAL, OPEN

CLOUD_SPECTRUM = np.asarray(
    (0.42, 0.44, 0.44, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.38, 0.08, 0.34, 0.24), dtype=np.float32
)[:, None, None]
SHADOW_DEPTH = np.asarray(
    (0.50, 0.55, 0.58, 0.62, 0.66, 0.70, 0.72, 0.74, 0.74, 0.74, 0.0, 0.75, 0.75), dtype=np.float32
)[:, None, None]
"""Fraction of reflectance removed under full shadow (blue less: diffuse skylight)."""

WAVELENGTH_NM = np.asarray(
    (443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190), dtype=np.float32
)[:, None, None]
"""Central wavelength of each band (nm)."""
CIRRUS_BAND = surface.BANDS.index("B10")
"""B10 (1375 nm, water vapour): sees only the high clouds, not the ground."""
_IN_WINDOW = np.asarray([b != "B10" for b in surface.BANDS], dtype=np.float32)[:, None, None]
HAZE_ANGSTROM = 1.2
"""Angstrom exponent of the residual haze (continental aerosol): optical depth ~ wavelength^-1.2."""
HAZE_PATH = (0.2 * (WAVELENGTH_NM / 443.0) ** -HAZE_ANGSTROM * _IN_WINDOW).astype(np.float32)
"""Path reflectance added per unit haze optical depth: 0.2 in B1, 0.029 in B12, none in B10 (the
1375 nm water-vapour band sees only high clouds)."""
HAZE_DIMMING = (0.5 * (WAVELENGTH_NM / 550.0) ** -HAZE_ANGSTROM * _IN_WINDOW).astype(np.float32)
"""Fraction of the surface signal lost per unit haze optical depth (two-way extinction, half of it
refilled by diffuse light): haze lowers contrast."""

BRIGHT_BAND = surface.BANDS.index("B2")
"""Bright surfaces (chalk, metal roofs) are told by their B2 before the haze (:class:`Bands`)."""
VISIBLE = slice(surface.BANDS.index("B2"), surface.BANDS.index("B4") + 1)
"""B2-B4, whose mean tells dark pixels."""
RED, NIR = surface.BANDS.index("B4"), surface.BANDS.index("B8")
GROUP = 4
"""Bands rendered together (measured on 2 cores, 16 blocks of a date: 13.6 ms a block with one thread,
10.5 ms with two; band by band 13.9 and 11.5 ms; the whole block at once 14.6 and 11.1 ms)."""


class Bands(NamedTuple):
    """The reflectance bands of a block at a date.

    Attributes:
        dn: (13, n, n) uint16 DN (10000 x reflectance, rounded, clipped to 1..65535).
        ndvi: (n, n) float32 NDVI of the top-of-atmosphere reflectance.
        dark: (n, n) pixels whose mean B2-B4 reflectance is below 0.03.
        bright: (n, n) float32 1 where an open or industrial pixel's B2 (clouds in, haze out) is
            above 0.15, else 0.
    """

    dn: np.ndarray
    ndvi: np.ndarray
    dark: np.ndarray
    bright: np.ndarray


def _flat(field: np.ndarray, width: int) -> np.ndarray:
    """An (n, n) field in the flat layout: each row followed by ``width - n`` zeros."""
    n = field.shape[0]
    out = np.zeros((n, width), dtype=field.dtype)
    out[:, :n] = field
    return out.reshape(-1)


class _Fields(NamedTuple):
    """A block's atmospheric fields in the flat layout (None: nowhere on the block)."""

    shadow: np.ndarray | None
    opacity: np.ndarray | None
    clear: np.ndarray
    thin: np.ndarray | None
    b10: np.ndarray
    seen: np.ndarray


class _Buffers(NamedTuple):
    """Work arrays of one render, reused from group to group (fresh memory costs its first touch):
    (:data:`GROUP`, side x side) halo planes, (:data:`GROUP`, size) flat planes."""

    plane: np.ndarray
    soil: np.ndarray
    ground: np.ndarray
    tmp: np.ndarray

    @classmethod
    def make(cls, side: int, size: int) -> _Buffers:
        halo, flat = (GROUP, side * side), (GROUP, size)
        # zeros: spares a group may not compute stay finite (they go through the DN scaling)
        return cls(np.empty(halo, np.float32), np.empty(halo, np.float32), np.zeros(flat, np.float32),
                   np.zeros(flat, np.float32))  # fmt: skip


def _render_group(
    mix: surface.Mixture,
    g0: int,
    g1: int,
    fv: np.ndarray,
    bare: np.ndarray | None,
    taps: list[tuple[int, np.float32]],
    shift: tuple[float, float],
    top: np.ndarray,
    f: _Fields,
    label: np.ndarray,
    bright: np.ndarray,
    work: _Buffers,
) -> np.ndarray:
    """Bands ``g0`` to ``g1 - 1`` into ``top`` ((g1 - g0, size), flat); returns ``bright`` (made
    when the group holds :data:`BRIGHT_BAND`)."""
    k, side = g1 - g0, mix.base.shape[1]
    n = side - 2
    run = (n - 1) * side + n
    # the surface at the date (surface.compose)
    plane, ground, tmp = work.plane[:k], work.ground[:k], work.tmp[:k]
    np.multiply(mix.green[g0:g1].reshape(k, -1), fv, out=plane)
    plane += mix.base[g0:g1].reshape(k, -1)
    if bare is not None and mix.soil is not None:
        soil = work.soil[:k]
        np.multiply(mix.soil[g0:g1].reshape(k, -1), bare, out=soil)
        plane += soil
    # mixed with its neighbours and shifted (surface.mix_neighbours)
    if shift == (0.0, 0.0):
        ground.reshape(k, n, side)[:, :, :n] = surface.mix_neighbours(plane.reshape(k, side, side))
    else:
        for j, (at, weight) in enumerate(taps):
            np.multiply(plane[:, at : at + run], weight, out=ground[:, :run] if j == 0 else tmp[:, :run])
            if j:
                ground[:, :run] += tmp[:, :run]
    # under the cloud shadows, then seen through the clouds and the cirrus
    if f.shadow is not None:
        np.multiply(SHADOW_DEPTH[g0:g1, 0], f.shadow, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        ground *= tmp
    if f.opacity is not None:
        np.multiply(ground, f.clear, out=top)
        np.multiply(CLOUD_SPECTRUM[g0:g1, 0], f.opacity, out=tmp)
        top += tmp
    else:
        top[:] = ground
    if f.thin is not None:
        top += f.thin
    if g0 <= CIRRUS_BAND < g1:
        top[CIRRUS_BAND - g0] = f.b10
    if g0 <= BRIGHT_BAND < g1:  # bright surfaces are judged before the haze: the masks do not see it
        over = top[BRIGHT_BAND - g0].reshape(n, side)[:, :n] > 0.15
        bright = (np.isin(label, (OPEN, INDUSTRIAL)) & over).astype(np.float32)
    # the residual haze: path reflectance added, contrast lowered
    np.multiply(HAZE_DIMMING[g0:g1, 0], ground, out=tmp)
    np.subtract(HAZE_PATH[g0:g1, 0], tmp, out=tmp)
    tmp *= f.seen
    top += tmp
    return bright


def render(
    mix: surface.Mixture,
    cover: np.ndarray,
    wet: float,
    shift: tuple[float, float],
    f: atmosphere.CloudFields,
    haze: np.ndarray,
    label: np.ndarray,
) -> Bands:
    """The block's 13 bands at a date, :data:`GROUP` bands at a time (see the module's docstring).

    Args:
        mix: The block's spectra, with a one-pixel halo ((13, n + 2, n + 2)).
        cover: Green cover of the block with its halo ((n + 2, n + 2), :func:`phenology.cover_at`).
        wet: Soil wetness of the date.
        shift: The acquisition's co-registration offset (dx, dy), in pixels.
        f: Clouds, shadows and cirrus of the block ((n, n)).
        haze: Residual-haze optical depth of the block ((n, n)).
        label: Land-cover codes of the block ((n, n)).
    """
    nb, side = mix.base.shape[0], mix.base.shape[1]
    n = side - 2
    size = n * side  # a band's flat plane: n rows of side values, the last two of each spare
    fv = cover * mix.cover_gain
    np.clip(fv, 0.0, 1.0, out=fv)
    bare = None
    if mix.soil is not None:
        bare = ((1.0 - fv) * np.float32(1.0 - 0.3 * wet)).reshape(-1)
    fv = fv.reshape(-1)
    dx, dy = shift
    kernel = surface.shift_kernel(dx, dy).astype(np.float32)
    taps = [(r * side + c, kernel[r, c]) for r in range(3) for c in range(3) if kernel[r, c] != 0.0]
    clear = 1.0 - f.opacity
    fields = _Fields(
        _flat(f.shadow, side) if f.shadow.any() else None,
        _flat(f.opacity, side) if f.opacity.any() else None,
        _flat(clear, side),
        _flat(f.cirrus * np.float32(0.06), side) if f.cirrus.any() else None,
        _flat(0.003 + 0.25 * f.cirrus + 0.06 * f.opacity, side),
        _flat(haze * clear, side),  # the haze under clouds is hidden by them
    )
    bright = np.zeros(0, dtype=np.float32)
    toa = np.empty((nb, size), dtype=np.float32)  # every value written
    work = _Buffers.make(side, size)
    for g0 in range(0, nb, GROUP):
        g1 = min(g0 + GROUP, nb)
        top = toa[g0:g1]
        bright = _render_group(mix, g0, g1, fv, bare, taps, (dx, dy), top, fields, label, bright, work)
    bands = toa.reshape(nb, n, side)[:, :, :n]
    ndvi = (bands[NIR] - bands[RED]) / np.maximum(bands[NIR] + bands[RED], 1e-6)
    dark = bands[VISIBLE].mean(axis=0) < 0.03
    toa *= 10000.0
    np.rint(toa, out=toa)
    np.clip(toa, 1, 65535, out=toa)
    dn = np.empty((nb, n, n), dtype=np.uint16)
    np.copyto(dn, bands, casting="unsafe")
    return Bands(dn, ndvi, dark, bright)
