"""Shared fixtures: an outbound-socket guard, the local engine, tiny seeded test data."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest

# A narrow terminal, whatever runs the suite: CI has none, and console output must not depend on it.
os.environ["COLUMNS"] = "60"
# The demo world's disk cache lives in a temporary folder (read at call time by
# gee_fusion.local.world.disk_cache): the suite never writes into the user's cache folder.
os.environ["GEE_FUSION_WORLD_CACHE_DIR"] = tempfile.mkdtemp(prefix="gee_fusion_world_cache_")
os.environ["GEE_FUSION_WORLD_DISK_CACHE_MB"] = "1024"
os.environ.pop("GEE_FUSION_WORLD_DISK_CACHE", None)
# Blocks are generated in the test's own process (tests count and patch the generation there);
# tests/test_world_processes.py turns the helper processes on.
os.environ["GEE_FUSION_WORLD_PROCESSES"] = "1"

import gee_fusion
from gee_fusion.grid import PixelGrid
from gee_fusion.local import tasks as local_tasks
from gee_fusion.local.catalog import CATALOG, register_numpy_collection, register_numpy_image
from gee_fusion.local.samples import real_data_dir
from tests.socket_guard import install_socket_guard

atexit.register(shutil.rmtree, os.environ["GEE_FUSION_WORLD_CACHE_DIR"], ignore_errors=True)


# -- no outbound network, ever (notebook kernels install the same guard) -------------------
def pytest_configure(config: pytest.Config) -> None:
    install_socket_guard()


# -- engine ---------------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def local_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gee_fusion.Connection]:
    """The local engine, connected for the whole session (batch exports land in a temp folder, also
    after a CLI test connects again with the default folder)."""
    exports = tmp_path_factory.mktemp("ee_exports")
    saved = os.environ.get(local_tasks.ENV_VAR)
    os.environ[local_tasks.ENV_VAR] = str(exports)
    conn = gee_fusion.connect("local", exports_dir=exports)
    yield conn
    gee_fusion.disconnect()
    if saved is None:
        os.environ.pop(local_tasks.ENV_VAR, None)
    else:
        os.environ[local_tasks.ENV_VAR] = saved


@pytest.fixture
def real_dir() -> Path:
    """The real-samples folder, or skip."""
    root = real_data_dir()
    if root is None or not (root / "eolearn_slovenia").is_dir():
        pytest.skip("real samples (../shared/data/real) are absent on this machine")
    return root


# -- tiny synthetic data ----------------------------------------------------------------------
SYN_CRS = "EPSG:32631"
SYN_TRANSFORM = (10.0, 0.0, 360000.0, 0.0, -10.0, 5480000.0)
SYN_SHAPE = (12, 9)  # height, width
SYN_TIMES = [
    "2021-01-05T10:00:00", "2021-01-20T10:00:00", "2021-02-03T10:00:00", "2021-02-18T10:00:00",
    "2021-02-25T10:00:00", "2021-04-10T10:00:00",
]  # fmt: skip


class Synthetic:
    """A seeded 6-date, 3-band (B1 float32, B2 float32, QA uint16) stack with masks."""

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        n, (h, w) = len(SYN_TIMES), SYN_SHAPE
        self.b1 = rng.uniform(-1, 1, (n, h, w)).astype(np.float32)
        self.b2 = rng.uniform(0, 2, (n, h, w)).astype(np.float32)
        self.qa = rng.integers(0, 4096, (n, h, w)).astype(np.uint16)
        self.mask = rng.random((n, h, w)) > 0.3
        self.mask[:, 0, 0] = False  # a pixel never valid
        self.cloud = rng.uniform(0, 100, n).round(1).tolist()
        self.times = SYN_TIMES

    @property
    def grid(self) -> dict[str, Any]:
        """The native grid in computePixels form."""
        return ee_grid(SYN_CRS, SYN_TRANSFORM, SYN_SHAPE[1], SYN_SHAPE[0])


@pytest.fixture(scope="session")
def syn(local_engine: gee_fusion.Connection) -> Synthetic:
    """Register the synthetic stack as ``test/syn`` (collection) and ``test/syn_img`` (image)."""
    data = Synthetic()
    masks = {"B1": data.mask, "B2": data.mask, "QA": np.ones_like(data.mask)}
    register_numpy_collection(
        "test/syn", {"B1": data.b1, "B2": data.b2, "QA": data.qa}, crs=SYN_CRS,
        transform=SYN_TRANSFORM, times=data.times, masks=masks,
        properties=[{"CLOUDY": c, "ORBIT": i % 2, "TAGS": ["a", "b"] if i % 2 else ["c"]}
                    for i, c in enumerate(data.cloud)],
    )  # fmt: skip
    register_numpy_image(
        "test/syn_img", {"B1": data.b1[0], "B2": data.b2[0], "QA": data.qa[0]}, crs=SYN_CRS,
        transform=SYN_TRANSFORM, masks={"B1": data.mask[0], "B2": data.mask[0]},
        properties={"system:time_start": 1609840800000, "NAME": "first"},
    )  # fmt: skip
    yield data  # type: ignore[misc]
    CATALOG.unregister("test/syn")
    CATALOG.unregister("test/syn_img")


def ee_grid(crs: str, transform: Sequence[float], width: int, height: int) -> dict[str, Any]:
    """A computePixels ``grid`` object."""
    a, b, c, d, e, f = (float(v) for v in transform)
    return PixelGrid(crs, (a, b, c, d, e, f), width, height).to_ee()


def world_grid(col0: int, row0: int, width: int, height: int, *, scale: float = 10.0) -> dict[str, Any]:
    """A computePixels grid whose upper-left corner is pixel (col0, row0) of the default demo
    world's 10 m lattice, with ``scale`` m pixels."""
    from gee_fusion.local.world.config import DEFAULT_WORLD

    x0, y1 = DEFAULT_WORLD.origin
    transform = (scale, 0.0, x0 + col0 * 10.0, 0.0, -scale, y1 - row0 * 10.0)
    return ee_grid(DEFAULT_WORLD.crs, transform, width, height)


def pixels(image: ee.Image, grid: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Values and masks of every band of ``image`` in ``grid`` (masks via ``Image.mask``)."""
    names = image.bandNames().getInfo()
    vals = ee.data.computePixels({"expression": image, "fileFormat": "NUMPY_NDARRAY", "grid": grid})
    masks = ee.data.computePixels({"expression": image.mask(), "fileFormat": "NUMPY_NDARRAY", "grid": grid})
    return {n: (np.asarray(vals[n]), np.asarray(masks[n]).astype(bool)) for n in names}
