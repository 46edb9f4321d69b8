"""Value algorithms of the local engine (Date, Number, String, List, Dictionary, If, Element,
Geometry, Feature, reduceRegion) against pure-Python / numpy / shapely references."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ee
import numpy as np
import pytest
import shapely
import shapely.geometry
from rasterio.warp import transform_geom

from tests.conftest import SYN_CRS, SYN_SHAPE, SYN_TRANSFORM, Synthetic


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# -- Date and DateRange -------------------------------------------------------------------------
def test_date_from_string_and_millis() -> None:
    assert ee.Date("2021-03-04").millis().getInfo() == _ms("2021-03-04T00:00:00")
    assert ee.Date("2021-03-04T05:06:07").millis().getInfo() == _ms("2021-03-04T05:06:07")
    assert ee.Date(1609840800000).millis().getInfo() == 1609840800000
    assert ee.Date("2021-03-04T05:06:07").getInfo() == {"type": "Date", "value": _ms("2021-03-04T05:06:07")}
    paris = ee.Date("2021-03-04", "Europe/Paris").millis().getInfo()
    assert paris == _ms("2021-03-04T00:00:00") - 3600 * 1000  # UTC+1 in winter


def test_date_advance() -> None:
    base = ee.Date("2021-01-31T12:00:00")
    assert base.advance(3, "day").millis().getInfo() == _ms("2021-02-03T12:00:00")
    assert base.advance(-1.5, "hour").millis().getInfo() == _ms("2021-01-31T10:30:00")
    assert base.advance(2, "week").millis().getInfo() == _ms("2021-02-14T12:00:00")
    # calendar units clamp to the end of a shorter month (Joda-Time)
    assert base.advance(1, "month").format("YYYY-MM-dd").getInfo() == "2021-02-28"
    assert base.advance(-2, "month").format("YYYY-MM-dd").getInfo() == "2020-11-30"
    assert ee.Date("2020-02-29").advance(1, "year").format("YYYY-MM-dd").getInfo() == "2021-02-28"
    assert ee.Date("2020-02-29").advance(4, "year").format("YYYY-MM-dd").getInfo() == "2024-02-29"


def test_date_difference_and_get() -> None:
    a, b = ee.Date("2021-03-04T06:00:00"), ee.Date("2021-01-01")
    ref = (datetime(2021, 3, 4, 6) - datetime(2021, 1, 1)) / timedelta(days=1)
    assert a.difference(b, "day").getInfo() == pytest.approx(ref)
    assert a.difference(b, "hour").getInfo() == pytest.approx(ref * 24)
    assert b.difference(a, "day").getInfo() == pytest.approx(-ref)
    # documented: "floating-point and based on the average length of the unit", so calendar
    # months and years are not whole (59 days are not 2 months); Gregorian average lengths
    year_days = 365.2425
    months = ee.Date("2021-03-01").difference(ee.Date("2021-01-01"), "month").getInfo()
    assert months == pytest.approx(59 / (year_days / 12))
    years = ee.Date("2023-01-01").difference(ee.Date("2021-01-01"), "year").getInfo()
    assert years == pytest.approx(730 / year_days)
    assert ee.Date.unitRatio("day", "minute").getInfo() == 1440
    assert ee.Date.unitRatio("year", "day").getInfo() == pytest.approx(year_days)
    when = datetime(2021, 3, 4, 5, 6, 7)
    d = ee.Date(when.isoformat())
    got = {u: d.get(u).getInfo() for u in ("year", "month", "day", "hour", "minute", "second")}
    assert got == {"year": 2021, "month": 3, "day": 4, "hour": 5, "minute": 6, "second": 7}
    assert ee.Date("2021-01-01").get("week").getInfo() == datetime(2021, 1, 1).isocalendar()[1]


def test_date_get_range_and_from_ymd() -> None:
    rng = ee.Date("2021-02-14T10:00:00").getRange("month").getInfo()
    assert rng == {"type": "DateRange", "dates": [_ms("2021-02-01T00:00:00"), _ms("2021-03-01T00:00:00")]}
    year = ee.Date("2020-06-01").getRange("year").getInfo()["dates"]
    assert year == [_ms("2020-01-01T00:00:00"), _ms("2021-01-01T00:00:00")]
    assert ee.Date.fromYMD(2021, 2, 3).millis().getInfo() == _ms("2021-02-03T00:00:00")
    assert ee.Date.fromYMD(2024, 12, 31).format("DDD").getInfo() == "366"


@pytest.mark.parametrize(
    ("pattern", "strftime"),
    [
        ("YYYY-MM-dd", "%Y-%m-%d"),
        ("yyyyMMdd", "%Y%m%d"),
        ("YYYY-MM-dd'T'HH:mm:ss", "%Y-%m-%dT%H:%M:%S"),
        ("dd/MM/yy HH:mm", "%d/%m/%y %H:%M"),
        ("MMM d, yyyy", "%b {day}, %Y"),
        ("MMMM", "%B"),
        ("EEE EEEE", "%a %A"),
        ("DDD", "%j"),
        ("h:mm a", "{hour12}:%M %p"),
    ],
)
def test_date_format_joda(pattern: str, strftime: str) -> None:
    when = datetime(2021, 3, 7, 17, 6, 9, tzinfo=UTC)
    ref = when.strftime(strftime).format(day=when.day, hour12=when.hour % 12 or 12)
    assert ee.Date(when.strftime("%Y-%m-%dT%H:%M:%S")).format(pattern).getInfo() == ref


def test_date_format_millis_and_time_zone() -> None:
    d = ee.Date(_ms("2021-03-04T23:30:05") + 250)
    assert d.format("HH:mm:ss.SSS").getInfo() == "23:30:05.250"
    local = datetime(2021, 3, 4, 23, 30, 5, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    assert d.format("YYYY-MM-dd HH:mm", "Asia/Tokyo").getInfo() == local.strftime("%Y-%m-%d %H:%M")
    assert d.format("YYYY-MM-dd HH:mm", "Asia/Tokyo").getInfo() == "2021-03-05 08:30"


def test_date_range() -> None:
    dr = ee.DateRange("2021-01-01", "2021-02-01")
    jan = [_ms("2021-01-01T00:00:00"), _ms("2021-02-01T00:00:00")]
    assert dr.getInfo() == {"type": "DateRange", "dates": jan}
    assert dr.contains(ee.Date("2021-01-15")).getInfo() is True
    assert dr.contains(ee.Date("2021-02-01")).getInfo() is False  # end is exclusive
    assert dr.start().millis().getInfo() == _ms("2021-01-01T00:00:00")
    assert dr.end().millis().getInfo() == _ms("2021-02-01T00:00:00")
    assert ee.DateRange("2021-01-02", "2021-01-02").isEmpty().getInfo() is True
    other = ee.DateRange("2021-01-20", "2021-03-01")
    assert dr.intersects(other).getInfo() is True
    assert dr.union(other).getInfo()["dates"] == [_ms("2021-01-01T00:00:00"), _ms("2021-03-01T00:00:00")]


def test_date_range_unbounded_get_info() -> None:
    assert ee.DateRange.unbounded().isUnbounded().getInfo() is True
    info = ee.DateRange.unbounded().getInfo()
    assert info["type"] == "DateRange"
    assert info["dates"] == [-(2**63), 2**63 - 1]


def test_filter_date_with_date_range(syn: Synthetic) -> None:
    col = ee.ImageCollection("test/syn")
    expected = sum(1 for t in syn.times if t.startswith("2021-02"))
    assert col.filterDate(ee.DateRange("2021-02-01", "2021-03-01")).size().getInfo() == expected
    assert col.filter(ee.Filter.date(ee.DateRange("2021-02-01", "2021-03-01"))).size().getInfo() == expected


# -- Number -------------------------------------------------------------------------------------
def test_number_arithmetic() -> None:
    assert ee.Number(7).add(3).multiply(2).subtract(1).divide(4).getInfo() == pytest.approx(19 / 4)
    assert ee.Number(7).divide(2).getInfo() == pytest.approx(3.5)
    assert ee.Number(7).mod(3).getInfo() == 1
    assert ee.Number(-7).mod(3).getInfo() == math.fmod(-7, 3)  # sign of the dividend (Java %)
    assert ee.Number(2).pow(10).getInfo() == 1024
    assert ee.Number(16).sqrt().getInfo() == pytest.approx(4.0)
    assert ee.Number(-3).abs().getInfo() == 3
    assert ee.Number(3.2).floor().getInfo() == 3 and ee.Number(3.2).ceil().getInfo() == 4
    assert ee.Number(2.6).round().getInfo() == 3 and ee.Number(-2.6).round().getInfo() == -3
    assert ee.Number(2.5).round().getInfo() == 3 and ee.Number(0.5).round().getInfo() == 1
    assert ee.Number(2).max(3).getInfo() == 3 and ee.Number(2).min(3).getInfo() == 2
    assert ee.Number(6).bitwiseAnd(3).getInfo() == 2 and ee.Number(1).leftShift(4).getInfo() == 16


@pytest.mark.parametrize("op", ["lt", "lte", "gt", "gte", "eq", "neq"])
def test_number_comparisons(op: str) -> None:
    ref = {"lt": lambda a, b: a < b, "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b,
           "gte": lambda a, b: a >= b, "eq": lambda a, b: a == b, "neq": lambda a, b: a != b}[op]  # fmt: skip
    for a, b in ((3, 4), (4, 4), (5, 4), (2.5, 2.5), (-1, 0.5)):
        assert getattr(ee.Number(a), op)(b).getInfo() == int(ref(a, b)), (op, a, b)


def test_number_logic() -> None:
    assert ee.Number(1).And(0).getInfo() == 0 and ee.Number(1).Or(0).getInfo() == 1
    assert ee.Number(0).Not().getInfo() == 1 and ee.Number(3).Not().getInfo() == 0


def test_number_casts_truncate_and_saturate() -> None:
    # Documented: fractions are dropped and out-of-range values become the type's min or max.
    assert ee.Number(3.7).toInt().getInfo() == 3
    assert ee.Number(-3.7).int().getInfo() == -3
    assert ee.Number(300).toUint8().getInfo() == 255
    assert ee.Number(-5).toUint8().getInfo() == 0
    assert ee.Number(200).toInt8().getInfo() == 127
    assert ee.Number(-40000).toInt16().getInfo() == -32768
    assert ee.Number(2**31 + 12345).toInt32().getInfo() == 2**31 - 1
    assert ee.Number(1.7).toUint32().getInfo() == 1
    assert ee.Number(1.1).toFloat().getInfo() == float(np.float32(1.1))  # 32-bit precision
    assert ee.Number(1.1).toDouble().getInfo() == 1.1
    assert ee.Number(3).toFloat().getInfo() == 3.0


def test_number_format_and_parse() -> None:
    assert ee.Number(3.14159).format("%.2f").getInfo() == "3.14"
    assert ee.Number(5).format("%03d").getInfo() == "005"
    assert ee.Number(2.5).format("Value: %.1f m").getInfo() == "Value: 2.5 m"  # prefix and suffix
    assert ee.Number(12345.678).format("%.3e").getInfo() == f"{12345.678:.3e}"
    assert ee.Number(1.5).format().getInfo() == "1.5"
    assert ee.Number.parse("12").getInfo() == 12
    assert ee.Number.parse("1.5").getInfo() == 1.5
    assert ee.Number.parse("ff", 16).getInfo() == 255


def test_number_format_java_rules() -> None:
    # Earth Engine formats with Java's Formatter: half-up rounding of the decimal form and the
    # ',' (grouping) and '(' (negative in parentheses) flags; exactly one '%' conversion.
    assert ee.Number(2.25).format("%.1f").getInfo() == "2.3"
    assert ee.Number(0.125).format("%.2f").getInfo() == "0.13"
    assert ee.Number(1234567).format("%,d").getInfo() == "1,234,567"
    assert ee.Number(1234567.891).format("%,.2f").getInfo() == "1,234,567.89"
    assert ee.Number(-1234.5).format("%(,.1f").getInfo() == "(1,234.5)"
    assert ee.Number(255).format("%x").getInfo() == "ff"
    assert ee.Number(5).format("%+d").getInfo() == "+5"
    for bad in ("%", "%d %d", "no conversion"):
        with pytest.raises(ee.EEException, match=r"Number\.format"):
            ee.Number(1).format(bad).getInfo()


# -- String -------------------------------------------------------------------------------------
def test_string_ops() -> None:
    s = "Hello, World"
    assert ee.String(s).cat("!").getInfo() == s + "!"
    assert ee.String(s).length().getInfo() == len(s)
    assert ee.String(s).toUpperCase().getInfo() == s.upper()
    assert ee.String(s).toLowerCase().getInfo() == s.lower()
    assert ee.String(s).slice(1, 4).getInfo() == s[1:4]
    assert ee.String(s).slice(-5).getInfo() == s[-5:]
    assert ee.String(s).index("o").getInfo() == s.index("o")
    assert ee.String(s).rindex("o").getInfo() == s.rindex("o")
    assert ee.String(s).index("z").getInfo() == -1
    assert ee.String("  pad ").trim().getInfo() == "pad"
    assert ee.String("a,b,,c").split(",").getInfo() == ["a", "b", "", "c"]
    assert ee.String("abc").split("").getInfo() == ["a", "b", "c"]
    assert ee.String("foo bar foo").replace("foo", "x").getInfo() == "x bar foo"
    assert ee.String("foo bar foo").replace("foo", "x", "g").getInfo() == "x bar x"
    assert ee.String("2021-03-04").replace("(\\d+)-(\\d+)-(\\d+)", "$3/$2/$1").getInfo() == "04/03/2021"
    assert ee.String("a1b22c333").match("[0-9]+", "g").getInfo() == ["1", "22", "333"]
    # without 'g': JavaScript semantics, the first match and its groups
    assert ee.String("a1b22").match("([a-z])([0-9]+)").getInfo() == ["a1", "a", "1"]
    assert ee.String("abc").match("[0-9]+").getInfo() == []
    assert ee.String("Foo foo").replace("foo", "x", "gi").getInfo() == "x x"
    assert ee.String("Foo foo").match("foo", "gi").getInfo() == ["Foo", "foo"]
    assert ee.String("aXbxc").split("x", "i").getInfo() == ["a", "b", "c"]
    assert ee.String("a").compareTo("b").getInfo() < 0 and ee.String("b").compareTo("a").getInfo() > 0
    assert ee.String("a").equals("a").getInfo() is True
    assert ee.String(ee.Number(5)).getInfo() == "5"


def test_string_json() -> None:
    obj = {"a": [1, 2.5, "x"], "b": {"c": None}}
    text = ee.String.encodeJSON(obj).getInfo()
    assert json.loads(text) == obj
    assert " " not in text  # compact, as Earth Engine writes it
    assert ee.String(json.dumps(obj)).decodeJSON().getInfo() == obj


# -- List -----------------------------------------------------------------------------------------
def test_list_sequence() -> None:
    assert ee.List.sequence(0, 10, 2).getInfo() == list(range(0, 11, 2))
    assert ee.List.sequence(1, 5).getInfo() == [1, 2, 3, 4, 5]
    assert ee.List.sequence(0, 1, 0.25).getInfo() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert ee.List.sequence(0, None, 3, 4).getInfo() == [0, 3, 6, 9]
    assert ee.List.sequence(5, 1, -2).getInfo() == [5, 3, 1]


def test_list_map_with_closures() -> None:
    k = ee.Number(10)
    assert ee.List([1, 2, 3]).map(lambda x: ee.Number(x).add(k)).getInfo() == [11, 12, 13]
    nested = ee.List([1, 2]).map(lambda a: ee.List([10, 20]).map(lambda b: ee.Number(a).multiply(b).add(k)))
    assert nested.getInfo() == [[a * b + 10 for b in (10, 20)] for a in (1, 2)]
    keep = ee.List([1, 2, 3]).map(lambda a: ee.Algorithms.If(ee.Number(a).eq(2), None, a), True)
    assert keep.getInfo() == [1, 3]


def test_list_access_and_shape() -> None:
    data = [5, 3, 8, 1, 9, 3]
    lst = ee.List(data)
    assert lst.slice(1, -1).getInfo() == data[1:-1]
    assert lst.slice(1, 6, 2).getInfo() == data[1:6:2]
    assert lst.get(-1).getInfo() == data[-1]
    assert lst.get(2).getInfo() == data[2]
    assert lst.sort().getInfo() == sorted(data)
    assert ee.List(["b", "a", "c"]).sort().getInfo() == ["a", "b", "c"]
    assert ee.List(["x", "y", "z"]).sort([3, 1, 2]).getInfo() == ["y", "z", "x"]
    assert lst.distinct().getInfo() == list(dict.fromkeys(data))
    assert lst.indexOf(3).getInfo() == data.index(3) and lst.indexOf(42).getInfo() == -1
    assert ee.List([[1, [2]], [3], 4]).flatten().getInfo() == [1, 2, 3, 4]
    assert ee.List([1, 2, 3]).zip(["a", "b"]).getInfo() == [[1, "a"], [2, "b"]]
    assert lst.size().getInfo() == len(data)
    assert lst.add(0).getInfo() == [*data, 0]
    assert lst.cat([7]).getInfo() == [*data, 7]
    assert lst.reverse().getInfo() == data[::-1]
    assert lst.contains(8).getInfo() is True
    assert lst.remove(3).getInfo() == [5, 8, 1, 9, 3]
    assert lst.frequency(3).getInfo() == 2
    assert ee.List(["a", "b"]).join("-").getInfo() == "a-b"
    assert ee.List.repeat("x", 3).getInfo() == ["x"] * 3
    with pytest.raises(ee.EEException, match=r"List\.get"):
        lst.get(len(data)).getInfo()
    assert lst.set(-1, 0).getInfo() == [*data[:-1], 0]
    with pytest.raises(ee.EEException, match=r"List\.set"):
        lst.set(len(data), 0).getInfo()
    assert lst.insert(1, 7).getInfo() == [data[0], 7, *data[1:]]
    assert ee.List([1, 2, 3, 2, 3]).indexOfSublist([2, 3]).getInfo() == 1
    assert ee.List([1, 2, 3, 2, 3]).lastIndexOfSubList([2, 3]).getInfo() == 3
    assert ee.List([1, 2, 3]).rotate(1).getInfo() == [3, 1, 2]  # java.util.Collections.rotate
    assert ee.List([1, 2, 3]).rotate(-1).getInfo() == [2, 3, 1]


def test_list_reduce_and_iterate() -> None:
    data = [4.0, 1.5, 3.0, 7.25]
    lst = ee.List(data)
    assert lst.reduce(ee.Reducer.sum()).getInfo() == pytest.approx(sum(data))
    assert lst.reduce(ee.Reducer.mean()).getInfo() == pytest.approx(np.mean(data))
    assert lst.reduce(ee.Reducer.median()).getInfo() == pytest.approx(np.median(data))
    assert lst.reduce(ee.Reducer.minMax()).getInfo() == {"min": min(data), "max": max(data)}
    assert lst.reduce(ee.Reducer.stdDev()).getInfo() == pytest.approx(np.std(data))  # population
    assert ee.List([1, 2, 3]).reduce(ee.Reducer.sum()).getInfo() == 6
    folded = ee.List([1, 2, 3]).iterate(
        lambda x, acc: ee.List(acc).add(ee.Number(x).multiply(2)), ee.List([])
    )
    assert folded.getInfo() == [2, 4, 6]
    total = lst.iterate(lambda x, acc: ee.Number(acc).add(ee.Number(x).pow(2)), 0)
    assert total.getInfo() == pytest.approx(sum(v * v for v in data))


# -- Dictionary ---------------------------------------------------------------------------------
def test_dictionary_ops() -> None:
    d = ee.Dictionary({"b": 1, "a": 2, "c": 3})
    assert d.get("a").getInfo() == 2
    assert d.get("z", 5).getInfo() == 5
    assert d.get("z", 0).getInfo() == 0
    with pytest.raises(ee.EEException, match="z"):
        d.get("z").getInfo()
    assert d.keys().getInfo() == ["a", "b", "c"]  # sorted
    assert d.values().getInfo() == [2, 1, 3]  # in key order
    assert d.values(["c", "b"]).getInfo() == [3, 1]
    assert d.set("d", 4).getInfo() == {"a": 2, "b": 1, "c": 3, "d": 4}
    assert d.combine({"c": 30, "e": 5}).getInfo() == {"a": 2, "b": 1, "c": 30, "e": 5}
    assert d.combine({"c": 30, "e": 5}, False).getInfo() == {"a": 2, "b": 1, "c": 3, "e": 5}
    assert d.select(["a", "c"]).getInfo() == {"a": 2, "c": 3}
    assert ee.Dictionary({"B1": 1, "B2": 2, "QA": 3}).select(["B.*"]).getInfo() == {"B1": 1, "B2": 2}
    assert d.select(["a", "nope"], True).getInfo() == {"a": 2}
    assert ee.Dictionary.fromLists(["x", "y"], [1, 2]).getInfo() == {"x": 1, "y": 2}
    assert d.contains("a").getInfo() is True and d.size().getInfo() == 3
    assert d.remove(["a"]).getInfo() == {"b": 1, "c": 3}
    assert d.remove(["nope"], True).getInfo() == {"a": 2, "b": 1, "c": 3}
    with pytest.raises(ee.EEException, match=r"Dictionary\.remove"):
        d.remove(["nope"]).getInfo()
    assert d.rename(["a"], ["z"]).getInfo() == {"z": 2, "b": 1, "c": 3}
    assert d.rename(["a"], ["b"], True).getInfo() == {"b": 2, "c": 3}
    with pytest.raises(ee.EEException, match="already exists"):
        d.rename(["a"], ["b"]).getInfo()
    with pytest.raises(ee.EEException, match="same length"):
        ee.Dictionary.fromLists(["a"], [1, 2]).getInfo()
    assert d.map(lambda k, v: ee.Number(v).multiply(10)).getInfo() == {"a": 20, "b": 10, "c": 30}
    assert d.getNumber("a").add(1).getInfo() == 3


# -- Algorithms.If --------------------------------------------------------------------------------
def test_if_evaluates_only_the_chosen_branch() -> None:
    missing = ee.Image("test/does_not_exist")
    assert ee.Algorithms.If(ee.Number(1).gt(0), "yes", missing).getInfo() == "yes"
    assert ee.Algorithms.If(0, missing.bandNames(), "no").getInfo() == "no"
    big = ee.Algorithms.If(
        ee.List([1, 2]).size().gt(1), ee.String("big"), ee.ImageCollection("nope/x").size()
    )
    assert big.getInfo() == "big"
    with pytest.raises(ee.EEException, match="test/does_not_exist"):
        ee.Algorithms.If(1, missing.bandNames(), "no").getInfo()


@pytest.mark.parametrize(
    ("condition", "truthy"),
    [(1, True), (0, False), (None, False), ("", False), ("x", True), ([], False), ([0], True),
     ({}, False), (float("nan"), False), (-0.5, True)],
)  # fmt: skip
def test_if_truthiness(condition: Any, truthy: bool) -> None:
    assert ee.Algorithms.If(condition, "T", "F").getInfo() == ("T" if truthy else "F")


def test_if_inside_map(syn: Synthetic) -> None:
    col = ee.ImageCollection("test/syn")
    labels = col.map(
        lambda i: i.set("sky", ee.Algorithms.If(ee.Number(i.get("CLOUDY")).gt(50), "cloudy", "clear"))
    ).aggregate_array("sky")
    assert labels.getInfo() == ["cloudy" if c > 50 else "clear" for c in syn.cloud]


# -- Element properties -------------------------------------------------------------------------
def test_element_properties_on_images(syn: Synthetic) -> None:
    img = ee.Image("test/syn_img")
    assert img.get("NAME").getInfo() == "first"
    assert img.get("nope").getInfo() is None
    assert img.set("A", 1).get("A").getInfo() == 1
    multi = img.setMulti({"X": 1, "Y": [1, 2]})
    assert multi.toDictionary(["X", "Y", "NAME"]).getInfo() == {"X": 1, "Y": [1, 2], "NAME": "first"}
    assert multi.toDictionary().getInfo() == {"X": 1, "Y": [1, 2], "NAME": "first"}  # no system:*
    names = set(img.propertyNames().getInfo())
    assert {"NAME", "system:time_start", "system:index"} <= names
    assert img.date().millis().getInfo() == 1609840800000


def test_copy_properties(syn: Synthetic) -> None:
    img = ee.Image("test/syn_img")
    plus = img.add(1)
    assert "NAME" not in plus.propertyNames().getInfo()  # arithmetic drops properties
    copied = ee.Image(plus.copyProperties(img, ["NAME"]))
    assert copied.get("NAME").getInfo() == "first"
    assert copied.bandNames().getInfo() == ["B1", "B2", "QA"]
    every = ee.Image(plus.copyProperties(img.set("A", 1, "B", 2)))
    assert set(every.propertyNames().getInfo()) >= {"NAME", "A", "B"}
    assert every.get("system:time_start").getInfo() is None  # system properties only on request
    some = ee.Image(ee.Image(1).copyProperties(img.set("A", 1, "B", 2), None, ["A"]))
    assert set(some.toDictionary().getInfo()) == {"NAME", "B"}
    explicit = ee.Image(plus.copyProperties(img, ["system:time_start"]))
    assert explicit.get("system:time_start").getInfo() == 1609840800000


def test_element_properties_on_features() -> None:
    f = ee.Feature(None, {"a": 1, "b": "x"})
    assert f.get("a").getInfo() == 1
    assert f.set("c", [1, 2]).toDictionary().getInfo() == {"a": 1, "b": "x", "c": [1, 2]}
    assert sorted(f.propertyNames().getInfo()) == ["a", "b"]
    assert f.setMulti({"a": 5, "d": 6}).toDictionary(["a", "d"]).getInfo() == {"a": 5, "d": 6}
    g = ee.Feature(None, {"z": 0}).copyProperties(f, ["b"])
    assert ee.Feature(g).toDictionary().getInfo() == {"z": 0, "b": "x"}


# -- Geometry and Feature -----------------------------------------------------------------------
def _utm(geojson: dict[str, Any], crs: str = "EPSG:32631") -> shapely.Geometry:
    return shapely.geometry.shape(transform_geom("EPSG:4326", crs, geojson))


def test_geometry_constructors_get_info() -> None:
    assert ee.Geometry.Point([1.5, 2.5]).getInfo() == {"type": "Point", "coordinates": [1.5, 2.5]}
    rect = ee.Geometry.Rectangle([0, 0, 2, 1]).getInfo()
    assert rect["type"] == "Polygon"
    assert shapely.geometry.shape(rect).equals(shapely.box(0, 0, 2, 1))
    ring = [[0, 0], [3, 0], [3, 2], [0, 0]]
    poly = ee.Geometry.Polygon([ring]).getInfo()
    assert poly == {"type": "Polygon", "coordinates": [ring]}
    line = ee.Geometry.LineString([[0, 0], [1, 1]]).getInfo()
    assert line == {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    utm = ee.Geometry.Point([360000, 5480000], "EPSG:32631").getInfo()
    assert utm["coordinates"] == [360000, 5480000]
    assert utm["crs"] == {"type": "name", "properties": {"name": "EPSG:32631"}}
    assert ee.Geometry.Polygon([ring]).type().getInfo() == "Polygon"
    assert ee.Geometry.Polygon([ring]).coordinates().getInfo() == [ring]


def test_geometry_bounds_and_centroid() -> None:
    tri = ee.Geometry.Polygon([[[0, 0], [4, 0], [1, 3], [0, 0]]])
    assert shapely.geometry.shape(tri.bounds().getInfo()).equals(shapely.box(0, 0, 4, 3))
    cen = tri.centroid().getInfo()
    ref = shapely.Polygon([(0, 0), (4, 0), (1, 3)]).centroid
    assert cen["type"] == "Point"
    assert cen["coordinates"] == pytest.approx([ref.x, ref.y])
    # a projected geometry: the bounds and the centroid come back in lon/lat unless asked
    rect = ee.Geometry.Rectangle([360010, 5479910, 360050, 5479970], "EPSG:32631", False)
    centre = rect.centroid().getInfo()
    assert "crs" not in centre
    back = transform_geom("EPSG:32631", "EPSG:4326", {"type": "Point", "coordinates": [360030, 5479940]})
    assert centre["coordinates"] == pytest.approx(back["coordinates"], abs=1e-9)
    same = rect.bounds(1, "EPSG:32631").getInfo()
    assert shapely.geometry.shape(same).equals(shapely.box(360010, 5479910, 360050, 5479970))


def test_geometry_area_vs_utm() -> None:
    coords = [1.0, 49.0, 1.01, 49.01]
    rect = ee.Geometry.Rectangle(coords)
    ref = _utm(shapely.geometry.mapping(shapely.box(*coords))).area  # m², UTM 31N
    assert rect.area().getInfo() == pytest.approx(ref, rel=1e-3)
    assert rect.area(1, "EPSG:32631").getInfo() == pytest.approx(ref, rel=1e-9)  # in proj units
    projected = ee.Geometry.Rectangle([360010, 5479910, 360050, 5479970], "EPSG:32631", False)
    assert projected.area().getInfo() == pytest.approx(40 * 60, rel=1e-3)
    assert ee.Geometry.Point([1, 49]).area().getInfo() == 0
    ref_perimeter = _utm(shapely.geometry.mapping(shapely.box(*coords))).length
    assert rect.perimeter().getInfo() == pytest.approx(ref_perimeter, rel=1e-3)


def test_geometry_buffer() -> None:
    lon, lat, r = 1.07, 49.46, 100.0
    buffered = ee.Geometry.Point([lon, lat]).buffer(r)
    info = buffered.getInfo()
    assert info["type"] == "Polygon"
    shape = _utm(info)
    centre = _utm({"type": "Point", "coordinates": [lon, lat]})
    assert shape.area == pytest.approx(math.pi * r * r, rel=0.01)
    ring = np.asarray(shape.exterior.coords)
    dist = np.hypot(ring[:, 0] - centre.x, ring[:, 1] - centre.y)
    assert dist.max() == pytest.approx(r, rel=2e-3) and dist.min() > r * 0.99
    assert buffered.area().getInfo() == pytest.approx(math.pi * r * r, rel=0.01)
    assert buffered.contains(ee.Geometry.Point([lon, lat])).getInfo() is True


def test_geometry_predicates() -> None:
    unit = ee.Geometry.Rectangle([0, 0, 1, 1])
    assert ee.Geometry.Point([0.5, 0.5]).intersects(unit).getInfo() is True
    assert ee.Geometry.Point([5, 5]).intersects(unit).getInfo() is False
    assert unit.contains(ee.Geometry.Point([0.5, 0.5])).getInfo() is True
    assert ee.Geometry.Point([0.5, 0.5]).containedIn(unit).getInfo() is True
    assert unit.disjoint(ee.Geometry.Rectangle([2, 2, 3, 3])).getInfo() is True
    inter = unit.intersection(ee.Geometry.Rectangle([0.5, 0.5, 2, 2]), 1).getInfo()
    assert shapely.geometry.shape(inter).equals(shapely.box(0.5, 0.5, 1, 1))
    utm = ee.Geometry.Rectangle([360010, 5479910, 360050, 5479970], "EPSG:32631", False)
    inside = transform_geom("EPSG:32631", "EPSG:4326", {"type": "Point", "coordinates": [360020, 5479950]})
    assert utm.intersects(ee.Geometry.Point(inside["coordinates"])).getInfo() is True
    far = ee.Geometry.Point([1.07, 49.46])
    assert ee.Geometry.Point([1.07, 49.461]).distance(far).getInfo() == pytest.approx(111.2, rel=0.01)


def test_feature_and_feature_collection() -> None:
    f = ee.Feature(ee.Geometry.Point([1, 2]), {"a": 1})
    assert f.getInfo() == {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
                           "properties": {"a": 1}}  # fmt: skip
    assert ee.Feature(None, {"a": 1}).getInfo()["geometry"] is None
    assert f.geometry().getInfo() == {"type": "Point", "coordinates": [1, 2]}
    box = ee.Feature(ee.Geometry.Rectangle([1.0, 49.0, 1.01, 49.01]), {"n": 1})
    plain = ee.Geometry.Rectangle([1.0, 49.0, 1.01, 49.01]).area().getInfo()
    assert box.area().getInfo() == pytest.approx(plain)
    assert box.centroid().get("n").getInfo() == 1  # geometry methods of a feature keep properties
    values = [4, 0, 3, 1, 2]
    fc = ee.FeatureCollection([ee.Feature(ee.Geometry.Point([v, v]), {"v": v}) for v in values])
    assert fc.size().getInfo() == len(values)
    assert fc.filter(ee.Filter.gte("v", 2)).aggregate_array("v").getInfo() == [v for v in values if v >= 2]
    assert fc.sort("v").aggregate_array("v").getInfo() == sorted(values)
    inside = fc.filterBounds(ee.Geometry.Rectangle([0.5, 0.5, 3.5, 3.5])).aggregate_array("v")
    assert inside.getInfo() == [v for v in values if 0.5 <= v <= 3.5]
    doubled = fc.map(lambda x: x.set("w", ee.Number(x.get("v")).multiply(2))).aggregate_array("w")
    assert doubled.getInfo() == [2 * v for v in values]
    info = fc.getInfo()
    assert info["type"] == "FeatureCollection"
    assert [feat["id"] for feat in info["features"]] == [str(i) for i in range(len(values))]
    assert ee.FeatureCollection([ee.Geometry.Point([0, 0]), ee.Geometry.Point([1, 1])]).size().getInfo() == 2


# -- Image.reduceRegion -------------------------------------------------------------------------
RECT = (360012.0, 5479907.0, 360057.0, 5479968.0)  # no pixel centre on an edge


def _centres_inside(rect: tuple[float, float, float, float]) -> np.ndarray:
    """Pixels of the native grid whose centre lies strictly inside ``rect``."""
    h, w = SYN_SHAPE
    xs = SYN_TRANSFORM[2] + SYN_TRANSFORM[0] * (np.arange(w) + 0.5)
    ys = SYN_TRANSFORM[5] + SYN_TRANSFORM[4] * (np.arange(h) + 0.5)
    x0, y0, x1, y1 = rect
    return ((ys > y0) & (ys < y1))[:, None] & ((xs > x0) & (xs < x1))[None, :]


@pytest.fixture
def region() -> ee.Geometry:
    return ee.Geometry.Rectangle(list(RECT), SYN_CRS, False)


def _region_values(syn: Synthetic) -> dict[str, np.ndarray]:
    inside = _centres_inside(RECT)
    return {
        "B1": syn.b1[0][inside & syn.mask[0]].astype(np.float64),
        "B2": syn.b2[0][inside & syn.mask[0]].astype(np.float64),
        "QA": syn.qa[0][inside].astype(np.float64),
    }


@pytest.mark.parametrize(
    ("reducer", "ref"),
    [("mean", np.mean), ("sum", np.sum), ("count", len), ("median", np.median)],
)
def test_reduce_region(syn: Synthetic, region: ee.Geometry, reducer: str, ref: Any) -> None:
    img = ee.Image("test/syn_img")
    got = img.reduceRegion(getattr(ee.Reducer, reducer)(), region, 10).getInfo()
    expected = {band: float(ref(vals)) for band, vals in _region_values(syn).items()}
    assert set(got) == set(expected)
    for band, value in expected.items():
        assert got[band] == pytest.approx(value, rel=1e-6), band
    assert _centres_inside(RECT).sum() == 30  # 5 columns x 6 rows


def test_reduce_region_min_max_and_crs(syn: Synthetic, region: ee.Geometry) -> None:
    img = ee.Image("test/syn_img")
    got = img.reduceRegion(ee.Reducer.minMax(), region, 10, SYN_CRS).getInfo()
    for band, vals in _region_values(syn).items():
        assert got[f"{band}_min"] == pytest.approx(vals.min()), band
        assert got[f"{band}_max"] == pytest.approx(vals.max()), band
    # the same region given in lon/lat selects the same pixels
    lonlat = region.transform("EPSG:4326", 0.001)
    count = img.reduceRegion(ee.Reducer.count(), lonlat, 10, SYN_CRS).getInfo()
    assert count == {band: len(vals) for band, vals in _region_values(syn).items()}
    masked = img.select("B1").updateMask(0).reduceRegion(ee.Reducer.mean(), region, 10).getInfo()
    assert masked == {"B1": None}


def test_reduce_region_too_many_pixels(syn: Synthetic, region: ee.Geometry) -> None:
    img = ee.Image("test/syn_img")
    with pytest.raises(ee.EEException, match="Too many pixels"):
        img.reduceRegion(ee.Reducer.mean(), region, 10, maxPixels=5).getInfo()
    best = img.reduceRegion(ee.Reducer.count(), region, 10, maxPixels=5, bestEffort=True).getInfo()
    assert set(best) == {"B1", "B2", "QA"}


# -- bad input ----------------------------------------------------------------------------------
def test_unknown_collection_lists_registered_ids(syn: Synthetic) -> None:
    with pytest.raises(ee.EEException, match="nope/missing") as err:
        ee.ImageCollection("nope/missing").size().getInfo()
    assert "test/syn" in str(err.value)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: ee.Image("test/syn_img").entropy(ee.Kernel.square(1)), "Image.entropy"),
        (lambda: ee.Image("test/syn_img").glcmTexture(), "Image.glcmTexture"),
    ],
)
def test_unimplemented_algorithm_is_named(syn: Synthetic, make: Any, name: str) -> None:
    with pytest.raises(ee.EEException, match=name.replace(".", r"\.")):
        make().bandNames().getInfo()
