"""Loading the scripts of ``ee_scripts/`` as modules, to call their ``main`` in a test."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EE_SCRIPTS = Path(__file__).resolve().parents[1] / "ee_scripts"


def load_script(name: str) -> ModuleType:
    """The module of ``ee_scripts/<name>.py``."""
    spec = importlib.util.spec_from_file_location(name, EE_SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
