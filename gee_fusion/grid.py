"""The pixel grid: a CRS, an affine transform and a size, shared by every part of gee_fusion, and
Earth Engine's limits on the grid of one computePixels request."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine

from gee_fusion.errors import GridError

EE_TRANSFORM_FIELDS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
"""Earth Engine's names of the six affine coefficients (GDAL/rasterio order a, b, c, d, e, f)."""
REQUEST_BYTE_LIMIT = 48 * 2**20
"""Earth Engine's limit on the uncompressed size of one computePixels response (50331648 bytes)."""
MAX_GRID_SIDE = 32768
"""Earth Engine's limit on each side of a computePixels grid."""
MAX_BANDS = 1024
"""Earth Engine's limit on the bands of one computePixels request."""


@dataclass(frozen=True)
class PixelGrid:
    """A pixel grid: CRS, pixel-to-CRS affine transform (6 numbers, GDAL/rasterio order a, b, c,
    d, e, f) and dimensions (width, height).

    The one grid type of gee_fusion: the local engine computes in it (Earth Engine's request
    grid), xee opens collections on it, exports and maps are written on it. Sizes are not
    limited here: a single computePixels request is (32768 px a side, checked where requests
    are made).
    """

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    def __post_init__(self) -> None:
        for side, value in (("width", self.width), ("height", self.height)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise GridError(f"Grid {side} must be a positive number of pixels, got {value!r}.")
        a = Affine(*self.transform)
        if a.a * a.e - a.b * a.d == 0:
            raise GridError(f"Grid transform {self.transform} is singular (zero pixel size).")

    @property
    def affine(self) -> Affine:
        """The transform as an :class:`affine.Affine`."""
        return Affine(*self.transform)

    @property
    def shape(self) -> tuple[int, int]:
        """Array shape (height, width)."""
        return (self.height, self.width)

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid CRS."""
        a = self.affine
        xs, ys = [], []
        for col, row in ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height)):
            x, y = a @ (col, row)
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    def window(self, col: int, row: int, width: int, height: int) -> PixelGrid:
        """The sub-grid of ``width`` x ``height`` pixels whose top-left pixel is (``col``, ``row``)."""
        a, b, c, d, e, f = self.transform
        return PixelGrid(self.crs, (a, b, c + a * col + b * row, d, e, f + d * col + e * row), width, height)

    def padded(self, pad: int) -> PixelGrid:
        """The grid grown by ``pad`` pixels on every side (for neighbourhood operations)."""
        if pad <= 0:
            return self
        a = self.affine @ Affine.translation(-pad, -pad)
        return PixelGrid(
            self.crs, (a.a, a.b, a.c, a.d, a.e, a.f), self.width + 2 * pad, self.height + 2 * pad
        )

    def to_ee(self) -> dict[str, object]:
        """The grid as the ``grid`` object of a computePixels request."""
        return {
            "dimensions": {"width": self.width, "height": self.height},
            "affineTransform": dict(zip(EE_TRANSFORM_FIELDS, self.transform, strict=True)),
            "crsCode": self.crs,
        }
