"""A small synthetic source for export tests, registered the same way in-process and in a
subprocess (the resume test kills one)."""

from __future__ import annotations

import ee
import numpy as np

from gee_fusion.grid import PixelGrid
from gee_fusion.local.catalog import register_numpy_image

ASSET = "test/export_image_src"
CRS = "EPSG:32631"
TRANSFORM = (10.0, 0.0, 400000.0, 0.0, -10.0, 5500000.0)
H, W = 100, 140


def register() -> None:
    """Register the source (idempotent: same arrays every time)."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(H, W)).astype(np.float32)
    b = rng.uniform(0, 1, size=(H, W)).astype(np.float32)
    mask = np.ones((H, W), bool)
    mask[10:20, 30:70] = False  # a masked patch
    register_numpy_image(ASSET, {"a": a, "b": b}, crs=CRS, transform=TRANSFORM, masks={"a": mask, "b": mask})


def image() -> ee.Image:
    """A neighbourhood operation on the source, so tile edges must see their halo."""
    src = ee.Image(ASSET)
    return src.select("a").focal_mean(1, "square", "pixels").rename("a").addBands(src.select("b").multiply(2))


def grid() -> PixelGrid:
    return PixelGrid(CRS, TRANSFORM, W, H)
