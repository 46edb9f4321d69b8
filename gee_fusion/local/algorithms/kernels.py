"""Kernels: the Kernel value and the ``Kernel.*`` algorithms that build and combine them.

A :class:`Kernel` is a recipe for a 2-D weight array with a focus pixel. Kernels in pixels
resolve to the same weights everywhere; kernels in metres resolve per request grid (Earth
Engine: "it will resize when the zoom-level is changed"): the radius (and a Gaussian's
sigma) is divided by the grid's nominal pixel size in metres
(:attr:`~gee_fusion.local.grid.Projection.nominal_scale`; a degree is 111 319.49 m).

Weight layout follows Earth Engine's printed kernels: ``weights[row][col]``, row 0 at the top
(north in a north-up grid), the focus at column ``x`` and row ``y``. Operators apply the
weights as given, without flipping (a correlation: ``out[r, c] = sum w[i, j] *
in[r + i - y, c + j - x]``), as Earth Engine's "linear combination of the kernel values and the
input image pixels covered by the kernel".

Shapes of the radius kernels (``r`` the radius in pixels, ``dx``/``dy`` offsets from the
focus, on a ``2 * floor(r) + 1`` square): square ``|dx|, |dy| <= r``; rectangle the same per
axis; circle ``dx² + dy² <= r²``; diamond ``|dx| + |dy| <= r``; octagon ``|dx| + |dy| <= 1.5 r``;
plus ``dx == 0 or dy == 0``; cross ``|dx| == |dy|``; the distance kernels (euclidean,
manhattan, chebyshev) give the distance on the whole square. These reproduce every example
in Earth Engine's API reference (radius 3). The Gaussian is sampled at pixel centres on the
square ``|dx|, |dy| < r`` (strictly inside the radius), which reproduces Earth Engine's
documented ``ee.Kernel.gaussian({radius: 3})`` (a 5 x 5 kernel, centre 0.162); the rule for
other radii is inferred from that one example. ``normalize`` divides by the sum of the
weights (a zero sum is left as is); ``magnitude`` then scales every weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.registry import algorithm


@dataclass(frozen=True, eq=False)
class KernelWeights:
    """Resolved kernel weights: a (height, width) float64 array and the focus (x, y)."""

    weights: np.ndarray
    x: int
    y: int

    @property
    def height(self) -> int:
        """Number of rows."""
        return int(self.weights.shape[0])

    @property
    def width(self) -> int:
        """Number of columns."""
        return int(self.weights.shape[1])

    @property
    def pad(self) -> int:
        """Pixels needed around a request grid to apply the kernel: its largest reach."""
        return max(self.x, self.y, self.width - 1 - self.x, self.height - 1 - self.y, 0)

    def offsets(self) -> list[tuple[int, int, float]]:
        """(dy, dx, weight) of every non-zero weight, row by row (top to bottom, left to right)."""
        rows, cols = np.nonzero(self.weights)
        return [
            (int(r) - self.y, int(c) - self.x, float(self.weights[r, c]))
            for r, c in zip(rows, cols, strict=True)
        ]

    def to_info(self) -> dict[str, Any]:
        """The weights in the JSON shape of :meth:`Kernel.to_info`."""
        w = self.weights
        as_list = [[int(v) if float(v).is_integer() else float(v) for v in row] for row in w.tolist()]
        return {"width": self.width, "height": self.height, "x": self.x, "y": self.y, "weights": as_list}


Builder = Callable[[float | None], KernelWeights]


@dataclass(frozen=True, eq=False)
class Kernel:
    """An Earth Engine kernel: how to build its weights for a pixel size (metres)."""

    kind: str
    units: str
    build: Builder
    params: dict[str, Any] = field(default_factory=dict)

    def resolve(self, scale: float | None = None) -> KernelWeights:
        """The weights for pixels of ``scale`` metres (needed only for kernels in metres)."""
        if self.units == "meters" and not (scale and scale > 0):
            raise EngineError(
                f"Kernel.{self.kind}: a kernel in meters needs a pixel size; it is resolved in "
                "the request grid when applied to an image."
            )
        return self.build(scale)

    def to_info(self) -> dict[str, Any]:
        """A readable JSON form: type, kind, units, parameters, and the weights in pixels.

        Earth Engine's own kernel JSON is not documented; this shape is the local engine's.
        A kernel in metres has no fixed weights, so only its parameters are given.
        """
        info: dict[str, Any] = {"type": "Kernel", "kind": self.kind, "units": self.units}
        info.update({k: v for k, v in self.params.items() if v is not None})
        if self.units == "pixels":
            info.update(self.resolve().to_info())
        return info


def _check_units(units: str | None, where: str) -> str:
    units = "pixels" if units is None else str(units)
    if units not in ("pixels", "meters"):
        raise EngineError(f"Kernel.{where}: units must be 'pixels' or 'meters', got {units!r}.")
    return units


def _finish(weights: np.ndarray, normalize: bool, magnitude: float) -> np.ndarray:
    """Normalise to sum 1 (unless the sum is 0), then scale by ``magnitude``."""
    w = np.asarray(weights, dtype=np.float64)
    if normalize:
        total = float(w.sum())
        if total != 0.0:
            w = w / total
    return w * float(magnitude)


def _in_pixels(value: float, units: str, scale: float | None) -> float:
    return float(value) if units == "pixels" else float(value) / float(scale)  # type: ignore[arg-type]


def _grid(half_x: int, half_y: int) -> tuple[np.ndarray, np.ndarray]:
    dy, dx = np.mgrid[-half_y : half_y + 1, -half_x : half_x + 1]
    return dx.astype(np.float64), dy.astype(np.float64)


def shape_weights(kind: str, radius: float, y_radius: float | None = None) -> np.ndarray:
    """Unnormalised weights (0/1 shapes, distances) of a radius kernel, ``radius`` in pixels."""
    if radius < 0 or (y_radius is not None and y_radius < 0):
        raise EngineError(f"Kernel.{kind}: the radius must not be negative, got {radius}.")
    ry = radius if y_radius is None else y_radius
    dx, dy = _grid(int(np.floor(radius)), int(np.floor(ry)))
    ax, ay = np.abs(dx), np.abs(dy)
    shapes: dict[str, Callable[[], np.ndarray]] = {
        "square": lambda: (ax <= radius) & (ay <= ry),
        "rectangle": lambda: (ax <= radius) & (ay <= ry),
        "circle": lambda: dx * dx + dy * dy <= radius * radius,
        "diamond": lambda: ax + ay <= radius,
        "octagon": lambda: ax + ay <= 1.5 * radius,
        "plus": lambda: (ax == 0) | (ay == 0),
        "cross": lambda: ax == ay,
        "euclidean": lambda: np.sqrt(dx * dx + dy * dy),
        "manhattan": lambda: ax + ay,
        "chebyshev": lambda: np.maximum(ax, ay),
    }
    if kind not in shapes:
        raise EngineError(f"Unknown kernel type {kind!r}: use one of {sorted(shapes)}.")
    return np.asarray(shapes[kind](), dtype=np.float64)


def gaussian_weights(radius: float, sigma: float) -> np.ndarray:
    """A Gaussian sampled at pixel centres strictly inside ``radius`` (pixels), unnormalised."""
    if radius < 0:
        raise EngineError(f"Kernel.gaussian: the radius must not be negative, got {radius}.")
    if sigma <= 0:
        raise EngineError(f"Kernel.gaussian: sigma must be positive, got {sigma}.")
    half = max(int(np.ceil(radius)) - 1, 0)
    dx, dy = _grid(half, half)
    return np.exp(-(dx * dx + dy * dy) / (2.0 * sigma * sigma))


def radius_kernel(kind: str, radius: float, units: str | None = "pixels", normalize: bool = True,
                  magnitude: float = 1.0, y_radius: float | None = None) -> Kernel:  # fmt: skip
    """A shape or distance kernel (square, circle, ..., chebyshev) as a :class:`Kernel`."""
    units = _check_units(units, kind)
    radius = float(radius)
    if radius < 0 or (y_radius is not None and y_radius < 0):
        raise EngineError(f"Kernel.{kind}: the radius must not be negative, got {radius}.")
    shape_weights(kind, 0.0 if units == "meters" else radius, None if units == "meters" else y_radius)

    def build(scale: float | None) -> KernelWeights:
        r = _in_pixels(radius, units, scale)
        ry = None if y_radius is None else _in_pixels(y_radius, units, scale)
        w = _finish(shape_weights(kind, r, ry), normalize, magnitude)
        return KernelWeights(w, w.shape[1] // 2, w.shape[0] // 2)

    params: dict[str, Any] = (
        {"radius": radius} if y_radius is None else {"xRadius": radius, "yRadius": y_radius}
    )
    params.update(normalize=bool(normalize), magnitude=float(magnitude))
    return Kernel(kind, units, build, params)


def _register_radius(kind: str, normalize_default: bool) -> None:
    def make(radius: float, units: str = "pixels", normalize: bool = normalize_default,
             magnitude: float = 1.0) -> Kernel:  # fmt: skip
        return radius_kernel(kind, radius, units, normalize, magnitude)

    make.__name__ = f"kernel_{kind}"
    make.__doc__ = f"Earth Engine's ``Kernel.{kind}`` (see the module docstring for the shape)."
    algorithm(f"Kernel.{kind}")(make)


for _kind in ("square", "circle", "diamond", "octagon", "plus", "cross"):
    _register_radius(_kind, True)
for _kind in ("euclidean", "manhattan", "chebyshev"):
    _register_radius(_kind, False)


@algorithm("Kernel.rectangle")
def kernel_rectangle(xRadius: float, yRadius: float, units: str = "pixels", normalize: bool = True,
                     magnitude: float = 1.0) -> Kernel:  # fmt: skip
    """A rectangle of ``2 floor(xRadius) + 1`` columns by ``2 floor(yRadius) + 1`` rows."""
    return radius_kernel("rectangle", xRadius, units, normalize, magnitude, y_radius=yRadius)


@algorithm("Kernel.gaussian")
def kernel_gaussian(radius: float, sigma: float = 1.0, units: str = "pixels", normalize: bool = True,
                    magnitude: float = 1.0) -> Kernel:  # fmt: skip
    """A Gaussian of standard deviation ``sigma`` (same units as ``radius``)."""
    units = _check_units(units, "gaussian")
    radius, sigma = float(radius), float(sigma)
    if units == "pixels":
        gaussian_weights(radius, sigma)  # validate now

    def build(scale: float | None) -> KernelWeights:
        w = gaussian_weights(_in_pixels(radius, units, scale), _in_pixels(sigma, units, scale))
        w = _finish(w, normalize, magnitude)
        return KernelWeights(w, w.shape[1] // 2, w.shape[0] // 2)

    params = {"radius": radius, "sigma": sigma, "normalize": bool(normalize), "magnitude": float(magnitude)}
    return Kernel("gaussian", units, build, params)


_EDGE: dict[str, list[list[float]]] = {
    "laplacian4": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "sobel": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "prewitt": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "roberts": [[1, 0], [0, -1]],
    "compass": [[1, 1, -1], [1, -2, -1], [1, 1, -1]],
    "kirsch": [[5, -3, -3], [5, 0, -3], [5, -3, -3]],
}
"""Earth Engine's edge kernels as printed in its API reference (Roberts' focus is [1, 1])."""


def _fixed_kernel(kind: str, weights: np.ndarray, x: int, y: int, params: dict[str, Any]) -> Kernel:
    kw = KernelWeights(np.asarray(weights, dtype=np.float64), int(x), int(y))
    return Kernel(kind, "pixels", lambda scale: kw, params)


def _register_edge(kind: str) -> None:
    def make(magnitude: float = 1.0, normalize: bool = False) -> Kernel:
        w = _finish(np.asarray(_EDGE[kind]), normalize, magnitude)
        return _fixed_kernel(kind, w, w.shape[1] // 2, w.shape[0] // 2,
                             {"normalize": bool(normalize), "magnitude": float(magnitude)})  # fmt: skip

    make.__name__ = f"kernel_{kind}"
    make.__doc__ = f"Earth Engine's ``Kernel.{kind}`` edge kernel."
    algorithm(f"Kernel.{kind}")(make)


for _kind in _EDGE:
    _register_edge(_kind)


@algorithm("Kernel.fixed")
def kernel_fixed(width: int = -1, height: int = -1, weights: list[list[float]] | None = None, x: int = -1,
                 y: int = -1, normalize: bool = False) -> Kernel:  # fmt: skip
    """A kernel from a [height] x [width] list of weights; the focus defaults to the middle
    (``width // 2``, ``height // 2``)."""
    if not weights or not isinstance(weights, list) or not all(isinstance(r, list) for r in weights):
        raise EngineError("Kernel.fixed: weights must be a non-empty 2-D list [height][width].")
    lengths = {len(r) for r in weights}
    if len(lengths) != 1 or 0 in lengths:
        raise EngineError("Kernel.fixed: every row of weights must have the same, non-zero length.")
    w = np.asarray(weights, dtype=np.float64)
    h, wd = w.shape
    if (width not in (-1, None) and int(width) != wd) or (height not in (-1, None) and int(height) != h):
        raise EngineError(
            f"Kernel.fixed: weights are {h} rows x {wd} columns but width={width}, height={height}."
        )
    fx = wd // 2 if x is None or int(x) < 0 else int(x)
    fy = h // 2 if y is None or int(y) < 0 else int(y)
    if fx >= wd or fy >= h:
        raise EngineError(f"Kernel.fixed: the focus ({fx}, {fy}) lies outside the {wd} x {h} kernel.")
    return _fixed_kernel("fixed", _finish(w, normalize, 1.0), fx, fy, {"normalize": bool(normalize)})


def _derived(kind: str, parts: tuple[Kernel, ...], fn: Callable[..., KernelWeights],
             params: dict[str, Any]) -> Kernel:  # fmt: skip
    units = "meters" if any(k.units == "meters" for k in parts) else "pixels"

    def build(scale: float | None) -> KernelWeights:
        return fn(*(k.resolve(scale) for k in parts))

    return Kernel(kind, units, build, params)


def rotate_weights(kw: KernelWeights, rotations: int) -> KernelWeights:
    """Rotate by ``rotations`` quarter turns clockwise (negative: counter-clockwise)."""
    w, x, y = kw.weights, kw.x, kw.y
    for _ in range(int(rotations) % 4):
        h = w.shape[0]
        w, x, y = np.rot90(w, k=-1), h - 1 - y, x
    return KernelWeights(np.ascontiguousarray(w), x, y)


@algorithm("Kernel.rotate")
def kernel_rotate(kernel: Kernel, rotations: int) -> Kernel:
    """Rotate a kernel by quarter turns (positive: clockwise, as Earth Engine documents)."""
    _expect_kernel(kernel, "Kernel.rotate")
    return _derived(
        "rotate", (kernel,), lambda kw: rotate_weights(kw, rotations), {"rotations": int(rotations)}
    )


def add_weights(a: KernelWeights, b: KernelWeights, normalize: bool) -> KernelWeights:
    """Pointwise sum after aligning the foci; the result covers both kernels."""
    left, top = max(a.x, b.x), max(a.y, b.y)
    right = max(a.width - 1 - a.x, b.width - 1 - b.x)
    bottom = max(a.height - 1 - a.y, b.height - 1 - b.y)
    out = np.zeros((top + bottom + 1, left + right + 1), dtype=np.float64)
    for k in (a, b):
        r0, c0 = top - k.y, left - k.x
        out[r0 : r0 + k.height, c0 : c0 + k.width] += k.weights
    return KernelWeights(_finish(out, normalize, 1.0), left, top)


@algorithm("Kernel.add")
def kernel_add(kernel1: Kernel, kernel2: Kernel, normalize: bool = False) -> Kernel:
    """Add two kernels pointwise after aligning their centres."""
    _expect_kernel(kernel1, "Kernel.add")
    _expect_kernel(kernel2, "Kernel.add")
    return _derived("add", (kernel1, kernel2), lambda a, b: add_weights(a, b, normalize),
                    {"normalize": bool(normalize)})  # fmt: skip


@algorithm("Kernel.inverse")
def kernel_inverse(kernel: Kernel) -> Kernel:
    """Invert every non-zero weight (zeros stay zero)."""
    _expect_kernel(kernel, "Kernel.inverse")

    def inv(kw: KernelWeights) -> KernelWeights:
        w = kw.weights
        out = np.zeros_like(w)
        np.divide(1.0, w, out=out, where=w != 0)
        return KernelWeights(out, kw.x, kw.y)

    return _derived("inverse", (kernel,), inv, {})


def _expect_kernel(value: Any, where: str) -> Kernel:
    if not isinstance(value, Kernel):
        raise EngineError(f"{where}: expected a Kernel, got {type(value).__name__}.")
    return value


def focal_kernel(kernelType: str, radius: float, units: str = "pixels") -> Kernel:
    """The kernel of the focal operators (``kernelType`` circle, square, cross, plus, octagon or
    diamond; normalised)."""
    kinds = ("circle", "square", "cross", "plus", "octagon", "diamond")
    if kernelType not in kinds:
        raise EngineError(f"Unknown kernelType {kernelType!r}: use one of {list(kinds)}.")
    return radius_kernel(kernelType, radius, units, True, 1.0)
