"""Collection algorithms of the local engine against numpy / pure-Python references.

Every test runs real earthengine-api code on the seeded synthetic stack ``test/syn`` (see
``conftest.py``) and compares with a reference computed independently from the fixture's
numpy arrays and property lists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ee
import numpy as np
import pytest
from pyproj import Transformer

from tests.conftest import SYN_CRS, SYN_SHAPE, SYN_TRANSFORM, Synthetic, pixels

BANDS = ("B1", "B2", "QA")


# -- references -------------------------------------------------------------------------------
def _index(when: str) -> str:
    return datetime.fromisoformat(when).strftime("%Y%m%dT%H%M%S")


def _millis(when: str) -> int:
    return int(datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp() * 1000)


def _records(syn: Synthetic) -> list[dict[str, Any]]:
    """The per-image properties of ``test/syn``, as registered by the fixture."""
    return [
        {"system:index": _index(t), "system:time_start": _millis(t), "CLOUDY": c,
         "ORBIT": i % 2, "TAGS": ["a", "b"] if i % 2 else ["c"]}
        for i, (t, c) in enumerate(zip(syn.times, syn.cloud, strict=True))
    ]  # fmt: skip


def _stack(syn: Synthetic, band: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, validity) of one band for all dates, as (n, h, w) arrays."""
    values = {"B1": syn.b1, "B2": syn.b2, "QA": syn.qa}[band]
    valid = syn.mask if band != "QA" else np.ones_like(syn.mask)
    return values, valid


def _per_pixel(values: np.ndarray, valid: np.ndarray, fn: Callable[[np.ndarray], float],
               empty: float | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Apply ``fn`` to the valid values of every pixel (a plain loop: independent of the engine)."""
    _, h, w = values.shape
    out = np.zeros((h, w), dtype=np.float64)
    has = np.zeros((h, w), dtype=bool)
    for r in range(h):
        for c in range(w):
            vals = values[:, r, c][valid[:, r, c]].astype(np.float64)
            if len(vals):
                out[r, c], has[r, c] = fn(vals), True
            elif empty is not None:
                out[r, c], has[r, c] = empty, True
    return out, has


def _assert_band(got: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray],
                 rtol: float = 1e-6, atol: float = 1e-6) -> None:  # fmt: skip
    (values, mask), (ref_values, ref_mask) = got, ref
    np.testing.assert_array_equal(mask, ref_mask)
    np.testing.assert_allclose(values[mask].astype(np.float64), ref_values[mask], rtol=rtol, atol=atol)


def _props(col: ee.ImageCollection, name: str) -> list[Any]:
    return col.aggregate_array(name).getInfo()


@pytest.fixture
def col(syn: Synthetic) -> ee.ImageCollection:
    return ee.ImageCollection("test/syn")


# -- filters ------------------------------------------------------------------------------------
def test_size_and_indices(syn: Synthetic, col: ee.ImageCollection) -> None:
    assert col.size().getInfo() == len(syn.times)
    assert _props(col, "system:index") == [r["system:index"] for r in _records(syn)]
    assert _props(col, "system:time_start") == [r["system:time_start"] for r in _records(syn)]


def test_filter_date(syn: Synthetic, col: ee.ImageCollection) -> None:
    start, end = _millis("2021-01-20T10:00:00"), _millis("2021-02-25T00:00:00")
    ref = [r["system:index"] for r in _records(syn) if start <= r["system:time_start"] < end]
    got = col.filterDate("2021-01-20T10:00:00", "2021-02-25")  # start inclusive, end exclusive
    assert _props(got, "system:index") == ref
    assert len(ref) == 3


@pytest.mark.parametrize(
    ("make", "prop", "value", "ref"),
    [
        (ee.Filter.eq, "ORBIT", 1, lambda v, x: v == x),
        (ee.Filter.neq, "ORBIT", 1, lambda v, x: v != x),
        (ee.Filter.lt, "CLOUDY", 68.7, lambda v, x: v < x),
        (ee.Filter.gt, "CLOUDY", 68.7, lambda v, x: v > x),
        (ee.Filter.lte, "CLOUDY", 68.7, lambda v, x: v <= x),
        (ee.Filter.gte, "CLOUDY", 68.7, lambda v, x: v >= x),
    ],
)
def test_filter_comparisons(syn: Synthetic, col: ee.ImageCollection, make: Any, prop: str,
                            value: Any, ref: Callable[[Any, Any], bool]) -> None:  # fmt: skip
    assert 68.7 in syn.cloud  # the threshold is one of the values: <= and < differ
    expected = [r["system:index"] for r in _records(syn) if ref(r[prop], value)]
    assert _props(col.filter(make(prop, value)), "system:index") == expected


def test_filter_list_contains_and_in_list(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    got = _props(col.filter(ee.Filter.listContains("TAGS", "a")), "system:index")
    assert got == [r["system:index"] for r in recs if "a" in r["TAGS"]]
    wanted = [recs[0]["system:index"], recs[4]["system:index"], "nope"]
    got = _props(col.filter(ee.Filter.inList("system:index", wanted)), "system:index")
    assert got == [recs[0]["system:index"], recs[4]["system:index"]]


def test_filter_logic(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    low, odd = ee.Filter.lt("CLOUDY", 70), ee.Filter.eq("ORBIT", 1)
    cases = {
        "and": (ee.Filter.And(low, odd), lambda r: r["CLOUDY"] < 70 and r["ORBIT"] == 1),
        "or": (ee.Filter.Or(low, odd), lambda r: r["CLOUDY"] < 70 or r["ORBIT"] == 1),
        "not": (low.Not(), lambda r: not r["CLOUDY"] < 70),
    }
    for name, (flt, ref) in cases.items():
        expected = [r["system:index"] for r in recs if ref(r)]
        assert _props(col.filter(flt), "system:index") == expected, name


def test_filter_calendar_range_month(syn: Synthetic, col: ee.ImageCollection) -> None:
    months = [datetime.fromisoformat(t).month for t in syn.times]
    got = _props(col.filter(ee.Filter.calendarRange(2, 4, "month")), "system:index")
    assert got == [r["system:index"] for r, m in zip(_records(syn), months, strict=True) if 2 <= m <= 4]
    assert col.filter(ee.Filter.calendarRange(3, 3, "month")).size().getInfo() == 0


def test_filter_calendar_range_day_of_week_and_year(syn: Synthetic, col: ee.ImageCollection) -> None:
    days = [datetime.fromisoformat(t).isoweekday() for t in syn.times]  # Monday = 1 (documented)
    recs = _records(syn)
    for day in range(1, 8):
        got = _props(col.filter(ee.Filter.calendarRange(day, day, "day_of_week")), "system:index")
        assert got == [r["system:index"] for r, d in zip(recs, days, strict=True) if d == day], day
    doys = [datetime.fromisoformat(t).timetuple().tm_yday for t in syn.times]
    got = _props(col.filter(ee.Filter.calendarRange(1, 40, "day_of_year")), "system:index")
    assert got == [r["system:index"] for r, d in zip(recs, doys, strict=True) if d <= 40]
    wrap = col.filter(ee.Filter.calendarRange(11, 2, "month")).size().getInfo()  # end < start wraps
    assert wrap == sum(1 for t in syn.times if datetime.fromisoformat(t).month in (11, 12, 1, 2))


def test_filter_bounds(syn: Synthetic, col: ee.ImageCollection) -> None:
    # The centre of the stack's footprint, computed in lon/lat from the native grid.
    h, w = SYN_SHAPE
    x = SYN_TRANSFORM[2] + SYN_TRANSFORM[0] * w / 2
    y = SYN_TRANSFORM[5] + SYN_TRANSFORM[4] * h / 2
    lon, lat = Transformer.from_crs(SYN_CRS, "EPSG:4326", always_xy=True).transform(x, y)
    assert col.filterBounds(ee.Geometry.Point([lon, lat])).size().getInfo() == len(syn.times)
    assert col.filterBounds(ee.Geometry.Point([lon + 1.0, lat])).size().getInfo() == 0
    assert col.filterBounds(ee.Geometry.Point([-120.0, -30.0])).size().getInfo() == 0


# -- selection, ordering, merging ----------------------------------------------------------------
def test_first_and_to_list(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    first = col.first().getInfo()
    assert first["properties"]["system:index"] == recs[0]["system:index"]
    assert first["properties"]["CLOUDY"] == recs[0]["CLOUDY"]
    assert [b["id"] for b in first["bands"]] == list(BANDS)
    listed = col.toList(2, 3)
    got = ee.List(listed).map(lambda i: ee.Image(i).get("system:index")).getInfo()
    assert got == [r["system:index"] for r in recs[3:5]]
    assert ee.List(col.toList(10, 4)).size().getInfo() == 2  # past the end: what is there
    assert col.filterDate("2030-01-01", "2030-02-01").first().getInfo() is None


def test_limit_and_sort(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    assert _props(col.limit(2), "system:index") == [r["system:index"] for r in recs[:2]]
    assert _props(col.sort("CLOUDY"), "CLOUDY") == sorted(syn.cloud)
    assert _props(col.sort("CLOUDY", False), "CLOUDY") == sorted(syn.cloud, reverse=True)
    assert _props(col.limit(3, "CLOUDY", False), "CLOUDY") == sorted(syn.cloud, reverse=True)[:3]


def test_merge_prefixes_ids(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    merged = col.limit(2).merge(col.filter(ee.Filter.eq("ORBIT", 1)))
    expected = [f"1_{r['system:index']}" for r in recs[:2]] + [
        f"2_{r['system:index']}" for r in recs if r["ORBIT"] == 1
    ]
    assert merged.size().getInfo() == 5
    assert _props(merged, "system:index") == expected
    assert _props(merged, "CLOUDY") == [r["CLOUDY"] for r in recs[:2]] + [
        r["CLOUDY"] for r in recs if r["ORBIT"] == 1
    ]


# -- map, iterate, aggregate ---------------------------------------------------------------------
def test_map_closure(syn: Synthetic, col: ee.ImageCollection) -> None:
    k = ee.Number(3)
    mapped = col.map(lambda i: i.multiply(k).set("k", k))
    assert _props(mapped, "k") == [3] * len(syn.times)
    # the element IDs survive map even though multiply drops the properties
    assert _props(mapped, "system:index") == [r["system:index"] for r in _records(syn)]
    out = pixels(ee.Image(mapped.toList(1, 2).get(0)).select("B1"), syn.grid)
    _assert_band(out["B1"], (syn.b1[2].astype(np.float64) * 3, syn.mask[2]))


def test_map_nested_closures(syn: Synthetic, col: ee.ImageCollection) -> None:
    k = ee.Number(10)

    def outer(img: ee.Image) -> ee.Image:
        orbit = ee.Number(img.get("ORBIT"))
        seq = ee.List.sequence(1, 3).map(lambda x: ee.Number(x).multiply(k).add(orbit))
        return img.set("seq", seq, "total", seq.reduce(ee.Reducer.sum()))

    mapped = col.map(outer)
    orbits = [r["ORBIT"] for r in _records(syn)]
    assert _props(mapped, "seq") == [[10 + o, 20 + o, 30 + o] for o in orbits]
    assert _props(mapped, "total") == [60 + 3 * o for o in orbits]


def test_map_sets_properties_then_aggregate(syn: Synthetic, col: ee.ImageCollection) -> None:
    mapped = col.map(lambda i: i.set("half", ee.Number(i.get("CLOUDY")).divide(2),
                                     "month", ee.Date(i.get("system:time_start")).get("month")))  # fmt: skip
    assert _props(mapped, "half") == pytest.approx([c / 2 for c in syn.cloud])
    assert _props(mapped, "month") == [datetime.fromisoformat(t).month for t in syn.times]
    assert mapped.aggregate_sum("CLOUDY").getInfo() == pytest.approx(sum(syn.cloud))
    assert mapped.aggregate_max("CLOUDY").getInfo() == max(syn.cloud)
    assert mapped.aggregate_mean("CLOUDY").getInfo() == pytest.approx(np.mean(syn.cloud))
    assert mapped.aggregate_count("CLOUDY").getInfo() == len(syn.cloud)
    assert mapped.aggregate_histogram("ORBIT").getInfo() == {"0": 3, "1": 3}
    stats = mapped.aggregate_stats("CLOUDY").getInfo()
    assert stats["sample_sd"] == pytest.approx(np.std(syn.cloud, ddof=1))
    assert stats["total_var"] == pytest.approx(np.var(syn.cloud))


def test_iterate_fold(syn: Synthetic, col: ee.ImageCollection) -> None:
    def step(img: ee.Image, acc: Any) -> ee.List:
        return ee.List(acc).add(ee.Number(img.get("CLOUDY")).add(ee.List(acc).size()))

    got = col.iterate(step, ee.List([])).getInfo()
    assert got == pytest.approx([c + i for i, c in enumerate(syn.cloud)])
    total = col.iterate(lambda img, acc: ee.Number(acc).add(img.get("CLOUDY")), 0).getInfo()
    assert total == pytest.approx(sum(syn.cloud))


def test_reduce_columns(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    got = col.reduceColumns(ee.Reducer.toList().repeat(2), ["system:index", "CLOUDY"]).getInfo()
    assert got == {"list": [[r["system:index"] for r in recs], [r["CLOUDY"] for r in recs]]}
    got = col.reduceColumns(ee.Reducer.mean(), ["CLOUDY"]).getInfo()
    assert got["mean"] == pytest.approx(np.mean(syn.cloud))
    pairs = col.reduceColumns(ee.Reducer.toList(2), ["ORBIT", "CLOUDY"]).getInfo()
    assert pairs == {"list": [[r["ORBIT"], r["CLOUDY"]] for r in recs]}


def test_from_images_and_to_bands(syn: Synthetic) -> None:
    img = ee.Image("test/syn_img")
    col = ee.ImageCollection.fromImages([img.select("B1"), ee.Image(2).rename("c")])
    assert col.size().getInfo() == 2
    names = col.toBands().bandNames().getInfo()
    assert names[1] == "1_c" and names[0].endswith("_B1")
    stack = ee.ImageCollection("test/syn").select(["B1", "QA"]).toBands()
    recs = _records(syn)
    assert stack.bandNames().getInfo() == [f"{r['system:index']}_{b}" for r in recs for b in ("B1", "QA")]
    band = f"{recs[3]['system:index']}_B1"
    out = pixels(stack.select(band), syn.grid)
    _assert_band(out[band], (syn.b1[3].astype(np.float64), syn.mask[3]), rtol=0, atol=0)


# -- per-pixel reductions ------------------------------------------------------------------------
_REDUCERS: dict[str, tuple[Callable[[], ee.Reducer], Callable[[np.ndarray], float]]] = {
    "median": (ee.Reducer.median, lambda v: float(np.median(v))),
    "mean": (ee.Reducer.mean, lambda v: float(np.mean(v))),
    "min": (ee.Reducer.min, lambda v: float(np.min(v))),
    "max": (ee.Reducer.max, lambda v: float(np.max(v))),
    "sum": (ee.Reducer.sum, lambda v: float(np.sum(v))),
    "count": (ee.Reducer.count, lambda v: float(len(v))),
}


@pytest.mark.parametrize("kind", sorted(_REDUCERS))
def test_image_collection_reduce(syn: Synthetic, col: ee.ImageCollection, kind: str) -> None:
    make, ref_fn = _REDUCERS[kind]
    reduced = col.reduce(make())
    out = pixels(reduced, syn.grid)
    assert list(out) == [f"{b}_{kind}" for b in BANDS]
    for band in BANDS:
        ref = _per_pixel(*_stack(syn, band), ref_fn, empty=0.0 if kind == "count" else None)
        _assert_band(out[f"{band}_{kind}"], ref, rtol=1e-5)
    never = out[f"B1_{kind}"]
    if kind == "count":  # a pixel masked in every image: count 0, and valid
        assert never[1][0, 0] and never[0][0, 0] == 0
    else:
        assert not never[1][0, 0]


@pytest.mark.parametrize("kind", sorted(_REDUCERS))
def test_reduce_shortcuts(syn: Synthetic, col: ee.ImageCollection, kind: str) -> None:
    _, ref_fn = _REDUCERS[kind]
    out = pixels(getattr(col, kind)(), syn.grid)
    assert list(out) == list(BANDS)
    for band in BANDS:
        ref = _per_pixel(*_stack(syn, band), ref_fn, empty=0.0 if kind == "count" else None)
        _assert_band(out[band], ref, rtol=1e-5)


def test_median_even_count_is_mean_of_middle_values(syn: Synthetic, col: ee.ImageCollection) -> None:
    values, valid = _stack(syn, "B1")
    counts = valid.sum(axis=0)
    r, c = np.argwhere(counts == 4)[0]
    middle = np.sort(values[:, r, c][valid[:, r, c]].astype(np.float64))[1:3]
    got = pixels(col.select("B1").median(), syn.grid)["B1"][0][r, c]
    assert got == pytest.approx(middle.mean(), rel=1e-6)


def test_reduce_pixel_types(col: ee.ImageCollection) -> None:
    types = col.select("QA").reduce(ee.Reducer.count()).bandTypes().getInfo()
    assert types["QA_count"]["precision"] == "int"
    assert col.select("B1").median().bandTypes().getInfo()["B1"]["precision"] == "float"


def test_empty_collection_reduces_to_no_bands(col: ee.ImageCollection) -> None:
    empty = col.filterDate("2030-01-01", "2030-02-01")
    assert empty.size().getInfo() == 0
    assert empty.median().bandNames().getInfo() == []
    assert empty.reduce(ee.Reducer.mean()).bandNames().getInfo() == []
    with pytest.raises(ee.EEException, match="no bands"):
        ee.data.computePixels({"expression": empty.median(), "fileFormat": "NUMPY_NDARRAY",
                               "grid": {"dimensions": {"width": 2, "height": 2}}})  # fmt: skip


def test_mosaic_last_valid_on_top(syn: Synthetic, col: ee.ImageCollection) -> None:
    out = pixels(col.mosaic(), syn.grid)
    assert list(out) == list(BANDS)
    for band in BANDS:
        values, valid = _stack(syn, band)
        ref = np.zeros(values.shape[1:], dtype=np.float64)
        has = np.zeros(values.shape[1:], dtype=bool)
        for i in range(values.shape[0]):  # paint in collection order: later on top
            ref = np.where(valid[i], values[i], ref)
            has |= valid[i]
        _assert_band(out[band], (ref, has), rtol=0, atol=0)


def test_quality_mosaic(syn: Synthetic, col: ee.ImageCollection) -> None:
    out = pixels(col.qualityMosaic("B2"), syn.grid)
    h, w = SYN_SHAPE
    for band in BANDS:
        values, _ = _stack(syn, band)
        ref = np.zeros((h, w))
        has = np.zeros((h, w), dtype=bool)
        for r in range(h):
            for c in range(w):
                ok = np.flatnonzero(syn.mask[:, r, c])
                if len(ok):
                    best = ok[np.argmax(syn.b2[ok, r, c])]
                    ref[r, c], has[r, c] = values[best, r, c], True
        _assert_band(out[band], (ref, has), rtol=0, atol=0)


def test_reducer_combine_mean_std_dev(syn: Synthetic, col: ee.ImageCollection) -> None:
    reducer = ee.Reducer.mean().combine(ee.Reducer.stdDev(), sharedInputs=True)
    out = pixels(col.select(["B1", "QA"]).reduce(reducer), syn.grid)
    assert list(out) == ["B1_mean", "B1_stdDev", "QA_mean", "QA_stdDev"]
    for band in ("B1", "QA"):
        _assert_band(out[f"{band}_mean"], _per_pixel(*_stack(syn, band), np.mean), rtol=1e-5)
        _assert_band(out[f"{band}_stdDev"], _per_pixel(*_stack(syn, band), np.std), rtol=1e-4,
                     atol=1e-4)  # fmt: skip


def test_percentile(syn: Synthetic, col: ee.ImageCollection) -> None:
    out = pixels(col.select("B2").reduce(ee.Reducer.percentile([0, 25, 50, 100])), syn.grid)
    assert list(out) == ["B2_p0", "B2_p25", "B2_p50", "B2_p100"]
    for p in (0, 25, 50, 100):
        # nearest rank: the smallest valid value with at least p% of the values at or below it
        ref = _per_pixel(*_stack(syn, "B2"), lambda v, p=p: np.percentile(v, p, method="inverted_cdf"))
        _assert_band(out[f"B2_p{p}"], ref, rtol=0, atol=0)
    renamed = col.select("B2").reduce(ee.Reducer.percentile([50], ["mid"]))
    assert renamed.bandNames().getInfo() == ["B2_mid"]


def test_reduce_mode(syn: Synthetic, col: ee.ImageCollection) -> None:
    signs = col.map(lambda i: i.select("B1").gt(0))
    out = pixels(signs.mode(), syn.grid)["B1"]
    assert pixels(signs.reduce(ee.Reducer.mode()), syn.grid).keys() == {"B1_mode"}
    positive = (syn.b1 > 0).astype(np.int64)
    h, w = SYN_SHAPE
    for r in range(h):
        for c in range(w):
            vals = positive[:, r, c][syn.mask[:, r, c]]
            if not len(vals):
                assert not out[1][r, c]
                continue
            counts = np.bincount(vals, minlength=2)
            if counts[0] != counts[1]:  # ties: Earth Engine does not document which value wins
                assert out[1][r, c] and out[0][r, c] == np.argmax(counts), (r, c)
    assert ee.List([3, 1, 3, 2, 1, 3]).reduce(ee.Reducer.mode()).getInfo() == 3


def test_distinct(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    got = _props(col.distinct("ORBIT"), "system:index")
    firsts: dict[int, str] = {}
    for r in recs:
        firsts.setdefault(r["ORBIT"], r["system:index"])
    assert got == list(firsts.values())
    assert col.distinct(["ORBIT", "TAGS"]).size().getInfo() == 2


def test_reduce_columns_weighted_and_sample_stats(syn: Synthetic, col: ee.ImageCollection) -> None:
    recs = _records(syn)
    weights = np.array([r["ORBIT"] + 0.5 for r in recs])
    weighted = col.map(lambda i: i.set("W", ee.Number(i.get("ORBIT")).add(0.5)))
    got = weighted.reduceColumns(ee.Reducer.mean(), ["CLOUDY"], ["W"]).getInfo()
    assert got["mean"] == pytest.approx(np.average(syn.cloud, weights=weights))
    got = col.reduceColumns(ee.Reducer.sampleStdDev(), ["CLOUDY"]).getInfo()
    assert got["stdDev"] == pytest.approx(np.std(syn.cloud, ddof=1))
    got = col.reduceColumns(ee.Reducer.countDistinct(), ["ORBIT"]).getInfo()
    assert got == {"count": 2}


def test_the_first_of_an_empty_collection_fails_with_earth_engines_message() -> None:
    empty = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2030-01-01", "2030-02-01")
    assert empty.first().getInfo() is None
    with pytest.raises(ee.EEException, match=r"^Image.bandNames: Parameter 'image' is required.$"):
        ee.Image(empty.first()).bandNames().getInfo()
    with pytest.raises(ee.EEException, match=r"^Image.multiply: Parameter 'image1' is required.$"):
        ee.Image(empty.first()).multiply(2).getInfo()


def test_the_bottleneck_median_equals_the_sorting_median(monkeypatch) -> None:
    from gee_fusion.local.algorithms import reducers

    rng = np.random.default_rng(11)
    values = rng.normal(size=(7, 30, 40)).astype(np.float32)
    valid = rng.random(values.shape) > 0.4
    valid[:, 0, 0] = False  # no valid value at one pixel
    valid[:, 0, 1] = [True, True, False, False, False, False, False]  # an even count
    fast = reducers.masked_median(values, valid, np.dtype(np.float32))
    monkeypatch.setattr(reducers, "_bn", None)
    slow = reducers.masked_median(values, valid, np.dtype(np.float32))
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
    assert not fast[1][0, 0] and fast[0][0, 0] == 0
    assert fast[0][0, 1] == np.float32((values[0, 0, 1] + values[1, 0, 1]) * np.float32(0.5))
