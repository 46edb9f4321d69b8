"""``Image.unmix``: linear spectral unmixing of every pixel against endmember spectra.

Each pixel's band values ``y`` are modelled as ``E @ f`` (``E``: bands x endmembers); the output has
one band per endmember, ``band_0``, ``band_1``... Unconstrained: least squares. ``sumToOne``: the
fractions are constrained to sum to 1 (solved exactly through the constrained normal equations).
``nonNegative``: non-negative least squares per pixel (scipy's NNLS; with ``sumToOne`` the sum is
enforced by a heavily weighted extra equation, as usual for fully constrained unmixing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.image import Band, FuncNode, Image, Pixels
from gee_fusion.local.registry import algorithm

_SUM_WEIGHT = 1e3  # weight of the sum-to-one row in the non-negative case


def unmix_pixels(
    y: np.ndarray, endmembers: np.ndarray, *, sum_to_one: bool, non_negative: bool
) -> np.ndarray:
    """Fractions (n, k) of pixels ``y`` (n, bands) for ``endmembers`` (k, bands)."""
    e = endmembers.T  # bands x k
    if non_negative:
        from scipy.optimize import nnls

        a, rhs = e, y
        if sum_to_one:
            a = np.vstack([e, _SUM_WEIGHT * np.ones((1, e.shape[1]))])
            rhs = np.hstack([y, np.full((len(y), 1), _SUM_WEIGHT)])
        return np.stack([nnls(a, row)[0] for row in rhs]) if len(rhs) else np.zeros((0, e.shape[1]))
    pinv = np.linalg.pinv(e)
    f = y @ pinv.T
    if sum_to_one:
        gram_inv = np.linalg.pinv(e.T @ e)
        ones = np.ones(e.shape[1])
        correction = (1.0 - f.sum(axis=1)) / (ones @ gram_inv @ ones)
        f = f + correction[:, None] * (gram_inv @ ones)[None, :]
    return f


@algorithm("Image.unmix")
def image_unmix(image: Any, endmembers: list[list[float]], sumToOne: bool = False,
                nonNegative: bool = False) -> Image:  # fmt: skip
    """Fractions of each endmember per pixel (see the module doc); masked where any band is."""
    img = as_image(image)
    ends = np.asarray(endmembers, dtype=np.float64)
    if ends.ndim != 2 or ends.shape[1] != len(img.bands):
        raise EngineError(
            f"Image.unmix: each endmember needs one value per band ({len(img.bands)} bands), "
            f"got endmembers of shape {list(ends.shape)}."
        )
    nodes = [b.node for b in img.bands]

    def solve(*pxs: Pixels) -> np.ndarray:
        y = np.stack([np.asarray(v, dtype=np.float64) for v, _ in pxs], axis=-1)
        flat = unmix_pixels(y.reshape(-1, y.shape[-1]), ends, sum_to_one=bool(sumToOne),
                            non_negative=bool(nonNegative))  # fmt: skip
        return flat.reshape((*y.shape[:-1], len(ends)))

    shared = FuncNode(
        lambda *pxs: (solve(*pxs), np.logical_and.reduce([np.asarray(m) for _, m in pxs])), nodes
    )

    def pick(i: int) -> FuncNode:
        return FuncNode(lambda px: (np.asarray(px[0])[..., i], px[1]), [shared])

    first = img.bands[0]
    return Image(tuple(Band(f"band_{i}", np.dtype(np.float64), pick(i), first.projection, first.dimensions)
                       for i in range(len(ends))))  # fmt: skip
