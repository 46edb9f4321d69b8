"""Pixel grids and projections of the local engine, and resampling of leaves into a grid.

A :class:`PixelGrid` is what Earth Engine calls a request grid: a CRS, an affine transform from
pixel to CRS coordinates, and dimensions. Every pixel computation of the local engine is
pulled in one grid; leaves (assets) are read and resampled into it with rasterio.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from gee_fusion.errors import GridError
from gee_fusion.grid import EE_TRANSFORM_FIELDS, MAX_GRID_SIDE, PixelGrid

METRES_PER_DEGREE = 111319.49079327357
"""Metres in one degree at the equator: Earth Engine's conversion of a scale in metres to degrees."""

RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "bicubic": Resampling.cubic,
}


@functools.lru_cache(maxsize=256)
def crs_of(code: str) -> CRS:
    """Parse a CRS code (``EPSG:32633``) or WKT string once."""
    try:
        return CRS.from_user_input(code)
    except Exception as exc:  # rasterio raises CRSError subclasses of several kinds
        raise GridError(f"Unknown CRS {code!r}: use an 'EPSG:<code>' string or WKT.") from exc


@functools.lru_cache(maxsize=1024)
def same_crs(a: str, b: str) -> bool:
    """Whether two CRS codes name the same coordinate reference system."""
    return a == b or crs_of(a) == crs_of(b)


@dataclass(frozen=True)
class Projection:
    """An Earth Engine projection: CRS plus the affine transform of its base pixel."""

    crs: str
    transform: tuple[float, float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

    @property
    def affine(self) -> Affine:
        """The transform as an :class:`affine.Affine`."""
        return Affine(*self.transform)

    @property
    def nominal_scale(self) -> float:
        """Pixel size in the CRS units (metres for projected CRSs, degrees otherwise).

        Earth Engine reports nominal scale in metres; for a geographic CRS we convert one
        degree at the equator (111 319.49 m), as Earth Engine does for its default projection.
        """
        a = self.affine
        scale = float(np.sqrt(abs(a.a * a.e - a.b * a.d)))
        if crs_of(self.crs).is_geographic:
            return scale * METRES_PER_DEGREE
        return scale

    def at_scale(self, scale: float) -> Projection:
        """The same CRS with square pixels of ``scale`` CRS units (metres if projected)."""
        if crs_of(self.crs).is_geographic:
            scale = scale / METRES_PER_DEGREE
        a = self.affine
        return Projection(self.crs, (scale, 0.0, a.c, 0.0, -scale, a.f))

    def to_info(self) -> dict[str, object]:
        """Earth Engine's JSON shape of a projection."""
        return {"type": "Projection", "crs": self.crs, "transform": list(self.transform)}


DEFAULT_PROJECTION = Projection("EPSG:4326", (1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
"""Earth Engine's default projection for computed images (WGS84, 1 degree)."""


def request_grid(grid: dict[str, object]) -> PixelGrid:
    """The pixel grid of a computePixels request's ``grid`` object, within Earth Engine's limits.

    Raises:
        GridError: a malformed grid, or one over 32768 px a side (Earth Engine refuses those).
    """
    try:
        dims = grid["dimensions"]
        if not isinstance(dims, dict):
            raise TypeError("dimensions is not an object")
        width, height = int(dims["width"]), int(dims["height"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GridError("computePixels grid needs 'dimensions': {'width': W, 'height': H}.") from exc
    if width > MAX_GRID_SIDE or height > MAX_GRID_SIDE:  # Earth Engine's own words, then what to do
        raise GridError(
            f"Pixel grid dimensions ({width}x{height}) must be less than or equal to {MAX_GRID_SIDE}. "
            f"Split the request into tiles of at most {MAX_GRID_SIDE} px a side."
        )
    raw = grid.get("affineTransform") or {}
    if not isinstance(raw, dict):
        raise GridError(
            "computePixels grid 'affineTransform' must be an object with scaleX, shearX, "
            f"translateX, shearY, scaleY, translateY; got {type(raw).__name__}."
        )
    t = [float(raw.get(f, 0.0)) for f in EE_TRANSFORM_FIELDS]
    if t[0] == 0.0 and t[4] == 0.0:
        t = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    crs = str(grid.get("crsCode") or grid.get("crsWkt") or "EPSG:4326")
    return PixelGrid(crs, (t[0], t[1], t[2], t[3], t[4], t[5]), width, height)


def six(a: Affine) -> tuple[float, float, float, float, float, float]:
    """The six coefficients of an affine transform."""
    return (a.a, a.b, a.c, a.d, a.e, a.f)


def integer_offset(src: PixelGrid | tuple[str, Affine], dst: PixelGrid) -> tuple[int, int] | None:
    """Pixel offset (col, row) of ``dst``'s origin in ``src`` if both grids align exactly.

    Returns None when the grids differ in CRS, pixel size, rotation or sub-pixel phase, in
    which case the data must be resampled.
    """
    src_crs, src_aff = (src.crs, src.affine) if isinstance(src, PixelGrid) else src
    d = dst.affine
    if not same_crs(src_crs, dst.crs):
        return None
    pairs = ((src_aff.a, d.a), (src_aff.b, d.b), (src_aff.d, d.d), (src_aff.e, d.e))
    if not all(x == y or abs(x - y) <= 1e-9 for x, y in pairs):  # np.allclose(atol=1e-9), 50x faster
        return None
    col, row = ~src_aff @ (d.c, d.f)
    icol, irow = round(col), round(row)
    if abs(col - icol) > 1e-6 or abs(row - irow) > 1e-6:
        return None
    return int(icol), int(irow)


def slice_padded(
    array: np.ndarray, mask: np.ndarray, col: int, row: int, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a (height, width) window at (col, row) out of 2-D arrays, masking what falls outside.

    Zero-copy when the window lies fully inside the source.
    """
    h, w = array.shape
    if col >= 0 and row >= 0 and col + width <= w and row + height <= h:
        return array[row : row + height, col : col + width], mask[row : row + height, col : col + width]
    out = np.zeros((height, width), dtype=array.dtype)
    out_mask = np.zeros((height, width), dtype=bool)
    r0, r1 = max(row, 0), min(row + height, h)
    c0, c1 = max(col, 0), min(col + width, w)
    if r0 < r1 and c0 < c1:
        out[r0 - row : r1 - row, c0 - col : c1 - col] = array[r0:r1, c0:c1]
        out_mask[r0 - row : r1 - row, c0 - col : c1 - col] = mask[r0:r1, c0:c1]
    return out, out_mask


def _reproject(src: np.ndarray, src_crs: str, src_transform: Affine, dst: PixelGrid, how: Resampling,
               dtype: np.dtype, dst_nodata: float | None = None) -> np.ndarray:  # fmt: skip
    out = np.zeros(dst.shape, dtype=dtype)
    reproject(
        source=np.ascontiguousarray(src, dtype=dtype),
        destination=out,
        src_transform=src_transform,
        src_crs=crs_of(src_crs),
        dst_transform=dst.affine,
        dst_crs=crs_of(dst.crs),
        resampling=how,
        src_nodata=None,
        dst_nodata=dst_nodata,
    )
    return out


def nearest_indices(src_transform: Affine, dst: PixelGrid) -> tuple[np.ndarray, np.ndarray] | None:
    """Source (rows, cols) containing each destination pixel centre, as Earth Engine samples
    nearest neighbours; None when either grid is rotated or sheared (same CRS assumed)."""
    s, d = src_transform, dst.affine
    if s.b != 0 or s.d != 0 or d.b != 0 or d.e == 0 or d.d != 0:
        return None
    xs = d.c + (np.arange(dst.width) + 0.5) * d.a
    ys = d.f + (np.arange(dst.height) + 0.5) * d.e
    cols = np.floor((xs - s.c) / s.a).astype(np.int64)
    rows = np.floor((ys - s.f) / s.e).astype(np.int64)
    return rows, cols


def gather(
    array: np.ndarray, mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, *,
    shape: tuple[int, int], origin: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Pick ``array[rows, cols]`` (an outer product of row and column indices) from a window
    of a raster of ``shape`` whose top-left pixel is ``origin``; indices outside the raster
    are masked."""
    h, w = shape
    r0, c0 = origin
    row_ok, col_ok = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    ri = np.clip(rows - r0, 0, array.shape[0] - 1)
    ci = np.clip(cols - c0, 0, array.shape[1] - 1)
    values = take_columns(array, ci).take(ri, axis=0)  # two 1-D takes: far faster than an outer index
    mask = np.asarray(mask)
    inside = row_ok[:, None] & col_ok[None, :]
    if mask.ndim == 2 and mask.size and mask.strides == (0, 0):  # a constant mask (a broadcast scalar)
        return values, inside if bool(mask.flat[0]) else np.zeros_like(inside)
    return values, mask.take(ri, axis=0).take(ci, axis=1) & inside


_WIDER: dict[int, np.dtype] = {1: np.dtype(np.uint16), 2: np.dtype(np.uint32), 4: np.dtype(np.uint64)}
"""Unsigned integer twice as wide as a pixel of 1, 2 or 4 bytes."""


def take_columns(array: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``array.take(cols, axis=1)`` of a 2-D array; when ``cols`` repeats consecutive columns twice
    each (a 20 m band sampled on a 10 m grid), by widening each pixel to a word holding it twice:
    about 5 times faster than the take."""
    n = cols.size
    wide = _WIDER.get(array.dtype.itemsize)
    if wide is None or array.dtype.kind not in "biuf" or array.ndim != 2 or n < 2:
        return array.take(cols, axis=1)
    first, phase = int(cols[0]), int(cols[1] != cols[0])  # phase 1: the first pixel is a pair's second
    pairs = (n + phase + 1) // 2
    if first + pairs > array.shape[1] or not np.array_equal(cols, first + (np.arange(n) + phase) // 2):
        return array.take(cols, axis=1)
    narrow = np.dtype(f"u{array.dtype.itemsize}")
    words = np.ascontiguousarray(array[:, first : first + pairs]).view(narrow).astype(wide)
    words |= words << (8 * array.dtype.itemsize)
    return words.view(array.dtype)[:, phase : phase + n]


def sample_nearest(
    array: np.ndarray, mask: np.ndarray, src_transform: Affine, dst: PixelGrid
) -> tuple[np.ndarray, np.ndarray] | None:
    """Nearest-neighbour sampling by index arithmetic (same CRS, both grids axis-aligned).

    Each destination pixel takes the source pixel containing its centre, as Earth Engine
    does; pixels outside the source are masked. Returns None when the fast path does not
    apply (rotation or shear).
    """
    idx = nearest_indices(src_transform, dst)
    if idx is None:
        return None
    return gather(array, mask, *idx, shape=array.shape)


def warp(
    array: np.ndarray,
    mask: np.ndarray,
    src_crs: str,
    src_transform: Affine,
    dst: PixelGrid,
    *,
    resampling: str = "nearest",
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a 2-D array and its validity mask into ``dst``.

    Nearest neighbour in the same CRS uses index arithmetic; otherwise rasterio. For bilinear
    and bicubic, masked source pixels do not contribute: values and validity are resampled
    with the same kernel and divided, and a pixel is valid where at least half the kernel
    weight came from valid pixels. Pixels that receive no valid source pixel are masked.
    """
    if resampling not in RESAMPLING:
        raise GridError(f"Unknown resampling {resampling!r}: use one of {sorted(RESAMPLING)}.")
    if resampling == "nearest" and same_crs(src_crs, dst.crs):
        fast = sample_nearest(array, mask, src_transform, dst)
        if fast is not None:
            return fast
    work_dtype = array.dtype
    if resampling == "nearest":
        tmp: np.dtype
        if work_dtype == np.bool_:
            tmp = np.dtype(np.uint8)
        elif work_dtype == np.int8:
            tmp = np.dtype(np.int16)
        elif work_dtype in (np.int64, np.uint64):
            tmp = np.dtype(np.float64)
        else:
            tmp = work_dtype
        out = _reproject(array, src_crs, src_transform, dst, Resampling.nearest, tmp)
        valid = _reproject(np.asarray(mask, dtype=np.uint8), src_crs, src_transform, dst,
                           Resampling.nearest, np.dtype(np.uint8), dst_nodata=0)  # fmt: skip
        return out.astype(work_dtype, copy=False), valid.astype(bool)
    how = RESAMPLING[resampling]
    weight = np.asarray(mask, dtype=np.float64)
    num = _reproject(np.where(mask, array, 0).astype(np.float64) * weight, src_crs, src_transform, dst, how,
                     np.dtype(np.float64))  # fmt: skip
    den = _reproject(weight, src_crs, src_transform, dst, how, np.dtype(np.float64))
    valid = den >= 0.5
    values = np.where(valid, num / np.where(valid, den, 1.0), 0.0)
    if work_dtype.kind in "iub":
        info = np.iinfo(work_dtype) if work_dtype.kind != "b" else None
        values = np.rint(values)
        if info is not None:
            values = np.clip(values, info.min, info.max)
    return values.astype(work_dtype), valid


def grid_window_in(
    src_crs: str,
    src_transform: Affine,
    src_shape: tuple[int, int],
    dst: PixelGrid,
    *,
    margin: int | None = None,
) -> tuple[int, int, int, int] | None:
    """The window (col, row, width, height) of a source raster that covers ``dst``.

    The margin (source pixels) defaults to enough for a resampling kernel at the grids'
    scale ratio, so tiled requests give the same pixels as one request. Returns None when
    the request grid does not overlap the source at all.
    """
    bounds = dst.bounds()
    if not same_crs(src_crs, dst.crs):
        bounds = transform_bounds(crs_of(dst.crs), crs_of(src_crs), *bounds, densify_pts=21)
    if margin is None:
        src_px = float(np.sqrt(abs(src_transform.a * src_transform.e - src_transform.b * src_transform.d)))
        dst_px = (bounds[2] - bounds[0]) / max(dst.width, 1)
        margin = 2 + 2 * int(np.ceil(max(dst_px / src_px, 1.0)))
    inv = ~src_transform
    cols, rows = [], []
    xs, ys = (bounds[0], bounds[2]), (bounds[1], bounds[3])
    for x, y in ((x, y) for x in xs for y in ys):
        c, r = inv @ (x, y)
        cols.append(c)
        rows.append(r)
    c0 = max(int(np.floor(min(cols))) - margin, 0)
    r0 = max(int(np.floor(min(rows))) - margin, 0)
    c1 = min(int(np.ceil(max(cols))) + margin, src_shape[1])
    r1 = min(int(np.ceil(max(rows))) + margin, src_shape[0])
    if c0 >= c1 or r0 >= r1:
        return None
    return c0, r0, c1 - c0, r1 - r0


def parse_transform(value: Sequence[float] | None) -> tuple[float, float, float, float, float, float]:
    """Validate an Earth Engine ``crsTransform`` list of six numbers."""
    if value is None:
        return DEFAULT_PROJECTION.transform
    vals = [float(v) for v in value]
    if len(vals) != 6:
        raise GridError(f"crsTransform must have 6 numbers [a, b, c, d, e, f], got {len(vals)}.")
    return (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5])
