"""The registry of local-engine algorithm implementations, keyed by Earth Engine function name.

Each implementation is a small typed function whose parameter names are the argument names
of the Earth Engine algorithm (as listed in earthengine-api's algorithm table). Optional
arguments carry Python defaults; an explicit ``null`` from the graph means "the default".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gee_fusion.errors import AlgorithmNotImplementedError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Algorithm:
    """An implementation: the function, and the names of arguments it receives unevaluated."""

    name: str
    fn: Callable[..., Any]
    lazy: frozenset[str] = frozenset()


ALGORITHMS: dict[str, Algorithm] = {}


def algorithm(*names: str, lazy: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Register ``fn`` under one or more Earth Engine function names.

    Args:
        *names: Earth Engine function names, e.g. ``"Image.select"``.
        lazy: Argument names passed as zero-argument thunks instead of values
            (for ``Algorithms.If``, which must not evaluate the branch it does not take).
    """

    def register(fn: F) -> F:
        for name in names:
            ALGORITHMS[name] = Algorithm(name, fn, frozenset(lazy))
        return fn

    return register


def lookup(name: str) -> Algorithm:
    """The implementation of ``name``, or an error naming the missing algorithm."""
    _ensure_loaded()
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise AlgorithmNotImplementedError(
            f"The local engine does not implement the Earth Engine algorithm '{name}' yet. "
            "Run this recipe on real Earth Engine (gee_fusion.connect(engine='earthengine')) "
            "or add an implementation in gee_fusion/local/algorithms/."
        ) from None


_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        import gee_fusion.local.algorithms  # noqa: F401  (registers every implementation)

        _loaded = True


def implemented() -> list[str]:
    """Sorted names of every implemented algorithm."""
    _ensure_loaded()
    return sorted(ALGORITHMS)
