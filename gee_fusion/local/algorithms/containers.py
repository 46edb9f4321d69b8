"""Algorithms on plain values: Number (conversions, formatting), String, List, Dictionary,
``If``, ``ObjectType``, and the property algorithms of elements (``Element.*``)."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import comparable
from gee_fusion.local.image import Image
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import (
    Date,
    Feature,
    FeatureCollection,
    Function,
    Geometry,
    ImageCollection,
)

# -- Number ---------------------------------------------------------------------------------

_NUMBER_CASTS: dict[str, str] = {
    "toFloat": "float32", "float": "float32", "toDouble": "float64", "double": "float64",
    "toInt": "int32", "int": "int32", "toLong": "int64", "long": "int64", "toInt64": "int64",
    "int64": "int64", "toInt32": "int32", "int32": "int32", "toInt16": "int16", "int16": "int16",
    "toInt8": "int8", "int8": "int8", "toUint8": "uint8", "uint8": "uint8",
    "toUint16": "uint16", "uint16": "uint16", "toUint32": "uint32", "uint32": "uint32",
    "toByte": "uint8", "byte": "uint8", "toShort": "int16", "short": "int16",
}  # fmt: skip


def number_cast(value: Any, dtype: str) -> int | float:
    """Earth Engine's Number casts: integers truncate toward zero and saturate at the type's
    range (``ee.Number(300).toUint8()`` is 255); ``float`` rounds to 32-bit precision."""
    if value is None or isinstance(value, (str, list, dict)):
        raise EngineError(f"Number cast to {dtype}: expected a number, got {value!r}.")
    x = float(value)
    if dtype == "float64":
        return x
    if dtype == "float32":
        return float(np.float32(x))
    if np.isnan(x):
        return 0
    info = np.iinfo(np.dtype(dtype))
    if np.isinf(x):
        return int(info.max) if x > 0 else int(info.min)
    whole = int(value) if isinstance(value, (int, np.integer)) else int(np.trunc(x))
    return max(int(info.min), min(int(info.max), whole))


for _name, _dt in _NUMBER_CASTS.items():
    algorithm(f"Number.{_name}")(lambda input, _d=_dt: number_cast(input, _d))


_FORMAT = re.compile(r"(?P<pre>[^%]*)%(?P<mods>[#\-+ 0,(.\d]*)(?P<conv>[sdoxXeEfgG])(?P<post>[^%]*)")


@algorithm("Number.format")
def number_format(number: float, pattern: str = "%s") -> str:
    """Format a number with a printf-style pattern (Java ``String.format`` rules as in Earth
    Engine: one ``%``, modifiers from ``#-+ 0,(.`` and digits, one conversion of ``sdoxXeEfgG``)."""
    match = _FORMAT.fullmatch(pattern)
    if match is None:
        raise EngineError(
            f"Number.format: bad pattern {pattern!r}: use exactly one '%' conversion such as "
            "'%.2f', '%05d' or '%s'."
        )
    mods, conv = match["mods"], match["conv"]
    value: Any = number
    if conv in "doxX":
        value = int(number)
    elif conv == "f" and isinstance(number, float) and math.isfinite(number):
        # Java rounds the shortest decimal form half up: '%.1f' of 2.25 is '2.3', not '2.2'
        prec = _MODS.fullmatch(mods)
        digits = int(prec["prec"]) if prec is not None and prec["prec"] is not None else 6
        value = Decimal(repr(number)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    try:
        grouped = "," in mods or "(" in mods
        body = _java_grouped(value, mods, conv) if grouped else f"%{mods}{conv}" % value
    except (TypeError, ValueError) as exc:
        raise EngineError(f"Number.format: bad pattern {pattern!r}.") from exc
    return f"{match['pre']}{body}{match['post']}"


_MODS = re.compile(r"(?P<flags>[-#+ 0,(]*)(?P<width>\d+)?(?:\.(?P<prec>\d+))?")


def _java_grouped(value: Any, mods: str, conv: str) -> str:
    """Java's ``,`` (group thousands) and ``(`` (negatives in parentheses) flags, which
    Python's ``%`` formatting lacks, through a ``format`` spec."""
    parsed = _MODS.fullmatch(mods)
    if parsed is None or conv not in "dfeEgG":
        raise ValueError(f"unsupported modifiers {mods!r} for %{conv}")
    flags = parsed["flags"]
    negative = "(" in flags and value < 0
    spec = "<" if "-" in flags else ""
    spec += "+" if "+" in flags else " " if " " in flags else ""
    spec += "0" if "0" in flags and "-" not in flags else ""
    spec += parsed["width"] or ""
    spec += "," if "," in flags else ""
    spec += f".{parsed['prec']}" if parsed["prec"] is not None and conv != "d" else ""
    text = format(-value if negative else value, spec + conv)
    return f"({text.strip()})" if negative else text


@algorithm("Number.parse")
def number_parse(input: str, radix: int = 10) -> float | int:
    """Parse a string as a number."""
    try:
        return int(input, int(radix)) if radix != 10 or re.fullmatch(r"[+-]?\d+", input) else float(input)
    except ValueError as exc:
        raise EngineError(f"Number.parse: cannot parse {input!r}.") from exc


# -- String ---------------------------------------------------------------------------------


@algorithm("String")
def string_new(input: Any) -> str:
    """A string from a string or number."""
    return input if isinstance(input, str) else json.dumps(input)


algorithm("String.cat")(lambda string1, string2: f"{string1}{string2}")
algorithm("String.length")(lambda string: len(string))
algorithm("String.toLowerCase")(lambda string: string.lower())
algorithm("String.toUpperCase")(lambda string: string.upper())
algorithm("String.trim")(lambda string: string.strip())
algorithm("String.equals")(lambda reference, target: reference == target)
algorithm("String.compareTo")(lambda string1, string2: (string1 > string2) - (string1 < string2))
algorithm("String.index")(lambda target, pattern: target.find(pattern))
algorithm("String.rindex")(lambda target, pattern: target.rfind(pattern))
algorithm("String.slice")(
    lambda string, start, end=None: string[int(start) : None if end is None else int(end)]
)


def _regex_flags(flags: str | None) -> int:
    return re.IGNORECASE if flags and "i" in flags else 0


@algorithm("String.split")
def string_split(string: str, regex: str, flags: str | None = None) -> list[str]:
    """Split on a regular expression (an empty one splits into characters)."""
    if not regex:
        return list(string)
    return re.split(regex, string, flags=_regex_flags(flags))


@algorithm("String.replace")
def string_replace(input: str, regex: str, replacement: str, flags: str | None = None) -> str:
    """Replace the first match (every match with flag ``g``; ``i`` ignores case); ``$1`` refers
    to a group."""
    repl = re.sub(r"\$(\d)", r"\\\1", replacement.replace("\\", "\\\\"))
    count = 0 if flags and "g" in flags else 1
    return re.sub(regex, repl, input, count=count, flags=_regex_flags(flags))


@algorithm("String.match")
def string_match(input: str, regex: str, flags: str | None = None) -> list[str]:
    """JavaScript ``match``: with flag ``g`` every match; else the first match and its groups."""
    if flags and "g" in flags:
        return [m.group(0) for m in re.finditer(regex, input, flags=_regex_flags(flags))]
    found = re.search(regex, input, flags=_regex_flags(flags))
    if found is None:
        return []
    return [found.group(0), *(g if g is not None else "" for g in found.groups())]


algorithm("String.encodeJSON")(lambda object: json.dumps(object, separators=(",", ":")))
algorithm("String.decodeJSON")(lambda string: json.loads(string))

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
    lambda list, start, count, other=None: list[: int(start)] + (other or []) + list[int(start) + int(count):]
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


# -- Dictionary -----------------------------------------------------------------------------


@algorithm("Dictionary")
def dict_new(input: Any = None) -> dict[str, Any]:
    """A dictionary (from a dictionary or an element's properties)."""
    if input is None:
        return {}
    if isinstance(input, dict):
        return dict(input)
    if hasattr(input, "properties"):
        return dict(input.properties)
    raise EngineError(f"Dictionary: cannot make a dictionary from {type(input).__name__}.")


@algorithm("Dictionary.get")
def dict_get(dictionary: dict[str, Any], key: str, defaultValue: Any = None) -> Any:
    """Value of ``key`` (or ``defaultValue``; an error if neither)."""
    if key in dictionary:
        return dictionary[key]
    if defaultValue is not None:
        return defaultValue
    raise EngineError(f"Dictionary.get: Dictionary does not contain key: '{key}'.")


for _n in ("getNumber", "getString", "getGeometry", "getArray"):
    algorithm(f"Dictionary.{_n}")(lambda dictionary, key, _g=dict_get: _g(dictionary, key))

algorithm("Dictionary.keys")(lambda dictionary: sorted(dictionary))
algorithm("Dictionary.values")(
    lambda dictionary, keys=None: [dictionary[k] for k in (keys or sorted(dictionary))]
)
algorithm("Dictionary.size")(lambda dictionary: len(dictionary))
algorithm("Dictionary.contains")(lambda dictionary, key: key in dictionary)
algorithm("Dictionary.set")(lambda dictionary, key, value: {**dictionary, key: value})
algorithm("Dictionary.combine")(
    lambda first, second, overwrite=True: {**first, **second} if overwrite else {**second, **first}
)
algorithm("Dictionary.fromLists")(lambda keys, values: _from_lists(keys, values))
algorithm("Dictionary.select")(
    lambda dictionary, selectors, ignoreMissing=False: _select_keys(
        dictionary, selectors, ignoreMissing, "Dictionary.select"
    )
)
algorithm("Dictionary.map")(
    lambda dictionary, baseAlgorithm: {k: baseAlgorithm(k, v) for k, v in dictionary.items()}
)


def _from_lists(keys: list[Any], values: list[Any]) -> dict[str, Any]:
    if len(keys) != len(values):
        raise EngineError(
            f"Dictionary.fromLists: {len(keys)} keys but {len(values)} values; the lists must "
            "have the same length."
        )
    return {str(k): v for k, v in zip(keys, values, strict=True)}


@algorithm("Dictionary.remove")
def dict_remove(dictionary: dict[str, Any], selectors: list[str],
                ignoreMissing: bool = False) -> dict[str, Any]:  # fmt: skip
    """A copy without the keys that match ``selectors`` (regular expressions)."""
    drop = _select_keys(dictionary, selectors, ignoreMissing, "Dictionary.remove")
    return {k: v for k, v in dictionary.items() if k not in drop}


@algorithm("Dictionary.rename")
def dict_rename(dictionary: dict[str, Any], overwrite: bool = False, **kw: Any) -> dict[str, Any]:
    """Rename keys ``from`` -> ``to``; an existing target key is an error unless ``overwrite``."""
    old, new = list(kw.get("from", [])), list(kw.get("to", []))
    if len(old) != len(new):
        raise EngineError("Dictionary.rename: 'from' and 'to' must have the same length.")
    missing = [k for k in old if k not in dictionary]
    if missing:
        raise EngineError(f"Dictionary.rename: Dictionary does not contain key: '{missing[0]}'.")
    out = {k: v for k, v in dictionary.items() if k not in old}
    for src, dst in zip(old, new, strict=True):
        if dst in out and not overwrite:
            raise EngineError(
                f"Dictionary.rename: key '{dst}' already exists; pass overwrite=True to replace it."
            )
        out[dst] = dictionary[src]
    return out


def _select_keys(d: dict[str, Any], selectors: list[str], ignore_missing: bool,
                 where: str) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for sel in selectors:
        hits = [k for k in d if re.fullmatch(sel, k)]
        if not hits and not ignore_missing:
            raise EngineError(f"{where}: key '{sel}' not found.")
        out.update({k: d[k] for k in hits})
    return out


# -- Control flow and types -----------------------------------------------------------------


@algorithm("If", lazy=("condition", "trueCase", "falseCase"))
def algorithms_if(condition: Callable[[], Any] | None = None, trueCase: Callable[[], Any] | None = None,
                  falseCase: Callable[[], Any] | None = None) -> Any:  # fmt: skip
    """Evaluate only the branch the condition selects.

    As in Earth Engine, null, false, 0, NaN and empty strings, lists and dictionaries are false.
    """
    cond = condition() if condition is not None else None
    if isinstance(cond, (bool, int, float, np.number)):
        truthy = bool(cond) and not np.isnan(float(cond))
    elif isinstance(cond, (str, list, dict)):
        truthy = len(cond) > 0
    else:
        truthy = cond is not None
    branch = trueCase if truthy else falseCase
    return branch() if branch is not None else None


@algorithm("ObjectType")
def object_type(value: Any = None) -> str:
    """Earth Engine's type name of a value."""
    return type_name(value)


def type_name(value: Any) -> str:
    """Earth Engine's type name of a local-engine value."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, (int, float)):
        return "Number"
    names = {str: "String", list: "List", dict: "Dictionary", Image: "Image",
             ImageCollection: "ImageCollection", Feature: "Feature",
             FeatureCollection: "FeatureCollection", Geometry: "Geometry", Date: "Date"}  # fmt: skip
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    return type(value).__name__


@algorithm("IsEqual")
def is_equal(left: Any = None, right: Any = None) -> bool:
    """Deep equality."""
    return bool(left == right)


# -- Element properties ---------------------------------------------------------------------


def _props(element: Any) -> dict[str, Any]:
    if not hasattr(element, "properties"):
        raise EngineError(f"Expected an element (Image, Feature, collection), got {type(element).__name__}.")
    return dict(element.properties)


@algorithm("Element.get")
def element_get(object: Any, property: str) -> Any:
    """A property value (null if absent)."""
    return object.get(property)


for _n in ("getNumber", "getString", "getArray"):
    algorithm(f"Element.{_n}")(element_get)


@algorithm("Element.set")
def element_set(object: Any, key: str, value: Any = None) -> Any:
    """A copy with one property set."""
    return object.with_properties({**_props(object), key: value})


@algorithm("Element.setMulti")
def element_set_multi(object: Any, properties: dict[str, Any]) -> Any:
    """A copy with several properties set."""
    return object.with_properties({**_props(object), **properties})


@algorithm("Element.propertyNames")
def element_property_names(element: Any) -> list[str]:
    """Names of the properties (with ``system:index`` etc.)."""
    return list(_props(element))


@algorithm("Element.toDictionary")
def element_to_dictionary(element: Any, properties: list[str] | None = None) -> dict[str, Any]:
    """Properties as a dictionary; without a list, the non-system ones."""
    props = _props(element)
    if properties is None:
        return {k: v for k, v in props.items() if not k.startswith("system:")}
    return {k: props[k] for k in properties if k in props}


@algorithm("Element.copyProperties", "Image.copyProperties")
def element_copy_properties(destination: Any = None, source: Any = None, properties: list[str] | None = None,
                            exclude: list[str] | None = None) -> Any:  # fmt: skip
    """Copy properties of ``source`` onto ``destination`` (all non-system ones by default)."""
    src = _props(source)
    if properties is not None:
        picked = {k: src[k] for k in properties if k in src}
    else:
        picked = {k: v for k, v in src.items() if not k.startswith("system:")}
    for k in exclude or []:
        picked.pop(k, None)
    return destination.with_properties({**_props(destination), **picked})


@algorithm("Element.replaceProperties")
def element_replace_properties(destination: Any, source: Any = None) -> Any:
    """Replace every property of ``destination`` by those of ``source``."""
    return destination.with_properties(_props(source) if source is not None else {})
