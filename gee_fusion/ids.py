"""Every catalog ID gee_fusion reads, defined once.

Earth Engine's own collection and image IDs (served by the local engine's demo world when it
is connected), and the ``local/...`` IDs of the local engine's demo truth and of the real
samples it registers (see ``docs/local_engine.md``).
"""

from __future__ import annotations

S1_GRD = "COPERNICUS/S1_GRD"
"""Sentinel-1 GRD, backscatter in dB."""
S1_GRD_FLOAT = "COPERNICUS/S1_GRD_FLOAT"
"""Sentinel-1 GRD, backscatter in linear power (what speckle filters need)."""
S2_SR_HARMONIZED = "COPERNICUS/S2_SR_HARMONIZED"
"""Sentinel-2 surface reflectance (L2A), harmonized across the processing-baseline change."""
S2_SR_LEGACY = "COPERNICUS/S2_SR"
"""Deprecated Sentinel-2 L2A collection that tutorials still use: not harmonized, so reflectance DN
carry a +1000 offset from processing baseline 04.00 (2022-01-25) on. Prefer S2_SR_HARMONIZED."""
S2_L1C_HARMONIZED = "COPERNICUS/S2_HARMONIZED"
"""Sentinel-2 top-of-atmosphere reflectance (Level-1C), harmonized across the baseline change."""
S2_L1C_LEGACY = "COPERNICUS/S2"
"""Deprecated Sentinel-2 Level-1C collection that tutorials still use: +1000 reflectance DN from
processing baseline 04.00 on, like S2_SR. Prefer S2_L1C_HARMONIZED."""
CLOUD_SCORE_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
"""Cloud Score+ for Sentinel-2 (bands ``cs`` and ``cs_cdf``)."""
S2_CLOUD_PROBABILITY = "COPERNICUS/S2_CLOUD_PROBABILITY"
"""s2cloudless cloud probability (band ``probability``)."""
WORLDCOVER = "ESA/WorldCover/v200"
"""ESA WorldCover 10 m 2021 (band ``Map``)."""
SRTM = "USGS/SRTMGL1_003"
"""SRTM 30 m elevation (band ``elevation``)."""

DEMO_LABELS = "local/demo/LABELS"
"""The demo world's true land cover (MultiSenGE 14-class codes, band ``label``)."""
DEMO_REFERENCE = "local/demo/REFERENCE"
"""The demo world's generalised reference map: the truth of 2021-01-01 with a minimum mapping unit,
displaced boundaries and outdated polygons, like a real land-cover product (bands as LABELS)."""
DEMO_S2_TRUTH = "local/demo/S2_TRUTH"
"""The demo world's atmospheric truth per Sentinel-2 acquisition (cloud, shadow, cirrus opacities)."""
DEMO_LABELS_MONTHLY = "local/demo/LABELS_MONTHLY"
"""The demo world's land-cover truth month by month (planted changes included), bands as LABELS."""
DEMO_CHANGES = "local/demo/CHANGES"
"""The truth of the demo world's planted changes (a table: type, start and end months, classes)."""

SLOVENIA_NDVI = "local/slovenia/S2_NDVI"
"""Real sample: eo-learn's Slovenia NDVI time series with its CLM cloud mask."""
SLOVENIA_LULC = "local/slovenia/LULC"
"""Real sample: the Slovenia land-use/land-cover reference map."""
BIGEARTHNET_S1 = "local/bigearthnet/S1"
"""Real sample: BigEarthNet Sentinel-1 patches."""
BIGEARTHNET_S2 = "local/bigearthnet/S2"
"""Real sample: BigEarthNet Sentinel-2 patches."""
BERLIN_S2_L1C = "local/berlin/S2_L1C"
"""Real sample: a Sentinel-2 L1C scene over Berlin."""
