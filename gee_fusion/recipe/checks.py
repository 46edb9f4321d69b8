"""Early, typed errors for recipes: which filter emptied a collection."""

from __future__ import annotations

from collections.abc import Sequence

import ee

from gee_fusion.errors import EngineError


def require_images(stages: Sequence[tuple[str, ee.ImageCollection]]) -> int:
    """Check that the last stage of a filter chain has images (one server round trip).

    Args:
        stages: ``(description, collection)`` after each filter, in order, starting with the
            unfiltered collection.

    Returns:
        The number of images left.

    Raises:
        EngineError: naming the first filter after which nothing was left.
    """
    sizes: list[int] = ee.List([col.size() for _, col in stages]).getInfo() or []
    for (what, _), n in zip(stages, sizes, strict=True):
        if n == 0:
            done = " -> ".join(f"{w} ({s})" for (w, _), s in zip(stages, sizes, strict=True) if s > 0)
            raise EngineError(
                f"No image left after filter '{what}'. Images per step: {done or 'none at all'} -> "
                f"{what} (0). Widen the period or the AOI, or relax that filter."
            )
    return int(sizes[-1])
