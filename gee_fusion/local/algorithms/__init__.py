"""Local-engine algorithm implementations; importing this package registers all of them."""

from gee_fusion.local.algorithms import (  # noqa: F401
    aggregates,
    collections,
    dates,
    dictionaries,
    distance,
    elements,
    expression,
    filters,
    geometry,
    image_bands,
    image_mask,
    image_math,
    image_region,
    joins,
    kernels,
    lists,
    neighborhood,
    numbers_strings,
    reducers,
    terrain,
)
