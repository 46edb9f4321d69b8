"""Objects, vectors, unmixing, clustering and spatial filters on the local engine, each against a
scipy / rasterio / scikit-learn / shapely reference. The programs follow the Earth Engine guides
(object-based methods, reducing to vectors, spectral unmixing, unsupervised classification).
"""

from __future__ import annotations

from collections.abc import Iterator

import ee
import numpy as np
import pytest
from scipy import ndimage

from gee_fusion.local.catalog import CATALOG, register_numpy_image
from tests.conftest import ee_grid, pixels

CRS = "EPSG:32631"
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0)
H, W = 24, 30
GRID = ee_grid(CRS, TRANSFORM, W, H)
BOUNDS = [500000, 5300000 - 10 * H, 500000 + 10 * W, 5300000]


def region() -> ee.Geometry:
    return ee.Geometry.Rectangle(BOUNDS, CRS, False)


@pytest.fixture(scope="module")
def scene() -> Iterator[dict[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    hot = np.zeros((H, W), dtype=np.uint8)
    hot[2:6, 3:9] = 1  # 24 px
    hot[10:13, 10:12] = 1  # 6 px
    hot[15:22, 2:25] = 1  # 161 px: larger than maxSize 128
    hot[3, 20] = 1  # a single pixel
    temp = (rng.normal(300, 3, (H, W)) + 5 * hot).astype(np.float32)
    ends = np.array([[0.30, 0.25, 0.20], [0.05, 0.40, 0.10], [0.02, 0.03, 0.01]])  # bare, veg, water
    fractions = rng.dirichlet([2, 2, 2], size=(H, W))
    spectra = (fractions @ ends).astype(np.float64) + rng.normal(0, 0.002, (H, W, 3))
    bands = {"hot": hot, "temp": temp, **{f"S{i}": spectra[..., i].astype(np.float32) for i in range(3)}}
    register_numpy_image("test/objects", bands, crs=CRS, transform=TRANSFORM)
    as_read = spectra.astype(np.float32).astype(np.float64)  # the values the engine reads
    yield {"hot": hot, "temp": temp.astype(np.float64), "spectra": as_read, "ends": ends}
    CATALOG.unregister("test/objects")


def test_object_based_methods_as_the_guide_writes_them(scene) -> None:
    image = ee.Image("test/objects")
    hotspots = image.select("hot").selfMask().rename("hotspots")
    object_id = hotspots.connectedComponents(connectedness=ee.Kernel.plus(1), maxSize=128)
    got = pixels(object_id, GRID)
    labels, mask = got["labels"]
    ref, n = ndimage.label(scene["hot"] == 1)
    sizes = np.bincount(ref.ravel())
    small = (ref > 0) & (sizes[ref] <= 128)
    assert np.array_equal(mask, small)  # the 161 px object is background
    for k in range(1, n + 1):  # one label per object, different objects different labels
        if sizes[k] <= 128:
            assert len(np.unique(labels[ref == k])) == 1
    assert len(np.unique(labels[small])) == sum(1 for k in range(1, n + 1) if sizes[k] <= 128)

    # the same labels whatever the request grid (a window cut through the first object)
    shifted = ee_grid(CRS, (10.0, 0.0, 500050.0, 0.0, -10.0, 5299970.0), 12, 10)
    part = pixels(object_id, shifted)["labels"]
    assert np.array_equal(part[0][part[1]], labels[3:13, 5:17][part[1]])

    mean_temp = image.select("temp").addBands(object_id.select("labels")).reduceConnectedComponents(
        reducer=ee.Reducer.mean(), labelBand="labels", maxSize=256)  # fmt: skip
    vals, ok = pixels(mean_temp, GRID)["temp"]
    for k in (1, 2):
        inside = ref == k
        assert ok[inside].all() and np.allclose(vals[inside], scene["temp"][inside].mean(), rtol=1e-6)


def test_reduce_to_vectors_traces_each_region(scene) -> None:
    image = ee.Image("test/objects").select(["hot", "temp"])
    vectors = image.select("hot").selfMask().addBands(image.select("temp")).reduceToVectors(
        geometry=region(), scale=10, geometryType="polygon", eightConnected=False,
        labelProperty="zone", reducer=ee.Reducer.mean(), geometryInNativeProjection=True)  # fmt: skip
    feats = vectors.getInfo()["features"]
    ref, n = ndimage.label(scene["hot"] == 1)
    assert len(feats) == n
    assert all(f["properties"]["zone"] == 1 for f in feats)
    import shapely.geometry

    areas = sorted(round(shapely.geometry.shape(f["geometry"]).area) for f in feats)
    assert areas == sorted(int(s) * 100 for s in np.bincount(ref.ravel())[1:])
    means = sorted(f["properties"]["mean"] for f in feats)
    ref_means = sorted(scene["temp"][ref == k].mean() for k in range(1, n + 1))
    assert np.allclose(means, ref_means, rtol=1e-6)


def test_spectral_unmixing_equals_least_squares(scene) -> None:
    image = ee.Image("test/objects").select(["S0", "S1", "S2"])
    ends = scene["ends"].tolist()
    y = scene["spectra"].reshape(-1, 3)
    free = pixels(image.unmix(ends), GRID)
    ref = np.linalg.lstsq(scene["ends"].T, y.T, rcond=None)[0].T
    assert np.allclose(np.stack([free[f"band_{i}"][0].ravel() for i in range(3)], 1), ref, atol=1e-6)
    summed = pixels(image.unmix(ends, True), GRID)
    total = sum(summed[f"band_{i}"][0] for i in range(3))
    assert np.allclose(total, 1.0)
    positive = pixels(image.unmix(ends, False, True), GRID)
    from scipy.optimize import nnls

    r, c = 7, 11
    expected = nnls(scene["ends"].T, scene["spectra"][r, c])[0]
    assert np.allclose([positive[f"band_{i}"][0][r, c] for i in range(3)], expected, atol=1e-6)
    assert min(positive[f"band_{i}"][0].min() for i in range(3)) >= 0


def test_unsupervised_classification_as_the_guide_writes_it(scene) -> None:
    from sklearn.cluster import KMeans

    image = ee.Image("test/objects").select(["S0", "S1", "S2"])
    training = image.sample(region=region(), scale=10, numPixels=300, seed=1)
    clusterer = ee.Clusterer.wekaKMeans(4).train(training)
    result = pixels(image.cluster(clusterer), GRID)["cluster"]
    rows = training.getInfo()["features"]
    x = np.array([[f["properties"][b] for b in ("S0", "S1", "S2")] for f in rows])
    model = KMeans(n_clusters=4, init="random", n_init=1, max_iter=500, random_state=10).fit(x)
    ref = model.predict(scene["spectra"].reshape(-1, 3).astype(np.float32).astype(np.float64)).reshape(H, W)
    assert result[1].all() and np.array_equal(result[0], ref)
    labelled = training.cluster(clusterer).aggregate_array("cluster").getInfo()
    assert labelled == model.predict(x).tolist()
    with pytest.raises(ee.EEException, match="not trained"):
        image.cluster(ee.Clusterer.wekaKMeans(3)).getInfo()


def test_spatial_filters_equal_shapely(scene) -> None:
    import shapely.geometry

    points = ee.FeatureCollection.randomPoints(region(), 40, 3)
    box = ee.Geometry.Rectangle([500050, 5299900, 500200, 5299990], CRS, False)
    inside = points.filter(ee.Filter.isContained(leftField=".geo", rightValue=box)).size().getInfo()
    near = (
        points.filter(ee.Filter.withinDistance(distance=30, leftField=".geo", rightValue=box))
        .size()
        .getInfo()
    )
    geoms = [f["geometry"] for f in points.getInfo()["features"]]
    assert {g["crs"]["properties"]["name"] for g in geoms} == {CRS}  # points in the region's CRS
    utm = [shapely.geometry.shape(g) for g in geoms]
    ref_box = shapely.box(500050, 5299900, 500200, 5299990)
    assert 0 < inside < near
    assert inside == sum(ref_box.contains(p) for p in utm)
    assert near == sum(ref_box.distance(p) <= 30 for p in utm)
    zones = ee.FeatureCollection([ee.Feature(box, {"name": "box"})])
    holding = zones.filter(
        ee.Filter.contains(leftField=".geo", rightValue=ee.Geometry.Point([500100, 5299950], CRS))
    )
    assert holding.size().getInfo() == 1


def test_multiprobability_images_are_arrays_whose_argmax_is_the_class(scene) -> None:
    image = ee.Image("test/objects").select(["S0", "S1", "S2", "hot"])
    training = image.sample(region=region(), scale=10, numPixels=200, seed=2)
    forest = ee.Classifier.smileRandomForest(10).train(training, "hot", ["S0", "S1", "S2"])
    probs = image.classify(forest.setOutputMode("MULTIPROBABILITY"))
    assert probs.getInfo()["bands"][0]["data_type"]["dimensions"] == 1
    best = pixels(probs.arrayArgmax().arrayGet([0]), GRID)["classification"][0]
    votes = pixels(image.classify(forest.setOutputMode("PROBABILITY")), GRID)["classification"][0]
    total = pixels(probs.arrayReduce(ee.Reducer.sum(), [0]).arrayGet([0]), GRID)["classification"][0]
    assert np.allclose(total, 1.0)
    decided = np.abs(votes - 0.5) > 1e-9  # ties aside, the most probable class is the vote
    assert np.array_equal(best[decided], (votes[decided] > 0.5).astype(float))
