"""Fault injection: the local engine failing a seeded fraction of calls the way Earth Engine does.

``connect("local", faults="rate=0.2,seed=7")`` (or ``GEE_FUSION_LOCAL_FAULTS=rate=0.2,seed=7`` in
the environment) makes that share of ``computePixels`` calls raise ``ee.EEException`` with Earth
Engine's own messages: HTTP 429 "Too Many Requests", 500 and 503 server errors, "Computation timed
out." and "User memory limit exceeded.". Exporters must retry, back off and split through them
and still produce the output of a fault-free run. ``calls=all`` also fails ``computeValue``
(``getInfo``) calls; ``kinds=429+timeout`` restricts the failures to some kinds.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ee
import numpy as np

from gee_fusion.errors import ConfigError

ENV_VAR = "GEE_FUSION_LOCAL_FAULTS"

MESSAGES: dict[str, str] = {
    "429": "Too Many Requests: the request rate or concurrency limit of the project was exceeded (HTTP 429).",
    "500": "An internal error has occurred (HTTP 500).",
    "503": "The service is currently unavailable (HTTP 503).",
    "timeout": "Computation timed out.",
    "memory": "User memory limit exceeded.",
}
"""The failures, by kind, with the messages Earth Engine sends."""

CALLS = {"pixels": ("computePixels",), "all": ("computePixels", "computeValue")}


@dataclass(frozen=True)
class Faults:
    """Which calls fail, how often and how (a seeded, reproducible sequence)."""

    rate: float = 0.0
    seed: int = 0
    calls: str = "pixels"
    kinds: tuple[str, ...] = tuple(MESSAGES)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ConfigError(f"faults rate must be in [0, 1), got {self.rate}.")
        if self.calls not in CALLS:
            raise ConfigError(f"faults calls must be one of {sorted(CALLS)}, got {self.calls!r}.")
        unknown = [k for k in self.kinds if k not in MESSAGES]
        if unknown or not self.kinds:
            raise ConfigError(f"faults kinds must be some of {'+'.join(MESSAGES)}, got {list(self.kinds)}.")

    @classmethod
    def parse(cls, text: str) -> Faults:
        """``rate=0.2,seed=7[,calls=pixels|all][,kinds=429+500+503+timeout+memory]``.

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            try:
                if key == "rate":
                    values["rate"] = float(value)
                elif key == "seed":
                    values["seed"] = int(value)
                elif key == "calls":
                    values["calls"] = value
                elif key == "kinds":
                    values["kinds"] = tuple(value.split("+"))
                else:
                    raise ConfigError(
                        f"Unknown faults setting {key!r} in {text!r}: use rate, seed, calls, kinds."
                    )
            except ValueError as exc:
                raise ConfigError(f"Bad faults setting {part!r} in {text!r}: {exc}") from exc
        return cls(**values)


class FaultInjector:
    """Wraps ``ee.data`` functions so that a seeded share of calls raise Earth Engine's errors."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = np.random.default_rng(faults.seed)
        self._lock = threading.Lock()
        self.calls = 0
        self.injected: Counter[str] = Counter()

    def _draw(self) -> str | None:
        with self._lock:
            self.calls += 1
            fail = self._rng.random() < self.faults.rate
            kind = self.faults.kinds[int(self._rng.integers(len(self.faults.kinds)))]
            if fail:
                self.injected[kind] += 1
        return kind if fail else None

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, failing as configured when ``name`` is one of the faulty calls."""
        if self.faults.rate == 0.0 or name not in CALLS[self.faults.calls]:
            return fn

        def faulty(*args: Any, **kwargs: Any) -> Any:
            kind = self._draw()
            if kind is not None:
                raise ee.EEException(MESSAGES[kind])
            return fn(*args, **kwargs)

        return faulty


_active: FaultInjector | None = None


def active() -> FaultInjector | None:
    """The injector of the current local connection, if faults are on."""
    return _active


def install(faults: Faults | None) -> FaultInjector | None:
    """Make ``faults`` the active ones (None: none); returns the injector."""
    global _active
    _active = FaultInjector(faults) if faults is not None and faults.rate > 0 else None
    return _active
