"""AOI validation: every bad AOI is refused on the client, before any request."""

from __future__ import annotations

import math
from collections.abc import Callable

import ee
import pytest

from gee_fusion.errors import ConfigError
from gee_fusion.recipe import sentinel1, sentinel2, stacks
from gee_fusion.recipe.aoi import MAX_AOI_KM2, validate_aoi

ENTRY_POINTS: dict[str, Callable[[object], object]] = {
    "s1_collection": lambda aoi: sentinel1.s1_collection(aoi, "2021-01-01", "2021-02-01"),  # type: ignore[arg-type]
    "s2_collection": lambda aoi: sentinel2.s2_collection(aoi, "2021-01-01", "2021-02-01"),  # type: ignore[arg-type]
    "fusion20_stack": lambda aoi: stacks.fusion20_stack(aoi, year=2021),  # type: ignore[arg-type]
}

BAD: dict[str, tuple[Callable[[], object], str]] = {
    "not a geometry": (lambda: [1.0, 49.0, 1.2, 49.2], "must be an ee.Geometry"),
    "a feature": (lambda: ee.Feature(ee.Geometry.Point([1.1, 49.4])), r"\.geometry\(\)"),
    "empty multipolygon": (lambda: ee.Geometry.MultiPolygon([]), "empty"),
    "empty projected polygon": (lambda: ee.Geometry.Polygon([], "EPSG:32631", False), "empty"),
    "empty multipoint": (lambda: ee.Geometry.MultiPoint([]), "empty"),
    "nan": (lambda: ee.Geometry.Rectangle([1.0, math.nan, 1.2, 49.2]), "non-finite"),
    "infinite, projected": (
        lambda: ee.Geometry.Point([math.inf, 5480000.0], "EPSG:32631"),
        "non-finite",
    ),
    "latitude > 90": (lambda: ee.Geometry.Rectangle([1.0, 49.0, 1.2, 91.0]), "latitude"),
    "longitude < -180": (lambda: ee.Geometry.Point([-181.0, 10.0]), "longitude"),
    "metres without a CRS": (lambda: ee.Geometry.Rectangle([356220, 5472120, 358220, 5474120]), "CRS"),
    "geodesic flag, metres": (
        lambda: ee.Geometry.Rectangle([356220, 5472120, 358220, 5474120], None, False),
        "longitude",
    ),
    "zero-width rectangle": (lambda: ee.Geometry.Rectangle([1.0, 49.0, 1.0, 49.2]), "degenerate"),
    "collinear polygon": (
        lambda: ee.Geometry.Polygon([[[1.0, 49.0], [1.1, 49.1], [1.2, 49.2], [1.0, 49.0]]]),
        "degenerate",
    ),
    "zero-area projected polygon": (
        lambda: ee.Geometry.Polygon(
            [[[356220, 5472120], [358220, 5472120], [357220, 5472120]]], "EPSG:32631", False
        ),
        "degenerate",
    ),
    "continent-sized": (lambda: ee.Geometry.Rectangle([-10.0, 35.0, 30.0, 60.0]), "split it into tiles"),
    "malformed position": (
        lambda: ee.Geometry.Polygon([[[1.0], [2.0, 3.0], [3.0, 4.0]]], "EPSG:32631", False),
        "malformed",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_refuse_bad_aois(entry: str, case: str) -> None:
    build, message = BAD[case]
    aoi = build()  # earthengine-api accepts each of these on the client
    with pytest.raises(ConfigError, match=message):
        ENTRY_POINTS[entry](aoi)


GOOD: dict[str, Callable[[], ee.Geometry]] = {
    "lon/lat rectangle": lambda: ee.Geometry.Rectangle([1.0, 49.38, 1.2, 49.5]),
    "UTM rectangle": lambda: ee.Geometry.Rectangle([356220, 5472120, 358220, 5474120], "EPSG:32631", False),
    "point": lambda: ee.Geometry.Point([1.1, 49.44]),
    "open polygon ring": lambda: ee.Geometry.Polygon([[[1.0, 49.4], [1.2, 49.4], [1.1, 49.5]]]),
    "multipolygon": lambda: ee.Geometry.MultiPolygon(
        [[[[1.0, 49.4], [1.1, 49.4], [1.1, 49.5]]], [[[1.2, 49.4], [1.3, 49.4], [1.3, 49.5]]]]
    ),
    "polygon with a hole": lambda: ee.Geometry.Polygon(
        [[[1.0, 49.4], [1.2, 49.4], [1.2, 49.5], [1.0, 49.5]], [[1.05, 49.42], [1.1, 49.42], [1.1, 49.45]]]
    ),
    "computed on the server": lambda: ee.Geometry.Point([1.1, 49.44]).buffer(500),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_aois_pass_unchanged(case: str) -> None:
    aoi = GOOD[case]()
    assert validate_aoi(aoi) is aoi
    assert sentinel1.s1_collection(aoi, "2021-01-01", "2021-02-01") is not None


def test_area_limit_uses_the_sphere() -> None:
    # a 1 x 1 degree cell at the equator is about 12,364 km2 (111.32 km x 111.07 km)
    cell = ee.Geometry.Rectangle([0.0, 0.0, 1.0, 1.0])
    validate_aoi(cell, max_area_km2=12_400)
    with pytest.raises(ConfigError, match="12,3"):
        validate_aoi(cell, max_area_km2=12_300)
    # the same cell at 60 N is half as large
    validate_aoi(ee.Geometry.Rectangle([0.0, 60.0, 1.0, 61.0]), max_area_km2=6_300)
    # projected: 2 km x 2 km in UTM
    utm = ee.Geometry.Rectangle([356220, 5472120, 358220, 5474120], "EPSG:32631", False)
    validate_aoi(utm, max_area_km2=4.0)
    with pytest.raises(ConfigError):
        validate_aoi(utm, max_area_km2=3.99)
    assert MAX_AOI_KM2 >= 1_000_000  # country scale is allowed by default
