"""Fetching planned computePixels requests: bounded concurrency, retries with exponential backoff
and jitter, adaptive splitting of tiles the server finds too heavy, and typed errors.

A request that fails with HTTP 429 / 5xx or a connection error or time-out is retried after
``base_delay_s * 2**k`` seconds (capped, with full jitter). A request refused because it is too
heavy ("User memory limit exceeded.", "Computation timed out.", a request-size or grid-size
error) is split in two along its longer side, recursively, and the parts are assembled. Any other
error (a bad band name, an invalid expression) stops the export at once. A request that still
fails after ``max_tries`` raises :class:`~gee_fusion.errors.TileFetchError` naming the tile and
the last server message.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import ee
import numpy as np

from gee_fusion.errors import ConfigError, ExportError, TileFetchError
from gee_fusion.export.plan import RequestPlan, Tile

if TYPE_CHECKING:
    from rich.console import Console

Action = Literal["retry", "split", "fatal"]

_RETRY_WORDS = (
    "too many requests", "429", "quota", "rate limit", "http 500", "http 502", "http 503", "http 504",
    "internal error", "unavailable", "bad gateway", "backend error", "deadline exceeded", "try again",
)  # fmt: skip
_SPLIT_WORDS = (
    "user memory limit exceeded", "computation timed out", "total request size", "pixel grid dimensions",
    "too many pixels", "response size exceeds",
)  # fmt: skip

DEFAULT_WORKERS = 8
"""Requests in flight by default: well inside Earth Engine's 40 concurrent requests per project."""


def classify(exc: BaseException) -> Action:
    """What to do about a failed request: retry it, split it, or stop."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return "retry"
    name = type(exc).__name__
    if name in ("ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "RemoteDisconnected"):
        return "retry"  # requests / http.client errors, without importing them
    text = str(exc).lower()
    if any(word in text for word in _SPLIT_WORDS):
        return "split"
    if any(word in text for word in _RETRY_WORDS):
        return "retry"
    return "fatal"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request.

    Attributes:
        max_tries: Attempts of one request before giving up (retries = max_tries - 1).
        base_delay_s: First back-off delay; doubled at each retry.
        max_delay_s: Cap of one back-off delay.
        max_split_depth: How many times a tile may be halved (2**depth parts at most).
    """

    max_tries: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_split_depth: int = 8

    def __post_init__(self) -> None:
        if self.max_tries < 1 or self.base_delay_s < 0 or self.max_delay_s < 0 or self.max_split_depth < 0:
            raise ConfigError(f"Invalid retry policy {self}: tries >= 1, delays and split depth >= 0.")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Back-off before retry number ``attempt`` (1, 2, ...): full jitter over the capped
        exponential ``base * 2**(attempt - 1)``."""
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


@dataclass
class FetchStats:
    """What fetching cost: requests sent, retries, splits, bytes received, failures by reason."""

    requests: int = 0
    retries: int = 0
    splits: int = 0
    bytes: int = 0
    tiles_done: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to the counters (thread-safe)."""
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def failed(self, message: str) -> None:
        """Count one failure by its first words."""
        with self._lock:
            self.failures[message.split(":")[0].split(".")[0][:60]] += 1

    def as_dict(self) -> dict[str, Any]:
        """The counters, for a manifest."""
        return {
            "requests": self.requests, "retries": self.retries, "splits": self.splits, "bytes": self.bytes,
            "tiles": self.tiles_done, "failures": dict(self.failures),
        }  # fmt: skip


class TileFetcher:
    """Fetches the tiles of a plan from ``image`` (the bands ``band_names``, in plan order)."""

    def __init__(
        self,
        image: ee.Image,
        plan: RequestPlan,
        band_names: Sequence[str],
        *,
        policy: RetryPolicy | None = None,
        stats: FetchStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int = 0,
    ) -> None:
        if len(band_names) != len(plan.band_bytes):
            raise ExportError(f"{len(band_names)} band names for a plan of {len(plan.band_bytes)} bands.")
        self.image, self.plan, self.band_names = image, plan, list(band_names)
        self.policy = policy or RetryPolicy()
        self.stats = stats or FetchStats()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def fetch(self, tile: Tile) -> np.ndarray:
        """The tile's bands as a structured (height, width) array (splitting it if needed).

        Raises:
            TileFetchError: the tile (or a part) failed after every retry, or could not be split.
            ExportError: the server refused the request for a reason retries cannot fix.
        """
        out = self._fetch(tile, depth=0)
        self.stats.add(tiles_done=1)
        return out

    def _fetch(self, tile: Tile, *, depth: int) -> np.ndarray:
        names = self.band_names[tile.band_start : tile.band_stop]
        request = {
            "expression": self.image.select(names),
            "grid": tile.grid(self.plan.grid).to_ee(),
            "fileFormat": "NUMPY_NDARRAY",
        }
        last = ""
        for attempt in range(1, self.policy.max_tries + 1):
            self.stats.add(requests=1)
            try:
                arr = np.asarray(ee.data.computePixels(request))
            except Exception as exc:  # the server's and the network's errors, classified below
                last = str(exc) or type(exc).__name__
                self.stats.failed(last)
                action = classify(exc)
                if action == "fatal":
                    raise ExportError(f"Tile {tile.describe()} was refused: {last}") from exc
                if action == "split":
                    return self._split(tile, depth=depth, reason=last)
                if attempt < self.policy.max_tries:
                    self.stats.add(retries=1)
                    with self._rng_lock:
                        delay = self.policy.delay(attempt, self._rng)
                    self._sleep(delay)
                continue
            self.stats.add(bytes=int(arr.nbytes))
            return arr
        raise TileFetchError(
            f"Tile {tile.describe()} could not be fetched after {self.policy.max_tries} tries; last server "
            f"message: {last!r}. Lower the concurrency (workers), check the project's quota, or retry later: "
            "a rerun resumes where this one stopped."
        )

    def _split(self, tile: Tile, *, depth: int, reason: str) -> np.ndarray:
        if depth >= self.policy.max_split_depth or (tile.height == 1 and tile.width == 1):
            raise TileFetchError(
                f"Tile {tile.describe()} is still too heavy after {depth} splits; last server message: "
                f"{reason!r}. Simplify the recipe for this area, or export it with a batch task."
            )
        self.stats.add(splits=1)
        parts = tile.split()
        arrays = [self._fetch(part, depth=depth + 1) for part in parts]
        out = np.empty((tile.height, tile.width), dtype=arrays[0].dtype)
        for part, arr in zip(parts, arrays, strict=True):
            out[part.row - tile.row : part.row - tile.row + part.height,
                part.col - tile.col : part.col - tile.col + part.width] = arr  # fmt: skip
        return out


def fetch_tiles(
    fetcher: TileFetcher,
    tiles: Iterable[Tile],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: bool = False,
    total: int | None = None,
    console: Console | None = None,
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Fetch ``tiles`` on ``workers`` threads, yielding ``(tile, array)`` as they finish.

    At most ``workers`` tiles are in flight or waiting to be consumed, so memory stays
    bounded whatever the number of tiles. The first error cancels what has not started and is
    raised. A progress bar on stderr (or ``console``) shows tiles, MiB, requests/s, retries and the
    time left.

    Raises:
        ConfigError: ``workers`` is not in 1..40.
        TileFetchError, ExportError: a tile could not be fetched (see :class:`TileFetcher`).
    """
    if not 1 <= workers <= 40:
        raise ConfigError(
            f"workers must be 1..40 (Earth Engine allows 40 concurrent requests), got {workers}."
        )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    stats, start = fetcher.stats, time.perf_counter()
    columns = (
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("tiles  {task.fields[mib]:.0f} MiB  {task.fields[rate]:.1f} req/s"),
        TextColumn("{task.fields[retries]} retries"),
        TimeRemainingColumn(),
    )  # fmt: skip
    pending: set[Future[tuple[Tile, np.ndarray]]] = set()
    source = iter(tiles)

    def submit(pool: ThreadPoolExecutor) -> bool:
        tile = next(source, None)
        if tile is None:
            return False
        pending.add(pool.submit(lambda t: (t, fetcher.fetch(t)), tile))
        return True

    with Progress(*columns, transient=True, disable=not progress, console=console) as bar:
        task = bar.add_task("computePixels", total=total, mib=0.0, rate=0.0, retries=0)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                while len(pending) < workers and submit(pool):
                    pass
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        pending.discard(future)
                        tile, arr = future.result()
                        elapsed = max(time.perf_counter() - start, 1e-9)
                        bar.update(task, advance=1, mib=stats.bytes / 2**20, rate=stats.requests / elapsed,
                                   retries=stats.retries)  # fmt: skip
                        yield tile, arr
                        submit(pool)
            finally:
                for future in pending:
                    future.cancel()
