"""Deterministic, tile-independent noise: every value is a pure function of integer world
coordinates (and a salt), so any window of any size yields the same pixel values.

Hashing is a vectorised 64-bit integer mix (splitmix64 finaliser); value noise interpolates
hashed lattice values with a quintic fade; fBm sums octaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_K1 = np.uint64(0x632BE59BD9B4E019)
_K2 = np.uint64(0x8CB92BA72F3D8DD7)
_TO_UNIT = 1.0 / float(2**53)


def salt_of(*parts: int | str) -> int:
    """A 64-bit salt from integers and strings (stable across runs and platforms)."""
    h = np.uint64(0x243F6A8885A308D3)
    for part in parts:
        if isinstance(part, str):
            for ch in part.encode():
                h = _mix(h ^ np.uint64(ch))
        else:
            h = _mix(h ^ np.uint64(int(part) & 0xFFFFFFFFFFFFFFFF))
    return int(h)


def _mix(z: Any) -> Any:
    with np.errstate(over="ignore"):
        if not isinstance(z, np.ndarray):
            z = np.uint64(z + _GOLD)
            z = (z ^ (z >> np.uint64(30))) * _M1
            z = (z ^ (z >> np.uint64(27))) * _M2
            return z ^ (z >> np.uint64(31))
        z = (z + _GOLD).astype(np.uint64, copy=False)  # a new array: the rest works in place
        _finish_mix(z)
        return z


def _finish_mix(z: np.ndarray) -> None:
    """The xor-shift-multiply steps of :func:`_mix`, in place on a uint64 array already offset by
    the golden-ratio constant."""
    t = np.empty_like(z)
    for shift, mult in ((30, _M1), (27, _M2)):
        np.right_shift(z, np.uint64(shift), out=t)
        z ^= t
        z *= mult
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t


def hash2(ix: ArrayLike, iy: ArrayLike, salt: int) -> np.ndarray:
    """A 64-bit hash of integer lattice coordinates (broadcasting)."""
    with np.errstate(over="ignore"):
        a = np.asarray(ix).astype(np.int64).view(np.uint64) * _K1
        b = np.asarray(iy).astype(np.int64).view(np.uint64) * _K2
        return _mix(a ^ b ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF))


def uniform(ix: ArrayLike, iy: ArrayLike, salt: int, dtype: DTypeLike = np.float64) -> np.ndarray:
    """Uniform [0, 1) floats from lattice coordinates: 53 random bits in float64, 24 in float32
    (the same draws, rounded down to float32's precision)."""
    return _to_unit(hash2(ix, iy, salt), dtype)


def _to_unit(h: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """Hashes (uint64, shifted in place) as uniform [0, 1) floats of ``dtype``."""
    if np.dtype(dtype) == np.float32:
        h >>= np.uint64(40)
        return h.astype(np.float32) * np.float32(2.0**-24)
    h >>= np.uint64(11)
    return h.astype(np.float64) * _TO_UNIT


def _box_muller(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals from two uniform arrays (both overwritten; the result is ``u1``)."""
    u1 *= 1 - 1e-12
    u1 += 1e-12
    np.log(u1, out=u1)
    u1 *= -2.0
    np.sqrt(u1, out=u1)
    u2 *= 2.0 * np.pi
    np.cos(u2, out=u2)
    u1 *= u2
    return u1


def normal(ix: ArrayLike, iy: ArrayLike, salt: int, dtype: DTypeLike = np.float64) -> np.ndarray:
    """Standard normal variates (Box-Muller on two hashed uniforms), in ``dtype`` (float32 is
    about twice as fast)."""
    return _box_muller(uniform(ix, iy, salt, dtype), uniform(ix, iy, salt ^ 0x5BD1E995, dtype))


def normals(ix: ArrayLike, iy: ArrayLike, salts: Sequence[int], dtype: DTypeLike = np.float64) -> np.ndarray:
    """``np.stack([normal(ix, iy, salt, dtype) for salt in salts])``, the same values, with every
    step done once on the stacked arrays (a few large numpy calls instead of many small ones)."""
    pairs = [
        *(s & 0xFFFFFFFFFFFFFFFF for s in salts),
        *((s ^ 0x5BD1E995) & 0xFFFFFFFFFFFFFFFF for s in salts),
    ]
    with np.errstate(over="ignore"):
        a = np.asarray(ix).astype(np.int64).view(np.uint64) * _K1
        b = np.asarray(iy).astype(np.int64).view(np.uint64) * _K2
        z = np.bitwise_xor(a ^ b, np.asarray(pairs, dtype=np.uint64).reshape(-1, *([1] * np.ndim(a ^ b))))
        z += _GOLD  # then _mix's steps, in place
        _finish_mix(z)
    u = _to_unit(z, dtype)
    return _box_muller(u[: len(salts)], u[len(salts) :])


def gamma_unit_mean(ix: ArrayLike, iy: ArrayLike, salt: int, shape: float) -> np.ndarray:
    """Gamma variates with mean 1 and the given shape (Wilson-Hilferty transform of a normal).

    For SAR speckle, ``shape`` is the equivalent number of looks (var = 1 / shape).
    """
    z = normal(ix, iy, salt)
    c = 1.0 / (9.0 * shape)
    g = np.maximum(1.0 - c + z * np.sqrt(c), 1e-3) ** 3
    return g


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def value_noise(x: np.ndarray, y: np.ndarray, cell: float, salt: int) -> np.ndarray:
    """Smooth value noise in [0, 1) at coordinates (x, y) with lattice spacing ``cell``.

    ``x`` and ``y`` broadcast. When they are a row vector and a column vector (a north-up
    grid) the lattice is hashed once per node and gathered, which is much faster.
    """
    gx = np.asarray(x, dtype=np.float64) / cell
    gy = np.asarray(y, dtype=np.float64) / cell
    x0, y0 = np.floor(gx), np.floor(gy)
    tx = _fade(gx - x0).astype(np.float32)
    ty = _fade(gy - y0).astype(np.float32)
    ix, iy = x0.astype(np.int64), y0.astype(np.int64)
    separable = gx.ndim == 2 and gy.ndim == 2 and gx.shape[0] == 1 and gy.shape[1] == 1
    if separable:
        lx0, ly0 = int(ix.min()), int(iy.min())
        lx = np.arange(lx0, int(ix.max()) + 2)[None, :]
        ly = np.arange(ly0, int(iy.max()) + 2)[:, None]
        lattice = uniform(lx, ly, salt).astype(np.float32)
        cx, cy = (ix - lx0)[0], (iy - ly0)[:, 0]
        # separable: interpolate lattice rows along x (small), then gather rows along y
        rows = lattice[:, cx] + (lattice[:, cx + 1] - lattice[:, cx]) * tx
        top, bottom = rows[cy], rows[cy + 1]
        return top + (bottom - top) * ty
    else:
        v00 = uniform(ix, iy, salt).astype(np.float32)
        v10 = uniform(ix + 1, iy, salt).astype(np.float32)
        v01 = uniform(ix, iy + 1, salt).astype(np.float32)
        v11 = uniform(ix + 1, iy + 1, salt).astype(np.float32)
    a = v00 + (v10 - v00) * tx
    b = v01 + (v11 - v01) * tx
    return a + (b - a) * ty


def fbm(
    x: np.ndarray, y: np.ndarray, cell: float, salt: int, *, octaves: int = 4, gain: float = 0.5
) -> np.ndarray:
    """Fractal sum of value noise, rescaled to roughly [0, 1] (mean 0.5)."""
    total = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y)), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        total += amp * value_noise(x, y, cell / (2**o), salt + 7919 * o)
        norm += amp
        amp *= gain
    return total / norm
