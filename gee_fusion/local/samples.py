"""The real Sentinel samples of ``../shared/data/real`` registered in the local catalog.

- ``local/slovenia/S2_NDVI``: the eo-learn Slovenia series (68 dates, bands NDVI, CLP, CLM;
  pixels where IS_DATA is 0 are masked), native grid EPSG:32633 from ``bbox.geojson``.
- ``local/slovenia/LULC``: its land-use labels (band ``LULC``, 0 = no data masked) and ``DEM``.

Attribution: eo-learn example data, Sinergise, MIT License (see PROVENANCE.md there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from affine import Affine

from gee_fusion.local.catalog import CATALOG, Catalog, register_numpy_collection, register_numpy_image

SLOVENIA_NDVI = "local/slovenia/S2_NDVI"
SLOVENIA_LULC = "local/slovenia/LULC"


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
        SLOVENIA_NDVI,
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
        SLOVENIA_LULC,
        {"LULC": lulc, "DEM": dem},
        masks={"LULC": lulc > 0},
        crs=crs,
        transform=transform,
        properties={"SOURCE": "Slovenian land-use registry via eo-learn (MIT)"},
        catalog=catalog,
    )
    return True


def register_real_samples(*, catalog: Catalog = CATALOG) -> list[str]:
    """Register every real sample found; returns the registered IDs."""
    root = real_data_dir()
    if root is None:
        return []
    out = []
    if register_slovenia(root, catalog=catalog):
        out += [SLOVENIA_NDVI, SLOVENIA_LULC]
    return out
