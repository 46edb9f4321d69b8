"""Dictionary algorithms."""

from __future__ import annotations

import re
from typing import Any

from gee_fusion.errors import EngineError
from gee_fusion.local.registry import algorithm

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


@algorithm("Dictionary.toImage")
def dict_to_image(dictionary: dict[str, Any], names: list[str] | None = None) -> Any:
    """A constant image with one band per key (``names``, or every key in sorted order)."""
    from gee_fusion.local.algorithms._common import constant_image

    keys = list(names) if names is not None else sorted(dictionary)
    missing = [k for k in keys if k not in dictionary]
    if missing:
        raise EngineError(f"Dictionary.toImage: Dictionary does not contain key: '{missing[0]}'.")
    bands = []
    for key in keys:
        value = dictionary[key]
        if value is None:
            raise EngineError(f"Dictionary.toImage: the value of '{key}' is null.")
        bands.append(constant_image(value).bands[0].renamed(key))
    image = constant_image(0)
    return image.with_bands(bands)
