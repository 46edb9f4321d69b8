"""Planning computePixels requests for an export: every band of a tile in one request, tiles as
large as Earth Engine allows and aligned to the output's blocks.

Earth Engine's limits per ``computePixels`` request: at most 48 MiB uncompressed (pixels x
bands x bytes per value), at most 32768 px a side and at most 1024 bands. xee sends one band
per request; here a request carries every band of its tile (a time series is one multi-band
image, e.g. ``collection.toBands()``), bands are split across requests only beyond 1024, and the
tile shape is chosen among multiples of the output block (a COG tile or a Zarr chunk) so that
the number of requests is as small as the limits allow. When even one block of all bands is too
large, tiles subdivide the block (halves, quarters...), so they still nest in the blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gee_fusion.errors import ExportError
from gee_fusion.grid import MAX_BANDS, MAX_GRID_SIDE, REQUEST_BYTE_LIMIT, PixelGrid


@dataclass(frozen=True)
class Tile:
    """One request: a window of the output grid (rows, columns) and a range of bands."""

    index: int
    row: int
    col: int
    height: int
    width: int
    band_start: int
    band_stop: int

    @property
    def window(self) -> tuple[slice, slice]:
        """(rows, columns) slices of the output grid."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    def grid(self, parent: PixelGrid) -> PixelGrid:
        """The tile's own pixel grid (same CRS and pixel size as ``parent``)."""
        return parent.window(self.col, self.row, self.width, self.height)

    def split(self) -> list[Tile]:
        """Two tiles that cover this one (halving its longer side), for a request the server
        refused as too heavy; a one-pixel tile cannot be split.

        Raises:
            ExportError: the tile is a single pixel.
        """
        if self.height == 1 and self.width == 1:
            raise ExportError(f"Tile {self.describe()} is a single pixel and cannot be split further.")
        if self.height >= self.width:
            top = self.height // 2
            halves = [
                (self.row, self.col, top, self.width),
                (self.row + top, self.col, self.height - top, self.width),
            ]
        else:
            left = self.width // 2
            halves = [
                (self.row, self.col, self.height, left),
                (self.row, self.col + left, self.height, self.width - left),
            ]
        return [Tile(self.index, r, c, h, w, self.band_start, self.band_stop) for r, c, h, w in halves]

    def describe(self) -> str:
        """``#index rows r0:r1 cols c0:c1 bands b0:b1`` for messages."""
        return (
            f"#{self.index} rows {self.row}:{self.row + self.height} cols {self.col}:{self.col + self.width} "
            f"bands {self.band_start}:{self.band_stop}"
        )


@dataclass(frozen=True)
class RequestPlan:
    """How an export's grid and bands are cut into computePixels requests."""

    grid: PixelGrid
    band_bytes: tuple[int, ...]
    tile_height: int
    tile_width: int
    band_groups: tuple[tuple[int, int], ...]
    byte_limit: int

    @property
    def tiles_down(self) -> int:
        """Tile rows."""
        return -(-self.grid.height // self.tile_height)

    @property
    def tiles_across(self) -> int:
        """Tile columns."""
        return -(-self.grid.width // self.tile_width)

    @property
    def requests(self) -> int:
        """Requests the plan makes (without retries or splits)."""
        return self.tiles_down * self.tiles_across * len(self.band_groups)

    @property
    def total_bytes(self) -> int:
        """Uncompressed bytes of the whole export."""
        return self.grid.width * self.grid.height * sum(self.band_bytes)

    @property
    def min_requests(self) -> int:
        """The fewest requests any plan could make under the limits (a lower bound)."""
        by_bytes = -(-self.total_bytes // self.byte_limit)
        by_bands = -(-len(self.band_bytes) // MAX_BANDS)
        by_side = -(-self.grid.width // MAX_GRID_SIDE) * -(-self.grid.height // MAX_GRID_SIDE)
        return max(by_bytes, by_bands, by_side, 1)

    def request_bytes(self, tile: Tile) -> int:
        """Uncompressed bytes of one request."""
        return tile.height * tile.width * sum(self.band_bytes[tile.band_start : tile.band_stop])

    def tiles(self) -> Iterator[Tile]:
        """Every request, row-major over tiles, then over band groups."""
        index = 0
        for row in range(0, self.grid.height, self.tile_height):
            for col in range(0, self.grid.width, self.tile_width):
                h = min(self.tile_height, self.grid.height - row)
                w = min(self.tile_width, self.grid.width - col)
                for start, stop in self.band_groups:
                    yield Tile(index, row, col, h, w, start, stop)
                    index += 1


def band_groups(band_bytes: Sequence[int], *, max_bands: int = MAX_BANDS) -> tuple[tuple[int, int], ...]:
    """Consecutive band ranges of at most ``max_bands`` bands, as even as possible."""
    n = len(band_bytes)
    count = -(-n // max_bands)
    edges = [round(i * n / count) for i in range(count + 1)]
    return tuple((edges[i], edges[i + 1]) for i in range(count))


def plan_requests(
    grid: PixelGrid,
    band_bytes: Sequence[int],
    *,
    block: tuple[int, int] = (256, 256),
    byte_limit: int = REQUEST_BYTE_LIMIT,
    max_side: int = MAX_GRID_SIDE,
    max_bands: int = MAX_BANDS,
) -> RequestPlan:
    """The plan with the fewest requests whose tiles are block multiples (or block fractions).

    Args:
        grid: The output grid.
        band_bytes: Bytes per value of each band, in order (4 for float32, 1 for uint8, ...).
        block: (height, width) of the output's blocks (COG tile, Zarr chunk); tiles are multiples
            of it (or, when one block of all bands exceeds ``byte_limit``, fractions of it).
        byte_limit: Largest response allowed (Earth Engine: 48 MiB).
        max_side: Largest grid side of one request (Earth Engine: 32768 px).
        max_bands: Most bands of one request (Earth Engine: 1024).

    Raises:
        ExportError: no band, a band of no bytes, a bad block, or one pixel of a band group
            already over ``byte_limit``.
    """
    sizes = tuple(int(b) for b in band_bytes)
    if not sizes:
        raise ExportError("Nothing to export: the image has no bands.")
    if min(sizes) <= 0:
        raise ExportError(f"Every band needs a positive size in bytes, got {list(sizes)}.")
    bh, bw = block
    if bh < 1 or bw < 1:
        raise ExportError(f"block must be positive (height, width), got {block}.")
    groups = band_groups(sizes, max_bands=max_bands)
    per_pixel = max(sum(sizes[a:b]) for a, b in groups)
    pixels = byte_limit // per_pixel
    if pixels < 1:
        raise ExportError(f"One pixel of {per_pixel} bytes is over the request limit of {byte_limit} bytes.")
    while bh * bw > pixels and (bh > 1 or bw > 1):  # a block is too heavy: subdivide it
        if bh >= bw:
            bh = max(1, bh // 2)
        else:
            bw = max(1, bw // 2)
    best: tuple[int, int, int] | None = None  # (requests, -area, height) of the best shape
    best_shape = (bh, bw)
    for k in range(1, min(-(-grid.height // bh), max(max_side // bh, 1)) + 1):
        h = min(k * bh, grid.height)
        w = (min(pixels // h, max_side) // bw) * bw
        if w == 0:
            break
        w = min(w, -(-grid.width // bw) * bw)  # no wider than the grid, rounded up to blocks
        key = (-(-grid.height // h) * -(-grid.width // w), -(h * w), h)
        if best is None or key < best:
            best, best_shape = key, (h, w)
    h, w = best_shape
    return RequestPlan(grid, sizes, min(h, grid.height), min(w, grid.width), groups, byte_limit)


def xee_default_requests(
    grid: PixelGrid, *, bands: int, images: int = 1, chunk: tuple[int, int] = (512, 256)
) -> int:
    """The requests xee 0.1.x makes with its defaults: one band x at most 48 images x one
    (512 x 256 px) chunk per computePixels call."""
    tiles = math.ceil(grid.height / chunk[0]) * math.ceil(grid.width / chunk[1])
    return bands * math.ceil(images / 48) * tiles
