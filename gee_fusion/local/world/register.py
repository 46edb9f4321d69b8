"""Serving the demo world under Earth Engine's real collection IDs in the local catalog."""

from __future__ import annotations

import functools

import numpy as np

from gee_fusion.local.catalog import CATALOG, Catalog, CollectionEntry, Loader
from gee_fusion.local.world import relief, schedule, sentinel1, sentinel2
from gee_fusion.local.world.config import DEFAULT_WORLD, WorldConfig
from gee_fusion.local.world.products import LabelsSource, WorldCoverSource

S2_SR = "COPERNICUS/S2_SR_HARMONIZED"
CS_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
S2_CLOUD_PROB = "COPERNICUS/S2_CLOUD_PROBABILITY"
S1_GRD = "COPERNICUS/S1_GRD"
S1_GRD_FLOAT = "COPERNICUS/S1_GRD_FLOAT"
WORLDCOVER = "ESA/WorldCover/v200"
LABELS = "local/demo/LABELS"
S2_TRUTH = "local/demo/S2_TRUTH"
"""Atmospheric truth per S2 acquisition (``cloud``, ``shadow``, ``cirrus`` opacities)."""
SRTM = "USGS/SRTMGL1_003"
"""The DEM (an image, band ``elevation``, int16 metres, EPSG:4326 at 1 arc-second)."""

WORLD_IDS = (S2_SR, CS_PLUS, S2_CLOUD_PROB, S1_GRD, S1_GRD_FLOAT, WORLDCOVER, LABELS, S2_TRUTH, SRTM)


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
        if kind == "sr":
            src = sentinel2.WorldS2Source(
                cfg, i, sentinel2.sr_bands(), sentinel2.sr_properties(cfg, i), sentinel2.qa60_valid(i)
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
        S2_SR: functools.partial(_s2_entry, cfg, "sr"),
        CS_PLUS: functools.partial(_s2_entry, cfg, "csplus"),
        S2_CLOUD_PROB: functools.partial(_s2_entry, cfg, "prob"),
        S2_TRUTH: functools.partial(_s2_entry, cfg, "truth"),
        S1_GRD: functools.partial(_s1_entry, cfg, linear=False),
        S1_GRD_FLOAT: functools.partial(_s1_entry, cfg, linear=True),
        WORLDCOVER: lambda: CollectionEntry((("2021", WorldCoverSource(cfg)),), {}),
        LABELS: lambda: LabelsSource(cfg),
        SRTM: lambda: relief.DemSource(cfg),
    }
    for asset_id, loader in loaders.items():
        catalog.register(asset_id, loader, replace=replace)
