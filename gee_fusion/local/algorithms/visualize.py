"""``Image.visualize``: an image's bands stretched to an 8-bit RGB rendering, as Earth Engine does
for maps and thumbnails.

One band (optionally through a ``palette``, colours interpolated linearly from ``min`` to ``max``)
or three bands as red, green, blue; ``min``/``max`` (default 0 and 1) or ``gain``/``bias``, one
value or one per band; ``gamma`` (``255 * stretched ** (1 / gamma)``); ``opacity`` scales the mask.
The result has bands ``vis-red``, ``vis-green``, ``vis-blue`` (uint8), masked where the input is.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from matplotlib import colors as mcolors

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.image import Band, FuncNode, Image, Pixels
from gee_fusion.local.registry import algorithm

OUTPUT_BANDS = ("vis-red", "vis-green", "vis-blue")


def _list(value: Any, what: str) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _numbers(value: Any, what: str, n: int, default: float) -> np.ndarray:
    items = _list(value, what)
    if items is None:
        return np.full(n, default, dtype=np.float64)
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        raise EngineError(f"Image.visualize: {what} must be numbers, got {value!r}.") from None
    if len(numbers) == 1:
        return np.full(n, numbers[0], dtype=np.float64)
    if len(numbers) != n:
        raise EngineError(f"Image.visualize: {what} must have 1 or {n} values, got {len(numbers)}.")
    return np.asarray(numbers, dtype=np.float64)


def parse_colour(text: Any) -> tuple[int, int, int]:
    """A palette colour: RRGGBB or RGB hex (with or without '#') or a CSS colour name."""
    s = str(text).strip()
    hexa = s.lstrip("#")
    if re.fullmatch(r"[0-9a-fA-F]{6}", hexa):
        return int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16)
    if re.fullmatch(r"[0-9a-fA-F]{3}", hexa):
        return int(hexa[0] * 2, 16), int(hexa[1] * 2, 16), int(hexa[2] * 2, 16)
    if s.lower() in mcolors.CSS4_COLORS:
        r, g, b = mcolors.to_rgb(mcolors.CSS4_COLORS[s.lower()])
        return round(r * 255), round(g * 255), round(b * 255)
    raise EngineError(f"Image.visualize: Can't parse color '{s}': use RRGGBB hex or a CSS colour name.")


def stretch(values: np.ndarray, low: float, high: float, gamma: float) -> np.ndarray:
    """Values mapped to [0, 1] between ``low`` and ``high``, then gamma-corrected."""
    span = high - low
    unit = (values.astype(np.float64) - low) / (span if span != 0 else 1.0)
    unit = np.clip(unit, 0.0, 1.0)
    return unit ** (1.0 / gamma) if gamma != 1 else unit


@algorithm("Image.visualize")
def image_visualize(
    image: Any,
    bands: Any = None,
    gain: Any = None,
    bias: Any = None,
    min: Any = None,
    max: Any = None,
    gamma: Any = None,
    opacity: Any = None,
    palette: Any = None,
    forceRgbOutput: bool = False,
) -> Image:
    """Render ``image`` to 8-bit RGB (see the module docstring)."""
    img = as_image(image)
    if not img.bands:
        raise EngineError("Image.visualize: the image has no bands.")
    by_name = {b.name: b for b in img.bands}
    names = _list(bands, "bands") or [b.name for b in img.bands[: 3 if len(img.bands) >= 3 else 1]]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise EngineError(f"Image.visualize: Pattern '{missing[0]}' did not match any bands.")
    if len(names) not in (1, 3):
        raise EngineError(f"Image.visualize: bands must name 1 or 3 bands, got {len(names)}.")
    colours = _list(palette, "palette")
    if colours is not None and len(names) != 1:
        raise EngineError("Image.visualize: Can't specify a palette with more than one band.")
    if (gain is not None or bias is not None) and (min is not None or max is not None):
        raise EngineError("Image.visualize: Can't specify both gain/bias and min/max.")
    n = len(names)
    if gain is not None or bias is not None:
        g, b = _numbers(gain, "gain", n, 1.0), _numbers(bias, "bias", n, 0.0)
        low, high = -b / g, (255.0 - b) / g  # 255 * unit == value * gain + bias
    else:
        low, high = _numbers(min, "min", n, 0.0), _numbers(max, "max", n, 1.0)
    gammas = _numbers(gamma, "gamma", n, 1.0)
    alpha = 1.0 if opacity is None else float(opacity)
    table = np.array([parse_colour(c) for c in colours], dtype=np.float64) if colours else None
    sources = [by_name[name] for name in names]

    shown = alpha > 0

    def finish(value: np.ndarray, mask: np.ndarray) -> Pixels:
        return np.clip(np.round(value), 0, 255).astype(np.uint8), mask & shown

    if table is not None:  # one stretch shared by the three channels (memoised per grid)
        palette_table = table

        def palette_position(px: Pixels) -> Pixels:
            unit = stretch(np.asarray(px[0]), low[0], high[0], gammas[0])
            return unit * (len(palette_table) - 1), np.asarray(px[1], bool)

        position = FuncNode(palette_position, [sources[0].node])

        def channel(k: int) -> FuncNode:
            def fn(pos_px: Pixels) -> Pixels:
                pos = pos_px[0]
                i0 = np.clip(np.floor(pos).astype(int), 0, len(palette_table) - 1)
                i1 = np.clip(i0 + 1, 0, len(palette_table) - 1)
                frac = pos - i0
                return finish(palette_table[i0, k] * (1 - frac) + palette_table[i1, k] * frac, pos_px[1])

            return FuncNode(fn, [position])

    else:

        def channel(k: int) -> FuncNode:
            def fn(*pixels: Pixels) -> Pixels:
                mask = np.logical_and.reduce([np.asarray(m, bool) for _, m in pixels])
                j = 0 if n == 1 else k
                return finish(255.0 * stretch(np.asarray(pixels[j][0]), low[j], high[j], gammas[j]), mask)

            return FuncNode(fn, [s.node for s in sources])

    first = sources[0]
    out = Image(tuple(Band(name, np.dtype(np.uint8), channel(k), first.projection, first.dimensions, (0, 255))
                      for k, name in enumerate(OUTPUT_BANDS)), dict(img.properties))  # fmt: skip
    if alpha < 1:
        out = out.with_properties({**out.properties, "system:visualization_opacity": alpha})
    return out
