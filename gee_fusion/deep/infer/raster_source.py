"""Raster sources for sliding-window inference: what a model reads, one window at a time.

A :class:`RasterSource` knows its grid (``height``, ``width``, ``crs``, ``transform``) and returns,
for a window inside the raster, the per-sample parts of a batch (the contract of
:mod:`gee_fusion.deep`) without the batch dimension:

* ``s``: ``(T, C, h, w)`` float32 for each sensor ``s`` (normalised, missing pixels 0);
* ``f"{s}_doy"``: ``(T,)`` int64 day of year; ``f"{s}_pad"``: ``(T,)`` bool, True for a missing date;
* optional ``"prior"``: ``(h, w)`` integer class indices of an existing map (255 unknown);
* optional ``"valid"``: ``(h, w)`` bool, False where no prediction is wanted (outside the area of
  interest); those pixels are written as nodata.

:func:`read_tile` reads a tile that may cross the raster's bottom or right border and
reflect-pads it; :func:`stack_samples` stacks samples into a batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from affine import Affine

from gee_fusion.errors import DataError

SPATIAL_KEYS = ("prior", "valid")


@runtime_checkable
class RasterSource(Protocol):
    """A raster that a model can read window by window."""

    height: int
    width: int
    crs: str
    transform: Affine

    def read(self, rows: slice, cols: slice) -> dict[str, np.ndarray]:
        """Per-sample batch parts for the window ``rows x cols`` (inside the raster)."""
        ...


def _check_window(rows: slice, cols: slice, height: int, width: int) -> None:
    r0, r1, c0, c1 = rows.start or 0, rows.stop or 0, cols.start or 0, cols.stop or 0
    if not (0 <= r0 < r1 <= height and 0 <= c0 < c1 <= width):
        raise DataError(f"Window rows {rows}, cols {cols} is not inside the {height} x {width} raster.")


class ArraySource:
    """A source over in-memory or memory-mapped numpy arrays.

    Reads are views where the arrays are already float32 (no copy until the batch is stacked).

    Args:
        sensors: Sensor name -> ``(T, C, H, W)`` array (normalised, missing pixels 0).
        doy: Sensor name -> ``(T,)`` day of year of each date.
        crs: CRS code, e.g. ``"EPSG:32631"``.
        transform: Pixel-to-CRS affine transform.
        pad: Sensor name -> ``(T,)`` bool, True for missing dates (default: none missing).
        prior: Optional ``(H, W)`` class-index map used as an input (255 unknown).
        valid: Optional ``(H, W)`` bool mask; False pixels are written as nodata.
    """

    def __init__(
        self,
        sensors: Mapping[str, np.ndarray],
        *,
        doy: Mapping[str, Sequence[int] | np.ndarray],
        crs: str,
        transform: Affine,
        pad: Mapping[str, Sequence[bool] | np.ndarray] | None = None,
        prior: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        if not sensors:
            raise DataError("ArraySource needs at least one sensor array, e.g. sensors={'S2': array}.")
        shapes = {name: np.shape(a) for name, a in sensors.items()}
        if any(len(s) != 4 for s in shapes.values()) or len({s[2:] for s in shapes.values()}) != 1:
            raise DataError(f"Sensor arrays must be (T, C, H, W) on one grid, got shapes {shapes}.")
        self.height, self.width = (int(v) for v in next(iter(shapes.values()))[2:])
        self.crs = crs
        self.transform = transform
        self._sensors = dict(sensors)
        self._dates: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            if name not in doy:
                raise DataError(f"No day-of-year list for sensor {name!r}: pass doy={{{name!r}: [...]}}.")
            d = np.asarray(doy[name], dtype=np.int64)
            p = np.zeros(shape[0], bool) if pad is None or name not in pad else np.asarray(pad[name], bool)
            if d.shape != (shape[0],) or p.shape != (shape[0],):
                raise DataError(
                    f"Sensor {name!r} has {shape[0]} dates but doy/pad have shapes {d.shape}/{p.shape}."
                )
            self._dates[f"{name}_doy"] = d
            self._dates[f"{name}_pad"] = p
        self._spatial: dict[str, np.ndarray] = {}
        for key, arr in (("prior", prior), ("valid", valid)):
            if arr is not None:
                if np.shape(arr) != (self.height, self.width):
                    raise DataError(f"{key} has shape {np.shape(arr)}, expected {(self.height, self.width)}.")
                self._spatial[key] = arr

    def read(self, rows: slice, cols: slice) -> dict[str, np.ndarray]:
        """Per-sample batch parts for the window ``rows x cols``."""
        _check_window(rows, cols, self.height, self.width)
        out: dict[str, np.ndarray] = {}
        for name, arr in self._sensors.items():
            out[name] = np.asarray(arr[:, :, rows, cols], dtype=np.float32)
        out.update(self._dates)
        for key, arr in self._spatial.items():
            out[key] = np.asarray(arr[rows, cols])
        return out


class XarraySource:
    """A source over an ``xarray.Dataset`` (numpy- or dask-backed).

    Each sensor is a data variable with dims ``(time, band, y, x)`` (any names; the first two are
    taken as time and band, the last two as y and x). Its first coordinate gives the day of year
    (datetime64 or integers). NaN marks missing pixels: they are read as 0 and a date with no
    finite pixel in the window is marked padded (``f"{s}_pad"``). Optional variables ``prior`` and
    ``valid`` have dims ``(y, x)``.

    Args:
        dataset: The dataset.
        sensors: Names of the sensor variables (default ``S2`` and/or ``S1``, whichever exist).
        crs: CRS code (default ``dataset.attrs["crs"]``).
        transform: Affine transform (default: from regularly spaced ``x``/``y`` pixel-centre coords).
    """

    def __init__(
        self,
        dataset: Any,
        *,
        sensors: Sequence[str] | None = None,
        crs: str | None = None,
        transform: Affine | None = None,
    ) -> None:
        names = list(sensors) if sensors is not None else [s for s in ("S2", "S1") if s in dataset.data_vars]
        missing = [s for s in names if s not in dataset.data_vars]
        if not names or missing:
            raise DataError(
                f"Sensor variables {missing or ['S2', 'S1']} are not in the dataset: pass sensors=."
            )
        first = dataset[names[0]]
        if any(dataset[s].ndim != 4 for s in names) or len({dataset[s].shape[2:] for s in names}) != 1:
            raise DataError("Sensor variables must be (time, band, y, x) on one grid.")
        self._ds = dataset
        self._names = names
        self.height, self.width = (int(v) for v in first.shape[2:])
        found_crs = crs if crs is not None else dataset.attrs.get("crs")
        if found_crs is None:
            raise DataError("The dataset has no 'crs' attribute: pass crs='EPSG:...'.")
        self.crs = str(found_crs)
        self.transform = transform if transform is not None else self._transform_from_coords(first)
        self._doy = {s: self._day_of_year(dataset[s]) for s in names}

    @staticmethod
    def _transform_from_coords(var: Any) -> Affine:
        ydim, xdim = var.dims[2:]
        if xdim not in var.coords or ydim not in var.coords or var.shape[2] < 2 or var.shape[3] < 2:
            raise DataError("Cannot infer the transform without x/y coordinates: pass transform=.")
        x = np.asarray(var.coords[xdim], dtype=np.float64)
        y = np.asarray(var.coords[ydim], dtype=np.float64)
        dx, dy = np.diff(x), np.diff(y)
        if not (np.allclose(dx, dx[0]) and np.allclose(dy, dy[0])):
            raise DataError("x/y coordinates are not regularly spaced: pass transform=.")
        return Affine(dx[0], 0.0, x[0] - dx[0] / 2, 0.0, dy[0], y[0] - dy[0] / 2)

    @staticmethod
    def _day_of_year(var: Any) -> np.ndarray:
        tdim = var.dims[0]
        if tdim not in var.coords:
            raise DataError(f"Variable {var.name!r} has no {tdim!r} coordinate to take days of year from.")
        values = np.asarray(var.coords[tdim])
        if np.issubdtype(values.dtype, np.datetime64):
            days = values.astype("datetime64[D]")
            return (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
        return values.astype(np.int64)

    def read(self, rows: slice, cols: slice) -> dict[str, np.ndarray]:
        """Per-sample batch parts for the window ``rows x cols`` (computes dask chunks)."""
        _check_window(rows, cols, self.height, self.width)
        out: dict[str, np.ndarray] = {}
        for name in self._names:
            var = self._ds[name]
            arr = np.asarray(var.isel({var.dims[2]: rows, var.dims[3]: cols}).values, dtype=np.float32)
            finite = np.isfinite(arr)
            out[name] = np.where(finite, arr, np.float32(0))
            out[f"{name}_doy"] = self._doy[name]
            out[f"{name}_pad"] = np.logical_not(finite.reshape(arr.shape[0], -1).any(axis=1))
        for key in SPATIAL_KEYS:
            if key in self._ds.data_vars:
                var = self._ds[key]
                out[key] = np.asarray(var.isel({var.dims[0]: rows, var.dims[1]: cols}).values)
        return out


def read_tile(source: RasterSource, row: int, col: int, tile: int) -> dict[str, np.ndarray]:
    """Read the ``tile x tile`` window at (row, col), reflect-padding what lies outside the raster.

    The part inside the raster is read; the rest is filled with numpy's ``reflect`` padding, which
    reflects again as many times as needed when the pad exceeds the raster (a raster smaller than
    a tile) and repeats the edge of a 1-px raster. ``valid`` is padded with False.
    """
    h = min(tile, source.height - row)
    w = min(tile, source.width - col)
    sample = source.read(slice(row, row + h), slice(col, col + w))
    if h == tile and w == tile:
        return sample
    padded: dict[str, np.ndarray] = {}
    for key, arr in sample.items():
        if arr.ndim >= 2 and arr.shape[-2:] == (h, w):
            widths = [(0, 0)] * (arr.ndim - 2) + [(0, tile - h), (0, tile - w)]
            if key == "valid":
                padded[key] = np.pad(arr, widths, mode="constant", constant_values=False)
            else:
                padded[key] = np.pad(arr, widths, mode="reflect")
        else:
            padded[key] = arr
    return padded


def stack_samples(
    samples: Sequence[Mapping[str, np.ndarray]], out: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Stack per-sample parts into batch arrays (``(B, ...)``), into ``out`` buffers if given.

    ``prior`` becomes int64 as the batch contract requires; ``valid`` is kept for the caller.
    """
    keys = samples[0].keys()
    for s in samples[1:]:
        if s.keys() != keys:
            raise DataError(f"Samples have different keys: {sorted(keys)} vs {sorted(s.keys())}.")
    batch: dict[str, np.ndarray] = {}
    for key in keys:
        target = None if out is None else out.get(key)
        parts = [s[key] for s in samples]
        if target is not None:
            np.stack(parts, out=target)
            batch[key] = target
        else:
            batch[key] = np.stack(parts)
        if key == "prior" and batch[key].dtype != np.int64:
            batch[key] = batch[key].astype(np.int64)
    return batch
