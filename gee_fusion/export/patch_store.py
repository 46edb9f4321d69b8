"""The patch store: the Zarr layout that carries exported patches to the local deep stage.

Layout (one Zarr group, written atomically):

* ``S2`` ``(patch, time_S2, band_S2, y, x)`` float32 and ``S1`` likewise (NaN = no valid
  observation); coordinates ``time_<s>`` (month starts, ``datetime64[ns]``) and ``band_<s>``.
* ``labels`` ``(patch, y, x)`` uint8 class codes, 255 = no label; optional ``prior``
  ``(patch, y, x)`` uint8 codes of an existing map (e.g. ESA WorldCover).
* ``crs`` ``(patch,)`` and ``transform`` ``(patch, affine)`` (GDAL order a, b, c, d, e, f),
  ``split`` ``(patch,)`` (0 train, 1 val, 2 test) and ``block`` ``(patch,)`` (spatial block id).
* attributes: ``classes`` (code -> name, colour), ``label_scheme``, ``normalisation`` (per sensor
  and band: mean, std, q02, q98 over the TRAINING split only), ``manifest`` (engine, versions,
  recipe config and its hash, creation time).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gee_fusion.errors import DataError
from gee_fusion.export.blocks import SPLITS

SENSORS: tuple[str, ...] = ("S2", "S1")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SensorPatches:
    """The patches of one sensor: ``data`` (patch, time, band, y, x), its month starts and bands."""

    data: np.ndarray
    times: Sequence[date]
    bands: Sequence[str]

    def __post_init__(self) -> None:
        if self.data.ndim != 5:
            raise DataError(f"Sensor patches must be (patch, time, band, y, x), got shape {self.data.shape}.")
        if self.data.shape[1] != len(self.times) or self.data.shape[2] != len(self.bands):
            raise DataError(
                f"Sensor patches of shape {self.data.shape} do not match {len(self.times)} times and "
                f"{len(self.bands)} bands."
            )


@dataclass(frozen=True)
class BandStats:
    """Normalisation statistics of one band (training split, all times and pixels)."""

    mean: float
    std: float
    q02: float
    q98: float


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable recipe configuration."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    """Versions of the packages that wrote a store (recorded in its manifest)."""
    import importlib.metadata as md

    names = ("gee-fusion", "earthengine-api", "xee", "xarray", "numpy", "zarr")
    found = {}
    for name in names:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:  # pragma: no cover - not installed
            continue
    return found


@dataclass
class PatchStore:
    """A read-only view of a patch store (lazy: arrays are read when asked for)."""

    path: Path
    ds: xr.Dataset = field(repr=False)

    @cached_property
    def sensors(self) -> tuple[str, ...]:
        """Sensors present, in the canonical order."""
        return tuple(s for s in SENSORS if s in self.ds.data_vars)

    def bands(self, sensor: str) -> list[str]:
        """Band names of ``sensor``."""
        self._require(sensor)
        return [str(b) for b in self.ds[f"band_{sensor}"].values]

    def times(self, sensor: str) -> list[date]:
        """Month starts of ``sensor``'s dates."""
        self._require(sensor)
        return [
            datetime.fromisoformat(str(t)[:10]).date() for t in self.ds[f"time_{sensor}"].values.astype(str)
        ]

    @cached_property
    def classes(self) -> dict[int, tuple[str, tuple[int, int, int]]]:
        """Code -> (name, colour) of the stored label codes."""
        raw = json.loads(self.ds.attrs["classes"])
        return {
            int(k): (v["name"], (int(v["color"][0]), int(v["color"][1]), int(v["color"][2])))
            for k, v in raw.items()
        }

    @cached_property
    def normalisation(self) -> dict[str, dict[str, BandStats]]:
        """Sensor -> band -> training-split statistics."""
        raw = json.loads(self.ds.attrs["normalisation"])
        return {s: {b: BandStats(**v) for b, v in bands.items()} for s, bands in raw.items()}

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """Provenance: engine, versions, recipe and hash, creation time."""
        return dict(json.loads(self.ds.attrs["manifest"]))

    @cached_property
    def split(self) -> np.ndarray:
        """(patch,) split codes (0 train, 1 val, 2 test)."""
        return self.read("split")

    def read(self, name: str, patches: np.ndarray | None = None) -> np.ndarray:
        """The values of array ``name`` (of ``patches`` only, if given), read from disk now.

        Raises:
            DataError: the array is missing, or a chunk of it cannot be read or decoded (a damaged
                store: rebuild it).
        """
        if name not in self.ds.data_vars:
            raise DataError(f"The patch store {self.path} has no {name!r} array.")
        var = self.ds[name] if patches is None else self.ds[name].isel(patch=patches)
        try:
            return np.asarray(var.values)
        except Exception as exc:  # codecs and zarr raise several unrelated types on damaged chunks
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"The patch store {self.path} is damaged: a chunk of {name!r} cannot be read ({reason}). "
                "Rebuild it with `gee-fusion patches`."
            ) from exc

    @property
    def patch_shape(self) -> tuple[int, int]:
        """(height, width) of every patch."""
        return int(self.ds.sizes["y"]), int(self.ds.sizes["x"])

    @property
    def has_prior(self) -> bool:
        """Whether an existing map is stored as ``prior``."""
        return "prior" in self.ds.data_vars

    def indices(self, split: str) -> np.ndarray:
        """Patch indices of a split (``train``, ``val`` or ``test``)."""
        if split not in SPLITS:
            raise DataError(f"Unknown split {split!r}: use one of {tuple(SPLITS)}.")
        return np.flatnonzero(self.split == SPLITS[split])

    def _require(self, sensor: str) -> None:
        if sensor not in self.sensors:
            raise DataError(
                f"The patch store {self.path} has no {sensor} patches (it holds {self.sensors}): "
                "export them or drop the sensor from the experiment."
            )


def open_patch_store(path: str | Path) -> PatchStore:
    """Open a patch store (written by :mod:`gee_fusion.export.patch_writer`).

    Raises:
        DataError: the folder is missing or is not a patch store of a supported version.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"No patch store at {path}: build it first (`gee-fusion patches CONFIG`).")
    try:
        ds = xr.open_zarr(path, consolidated=False)
    except Exception as exc:  # zarr raises several unrelated types for a non-store folder
        raise DataError(f"{path} is not a readable Zarr patch store: {exc}") from exc
    missing = [k for k in ("labels", "split", "transform") if k not in ds.data_vars]
    missing += [k for k in ("classes", "manifest", "normalisation") if k not in ds.attrs]
    if missing:
        raise DataError(f"{path} is not a gee_fusion patch store (missing {', '.join(missing)}).")
    version = json.loads(ds.attrs["manifest"]).get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(f"Patch store format {version} at {path}; this gee_fusion reads {FORMAT_VERSION}.")
    return PatchStore(path=path, ds=ds)
