"""Joins, Image.linkCollection, distance transforms and terrain, against plain Python/numpy/scipy."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest
from scipy import ndimage

from gee_fusion.ids import CLOUD_SCORE_PLUS as CS_PLUS
from gee_fusion.ids import SLOVENIA_LULC
from gee_fusion.local.catalog import CATALOG, register_numpy_image
from gee_fusion.local.samples import slovenia_grid
from gee_fusion.local.world.config import DEFAULT_WORLD
from tests.conftest import pixels

KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
CRS = "EPSG:32631"
X0, Y0, PX = 360000.0, 5480000.0, 10.0


def grid(
    col0: int,
    row0: int,
    width: int,
    height: int,
    *,
    crs: str = CRS,
    origin: tuple[float, float] = (X0, Y0),
    px: float = PX,
) -> dict[str, Any]:
    """A computePixels grid on a lattice of ``px`` pixels whose (0, 0) corner is ``origin``."""
    t = (px, 0.0, origin[0] + col0 * px, 0.0, -px, origin[1] - row0 * px)
    return {
        "dimensions": {"width": width, "height": height},
        "affineTransform": dict(zip(KEYS, t, strict=True)),
        "crsCode": crs,
    }


def compute(image: ee.Image, g: dict[str, Any]) -> Any:
    return ee.data.computePixels({"expression": image, "fileFormat": "NUMPY_NDARRAY", "grid": g})


# -- joins ----------------------------------------------------------------------------------------

RNG = np.random.default_rng(11)
PRIMARY = [
    {"k": int(RNG.integers(0, 4)), "t": float(RNG.integers(0, 100)), "name": f"p{i}"} for i in range(9)
]
SECONDARY = [
    {
        "k": int(RNG.integers(0, 4)),
        "t": float(RNG.integers(0, 100)),
        "rank": int(RNG.integers(0, 5)),
        "name": f"s{j}",
    }
    for j in range(12)
]
MAX_DT = 30.0


def fc(rows: list[dict[str, Any]]) -> ee.FeatureCollection:
    return ee.FeatureCollection([ee.Feature(None, r) for r in rows])


def matches(p: dict[str, Any]) -> list[tuple[dict[str, Any], float]]:
    """Reference: secondaries with the same k and |dt| <= MAX_DT, with the measure |dt|."""
    return [
        (s, abs(p["t"] - s["t"])) for s in SECONDARY if s["k"] == p["k"] and abs(p["t"] - s["t"]) <= MAX_DT
    ]


def sort_on(
    found: list[tuple[dict[str, Any], float]], key: str, ascending: bool
) -> list[tuple[dict[str, Any], float]]:
    return sorted(found, key=lambda m: m[0][key], reverse=not ascending)


def condition() -> ee.Filter:
    """The reference condition: same k and |dt| <= MAX_DT (built after the engine connects)."""
    return ee.Filter.And(
        ee.Filter.equals(leftField="k", rightField="k"),
        ee.Filter.maxDifference(MAX_DT, leftField="t", rightField="t"),
    )


def props(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [f["properties"] for f in info["features"]]


def test_reference_data_has_matches_and_misses() -> None:
    counts = [len(matches(p)) for p in PRIMARY]
    assert 0 in counts and max(counts) >= 2


def test_simple_and_inverted() -> None:
    simple = ee.Join.simple().apply(fc(PRIMARY), fc(SECONDARY), condition()).aggregate_array("name").getInfo()
    inverted = (
        ee.Join.inverted().apply(fc(PRIMARY), fc(SECONDARY), condition()).aggregate_array("name").getInfo()
    )
    assert simple == [p["name"] for p in PRIMARY if matches(p)]
    assert inverted == [p["name"] for p in PRIMARY if not matches(p)]


@pytest.mark.parametrize("ascending", [True, False])
def test_save_first_with_ordering_and_measure(ascending: bool) -> None:
    join = ee.Join.saveFirst("best", ordering="t", ascending=ascending, measureKey="dt")
    got = props(join.apply(fc(PRIMARY), fc(SECONDARY), condition()).getInfo())
    want = [p for p in PRIMARY if matches(p)]
    assert [g["name"] for g in got] == [p["name"] for p in want]
    for g, p in zip(got, want, strict=True):
        first, dt = sort_on(matches(p), "t", ascending)[0]
        assert g["best"]["properties"]["name"] == first["name"]
        assert g["best"]["properties"]["dt"] == pytest.approx(dt)
        assert "dt" not in g  # the measure is saved on the match


def test_save_first_outer_keeps_unmatched_without_property() -> None:
    got = props(
        ee.Join.saveFirst("best", outer=True).apply(fc(PRIMARY), fc(SECONDARY), condition()).getInfo()
    )
    assert [g["name"] for g in got] == [p["name"] for p in PRIMARY]
    for g, p in zip(got, PRIMARY, strict=True):
        if matches(p):
            assert (
                g["best"]["properties"]["name"] == matches(p)[0][0]["name"]
            )  # no ordering: collection order
        else:
            assert "best" not in g


@pytest.mark.parametrize("outer", [False, True])
def test_save_all_orders_matches_and_stores_measures(outer: bool) -> None:
    join = ee.Join.saveAll("all", ordering="rank", ascending=False, measureKey="dt", outer=outer)
    got = props(join.apply(fc(PRIMARY), fc(SECONDARY), condition()).getInfo())
    want = [p for p in PRIMARY if outer or matches(p)]
    assert [g["name"] for g in got] == [p["name"] for p in want]
    for g, p in zip(got, want, strict=True):
        ref = sort_on(matches(p), "rank", ascending=False)  # stable, as the local join
        assert [m["properties"]["name"] for m in g["all"]] == [s["name"] for s, _ in ref]
        assert [m["properties"]["dt"] for m in g["all"]] == pytest.approx([d for _, d in ref])


def test_save_best_takes_the_smallest_measure() -> None:
    got = props(ee.Join.saveBest("best", "dt").apply(fc(PRIMARY), fc(SECONDARY), condition()).getInfo())
    want = [p for p in PRIMARY if matches(p)]
    for g, p in zip(got, want, strict=True):
        best, dt = min(matches(p), key=lambda m: m[1])
        assert g["best"]["properties"]["dt"] == pytest.approx(dt)
        assert g["best"]["properties"]["name"] == best["name"]


def test_save_best_without_a_measure_is_an_error() -> None:
    with pytest.raises(ee.EEException, match="measure"):
        ee.Join.saveBest("b", "d").apply(
            fc(PRIMARY), fc(SECONDARY), ee.Filter.equals(leftField="k", rightField="k")
        ).getInfo()


def test_inner_join_pairs_and_measure() -> None:
    join = ee.Join.inner("a", "b", measureKey="dt")
    got = props(join.apply(fc(PRIMARY), fc(SECONDARY), condition()).getInfo())
    want = [(p, s, d) for p in PRIMARY for s, d in matches(p)]
    assert [(g["a"]["properties"]["name"], g["b"]["properties"]["name"]) for g in got] == [
        (p["name"], s["name"]) for p, s, _ in want
    ]
    assert [g["dt"] for g in got] == pytest.approx([d for _, _, d in want])
    default = ee.Join.inner().apply(fc(PRIMARY), fc(SECONDARY), condition()).first().propertyNames().getInfo()
    assert {"primary", "secondary"} <= set(default)


def test_conditions_or_not_and_constants() -> None:
    eq = ee.Filter.equals(leftField="k", rightField="k")
    near = ee.Filter.maxDifference(5, leftField="t", rightField="t")
    cond = ee.Filter.Or(ee.Filter.Not(eq), near)
    got = ee.Join.simple().apply(fc(PRIMARY), fc(SECONDARY), cond).aggregate_array("name").getInfo()
    want = [
        p["name"] for p in PRIMARY if any(s["k"] != p["k"] or abs(s["t"] - p["t"]) <= 5 for s in SECONDARY)
    ]
    assert got == want
    # leftField against a constant: only the primary is read
    cond2 = ee.Filter.And(eq, ee.Filter.lessThan(leftField="t", rightValue=50))
    got2 = ee.Join.simple().apply(fc(PRIMARY), fc(SECONDARY), cond2).aggregate_array("name").getInfo()
    assert got2 == [p["name"] for p in PRIMARY if p["t"] < 50 and any(s["k"] == p["k"] for s in SECONDARY)]


def test_max_difference_as_a_unary_filter() -> None:
    got = (
        fc(PRIMARY).filter(ee.Filter.maxDifference(10, leftField="t", rightValue=50)).aggregate_array("name")
    )
    assert got.getInfo() == [p["name"] for p in PRIMARY if abs(p["t"] - 50) <= 10]


def test_unsupported_join_condition_names_the_filter() -> None:
    with pytest.raises(ee.EEException, match="calendarRange"):
        ee.Join.simple().apply(fc(PRIMARY), fc(SECONDARY), ee.Filter.calendarRange(1, 2, "month")).getInfo()


def test_image_join_on_time_keeps_images_and_dates(syn: Any) -> None:
    col = ee.ImageCollection("test/syn")
    cond = ee.Filter.maxDifference(
        16 * 86400000, leftField="system:time_start", rightField="system:time_start"
    )
    joined = ee.ImageCollection(
        ee.Join.saveAll("near", ordering="system:time_start", measureKey="dt").apply(col, col, cond)
    )
    sizes = (
        joined.map(lambda img: img.set("n", ee.List(img.get("near")).size())).aggregate_array("n").getInfo()
    )
    times = [np.datetime64(t, "ms").astype(np.int64) for t in syn.times]
    assert sizes == [sum(abs(int(a) - int(b)) <= 16 * 86400000 for b in times) for a in times]
    first = ee.Image(ee.List(joined.first().get("near")).get(0))
    assert first.get("dt").getInfo() == 0
    assert first.bandNames().getInfo() == ["B1", "B2", "QA"]


# -- the demo world: S2 SR joined with Cloud Score+ ---------------------------------------------

S2 = "COPERNICUS/S2_SR_HARMONIZED"
MONTH = ("2021-05-01", "2021-06-01")


def world_grid(col0: int, row0: int, width: int, height: int) -> dict[str, Any]:
    return grid(col0, row0, width, height, crs=DEFAULT_WORLD.crs, origin=DEFAULT_WORLD.origin)


def test_s2_joined_with_cloud_score_plus_by_index() -> None:
    s2 = ee.ImageCollection(S2).filterDate(*MONTH)
    cs = ee.ImageCollection(CS_PLUS).filterDate(*MONTH)
    cond = ee.Filter.equals(leftField="system:index", rightField="system:index")
    joined = ee.ImageCollection(ee.Join.saveFirst("cs").apply(s2, cs, cond))
    assert joined.size().getInfo() == s2.size().getInfo() > 1
    assert joined.aggregate_array("system:index").getInfo() == s2.aggregate_array("system:index").getInfo()

    def mask_clouds(img: ee.Image) -> ee.Image:
        return img.updateMask(ee.Image(img.get("cs")).select("cs_cdf").gte(0.6))

    masked = joined.map(mask_clouds)
    g = world_grid(300, 200, 40, 30)
    for i in (0, 1):
        got = pixels(ee.Image(masked.toList(2).get(i)).select("B4"), g)["B4"]
        raw = pixels(ee.Image(s2.toList(2).get(i)).select("B4"), g)["B4"]
        cdf = pixels(ee.Image(cs.toList(2).get(i)).select("cs_cdf"), g)["cs_cdf"]
        want = raw[1] & cdf[1] & (cdf[0] >= 0.6)
        np.testing.assert_array_equal(got[1], want)
        np.testing.assert_array_equal(got[0][want], raw[0][want])


def test_link_collection_adds_cloud_score_and_masks_when_unmatched() -> None:
    s2 = ee.ImageCollection(S2).filterDate(*MONTH)
    cs = ee.ImageCollection(CS_PLUS).filterDate(*MONTH)
    img = ee.Image(s2.toList(2).get(1))
    linked = img.linkCollection(cs, ["cs_cdf"], ["system:time_start", "system:footprint"])
    names = linked.bandNames().getInfo()
    assert names[-1] == "cs_cdf" and names[:-1] == img.bandNames().getInfo()
    g = world_grid(100, 400, 32, 24)
    got = pixels(linked.select("cs_cdf"), g)["cs_cdf"]
    want = pixels(ee.Image(cs.toList(2).get(1)).select("cs_cdf"), g)["cs_cdf"]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0][got[1]], want[0][want[1]])
    assert got[1].any()
    # overwrite in place, and a property-only link
    again = linked.linkCollection(cs, "cs_cdf")
    assert again.bandNames().getInfo() == names
    # no match: the linked band is fully masked and the linked property left out
    lost = img.set("system:index", "no-such-index").linkCollection(cs, ["cs", "cs_cdf"], ["system:time_end"])
    assert lost.bandNames().getInfo()[-2:] == ["cs", "cs_cdf"]
    out = pixels(lost.select(["cs", "cs_cdf"]), g)
    assert not out["cs"][1].any() and not out["cs_cdf"][1].any()
    assert img.get("system:time_end").getInfo() is not None
    assert lost.get("system:time_end").getInfo() is None  # an updated property becomes null
    # only what is named is linked
    assert img.linkCollection(cs).bandNames().getInfo() == img.bandNames().getInfo()
    only_props = img.linkCollection(cs, None, ["system:time_start"])
    assert only_props.bandNames().getInfo() == img.bandNames().getInfo()


def test_link_collection_on_synthetic_images(syn: Any) -> None:
    col = ee.ImageCollection("test/syn")
    other = col.map(
        lambda img: (
            img.select(["B1"], ["B1x"])
            .multiply(2)  # arithmetic drops properties
            .set({"extra": img.get("CLOUDY"), "ORBIT": img.get("ORBIT")})
        )
    )
    target = col.toList(6).get(3)
    linked = ee.Image(target).linkCollection(other, ["B1x"], ["extra"])
    assert linked.get("extra").getInfo() == syn.cloud[3]
    out = pixels(linked.select(["B1", "B1x"]), syn.grid)
    np.testing.assert_allclose(out["B1x"][0][out["B1x"][1]], 2 * syn.b1[3][syn.mask[3]], rtol=1e-6)
    np.testing.assert_array_equal(out["B1x"][1], syn.mask[3])
    # matching on another property
    by_orbit = ee.Image(target).linkCollection(other, ["B1x"], None, "ORBIT")
    first_same_orbit = next(i for i in range(6) if i % 2 == 3 % 2)
    out2 = pixels(by_orbit.select("B1x"), syn.grid)["B1x"]
    np.testing.assert_array_equal(out2[1], syn.mask[first_same_orbit])
    # no ORBIT on the computed images: nothing matches, the band is fully masked
    bare = col.map(lambda img: img.select(["B1"], ["B1x"]).multiply(2))
    out3 = pixels(ee.Image(target).linkCollection(bare, ["B1x"], None, "ORBIT").select("B1x"), syn.grid)[
        "B1x"
    ]
    assert not out3[1].any()


# -- distance transforms --------------------------------------------------------------------------

H, W = 60, 70


@pytest.fixture(scope="module")
def binary(local_engine: Any) -> Iterator[dict[str, np.ndarray]]:
    """A sparse seeded binary image with masked pixels, and a label band, as ``test/dist``."""
    rng = np.random.default_rng(5)
    src = rng.random((H, W)) > 0.985
    mask = rng.random((H, W)) > 0.1
    labels = rng.integers(1, 200, (H, W)).astype(np.int16) * src
    height = rng.uniform(500, 3000, (H, W)).astype(np.float32)
    register_numpy_image(
        "test/dist",
        {"src": src.astype(np.uint8), "label": labels.astype(np.int16), "height": height},
        crs=CRS,
        transform=(PX, 0.0, X0, 0.0, -PX, Y0),
        masks={"src": mask, "label": mask},
    )
    yield {"src": src, "mask": mask, "labels": labels, "height": height}
    CATALOG.unregister("test/dist")


def scipy_reference(feature: np.ndarray, metric: str) -> np.ndarray:
    background = ~feature
    if metric == "squared_euclidean":
        return ndimage.distance_transform_edt(background) ** 2
    kind = "taxicab" if metric == "manhattan" else "chessboard"
    return ndimage.distance_transform_cdt(background, metric=kind).astype(np.float64)


@pytest.mark.parametrize("metric", ["squared_euclidean", "manhattan", "chebyshev"])
def test_fast_distance_transform_matches_scipy(binary: dict[str, np.ndarray], metric: str) -> None:
    feature = binary["src"] & binary["mask"]  # masked pixels count as zero
    ref = scipy_reference(feature, metric)
    img = ee.Image("test/dist").select("src")
    # an inner window: features outside it still count (read on the padded grid)
    got = compute(img.fastDistanceTransform(256, "pixels", metric), grid(10, 8, 45, 40))["src"]
    np.testing.assert_allclose(got, ref[8:48, 10:55], atol=1e-4)
    # a small neighbourhood masks pixels without a feature in reach
    out = pixels(img.fastDistanceTransform(4, "pixels", metric), grid(10, 8, 45, 40))["src"]
    limit = 16 if metric == "squared_euclidean" else 4
    np.testing.assert_array_equal(out[1], ref[8:48, 10:55] <= limit)
    np.testing.assert_allclose(out[0][out[1]], ref[8:48, 10:55][out[1]], atol=1e-4)


def test_fast_distance_transform_band_names_and_errors(binary: dict[str, np.ndarray]) -> None:
    img = ee.Image("test/dist").select(["src", "label"])
    assert img.fastDistanceTransform().bandNames().getInfo() == ["src", "label"]
    with pytest.raises(ee.EEException, match="metric"):
        img.fastDistanceTransform(10, "pixels", "cosine").bandNames().getInfo()
    with pytest.raises(ee.EEException, match="units"):
        img.fastDistanceTransform(10, "meters").bandNames().getInfo()


def brute_directional(
    source: np.ndarray, values: np.ndarray, angle: float, reach: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: walk the digital ray (one pixel a step on the major axis) towards ``angle``."""
    h, w = source.shape
    dc, dr = math.cos(math.radians(angle)), -math.sin(math.radians(angle))  # north-up grid
    step = 1.0 / max(abs(dc), abs(dr))
    dist = np.zeros((h, w), np.float32)
    found = np.zeros((h, w), bool)
    val = np.zeros((h, w), values.dtype)
    for r in range(h):
        for c in range(w):
            k = 0
            while k * step <= reach + 1e-9:
                cc, rr = math.floor(c + k * step * dc + 0.5), math.floor(r + k * step * dr + 0.5)
                if 0 <= rr < h and 0 <= cc < w and source[rr, cc]:
                    dist[r, c], found[r, c], val[r, c] = k * step, True, values[rr, cc]
                    break
                k += 1
    return dist, found, val


@pytest.mark.parametrize("angle", [0.0, 90.0, 135.0, 200.0, -60.0, 23.5])
def test_directional_distance_transform_matches_brute_force(
    binary: dict[str, np.ndarray], angle: float
) -> None:
    feature = binary["src"] & binary["mask"]
    reach = 7.0
    ref_d, ref_found, ref_label = brute_directional(feature, binary["labels"], angle, reach)
    img = ee.Image("test/dist").select("label")
    out = pixels(img.directionalDistanceTransform(angle, reach), grid(0, 0, W, H))
    assert list(out) == ["distance", "label"]
    inner = (slice(0, H), slice(0, W))  # outside the registered array: masked, no source, in both
    np.testing.assert_array_equal(out["distance"][1][inner], ref_found[inner])
    np.testing.assert_allclose(
        out["distance"][0][inner][ref_found[inner]], ref_d[inner][ref_found[inner]], rtol=1e-6
    )
    np.testing.assert_array_equal(
        out["label"][0][inner][ref_found[inner]], ref_label[inner][ref_found[inner]]
    )
    assert ref_found[inner].any() and not ref_found[inner].all()


def test_directional_distance_direction_convention(local_engine: Any) -> None:
    """angle is counter-clockwise from east: a pixel searches towards ``angle`` for sources."""
    one = np.zeros((21, 21), np.uint8)
    one[10, 10] = 1
    register_numpy_image("test/one", {"b": one}, crs=CRS, transform=(PX, 0.0, X0, 0.0, -PX, Y0))
    try:
        g = grid(0, 0, 21, 21)
        east = pixels(ee.Image("test/one").directionalDistanceTransform(0, 5).select("distance"), g)[
            "distance"
        ]
        assert east[1].sum() == 6 and east[1][10, 5:11].all()  # pixels west of the source look east
        np.testing.assert_array_equal(east[0][10, 5:11], [5, 4, 3, 2, 1, 0])
        north = pixels(ee.Image("test/one").directionalDistanceTransform(90, 3).select("distance"), g)[
            "distance"
        ]
        assert north[1][10:14, 10].all() and north[1].sum() == 4  # pixels south look north
        diag = pixels(ee.Image("test/one").directionalDistanceTransform(45, 3).select("distance"), g)[
            "distance"
        ]
        assert diag[1].sum() == 3 and diag[1][11, 9] and diag[1][12, 8]  # south-west looks north-east
        assert diag[0][12, 8] == pytest.approx(2 * math.sqrt(2), rel=1e-6)
    finally:
        CATALOG.unregister("test/one")


def test_directional_distance_label_band_and_shadow_recipe(binary: dict[str, np.ndarray]) -> None:
    img = ee.Image("test/dist").select(["src", "height"])
    ddt = img.directionalDistanceTransform(30, 6, "src")
    assert ddt.bandNames().getInfo() == ["distance", "src", "height"]
    out = pixels(ddt, grid(0, 0, W, H))
    feature = binary["src"] & binary["mask"]
    _, found, height = brute_directional(feature, binary["height"], 30, 6)
    inner = (slice(0, H), slice(0, W))
    np.testing.assert_array_equal(out["height"][0][inner][found[inner]], height[inner][found[inner]])
    with pytest.raises(ee.EEException, match="one band"):
        img.directionalDistanceTransform(30, 6).bandNames().getInfo()
    # s2cloudless: sun in the south-east (azimuth 135) -> shadows to the north-west of clouds
    clouds = ee.Image("test/dist").select("src")
    proj = (
        clouds.directionalDistanceTransform(ee.Number(90).subtract(135), 3)
        .reproject(crs=CRS, scale=10)
        .select("distance")
        .mask()
    )
    flagged = pixels(proj, grid(0, 0, W, H))["distance"][0].astype(bool)
    _, want, _ = brute_directional(feature, feature, -45, 3)
    np.testing.assert_array_equal(flagged[inner], want[inner])


def test_distance_transforms_are_tile_consistent(binary: dict[str, np.ndarray]) -> None:
    img = ee.Image("test/dist")
    exprs = [
        img.select("src").fastDistanceTransform(20),
        img.select("src").fastDistanceTransform(20, "pixels", "manhattan"),
        img.select("label").directionalDistanceTransform(160, 9),
    ]
    for expr in exprs:
        whole = pixels(expr, grid(0, 0, W, H))
        part = pixels(expr, grid(23, 17, 19, 26))
        for name, (vals, mask) in whole.items():
            np.testing.assert_array_equal(part[name][1], mask[17:43, 23:42])
            np.testing.assert_array_equal(part[name][0][part[name][1]], vals[17:43, 23:42][part[name][1]])


# -- terrain ---------------------------------------------------------------------------------------


def four_neighbour_reference(z: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect from 4-connected central differences (north-up grid), inner pixels."""
    z = z.astype(np.float64)
    gx = (z[1:-1, 2:] - z[1:-1, :-2]) / (2 * dx)
    gy = -(z[2:, 1:-1] - z[:-2, 1:-1]) / (2 * dy)  # rows grow southwards
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.degrees(np.arctan2(-gx + 0.0, -gy + 0.0)) % 360
    return slope, aspect


def hillshade_reference(
    slope: np.ndarray, aspect: np.ndarray, azimuth: float, elevation: float
) -> np.ndarray:
    zen = math.radians(90 - elevation)
    cos_i = math.cos(zen) * np.cos(np.radians(slope)) + math.sin(zen) * np.sin(np.radians(slope)) * np.cos(
        np.radians(azimuth - aspect)
    )
    return np.trunc(np.clip(255 * cos_i, 0, 255))


@pytest.fixture(scope="module")
def plane(local_engine: Any) -> Iterator[tuple[float, float]]:
    """A tilted plane z = 100 + gx * x + gy * y (metres) on a 10 m grid, as ``test/plane``."""
    gx, gy = 0.3, -0.4  # rises to the east and the south: downhill faces ~323 degrees (NNW)
    rows, cols = np.mgrid[0:40, 0:50]
    x, y = (cols + 0.5) * PX, -(rows + 0.5) * PX
    z = (100 + gx * x + gy * y + 500).astype(np.float32)
    register_numpy_image(
        "test/plane",
        {"elevation": z, "other": np.ones_like(z)},
        crs=CRS,
        transform=(PX, 0.0, X0, 0.0, -PX, Y0),
        properties={"NAME": "plane"},
    )
    yield gx, gy
    CATALOG.unregister("test/plane")


def test_slope_aspect_hillshade_of_a_tilted_plane(plane: tuple[float, float]) -> None:
    gx, gy = plane
    dem = ee.Image("test/plane")
    out = pixels(ee.Terrain.products(dem), grid(0, 0, 50, 40))
    assert list(out) == ["elevation", "other", "slope", "aspect", "hillshade"]
    assert ee.Terrain.products(dem).get("NAME").getInfo() == "plane"
    slope, smask = out["slope"]
    inner = (slice(1, -1), slice(1, -1))
    assert smask[inner].all() and not smask[0].any() and not smask[:, -1].any()  # edges: missing neighbours
    want_slope = math.degrees(math.atan(math.hypot(gx, gy)))
    np.testing.assert_allclose(slope[inner], want_slope, atol=1e-3)
    want_aspect = math.degrees(math.atan2(-gx, -gy)) % 360  # downslope (west, north) -> north-west
    assert 270 < want_aspect < 360
    np.testing.assert_allclose(out["aspect"][0][inner], want_aspect, atol=1e-3)
    shade = hillshade_reference(np.array(want_slope), np.array(want_aspect), 270, 45)
    assert out["hillshade"][0].dtype == np.uint8
    np.testing.assert_array_equal(out["hillshade"][0][inner], shade)
    # the single-output algorithms and another light
    assert ee.Terrain.slope(dem.select("elevation")).bandNames().getInfo() == ["slope"]
    np.testing.assert_allclose(
        pixels(ee.Terrain.aspect(dem), grid(0, 0, 50, 40))["aspect"][0][inner], want_aspect, atol=1e-3
    )
    lit = pixels(ee.Terrain.hillshade(dem, 315, 30), grid(0, 0, 50, 40))["hillshade"][0][inner]
    np.testing.assert_array_equal(
        lit, hillshade_reference(np.array(want_slope), np.array(want_aspect), 315, 30)
    )
    # a coarser request grid: same plane, same slope (pixel size taken from the grid)
    coarse = pixels(ee.Terrain.slope(dem), grid(0, 0, 10, 8, px=50.0))["slope"]
    np.testing.assert_allclose(coarse[0][coarse[1]], want_slope, atol=1e-3)
    with pytest.raises(ee.EEException, match="elevation"):
        ee.Terrain.slope(dem.select(["other", "elevation"], ["a", "b"])).bandNames().getInfo()


def test_terrain_on_a_geographic_grid(local_engine: Any) -> None:
    """Degrees are converted to metres: 10 m rise per 0.001 degree of latitude southwards."""
    rows = np.repeat(np.arange(30, dtype=np.float32)[:, None], 20, axis=1)
    register_numpy_image(
        "test/geo_dem",
        {"elevation": 1000 + 10 * rows},
        crs="EPSG:4326",
        transform=(0.001, 0.0, 14.0, 0.0, -0.001, 46.0),
    )
    try:
        g = grid(0, 0, 20, 30, crs="EPSG:4326", origin=(14.0, 46.0), px=0.001)
        out = pixels(ee.Terrain.products(ee.Image("test/geo_dem")), g)
        m = out["slope"][1]
        assert m[1:-1, 1:-1].all()
        want = math.degrees(math.atan(10 / (0.001 * 111319.49079327357)))
        np.testing.assert_allclose(out["slope"][0][m], want, rtol=1e-5)
        np.testing.assert_allclose(out["aspect"][0][m], 0.0, atol=1e-6)  # falls northwards: faces north
    finally:
        CATALOG.unregister("test/geo_dem")


def test_terrain_on_the_slovenia_dem(real_dir: Path) -> None:
    patch = real_dir / "eolearn_slovenia" / "TestEOPatch"
    crs, transform, (h, w) = slovenia_grid(patch)
    z = np.load(patch / "data_timeless" / "DEM.npy")[..., 0]
    g = {
        "dimensions": {"width": w, "height": h},
        "crsCode": crs,
        "affineTransform": dict(
            zip(KEYS, (transform.a, 0.0, transform.c, 0.0, transform.e, transform.f), strict=True)
        ),
    }
    dem = ee.Image(SLOVENIA_LULC).select("DEM")
    out = pixels(ee.Terrain.products(dem), g)
    slope, aspect = four_neighbour_reference(z, transform.a, -transform.e)
    mask = out["slope"][1]
    assert mask[1:-1, 1:-1].all() and not mask[0].any() and not mask[-1].any()
    np.testing.assert_allclose(out["slope"][0][1:-1, 1:-1], slope, atol=1e-3)
    sloped = slope > 0.5  # aspect is ill-conditioned on flat ground
    np.testing.assert_allclose(out["aspect"][0][1:-1, 1:-1][sloped], aspect[sloped], atol=1e-2)
    shade = hillshade_reference(slope, aspect, 270, 45)
    assert np.abs(out["hillshade"][0][1:-1, 1:-1].astype(int) - shade).max() <= 1
    assert 0 < float(np.median(slope)) < 45


def test_terrain_is_tile_consistent(plane: tuple[float, float], real_dir: Path) -> None:
    for image, g0, (c, r, pw, ph) in (
        (ee.Image("test/plane"), grid(0, 0, 50, 40), (13, 7, 21, 17)),
        (ee.Image(SLOVENIA_LULC).select("DEM"), None, (31, 44, 27, 19)),
    ):
        if g0 is None:
            crs, t, (h, w) = slovenia_grid(real_dir / "eolearn_slovenia" / "TestEOPatch")
            g0 = {
                "dimensions": {"width": w, "height": h},
                "crsCode": crs,
                "affineTransform": dict(zip(KEYS, (t.a, 0.0, t.c, 0.0, t.e, t.f), strict=True)),
            }
        tr = dict(g0["affineTransform"])
        sub = {
            "dimensions": {"width": pw, "height": ph},
            "crsCode": g0["crsCode"],
            "affineTransform": {
                **tr,
                "translateX": tr["translateX"] + c * tr["scaleX"],
                "translateY": tr["translateY"] + r * tr["scaleY"],
            },
        }
        products = ee.Terrain.products(image)
        whole, part = pixels(products, g0), pixels(products, sub)
        for name in ("slope", "aspect", "hillshade"):
            np.testing.assert_array_equal(part[name][1], whole[name][1][r : r + ph, c : c + pw])
            np.testing.assert_array_equal(part[name][0], whole[name][0][r : r + ph, c : c + pw])
