"""Serving the demo world under Earth Engine's real collection IDs in the local catalog."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime

import numpy as np
import shapely

from gee_fusion import ids
from gee_fusion.local.catalog import CATALOG, Catalog, CollectionEntry, Loader
from gee_fusion.local.values import Feature, FeatureCollection, Geometry
from gee_fusion.local.world import changes, relief, schedule, sentinel1, sentinel2
from gee_fusion.local.world.config import DEFAULT_WORLD, WorldConfig
from gee_fusion.local.world.products import LabelsSource, WorldCoverSource
from gee_fusion.local.world.reference import ReferenceSource

WORLD_IDS = (
    ids.S2_SR_HARMONIZED,
    ids.S2_SR_LEGACY,
    ids.S2_L1C_HARMONIZED,
    ids.S2_L1C_LEGACY,
    ids.CLOUD_SCORE_PLUS,
    ids.S2_CLOUD_PROBABILITY,
    ids.S1_GRD,
    ids.S1_GRD_FLOAT,
    ids.WORLDCOVER,
    ids.DEMO_LABELS,
    ids.DEMO_REFERENCE,
    ids.DEMO_LABELS_MONTHLY,
    ids.DEMO_CHANGES,
    ids.DEMO_S2_TRUTH,
    ids.SRTM,
)
"""The IDs the demo world serves."""


_F32, _U8 = np.dtype(np.float32), np.dtype(np.uint8)
AUX_BANDS: dict[str, dict[str, sentinel2.BandSpec]] = {
    "csplus": {"cs": ("cs", 10, "mean", _F32), "cs_cdf": ("cs_cdf", 10, "mean", _F32)},
    "prob": {"probability": ("probability", 10, "mean", _U8)},
    "truth": {
        "cloud": ("cloud", 10, "mean", _F32),
        "shadow": ("shadow", 10, "mean", _F32),
        "cirrus": ("cirrus", 10, "mean", _F32),
    },
}
"""Bands of the collections that share the Sentinel-2 acquisitions (same ``system:index``)."""


def _s2_entry(cfg: WorldConfig, kind: str) -> CollectionEntry:
    images = []
    for i, acq in enumerate(schedule.s2_acquisitions()):
        # the deprecated, non-harmonized collections add 1000 to the reflectance DN from
        # processing baseline 04.00 (2022-01-25) on, as the real archive does
        offset = 1000 if kind.endswith("_legacy") and acq.baseline >= "04.00" else 0
        if kind in ("sr", "sr_legacy"):
            src = sentinel2.WorldS2Source(
                cfg, i, sentinel2.sr_bands(), sentinel2.sr_properties(cfg, i), sentinel2.qa60_valid(i), offset
            )
        elif kind in ("l1c", "l1c_legacy"):
            src = sentinel2.WorldS2Source(
                cfg,
                i,
                sentinel2.l1c_bands(),
                sentinel2.l1c_properties(cfg, i),
                sentinel2.qa60_valid(i),
                offset,
                toa=True,
            )
        else:
            src = sentinel2.WorldS2Source(cfg, i, AUX_BANDS[kind], {"system:time_start": acq.millis})
        images.append((acq.index, src))
    return CollectionEntry(tuple(images), {"demo_world_seed": cfg.seed})


def _s1_entry(cfg: WorldConfig, *, linear: bool) -> CollectionEntry:
    images = [
        (acq.index, sentinel1.WorldS1Source(cfg, i, linear=linear, properties=sentinel1.s1_properties(i)))
        for i, acq in enumerate(schedule.s1_acquisitions())
    ]
    return CollectionEntry(tuple(images), {"demo_world_seed": cfg.seed})


def _monthly_labels_entry(cfg: WorldConfig) -> CollectionEntry:
    images = []
    year, month = changes.FIRST_YEAR, 1
    end = schedule.ARCHIVE_END
    while date(year, month, 1) <= end:
        millis = int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
        images.append((f"{year}_{month:02d}", LabelsSource(cfg, millis)))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return CollectionEntry(tuple(images), {"demo_world_seed": cfg.seed})


def _changes_table(cfg: WorldConfig) -> FeatureCollection:
    features = []
    for (x0, y0, x1, y1), row in changes.truth_rows(cfg):
        geometry = Geometry(shapely.box(x0, y0, x1, y1), crs=cfg.crs)
        features.append(Feature(geometry, row, str(row["change_id"])))
    return FeatureCollection(tuple(features), {"demo_world_seed": cfg.seed}, ids.DEMO_CHANGES)


def register_world(
    cfg: WorldConfig = DEFAULT_WORLD, *, catalog: Catalog = CATALOG, replace: bool = False
) -> None:
    """Register the demo world's collections (lazily: nothing is generated until asked).

    Args:
        cfg: The world (seed, centre, size).
        catalog: The catalog to register into.
        replace: Replace assets already registered under the same IDs.
    """
    loaders: dict[str, Loader] = {
        ids.S2_SR_HARMONIZED: functools.partial(_s2_entry, cfg, "sr"),
        ids.S2_SR_LEGACY: functools.partial(_s2_entry, cfg, "sr_legacy"),
        ids.S2_L1C_HARMONIZED: functools.partial(_s2_entry, cfg, "l1c"),
        ids.S2_L1C_LEGACY: functools.partial(_s2_entry, cfg, "l1c_legacy"),
        ids.CLOUD_SCORE_PLUS: functools.partial(_s2_entry, cfg, "csplus"),
        ids.S2_CLOUD_PROBABILITY: functools.partial(_s2_entry, cfg, "prob"),
        ids.DEMO_S2_TRUTH: functools.partial(_s2_entry, cfg, "truth"),
        ids.S1_GRD: functools.partial(_s1_entry, cfg, linear=False),
        ids.S1_GRD_FLOAT: functools.partial(_s1_entry, cfg, linear=True),
        ids.WORLDCOVER: lambda: CollectionEntry((("2021", WorldCoverSource(cfg)),), {}),
        ids.DEMO_LABELS: lambda: LabelsSource(cfg),
        ids.DEMO_REFERENCE: lambda: ReferenceSource(cfg),
        ids.DEMO_LABELS_MONTHLY: functools.partial(_monthly_labels_entry, cfg),
        ids.DEMO_CHANGES: functools.partial(_changes_table, cfg),
        ids.SRTM: lambda: relief.DemSource(cfg),
    }
    for asset_id, loader in loaders.items():
        catalog.register(asset_id, loader, replace=replace)
