"""Number (conversions, formatting) and String algorithms."""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.registry import algorithm

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
