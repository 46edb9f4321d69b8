"""The Image value of the local engine: bands with per-band masks, pulled lazily in a grid.

An :class:`Image` holds metadata only (band names, pixel types, native projections,
properties). Its pixels are computed on demand by each band's :class:`PixelNode` in a
request :class:`~gee_fusion.local.grid.PixelGrid`; results are memoised per request by the
:class:`PixelContext`, so a sub-expression shared by several bands is computed once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gee_fusion.grid import PixelGrid
from gee_fusion.local.grid import DEFAULT_PROJECTION, Projection

Pixels = tuple[np.ndarray, np.ndarray]
"""(values, mask): two (height, width) arrays; mask is boolean, True where valid."""


class PixelContext:
    """Per-request memo of computed pixels, keyed by node identity and grid.

    Given the request's root nodes, only nodes with several consumers are kept, and each is
    released after its last consumer has read it, so memory stays near the working set
    instead of holding every intermediate array until the request ends. Without roots every
    node is kept (small requests, tests).
    """

    def __init__(self, roots: list[PixelNode] | None = None) -> None:
        self._memo: dict[tuple[int, PixelGrid], Any] = {}
        self._uses: dict[tuple[int, PixelGrid], int] = {}
        self._keep: dict[int, object] = {}
        self._counts: dict[int, int] | None = consumer_counts(roots) if roots is not None else None
        self._lock = threading.Lock()

    def pixels(self, node: PixelNode, grid: PixelGrid) -> Pixels:
        """Compute (or recall) the pixels of ``node`` in ``grid``."""
        key = (id(node), grid)
        with self._lock:
            if key in self._memo:
                hit = self._memo[key]
                if self._counts is not None:
                    self._uses[key] -= 1
                    if self._uses[key] <= 0:
                        del self._memo[key], self._uses[key]
                return hit
        out = node.compute(self, grid)
        uses = self._counts.get(id(node), 0) if self._counts is not None else 2
        if uses > 1:
            with self._lock:
                self._memo[key] = out
                self._uses[key] = uses - 1
                self._keep[id(node)] = node
        return out


class PixelNode:
    """A lazily computed band. Subclasses implement :meth:`compute`.

    ``footprint_rule`` says how the node's footprint follows from its inputs' (see
    :func:`gee_fusion.local.algorithms.geometry.computed_footprint`): ``"intersection"`` for
    per-pixel operations, ``"union"`` for reductions over a collection's images.
    """

    footprint_rule = "intersection"

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        """Return (values, mask) of this band in ``grid``."""
        raise NotImplementedError

    def children(self) -> tuple[PixelNode, ...]:
        """The nodes this one reads (for consumer counting); none by default."""
        return ()


def consumer_counts(roots: list[PixelNode]) -> dict[int, int]:
    """How many times each node will be read: once per root occurrence and per parent edge."""
    counts: dict[int, int] = {}
    seen: set[int] = set()
    stack = list(roots)
    for r in roots:
        counts[id(r)] = counts.get(id(r), 0) + 1
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for child in node.children():
            counts[id(child)] = counts.get(id(child), 0) + 1
            stack.append(child)
    return counts


class ConstantNode(PixelNode):
    """A constant band: broadcast views, no memory per pixel."""

    def __init__(self, value: float | int | np.ndarray, dtype: np.dtype) -> None:
        self.value = value
        self.dtype = dtype

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        value = np.asarray(self.value, dtype=self.dtype)  # an array constant: every pixel holds it
        values = np.broadcast_to(value, grid.shape + value.shape)
        return values, np.broadcast_to(np.True_, grid.shape)


class FuncNode(PixelNode):
    """A band computed by ``fn`` from the pixels of other nodes in the same grid."""

    def __init__(self, fn: Callable[..., Pixels], inputs: Sequence[PixelNode]) -> None:
        self.fn = fn
        self.inputs = tuple(inputs)

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        return self.fn(*(ctx.pixels(node, grid) for node in self.inputs))

    def children(self) -> tuple[PixelNode, ...]:
        return self.inputs


class GridFuncNode(PixelNode):
    """A band computed by ``fn(ctx, grid)``; for nodes that need the grid itself."""

    def __init__(self, fn: Callable[[PixelContext, PixelGrid], Pixels]) -> None:
        self.fn = fn

    def compute(self, ctx: PixelContext, grid: PixelGrid) -> Pixels:
        return self.fn(ctx, grid)


class ClipNode(GridFuncNode):
    """The inside mask of a clip geometry; the geometry is kept (it bounds the image's footprint)."""

    def __init__(self, fn: Callable[[PixelContext, PixelGrid], Pixels], geometry: Any) -> None:
        super().__init__(fn)
        self.geometry = geometry


@dataclass(frozen=True)
class Band:
    """One band: name, pixel type, native projection and its lazily computed pixels."""

    name: str
    dtype: np.dtype
    node: PixelNode
    projection: Projection = DEFAULT_PROJECTION
    dimensions: tuple[int, int] | None = None
    value_range: tuple[float, float] | None = None
    rank: int = 0
    """Array dimensions of each pixel (0: scalar pixels; an array band's values are
    ``(height, width, *shape)`` float64, absent elements NaN at the end of an axis)."""

    def renamed(self, name: str) -> Band:
        """A copy of the band under another name."""
        return replace(self, name=name)

    def to_info(self) -> dict[str, Any]:
        """Earth Engine's JSON shape of a band in ``Image.getInfo()``."""
        info: dict[str, Any] = {
            "id": self.name,
            "data_type": pixel_type_info(self.dtype, self.value_range, self.rank),
            "crs": self.projection.crs,
            "crs_transform": list(self.projection.transform),
        }
        if self.dimensions is not None:
            info["dimensions"] = list(self.dimensions)
        return info


@dataclass(frozen=True)
class Image:
    """An Earth Engine image: an ordered tuple of bands plus properties."""

    bands: tuple[Band, ...]
    properties: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    version: int | None = None

    @property
    def band_names(self) -> list[str]:
        """Names of the bands, in order."""
        return [b.name for b in self.bands]

    def with_bands(self, bands: Sequence[Band], *, keep_properties: bool = True) -> Image:
        """A new image with other bands (and the same properties unless told otherwise)."""
        return Image(
            tuple(bands),
            dict(self.properties) if keep_properties else {},
            self.id if keep_properties else None,
            self.version if keep_properties else None,
        )

    def with_properties(self, properties: dict[str, Any]) -> Image:
        """A new image with the same bands and other properties."""
        return Image(self.bands, properties, self.id, self.version)

    @property
    def default_projection(self) -> Projection:
        """Projection of the first band (Earth Engine's ``Image.projection()``)."""
        return self.bands[0].projection if self.bands else DEFAULT_PROJECTION

    def native_grid(self) -> PixelGrid | None:
        """The grid of the first band if it has dimensions (a loaded asset)."""
        if not self.bands or self.bands[0].dimensions is None:
            return None
        band = self.bands[0]
        w, h = band.dimensions  # type: ignore[misc]
        return PixelGrid(band.projection.crs, band.projection.transform, w, h)

    def get(self, name: str) -> Any:
        """A property, including the virtual ``system:id`` and ``system:version``."""
        if name == "system:id":
            return self.id
        if name == "system:version":
            return self.version
        return self.properties.get(name)

    def to_info(self) -> dict[str, Any]:
        """Earth Engine's JSON shape of ``Image.getInfo()``."""
        info: dict[str, Any] = {"type": "Image", "bands": [b.to_info() for b in self.bands]}
        if self.id is not None:
            info["id"] = self.id
        if self.version is not None:
            info["version"] = self.version
        if self.properties:
            info["properties"] = self.properties
        return info


def pixel_type_info(
    dtype: np.dtype, value_range: tuple[float, float] | None = None, rank: int = 0
) -> dict[str, Any]:
    """Earth Engine's ``PixelType`` JSON for a numpy dtype (with ``dimensions`` for array pixels)."""
    if rank:
        return {"type": "PixelType", "precision": "double", "dimensions": rank}
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return {"type": "PixelType", "precision": "int", "min": 0, "max": 1}
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        lo, hi = value_range if value_range is not None else (info.min, info.max)
        return {"type": "PixelType", "precision": "int", "min": int(lo), "max": int(hi)}
    precision = "double" if dtype == np.float64 else "float"
    return {"type": "PixelType", "precision": precision}


def dtype_from_ee(spec: Any) -> np.dtype:
    """A numpy dtype from an Earth Engine pixel type name or ``PixelType`` JSON."""
    names = {
        "uint8": np.uint8, "byte": np.uint8, "int8": np.int8, "uint16": np.uint16,
        "int16": np.int16, "short": np.int16, "uint32": np.uint32, "int32": np.int32,
        "int": np.int32, "int64": np.int64, "long": np.int64, "float": np.float32,
        "double": np.float64,
    }  # fmt: skip
    if isinstance(spec, dict):
        if spec.get("precision") == "int":
            lo, hi = spec.get("min", -(2**31)), spec.get("max", 2**31 - 1)
            for dt in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64):
                info = np.iinfo(dt)
                if info.min <= lo and hi <= info.max:
                    return np.dtype(dt)
            return np.dtype(np.int64)
        spec = spec.get("precision", "float")
    key = str(spec).lower()
    if key not in names:
        from gee_fusion.errors import EngineError

        raise EngineError(f"Unknown pixel type {spec!r}: use one of {sorted(names)}.")
    return np.dtype(names[key])
