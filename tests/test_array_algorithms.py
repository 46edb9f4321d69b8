"""ee.Array, array images and the fit / covariance / histogram / group reducers, each against numpy.

The programs follow public Earth Engine guides as written (principal components, harmonic regression
with ``linearRegression``, a linear trend with ``linearFit``, a greenest-pixel composite with
``ImageCollection.toArray`` + ``arraySort`` + ``arraySlice``), on small synthetic assets.
"""

from __future__ import annotations

from collections.abc import Iterator

import ee
import numpy as np
import pytest

from gee_fusion.local.catalog import CATALOG, register_numpy_collection, register_numpy_image
from tests.conftest import ee_grid, pixels

CRS = "EPSG:32631"
TRANSFORM = (10.0, 0.0, 400000.0, 0.0, -10.0, 5400000.0)
H, W, T = 10, 12, 8
GRID = ee_grid(CRS, TRANSFORM, W, H)
BOUNDS = [400000, 5400000 - 10 * H, 400000 + 10 * W, 5400000]


def region() -> ee.Geometry:
    return ee.Geometry.Rectangle(BOUNDS, CRS, False)


@pytest.fixture(scope="module")
def data() -> Iterator[dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(3, H, W))
    mix = np.array([[1.0, 0.5, 0.2], [0.3, 1.0, 0.1], [0.2, 0.4, 1.0], [0.6, 0.2, 0.9]])
    bands = np.einsum("bk,khw->bhw", mix, base) * 100 + 1000
    image = {f"B{i}": bands[i].astype(np.float32) for i in range(4)}
    register_numpy_image("test/arr_img", image, crs=CRS, transform=TRANSFORM)
    t = np.arange(T, dtype=np.float64)
    ndvi = 0.3 + 0.02 * t[:, None, None] + 0.1 * np.sin(2 * np.pi * t[:, None, None] / 4) \
        + rng.normal(scale=0.01, size=(T, H, W))  # fmt: skip
    mask = rng.random((T, H, W)) > 0.25
    times = [f"2021-{m + 1:02d}-01" for m in range(T)]
    register_numpy_collection(
        "test/arr_series",
        {"NDVI": ndvi.astype(np.float32), "t": np.broadcast_to(t[:, None, None], ndvi.shape).astype("f4")},
        crs=CRS, transform=TRANSFORM, times=times, masks={"NDVI": mask, "t": mask},
    )  # fmt: skip
    as64 = {"bands": bands, "ndvi": ndvi}
    yield {**{k: v.astype(np.float32).astype(np.float64) for k, v in as64.items()},
           "mask": mask, "t": t}  # fmt: skip
    CATALOG.unregister("test/arr_img")
    CATALOG.unregister("test/arr_series")


def test_ee_array_algebra_equals_numpy() -> None:
    a = np.array([[2.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 1.5]])
    arr = ee.Array(a.tolist())
    assert np.allclose(arr.matrixMultiply(arr).getInfo(), a @ a)
    assert np.allclose(arr.matrixInverse().getInfo(), np.linalg.inv(a))
    assert np.allclose(arr.transpose().getInfo(), a.T)
    assert np.isclose(arr.matrixDeterminant().getInfo(), np.linalg.det(a))
    assert np.allclose(arr.reduce(ee.Reducer.sum(), [0]).getInfo(), a.sum(axis=0, keepdims=True))
    assert np.allclose(arr.slice(1, 1).getInfo(), a[:, 1:])
    assert ee.Array([[1], [2], [3]]).project([0]).getInfo() == [1, 2, 3]
    assert ee.Array([3, 9, 2]).argmax().getInfo() == [1]
    assert ee.Array([[1, 2], [3, 4]]).get([1, 0]).getInfo() == 3
    assert ee.Array.cat([ee.Array([1, 2]), ee.Array([3])]).getInfo() == [1, 2, 3]
    assert ee.Array([1, 2, 3, 4]).reshape([2, 2]).getInfo() == [[1, 2], [3, 4]]
    assert ee.Array([3, 1, 2]).sort().getInfo() == [1, 2, 3]
    assert ee.Array([1, 2]).add(ee.Array([10, 20])).getInfo() == [11, 22]
    eig = np.asarray(arr.eigen().getInfo())
    values, vectors = np.linalg.eigh(a)
    order = np.argsort(-values)
    assert np.allclose(eig[:, 0], values[order])
    for row, k in zip(eig, order, strict=True):  # eigenvectors up to their sign
        assert np.allclose(np.abs(row[1:] @ vectors[:, k]), 1.0)


def test_ee_array_errors_are_earth_engines() -> None:
    with pytest.raises(ee.EEException, match="Left matrix has 2 columns but right matrix has 3 rows"):
        ee.Array([[1, 2], [3, 4]]).matrixMultiply(ee.Array([[1], [2], [3]])).getInfo()
    with pytest.raises(ee.EEException, match="requires that all other axes have length 1"):
        ee.Array([[1, 2], [3, 4]]).project([0]).getInfo()


def test_principal_components_as_the_guide_computes_them(data) -> None:
    image = ee.Image("test/arr_img")
    names = ["B0", "B1", "B2", "B3"]
    mean_dict = image.reduceRegion(ee.Reducer.mean(), region(), 10)
    means = ee.Image.constant(mean_dict.values(names))
    centered = image.subtract(means)
    arrays = centered.toArray()
    covar = arrays.reduceRegion(
        reducer=ee.Reducer.centeredCovariance(), geometry=region(), scale=10, maxPixels=1e9
    )
    covar_array = ee.Array(covar.get("array"))
    eigens = covar_array.eigen()
    eigen_vectors = eigens.slice(1, 1)
    array_image = arrays.toArray(1)
    pcs = (
        ee.Image(eigen_vectors)
        .matrixMultiply(array_image)
        .arrayProject([0])
        .arrayFlatten([["pc1", "pc2", "pc3", "pc4"]])
    )
    got = pixels(pcs, GRID)

    x = data["bands"].reshape(4, -1).T
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc / (len(xc) - 1)
    assert np.allclose(np.asarray(covar_array.getInfo()), cov, rtol=1e-6)
    values, vectors = np.linalg.eigh(cov)
    ref = xc @ vectors[:, np.argsort(-values)]
    for i in range(4):
        pc = got[f"pc{i + 1}"][0].ravel()
        assert got[f"pc{i + 1}"][1].all()
        assert np.allclose(np.abs(pc), np.abs(ref[:, i]), rtol=1e-4, atol=1e-3)
    info = pcs.getInfo()
    assert [b["id"] for b in info["bands"]] == ["pc1", "pc2", "pc3", "pc4"]
    assert arrays.getInfo()["bands"][0]["data_type"]["dimensions"] == 1


def test_harmonic_regression_with_linear_regression(data) -> None:
    series = ee.ImageCollection("test/arr_series")

    def add_terms(img: ee.Image) -> ee.Image:
        t = img.select("t")
        w = t.multiply(2 * np.pi / 4)
        return img.addBands(ee.Image.constant(1).rename("constant")).addBands(w.sin().rename("sin")) \
            .addBands(t.rename("trend"), overwrite=True)  # fmt: skip

    fit = (
        series.map(add_terms)
        .select(["constant", "trend", "sin", "NDVI"])
        .reduce(ee.Reducer.linearRegression(3, 1))
    )
    coefs = fit.select("coefficients").arrayProject([0]).arrayFlatten([["constant", "trend", "sin"]])
    got = pixels(coefs, GRID)
    t, ndvi, mask = data["t"], data["ndvi"], data["mask"]
    for r, c in [(0, 0), (4, 7), (9, 11)]:
        ok = mask[:, r, c]
        x = np.stack([np.ones(T), t, np.sin(2 * np.pi * t / 4)], axis=1)[ok]
        ref = np.linalg.lstsq(x, ndvi[ok, r, c], rcond=None)[0]
        assert np.allclose([got[k][0][r, c] for k in ("constant", "trend", "sin")], ref, atol=1e-4)
    rms = pixels(fit.select("residuals").arrayGet([0]), GRID)["residuals"][0]
    assert (rms < 0.05).all()


def test_linear_fit_per_pixel_and_over_a_region(data) -> None:
    series = ee.ImageCollection("test/arr_series").select(["t", "NDVI"])
    got = pixels(series.reduce(ee.Reducer.linearFit()), GRID)
    t, ndvi, mask = data["t"], data["ndvi"], data["mask"]
    r, c = 5, 6
    ok = mask[:, r, c]
    slope, intercept = np.polyfit(t[ok], ndvi[ok, r, c], 1)
    assert np.isclose(got["scale"][0][r, c], slope, atol=1e-5)
    assert np.isclose(got["offset"][0][r, c], intercept, atol=1e-5)

    image = ee.Image("test/arr_img").select(["B0", "B1"])
    fit = image.reduceRegion(ee.Reducer.linearFit(), region(), 10).getInfo()
    b = data["bands"]
    slope, intercept = np.polyfit(b[0].ravel(), b[1].ravel(), 1)
    assert np.isclose(fit["scale"], slope) and np.isclose(fit["offset"], intercept)


def test_greenest_pixel_with_collection_to_array(data) -> None:
    series = ee.ImageCollection("test/arr_series").select(["NDVI", "t"])
    array = series.toArray()
    sorted_ = array.arraySort(array.arraySlice(1, 0, 1))
    greenest = sorted_.arraySlice(0, -1).arrayProject([1]).arrayFlatten([["NDVI", "t"]])
    count = pixels(array.arrayLength(0), GRID)["array"][0]
    got = pixels(greenest, GRID)
    first_valid = pixels(array.arrayGet([0, 1]), GRID)["array"]
    ndvi = np.where(data["mask"], data["ndvi"], -np.inf)
    assert (count == data["mask"].sum(axis=0)).all()
    has = data["mask"].any(axis=0)
    assert np.allclose(got["NDVI"][0][has], ndvi.max(axis=0)[has], atol=1e-6)
    assert np.array_equal(got["t"][0][has], np.argmax(ndvi, axis=0)[has].astype(float))
    assert np.array_equal(first_valid[0][has], np.argmax(data["mask"], axis=0)[has].astype(float))
    mean = pixels(array.arraySlice(1, 0, 1).arrayReduce(ee.Reducer.mean(), [0]).arrayGet([0, 0]), GRID)[
        "array"
    ][0]
    ref = np.where(data["mask"], data["ndvi"], 0).sum(0) / np.maximum(data["mask"].sum(0), 1)
    assert np.allclose(mean[has], ref[has], atol=1e-6)


def test_group_fixed_histogram_and_distinct_counts(data) -> None:
    image = ee.Image("test/arr_img")
    classes = image.select("B0").gt(1000).rename("cls")
    grouped = (
        image.select("B1").addBands(classes).reduceRegion(ee.Reducer.mean().group(1, "class"), region(), 10)
    )
    groups = grouped.getInfo()["groups"]
    b = data["bands"]
    cls = b[0] > 1000
    assert [g["class"] for g in groups] == [0, 1]
    assert np.isclose(groups[1]["mean"], b[1][cls].mean())
    assert np.isclose(groups[0]["mean"], b[1][~cls].mean())
    hist = np.asarray(
        image.select("B1")
        .reduceRegion(ee.Reducer.fixedHistogram(800, 1200, 4), region(), 10)
        .get("B1")
        .getInfo()
    )
    counts, edges = np.histogram(b[1][(b[1] >= 800) & (b[1] < 1200)], bins=4, range=(800, 1200))
    assert np.allclose(hist[:, 0], edges[:-1]) and np.array_equal(hist[:, 1], counts)
    distinct = classes.reduceRegion(ee.Reducer.countDistinctNonNull(), region(), 10).getInfo()
    assert distinct == {"cls": 2}


def test_array_image_bad_input_has_clear_errors(data) -> None:
    image = ee.Image("test/arr_img")
    with pytest.raises(ee.EEException, match="holds scalars"):
        image.arrayProject([0]).getInfo()
    with pytest.raises(ee.EEException, match="Need 2 bands"):
        image.reduceRegion(ee.Reducer.linearFit(), region(), 10).getInfo()
    with pytest.raises(ee.EEException, match="Incorrect number of labels"):
        pixels(image.toArray().arrayFlatten([["a", "b"]]), GRID)


def test_reduce_regions_random_points_and_small_families(data) -> None:
    image = ee.Image("test/arr_img")
    x0, y0, x1, y1 = BOUNDS
    halves = ee.FeatureCollection([
        ee.Feature(ee.Geometry.Rectangle([x0, y0, x0 + 60, y1], CRS, False), {"name": "west"}),
        ee.Feature(ee.Geometry.Rectangle([x0 + 60, y0, x1, y1], CRS, False), {"name": "east"}),
    ])  # fmt: skip
    one = image.select("B0").reduceRegions(halves, ee.Reducer.mean(), 10).getInfo()["features"]
    b = data["bands"]
    assert [f["properties"]["name"] for f in one] == ["west", "east"]
    assert np.isclose(one[0]["properties"]["mean"], b[0][:, :6].mean())
    assert np.isclose(one[1]["properties"]["mean"], b[0][:, 6:].mean())
    many = image.reduceRegions(halves, ee.Reducer.max(), 10).getInfo()["features"]
    assert np.isclose(many[1]["properties"]["B3"], b[3][:, 6:].max())

    points = ee.FeatureCollection.randomPoints(region(), 50, 7)
    coords = np.array([f["geometry"]["coordinates"] for f in points.getInfo()["features"]])
    assert coords.shape == (50, 2)
    assert (coords[:, 0] > x0).all() and (coords[:, 0] < x1).all() and (coords[:, 1] > y0).all()
    assert points.getInfo() == ee.FeatureCollection.randomPoints(region(), 50, 7).getInfo()

    multi = ee.Geometry.MultiPoint([[0, 0], [1, 1], [2, 2]])
    assert len(multi.geometries().getInfo()) == 3
    const = pixels(ee.Dictionary({"b": 2, "a": 1.5}).toImage(), GRID)
    assert list(const) == ["a", "b"] and np.all(const["a"][0] == 1.5) and np.all(const["b"][0] == 2)
    assert ee.PixelType.float().getInfo()["precision"] == "float"
    cast = image.select("B0").cast({"B0": ee.PixelType.int16()})
    assert cast.getInfo()["bands"][0]["data_type"]["max"] == 32767
    rgb = np.array([[0.2, 0.5, 0.9]])
    hsv = pixels(ee.Image.constant(rgb[0].tolist()).rgbToHsv(), GRID)
    back = pixels(
        ee.Image.constant([hsv[k][0][0, 0] for k in ("hue", "saturation", "value")]).hsvToRgb(), GRID
    )
    from matplotlib.colors import rgb_to_hsv

    assert np.allclose([hsv[k][0][0, 0] for k in ("hue", "saturation", "value")], rgb_to_hsv(rgb)[0])
    assert np.allclose([back[k][0][0, 0] for k in ("red", "green", "blue")], rgb[0])
    first = ee.ImageCollection("test/arr_series").first()
    meta = pixels(first.metadata("system:time_start", "t0"), GRID)
    assert np.all(meta["t0"][0] == first.get("system:time_start").getInfo())


def test_array_bands_must_be_flattened_before_computing_pixels(data) -> None:
    with pytest.raises(ee.EEException, match="arrayFlatten"):
        pixels(ee.Image("test/arr_img").toArray(), GRID)


def test_histogram_buckets_are_powers_of_two_that_fit_max_buckets(data) -> None:
    image = ee.Image("test/arr_img").select("B1")
    b = data["bands"][1].ravel()
    for max_buckets, min_width in [(None, None), (16, None), (8, 10)]:
        out = (
            image.reduceRegion(ee.Reducer.histogram(max_buckets, min_width), region(), 10).get("B1").getInfo()
        )
        width, start, counts = out["bucketWidth"], out["bucketMin"], np.asarray(out["histogram"])
        base = 1 if min_width is None else min_width
        assert np.isclose(np.log2(width / base) % 1, 0)  # base times a power of two
        assert len(counts) <= (max_buckets or 256) and np.isclose(start / width, round(start / width))
        edges = start + width * np.arange(len(counts) + 1)
        assert np.array_equal(counts, np.histogram(b, bins=edges)[0]) and counts.sum() == b.size
        half, limit = width / 2, max_buckets or 256
        if min_width is None or half >= min_width:  # the narrowest allowed width that fits
            assert np.floor(b.max() / half) - np.floor(b.min() / half) + 1 > limit
        means = np.asarray(out["bucketMeans"])
        k = int(np.argmax(counts))
        assert np.isclose(means[k], b[(b >= edges[k]) & (b < edges[k + 1])].mean())


def test_a_ragged_array_says_rows_must_match() -> None:
    with pytest.raises(ee.EEException, match="rectangular"):
        ee.Array([[1, 2], [3]]).getInfo()


def test_matrix_and_running_reductions_of_array_images() -> None:
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    image = ee.Image(ee.Array(a.tolist()))
    det = pixels(image.matrixDeterminant(), GRID)["constant"][0]
    assert np.allclose(det, np.linalg.det(a))
    accum = pixels(
        ee.Image.constant([1, 2, 3])
        .toArray()
        .arrayAccum(0, ee.Reducer.sum())
        .arrayFlatten([["a", "b", "c"]]),
        GRID,
    )
    assert [float(accum[k][0][0, 0]) for k in "abc"] == [1.0, 3.0, 6.0]
