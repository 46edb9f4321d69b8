"""Raster sources behind local-catalog assets, and the leaf node that reads them into a grid.

A source is one image on its native grid: a CRS, an affine transform, a shape and named
bands, each read as (values, mask) over a pixel window. Sources exist for numpy arrays,
GeoTIFF/COG files and Zarr arrays; the demo world adds procedural ones.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from gee_fusion.errors import EngineError
from gee_fusion.local.grid import (
    PixelGrid,
    Projection,
    crs_of,
    gather,
    grid_window_in,
    integer_offset,
    nearest_indices,
    same_crs,
    six,
    slice_padded,
    warp,
)
from gee_fusion.local.image import Band, Image, PixelContext, PixelNode, Pixels

WindowT = tuple[int, int, int, int]
"""(col, row, width, height) of a window on a source's native grid."""


@dataclass
class ImageSource(abc.ABC):
    """One image on its native grid. Subclasses implement :meth:`read`."""

    crs: str
    transform: Affine
    shape: tuple[int, int]
    band_dtypes: dict[str, np.dtype]
    properties: dict[str, Any] = field(default_factory=dict)

    @abc.abstractmethod
    def read(self, band: str, window: WindowT) -> Pixels:
        """Values and validity mask of ``band`` over ``window`` (inside the source)."""

    def band_grid(self, band: str) -> tuple[Affine, tuple[int, int]]:
        """Native transform and (height, width) of ``band`` (sources with bands at several
        resolutions, like Sentinel-2's 10/20/60 m, override this)."""
        return self.transform, self.shape

    def full(self, band: str) -> Pixels | None:
        """The whole band as arrays if they are in memory (zero-copy slicing), else None."""
        return None

    def footprint(self) -> list[list[float]]:
        """The source outline as a closed lon/lat ring (Earth Engine's ``system:footprint``)."""
        h, w = self.shape
        a = self.transform
        xs = [a.c, a.c + w * a.a]
        ys = [a.f, a.f + h * a.e]
        west, south, east, north = transform_bounds(
            crs_of(self.crs), crs_of("EPSG:4326"), min(xs), min(ys), max(xs), max(ys)
        )
        return [[west, south], [east, south], [east, north], [west, north], [west, south]]

    def to_image(self, image_id: str | None, *, properties: Mapping[str, Any] | None = None) -> Image:
        """The local-engine Image value of this source."""
        bands = []
        for name, dt in self.band_dtypes.items():
            transform, (h, w) = self.band_grid(name)
            proj = Projection(self.crs, six(transform))
            bands.append(Band(name, np.dtype(dt), LeafNode(self, name), proj, (w, h)))
        props = dict(self.properties)
        if properties:
            props.update(properties)
        return Image(tuple(bands), props, image_id, None)


class LeafNode(PixelNode):
    """Reads one band of a source into the request grid (nearest unless told otherwise)."""

    def __init__(self, source: ImageSource, band: str, resampling: str = "nearest") -> None:
        self.source = source
        self.band = band
        self.resampling = resampling

    def with_resampling(self, mode: str) -> LeafNode:
        """The same leaf, resampled with ``mode`` when the request grid differs."""
        return LeafNode(self.source, self.band, mode)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        src = self.source
        transform, (h, w) = src.band_grid(self.band)
        off = integer_offset((src.crs, transform), grid)
        if off is not None:
            col, row = off
            whole = src.full(self.band)
            if whole is not None:
                return slice_padded(whole[0], whole[1], col, row, grid.width, grid.height)
            c0, r0 = max(col, 0), max(row, 0)
            c1, r1 = min(col + grid.width, w), min(row + grid.height, h)
            if c0 >= c1 or r0 >= r1:
                return _empty(grid, src.band_dtypes[self.band])
            vals, mask = src.read(self.band, (c0, r0, c1 - c0, r1 - r0))
            if (c0, r0, c1, r1) == (col, row, col + grid.width, row + grid.height):
                return vals, mask
            return slice_padded(vals, mask, col - c0, row - r0, grid.width, grid.height)
        if self.resampling == "nearest" and same_crs(src.crs, grid.crs):
            exact = self._nearest_window(transform, (h, w), grid)
            if exact is not None:
                return exact
        win = grid_window_in(src.crs, transform, (h, w), grid)
        if win is None:
            return _empty(grid, src.band_dtypes[self.band])
        vals, mask = src.read(self.band, win)
        win_transform = transform @ Affine.translation(win[0], win[1])
        return warp(vals, mask, src.crs, win_transform, grid, resampling=self.resampling)

    def _nearest_window(self, transform: Affine, shape: tuple[int, int], grid: PixelGrid) -> Pixels | None:
        """Nearest sampling reading only the source pixels that are sampled (same CRS)."""
        idx = nearest_indices(transform, grid)
        if idx is None:
            return None
        rows, cols = idx
        h, w = shape
        col_ok, row_ok = (cols >= 0) & (cols < w), (rows >= 0) & (rows < h)
        if not col_ok.any() or not row_ok.any():
            return _empty(grid, self.source.band_dtypes[self.band])
        c0, c1 = int(cols[col_ok].min()), int(cols[col_ok].max()) + 1
        r0, r1 = int(rows[row_ok].min()), int(rows[row_ok].max()) + 1
        whole = self.source.full(self.band)
        if whole is not None:
            vals, mask = whole[0][r0:r1, c0:c1], whole[1][r0:r1, c0:c1]
        else:
            vals, mask = self.source.read(self.band, (c0, r0, c1 - c0, r1 - r0))
        return gather(vals, mask, rows, cols, shape=shape, origin=(r0, c0))


def _empty(grid: PixelGrid, dtype: np.dtype) -> Pixels:
    return np.zeros(grid.shape, dtype=dtype), np.zeros(grid.shape, dtype=bool)


class NumpySource(ImageSource):
    """Bands held as 2-D numpy arrays (memory-mapped files work too)."""

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        *,
        crs: str,
        transform: Affine | Sequence[float],
        masks: Mapping[str, np.ndarray] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        if not arrays:
            raise EngineError("A numpy source needs at least one band.")
        shapes = {np.shape(a) for a in arrays.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise EngineError(f"Numpy source bands must be 2-D arrays of one shape, got {shapes}.")
        shape = next(iter(shapes))
        aff = transform if isinstance(transform, Affine) else Affine(*list(transform)[:6])
        super().__init__(
            crs, aff, (int(shape[0]), int(shape[1])),
            {k: np.asarray(v).dtype for k, v in arrays.items()}, dict(properties or {}),
        )  # fmt: skip
        self.arrays = dict(arrays)
        self.masks = dict(masks or {})

    def full(self, band: str) -> Pixels:
        values = self.arrays[band]
        mask = self.masks.get(band)
        if mask is None:
            mask = np.broadcast_to(np.True_, values.shape)
        return values, mask

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        values, mask = self.full(band)
        return values[row : row + h, col : col + w], mask[row : row + h, col : col + w]


class GeoTiffSource(ImageSource):
    """Bands of a GeoTIFF / COG file, read by window; nodata and internal masks become masks."""

    def __init__(
        self,
        path: str | Path,
        *,
        band_names: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = str(path)
        try:
            with rasterio.open(self.path) as ds:
                names = (
                    list(band_names)
                    if band_names
                    else [d or f"b{i + 1}" for i, d in enumerate(ds.descriptions)]
                )
                if len(names) != ds.count:
                    raise EngineError(f"{self.path} has {ds.count} bands but {len(names)} names were given.")
                dtypes = {n: np.dtype(dt) for n, dt in zip(names, ds.dtypes, strict=True)}
                crs = ds.crs.to_string() if ds.crs else "EPSG:4326"
                super().__init__(crs, ds.transform, (ds.height, ds.width), dtypes, dict(properties or {}))
        except rasterio.errors.RasterioIOError as exc:
            raise EngineError(f"Cannot open {path}: {exc}") from exc
        self._index = {n: i + 1 for i, n in enumerate(names)}

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        with rasterio.open(self.path) as ds:
            idx = self._index[band]
            values = ds.read(idx, window=Window(col, row, w, h))
            mask = ds.read_masks(idx, window=Window(col, row, w, h)) > 0
        return values, mask


class ZarrSource(ImageSource):
    """Bands of a Zarr group: one 2-D array per band, or a 3-D array sliced at one index."""

    def __init__(
        self,
        arrays: Mapping[str, Any],
        *,
        crs: str,
        transform: Affine | Sequence[float],
        index: int | None = None,
        nodata: float | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        first = next(iter(arrays.values()))
        shape = tuple(first.shape[-2:])
        aff = transform if isinstance(transform, Affine) else Affine(*list(transform)[:6])
        super().__init__(
            crs, aff, (int(shape[0]), int(shape[1])),
            {k: np.dtype(v.dtype) for k, v in arrays.items()}, dict(properties or {}),
        )  # fmt: skip
        self.arrays = dict(arrays)
        self.index = index
        self.nodata = nodata

    def read(self, band: str, window: WindowT) -> Pixels:
        col, row, w, h = window
        arr = self.arrays[band]
        if self.index is None:
            values = np.asarray(arr[row : row + h, col : col + w])
        else:
            values = np.asarray(arr[self.index, row : row + h, col : col + w])
        if self.nodata is None:
            mask = np.ones(values.shape, dtype=bool)
        elif np.isnan(self.nodata):
            mask = ~np.isnan(values)
        else:
            mask = values != self.nodata
        return values, mask
