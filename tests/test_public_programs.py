"""Public Earth Engine programs run unchanged on the demo world (only the area, the dates and, for the
Landsat tutorials, the collection changed), each compared with a numpy reference computed from the
same input pixels.

1. Developer Guide, "Eigen Analysis": principal components of a composite.
2. Community tutorial "Time Series Modeling": harmonic regression with ``Reducer.linearRegression``.
3. Developer Guide, "Array Sorting and Reducing": mean of the least cloudy images per pixel.
4. Developer Guide, "Clustering": k-means on sampled pixels, then ``Image.cluster``.
5. Linear NDVI trend with ``Reducer.linearFit`` over a time series (Developer Guide, "Linear
   Regression").
6. Developer Guide, "Spectral Unmixing": fractions of endmembers taken from the image.
"""

from __future__ import annotations

import math

import ee
import numpy as np
import pytest

from gee_fusion.local.world.config import DEFAULT_WORLD
from tests.conftest import ee_grid, pixels

pytestmark = pytest.mark.slow

SIZE = 40  # px at 10 m
X0, Y1 = DEFAULT_WORLD.origin[0] + 5000.0, DEFAULT_WORLD.origin[1] - 5000.0
GRID = ee_grid(DEFAULT_WORLD.crs, (10.0, 0.0, X0, 0.0, -10.0, Y1), SIZE, SIZE)


def region() -> ee.Geometry:
    return ee.Geometry.Rectangle([X0, Y1 - 10 * SIZE, X0 + 10 * SIZE, Y1], DEFAULT_WORLD.crs, False)


def s2(start: str = "2021-01-01", end: str = "2022-01-01") -> ee.ImageCollection:
    return ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterBounds(region()).filterDate(start, end)


def stack(image: ee.Image, names: list[str]) -> np.ndarray:
    got = pixels(image, GRID)
    assert all(got[n][1].all() for n in names)
    return np.stack([got[n][0].astype(np.float64).ravel() for n in names], axis=1)


def test_1_principal_components_as_the_guide_computes_them() -> None:
    # the guide's single scene: the least cloudy summer image (a composite would be sampled in
    # EPSG:4326 by reduceRegion, as on Earth Engine, and no longer match a per-pixel reference)
    image = (
        s2("2021-06-01", "2021-09-01")
        .sort("CLOUDY_PIXEL_PERCENTAGE")
        .first()
        .select(["B2", "B3", "B4", "B8"])
    )
    scale, geom = 10, region()
    band_names = image.bandNames()
    mean_dict = image.reduceRegion(reducer=ee.Reducer.mean(), geometry=geom, scale=scale, maxPixels=1e9)
    means = ee.Image.constant(mean_dict.values(band_names))
    centered = image.subtract(means)

    def get_new_band_names(prefix: str) -> ee.List:
        seq = ee.List.sequence(1, band_names.length())
        return seq.map(lambda b: ee.String(prefix).cat(ee.Number(b).int()))

    def get_principal_components(centered: ee.Image, scale: int, region: ee.Geometry) -> ee.Image:
        arrays = centered.toArray()
        covar = arrays.reduceRegion(
            reducer=ee.Reducer.centeredCovariance(), geometry=region, scale=scale, maxPixels=1e9
        )
        covar_array = ee.Array(covar.get("array"))
        eigens = covar_array.eigen()
        eigen_values = eigens.slice(1, 0, 1)
        eigen_vectors = eigens.slice(1, 1)
        array_image = arrays.toArray(1)
        principal_components = ee.Image(eigen_vectors).matrixMultiply(array_image)
        sd_image = ee.Image(eigen_values.sqrt()).arrayProject([0]).arrayFlatten([get_new_band_names("sd")])
        return (
            principal_components.arrayProject([0]).arrayFlatten([get_new_band_names("pc")]).divide(sd_image)
        )

    pcs = get_principal_components(centered, scale, geom)
    x = stack(image, ["B2", "B3", "B4", "B8"])
    xc = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(xc.T @ xc / (len(xc) - 1))
    order = np.argsort(-values)
    ref = xc @ vectors[:, order] / np.sqrt(values[order])
    got = stack(pcs, ["pc1", "pc2", "pc3", "pc4"])
    assert np.allclose(np.abs(got), np.abs(ref), rtol=1e-4, atol=1e-4)
    assert np.allclose(got.std(axis=0, ddof=1), 1.0, atol=1e-6)


def _mask_clouds(image: ee.Image) -> ee.Image:
    scl = image.select("SCL")
    return image.updateMask(scl.neq(3).And(scl.neq(8)).And(scl.neq(9)).And(scl.neq(10)))


def _add_variables(image: ee.Image) -> ee.Image:
    date = ee.Date(image.get("system:time_start"))
    years = date.difference(ee.Date("1970-01-01"), "year")
    return (
        image.addBands(image.normalizedDifference(["B8", "B4"]).rename("NDVI"))
        .addBands(ee.Image(years).rename("t"))
        .float()
        .addBands(ee.Image.constant(1))
    )


def _series() -> ee.ImageCollection:
    return s2("2021-03-01", "2021-11-01").map(_mask_clouds).map(_add_variables)


def _series_arrays(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(T, pixels, len(names)) values and (T, pixels) validity of the series, for the reference."""
    col = _series().select(names)
    n = col.size().getInfo()
    got = pixels(col.toBands(), GRID)
    keys = list(got)
    values = np.stack([got[k][0].astype(np.float64).ravel() for k in keys]).reshape(n, len(names), -1)
    valid = np.stack([got[k][1].ravel() for k in keys]).reshape(n, len(names), -1).all(axis=1)
    return np.moveaxis(values, 1, 2), valid


def test_2_harmonic_regression_as_the_time_series_tutorial_writes_it() -> None:
    def add_harmonics(image: ee.Image) -> ee.Image:
        time_radians = image.select("t").multiply(2 * math.pi)
        return image.addBands(time_radians.cos().rename("cos")).addBands(time_radians.sin().rename("sin"))

    harmonic = _series().map(add_harmonics)
    independents = ee.List(["constant", "t", "cos", "sin"])
    dependent = ee.String("NDVI")
    trend = harmonic.select(independents.add(dependent)).reduce(
        ee.Reducer.linearRegression(independents.length(), 1)
    )
    coefficients = trend.select("coefficients").arrayProject([0]).arrayFlatten([independents])
    got = pixels(coefficients, GRID)

    values, valid = _series_arrays(["t", "NDVI"])
    for p in (0, 777, SIZE * SIZE - 1):
        ok = valid[:, p]
        t, y = values[ok, p, 0], values[ok, p, 1]
        x = np.stack([np.ones_like(t), t, np.cos(2 * math.pi * t), np.sin(2 * math.pi * t)], axis=1)
        ref = np.linalg.lstsq(x, y, rcond=None)[0]
        r, c = divmod(p, SIZE)
        assert np.allclose(
            [got[k][0][r, c] for k in ("constant", "t", "cos", "sin")], ref, rtol=1e-3, atol=1e-3
        )


def test_3_least_cloudy_mean_as_the_array_guide_writes_it() -> None:
    collection = s2("2021-05-01", "2021-09-01").select(["B2", "B3", "B4", "B8", "MSK_CLDPRB"])
    array = collection.toArray()
    image_axis, band_axis = 0, 1
    bands = array.arraySlice(band_axis, 0, 4)
    clouds = array.arraySlice(band_axis, 4, 5)
    sorted_ = bands.arraySort(clouds)
    num_images = 4
    least_cloudy = sorted_.arraySlice(image_axis, 0, num_images)
    mean = least_cloudy.arrayReduce(reducer=ee.Reducer.mean(), axes=[image_axis])
    mean_image = mean.arrayProject([band_axis]).arrayFlatten([["B2", "B3", "B4", "B8"]])
    got = pixels(mean_image, GRID)

    n = collection.size().getInfo()
    raw = pixels(collection.toBands(), GRID)
    keys = list(raw)
    vals = np.stack([raw[k][0].astype(np.float64) for k in keys]).reshape(n, 5, SIZE, SIZE)
    ok = np.stack([raw[k][1] for k in keys]).reshape(n, 5, SIZE, SIZE).all(axis=1)
    for r, c in [(0, 0), (13, 29), (39, 39)]:
        idx = np.flatnonzero(ok[:, r, c])
        order = idx[np.argsort(vals[idx, 4, r, c], kind="stable")][:num_images]
        ref = vals[order, :4, r, c].mean(axis=0)
        assert np.allclose([got[b][0][r, c] for b in ("B2", "B3", "B4", "B8")], ref, rtol=1e-6)


def test_4_kmeans_as_the_clustering_guide_writes_it() -> None:
    from sklearn.cluster import KMeans

    image = s2("2021-06-01", "2021-09-01").map(_mask_clouds).median().select(["B2", "B3", "B4", "B8"])
    training = image.sample(region=region(), scale=10, numPixels=500, seed=0)
    clusterer = ee.Clusterer.wekaKMeans(5).train(training)
    result = image.cluster(clusterer)
    got = pixels(result, GRID)["cluster"]

    rows = training.getInfo()["features"]
    x = np.array([[f["properties"][b] for b in ("B2", "B3", "B4", "B8")] for f in rows], dtype=np.float64)
    model = KMeans(n_clusters=5, init="random", n_init=1, max_iter=500, random_state=10).fit(x)
    ref = model.predict(stack(image, ["B2", "B3", "B4", "B8"])).reshape(SIZE, SIZE)
    assert got[1].all() and np.array_equal(got[0], ref)


def test_5_ndvi_trend_with_linear_fit() -> None:
    trend = _series().select(["t", "NDVI"]).reduce(ee.Reducer.linearFit())
    got = pixels(trend, GRID)
    values, valid = _series_arrays(["t", "NDVI"])
    for p in (5, 999, 1500):
        ok = valid[:, p]
        slope, offset = np.polyfit(values[ok, p, 0], values[ok, p, 1], 1)
        r, c = divmod(p, SIZE)
        assert np.isclose(got["scale"][0][r, c], slope, rtol=1e-4, atol=1e-6)
        assert np.isclose(got["offset"][0][r, c], offset, rtol=1e-4, atol=1e-4)


def test_6_spectral_unmixing_as_the_guide_writes_it() -> None:
    image = (
        s2("2021-06-01", "2021-09-01")
        .map(_mask_clouds)
        .median()
        .select(["B2", "B3", "B4", "B8", "B11", "B12"])
    )
    ndvi = image.normalizedDifference(["B8", "B4"])
    # endmembers: mean spectra of the greenest, the least green and the darkest parts of the area
    names = image.bandNames()

    def mean_spectrum(where: ee.Image) -> ee.List:
        return image.updateMask(where).reduceRegion(ee.Reducer.mean(), region(), 10).values(names)

    veg, bare, dark = (
        mean_spectrum(ndvi.gt(0.6)),
        mean_spectrum(ndvi.lt(0.2)),
        mean_spectrum(image.select("B8").lt(1500)),
    )
    fractions = image.unmix([bare, veg, dark])
    ends = np.array(ee.List([bare, veg, dark]).getInfo(), dtype=np.float64)
    y = stack(image, ["B2", "B3", "B4", "B8", "B11", "B12"])
    ref = np.linalg.lstsq(ends.T, y.T, rcond=None)[0].T
    got = stack(fractions, ["band_0", "band_1", "band_2"])
    assert np.allclose(got, ref, atol=1e-5)
