"""The embedded local engine: evaluates Earth Engine expression graphs offline."""

from gee_fusion.local.catalog import (
    CATALOG,
    register_geotiff_collection,
    register_geotiff_image,
    register_numpy_collection,
    register_numpy_image,
    register_zarr_collection,
)
from gee_fusion.local.graph import evaluate
from gee_fusion.local.index import implemented

__all__ = [
    "CATALOG",
    "evaluate",
    "implemented",
    "register_geotiff_collection",
    "register_geotiff_image",
    "register_numpy_collection",
    "register_numpy_image",
    "register_zarr_collection",
]
