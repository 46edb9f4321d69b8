"""The explicit index of the local engine's algorithm modules, and look-up by Earth Engine name.

Importing this module imports every algorithm module, which registers its implementations in
:mod:`gee_fusion.local.registry`. A new module under ``gee_fusion/local/algorithms/`` is added to
the import below (a test checks that none is left out).
"""

from __future__ import annotations

from gee_fusion.errors import AlgorithmNotImplementedError
from gee_fusion.local.algorithms import (  # noqa: F401  (imported to register their algorithms)
    aggregates,
    arrays,
    classifiers,
    clusterers,
    collections,
    confusion,
    dates,
    dictionaries,
    distance,
    elements,
    expression,
    filters,
    geometry,
    image_arrays,
    image_bands,
    image_mask,
    image_math,
    image_objects,
    image_paint,
    image_pixels,
    image_reduce,
    image_region,
    image_unmix,
    image_vectors,
    joins,
    kernels,
    lists,
    neighborhood,
    numbers_strings,
    pixel_types,
    reducers,
    reducers_fit,
    sampling,
    terrain,
    visualize,
)
from gee_fusion.local.registry import ALGORITHMS, Algorithm


def lookup(name: str) -> Algorithm:
    """The implementation of ``name``, or an error naming the missing algorithm."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise AlgorithmNotImplementedError(
            f"The local engine does not implement the Earth Engine algorithm '{name}' yet. "
            "Run this recipe on real Earth Engine (gee_fusion.connect(engine='earthengine')) "
            "or add an implementation in gee_fusion/local/algorithms/."
        ) from None


def implemented() -> list[str]:
    """Sorted names of every implemented algorithm."""
    return sorted(ALGORITHMS)
