"""Bringing Earth Engine pixels to the local machine through xee, on an explicit grid."""

from __future__ import annotations

from typing import Any

import ee
import numpy as np
import xarray as xr

from gee_fusion.classes import NO_LABEL
from gee_fusion.errors import ConfigError, EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.recipe.composite import COUNT_BAND
from gee_fusion.recipe.monthly_stacks import StackRecipe, sensor_stack


def native_grid(image: ee.Image, *, band: str | None = None) -> PixelGrid:
    """The native grid of an asset image's band (one getInfo call).

    Raises:
        ConfigError: the image has no native grid (a computed image): give one explicitly.
    """
    info = image.getInfo()
    bands = info["bands"] if info else []
    chosen = next((b for b in bands if band is None or b["id"] == band), None)
    if chosen is None or "dimensions" not in chosen:
        raise ConfigError("The image has no native grid (a computed image?): give one explicitly.")
    w, h = chosen["dimensions"]
    t = [float(v) for v in chosen["crs_transform"]]
    return PixelGrid(chosen["crs"], (t[0], t[1], t[2], t[3], t[4], t[5]), int(w), int(h))


def grid_aoi(grid: PixelGrid) -> ee.Geometry:
    """The grid's footprint as a (planar) rectangle in its CRS."""
    x0, y0, x1, y1 = grid.bounds()
    return ee.Geometry.Rectangle([x0, y0, x1, y1], grid.crs, False)


def open_collection(collection: ee.ImageCollection, grid: PixelGrid, **kwargs: Any) -> xr.Dataset:
    """Open an ee.ImageCollection with xee on ``grid`` (dimensions time, y, x).

    Extra keyword arguments go to ``xr.open_dataset`` (e.g. ``io_chunks``).

    Raises:
        EngineError: the collection is empty (xee itself fails with a TypeError there).
    """
    try:
        return xr.open_dataset(
            collection,  # type: ignore[arg-type]  # xee's backend accepts ee objects
            engine="ee",
            crs=grid.crs,
            crs_transform=grid.transform,
            shape_2d=(grid.width, grid.height),
            **kwargs,
        )
    except (TypeError, IndexError) as exc:
        if int(collection.size().getInfo() or 0) == 0:
            raise EngineError(
                "The image collection to open is empty: no image passed its filters. Widen the period "
                "or the area, or check the collection ID and property filters."
            ) from exc
        raise


def compute_by_tile(image: ee.Image, grid: PixelGrid, *, tile: int = 256) -> dict[str, np.ndarray]:
    """Every band of ``image`` on ``grid``: one ``computePixels`` request per tile, all bands in it
    (for small areas and few bands; city-scale products go through the exporter)."""
    out: dict[str, np.ndarray] = {}
    for r in range(0, grid.height, tile):
        for c in range(0, grid.width, tile):
            win = grid.window(c, r, min(tile, grid.width - c), min(tile, grid.height - r))
            part = ee.data.computePixels({"expression": image, "grid": win.to_ee()})
            for name in part.dtype.names:
                arr = out.setdefault(name, np.zeros(grid.shape, part[name].dtype))
                arr[r : r + win.height, c : c + win.width] = part[name]
    return out


def load_by_window(
    ds: xr.Dataset,
    variables: list[str],
    *,
    window: int = 256,
    workers: int = 2,
    progress: bool = True,
    description: str = "fetching windows through xee",
) -> dict[str, np.ndarray]:
    """Load variables window by window: all variables of one window before the next.

    Requests for the same window run back to back, so whatever the engine cached for that
    window (e.g. generated demo-world blocks) serves every variable; windows run on
    ``workers`` threads. Shows a progress bar on stderr.

    Returns:
        Variable name to a (time, y, x) array.
    """
    from concurrent.futures import ThreadPoolExecutor

    from rich.progress import Progress

    ny, nx = ds.sizes["y"], ds.sizes["x"]
    out = {v: np.empty(ds[v].shape, dtype=ds[v].dtype) for v in variables}
    tiles = [(r, c) for r in range(0, ny, window) for c in range(0, nx, window)]

    def load(tile: tuple[int, int]) -> None:
        r, c = tile
        part = ds[variables].isel(y=slice(r, r + window), x=slice(c, c + window)).load()
        for v in variables:
            out[v][:, r : r + window, c : c + window] = part[v].values

    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(description, total=len(tiles))
        with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
            for _ in pool.map(load, tiles):
                bar.advance(task)
    return out


def open_stack(recipe: StackRecipe, sensor: str, grid: PixelGrid) -> xr.Dataset:
    """A sensor's monthly stack (:mod:`gee_fusion.recipe.monthly_stacks`) over ``grid``, opened
    lazily with xee (variables: the sensor's bands and ``count``)."""
    return open_collection(sensor_stack(recipe, sensor, grid_aoi(grid)), grid)


def stack_bands(arrays: dict[str, np.ndarray], bands: list[str]) -> np.ndarray:
    """(time, band, y, x) float32 from per-band (time, y, x) arrays, NaN where ``count`` is 0."""
    count = np.nan_to_num(arrays[COUNT_BAND])
    out = np.stack([arrays[b].astype(np.float32, copy=False) for b in bands], axis=1)
    out[np.broadcast_to((count == 0)[:, None], out.shape)] = np.nan
    return out


def map_image(asset: str, band: str) -> ee.Image:
    """One band of a map asset: the image, or the mosaic of a collection (one ``getAsset`` call)."""
    kind = str(ee.data.getAsset(asset).get("type", "IMAGE")).upper()
    return (ee.ImageCollection(asset).mosaic() if "COLLECTION" in kind else ee.Image(asset)).select(band)


def open_map(asset: str, band: str, grid: PixelGrid) -> xr.Dataset:
    """A single-band map (an image or the mosaic of a collection) as uint8 (masked -> 255), lazily."""
    image = ee.Image(map_image(asset, band).set("system:time_start", 0))
    return open_collection(ee.ImageCollection([image.unmask(NO_LABEL).toUint8()]), grid)
