"""The demo world: statistics of its truth, optics, clouds, radar and products."""

from __future__ import annotations

from datetime import UTC, date, datetime

import ee
import numpy as np
import pytest

from gee_fusion.local.world import atmosphere, blocks, phenology, schedule, sentinel1, sentinel2, surface
from gee_fusion.local.world.config import DEFAULT_WORLD, WorldConfig
from gee_fusion.local.world.landcover import (
    ARABLE,
    DENSE,
    FOREST,
    GRASS,
    WATER,
    crop_of,
)
from gee_fusion.local.world.products import WORLDCOVER
from tests.conftest import world_grid

W = DEFAULT_WORLD
KEYS = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")


def grid(col0: int, row0: int, width: int, height: int, scale: float = 10.0) -> dict:
    """A computePixels grid on the world lattice."""
    return world_grid(col0, row0, width, height, scale=scale)


def clearest_summer_dates(n: int, year: int = 2021) -> list[int]:
    """Indices of the ``n`` least cloudy S2 acquisitions of June-August."""
    cand = [
        (atmosphere.cloudy_percentage(W, float(a.millis)), i)
        for i, a in enumerate(schedule.s2_acquisitions())
        if a.when.year == year and a.when.month in (6, 7, 8)
    ]
    return [i for _, i in sorted(cand)[:n]]


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return blocks.landcover_window(W, 0, 0, W.size_px, W.size_px).label


def test_truth_has_every_class_in_plausible_proportions(labels: np.ndarray) -> None:
    share = {c: float((labels == c).mean()) for c in range(1, 15)}
    assert all(share[c] > 0 for c in range(1, 15)), share
    urban = sum(share[c] for c in (1, 2, 3, 4, 5))
    assert 0.12 < urban < 0.45
    assert 0.005 < share[WATER] < 0.08 and 0.1 < share[FOREST] < 0.4 and share[ARABLE] > 0.2
    # the river crosses the world from west to east
    assert (labels[:, 0] == WATER).any() and (labels[:, -1] == WATER).any()


def test_truth_served_through_ee_with_groupings(labels: np.ndarray) -> None:
    out = ee.data.computePixels(
        {
            "expression": ee.Image("local/demo/LABELS"),
            "grid": grid(100, 200, 300, 150),
            "fileFormat": "NUMPY_NDARRAY",
        }
    )
    np.testing.assert_array_equal(out["label"], labels[200:350, 100:400])
    from gee_fusion.classes import GROUPS_6, GROUPS_10, regroup

    np.testing.assert_array_equal(out["label10"], regroup(out["label"], GROUPS_10))
    np.testing.assert_array_equal(out["label6"], regroup(out["label"], GROUPS_6))


def test_determinism_and_seed() -> None:
    a = blocks.landcover_window(WorldConfig(seed=7), 0, 0, 300, 300).label
    b = blocks.landcover_window(WorldConfig(seed=7), 0, 0, 300, 300).label
    c = blocks.landcover_window(WorldConfig(seed=8), 0, 0, 300, 300).label
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.2


def test_tile_consistency_through_ee() -> None:
    img = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2021-04-01", "2021-05-01").first()
    img = img.select(["B4", "B11", "SCL"])
    whole = ee.data.computePixels(
        {"expression": img, "grid": grid(500, 400, 300, 240), "fileFormat": "NUMPY_NDARRAY"}
    )
    part = ee.data.computePixels(
        {"expression": img, "grid": grid(630, 470, 97, 61), "fileFormat": "NUMPY_NDARRAY"}
    )
    for band in ("B4", "B11", "SCL"):
        np.testing.assert_array_equal(part[band], whole[band][70:131, 130:227])
    s1 = ee.ImageCollection("COPERNICUS/S1_GRD").filterDate("2021-04-01", "2021-05-01").first().select("VV")
    a = ee.data.computePixels({"expression": s1, "grid": grid(0, 0, 260, 260), "fileFormat": "NUMPY_NDARRAY"})
    b = ee.data.computePixels(
        {"expression": s1, "grid": grid(250, 250, 10, 10), "fileFormat": "NUMPY_NDARRAY"}
    )
    np.testing.assert_array_equal(b["VV"], a["VV"][250:260, 250:260])


def _clear_pixels(i: int, bx: int, by: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    prod = sentinel2._s2_block(W, i, bx, by)  # every field, the truth included
    clear = (prod["cloud"] == 0) & (prod["shadow"] == 0) & (prod["cirrus"] == 0)
    return prod, clear


@pytest.mark.parametrize(
    ("code", "band", "lo", "hi"),
    [
        (WATER, "B8", 0.0, 0.04),
        (WATER, "B3", 0.02, 0.09),
        (FOREST, "B8", 0.25, 0.45),
        (FOREST, "B4", 0.01, 0.05),
        (DENSE, "B4", 0.07, 0.20),
        (DENSE, "B8", 0.10, 0.30),
        (GRASS, "B8", 0.25, 0.50),
        (GRASS, "B11", 0.15, 0.30),
    ],
)
def test_summer_reflectance_per_class(code: int, band: str, lo: float, hi: float) -> None:
    values = []
    for i in clearest_summer_dates(3):
        for bx in range(5):
            for by in (1, 2, 3):
                prod, clear = _clear_pixels(i, bx, by)
                sel = clear & (blocks.landcover_block_halo(W, bx, by).label[1:-1, 1:-1] == code)
                values.append(prod[band][sel].astype(np.float64) / 1e4)
    v = np.concatenate(values)
    assert v.size > 500
    assert lo <= float(v.mean()) <= hi, (code, band, float(v.mean()))


def _ndvi_by_doy(code: int, doys: list[int], year: int = 2021, crop: int | None = None) -> list[float]:
    lc = blocks.landcover_block_halo(W, 1, 1)
    ix, iy = np.arange(255, 513)[None, :], np.arange(255, 513)[:, None]
    sel = lc.label == code
    if crop is not None:
        sel &= crop_of(lc.parcel, year) == crop
    out = []
    for doy in doys:
        millis = datetime(year, 1, 1, 11, tzinfo=UTC).timestamp() * 1000 + (doy - 1) * 86_400_000
        refl = surface.reflectance(W, lc, phenology.green_cover(W, lc, millis), 0.0, ix, iy)
        ndvi = (refl[7] - refl[3]) / (refl[7] + refl[3])
        out.append(float(ndvi[sel].mean()))
    return out


def test_ndvi_phenology_differs_by_class_and_crop() -> None:
    jan, may, aug = 15, 135, 225
    forest = _ndvi_by_doy(FOREST, [jan, may, aug])
    assert forest[2] > forest[0] + 0.25
    grass = _ndvi_by_doy(GRASS, [jan, may, aug])
    assert grass[1] > grass[0] and min(grass) > 0.45
    wheat = _ndvi_by_doy(ARABLE, [jan, may, aug], crop=0)
    maize = _ndvi_by_doy(ARABLE, [jan, may, aug], crop=3)
    assert wheat[1] > 0.7 and wheat[2] < 0.4 and wheat[1] - wheat[2] > 0.35  # harvested in July
    assert maize[1] < 0.3 and maize[2] > 0.7  # summer crop


def test_monthly_cloud_fraction_is_normandy_like() -> None:
    col = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2016-01-01", "2026-01-01")
    months = col.aggregate_array("system:time_start").getInfo()
    cover = col.aggregate_array("CLOUDY_PIXEL_PERCENTAGE").getInfo()
    by_month: dict[int, list[float]] = {}
    for t, c in zip(months, cover, strict=True):
        by_month.setdefault(datetime.fromtimestamp(t / 1000, tz=UTC).month, []).append(c)
    mean = {m: float(np.mean(v)) for m, v in by_month.items()}
    winter = np.mean([mean[m] for m in (11, 12, 1, 2)])
    summer = np.mean([mean[m] for m in (6, 7, 8)])
    assert winter > 65 and summer < 60 and winter - summer > 15, mean
    clear = np.mean([c < 10 for c in cover])
    overcast = np.mean([c > 90 for c in cover])
    assert 0.1 < clear < 0.4 and overcast > 0.2  # many dates clear or overcast, as in the archive


def test_shadows_are_offset_along_the_sun_direction() -> None:
    checked = 0
    for acq in schedule.s2_acquisitions():
        if acq.when.year != 2021 or not 5 <= acq.when.month <= 8:
            continue
        sky = atmosphere.sky(W, float(acq.millis))
        if not 0.15 < sky.cover < 0.5:
            continue
        fields = atmosphere.cloud_fields(W, sky, 0, 0, 1100, 1100)
        du, dv = sky.shadow_shift  # shadow(p) = cloud(p + (du, dv))
        dc, dr = round(du / 10.0), round(-dv / 10.0)  # in pixels: +col east, +row south
        best, best_score = (0, 0), -1.0
        for r in range(dr - 8, dr + 9, 2):
            for c in range(dc - 8, dc + 9, 2):
                # shadow at pixel p pairs with cloud at p + (r, c)
                shade = fields.shadow[300:800, 300:800]
                cloud = fields.opacity[300 + r : 800 + r, 300 + c : 800 + c]
                score = float((cloud * shade).sum())
                if score > best_score:
                    best, best_score = (r, c), score
        if best_score <= 0:
            continue
        # shadows hidden under their own cloud are removed, which pulls the peak a little
        # further from the cloud: allow 15 % of the displacement
        tol = max(3.0, 0.15 * float(np.hypot(dr, dc)))
        assert abs(best[0] - dr) <= tol and abs(best[1] - dc) <= tol, (acq.when, best, (dr, dc))
        # the sun is in the south (azimuth ~ 150-200): shadows fall to the north of clouds
        assert 100 < sky.azimuth < 220 and dr > 0
        checked += 1
        if checked == 3:
            break
    assert checked == 3


def test_s1_backscatter_per_class_and_speckle_enl() -> None:
    i = next(k for k, a in enumerate(schedule.s1_acquisitions()) if a.when.year == 2021 and a.when.month == 7)
    parts = [
        (sentinel1.s1_block(W, i, bx, by), blocks.landcover_block_halo(W, bx, by))
        for bx in range(5)
        for by in range(5)
    ]
    prod = {k: np.concatenate([p[k].ravel() for p, _ in parts]) for k in ("VV", "VH")}
    label = np.concatenate([lc.label[1:-1, 1:-1].ravel() for _, lc in parts])
    db = 10 * np.log10(prod["VV"])
    med = {
        c: float(np.median(db[label == c]))
        for c in (DENSE, FOREST, GRASS, WATER, ARABLE)
        if (label == c).sum() > 50
    }
    assert med[DENSE] > med[FOREST] > med[GRASS] - 1.0
    if WATER in med:
        assert med[WATER] < -17
    vh = 10 * np.log10(prod["VH"])
    assert float(np.median(vh[label == FOREST])) > float(np.median(vh[(label == ARABLE)])) - 1.0
    # ENL in homogeneous areas: arable/grass parcels (low texture)
    p = np.concatenate([lc.parcel[1:-1, 1:-1].ravel() for _, lc in parts])
    enls = []
    for pid in np.unique(p[(label == ARABLE) | (label == GRASS)])[:40]:
        sel = (p == pid) & ((label == ARABLE) | (label == GRASS))
        if sel.sum() < 400:
            continue
        x = prod["VV"][sel].astype(np.float64)
        enls.append(x.mean() ** 2 / x.var())
    assert len(enls) >= 3
    assert 4.0 <= float(np.median(enls)) <= 5.0, enls


def test_s1_calendar_geometry_and_properties() -> None:
    col = ee.ImageCollection("COPERNICUS/S1_GRD").filter(ee.Filter.eq("instrumentMode", "IW"))
    y2019 = col.filterDate("2019-01-01", "2020-01-01")
    asc = y2019.filter(ee.Filter.eq("orbitProperties_pass", "ASCENDING"))
    assert 58 <= asc.size().getInfo() <= 62  # 6-day revisit with S1A + S1B
    assert (
        29
        <= col.filterDate("2023-01-01", "2024-01-01")
        .filter(ee.Filter.eq("orbitProperties_pass", "DESCENDING"))
        .size()
        .getInfo()
        <= 32
    )
    first = y2019.first()
    props = first.toDictionary(
        [
            "instrumentMode",
            "transmitterReceiverPolarisation",
            "relativeOrbitNumber_start",
            "resolution_meters",
        ]
    ).getInfo()
    assert props["transmitterReceiverPolarisation"] == ["VV", "VH"] and props["resolution_meters"] == 10
    assert first.bandNames().getInfo() == ["VV", "VH", "angle"]
    stats = first.select("angle").reduceRegion(ee.Reducer.minMax(), scale=200).getInfo()
    assert 30 < stats["angle_min"] < stats["angle_max"] < 46


def test_s1_border_noise_near_the_swath_edge() -> None:
    big = WorldConfig(size_km=96.0)
    i = next(
        k
        for k, a in enumerate(schedule.s1_acquisitions())
        if a.passing == "DESCENDING" and a.when.year == 2021
    )
    # the descending near-range edge lies where the incidence reaches 29.1 degrees
    col = sentinel1.near_range_edge_col(big, "DESCENDING") - 300
    src = sentinel1.WorldS1Source(big, i, linear=True, properties={})
    vv, valid = src.read("VV", (col, 4000, 400, 50))
    angle, _ = src.read("angle", (col, 4000, 400, 50))
    inside = valid & (angle > 29.1 + sentinel1.GRADIENT * 2.5)
    border = valid & (angle < 29.1 + sentinel1.GRADIENT * 1.0)
    assert (~valid).any() and inside.any() and border.any()
    assert np.median(vv[border]) < 0.1 * np.median(vv[inside])


def test_s2_products_qa60_gap_and_links() -> None:
    col = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED")
    names = col.first().bandNames().getInfo()
    assert names[:13] == list(surface.BANDS) and {"SCL", "QA60", "MSK_CLDPRB"} <= set(names)
    first = col.first().getInfo()
    props = first["properties"]
    for key in (
        "CLOUDY_PIXEL_PERCENTAGE",
        "MEAN_SOLAR_AZIMUTH_ANGLE",
        "MEAN_SOLAR_ZENITH_ANGLE",
        "MGRS_TILE",
        "SPACECRAFT_NAME",
        "PROCESSING_BASELINE",
        "system:index",
    ):
        assert key in props
    scales = {b["id"]: b["crs_transform"][0] for b in first["bands"]}
    assert scales["B2"] == 10 and scales["B5"] == 20 and scales["B1"] == 60 and scales["QA60"] == 60
    g = grid(0, 0, 60, 60, scale=60.0)
    in_gap = col.filterDate("2023-05-01", "2023-06-01").first().select("QA60").mask()
    outside = col.filterDate("2021-05-01", "2021-06-01").first().select("QA60").mask()
    assert (
        ee.data.computePixels({"expression": in_gap, "grid": g, "fileFormat": "NUMPY_NDARRAY"})["QA60"].max()
        == 0
    )
    assert (
        ee.data.computePixels({"expression": outside, "grid": g, "fileFormat": "NUMPY_NDARRAY"})["QA60"].min()
        == 1
    )
    s2_ids = col.filterDate("2021-01-01", "2021-03-01").aggregate_array("system:index").getInfo()
    for other in ("GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED", "COPERNICUS/S2_CLOUD_PROBABILITY"):
        ids = (
            ee.ImageCollection(other)
            .filterDate("2021-01-01", "2021-03-01")
            .aggregate_array("system:index")
            .getInfo()
        )
        assert ids == s2_ids


def test_cloud_detectors_are_consistent_but_imperfect() -> None:
    i = next(
        k
        for k, a in enumerate(schedule.s2_acquisitions())
        if a.when.year == 2021 and 0.3 < atmosphere.sky(W, float(a.millis)).cover < 0.7
    )
    cloud, shadow, cs, prob = [], [], [], []
    for bx in range(5):
        for by in range(5):
            p = sentinel2._s2_block(W, i, bx, by)
            cloud.append(p["cloud"].ravel())
            shadow.append(p["shadow"].ravel())
            cs.append(p["cs_cdf"].ravel())
            prob.append(p["probability"].ravel())
    c, s, q, pr = (np.concatenate(x) for x in (cloud, shadow, cs, prob))
    thick = c > 0.5
    assert thick.any() and (s > 0.4).any()
    assert (q[thick] < 0.6).mean() > 0.95  # Cloud Score+ flags thick clouds
    assert (q[s > 0.4] < 0.6).mean() > 0.8  # ... and most shadows
    assert (pr[thick] > 50).mean() > 0.9  # s2cloudless sees clouds
    assert (pr[(s > 0.4) & (c == 0)] > 50).mean() < 0.1  # ... but not shadows
    clear = (c == 0) & (s == 0)
    assert 0.0 < (q[clear] < 0.6).mean() < 0.05  # a few false alarms on clear pixels


def test_worldcover_merges_urban_and_blurs_edges(labels: np.ndarray) -> None:
    out = ee.data.computePixels(
        {
            "expression": ee.Image(ee.ImageCollection("ESA/WorldCover/v200").first()),
            "grid": grid(0, 0, 600, 600),
            "fileFormat": "NUMPY_NDARRAY",
        }
    )["Map"]
    assert set(np.unique(out)) <= {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100}
    table = np.zeros(256, dtype=np.uint8)
    for code, wc in WORLDCOVER.items():
        table[code] = wc
    agree = (table[labels[:600, :600]] == out).mean()
    assert 0.75 < agree < 0.97


def test_bad_input_gives_empty_collections_or_masks() -> None:
    assert (
        ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED")
        .filterDate("2015-01-01", "2015-06-23")
        .size()
        .getInfo()
        == 0
    )
    first_s2 = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").first().date().format("YYYY-MM-dd").getInfo()
    assert first_s2 >= str(schedule.S2_FIRST)
    assert (
        ee.ImageCollection("COPERNICUS/S1_GRD").filterDate("2014-01-01", "2014-10-03").size().getInfo() == 0
    )
    far = {
        "dimensions": {"width": 4, "height": 4},
        "affineTransform": dict(zip(KEYS, (10, 0, 100000, 0, -10, 5000000), strict=True)),
        "crsCode": W.crs,
    }
    img = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").first().select("B4")
    assert (
        ee.data.computePixels({"expression": img.mask(), "grid": far, "fileFormat": "NUMPY_NDARRAY"})[
            "B4"
        ].max()
        == 0
    )
    with pytest.raises(ee.EEException, match="Pattern 'B13' did not match any bands"):
        img.select("B13").getInfo()
    assert schedule.s2_acquisitions()[0].when.date() >= date(2015, 6, 23)


def test_connect_with_a_configured_world() -> None:
    import gee_fusion

    try:
        gee_fusion.connect("local", world=WorldConfig(seed=3, size_km=3.0))
        info = ee.Image("local/demo/LABELS").getInfo()["bands"][0]
        assert info["dimensions"] == [300, 300]
    finally:
        gee_fusion.connect("local", world=DEFAULT_WORLD)
    assert ee.Image("local/demo/LABELS").getInfo()["bands"][0]["dimensions"] == [1200, 1200]


def test_srtm_dem_like_the_real_asset_with_a_valley_and_plateau(labels: np.ndarray) -> None:
    from gee_fusion.local.world import relief

    info = ee.Image("USGS/SRTMGL1_003").getInfo()["bands"]
    assert [b["id"] for b in info] == ["elevation"] and info[0]["crs"] == "EPSG:4326"
    assert info[0]["data_type"]["min"] == -32768  # int16
    assert info[0]["crs_transform"][0] == pytest.approx(1 / 3600)
    dem = ee.data.computePixels(
        {
            "expression": ee.Image("USGS/SRTMGL1_003").resample("bilinear"),
            "grid": grid(0, 0, 1200, 1200),
            "fileFormat": "NUMPY_NDARRAY",
        }
    )["elevation"].astype(np.float64)
    assert 4 <= np.percentile(dem[labels == WATER], 50) <= 10  # the river runs on the valley floor
    assert 115 <= np.percentile(dem, 90) <= 160  # the chalk plateau
    from gee_fusion.local.world.landcover import coords

    truth = relief.elevation(W, *coords(W, 0, 0, 1200, 1200))
    assert np.abs(dem - truth).mean() < 1.0  # 30 m int16 DEM vs the world's relief
    gy, gx = np.gradient(truth, 10.0)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    assert (slope > 30).mean() > 0.002 and slope.max() > 45  # steep valley sides and chalk cliffs
    assert np.median(slope) < 2  # mostly flat: valley floor and plateau
