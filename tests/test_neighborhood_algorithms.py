"""Kernels and neighbourhood operators of the local engine against numpy / scipy references.

Kernels are checked weight by weight against hand constructions (and the examples printed in
Earth Engine's API reference). The operators run on the seeded ``test/syn_img`` (B1, B2
float32 with a shared mask, QA uint16 valid everywhere; pixels outside the 12 x 9 image are
masked) through ``ee.data.computePixels`` and are compared with an independent sliding-window
reference that skips masked pixels, and with ``scipy.ndimage`` where every pixel is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ee
import numpy as np
import pytest
from scipy import ndimage

from gee_fusion.local.catalog import register_numpy_image
from tests.conftest import SYN_CRS, SYN_SHAPE, SYN_TRANSFORM, Synthetic, ee_grid, pixels

IMG = "test/syn_img"
KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
FLOAT = {"type": "PixelType", "precision": "float"}


# -- helpers ---------------------------------------------------------------------------------
def grid(col0: int = 0, row0: int = 0, width: int = SYN_SHAPE[1],
         height: int = SYN_SHAPE[0]) -> dict[str, Any]:  # fmt: skip
    """A window of the native grid starting at (col0, row0) (may reach outside the image)."""
    a, b, c, d, e, f = SYN_TRANSFORM
    vals = (a, b, c + col0 * a, d, e, f + row0 * e)
    dims = {"width": width, "height": height}
    return {"dimensions": dims, "affineTransform": dict(zip(KEYS, vals, strict=True)), "crsCode": SYN_CRS}


def weights(kernel: ee.Kernel) -> tuple[np.ndarray, int, int]:
    """(weights, x, y) of a kernel from its ``getInfo()``."""
    info = kernel.getInfo()
    assert info["type"] == "Kernel"
    return np.asarray(info["weights"], dtype=np.float64), info["x"], info["y"]


def offsets_grid(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) of a (2r+1) square, row 0 at the top."""
    dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return dx, dy


def window_stack(values: np.ndarray, valid: np.ndarray, w: np.ndarray, x: int, y: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Reference: (values, valid, weight) of every non-zero kernel entry around every pixel.

    The image is surrounded by masked pixels, as the engine sees pixels outside its footprint.
    """
    h, wd = values.shape
    pad = max(w.shape) + 1
    pv = np.pad(values.astype(np.float64), pad)
    pm = np.pad(valid, pad, constant_values=False)
    vs, ms, ws = [], [], []
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            if w[i, j] == 0:
                continue
            dy, dx = i - y, j - x
            vs.append(pv[pad + dy : pad + dy + h, pad + dx : pad + dx + wd])
            ms.append(pm[pad + dy : pad + dy + h, pad + dx : pad + dx + wd])
            ws.append(w[i, j])
    return np.stack(vs), np.stack(ms), np.asarray(ws)[:, None, None]


def masked_reduce(fn: Callable[[np.ndarray], Any], vs: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """Apply ``fn`` to the valid window values of every pixel (a slow, obvious reference)."""
    out = np.zeros(vs.shape[1:])
    for r in range(vs.shape[1]):
        for c in range(vs.shape[2]):
            sel = vs[:, r, c][ms[:, r, c]]
            if sel.size:
                out[r, c] = fn(sel)
    return out


def nearest_rank(p: float) -> Callable[[np.ndarray], float]:
    """Nearest-rank percentile (the engine's rule, divergence #11)."""
    return lambda a: float(np.sort(a)[max(int(np.ceil(p / 100 * a.size)) - 1, 0)])


def assert_band(out: dict[str, tuple[np.ndarray, np.ndarray]], name: str, want: np.ndarray, mask: np.ndarray,
                *, rtol: float = 1e-5, atol: float = 1e-6) -> None:  # fmt: skip
    got, got_m = out[name]
    np.testing.assert_array_equal(got_m, mask, err_msg=f"mask of {name}")
    np.testing.assert_allclose(got[mask], want[mask], rtol=rtol, atol=atol, err_msg=f"values of {name}")
    assert not np.any(got[~mask]), f"masked pixels of {name} must be 0"


def types(image: ee.Image) -> dict[str, dict[str, Any]]:
    return {b["id"]: b["data_type"] for b in image.getInfo()["bands"]}


@pytest.fixture
def img(syn: Synthetic) -> ee.Image:
    return ee.Image(IMG)


# -- kernels ---------------------------------------------------------------------------------
def test_shape_kernels_match_hand_constructions(local_engine: Any) -> None:
    dx, dy = offsets_grid(3)
    ax, ay = np.abs(dx), np.abs(dy)
    shapes = {
        "square": np.ones((7, 7)),
        "circle": (dx**2 + dy**2 <= 9).astype(float),
        "diamond": (ax + ay <= 3).astype(float),
        "octagon": (ax + ay <= 4.5).astype(float),
        "plus": ((dx == 0) | (dy == 0)).astype(float),
        "cross": (ax == ay).astype(float),
    }
    for kind, shape in shapes.items():
        w, x, y = weights(getattr(ee.Kernel, kind)(3))
        np.testing.assert_allclose(w, shape / shape.sum(), err_msg=kind)  # normalised by default
        assert (x, y) == (3, 3)
        raw, _, _ = weights(getattr(ee.Kernel, kind)(3, normalize=False, magnitude=2))
        np.testing.assert_allclose(raw, 2 * shape, err_msg=kind)
    # Earth Engine's documented examples (radius 3): 1/49, 1/29, 1/25, 1/37, 1/13
    documented = {"square": 49, "circle": 29, "diamond": 25, "octagon": 37, "plus": 13, "cross": 13}
    for kind, n in documented.items():
        assert np.count_nonzero(weights(getattr(ee.Kernel, kind)(3))[0]) == n
    rect, x, y = weights(ee.Kernel.rectangle(2, 1))
    np.testing.assert_allclose(rect, np.full((3, 5), 1 / 15))
    assert (x, y) == (2, 1)
    # a fractional radius: the square grid is 2 floor(r) + 1; the default focal circle (1.5) is 3 x 3
    np.testing.assert_allclose(weights(ee.Kernel.circle(1.5))[0], np.full((3, 3), 1 / 9))
    plus = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    np.testing.assert_allclose(weights(ee.Kernel.circle(1))[0], plus / 5)


def test_distance_kernels(local_engine: Any) -> None:
    dx, dy = offsets_grid(3)
    want = {"euclidean": np.hypot(dx, dy), "manhattan": np.abs(dx) + np.abs(dy),
            "chebyshev": np.maximum(np.abs(dx), np.abs(dy))}  # fmt: skip
    for kind, ref in want.items():
        w, _, _ = weights(getattr(ee.Kernel, kind)(3))  # not normalised by default
        np.testing.assert_allclose(w, ref, err_msg=kind)
        wn, _, _ = weights(getattr(ee.Kernel, kind)(3, normalize=True, magnitude=3))
        np.testing.assert_allclose(wn, 3 * ref / ref.sum(), err_msg=kind)
    assert weights(ee.Kernel.euclidean(3))[0][0, 0] == pytest.approx(4.2426, abs=1e-4)  # documented 4.242


def test_gaussian_kernel_sigma_and_normalisation(local_engine: Any) -> None:
    w, x, y = weights(ee.Kernel.gaussian(3))
    dx, dy = offsets_grid(2)
    g = np.exp(-(dx**2 + dy**2) / 2.0)
    np.testing.assert_allclose(w, g / g.sum())
    assert (w.shape, x, y) == ((5, 5), 2, 2)
    # Earth Engine's printed example (truncated to 1/1000): centre 0.162, corner 0.002
    assert np.floor(w[2, 2] * 1000) / 1000 == 0.162
    assert np.floor(w[0, 0] * 1000) / 1000 == 0.002
    w2, _, _ = weights(ee.Kernel.gaussian(4, sigma=2, normalize=False, magnitude=5))
    dx, dy = offsets_grid(3)
    np.testing.assert_allclose(w2, 5 * np.exp(-(dx**2 + dy**2) / 8.0))


def test_edge_kernels(local_engine: Any) -> None:
    want = {
        "laplacian4": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
        "laplacian8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
        "sobel": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "prewitt": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
        "compass": [[1, 1, -1], [1, -2, -1], [1, 1, -1]],
        "kirsch": [[5, -3, -3], [5, 0, -3], [5, -3, -3]],
    }
    for kind, ref in want.items():
        w, x, y = weights(getattr(ee.Kernel, kind)())
        np.testing.assert_array_equal(w, ref, err_msg=kind)
        assert (x, y) == (1, 1)
        np.testing.assert_allclose(weights(getattr(ee.Kernel, kind)(magnitude=2))[0], 2 * np.asarray(ref))
    w, x, y = weights(ee.Kernel.roberts())
    np.testing.assert_array_equal(w, [[1, 0], [0, -1]])
    assert (x, y) == (1, 1)  # "center is position [1,1]"
    # normalising a kernel whose weights sum to 0 leaves it as is
    np.testing.assert_array_equal(weights(ee.Kernel.sobel(normalize=True))[0], want["sobel"])


def test_fixed_rotate_add_inverse(local_engine: Any) -> None:
    rows = [[4, 3, 2, 1, 2, 3, 4]] * 3
    w, x, y = weights(ee.Kernel.fixed(weights=rows))
    np.testing.assert_array_equal(w, rows)
    assert (x, y) == (3, 1)
    w, x, y = weights(ee.Kernel.fixed(7, 3, rows, 0, 2, True))
    np.testing.assert_allclose(w, np.asarray(rows) / np.sum(rows))
    assert (x, y) == (0, 2)
    sobel = ee.Kernel.sobel()
    np.testing.assert_array_equal(weights(sobel.rotate(1))[0], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    np.testing.assert_array_equal(weights(sobel.rotate(-2))[0], [[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    np.testing.assert_array_equal(weights(sobel.rotate(4))[0], weights(sobel)[0])
    # rotating a non-square kernel moves its focus with it: (x=0, y=1) in 3 cols x 2 rows
    w, x, y = weights(ee.Kernel.fixed(weights=[[1, 2, 3], [4, 5, 6]], x=0, y=1).rotate(1))
    np.testing.assert_array_equal(w, np.rot90([[1, 2, 3], [4, 5, 6]], -1))
    assert (w[y, x], x, y) == (4, 0, 0)
    # add aligns the foci: a 1x3 row (focus at its left) plus a 3x3 square
    row = ee.Kernel.fixed(weights=[[1, 2, 3]], x=0, y=0)
    w, x, y = weights(row.add(ee.Kernel.square(1, normalize=False)))
    np.testing.assert_array_equal(w, [[1, 1, 1, 0], [1, 2, 3, 3], [1, 1, 1, 0]])
    assert (x, y) == (1, 1)
    w, _, _ = weights(ee.Kernel.plus(1, normalize=False).add(ee.Kernel.cross(1, normalize=False), True))
    np.testing.assert_allclose(w, np.array([[1, 1, 1], [1, 2, 1], [1, 1, 1]]) / 10)
    w, _, _ = weights(ee.Kernel.fixed(weights=[[2, 0], [-4, 0.5]]).inverse())
    np.testing.assert_array_equal(w, [[0.5, 0], [-0.25, 2]])


def test_kernel_in_meters(local_engine: Any) -> None:
    info = ee.Kernel.circle(30, "meters").getInfo()
    assert info == {"type": "Kernel", "kind": "circle", "units": "meters", "radius": 30.0, "normalize": True,
                    "magnitude": 1.0}  # fmt: skip
    with pytest.raises(ee.EEException, match="units"):
        ee.Kernel.square(1, "feet").getInfo()


# -- convolve --------------------------------------------------------------------------------
def test_convolve_is_a_correlation_with_the_kernel_as_given(img: ee.Image, syn: Synthetic) -> None:
    rng = np.random.default_rng(3)
    k = rng.normal(size=(3, 3)).round(2)
    k[0, 0] = 2.5  # asymmetric, mixed signs
    out = pixels(img.select("QA").convolve(ee.Kernel.fixed(weights=k.tolist())), grid())
    qa = syn.qa[0].astype(np.float64)
    ref = ndimage.correlate(qa, k, mode="constant")
    inner = np.zeros(SYN_SHAPE, bool)
    inner[1:-1, 1:-1] = True  # mixed-sign kernel: masked where the window leaves the image
    assert_band(out, "QA", ref, inner)
    assert types(img.select("QA").convolve(ee.Kernel.sobel())) == {"QA": FLOAT}


def test_convolve_with_an_off_centre_focus(img: ee.Image, syn: Synthetic) -> None:
    k = np.arange(1.0, 16.0).reshape(3, 5)
    kern = ee.Kernel.fixed(weights=k.tolist(), x=1, y=2)
    out = pixels(img.select("QA").convolve(kern), grid())
    vs, ms, ws = window_stack(syn.qa[0], np.ones(SYN_SHAPE, bool), k, 1, 2)
    full = (ws * np.where(ms, vs, 0)).sum(0)
    valid_w = (ws * ms).sum(0)
    # non-negative kernel: rescaled by total / valid weight, valid where the centre is
    assert_band(out, "QA", full * k.sum() / valid_w, np.ones(SYN_SHAPE, bool))
    inner = ms.all(0)
    np.testing.assert_allclose(out["QA"][0][inner], full[inner], rtol=1e-6)


def test_convolve_normalised_kernel_skips_masked_pixels(img: ee.Image, syn: Synthetic) -> None:
    kern = ee.Kernel.gaussian(3, 1.5)
    w, x, y = weights(kern)
    out = pixels(img.select(["B1", "B2"]).convolve(kern), grid())
    m = syn.mask[0]
    for name, band in (("B1", syn.b1[0]), ("B2", syn.b2[0])):
        vs, ms, ws = window_stack(band, m, w, x, y)
        ref = (ws * np.where(ms, vs, 0)).sum(0) / (ws * ms).sum(0)
        assert_band(out, name, ref, m)
    # where the whole window is valid this is scipy's correlation
    vs, ms, _ = window_stack(syn.b1[0], m, w, x, y)
    full = ms.all(0)
    ref = ndimage.correlate(syn.b1[0].astype(np.float64), w, mode="constant")
    np.testing.assert_allclose(out["B1"][0][full], ref[full], rtol=1e-5, atol=1e-6)


# -- focal filters ---------------------------------------------------------------------------
@pytest.mark.parametrize("kernel_type", ["square", "circle"])
def test_focal_filters_match_scipy_on_valid_data(img: ee.Image, syn: Synthetic, kernel_type: str) -> None:
    qa = syn.qa[0]
    fp = weights(getattr(ee.Kernel, kernel_type)(2))[0] > 0
    inner = np.zeros(SYN_SHAPE, bool)
    inner[2:-2, 2:-2] = True  # windows fully inside the image
    band = img.select("QA")
    got = {
        "min": pixels(band.focal_min(2, kernel_type), grid())["QA"][0],
        "max": pixels(band.focalMax(2, kernel_type), grid())["QA"][0],
        "mean": pixels(band.focal_mean(2, kernel_type), grid())["QA"][0],
        "median": pixels(band.focalMedian(2, kernel_type), grid())["QA"][0],
    }
    want = {
        "min": ndimage.minimum_filter(qa, footprint=fp, mode="constant", cval=65535),
        "max": ndimage.maximum_filter(qa, footprint=fp, mode="constant", cval=0),
        "mean": ndimage.correlate(qa.astype(np.float64), fp / fp.sum(), mode="constant"),
        "median": ndimage.generic_filter(qa.astype(np.float64), np.median, footprint=fp, mode="constant"),
    }
    for kind in got:
        np.testing.assert_allclose(got[kind][inner], want[kind][inner], rtol=1e-6, err_msg=kind)
    # min and max are exact everywhere (outside pixels are masked, i.e. skipped)
    np.testing.assert_array_equal(got["min"], want["min"])
    np.testing.assert_array_equal(got["max"], want["max"])
    assert types(band.focal_min(2, kernel_type))["QA"]["precision"] == "int"
    assert types(band.focal_mean(2, kernel_type)) == {"QA": FLOAT}
    assert types(band.focal_median(2, kernel_type)) == {"QA": FLOAT}


@pytest.mark.parametrize(
    ("method", "fn"),
    [("focal_min", np.min), ("focal_max", np.max), ("focal_mean", np.mean), ("focal_median", np.median)],
)
def test_focal_filters_skip_masked_pixels(img: ee.Image, syn: Synthetic, method: str, fn: Any) -> None:
    w, x, y = weights(ee.Kernel.circle(1.5))
    vs, ms, _ = window_stack(syn.b1[0], syn.mask[0], w, x, y)
    out = pixels(getattr(img.select("B1"), method)(), grid())  # default: circle of radius 1.5
    assert_band(out, "B1", masked_reduce(fn, vs, ms), syn.mask[0])


def test_focal_mode(img: ee.Image, syn: Synthetic) -> None:
    small = img.select("QA").divide(1024).toInt()  # values 0..3: many ties
    vals = (syn.qa[0] // 1024).astype(np.int64)
    w, x, y = weights(ee.Kernel.square(1))
    vs, ms, _ = window_stack(vals, np.ones(SYN_SHAPE, bool), w, x, y)

    def mode(a: np.ndarray) -> float:
        u, c = np.unique(a, return_counts=True)
        return float(u[np.argmax(c)])  # ties: the smallest value

    out = pixels(small.focal_mode(1, "square"), grid())
    assert_band(out, "QA", masked_reduce(mode, vs, ms), np.ones(SYN_SHAPE, bool))


def test_iterations_equal_repeated_application(img: ee.Image) -> None:
    b = img.select(["B1", "QA"])
    for method in ("focal_max", "focal_mean", "focal_min"):
        twice = getattr(getattr(b, method)(1, "square"), method)(1, "square")
        once = getattr(b, method)(1, "square", "pixels", 2)
        a, c = pixels(twice, grid(-3, -3, 15, 18)), pixels(once, grid(-3, -3, 15, 18))
        for name in ("B1", "QA"):
            np.testing.assert_array_equal(a[name][1], c[name][1])
            np.testing.assert_array_equal(a[name][0], c[name][0])


def test_focal_radius_in_meters_resolves_in_the_request_grid(img: ee.Image, syn: Synthetic) -> None:
    meters = pixels(img.select("B1").focal_mean(20, "square", "meters"), grid())
    pix = pixels(img.select("B1").focal_mean(2, "square"), grid())
    np.testing.assert_array_equal(meters["B1"][0], pix["B1"][0])
    np.testing.assert_array_equal(meters["B1"][1], pix["B1"][1])
    custom = pixels(img.select("B1").focal_max(kernel=ee.Kernel.diamond(2)), grid())
    w, x, y = weights(ee.Kernel.diamond(2))
    vs, ms, _ = window_stack(syn.b1[0], syn.mask[0], w, x, y)
    assert_band(custom, "B1", masked_reduce(np.max, vs, ms), syn.mask[0])


# -- reduceNeighborhood ----------------------------------------------------------------------
def _wmean(vs: np.ndarray, ms: np.ndarray, ws: np.ndarray) -> np.ndarray:
    return (ws * np.where(ms, vs, 0)).sum(0) / (ws * ms).sum(0)


def test_reduce_neighborhood_reducers_with_masks(img: ee.Image, syn: Synthetic) -> None:
    kern = ee.Kernel.circle(2)
    w, x, y = weights(kern)
    m = syn.mask[0]
    vs, ms, _ = window_stack(syn.b1[0], m, w, x, y)
    cases: list[tuple[ee.Reducer, dict[str, Callable[[np.ndarray], Any]], int]] = [
        (ee.Reducer.mean(), {"mean": np.mean}, 1),
        (ee.Reducer.variance(), {"variance": np.var}, 1),
        (ee.Reducer.stdDev(), {"stdDev": np.std}, 1),
        (ee.Reducer.median(), {"median": np.median}, 1),
        (ee.Reducer.percentile([10, 90]), {"p10": nearest_rank(10), "p90": nearest_rank(90)}, 1),
        (ee.Reducer.minMax(), {"min": np.min, "max": np.max}, 1),
        (ee.Reducer.sampleVariance(), {"variance": lambda a: np.var(a, ddof=1)}, 2),
    ]
    for reducer, outputs, least in cases:
        out = pixels(img.select("B1").reduceNeighborhood(reducer, kern), grid())
        assert list(out) == [f"B1_{o}" for o in outputs]
        mask = m & (ms.sum(0) >= least)
        for o, fn in outputs.items():
            want = masked_reduce(lambda a, _fn=fn, _n=least: _fn(a) if a.size >= _n else 0.0, vs, ms)
            assert_band(out, f"B1_{o}", want, mask, rtol=1e-5, atol=1e-6)
    count = pixels(img.select("B1").reduceNeighborhood(ee.Reducer.count(), kern), grid())
    assert_band(count, "B1_count", ms.sum(0).astype(float), m)
    counted = img.select("B1").reduceNeighborhood(ee.Reducer.count(), kern)
    assert types(counted)["B1_count"]["precision"] == "int"


def test_reduce_neighborhood_skip_masked_false(img: ee.Image, syn: Synthetic) -> None:
    w, x, y = weights(ee.Kernel.square(1))
    vs, ms, _ = window_stack(syn.b2[0], syn.mask[0], w, x, y)
    out = pixels(img.select("B2").reduceNeighborhood(ee.Reducer.max(), ee.Kernel.square(1), skipMasked=False),
                 grid())  # fmt: skip
    assert_band(out, "B2_max", masked_reduce(np.max, vs, ms), ms.any(0))
    assert (ms.any(0) & ~syn.mask[0]).any(), "some masked centres get a value"


def test_reduce_neighborhood_weights(img: ee.Image, syn: Synthetic) -> None:
    kern = ee.Kernel.gaussian(3, 1.0)
    w, x, y = weights(kern)
    m = syn.mask[0]
    vs, ms, ws = window_stack(syn.b1[0], m, w, x, y)
    b1 = img.select("B1")
    # inputWeight 'kernel' (default): weighted mean, variance and sum
    mean = _wmean(vs, ms, ws)
    assert_band(pixels(b1.reduceNeighborhood(ee.Reducer.mean(), kern), grid()), "B1_mean", mean, m)
    var = (ws * np.where(ms, (vs - mean) ** 2, 0)).sum(0) / (ws * ms).sum(0)
    assert_band(pixels(b1.reduceNeighborhood(ee.Reducer.variance(), kern), grid()), "B1_variance", var, m)
    wsum = (ws * np.where(ms, vs, 0)).sum(0)
    assert_band(pixels(b1.reduceNeighborhood(ee.Reducer.sum(), kern), grid()), "B1_sum", wsum, m)
    # 'mask': every pixel counts once
    plain = masked_reduce(np.mean, vs, ms)
    assert_band(pixels(b1.reduceNeighborhood(ee.Reducer.mean(), kern, "mask"), grid()), "B1_mean", plain, m)
    # 'min': min(kernel weight, 1) -- an unnormalised kernel of 2s counts every pixel once
    two = ee.Kernel.square(1, normalize=False, magnitude=2)
    s = pixels(b1.reduceNeighborhood(ee.Reducer.sum(), two, "min"), grid())
    vs3, ms3, _ = window_stack(syn.b1[0], m, np.ones((3, 3)), 1, 1)
    assert_band(s, "B1_sum", np.where(ms3, vs3, 0).sum(0), m)
    # sum of an integer band with an integer kernel stays an integer type
    qa_sum = img.select("QA").reduceNeighborhood(ee.Reducer.sum(), ee.Kernel.square(1, normalize=False))
    assert types(qa_sum)["QA_sum"]["precision"] == "int"
    threes = np.array([[1, 3, 1], [3, 3, 3], [1, 3, 1]])
    summed = img.select("QA").reduceNeighborhood(ee.Reducer.sum(), ee.Kernel.fixed(weights=threes.tolist()))
    got = pixels(summed, grid())["QA_sum"][0]
    np.testing.assert_array_equal(got, ndimage.correlate(syn.qa[0].astype(np.int64), threes, mode="constant"))
    qa_wsum = img.select("QA").reduceNeighborhood(ee.Reducer.sum(), ee.Kernel.square(1))
    assert types(qa_wsum) == {"QA_sum": FLOAT}


def test_combined_reducer_names_and_values(img: ee.Image, syn: Synthetic) -> None:
    kern = ee.Kernel.square(2)
    reducer = ee.Reducer.mean().combine(ee.Reducer.variance(), sharedInputs=True)
    image = img.select(["B1", "B2"]).reduceNeighborhood(reducer, kern)
    assert image.bandNames().getInfo() == ["B1_mean", "B1_variance", "B2_mean", "B2_variance"]
    w, x, y = weights(kern)
    out = pixels(image, grid())
    for name, band in (("B1", syn.b1[0]), ("B2", syn.b2[0])):
        vs, ms, _ = window_stack(band, syn.mask[0], w, x, y)
        assert_band(out, f"{name}_mean", masked_reduce(np.mean, vs, ms), syn.mask[0])
        assert_band(out, f"{name}_variance", masked_reduce(np.var, vs, ms), syn.mask[0])
    prefixed = ee.Reducer.mean().combine(ee.Reducer.stdDev(), "s_", True)
    names = img.select("B1").reduceNeighborhood(prefixed, kern).bandNames().getInfo()
    assert names == ["B1_mean", "B1_s_stdDev"]
    # a non-shared combine takes one band per reducer and keeps the output names
    two = img.select(["B1", "B2"]).reduceNeighborhood(ee.Reducer.min().combine(ee.Reducer.max()), kern)
    assert two.bandNames().getInfo() == ["min", "max"]
    got = pixels(two, grid())
    vs, ms, _ = window_stack(syn.b2[0], syn.mask[0], w, x, y)
    assert_band(got, "max", masked_reduce(np.max, vs, ms), syn.mask[0])


def test_lee_style_speckle_statistics(img: ee.Image, syn: Synthetic) -> None:
    """The local statistics of a Lee filter: mean and variance in one combined reducer."""
    b2 = img.select("B2")
    stats = b2.reduceNeighborhood(ee.Reducer.mean().combine(ee.Reducer.variance(), sharedInputs=True),
                                  ee.Kernel.square(1))  # fmt: skip
    mean, var = stats.select("B2_mean"), stats.select("B2_variance")
    weight = var.divide(var.add(mean.pow(2).multiply(0.25)))
    lee = mean.add(weight.multiply(b2.subtract(mean)))
    out = pixels(lee.rename("lee"), grid())
    vs, ms, _ = window_stack(syn.b2[0], syn.mask[0], np.ones((3, 3)), 1, 1)
    mu, v = masked_reduce(np.mean, vs, ms), masked_reduce(np.var, vs, ms)
    ref = mu + v / (v + 0.25 * mu**2) * (syn.b2[0] - mu)
    assert_band(out, "lee", ref, syn.mask[0], rtol=1e-4, atol=1e-5)


def test_reduce_neighborhood_errors(img: ee.Image) -> None:
    with pytest.raises(ee.EEException, match="inputWeight"):
        img.reduceNeighborhood(ee.Reducer.mean(), ee.Kernel.square(1), "weights").getInfo()
    with pytest.raises(ee.EEException, match="inputs"):
        img.reduceNeighborhood(ee.Reducer.min().combine(ee.Reducer.max()), ee.Kernel.square(1)).getInfo()


# -- tiles -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda i: i.focal_mean(2, "circle"),
        lambda i: i.focal_median(1, "square", iterations=2),
        lambda i: i.convolve(ee.Kernel.gaussian(3, 1)),
        lambda i: i.convolve(ee.Kernel.sobel()),
        lambda i: i.reduceNeighborhood(ee.Reducer.stdDev(), ee.Kernel.octagon(2)),
        lambda i: i.neighborhoodToBands(ee.Kernel.plus(1)),
    ],
)
def test_tiles_agree_with_a_whole_request(img: ee.Image, build: Callable[[ee.Image], ee.Image]) -> None:
    image = build(img.select(["B1", "QA"]))
    whole = pixels(image, grid(-3, -3, 15, 18))  # the image with 3 masked pixels around it
    for col0, row0, wd, ht in ((-3, -3, 5, 4), (-1, 0, 4, 6), (3, 4, 3, 3), (6, 9, 6, 6)):
        tile = pixels(image, grid(col0, row0, wd, ht))
        for name, (vals, mask) in whole.items():
            rows, cols = slice(row0 + 3, row0 + 3 + ht), slice(col0 + 3, col0 + 3 + wd)
            np.testing.assert_array_equal(tile[name][1], mask[rows, cols], err_msg=f"mask of {name}")
            np.testing.assert_array_equal(tile[name][0], vals[rows, cols], err_msg=f"values of {name}")
    # two pixels or more outside the image everything is masked (no kernel here reaches further)
    assert not any(mask[:1].any() or mask[:, :1].any() or mask[-2:].any() for _, mask in whole.values())


# -- neighborhoodToBands ---------------------------------------------------------------------
def test_neighborhood_to_bands(img: ee.Image, syn: Synthetic) -> None:
    kern = ee.Kernel.fixed(weights=[[0, 1, 0], [1, 1, 1], [0, 0, 1]])
    image = img.select(["B1", "QA"]).neighborhoodToBands(kern)
    names = ["_0_-1", "_-1_0", "_0_0", "_1_0", "_1_1"]
    assert image.bandNames().getInfo() == [f"B1{n}" for n in names] + [f"QA{n}" for n in names]
    out = pixels(image, grid())
    pv, pm = np.pad(syn.b1[0], 1), np.pad(syn.mask[0], 1, constant_values=False)
    h, w = SYN_SHAPE
    for n, (dx, dy) in zip(names, ((0, -1), (-1, 0), (0, 0), (1, 0), (1, 1)), strict=True):
        want_v = pv[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        want_m = pm[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        assert_band(out, f"B1{n}", want_v, want_m, rtol=0, atol=0)
    assert types(image)["QA_1_1"]["precision"] == "int"


@pytest.mark.parametrize("eight", [True, False])
def test_connected_pixel_count_equals_scipy_whatever_the_tiling(eight: bool) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(5)
    classes = rng.integers(0, 3, (40, 50)).astype(np.uint8)
    valid = rng.random((40, 50)) > 0.1
    register_numpy_image("test/objects", {"c": classes}, crs=SYN_CRS, transform=SYN_TRANSFORM,
                         masks={"c": valid})  # fmt: skip
    counted = ee.Image("test/objects").connectedPixelCount(maxSize=12, eightConnected=eight)
    structure = np.ones((3, 3)) if eight else None
    expected = np.zeros(classes.shape, int)
    for value in range(3):
        labels, _ = ndimage.label(valid & (classes == value), structure=structure)
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        expected += counts[labels]
    expected = np.minimum(expected, 12)
    whole = pixels(counted, ee_grid(SYN_CRS, SYN_TRANSFORM, 50, 40))["c"]
    np.testing.assert_array_equal(whole[0][valid], expected[valid])
    assert not whole[1][~valid].any()
    step, x0, y1 = SYN_TRANSFORM[0], SYN_TRANSFORM[2], SYN_TRANSFORM[5]
    for c0, r0 in ((0, 0), (25, 0), (0, 20), (25, 20)):  # four tiles: the same counts
        part = pixels(
            counted, ee_grid(SYN_CRS, (step, 0.0, x0 + c0 * step, 0.0, -step, y1 - r0 * step), 25, 20)
        )
        tile = (slice(r0, r0 + 20), slice(c0, c0 + 25))
        np.testing.assert_array_equal(part["c"][0][valid[tile]], expected[tile][valid[tile]])
