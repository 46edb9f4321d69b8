"""``ee.PixelType``: pixel type descriptions (for ``Image.cast`` and ``Array`` constructors).

A pixel type is its Earth Engine JSON form (``{"type": "PixelType", "precision": ..., "min": ...,
"max": ..., "dimensions": ...}``), which :func:`gee_fusion.local.image.dtype_from_ee` reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.registry import algorithm

_INTS: dict[str, type[np.integer[Any]]] = {
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64}  # fmt: skip


@algorithm("PixelType")
def pixel_type(precision: str | dict[str, Any], minValue: float | None = None, maxValue: float | None = None,
               dimensions: int = 0) -> dict[str, Any]:  # fmt: skip
    """A pixel type: precision ``int``, ``float`` or ``double``, an integer range, array dimensions."""
    if isinstance(precision, dict) and precision.get("type") == "PixelType":
        return precision  # ee.PixelType(ee.PixelType.float()) wraps a pixel type again
    if precision not in ("int", "float", "double"):
        raise EngineError(f"PixelType: precision must be 'int', 'float' or 'double', got {precision!r}.")
    info: dict[str, Any] = {"type": "PixelType", "precision": precision}
    if precision == "int":
        info["min"] = int(minValue) if minValue is not None else -(2**31)
        info["max"] = int(maxValue) if maxValue is not None else 2**31 - 1
    if dimensions:
        info["dimensions"] = int(dimensions)
    return info


algorithm("PixelType.float")(lambda: pixel_type("float"))
algorithm("PixelType.double")(lambda: pixel_type("double"))
for _name, _dt in _INTS.items():
    _info = np.iinfo(_dt)
    algorithm(f"PixelType.{_name}")(
        lambda _lo=int(_info.min), _hi=int(_info.max): pixel_type("int", _lo, _hi)
    )
algorithm("PixelType.precision")(lambda pixelType: pixelType["precision"])
algorithm("PixelType.minValue")(lambda pixelType: pixelType.get("min"))
algorithm("PixelType.maxValue")(lambda pixelType: pixelType.get("max"))
algorithm("PixelType.dimensions")(lambda pixelType: pixelType.get("dimensions", 0))
