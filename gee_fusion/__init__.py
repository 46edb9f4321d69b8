"""gee_fusion: Sentinel-1 + Sentinel-2 fusion for urban land-cover mapping and monitoring.

One recipe written with earthengine-api, two engines: real Earth Engine, and the embedded
local engine that answers the same calls offline. Importing this package does not import
torch; ``gee_fusion.deep`` does.
"""

from gee_fusion.engine import Connection, connect, current, disconnect, has_credentials
from gee_fusion.errors import GeeFusionError
from gee_fusion.recipe.speckle import multitemporal_filter, speckle_filter
from gee_fusion.recipe.stacks import FUSION20_BANDS, fusion20_stack
from gee_fusion.recipe.terrain_flattening import terrain_flatten

__version__ = "0.1.0"

__all__ = [
    "FUSION20_BANDS",
    "Connection",
    "GeeFusionError",
    "__version__",
    "connect",
    "current",
    "disconnect",
    "fusion20_stack",
    "has_credentials",
    "multitemporal_filter",
    "speckle_filter",
    "terrain_flatten",
]
