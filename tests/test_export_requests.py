"""Fetching planned requests: identical pixels with and without injected Earth Engine faults,
retries with capped exponential back-off, splits of heavy tiles, bounded concurrency, typed errors."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator
from io import StringIO
from typing import Any

import ee
import numpy as np
import pytest
from rich.console import Console

from gee_fusion.errors import ConfigError, ExportError, TileFetchError
from gee_fusion.export.plan import plan_requests
from gee_fusion.export.requests import FetchStats, RetryPolicy, TileFetcher, classify, fetch_tiles
from gee_fusion.grid import PixelGrid
from gee_fusion.local import faults as local_faults
from gee_fusion.local.catalog import CATALOG, register_numpy_image
from tests import export_data

CRS = "EPSG:32631"
TRANSFORM = (10.0, 0.0, 400000.0, 0.0, -10.0, 5500000.0)
H, W = 90, 130
BANDS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def image() -> Iterator[ee.Image]:
    rng = np.random.default_rng(5)
    bands = {
        "a": rng.normal(size=(H, W)).astype(np.float32),
        "b": rng.integers(0, 200, (H, W)).astype(np.uint8),
        "c": rng.uniform(size=(H, W)).astype(np.float64),
    }
    register_numpy_image("test/export_src", bands, crs=CRS, transform=TRANSFORM)
    # a neighbourhood operation, so tile edges and splits must see the right halo
    img = ee.Image("test/export_src")
    smooth = img.select("a").focal_mean(2, "square", "pixels").rename("a")
    yield smooth.addBands(img.select(["b", "c"]))
    CATALOG.unregister("test/export_src")


def grid() -> PixelGrid:
    return PixelGrid(CRS, TRANSFORM, W, H)


def assemble(fetcher: TileFetcher, **kw: Any) -> np.ndarray:
    plan = fetcher.plan
    out = np.zeros((H, W), dtype=[("a", "f4"), ("b", "u1"), ("c", "f8")])
    for tile, arr in fetch_tiles(fetcher, plan.tiles(), **kw):
        rows, cols = tile.window
        for name in arr.dtype.names:
            out[name][rows, cols] = arr[name]
    return out


def small_plan() -> Any:
    return plan_requests(grid(), [4, 1, 8], block=(16, 16), byte_limit=16 * 16 * 13 * 4)  # 2 x 2 blocks


def test_plan_fetch_equals_one_request(image: ee.Image) -> None:
    plan = small_plan()
    assert plan.requests == 15  # 3 x 5 tiles of 32 x 32 px
    got = assemble(TileFetcher(image, plan, BANDS))
    request = {"expression": image, "grid": grid().to_ee(), "fileFormat": "NUMPY_NDARRAY"}
    whole = ee.data.computePixels(request)
    for name in BANDS:
        np.testing.assert_array_equal(got[name], whole[name])


def test_faults_change_nothing_but_the_counters(image: ee.Image) -> None:
    plan = small_plan()
    clean = assemble(TileFetcher(image, plan, BANDS))
    with export_data.reconnected(faults="rate=0.3,seed=7"):
        stats = FetchStats()
        fetcher = TileFetcher(image, plan, BANDS, stats=stats, sleep=lambda s: None,
                              policy=RetryPolicy(max_tries=12))  # fmt: skip
        faulty = assemble(fetcher, workers=4)
        injected = local_faults.active().injected  # type: ignore[union-attr]
    assert faulty.tobytes() == clean.tobytes()  # bit for bit
    assert stats.retries > 0 and stats.splits > 0 and stats.tiles_done == plan.requests
    assert sum(injected.values()) == sum(stats.failures.values())
    # every failure was retried or split (none ran out of tries); every split adds one request
    assert sum(injected.values()) == stats.retries + stats.splits
    assert stats.requests == plan.requests + stats.splits + sum(injected.values())


def test_exhausted_retries_name_the_tile_and_the_server_message(image: ee.Image) -> None:
    plan = small_plan()
    with export_data.reconnected(faults="rate=0.99,seed=1,kinds=429"):
        fetcher = TileFetcher(image, plan, BANDS, policy=RetryPolicy(max_tries=3), sleep=lambda s: None)
        with pytest.raises(
            TileFetchError, match=r"Tile #0 rows 0:32 cols 0:32 .*after 3 tries.*Too Many Requests"
        ):
            fetcher.fetch(next(plan.tiles()))


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0)
    rng = random.Random(0)
    for attempt, cap in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0.0 and max(delays) <= cap and max(delays) > 0.8 * cap


def test_errors_are_classified_like_earth_engine_means_them() -> None:
    assert classify(ee.EEException("Too Many Requests: ...")) == "retry"
    assert classify(ee.EEException("An internal error has occurred (HTTP 500).")) == "retry"
    assert classify(ConnectionResetError("reset")) == "retry"
    assert classify(TimeoutError()) == "retry"
    assert classify(ee.EEException("User memory limit exceeded.")) == "split"
    assert classify(ee.EEException("Computation timed out.")) == "split"
    assert (
        classify(
            ee.EEException(
                "Total request size (60000000 bytes) must be less than or equal to 50331648 bytes."
            )
        )
        == "split"
    )
    assert classify(ee.EEException("Image.select: Pattern 'X' did not match any bands.")) == "fatal"


def test_a_bad_band_stops_at_once_with_the_servers_words(image: ee.Image) -> None:
    plan = small_plan()
    fetcher = TileFetcher(image, plan, ["a", "nope", "c"], sleep=lambda s: None)
    with pytest.raises(ExportError, match="nope") as info:
        fetcher.fetch(next(plan.tiles()))
    assert not isinstance(info.value, TileFetchError) and fetcher.stats.requests == 1


def test_concurrency_is_bounded(image: ee.Image, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = small_plan()
    real = ee.data.computePixels
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def counting(params: dict[str, Any]) -> Any:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            return real(params)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(ee.data, "computePixels", counting)
    assemble(TileFetcher(image, plan, BANDS), workers=3)
    assert 1 <= state["max"] <= 3
    with pytest.raises(ConfigError, match=r"1\.\.40"):
        list(fetch_tiles(TileFetcher(image, plan, BANDS), plan.tiles(), workers=41))


def test_fault_settings_are_checked() -> None:
    assert local_faults.Faults.parse("rate=0.2,seed=7").seed == 7
    with pytest.raises(ConfigError, match="Unknown faults setting"):
        local_faults.Faults.parse("rate=0.2,sead=7")
    with pytest.raises(ConfigError, match="kinds"):
        local_faults.Faults.parse("rate=0.2,kinds=429+boom")
    with pytest.raises(ConfigError, match="rate"):
        local_faults.Faults.parse("rate=1.5")


def test_the_progress_bar_shows_tiles_mib_requests_per_second_and_retries(
    image: ee.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = small_plan()
    real, failed = ee.data.computePixels, []

    def once_too_many(params: dict[str, Any]) -> Any:
        if not failed:
            failed.append(params)
            raise ee.EEException("Too Many Requests (HTTP 429)")
        return real(params)

    monkeypatch.setattr(ee.data, "computePixels", once_too_many)
    screen = StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    fetcher = TileFetcher(image, plan, BANDS, sleep=lambda s: None)
    assemble(fetcher, workers=1, progress=True, total=plan.requests, console=console)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # without colours and cursor moves
    frames = re.findall(r"(\d+)/(\d+) tiles +(\d+) MiB +([\d.]+) req/s +(\d+) retries", text)
    assert frames, text
    done, total, mib, rate, retries = frames[-1]  # the last frame drawn
    assert (int(done), int(total), mib, int(retries)) == (plan.requests, plan.requests, "0", 1)
    assert float(rate) > 0
