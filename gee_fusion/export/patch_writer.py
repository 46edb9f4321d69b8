"""Writing a patch store (layout: :mod:`gee_fusion.export.patch_store`) patch row by patch row.

:func:`patch_store_writer` creates the store's arrays in a temporary folder beside the target,
takes the patches in consecutive runs (``writer.write(start, ...)``), accumulates the training
split's normalisation statistics as they pass, and publishes the store by a rename when the
``with`` block ends cleanly. Memory holds one run of patches, whatever the number of patches.
:func:`write_patch_store` writes patches already in memory the same way (one run).

Statistics: mean and standard deviation are exact (Chan's pairwise update in float64, NaN
skipped); the 2nd and 98th percentiles come from a seeded sample of at most two million values
per band (every value when there are fewer).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from gee_fusion.errors import DataError
from gee_fusion.export.blocks import SPLITS
from gee_fusion.export.patch_store import (
    FORMAT_VERSION,
    SENSORS,
    BandStats,
    SensorPatches,
    config_hash,
    package_versions,
)
from gee_fusion.io.atomic import atomic_dir

STATS_SAMPLE = 2_000_000
"""Largest sample per band for the normalisation percentiles."""
Layout = Mapping[str, tuple[Sequence[date], Sequence[str]]]
"""Sensor -> (month starts, band names)."""


class _BandAccumulator:
    """Running mean / variance of every band (Chan et al.) and a seeded sample for percentiles."""

    def __init__(self, n_bands: int, expected_values: int, seed: int) -> None:
        self.count = np.zeros(n_bands)
        self.mean = np.zeros(n_bands)
        self.m2 = np.zeros(n_bands)
        self.keep = min(1.0, STATS_SAMPLE / max(expected_values, 1))
        self.samples: list[list[np.ndarray]] = [[] for _ in range(n_bands)]
        self.rng = np.random.default_rng(seed)

    def add(self, data: np.ndarray) -> None:
        """Add (patch, time, band, y, x) values."""
        for b in range(data.shape[2]):
            values = np.asarray(data[:, :, b], dtype=np.float64).ravel()
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            n, mean = values.size, float(values.mean())
            m2 = float(((values - mean) ** 2).sum())
            total = self.count[b] + n
            delta = mean - self.mean[b]
            self.mean[b] += delta * n / total
            self.m2[b] += m2 + delta**2 * self.count[b] * n / total
            self.count[b] = total
            picked = values if self.keep >= 1.0 else values[self.rng.random(values.size) < self.keep]
            self.samples[b].append(picked)

    def result(self, bands: Sequence[str], sensor: str) -> dict[str, BandStats]:
        out = {}
        for b, name in enumerate(bands):
            if self.count[b] == 0:
                raise DataError(
                    f"{sensor} band {name} has no valid value in the training split: cannot normalise it."
                )
            sample = np.concatenate(self.samples[b]) if self.samples[b] else np.array([self.mean[b]])
            q02, q98 = np.quantile(sample, [0.02, 0.98])
            std = float(np.sqrt(self.m2[b] / self.count[b]))
            out[name] = BandStats(float(self.mean[b]), std if std > 0 else 1.0, float(q02), float(q98))
        return out


class PatchStoreWriter:
    """Takes runs of patches for a store being written (see :func:`patch_store_writer`)."""

    def __init__(self, folder: Path, *, layout: Layout, split: np.ndarray, patch_shape: tuple[int, int],
                 prior: bool, seed: int) -> None:  # fmt: skip
        self.folder = folder
        self.layout = layout
        self.split = split
        self.prior = prior
        self.written = np.zeros(len(split), dtype=bool)
        n_train = int((split == SPLITS["train"]).sum())
        h, w = patch_shape
        self.stats = {
            name: _BandAccumulator(len(bands), n_train * len(times) * h * w, seed)
            for name, (times, bands) in layout.items()
        }

    def write(
        self,
        start: int,
        *,
        sensors: Mapping[str, np.ndarray],
        labels: np.ndarray,
        prior: np.ndarray | None = None,
    ) -> None:
        """Write patches ``start .. start + len(labels)``: each sensor's (patch, time, band, y, x)
        float32, the (patch, y, x) uint8 labels and, if the store has one, the prior map.

        Raises:
            DataError: a sensor, the prior or a shape does not match the store.
        """
        k = len(labels)
        stop = start + k
        if set(sensors) != set(self.layout) or (prior is not None) != self.prior or stop > len(self.split):
            raise DataError(
                f"Patches {start}..{stop} do not match the store (sensors {sorted(self.layout)}, prior "
                f"{self.prior}, {len(self.split)} patches)."
            )
        data: dict[str, Any] = {"labels": (("patch", "y", "x"), labels.astype(np.uint8, copy=False))}
        if prior is not None:
            data["prior"] = (("patch", "y", "x"), prior.astype(np.uint8, copy=False))
        train = self.split[start:stop] == SPLITS["train"]
        for name, values in sensors.items():
            times, bands = self.layout[name]
            if values.shape[:3] != (k, len(times), len(bands)) or values.shape[3:] != labels.shape[1:]:
                raise DataError(f"{name} patches {values.shape} do not match labels {labels.shape}.")
            dims = ("patch", f"time_{name}", f"band_{name}", "y", "x")
            data[name] = (dims, values.astype(np.float32, copy=False))
            if train.any():
                self.stats[name].add(values[train])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xr.Dataset(data).to_zarr(self.folder, region={"patch": slice(start, stop)}, consolidated=False)
        self.written[start:stop] = True

    def normalisation(self) -> dict[str, dict[str, dict[str, float]]]:
        """Sensor -> band -> statistics of the training patches written."""
        return {
            name: {b: vars(s) for b, s in self.stats[name].result(bands, name).items()}
            for name, (_, bands) in self.layout.items()
        }


@contextlib.contextmanager
def patch_store_writer(
    path: str | Path,
    *,
    layout: Layout,
    patch_shape: tuple[int, int],
    crs: str,
    transforms: np.ndarray,
    split: np.ndarray,
    block: np.ndarray,
    classes: Mapping[int, tuple[str, tuple[int, int, int]]],
    label_scheme: str,
    recipe: Mapping[str, Any],
    engine: str,
    prior: bool = False,
    seed: int = 0,
    split_id: str | None = None,
) -> Iterator[PatchStoreWriter]:
    """Create a patch store at ``path``, yield a writer for its patches, publish it at the end.

    Args:
        path: The ``.zarr`` folder (replaced only once every patch is written).
        layout: Sensor (``S2``, ``S1``) -> (month starts, band names).
        patch_shape: (height, width) of every patch.
        crs: CRS of every patch (one projected CRS per store).
        transforms: (patch, 6) GDAL affine of each patch.
        split: (patch,) 0 train, 1 val, 2 test.
        block: (patch,) spatial block of each patch (the split unit).
        classes: Code -> (name, RGB colour) of the label scheme.
        label_scheme: Name of the code table (e.g. ``multisenge14``).
        recipe: The configuration that produced the patches (stored with its hash).
        engine: ``local`` or ``earthengine``.
        prior: Whether an existing map is stored as ``prior``.
        seed: Seed of the percentile sample.
        split_id: Fingerprint of the held-out blocks
            (:meth:`gee_fusion.export.blocks.BlockSplit.fingerprint`), kept in the manifest so
            models assessed on this store can be compared with others on the same blocks.

    Raises:
        DataError: no sensor or an unknown one, shapes disagree, an empty training split, a patch
            left unwritten, or a band with no valid training value.
    """
    n = len(split)
    if not layout:
        raise DataError("A patch store needs at least one sensor.")
    unknown = [s for s in layout if s not in SENSORS]
    if unknown:
        raise DataError(f"Unknown sensor {unknown[0]!r}: use one of {SENSORS}.")
    if transforms.shape != (n, 6) or block.shape != (n,):
        raise DataError("transforms must be (patch, 6), split and block (patch,).")
    if not (split == SPLITS["train"]).any():
        raise DataError("The training split is empty: enlarge the area or change the split fractions.")
    h, w = patch_shape
    coords: dict[str, Any] = {"patch": np.arange(n), "affine": list("abcdef")}
    data: dict[str, Any] = {}
    chunked = ["labels", *(["prior"] if prior else [])]
    for name, (times, bands) in layout.items():
        coords[f"time_{name}"] = np.array([np.datetime64(t.isoformat(), "ns") for t in times])
        coords[f"band_{name}"] = np.array(list(bands))
        shape = (n, len(times), len(bands), h, w)
        dims = ("patch", f"time_{name}", f"band_{name}", "y", "x")
        data[name] = (dims, da.full(shape, np.nan, dtype=np.float32, chunks=(1, *shape[1:])))
        chunked.append(name)
    for name in ("labels", "prior") if prior else ("labels",):
        data[name] = (("patch", "y", "x"), da.zeros((n, h, w), dtype=np.uint8, chunks=(1, h, w)))
    data["crs"] = ("patch", np.array([crs] * n))
    data["transform"] = (("patch", "affine"), transforms.astype(np.float64))
    data["split"] = ("patch", split.astype(np.int8))
    data["block"] = ("patch", block.astype(np.int32))
    ds = xr.Dataset(data, coords=coords)
    encoding = {v: {"chunks": ds[v].shape} for v in ds.data_vars if v not in chunked}
    encoding.update({v: {"chunks": (1, *ds[v].shape[1:])} for v in chunked})
    with atomic_dir(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.to_zarr(tmp, mode="w", compute=False, consolidated=False, encoding=encoding)
        writer = PatchStoreWriter(tmp, layout=layout, split=split, patch_shape=(h, w), prior=prior, seed=seed)
        yield writer
        if not writer.written.all():
            missing = np.flatnonzero(~writer.written)
            raise DataError(f"Patches {missing[:5].tolist()}... ({missing.size}) were never written.")
        manifest = {
            "format_version": FORMAT_VERSION, "engine": engine, "versions": package_versions(),
            "recipe": dict(recipe), "recipe_hash": config_hash(recipe),
            "created": datetime.now(tz=UTC).isoformat(timespec="seconds"), "split_id": split_id,
        }  # fmt: skip
        table = {str(k): {"name": v[0], "color": list(v[1])} for k, v in classes.items()}
        zarr.open_group(str(tmp), mode="r+").attrs.update(
            {
                "classes": json.dumps(table),
                "label_scheme": label_scheme,
                "normalisation": json.dumps(writer.normalisation()),
                "manifest": json.dumps(manifest, default=str),
                "splits": json.dumps(SPLITS),
            }
        )


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
    """Write a patch store from patches in memory (replacing ``path`` only once all is written).

    Args are those of :func:`patch_store_writer`, with the data: ``sensors`` (sensor -> its
    patches, all with the labels' patch count and size), ``labels`` (patch, y, x) uint8 class
    codes (255 = no label) and an optional ``prior`` map like the labels.

    Raises:
        DataError: shapes disagree, an unknown sensor, or an empty training split.
    """
    n, h, w = labels.shape
    for name, part in sensors.items():
        if part.data.shape[0] != n or part.data.shape[3:] != (h, w):
            raise DataError(f"{name} patches {part.data.shape} do not match labels {labels.shape}.")
    if prior is not None and prior.shape != labels.shape:
        raise DataError(f"Prior map {prior.shape} does not match labels {labels.shape}.")
    if split.shape != (n,):
        raise DataError("transforms must be (patch, 6), split and block (patch,).")
    with patch_store_writer(
        path, layout={k: (v.times, v.bands) for k, v in sensors.items()}, patch_shape=(h, w), crs=crs,
        transforms=transforms, split=split, block=block, classes=classes, label_scheme=label_scheme,
        recipe=recipe, engine=engine, prior=prior is not None,
    ) as writer:  # fmt: skip
        writer.write(0, sensors={k: v.data for k, v in sensors.items()}, labels=labels, prior=prior)
    return Path(path)
