"""The registry of local-engine algorithm implementations, keyed by Earth Engine function name.

Algorithm modules register their functions here with :func:`algorithm`; the explicit index of
those modules, and the look-up the evaluator uses, is :mod:`gee_fusion.local.index` (so no
module here imports an algorithm module, and nothing imports in a circle).

Each implementation is a small typed function whose parameter names are the argument names
of the Earth Engine algorithm (as listed in earthengine-api's algorithm table). Optional
arguments carry Python defaults; an explicit ``null`` from the graph means "the default".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
