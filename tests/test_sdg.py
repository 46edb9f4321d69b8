"""SDG 11.3.1 (LCRPGR) against the UN-Habitat formulas written out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gee_fusion.errors import ConfigError, DataError
from gee_fusion.monitoring.sdg import district_indicators, grid_districts, lcrpgr, read_population


def test_the_ratio_follows_the_metadata_formulas() -> None:
    r = lcrpgr("city", built_t0=4.0e6, built_t1=4.4e6, pop_t0=100_000, pop_t1=102_000, years=2)
    assert r.lcr == pytest.approx(math.log(1.1) / 2) and r.pgr == pytest.approx(math.log(1.02) / 2)
    assert r.ratio == pytest.approx(math.log(1.1) / math.log(1.02))  # ~4.8: sprawl
    assert r.built_per_capita_t0 == pytest.approx(40.0) and r.built_per_capita_t1 == pytest.approx(
        4.4e6 / 102_000
    )
    assert lcrpgr("still", built_t0=1, built_t1=2, pop_t0=5, pop_t1=5, years=1).ratio is None
    with pytest.raises(DataError, match="must be positive"):
        lcrpgr("empty", built_t0=0, built_t1=2, pop_t0=5, pop_t1=6, years=1)
    with pytest.raises(DataError, match="period"):
        lcrpgr("x", built_t0=1, built_t1=2, pop_t0=5, pop_t1=6, years=0)


def test_districts_from_a_grid_and_a_population_table(tmp_path: Path) -> None:
    ids, names = grid_districts((4, 6), 3)
    assert names == ["r0c0", "r0c1", "r1c0", "r1c1"] and ids[3, 5] == 3
    built0 = np.zeros((4, 6), bool)
    built0[:2, :2] = True  # r0c0: 4 px
    built1 = built0.copy()
    built1[2, :2] = True  # r0c0: 6 px (rows 0-2)
    table = tmp_path / "pop.csv"
    table.write_text("district,year,population\nr0c0,2021,1000\nr0c0,2023,1100\nr1c1,2021,50\n")
    population = read_population(table)
    rows = district_indicators(built0, built1, ids, names, population, year_t0=2021, year_t1=2023,
                               pixel_area_m2=100.0)  # fmt: skip
    assert [r.district for r in rows] == ["r0c0"]
    assert rows[0].built_t0_m2 == 400 and rows[0].built_t1_m2 == 600
    assert rows[0].ratio == pytest.approx(math.log(1.5) / math.log(1.1))
    with pytest.raises(DataError, match="No district"):
        district_indicators(
            built0, built1, ids, names, population, year_t0=2020, year_t1=2023, pixel_area_m2=1
        )
    bad = tmp_path / "bad.csv"
    bad.write_text("name,year,pop\n")
    with pytest.raises(ConfigError, match="missing column"):
        read_population(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_population(tmp_path / "none.csv")


def test_user_district_polygons_are_rasterised_on_the_grid(tmp_path: Path) -> None:
    import json

    from pyproj import Transformer

    from gee_fusion.grid import PixelGrid
    from gee_fusion.monitoring.sdg import polygon_districts

    grid = PixelGrid("EPSG:32631", (10.0, 0.0, 360000.0, 0.0, -10.0, 5480000.0), 40, 30)
    to_lonlat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)

    def square(x0: float, y0: float, x1: float, y1: float) -> dict:
        ring = [
            list(to_lonlat.transform(x, y)) for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        ]
        return {"type": "Polygon", "coordinates": [ring]}

    west = {
        "type": "Feature",
        "properties": {"quartier": "west"},
        "geometry": square(360000, 5479700, 360200, 5480000),
    }
    east = {
        "type": "Feature",
        "properties": {"quartier": "east"},
        "geometry": square(360200, 5479700, 360400, 5480000),
    }
    path = tmp_path / "districts.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [west, east]}))
    ids, names = polygon_districts(path, grid, name_property="quartier")
    assert names == ["west", "east"]
    assert (ids == 0).sum() == 20 * 30 and (ids == 1).sum() == 20 * 30 and (ids == -1).sum() == 0
    built = np.zeros(grid.shape, bool)
    built[:, :5] = True
    grown = built.copy()
    grown[:, 25:30] = True
    population = {("west", 2021): 100.0, ("west", 2023): 110.0, ("east", 2021): 50.0, ("east", 2023): 60.0}
    rows = district_indicators(
        built, grown, ids, names, population, year_t0=2021, year_t1=2023, pixel_area_m2=100.0
    )
    assert [r.district for r in rows] == ["west"]  # east had no built-up area at the start
    with pytest.raises(ConfigError, match="no property 'name'"):
        polygon_districts(path, grid)
    far = {"type": "FeatureCollection", "features": [{**west, "geometry": square(0, 0, 100, 100)}]}
    path.write_text(json.dumps(far))
    with pytest.raises(ConfigError, match="overlaps the monitored area"):
        polygon_districts(path, grid, name_property="quartier")
    with pytest.raises(ConfigError, match="not found"):
        polygon_districts(tmp_path / "none.geojson", grid)
