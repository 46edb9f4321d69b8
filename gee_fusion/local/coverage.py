"""Which Earth Engine algorithms a script (or a folder of scripts, or a built object) calls, and
which of them the local engine lacks — before anything is run.

Two ways in:

* :func:`graph_algorithms` walks the serialized expression graph of an ``ee`` object (exact: these
  are the algorithms the server would be asked for);
* :func:`scan_text` / :func:`scan_paths` read source code (JavaScript Code Editor scripts, Python,
  notebooks, Markdown with code fences) without running it. A static call ``ee.Reducer.linearFit(``
  names one algorithm; a method call ``.arrayFlatten(`` names every algorithm of that method name
  (``Image.arrayFlatten``; ``.get(`` is ``Dictionary.get``, ``List.get``, ``Element.get``...). A
  method call counts as implemented when at least one of its candidates is; method names that no
  algorithm carries (client-side helpers such as ``filterDate`` or ``getInfo``) are not counted.

The corpus figure in ``docs/local_engine.md`` comes from :func:`scan_paths` over public Earth Engine
code (``gee-fusion algorithms --coverage FOLDER...``).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import ee

from gee_fusion.errors import ConfigError

#: File suffixes read by :func:`scan_paths`.
SOURCE_SUFFIXES = (".js", ".py", ".ipynb", ".md")

_STATIC = re.compile(r"\bee\.(?:Algorithms\.)?((?:[A-Z]\w*\.)*[A-Za-z]\w*)\s*\(")
_METHOD = re.compile(r"(?<!\bee)\.([a-z]\w*)\s*\(")
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_COMMENT_JS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_COMMENT_PY = re.compile(r"#[^\n]*")


@cache
def algorithm_names() -> frozenset[str]:
    """Every algorithm name of the earthengine-api release installed (the table the local engine
    serves as ``ee.data.getAlgorithms``)."""
    from ee import apitestcase

    return frozenset(apitestcase.GetAlgorithms())


@cache
def _by_method() -> dict[str, frozenset[str]]:
    """Method name -> the algorithms carrying it (``arrayFlatten`` -> ``{Image.arrayFlatten}``)."""
    table: dict[str, set[str]] = {}
    for name in algorithm_names():
        if "." in name:
            table.setdefault(name.rsplit(".", 1)[1], set()).add(name)
    return {method: frozenset(names) for method, names in table.items()}


def implemented_names() -> frozenset[str]:
    """The algorithms the local engine answers."""
    from gee_fusion.local.index import implemented

    return frozenset(implemented())


@dataclass(frozen=True)
class Call:
    """One algorithm name a source calls: ``label`` as written, ``candidates`` it may resolve to."""

    label: str
    candidates: frozenset[str]


def scan_text(text: str, *, language: str = "js") -> set[Call]:
    """The Earth Engine calls in one piece of source code (``language``: ``"js"`` or ``"py"``).

    Args:
        text: The source code.
        language: Which comment syntax to strip before scanning.

    Returns:
        One :class:`Call` per distinct algorithm name or method name found.
    """
    code = (_COMMENT_PY if language == "py" else _COMMENT_JS).sub("", text)
    names = algorithm_names()
    calls: set[Call] = set()
    static_ends: set[int] = set()
    for match in _STATIC.finditer(code):
        name = match.group(1)
        if name in names:
            calls.add(Call(name, frozenset({name})))
            static_ends.add(match.end())
    by_method = _by_method()
    for match in _METHOD.finditer(code):
        method = match.group(1)
        if method in by_method and match.end() not in static_ends:
            candidates = by_method[method]
            label = next(iter(candidates)) if len(candidates) == 1 else f".{method}"
            calls.add(Call(label, candidates))
    return calls


def _notebook_code(path: Path) -> Iterator[tuple[str, str]]:
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (json.JSONDecodeError, UnicodeDecodeError):
        return
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            yield ("".join(source) if isinstance(source, list) else source), "py"


def source_blocks(path: Path) -> Iterator[tuple[str, str]]:
    """(code, language) pieces of one file: a script, a notebook's code cells, Markdown code fences."""
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        yield from _notebook_code(path)
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return
    if suffix == ".md":
        for block in _FENCE.findall(text):
            yield block, "js"
    else:
        yield text, "py" if suffix == ".py" else "js"


def iter_sources(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every readable source file under ``paths`` (files or folders), in a stable order."""
    for item in paths:
        root = Path(item)
        if not root.exists():
            raise ConfigError(f"{root} does not exist: give a script, a notebook or a folder of them.")
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in SOURCE_SUFFIXES and ".git" not in path.parts:
                yield path


@dataclass
class CoverageReport:
    """Algorithm use over a set of files and the share the local engine implements.

    Attributes:
        files: Number of files scanned that call at least one Earth Engine algorithm.
        uses: Per call label, the number of files using it.
        candidates: Per call label, the algorithms it may resolve to.
        implemented: The local engine's algorithms when the report was made.
    """

    files: int = 0
    uses: Counter[str] = field(default_factory=Counter)
    candidates: dict[str, frozenset[str]] = field(default_factory=dict)
    implemented: frozenset[str] = field(default_factory=frozenset)

    def is_covered(self, label: str) -> bool:
        """Whether the local engine answers this call (at least one candidate implemented)."""
        return bool(self.candidates[label] & self.implemented)

    @property
    def share(self) -> float:
        """Implemented share of the calls, each weighted by the number of files using it."""
        total = sum(self.uses.values())
        covered = sum(n for label, n in self.uses.items() if self.is_covered(label))
        return covered / total if total else 1.0

    def missing(self) -> list[tuple[str, int]]:
        """Calls the local engine lacks, most used first."""
        rows = [(label, n) for label, n in self.uses.items() if not self.is_covered(label)]
        return sorted(rows, key=lambda row: (-row[1], row[0]))

    def ranking(self) -> list[tuple[str, int, bool]]:
        """Every call with its file count and whether it is covered, most used first."""
        rows = [(label, n, self.is_covered(label)) for label, n in self.uses.items()]
        return sorted(rows, key=lambda row: (-row[1], row[0]))

    def to_dict(self, *, top: int = 40) -> dict[str, Any]:
        """JSON-ready summary: files, distinct calls, weighted share, the most used missing calls."""
        return {
            "files": self.files,
            "distinct_calls": len(self.uses),
            "weighted_share": round(self.share, 4),
            "missing": [{"call": label, "files": n} for label, n in self.missing()[:top]],
        }


def scan_paths(paths: Iterable[str | os.PathLike[str]]) -> CoverageReport:
    """Scan scripts, notebooks and Markdown under ``paths`` and report the local engine's coverage."""
    report = CoverageReport(implemented=implemented_names())
    for path in iter_sources(paths):
        calls: set[Call] = set()
        for code, language in source_blocks(path):
            calls |= scan_text(code, language=language)
        if not calls:
            continue
        report.files += 1
        for call in calls:
            report.uses[call.label] += 1
            report.candidates[call.label] = call.candidates
    return report


def graph_algorithms(obj: ee.ComputedObject) -> set[str]:
    """Every algorithm named in ``obj``'s serialized expression graph (what the server would run)."""
    graph = json.loads(obj.serialize(for_cloud_api=True))
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            name = node.get("functionName")
            if isinstance(name, str):
                found.add(name.removeprefix("algorithms/"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(graph)
    return found


def missing_in(obj: ee.ComputedObject) -> list[str]:
    """The algorithms ``obj`` needs that the local engine does not implement (sorted)."""
    return sorted(graph_algorithms(obj) - implemented_names())
