"""The layering rules of docs/architecture.md, checked on the source (imports and calls anywhere
in a module, including inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gee_fusion"


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


@cache
def tree(name: str) -> ast.Module:
    return ast.parse(modules()[name].read_text(encoding="utf-8"))


def imported(name: str) -> set[str]:
    """Every gee_fusion module ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    mods, deps = modules(), set()
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gee_fusion"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(mods)
            deps |= subs
            if len(subs) < len(node.names):
                deps.add(node.module)
        elif isinstance(node, ast.Import):
            deps |= {a.name for a in node.names if a.name.startswith("gee_fusion")}
    deps.discard(name)
    return deps


def imported_names(name: str, source: str) -> set[str]:
    """Names ``name`` imports from module ``source``."""
    return {
        a.name
        for node in ast.walk(tree(name))
        if isinstance(node, ast.ImportFrom) and node.module == source
        for a in node.names
    }


def in_package(prefix: str) -> Iterator[str]:
    return (m for m in sorted(modules()) if m == prefix or m.startswith(prefix + "."))


def test_only_the_cli_and_the_engine_module_call_connect() -> None:
    callers = []
    for name in modules():
        if name in ("gee_fusion.cli", "gee_fusion.engine"):
            continue
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.Call):
                fn = node.func
                called = (
                    fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
                )
                if called == "connect":
                    callers.append(f"{name}:{node.lineno}")
    assert not callers, f"library code must use ensure_connected(), not connect(): {callers}"


def test_recipe_builds_graphs_only() -> None:
    bad = {
        m: sorted(d for d in imported(m) if d.startswith(("gee_fusion.local", "gee_fusion.engine",
                                                             "gee_fusion.io", "gee_fusion.export",
                                                             "gee_fusion.deep", "gee_fusion.cli")))
        for m in in_package("gee_fusion.recipe")
    }  # fmt: skip
    assert not {m: d for m, d in bad.items() if d}, "recipe/ must not import engines, I/O or later stages"
    io_libraries = {"rasterio", "xarray", "xee", "zarr", "pathlib", "shutil", "tempfile", "torch"}
    allowed = {"rasterio.crs"}  # parsing CRS codes is not I/O
    for m in in_package("gee_fusion.recipe"):
        for node in ast.walk(tree(m)):
            names = set()
            if isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module}
            bad = {n for n in names - allowed if n.split(".")[0] in io_libraries}
            assert not bad, f"{m} imports {bad}: recipe/ does no I/O"


def test_io_is_the_ground_floor() -> None:
    for m in in_package("gee_fusion.io"):
        others = {d for d in imported(m) if not d.startswith("gee_fusion.io")} - {"gee_fusion.errors"}
        assert not others, f"{m} imports {others}: io/ may only import gee_fusion.errors"


def test_deep_uses_the_exporter_only_through_its_public_entry() -> None:
    for m in in_package("gee_fusion.deep"):
        names = imported_names(m, "gee_fusion.export.patches")
        assert names <= {"PatchExportConfig", "export_patches"}, f"{m} reaches into the exporter: {names}"


def test_no_import_cycles() -> None:
    graph = {m: imported(m) & set(modules()) for m in modules()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_algorithm_index_lists_every_algorithm_module() -> None:
    listed = imported("gee_fusion.local.index")
    present = {
        m for m in in_package("gee_fusion.local.algorithms") if not m.rsplit(".", 1)[1].startswith("_")
    }
    present.discard("gee_fusion.local.algorithms")
    assert present <= listed, f"add to gee_fusion/local/index.py: {sorted(present - listed)}"


def test_one_definition_of_shared_constants() -> None:
    """Catalog IDs live in ids.py and NO_LABEL in classes.py only."""
    catalog_prefixes = ("COPERNICUS/", "GOOGLE/", "ESA/", "USGS/", "local/")
    for name in modules():
        if name == "gee_fusion.ids":
            continue
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                text = node.value.value
                is_id = isinstance(text, str) and text.startswith(catalog_prefixes)
                assert not is_id, f"{name}:{node.lineno} defines a catalog ID"
                targets = {t.id for t in node.targets if isinstance(t, ast.Name)}
                assert "NO_LABEL" not in targets or name == "gee_fusion.classes", f"{name} redefines NO_LABEL"


@pytest.mark.parametrize("module", ["gee_fusion", "gee_fusion.recipe.stacks", "gee_fusion.export.patches"])
def test_importing_the_library_imports_no_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_api_lists_what_users_call() -> None:
    import gee_fusion

    for name in gee_fusion.__all__:
        assert hasattr(gee_fusion, name), name
    for wanted in ("connect", "s2_collection", "s1_collection", "mask_clouds", "speckle_filter",
                   "monthly_composites", "fusion20_stack", "time_series_stack", "run_monthly",
                   "export_patches", "add_indices", "terrain_flatten", "ConfusionMatrix"):  # fmt: skip
        assert wanted in gee_fusion.__all__, wanted
