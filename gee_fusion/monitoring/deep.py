"""Monthly classification with a deep checkpoint (``gee-fusion train``) instead of the in-cloud forests.

Each month M is mapped with :func:`gee_fusion.deep.infer.predict.predict_area` on the area's grid,
the checkpoint's recipe re-anchored on M: the same sensors, bands and masks, over the months of M's
year that end with M and span as many months as the checkpoint was trained on (a checkpoint of
months 7 and 9 reads months 3 and 5 for M = May: its gap is kept; early in the year, months
before January are dropped, so a temporal model sees a shorter series, as it sees a month
without observation in training). A model that stacks a fixed number of months into channels
cannot take a shorter series: monitor from a month where the whole span fits the year, or train
it on single months. The classes it writes (its own table: 14, 10 or 6 gee_fusion classes, or
WorldCover) are grouped into the 6 classes the monitoring works in; a checkpoint without a built
class cannot monitor urban change and is refused.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from gee_fusion.classes import GROUPS_6, GROUPS_10, WORLDCOVER_SCHEME, WORLDCOVER_TO_6, nested_groups
from gee_fusion.errors import DataError
from gee_fusion.export.area import AreaConfig
from gee_fusion.grid import PixelGrid
from gee_fusion.monitoring.optical import BUILT_6, CONFIDENCE_BAND, NO_BACKSCATTER

SOURCE_DEEP = 3
"""``source`` band value of a month classified by a deep checkpoint."""


def six_class_lut(class_codes: list[int], scheme: int) -> np.ndarray:
    """Lookup table (256 entries) from a checkpoint's class codes to gee_fusion's 6 classes
    (0: no class, also for its nodata code).

    Raises:
        DataError: The scheme is unknown, or none of its classes is built-up.
    """
    if scheme == 14:
        groups: dict[int, int] = dict(GROUPS_6)
    elif scheme == 10:
        groups = nested_groups(GROUPS_10, GROUPS_6)
    elif scheme == 6:
        groups = {c: c for c in range(1, 7)}
    elif scheme == WORLDCOVER_SCHEME:
        groups = dict(WORLDCOVER_TO_6)
    else:
        raise DataError(
            f"The checkpoint's class table has {scheme} classes: monitoring reads 14, 10, 6 or WorldCover."
        )
    lut = np.zeros(256, dtype=np.uint8)
    for code in class_codes:
        lut[int(code)] = groups.get(int(code), 0)
    if not np.isin(lut, BUILT_6).any():
        raise DataError(
            f"The checkpoint's classes {sorted(int(c) for c in class_codes)} have no built-up class "
            f"(6-class codes {list(BUILT_6)}): it cannot monitor urban change. Train it with the urban "
            "classes."
        )
    return lut


def anchored_months(trained: list[int], month: date) -> list[int]:
    """The checkpoint's months re-anchored so the last is ``month`` (months before January dropped)."""
    last = max(trained)
    shifted = [month.month - (last - m) for m in sorted(trained)]
    return [m for m in shifted if m >= 1]


def classify_month_deep(
    checkpoint: str | Path,
    grid: PixelGrid,
    month: date,
    *,
    hparams: dict[str, Any],
    device: str | None = None,
) -> dict[str, np.ndarray]:
    """One month's ``class`` (6-class codes), ``source`` (:data:`SOURCE_DEEP`) and ``confidence`` (the
    probability of the chosen 6-class group, 0-1) with ``checkpoint``.

    Args:
        checkpoint: The checkpoint file.
        grid: The area.
        month: The month.
        hparams: The checkpoint's hyper-parameters (``load_module(checkpoint).hparams``).
        device: Torch device (default: the best available).
    """
    import rasterio

    from gee_fusion.deep.infer.map_writer import probabilities_path_for
    from gee_fusion.deep.infer.predict import predict_area, stored_recipe
    from gee_fusion.monitoring.confidence import group_probability

    recipe = stored_recipe(hparams)
    lut = six_class_lut(list(hparams["class_codes"]), int(hparams["experiment"]["data"].get("classes", 10)))
    months = anchored_months(list(recipe.get("months") or [month.month]), month)
    origin, size = (grid.transform[2], grid.transform[5]), (grid.width, grid.height)
    area = AreaConfig(crs=grid.crs, origin=origin, size_px=size, scale=abs(grid.transform[0]))
    with tempfile.TemporaryDirectory(prefix="gee_fusion_month_") as tmp:
        result = predict_area(
            checkpoint, area, out=Path(tmp) / "classes.tif", device=device, progress=False,
            recipe_overrides={"year": month.year, "months": months}, write_probabilities=True,
        )  # fmt: skip
        with rasterio.open(result.path) as src:
            codes = src.read(1)
        with rasterio.open(probabilities_path_for(result.path)) as src:
            probabilities = src.read()
    classes = lut[codes]
    share = group_probability(probabilities, list(hparams["class_codes"]), lut, classes)
    return {
        "class": classes, "source": np.where(classes > 0, SOURCE_DEEP, 0).astype(np.uint8),
        CONFIDENCE_BAND: share,
    }  # fmt: skip


def backscatter_maps(image: Any, grid: PixelGrid) -> dict[str, np.ndarray]:
    """``VV`` / ``VH`` of a month's Sentinel-1 image on the grid (:data:`NO_BACKSCATTER` where masked)."""
    from gee_fusion.export.fetch import compute_by_tile

    return compute_by_tile(image.select(["VV", "VH"]).toFloat().unmask(NO_BACKSCATTER), grid)
