"""SDG indicator 11.3.1: the ratio of land consumption rate to population growth rate (LCRPGR).

Definitions of the UN-Habitat metadata for indicator 11.3.1 (SDG indicator metadata repository,
"Ratio of land consumption rate to population growth rate"), for a period of ``y`` years from
``t`` to ``t + n``:

- land consumption rate ``LCR = ln(Urb_{t+n} / Urb_t) / y``, with ``Urb`` the built-up area;
- population growth rate ``PGR = ln(Pop_{t+n} / Pop_t) / y``;
- ``LCRPGR = LCR / PGR``; above 1 the built-up area grows faster than the population (the city
  sprawls), below 1 it densifies;
- the metadata's secondary indicator, built-up area per capita ``Urb / Pop`` (m2 per person), at
  both dates.

Built-up areas come from the monitoring job's class maps (gee_fusion's 6 classes: urban fabric,
specialized areas and networks); populations from a user table (on Earth Engine,
``JRC/GHSL/P2023A/GHS_POP`` can give them). Districts are a user's polygons rasterised on the
area's grid, or square cells of a regular grid.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gee_fusion.errors import ConfigError, DataError
from gee_fusion.grid import PixelGrid
from gee_fusion.io.atomic import atomic_path
from gee_fusion.recipe.composite import month_index


@dataclass(frozen=True)
class Lcrpgr:
    """Indicator 11.3.1 for one district and period."""

    district: str
    years: float
    built_t0_m2: float
    built_t1_m2: float
    population_t0: float
    population_t1: float
    lcr: float
    pgr: float
    ratio: float | None  # None when the population did not change (PGR = 0)
    built_per_capita_t0: float
    built_per_capita_t1: float


def lcrpgr(
    district: str, *, built_t0: float, built_t1: float, pop_t0: float, pop_t1: float, years: float
) -> Lcrpgr:
    """The indicator from built-up areas (m2) and populations at two dates ``years`` apart.

    Raises:
        DataError: A non-positive area, population or period (the logarithms are undefined).
    """
    if years <= 0:
        raise DataError(f"District {district}: the period must be positive, got {years} years.")
    if min(built_t0, built_t1) <= 0 or min(pop_t0, pop_t1) <= 0:
        raise DataError(
            f"District {district}: built-up areas ({built_t0}, {built_t1} m2) and populations "
            f"({pop_t0}, {pop_t1}) must be positive for LCRPGR (a district with no built-up area or "
            "no inhabitant has no rate)."
        )
    lcr = math.log(built_t1 / built_t0) / years
    pgr = math.log(pop_t1 / pop_t0) / years
    return Lcrpgr(
        district, years, built_t0, built_t1, pop_t0, pop_t1, lcr, pgr,
        lcr / pgr if pgr != 0 else None, built_t0 / pop_t0, built_t1 / pop_t1,
    )  # fmt: skip


def grid_districts(shape: tuple[int, int], cell_px: int) -> tuple[np.ndarray, list[str]]:
    """Square districts of ``cell_px`` pixels: an id raster (0-based) and their names ``r<row>c<col>``."""
    if cell_px < 1:
        raise ConfigError(f"District cells must be at least 1 px, got {cell_px}.")
    rows, cols = np.indices(shape)
    n_cols = -(-shape[1] // cell_px)
    ids = (rows // cell_px) * n_cols + cols // cell_px
    names = [f"r{i // n_cols}c{i % n_cols}" for i in range(int(ids.max()) + 1)]
    return ids, names


def polygon_districts(
    path: str | Path, grid: PixelGrid, *, name_property: str = "name"
) -> tuple[np.ndarray, list[str]]:
    """A user's district polygons (GeoJSON FeatureCollection; EPSG:4326 unless it names a ``crs``)
    rasterised on the area's grid (a pixel belongs to the district its centre falls in; later
    features win overlaps): an id raster (0-based, -1 outside every district) and their names.

    Raises:
        ConfigError: A missing or unreadable file, a feature without ``name_property``, or no
            district overlapping the area.
    """
    import json

    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    source = Path(path)
    try:
        data = json.loads(source.read_text())
        features = list(data["features"])
    except FileNotFoundError:
        raise ConfigError(f"District file {source} not found: give a GeoJSON FeatureCollection.") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{source} is not a GeoJSON FeatureCollection ({exc}).") from None
    crs = (data.get("crs") or {}).get("properties", {}).get("name", "EPSG:4326")
    names, shapes = [], []
    for i, feature in enumerate(features):
        props = feature.get("properties") or {}
        if name_property not in props:
            raise ConfigError(
                f"{source}: feature {i} has no property {name_property!r} "
                f"(it has {sorted(props)}); set district_property to the name column."
            )
        names.append(str(props[name_property]))
        shapes.append((transform_geom(crs, grid.crs, feature["geometry"]), len(names)))
    raster = (
        rasterize(shapes, out_shape=grid.shape, transform=grid.affine, fill=0, dtype="int32")
        if shapes else np.zeros(grid.shape, dtype=np.int32)
    )  # fmt: skip
    if not raster.any():
        raise ConfigError(
            f"None of the {len(names)} districts in {source} overlaps the monitored area "
            f"({grid.crs} bounds {tuple(round(b) for b in grid.bounds())}): check their coordinates "
            "and CRS (GeoJSON is longitude/latitude unless it names a crs)."
        )
    return raster.astype(np.int64) - 1, names


def read_population(path: str | Path) -> dict[tuple[str, int], float]:
    """A population table: CSV with columns ``district``, ``year``, ``population``."""
    target = Path(path)
    if not target.is_file():
        raise ConfigError(f"Population table {target} not found: give a CSV with district,year,population.")
    out: dict[tuple[str, int], float] = {}
    with target.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"district", "year", "population"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(
                f"{target}: missing column(s) {sorted(missing)} (need district, year, population)."
            )
        for line, row in enumerate(reader, 2):
            try:
                out[(row["district"], int(row["year"]))] = float(row["population"])
            except ValueError as exc:
                raise ConfigError(f"{target} line {line}: {exc}") from exc
    return out


def district_indicators(
    built_t0: np.ndarray,
    built_t1: np.ndarray,
    districts: np.ndarray,
    names: list[str],
    population: Mapping[tuple[str, int], float],
    *,
    year_t0: int,
    year_t1: int,
    pixel_area_m2: float,
    years: float | None = None,
) -> list[Lcrpgr]:
    """LCRPGR per district from two built-up masks (populations of ``year_t0`` and ``year_t1``;
    the period ``years`` defaults to their difference); districts without both populations are
    skipped, and so are districts with no built-up area at either date."""
    out = []
    for k, name in enumerate(names):
        inside = districts == k
        if not inside.any():
            continue
        a0, a1 = (float(b[inside].sum()) * pixel_area_m2 for b in (built_t0, built_t1))
        p0, p1 = population.get((name, year_t0)), population.get((name, year_t1))
        if p0 is None or p1 is None or a0 <= 0 or a1 <= 0:
            continue
        span = float(year_t1 - year_t0) if years is None else years
        out.append(lcrpgr(name, built_t0=a0, built_t1=a1, pop_t0=p0, pop_t1=p1, years=span))
    if not out:
        raise DataError(
            "No district has a built-up area and a population at both dates: check the district "
            f"names of the population table (first ones expected: {names[:3]}) and its years "
            f"({year_t0}, {year_t1})."
        )
    return out


class SdgSettings(BaseModel):
    """SDG 11.3.1 per district between the first and the last month monitored."""

    model_config = ConfigDict(extra="forbid")

    population_csv: Path = Field(description="CSV with district, year, population.")
    district_km: float = Field(1.0, gt=0, description="Side of the square districts (a regular grid).")
    districts: Path | None = Field(
        None,
        description="GeoJSON district polygons (instead of the square grid); names from district_property.",
    )
    district_property: str = Field("name", description="The districts' name property (matches the table).")


SDG_COLUMNS = (
    "district", "from", "to", "built_from_m2", "built_to_m2", "population_from", "population_to",
    "lcr", "pgr", "lcrpgr", "built_m2_per_capita_from", "built_m2_per_capita_to",
)  # fmt: skip


def write_sdg_table(
    sdg: SdgSettings, path: Path, built: np.ndarray, months: list[date], grid: PixelGrid
) -> None:
    """SDG 11.3.1 per district (the user's polygons, or squares) between the first and the last month
    (``sdg_11_3_1.csv``)."""
    years = (month_index(months[-1]) - month_index(months[0])) / 12.0
    if years <= 0:
        return
    if sdg.districts is not None:
        ids, names = polygon_districts(sdg.districts, grid, name_property=sdg.district_property)
    else:
        cell = max(1, round(sdg.district_km * 1000 / abs(grid.transform[0])))
        ids, names = grid_districts(grid.shape, cell)
    pixel_area = abs(grid.transform[0] * grid.transform[4])
    rows = district_indicators(
        built[0], built[-1], ids, names, read_population(sdg.population_csv),
        year_t0=months[0].year, year_t1=months[-1].year, pixel_area_m2=pixel_area, years=years,
    )  # fmt: skip
    span = (f"{months[0]:%Y-%m}", f"{months[-1]:%Y-%m}")
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SDG_COLUMNS)
        for r in rows:
            ratio = "" if r.ratio is None else f"{r.ratio:.3f}"
            w.writerow([r.district, *span, r.built_t0_m2, r.built_t1_m2, r.population_t0, r.population_t1,
                        f"{r.lcr:.5f}", f"{r.pgr:.5f}", ratio, f"{r.built_per_capita_t0:.1f}",
                        f"{r.built_per_capita_t1:.1f}"])  # fmt: skip
