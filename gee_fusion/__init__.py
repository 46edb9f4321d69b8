"""gee_fusion: Sentinel-1 + Sentinel-2 fusion for urban land-cover mapping and monitoring.

One recipe written with earthengine-api, two engines: real Earth Engine, and the embedded
local engine that answers the same calls offline. The public API below follows the data flow:
connect an engine, build collections, mask clouds, filter speckle, composite, stack, then run a
job (export, monthly monitoring) and assess it. Importing this package does not import torch;
``gee_fusion.deep`` does. Jobs and metrics load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gee_fusion.engine import Connection, connect, current, disconnect, ensure_connected, has_credentials
from gee_fusion.errors import GeeFusionError
from gee_fusion.recipe.aoi import validate_aoi
from gee_fusion.recipe.composite import medoid, monthly_composites, monthly_s1_means
from gee_fusion.recipe.indices import add_indices
from gee_fusion.recipe.monthly_stacks import StackRecipe, s1_monthly, s2_monthly
from gee_fusion.recipe.sentinel1 import (
    S1Selection,
    add_ratio,
    mask_border_noise,
    s1_collection,
    to_db,
    to_linear,
)
from gee_fusion.recipe.sentinel2 import (
    CloudScorePlus,
    Qa60Mask,
    S2Cloudless,
    SclMask,
    mask_clouds,
    s2_collection,
    scale_reflectance,
)
from gee_fusion.recipe.speckle import multitemporal_filter, multitemporal_filter_by_orbit, speckle_filter
from gee_fusion.recipe.stacks import FUSION20_BANDS, fusion20_stack, time_series_stack
from gee_fusion.recipe.terrain_flattening import terrain_flatten

if TYPE_CHECKING:
    from gee_fusion.export.patches import PatchExportConfig, export_patches
    from gee_fusion.metrics.confusion import ConfusionMatrix
    from gee_fusion.monitoring.config import MonthlyJobConfig
    from gee_fusion.monitoring.monthly import run_monthly

__version__ = "0.1.0"

_LAZY = {
    "run_monthly": "gee_fusion.monitoring.monthly",
    "MonthlyJobConfig": "gee_fusion.monitoring.config",
    "export_patches": "gee_fusion.export.patches",
    "PatchExportConfig": "gee_fusion.export.patches",
    "ConfusionMatrix": "gee_fusion.metrics.confusion",
}


def __getattr__(name: str) -> Any:
    """Jobs and metrics, imported on first use (they bring xarray, xee, zarr and matplotlib)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gee_fusion' has no attribute {name!r}")


__all__ = [
    "FUSION20_BANDS",
    "CloudScorePlus",
    "ConfusionMatrix",
    "Connection",
    "GeeFusionError",
    "MonthlyJobConfig",
    "PatchExportConfig",
    "Qa60Mask",
    "S1Selection",
    "S2Cloudless",
    "SclMask",
    "StackRecipe",
    "__version__",
    "add_indices",
    "add_ratio",
    "connect",
    "current",
    "disconnect",
    "ensure_connected",
    "export_patches",
    "fusion20_stack",
    "has_credentials",
    "mask_border_noise",
    "mask_clouds",
    "medoid",
    "monthly_composites",
    "monthly_s1_means",
    "multitemporal_filter",
    "multitemporal_filter_by_orbit",
    "run_monthly",
    "s1_collection",
    "s1_monthly",
    "s2_collection",
    "s2_monthly",
    "scale_reflectance",
    "speckle_filter",
    "terrain_flatten",
    "time_series_stack",
    "to_db",
    "to_linear",
    "validate_aoi",
]
