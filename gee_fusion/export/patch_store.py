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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gee_fusion.errors import DataError
from gee_fusion.io.atomic import atomic_dir

SENSORS: tuple[str, ...] = ("S2", "S1")
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
FORMAT_VERSION = 1
_STATS_SAMPLE = 2_000_000


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


def band_statistics(data: np.ndarray, *, seed: int = 0) -> list[BandStats]:
    """Per-band statistics of (patch, time, band, y, x) data, NaN skipped; quantiles on a
    deterministic sample of at most two million values per band.

    Raises:
        DataError: a band has no finite value.
    """
    out: list[BandStats] = []
    rng = np.random.default_rng(seed)
    for b in range(data.shape[2]):
        values = np.asarray(data[:, :, b], dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise DataError(f"Band {b} has no valid value in the training split: cannot normalise it.")
        sample = values if values.size <= _STATS_SAMPLE else rng.choice(values, _STATS_SAMPLE, replace=False)
        q02, q98 = np.quantile(sample, [0.02, 0.98])
        std = float(values.std())
        out.append(BandStats(float(values.mean()), std if std > 0 else 1.0, float(q02), float(q98)))
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ("gee-fusion", "earthengine-api", "xee", "xarray", "numpy", "zarr")
    found = {}
    for name in names:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:  # pragma: no cover - not installed
            continue
    return found


def write_patch_store(
    path: str | Path,
    *,
    sensors: Mapping[str, SensorPatches],
    labels: np.ndarray,
    crs: str,
    transforms: np.ndarray,
    split: np.ndarray,
    block: np.ndarray,
    classes: Mapping[int, tuple[str, tuple[int, int, int]]],
    label_scheme: str,
    recipe: Mapping[str, Any],
    engine: str,
    prior: np.ndarray | None = None,
) -> Path:
    """Write a patch store (replacing ``path`` only once everything is written).

    Args:
        path: The ``.zarr`` folder.
        sensors: Sensor name (``S2``, ``S1``) to its patches; all share patch count and size.
        labels: (patch, y, x) uint8 class codes, 255 = no label.
        crs: CRS of every patch (one projected CRS per store).
        transforms: (patch, 6) GDAL affine of each patch.
        split: (patch,) 0 train, 1 val, 2 test.
        block: (patch,) spatial block of each patch (the split unit).
        classes: Code -> (name, RGB colour) of the label scheme.
        label_scheme: Name of the code table (e.g. ``multisenge14``).
        recipe: The configuration that produced the patches (stored with its hash).
        engine: ``local`` or ``earthengine``.
        prior: Optional (patch, y, x) uint8 codes of an existing map.

    Raises:
        DataError: shapes disagree, an unknown sensor, or an empty training split.
    """
    if not sensors:
        raise DataError("A patch store needs at least one sensor.")
    n, h, w = labels.shape
    for name, part in sensors.items():
        if name not in SENSORS:
            raise DataError(f"Unknown sensor {name!r}: use one of {SENSORS}.")
        if part.data.shape[0] != n or part.data.shape[3:] != (h, w):
            raise DataError(f"{name} patches {part.data.shape} do not match labels {labels.shape}.")
    if prior is not None and prior.shape != labels.shape:
        raise DataError(f"Prior map {prior.shape} does not match labels {labels.shape}.")
    if transforms.shape != (n, 6) or split.shape != (n,) or block.shape != (n,):
        raise DataError("transforms must be (patch, 6), split and block (patch,).")
    train = split == SPLITS["train"]
    if not train.any():
        raise DataError("The training split is empty: enlarge the area or change the split fractions.")
    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {"patch": np.arange(n), "affine": list("abcdef")}
    stats: dict[str, dict[str, dict[str, float]]] = {}
    for name, part in sensors.items():
        times = np.array([np.datetime64(t.isoformat(), "ns") for t in part.times])
        coords[f"time_{name}"] = times
        coords[f"band_{name}"] = np.array(list(part.bands))
        dims = ("patch", f"time_{name}", f"band_{name}", "y", "x")
        data_vars[name] = (dims, part.data.astype(np.float32, copy=False))
        band_stats = band_statistics(part.data[train])
        stats[name] = {b: vars(s) for b, s in zip(part.bands, band_stats, strict=True)}
    data_vars["labels"] = (("patch", "y", "x"), labels.astype(np.uint8, copy=False))
    if prior is not None:
        data_vars["prior"] = (("patch", "y", "x"), prior.astype(np.uint8, copy=False))
    data_vars["crs"] = ("patch", np.array([crs] * n))
    data_vars["transform"] = (("patch", "affine"), transforms.astype(np.float64))
    data_vars["split"] = ("patch", split.astype(np.int8))
    data_vars["block"] = ("patch", block.astype(np.int32))
    manifest = {
        "format_version": FORMAT_VERSION,
        "engine": engine,
        "versions": _versions(),
        "recipe": dict(recipe),
        "recipe_hash": config_hash(recipe),
        "created": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
    attrs = {
        "classes": json.dumps({str(k): {"name": v[0], "color": list(v[1])} for k, v in classes.items()}),
        "label_scheme": label_scheme,
        "normalisation": json.dumps(stats),
        "manifest": json.dumps(manifest, default=str),
        "splits": json.dumps(SPLITS),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    per_patch = {*sensors, "labels", "prior"} & set(ds.data_vars)  # one chunk per patch
    encoding = {v: {"chunks": ds[v].shape} for v in ds.data_vars if v not in per_patch}
    encoding.update({v: {"chunks": (1, *ds[v].shape[1:])} for v in per_patch})
    with atomic_dir(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(tmp, mode="w", consolidated=False, encoding=encoding)
    return Path(path)


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
    """Open a patch store written by :func:`write_patch_store`.

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
