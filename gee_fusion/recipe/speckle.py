"""Speckle filters for Sentinel-1 GRD on LINEAR power, written with earthengine-api.

Filters (single image): ``boxcar`` (normalised square mean), ``lee`` (Lee 1980, ENL 5),
``lee_sigma`` (Lee et al. 2009: sigma 0.9, ENL 4, 9 x 9 window, point targets kept; the
sigma range is solved numerically so the truncated speckle keeps mean 1),
``gamma_map`` (Lopes et al. 1990, ENL 5, Cu = 1/sqrt(ENL), Cmax = sqrt(2) Cu) and
``refined_lee`` (Lee 1981: 7 x 7 window, edge-aligned sub-window chosen from 3 x 3 block-mean
gradients). Multi-temporal: :func:`multitemporal_filter` (Quegan & Yu 2001) over the images
of ONE relative orbit, and :func:`multitemporal_filter_by_orbit`, which splits a collection by
relative orbit, filters each and merges them back in time order (mixing geometries in one
estimate creates edge artefacts).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import ee
import numpy as np

from gee_fusion.errors import ConfigError

POLARISATIONS = ("VV", "VH")
"""The Sentinel-1 bands speckle filters work on by default."""
Method = Literal["boxcar", "lee", "refined_lee", "lee_sigma", "gamma_map"]
METHODS: tuple[str, ...] = ("boxcar", "lee", "refined_lee", "lee_sigma", "gamma_map")


def _check(kernel_size: int, enl: float) -> int:
    if kernel_size < 3 or kernel_size % 2 == 0 or kernel_size > 31:
        raise ConfigError(f"kernel_size must be an odd number in [3, 31], got {kernel_size}.")
    if not enl > 0:
        raise ConfigError(f"enl must be positive, got {enl}.")
    return (kernel_size - 1) // 2


def _moments(band: ee.Image, radius: int) -> tuple[ee.Image, ee.Image]:
    reducer = ee.Reducer.mean().combine(ee.Reducer.variance(), None, True)
    stats = band.reduceNeighborhood(reducer, ee.Kernel.square(radius, "pixels"))
    return stats.select(0), stats.select(1)


def _boxcar(band: ee.Image, radius: int) -> ee.Image:
    return band.convolve(ee.Kernel.square(radius, "pixels", True))


def _lee(band: ee.Image, radius: int, enl: float) -> ee.Image:
    mean, var = _moments(band, radius)
    eta2 = 1.0 / enl
    var_x = var.subtract(mean.pow(2).multiply(eta2)).divide(1.0 + eta2)
    weight = var_x.divide(var).max(0).min(1)
    return mean.add(weight.multiply(band.subtract(mean)))


def _gamma_map(band: ee.Image, radius: int, enl: float) -> ee.Image:
    mean, var = _moments(band, radius)
    cu = 1.0 / math.sqrt(enl)
    cmax = math.sqrt(2.0) * cu
    ci = var.sqrt().divide(mean)
    alpha = ee.Image(1.0 + cu * cu).divide(ci.pow(2).subtract(cu * cu))
    q = alpha.subtract(enl + 1.0)
    disc = mean.pow(2).multiply(q.pow(2)).add(alpha.multiply(mean).multiply(band).multiply(4.0 * enl))
    map_estimate = mean.multiply(q).add(disc.sqrt()).divide(alpha.multiply(2.0))
    out = band.where(ci.lt(cmax), map_estimate)
    return out.where(ci.lte(cu), mean)


@functools.lru_cache(maxsize=32)
def sigma_range(enl: float, sigma: float) -> tuple[float, float, float]:
    """(I1, I2, xi) of the improved sigma filter (Lee et al. 2009) for L-look intensity with
    mean 1: the interval holding probability ``sigma`` whose truncated mean is still 1 (so the
    filter is unbiased), and the coefficient of variation of speckle truncated to it.

    Speckle is Gamma(L, 1/L); its truncated moments have closed forms through the regularised
    incomplete gamma function P (x^m f_L(x) is proportional to f_{L+m}(x)), and I1 is found by
    bisection, so only ``scipy.special`` is needed (no numerical integration).
    """
    from scipy import special

    k = float(enl)

    def cdf(x: float, shape: float) -> float:
        return float(special.gammainc(shape, x * k))

    def upper(lo: float) -> float:
        return float(special.gammaincinv(k, min(cdf(lo, k) + sigma, 1 - 1e-12))) / k

    def moments(lo: float, hi: float) -> tuple[float, float]:
        mass = cdf(hi, k) - cdf(lo, k)
        mean = (cdf(hi, k + 1) - cdf(lo, k + 1)) / mass
        second = (k + 1) / k * (cdf(hi, k + 2) - cdf(lo, k + 2)) / mass
        return mean, second - mean * mean

    # the truncated mean grows with the lower bound: bisect for mean == 1
    a, b = 0.0, float(special.gammaincinv(k, 1.0 - sigma)) / k * (1 - 1e-6)
    for _ in range(200):
        mid = 0.5 * (a + b)
        if moments(mid, upper(mid))[0] < 1.0:
            a = mid
        else:
            b = mid
        if b - a <= 1e-15 * max(b, 1.0):
            break
    lo = 0.5 * (a + b)
    hi = upper(lo)
    mean, var = moments(lo, hi)
    return float(lo), float(hi), float(np.sqrt(var) / mean)


def _lee_sigma(band: ee.Image, *, enl: float, sigma: float, window: int, target: int, tk: int) -> ee.Image:
    """Improved Lee sigma filter (Lee et al. 2009): point targets kept, a priori mean from a
    3 x 3 MMSE, then an MMSE over the pixels of the window inside the sigma range."""
    i1, i2, xi = sigma_range(enl, sigma)
    name = "v"
    band = band.rename(name)
    # point targets: >= tk of the target window above the image's 98th percentile
    z98 = ee.Number(
        band.reduceRegion(
            reducer=ee.Reducer.percentile([98]),
            geometry=band.geometry(),
            scale=10,
            bestEffort=True,
            maxPixels=10**13,
        ).get(name)
    )
    bright = band.gt(ee.Image.constant(z98))
    n_bright = bright.reduceNeighborhood(
        ee.Reducer.sum(), ee.Kernel.square((target - 1) // 2, "pixels", False)
    )
    point = n_bright.gte(tk)
    # a priori mean: 3 x 3 MMSE with the full speckle variation
    mean3, var3 = _moments(band, 1)
    eta2 = 1.0 / enl
    b3 = var3.subtract(mean3.pow(2).multiply(eta2)).divide(var3.multiply(1.0 + eta2)).max(0).min(1)
    prior = mean3.add(b3.multiply(band.subtract(mean3)))
    lo, hi = prior.multiply(i1), prior.multiply(i2)
    # pixels of the window inside the sigma range
    nb = band.neighborhoodToBands(ee.Kernel.square((window - 1) // 2, "pixels", False))
    inside = nb.gte(lo).And(nb.lte(hi))
    kept = nb.updateMask(inside)
    mean = kept.reduce(ee.Reducer.mean())
    var = kept.reduce(ee.Reducer.variance())
    xi2 = xi * xi
    var_x = var.subtract(mean.pow(2).multiply(xi2)).divide(1.0 + xi2)
    weight = var_x.divide(var).max(0).min(1)
    filtered = mean.add(weight.multiply(band.subtract(mean)))
    return filtered.where(point, band)


def _fixed(weights: list[list[int]]) -> ee.Kernel:
    return ee.Kernel.fixed(len(weights[0]), len(weights), weights, -1, -1, False)


def _refined_lee(band: ee.Image, enl: float) -> ee.Image:
    """Refined Lee on a 7 x 7 window (the window size is fixed by the method)."""
    # 3 x 3 block means on a 7 x 7 window: mean of 3x3 blocks centred 2 px apart
    block = band.reduceNeighborhood(ee.Reducer.mean(), ee.Kernel.square(1, "pixels"))

    def shifted(dx: int, dy: int) -> ee.Image:
        w = [[0] * 5 for _ in range(5)]
        w[2 + dy][2 + dx] = 1
        return block.convolve(_fixed(w))

    m = {(dx, dy): shifted(dx, dy) for dx in (-2, 0, 2) for dy in (-2, 0, 2)}
    # gradients across the four directions (horizontal, vertical, two diagonals)
    grads = [
        m[(2, 0)].subtract(m[(-2, 0)]).abs(),
        m[(0, 2)].subtract(m[(0, -2)]).abs(),
        m[(2, 2)].subtract(m[(-2, -2)]).abs(),
        m[(2, -2)].subtract(m[(-2, 2)]).abs(),
    ]
    best = grads[0]
    direction = ee.Image(0)
    for k in range(1, 4):
        better = grads[k].gt(best)
        direction = direction.where(better, k)
        best = best.max(grads[k])
    # which side of the edge the centre resembles: sign picks one of two half-windows
    sides = [
        m[(2, 0)].subtract(m[(0, 0)]).abs().lt(m[(-2, 0)].subtract(m[(0, 0)]).abs()),
        m[(0, 2)].subtract(m[(0, 0)]).abs().lt(m[(0, -2)].subtract(m[(0, 0)]).abs()),
        m[(2, 2)].subtract(m[(0, 0)]).abs().lt(m[(-2, -2)].subtract(m[(0, 0)]).abs()),
        m[(2, -2)].subtract(m[(0, 0)]).abs().lt(m[(-2, 2)].subtract(m[(0, 0)]).abs()),
    ]
    # start from the whole 7 x 7 window: where the edge direction is unknown (within 3 px of the
    # image border, where the shifted block means are masked) the filter is a plain Lee filter on
    # the in-image neighbourhood, never an unmasked 0
    whole = band.reduceNeighborhood(
        ee.Reducer.mean().combine(ee.Reducer.variance(), None, True), ee.Kernel.square(3, "pixels")
    )
    mean = whole.select(0)
    var = whole.select(1)
    for k, (pos_w, neg_w) in enumerate(_half_windows()):
        for side, weights in ((1, pos_w), (0, neg_w)):
            stats = band.reduceNeighborhood(
                ee.Reducer.mean().combine(ee.Reducer.variance(), None, True), _fixed(weights)
            )
            pick = direction.eq(k).And(sides[k].eq(side))
            mean = mean.where(pick, stats.select(0))
            var = var.where(pick, stats.select(1))
    eta2 = 1.0 / enl
    var_x = var.subtract(mean.pow(2).multiply(eta2)).divide(1.0 + eta2)
    weight = var_x.divide(var).max(0).min(1)
    return mean.add(weight.multiply(band.subtract(mean)))


def _half_windows() -> list[tuple[list[list[int]], list[list[int]]]]:
    """The two 7 x 7 half-windows (centre row/column or diagonal included) per direction."""
    size = 7
    out = []
    for k in range(4):
        pos = [[0] * size for _ in range(size)]
        neg = [[0] * size for _ in range(size)]
        for r in range(size):
            for c in range(size):
                dx, dy = c - 3, r - 3
                if k == 0:  # edge vertical (horizontal gradient): split by x
                    s = dx
                elif k == 1:  # split by y
                    s = dy
                elif k == 2:  # diagonal: split by x + y
                    s = dx + dy
                else:  # anti-diagonal: split by x - y
                    s = dx - dy
                if s >= 0:
                    pos[r][c] = 1
                if s <= 0:
                    neg[r][c] = 1
        out.append((pos, neg))
    return out


def speckle_filter(
    image: ee.Image,
    *,
    method: Method = "refined_lee",
    kernel_size: int = 7,
    enl: float = 5.0,
    bands: tuple[str, ...] | None = None,
    lee_sigma_enl: float = 4.0,
) -> ee.Image:
    """Filter speckle in linear-power bands of a Sentinel-1 image.

    Args:
        image: An S1 GRD image in LINEAR power (``COPERNICUS/S1_GRD_FLOAT`` or ``to_linear``).
        method: ``"boxcar"``, ``"lee"``, ``"refined_lee"`` or ``"gamma_map"``.
        kernel_size: Odd window size (ignored by ``refined_lee``, which is 7 x 7 by design).
        enl: Equivalent number of looks assumed by ``lee``, ``refined_lee`` and ``gamma_map``.
        lee_sigma_enl: ENL of ``lee_sigma`` (sigma 0.9, 9 x 9 window, 3 x 3 target window,
            Tk = 7, 98th-percentile point targets, as in gee_s1_ard).
        bands: The bands to filter (each must exist); others (e.g. ``angle``) are kept unchanged.
            Default: whichever of ``VV`` and ``VH`` the image has (a VV-only scene is filtered
            too; the choice is made server-side, so it costs no round trip).

    Returns:
        ``image`` with the filtered bands replacing the originals (properties kept).
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown speckle filter {method!r}: use one of {list(METHODS)}.")
    radius = _check(kernel_size, enl)
    present = image.bandNames()
    filtered = []
    for name in bands or POLARISATIONS:
        band = image.select(name).toFloat()
        if method == "boxcar":
            out = _boxcar(band, radius)
        elif method == "lee":
            out = _lee(band, radius, enl)
        elif method == "gamma_map":
            out = _gamma_map(band, radius, enl)
        elif method == "lee_sigma":
            out = _lee_sigma(band, enl=lee_sigma_enl, sigma=0.9, window=9, target=3, tk=7)
        else:
            out = _refined_lee(band, enl)
        out = out.rename(name).updateMask(band.mask())
        if bands is None:  # only the polarisations the image has
            out = ee.Image(ee.Algorithms.If(present.contains(name), out, image.select([])))
        filtered.append(out)
    result = ee.Image.cat(filtered)
    return image.addBands(result, None, True)


def multitemporal_filter(
    collection: ee.ImageCollection,
    *,
    method: Method = "boxcar",
    kernel_size: int = 7,
    enl: float = 5.0,
    bands: tuple[str, ...] = POLARISATIONS,
) -> ee.ImageCollection:
    """Quegan & Yu (2001) multi-temporal speckle filter over the images of ONE orbit.

    J_k = E[I_k] / N * sum_i (I_i / E[I_i]), with E[.] the spatial filter ``method``. Call it
    per relative orbit (mixing geometries creates edge artefacts), or use
    :func:`multitemporal_filter_by_orbit`, which does the split for you.
    """
    spatial = collection.map(
        lambda img: speckle_filter(img, method=method, kernel_size=kernel_size, enl=enl, bands=bands)
    )
    ratios = collection.map(
        lambda img: img.select(list(bands)).divide(
            speckle_filter(img, method=method, kernel_size=kernel_size, enl=enl, bands=bands).select(
                list(bands)
            )
        )
    )
    mean_ratio = ratios.mean()
    return spatial.map(lambda img: img.addBands(img.select(list(bands)).multiply(mean_ratio), None, True))


ORBIT_PROPERTY = "relativeOrbitNumber_start"


def multitemporal_filter_by_orbit(
    collection: ee.ImageCollection,
    *,
    method: Method = "boxcar",
    kernel_size: int = 7,
    enl: float = 5.0,
    bands: tuple[str, ...] = POLARISATIONS,
    orbit_property: str = ORBIT_PROPERTY,
) -> ee.ImageCollection:
    """:func:`multitemporal_filter` applied to each relative orbit of ``collection`` separately,
    the results merged and sorted by ``system:time_start``.

    Images of different orbits see the ground from other geometries (incidence, look direction,
    layover), so their ratios must not be averaged together: doing so is what creates the edge
    artefacts reported with mixed-orbit stacks. The split happens server side (no round trip),
    so this also works inside ``map``. Every image must carry ``orbit_property`` (all Sentinel-1
    GRD images do); images without it are left out.

    Args:
        collection: Sentinel-1 images in LINEAR power, of one or several relative orbits.
        method: Spatial filter E[.] of the Quegan & Yu estimate (see :func:`speckle_filter`).
        kernel_size: Odd window size of the spatial filter.
        enl: Equivalent number of looks assumed by the spatial filter.
        bands: The bands to filter; others are kept unchanged.
        orbit_property: The image property that names the orbit.

    Returns:
        The filtered images (properties and ``system:index`` kept), in time order.
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown speckle filter {method!r}: use one of {list(METHODS)}.")
    _check(kernel_size, enl)
    if not bands:
        raise ConfigError("bands must name at least one band to filter, e.g. ('VV', 'VH').")
    orbits = collection.aggregate_array(orbit_property).distinct()

    def add_orbit(orbit: ee.ComputedObject, images: ee.ComputedObject) -> ee.List:
        part = multitemporal_filter(
            collection.filter(ee.Filter.eq(orbit_property, orbit)),
            method=method,
            kernel_size=kernel_size,
            enl=enl,
            bands=bands,
        )
        return ee.List(images).cat(part.toList(part.size()))

    merged = ee.ImageCollection.fromImages(ee.List(orbits.iterate(add_orbit, ee.List([]))))
    return merged.sort("system:time_start")
