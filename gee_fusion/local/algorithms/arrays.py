"""``ee.Array``: n-dimensional arrays as values, and the array kernels that array images share.

An ``ee.Array`` is a numpy array here (``getInfo`` gives nested lists, as Earth Engine does). Every
kernel takes ``lead``, the number of leading axes that are not part of the array: 0 for an
``ee.Array``, 2 for an array image's ``(height, width, *array_shape)`` pixels (see
:mod:`gee_fusion.local.algorithms.image_arrays`), so one implementation serves both. Array axes in
the arguments (``axis``, ``axes``, positions) count from the first array axis, as in Earth Engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms.image_math import _BINARY, _UNARY
from gee_fusion.local.algorithms.reducers import Reducer
from gee_fusion.local.registry import algorithm

# -- kernels shared with array images -------------------------------------------------------


def nan_reduce(reducer: Reducer, a: np.ndarray, axis: int) -> np.ndarray:
    """Reduce ``a`` along ``axis`` with a single-output reducer, skipping NaN (absent) elements."""
    kind = reducer.kind
    valid = ~np.isnan(a)
    count = valid.sum(axis=axis)
    with np.errstate(all="ignore"):
        if kind in ("count", "countEvery"):
            return count.astype(np.float64)
        if kind == "sum":
            return np.nansum(a, axis=axis)
        if kind == "product":
            return np.nanprod(a, axis=axis)
        if kind in ("and", "or"):
            b = np.where(valid, a != 0, kind == "and")
            return np.asarray(b.all(axis=axis) if kind == "and" else b.any(axis=axis), dtype=np.float64)
        if kind == "mean":
            out = np.nansum(a, axis=axis) / count
        elif kind == "min":
            out = np.nanmin(np.where(valid, a, np.inf), axis=axis)
        elif kind == "max":
            out = np.nanmax(np.where(valid, a, -np.inf), axis=axis)
        elif kind == "median":
            out = np.nanmedian(a, axis=axis) if a.size else np.nansum(a, axis=axis)
        elif kind in ("stdDev", "variance", "sampleStdDev", "sampleVariance"):
            ddof = 1 if kind.startswith("sample") else 0
            out = np.nanvar(a, axis=axis, ddof=ddof) if a.size else np.nansum(a, axis=axis)
            out = np.sqrt(out) if kind.endswith("StdDev") else out
        elif kind in ("first", "firstNonNull", "last", "lastNonNull"):
            moved = np.moveaxis(np.where(valid, a, np.nan), axis, -1)
            idx = np.argmax(~np.isnan(moved), axis=-1)
            if kind.startswith("last"):
                idx = moved.shape[-1] - 1 - np.argmax(~np.isnan(moved[..., ::-1]), axis=-1)
            out = (
                np.take_along_axis(moved, idx[..., None], axis=-1)[..., 0]
                if moved.shape[-1]
                else idx * np.nan
            )
        else:
            raise EngineError(
                f"Array reduce: Reducer.{kind} is not supported on arrays by the local engine yet; "
                "use mean, sum, min, max, median, count, stdDev, variance, product, first, last, and, or."
            )
    return np.where(count > 0, out, np.nan)


def reduce_axes(a: np.ndarray, reducer: Reducer, axes: list[int], lead: int) -> np.ndarray:
    """``Array.reduce``: reduce along ``axes`` (array axes), each kept with length 1."""
    if len(reducer.outputs) != 1:
        raise EngineError("Array reduce: multi-output reducers need a fieldAxis, not supported locally yet.")
    out = a.astype(np.float64, copy=False)
    for ax in sorted({int(x) for x in axes}):
        out = np.expand_dims(nan_reduce(reducer, out, lead + _axis(ax, a.ndim - lead)), lead + ax)
    return out


def _axis(axis: int, rank: int, where: str = "Array") -> int:
    if not -rank <= axis < rank:
        raise EngineError(f"{where}: axis {axis} is out of range for an array of {rank} dimensions.")
    return axis % rank


def slice_axis(a: np.ndarray, axis: int, start: int, end: int | None, step: int, lead: int) -> np.ndarray:
    """``Array.slice`` along one array axis (negative indices count from the end)."""
    ax = lead + _axis(axis, a.ndim - lead, "Array.slice")
    if step == 0:
        raise EngineError("Array.slice: step must not be 0.")
    index = [slice(None)] * a.ndim
    index[ax] = slice(start, end, step)
    return a[tuple(index)]


def project(a: np.ndarray, axes: list[int], lead: int) -> np.ndarray:
    """``Array.project``: keep ``axes`` (in that order); dropped axes must have length <= 1."""
    rank = a.ndim - lead
    keep = [_axis(int(x), rank, "Array.project") for x in axes]
    dropped = [ax for ax in range(rank) if ax not in keep]
    for ax in dropped:
        if a.shape[lead + ax] > 1:
            raise EngineError(
                f"Array.project: Projecting to {keep} requires that all other axes have length 1, "
                f"but axis {ax} has length {a.shape[lead + ax]}."
            )
    out = a
    for ax in sorted(dropped, reverse=True):
        out = out.take(0, axis=lead + ax) if out.shape[lead + ax] else np.take(out, [], axis=lead + ax)
    order = sorted(range(len(keep)), key=lambda i: keep[i])
    remaining = [keep[i] for i in order]
    perm = [remaining.index(k) for k in keep]
    return np.transpose(out, list(range(lead)) + [lead + p for p in perm])


def sort_by_keys(a: np.ndarray, keys: np.ndarray | None, lead: int) -> np.ndarray:
    """``Array.sort``: sort along the first array axis by ``keys`` (the values themselves by default).

    Keys with one value per position of the first axis sort whole rows; keys of the array's shape sort
    each column on its own. Absent (NaN) elements sort last.
    """
    k = a if keys is None else keys
    if k.ndim - lead == 2 and a.ndim - lead == 2 and k.shape[-1] == 1:
        k = k[..., 0]  # one key per row, as an n x 1 slice of the array
    if k.ndim - lead == 1 and a.ndim - lead == 2:
        order = np.argsort(k, axis=lead, kind="stable")
        return np.take_along_axis(a, order[..., None], axis=lead)
    if k.shape[lead:] != a.shape[lead:]:
        raise EngineError(
            f"Array.sort: keys of shape {list(k.shape[lead:])} do not match {list(a.shape[lead:])}."
        )
    order = np.argsort(k, axis=lead, kind="stable")
    return np.take_along_axis(a, order, axis=lead)


def transpose(a: np.ndarray, axis1: int, axis2: int, lead: int) -> np.ndarray:
    """``Array.transpose``: swap two array axes."""
    rank = a.ndim - lead
    return np.swapaxes(
        a, lead + _axis(axis1, rank, "Array.transpose"), lead + _axis(axis2, rank, "Array.transpose")
    )


def _matrix(a: np.ndarray, lead: int, where: str) -> np.ndarray:
    if a.ndim - lead != 2:
        raise EngineError(f"{where}: expected a 2-D array (a matrix), got {a.ndim - lead} dimensions.")
    return a.astype(np.float64, copy=False)


def matrix_multiply(left: np.ndarray, right: np.ndarray, lead: int) -> np.ndarray:
    """``matrixMultiply``: (m x n) @ (n x p), with Earth Engine's message on mismatched shapes."""
    a, b = _matrix(left, lead, "matrixMultiply"), _matrix(right, lead, "matrixMultiply")
    if a.shape[-1] != b.shape[-2]:
        raise EngineError(
            f"Array.matrixMultiply: Left matrix has {a.shape[-1]} columns but right matrix has "
            f"{b.shape[-2]} rows; they must be equal."
        )
    return np.matmul(a, b)


def eigen(a: np.ndarray, lead: int) -> np.ndarray:
    """``Array.eigen``: rows of [eigenvalue, eigenvector...], by descending eigenvalue."""
    m = _matrix(a, lead, "Array.eigen")
    if m.shape[-1] != m.shape[-2]:
        raise EngineError("Array.eigen: the array must be square.")
    if np.allclose(m, np.swapaxes(m, -1, -2)):
        values, vectors = np.linalg.eigh(m)
    else:
        values, vectors = np.linalg.eig(m)
        values, vectors = values.real, vectors.real
    order = np.argsort(-values, axis=-1, kind="stable")
    values = np.take_along_axis(values, order, axis=-1)
    vectors = np.take_along_axis(np.swapaxes(vectors, -1, -2), order[..., None], axis=-2)
    return np.concatenate([values[..., None], vectors], axis=-1)


def to_diagonal(a: np.ndarray, lead: int) -> np.ndarray:
    """``matrixToDiag``: a column (n x 1) or vector to a diagonal n x n matrix."""
    vec = a.reshape((*a.shape[:lead], -1))
    eye = np.eye(vec.shape[-1])
    return vec[..., None] * eye


def diagonal(a: np.ndarray, lead: int) -> np.ndarray:
    """``matrixDiagonal``: the diagonal as a column (n x 1)."""
    return np.diagonal(_matrix(a, lead, "matrixDiagonal"), axis1=-2, axis2=-1)[..., None]


_MATRIX_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "matrixInverse": np.linalg.inv,
    "matrixPseudoInverse": np.linalg.pinv,
    "matrixDeterminant": np.linalg.det,
    "matrixTrace": lambda m: np.trace(m, axis1=-2, axis2=-1),
    "matrixFnorm": lambda m: np.sqrt((m * m).sum(axis=(-2, -1))),
}


def matrix_unary(name: str, a: np.ndarray, lead: int) -> np.ndarray:
    """One of the matrix functions of one matrix (inverse, pseudo-inverse, determinant, trace, norm)."""
    m = _matrix(a, lead, name)
    try:
        return np.asarray(_MATRIX_UNARY[name](m))
    except np.linalg.LinAlgError as exc:
        raise EngineError(f"Array.{name}: {exc}.") from None


def argmax(a: np.ndarray, lead: int) -> np.ndarray:
    """Position of the (first) largest element, one index per array axis (last axis of the result)."""
    shape = a.shape[lead:]
    flat = np.where(np.isnan(a), -np.inf, a).reshape((*a.shape[:lead], -1))
    idx = np.argmax(flat, axis=-1)
    return np.stack(np.unravel_index(idx, shape), axis=-1).astype(np.float64)


def concatenate(arrays: list[np.ndarray], axis: int, lead: int) -> np.ndarray:
    """``Array.cat``: concatenate along an array axis."""
    return np.concatenate(arrays, axis=lead + axis)


# -- ee.Array values -----------------------------------------------------------------------


def as_array(value: Any, where: str = "Array") -> np.ndarray:
    """An ``ee.Array`` value (numbers and nested lists become arrays)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (bool, int, float, list)):
        try:
            arr = np.asarray(value)
        except ValueError:
            arr = np.asarray([0], dtype=object)
        if arr.dtype == object:
            raise EngineError(f"{where}: nested lists must be rectangular (every row of the same length).")
        return arr
    raise EngineError(f"{where}: expected an array, got {type(value).__name__}.")


@algorithm("Array")
def array_new(values: Any, pixelType: Any = None) -> np.ndarray:
    """An array from a number, a (nested) list or another array."""
    arr = as_array(values)
    if pixelType is not None:
        from gee_fusion.local.image import dtype_from_ee

        arr = arr.astype(dtype_from_ee(pixelType))
    return arr


algorithm("Array.identity")(lambda size: np.eye(int(size)))
algorithm("Array.length")(lambda array: list(as_array(array).shape))
algorithm("Array.toList")(lambda array: as_array(array).tolist())
algorithm("Array.get")(lambda array, position: as_array(array)[tuple(int(p) for p in position)].item())
algorithm("Array.argmax")(lambda array: [int(i) for i in argmax(as_array(array), 0)])
algorithm("Array.transpose", "Array.matrixTranspose")(
    lambda array, axis1=0, axis2=1: transpose(as_array(array), axis1, axis2, 0)
)
algorithm("Array.project")(lambda array, axes: project(as_array(array), axes, 0))
algorithm("Array.reshape")(
    lambda array, shape: as_array(array).reshape([int(s) for s in as_array(shape).ravel()])
)
algorithm("Array.slice")(
    lambda array, axis=0, start=0, end=None, step=1: slice_axis(as_array(array), axis, start, end, step, 0)
)
algorithm("Array.cat")(lambda arrays, axis=0: concatenate([as_array(a) for a in arrays], axis, 0))
algorithm("Array.sort")(
    lambda array, keys=None: sort_by_keys(as_array(array), None if keys is None else as_array(keys), 0)
)
algorithm("Array.reduce")(
    lambda array, reducer, axes, fieldAxis=None: reduce_axes(as_array(array), reducer, axes, 0)
)
algorithm("Array.eigen")(lambda input: eigen(as_array(input), 0))
algorithm("Array.matrixMultiply")(lambda left, right: matrix_multiply(as_array(left), as_array(right), 0))
algorithm("Array.matrixDiagonal")(lambda input: diagonal(as_array(input), 0))
algorithm("Array.matrixToDiag")(lambda input: to_diagonal(as_array(input), 0))
algorithm("Array.dotProduct")(lambda array1, array2: float(np.dot(as_array(array1), as_array(array2))))
for _name in _MATRIX_UNARY:
    algorithm(f"Array.{_name}")(
        lambda input, _n=_name: _scalar_or_array(matrix_unary(_n, as_array(input), 0))
    )


def _scalar_or_array(out: np.ndarray) -> Any:
    return out.item() if out.ndim == 0 else out


@algorithm("Array.matrixSolve")
def array_matrix_solve(left: Any, right: Any) -> np.ndarray:
    """Least-squares solution X of left @ X = right (exact for square, full-rank left)."""
    a, b = _matrix(as_array(left), 0, "matrixSolve"), _matrix(as_array(right), 0, "matrixSolve")
    return np.linalg.lstsq(a, b, rcond=None)[0]


@algorithm("Array.matrixCholeskyDecomposition")
def array_cholesky(array: Any) -> dict[str, np.ndarray]:
    """``{"L": L}`` with L lower triangular and L @ L.T equal to the input."""
    try:
        return {"L": np.linalg.cholesky(_matrix(as_array(array), 0, "matrixCholeskyDecomposition"))}
    except np.linalg.LinAlgError:
        raise EngineError("Array.matrixCholeskyDecomposition: the matrix is not positive definite.") from None


@algorithm("Array.matrixQRDecomposition")
def array_qr(array: Any) -> dict[str, np.ndarray]:
    """``{"Q": Q, "R": R}`` (complete Q, as Earth Engine returns it)."""
    q, r = np.linalg.qr(_matrix(as_array(array), 0, "matrixQRDecomposition"), mode="complete")
    return {"Q": q, "R": r}


@algorithm("Array.matrixSingularValueDecomposition")
def array_svd(array: Any) -> dict[str, np.ndarray]:
    """``{"U": U, "S": S, "V": V}`` with input = U @ S @ V.T (S a diagonal matrix)."""
    u, s, vt = np.linalg.svd(
        _matrix(as_array(array), 0, "matrixSingularValueDecomposition"), full_matrices=False
    )
    return {"U": u, "S": np.diag(s), "V": vt.T}


@algorithm("Array.pad")
def array_pad(array: Any, lengths: list[int], pad: float = 0) -> np.ndarray:
    """Pad each axis at its end up to ``lengths`` with ``pad``."""
    arr = as_array(array)
    widths = [(0, max(int(n) - s, 0)) for n, s in zip(lengths, arr.shape, strict=True)]
    return np.pad(arr, widths, constant_values=pad)


@algorithm("Array.repeat")
def array_repeat(array: Any, axis: int = 0, copies: int = 2) -> np.ndarray:
    """Repeat the array ``copies`` times along ``axis`` (a new axis when it equals the rank)."""
    arr = as_array(array)
    if axis == arr.ndim:
        arr = arr[..., None]
    return np.concatenate([arr] * int(copies), axis=int(axis))


@algorithm("Array.cut")
def array_cut(array: Any, position: list[int]) -> np.ndarray:
    """Keep one position on each axis whose entry is not -1 (that axis keeps length 1)."""
    arr = as_array(array)
    index = tuple(slice(None) if int(p) == -1 else slice(int(p), int(p) + 1) for p in position)
    return arr[index]


@algorithm("Array.mask")
def array_mask(input: Any, mask: Any) -> np.ndarray:
    """The elements of a 1-D array where ``mask`` is non-zero."""
    return as_array(input)[as_array(mask).astype(bool)]


@algorithm("Array.accum")
def array_accum(array: Any, axis: int, reducer: Reducer | None = None) -> np.ndarray:
    """Running reduction along ``axis`` (sum by default; also product, min, max, mean, count)."""
    arr = as_array(array).astype(np.float64)
    kind = "sum" if reducer is None else reducer.kind
    funcs: dict[str, Callable[..., np.ndarray]] = {
        "sum": np.cumsum, "product": np.cumprod,
        "max": np.maximum.accumulate, "min": np.minimum.accumulate,
    }  # fmt: skip
    if kind in funcs:
        return funcs[kind](arr, axis=axis)
    n = np.cumsum(np.ones_like(arr), axis=axis)
    if kind == "count":
        return n
    if kind == "mean":
        return np.cumsum(arr, axis=axis) / n
    raise EngineError(f"Array.accum: Reducer.{kind} is not supported by the local engine yet.")


def _elementwise(op: str, fn: Callable[..., np.ndarray], rule: str, binary: bool) -> None:
    def run(*args: Any) -> np.ndarray:
        arrays = [as_array(a, f"Array.{op}") for a in args]
        try:
            np.broadcast_shapes(*(a.shape for a in arrays))
        except ValueError:
            raise EngineError(
                f"Array.{op}: arrays of shapes {[list(a.shape) for a in arrays]} cannot be combined."
            ) from None
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*arrays))
        return out.astype(np.int32) if rule == "bool" else out

    if binary:
        algorithm(f"Array.{op}")(lambda left, right: run(left, right))
    else:
        algorithm(f"Array.{op}")(lambda input: run(input))


for _op, (_bin, _rule) in _BINARY.items():
    _elementwise(_op, _bin, _rule, True)
for _op, (_un, _rule) in _UNARY.items():
    _elementwise(_op, _un, _rule, False)

_CASTS = {
    "uint8": np.uint8, "byte": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16,
    "short": np.int16, "uint32": np.uint32, "int32": np.int32, "int": np.int32, "int64": np.int64,
    "long": np.int64, "float": np.float32, "double": np.float64,
}  # fmt: skip
for _cast, _dt in _CASTS.items():
    _title = "to" + _cast[0].upper() + _cast[1:]
    algorithm(f"Array.{_cast}", f"Array.{_title}")(lambda input, _d=_dt: as_array(input).astype(_d))
