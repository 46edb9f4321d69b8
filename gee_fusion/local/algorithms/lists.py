"""List algorithms."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import comparable
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import (
    Function,
)

# -- List -----------------------------------------------------------------------------------


def _idx(lst: list[Any], index: int) -> int:
    i = int(index)
    return i + len(lst) if i < 0 else i


@algorithm("List.get")
def list_get(list: list[Any], index: int) -> Any:
    """Element at ``index`` (negative counts from the end)."""
    i = _idx(list, index)
    if not 0 <= i < len(list):
        raise EngineError(f"List.get: List index must be between 0 and {len(list) - 1}, got {index}.")
    return list[i]


for _n in ("getNumber", "getString", "getGeometry", "getArray"):
    algorithm(f"List.{_n}")(list_get)

algorithm("List.size", "List.length")(lambda list: len(list))
algorithm("List.add")(lambda list, element: [*list, element])
algorithm("List.cat")(lambda list, other: [*list, *other])
algorithm("List.contains")(lambda list, element: element in list)
algorithm("List.containsAll")(lambda list, other: all(o in list for o in other))
algorithm("List.equals")(lambda list, other: list == other)
algorithm("List.indexOf")(lambda list, element: list.index(element) if element in list else -1)
algorithm("List.frequency")(lambda list, element: sum(1 for e in list if e == element))
algorithm("List.reverse")(lambda list: list[::-1])
algorithm("List.remove")(lambda list, element: _remove_first(list, element))
algorithm("List.removeAll")(lambda list, other: [e for e in list if e not in other])
algorithm("List.insert")(
    lambda list, index, element: [*list[: _idx(list, index)], element, *list[_idx(list, index) :]]
)


@algorithm("List.set")
def list_set(list: list[Any], index: int, element: Any) -> list[Any]:
    """A copy with the element at ``index`` (negative counts from the end) replaced."""
    i = _idx(list, index)
    if not 0 <= i < len(list):
        raise EngineError(f"List.set: List index must be between 0 and {len(list) - 1}, got {index}.")
    return [*list[:i], element, *list[i + 1 :]]


def _sublist_at(lst: list[Any], target: list[Any], positions: range) -> int:
    n = len(target)
    return next((i for i in positions if lst[i : i + n] == target), -1)


algorithm("List.indexOfSublist")(
    lambda list, target: _sublist_at(list, target, range(len(list) - len(target) + 1))
)
algorithm("List.lastIndexOfSubList")(
    lambda list, target: _sublist_at(list, target, range(len(list) - len(target), -1, -1))
)
algorithm("List.replace")(lambda list, oldval, newval: _replace_first(list, oldval, newval))
algorithm("List.replaceAll")(lambda list, oldval, newval: [newval if e == oldval else e for e in list])
algorithm("List.join")(lambda list, separator="": separator.join(str(e) for e in list))
algorithm("List.repeat")(lambda value, count: [value] * int(count))
algorithm("List.zip")(lambda list, other: [[a, b] for a, b in zip(list, other, strict=False)])
algorithm("List.unzip")(lambda list: [builtins_list(t) for t in zip(*list, strict=False)])
algorithm("List.rotate")(lambda list, distance: _rotate(list, int(distance)))
algorithm("List.swap")(lambda list, pos1, pos2: _swap(list, int(pos1), int(pos2)))
algorithm("List.splice")(
    lambda list, start, count, other=None: (
        list[: int(start)] + (other or []) + list[int(start) + int(count) :]
    )
)


def builtins_list(x: Any) -> list[Any]:
    """``list`` (shadowed by argument names in this module)."""
    return [*x]


def _remove_first(lst: list[Any], element: Any) -> list[Any]:
    out = [*lst]
    if element in out:
        out.remove(element)
    return out


def _replace_first(lst: list[Any], old: Any, new: Any) -> list[Any]:
    out = [*lst]
    if old in out:
        out[out.index(old)] = new
    return out


def _rotate(lst: list[Any], distance: int) -> list[Any]:
    if not lst:
        return []
    k = -distance % len(lst)
    return [*lst[k:], *lst[:k]]


def _swap(lst: list[Any], a: int, b: int) -> list[Any]:
    out = [*lst]
    out[a], out[b] = out[b], out[a]
    return out


@algorithm("List.slice")
def list_slice(list: list[Any], start: int, end: int | None = None, step: int | None = None) -> list[Any]:
    """Python-like slice (negative indices count from the end)."""
    return list[int(start) : None if end is None else int(end) : None if step is None else int(step)]


@algorithm("List.sequence")
def list_sequence(start: float, end: float | None = None, step: float = 1,
                  count: int | None = None) -> list[Any]:  # fmt: skip
    """Numbers from ``start`` to ``end`` inclusive by ``step`` (or ``count`` of them)."""
    if count is not None:
        vals = [start + i * step for i in range(int(count))]
    else:
        if end is None:
            raise EngineError("List.sequence: give end or count.")
        n = int(np.floor((end - start) / step + 1e-9)) + 1
        vals = [start + i * step for i in range(max(n, 0))]
    if all(isinstance(v, int) or float(v).is_integer() for v in vals) and all(
        isinstance(x, int) for x in (start, step)
    ):
        return [int(v) for v in vals]
    return vals


@algorithm("List.flatten")
def list_flatten(list: list[Any]) -> list[Any]:
    """Flatten nested lists."""
    out: Any = []
    for e in list:
        out.extend(list_flatten(e) if isinstance(e, type([])) else [e])
    return out


@algorithm("List.distinct")
def list_distinct(list: list[Any]) -> list[Any]:
    """Unique elements, first occurrence order."""
    out: Any = []
    for e in list:
        if e not in out:
            out.append(e)
    return out


@algorithm("List.sort")
def list_sort(list: list[Any], keys: list[Any] | None = None) -> list[Any]:
    """Sort (by ``keys`` if given)."""
    if keys is None:
        return sorted(list, key=comparable)
    order = sorted(range(len(list)), key=lambda i: comparable(keys[i]))
    return [list[i] for i in order]


@algorithm("List.map")
def list_map(list: list[Any], baseAlgorithm: Function, dropNulls: bool = False) -> list[Any]:
    """Apply a function to every element."""
    out = [baseAlgorithm(e) for e in list]
    return [o for o in out if o is not None] if dropNulls else out


@algorithm("List.iterate")
def list_iterate(list: list[Any], function: Function, first: Any) -> Any:
    """Fold over the list: ``acc = function(element, acc)``."""
    acc = first
    for e in list:
        acc = function(e, acc)
    return acc


@algorithm("List.filter")
def list_filter(list: list[Any], filter: Any) -> list[Any]:
    """Keep elements the filter accepts (filters on ``item``)."""
    return [e for e in list if filter(_ItemView(e))]


class _ItemView:
    """Lets property filters test plain list items under the name ``item``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, name: str) -> Any:
        return self.value if name == "item" else None


@algorithm("List.reduce")
def list_reduce(list: list[Any], reducer: Any) -> Any:
    """Reduce with a single-output reducer."""
    out = reducer.reduce_columns([list])
    return next(iter(out.values())) if len(out) == 1 else out


@algorithm("List.shuffle")
def list_shuffle(list: list[Any], seed: int | None = None) -> list[Any]:
    """Deterministic shuffle for a seed."""
    out = [*list]
    random.Random(seed).shuffle(out)
    return out
