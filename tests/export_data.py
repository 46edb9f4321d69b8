"""A small synthetic source for export tests, registered the same way in-process and in a
subprocess (the resume test kills one), and a way to reconnect the local engine for one test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import ee
import numpy as np
import pytest

import gee_fusion
from gee_fusion.grid import PixelGrid
from gee_fusion.local import faults as local_faults
from gee_fusion.local import tasks as local_tasks
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


def request_key(params: Mapping[str, Any]) -> str:
    """A computePixels request's grid as ``x0,y1,width,height`` (which tile it asks for)."""
    grid = params["grid"]
    origin, size = grid["affineTransform"], grid["dimensions"]
    return f"{origin['translateX']},{origin['translateY']},{size['width']},{size['height']}"


@contextlib.contextmanager
def reconnected(**options: Any) -> Iterator[gee_fusion.Connection]:
    """The local engine connected anew with ``options`` (e.g. ``faults``) for the block; afterwards
    the session's connection as it was (same exports folder and faults, whatever the environment
    says then), with the source registered again."""
    folder = local_tasks.exports_dir()
    before = local_faults.active()
    try:
        connection = gee_fusion.connect("local", **options)
        register()
        yield connection
    finally:
        with pytest.MonkeyPatch.context() as env:
            env.delenv(local_faults.ENV_VAR, raising=False)  # a test's variable is not the session's
            gee_fusion.connect("local", exports_dir=folder, faults=before.faults if before else None)
        register()
