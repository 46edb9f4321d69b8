"""Spectral indices: ONE table of formulas, evaluated by Earth Engine and by numpy/xarray.

Formulas follow Awesome Spectral Indices (ASI) conventions: reflectance in 0..1, band symbols
``B G R N S1 S2`` (Sentinel-2: B2, B3, B4, B8, B11, B12) and named constants. The same formula
string feeds ``ee.Image.expression`` on the server and a restricted arithmetic evaluator
locally, so both paths compute the same thing by construction.

SAVI uses L = 0.5 (the usual soil-adjustment value; ASI's default is 1.0 and must be
overridden to match), EVI uses ASI's g = 2.5, C1 = 6, C2 = 7.5, L = 1.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ee
import numpy as np

from gee_fusion.errors import ConfigError


@dataclass(frozen=True)
class SpectralIndex:
    """One index: its formula, the band symbols and constants it uses, and what it measures."""

    name: str
    formula: str
    bands: tuple[str, ...]
    constants: Mapping[str, float] = field(default_factory=dict)
    description: str = ""


INDICES: dict[str, SpectralIndex] = {
    i.name: i
    for i in (
        SpectralIndex("NDVI", "(N - R) / (N + R)", ("N", "R"), {}, "Normalized Difference Vegetation Index"),
        SpectralIndex(
            "SAVI",
            "(1.0 + L) * (N - R) / (N + R + L)",
            ("N", "R"),
            {"L": 0.5},
            "Soil-Adjusted Vegetation Index",
        ),
        SpectralIndex(
            "BAI", "1.0 / ((0.1 - R) ** 2.0 + (0.06 - N) ** 2.0)", ("R", "N"), {}, "Burned Area Index"
        ),
        SpectralIndex(
            "NDWI", "(G - N) / (G + N)", ("G", "N"), {}, "Normalized Difference Water Index (McFeeters)"
        ),
        SpectralIndex(
            "MNDWI", "(G - S1) / (G + S1)", ("G", "S1"), {}, "Modified Normalized Difference Water Index"
        ),
        SpectralIndex("NDBI", "(S1 - N) / (S1 + N)", ("S1", "N"), {}, "Normalized Difference Built-up Index"),
        SpectralIndex(
            "EVI",
            "g * (N - R) / (N + C1 * R - C2 * B + L)",
            ("N", "R", "B"),
            {"g": 2.5, "C1": 6.0, "C2": 7.5, "L": 1.0},
            "Enhanced Vegetation Index",
        ),
    )
}

SENTINEL2_BANDS: dict[str, str] = {"B": "B2", "G": "B3", "R": "B4", "N": "B8", "S1": "B11", "S2": "B12"}
"""ASI band symbol -> Sentinel-2 band name."""

S2_REFLECTANCE_SCALE = 1e-4
"""Sentinel-2 L1C/L2A digital numbers to reflectance (harmonized collections: no offset)."""


def get(name: str) -> SpectralIndex:
    """The index called ``name`` (case-sensitive ASI short name)."""
    try:
        return INDICES[name]
    except KeyError:
        raise ConfigError(f"Unknown spectral index {name!r}: use one of {sorted(INDICES)}.") from None


def _constants(index: SpectralIndex, overrides: Mapping[str, float] | None) -> dict[str, float]:
    consts = dict(index.constants)
    for key, value in (overrides or {}).items():
        if key not in consts:
            raise ConfigError(f"{index.name} has no constant {key!r} (it has {sorted(consts)}).")
        consts[key] = float(value)
    return consts


def add_indices(
    image: ee.Image,
    names: Sequence[str],
    *,
    bands: Mapping[str, str] = SENTINEL2_BANDS,
    scale: float = S2_REFLECTANCE_SCALE,
    constants: Mapping[str, Mapping[str, float]] | None = None,
) -> ee.Image:
    """Add one float band per index to an Earth Engine image (named after the index).

    Args:
        image: An image with the bands the indices need.
        names: Index names, e.g. ``["NDVI", "SAVI"]``.
        bands: ASI symbol -> band name of ``image``.
        scale: Multiplier from the image's values to reflectance (1e-4 for Sentinel-2 DN; 1.0
            if already reflectance).
        constants: Per-index constant overrides, e.g. ``{"SAVI": {"L": 1.0}}``.

    Returns:
        ``image`` with the index bands added.
    """
    out = image
    for name in names:
        index = get(name)
        missing = [s for s in index.bands if s not in bands]
        if missing:
            raise ConfigError(f"{name} needs band symbols {missing}: add them to `bands`.")
        variables: dict[str, Any] = {s: image.select(bands[s]).toFloat().multiply(scale) for s in index.bands}
        variables.update(_constants(index, (constants or {}).get(name)))
        out = out.addBands(image.expression(index.formula, variables).rename(name).toFloat())
    return out


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ConfigError(f"Formula symbol {node.id!r} has no value.")
        return env[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, env)
    raise ConfigError(f"Unsupported formula element {ast.dump(node)}.")


def compute(
    name: str,
    arrays: Mapping[str, Any],
    *,
    constants: Mapping[str, float] | None = None,
) -> Any:
    """Evaluate an index on numpy arrays or xarray objects given by ASI symbol (reflectance).

    Division by zero gives ``inf``/``nan`` as numpy does (Earth Engine gives 0); mask such
    pixels upstream if that matters.
    """
    index = get(name)
    missing = [s for s in index.bands if s not in arrays]
    if missing:
        raise ConfigError(f"{name} needs arrays for {missing}.")
    env: dict[str, Any] = {s: arrays[s] for s in index.bands}
    env.update(_constants(index, constants))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _eval(ast.parse(index.formula, mode="eval"), env)
