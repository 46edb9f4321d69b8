"""Torch datasets over a patch store: normalised B x T x C x H x W tensors per sensor, labels in a
class grouping, pad masks for missing months, deterministic augmentation and class weights."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from gee_fusion.classes import NO_LABEL, Scheme, class_table, prior_lut
from gee_fusion.errors import DataError
from gee_fusion.export.patch_store import BandStats, PatchStore

Normalisation = Literal["zscore", "quantile"]


def mid_month_doy(times: Sequence[date]) -> np.ndarray:
    """Day of year of the 15th of each month start (the date a monthly composite stands for)."""
    return np.array([date(t.year, t.month, 15).timetuple().tm_yday for t in times], dtype=np.int64)


def class_weights(labels: np.ndarray, num_classes: int, *, method: str) -> np.ndarray:
    """Per-class loss weights from label frequencies (255 ignored; absent classes get 0).

    ``inverse_frequency``: w_i = 1 / p_i scaled so that the pixel-average weight is 1;
    ``seed``: w_i = 1 / (p_i * sum_j p_j^2) (Stocker & Le Bris); ``none``: all ones.
    """
    if method == "none":
        return np.ones(num_classes, dtype=np.float32)
    counts = np.bincount(labels[labels != NO_LABEL].ravel(), minlength=num_classes)[:num_classes]
    total = counts.sum()
    if total == 0:
        raise DataError("No labelled pixel in the training split: cannot compute class weights.")
    p = counts / total
    w = np.zeros(num_classes, dtype=np.float64)
    present = p > 0
    if method == "inverse_frequency":
        w[present] = 1.0 / p[present]
        w /= (w * p).sum()
    elif method == "seed":
        w[present] = 1.0 / (p[present] * np.sum(p**2))
    else:
        raise DataError(f"Unknown class weighting {method!r}: use inverse_frequency, seed or none.")
    return w.astype(np.float32)


def check_bands(store: PatchStore, expected: Mapping[str, Sequence[str]]) -> None:
    """Raise DataError naming the differences if the store's bands are not ``expected``."""
    for sensor, bands in expected.items():
        have = store.bands(sensor)
        if list(bands) != have:
            missing = [b for b in bands if b not in have]
            extra = [b for b in have if b not in bands]
            detail = f"missing {missing}, unexpected {extra}" if missing or extra else "different order"
            raise DataError(
                f"{sensor} bands of {store.path} are {have}, the experiment expects {list(bands)} ({detail})."
            )


class PatchDataset(Dataset[dict[str, torch.Tensor]]):
    """One split of a patch store, held in memory, normalised with training-split statistics.

    Items are dicts following the batch contract of :mod:`gee_fusion.deep` (without the batch
    dimension). Indexing with ``(epoch, i)`` (see :class:`EpochSampler`) makes augmentation a
    pure function of (seed, epoch, i): a resumed run sees exactly the batches an uninterrupted
    one would.
    """

    def __init__(
        self,
        store: PatchStore,
        *,
        split: str,
        sensors: Sequence[str],
        scheme: Scheme = 10,
        normalisation: Normalisation = "zscore",
        augment: bool = False,
        copy_paste: float = 0.0,
        prior: bool = False,
        seed: int = 0,
    ) -> None:
        idx = store.indices(split)
        if idx.size == 0:
            raise DataError(
                f"The {split} split of {store.path} is empty: rebuild the store with other split fractions "
                "or a larger area."
            )
        if prior and not store.has_prior:
            raise DataError(f"The experiment uses a prior map but {store.path} has no 'prior' array.")
        self.table = class_table(scheme)
        self.sensors = tuple(sensors)
        self.augment, self.copy_paste, self.seed = augment, copy_paste, seed
        self.inputs: dict[str, np.ndarray] = {}
        self.pad: dict[str, np.ndarray] = {}
        self.doy: dict[str, np.ndarray] = {}
        self.observed: dict[str, np.ndarray] = {}  # (N, T, H, W): for copy-paste's pad masks
        for s in self.sensors:
            raw = np.asarray(store.read(s, idx), dtype=np.float32)
            if copy_paste > 0:
                self.observed[s] = np.asarray(np.isfinite(raw).any(axis=2))
            self.inputs[s], self.pad[s] = normalise(
                raw, store.normalisation[s], store.bands(s), normalisation
            )
            self.doy[s] = mid_month_doy(store.times(s))
        labels = store.read("labels", idx)
        self.labels = self.table.index_lut()[labels]
        if not (self.labels != NO_LABEL).any():
            raise DataError(
                f"The {split} split of {store.path} has no labelled pixel ({idx.size} patches): losses "
                "and metrics would be empty; rebuild the store with other split fractions or a larger area."
            )
        self.prior = prior_lut()[store.read("prior", idx)] if prior else None
        self._freq = np.bincount(self.labels[self.labels != NO_LABEL], minlength=self.table.num_classes)
        self.patch_ids = idx

    def __len__(self) -> int:
        return int(self.patch_ids.size)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key if isinstance(key, tuple) else (0, int(key))
        arrays: dict[str, np.ndarray] = {s: self.inputs[s][i] for s in self.sensors}
        arrays["label"] = self.labels[i]
        if self.prior is not None:
            arrays["prior"] = self.prior[i]
        pads = {s: self.pad[s][i] for s in self.sensors}
        if self.augment or self.copy_paste > 0:
            rng = np.random.default_rng([self.seed, epoch, i])
            if self.copy_paste > 0 and rng.random() < self.copy_paste:
                arrays, pads = self._paste(arrays, i, rng)
            if self.augment:
                arrays = rot_flip(arrays, k=int(rng.integers(4)), flip=bool(rng.random() < 0.5))
        item = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        item["label"] = item["label"].long()
        if "prior" in item:
            item["prior"] = item["prior"].long()
        for s in self.sensors:
            item[f"{s}_doy"] = torch.from_numpy(self.doy[s])
            item[f"{s}_pad"] = torch.from_numpy(np.ascontiguousarray(pads[s]))
        return item

    def _paste(
        self, arrays: dict[str, np.ndarray], i: int, rng: np.random.Generator
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Copy-paste: every pixel of one class of a random donor patch, rarer classes likelier.

        Returns the pasted arrays and each sensor's pad mask recomputed for the result.
        """
        donor = int(rng.integers(len(self)))
        present = np.unique(self.labels[donor])
        present = present[present != NO_LABEL]
        pads = {s: self.pad[s][i] for s in self.sensors}
        if present.size == 0:
            return arrays, pads
        w = 1.0 / np.maximum(self._freq[present], 1)
        cls = int(rng.choice(present, p=w / w.sum()))
        mask = self.labels[donor] == cls
        out = dict(arrays)
        for s in self.sensors:
            out[s] = np.where(mask, self.inputs[s][donor], arrays[s])
            # a month is missing where no pixel of the pasted result was observed
            observed = np.where(mask, self.observed[s][donor], self.observed[s][i])
            pads[s] = ~observed.any(axis=(-2, -1))
        out["label"] = np.where(mask, self.labels[donor], arrays["label"])
        if self.prior is not None:
            out["prior"] = np.where(mask, self.prior[donor], arrays["prior"])
        return out, pads


def normalise(
    raw: np.ndarray, stats: Mapping[str, BandStats], bands: Sequence[str], how: Normalisation
) -> tuple[np.ndarray, np.ndarray]:
    """Per-band multi-temporal scaling of (..., T, C, H, W) with training-split statistics.

    Returns:
        The scaled array (missing pixels 0) and the (..., T) pad mask (True: no valid pixel).
    """
    missing = [b for b in bands if b not in stats]
    if missing:
        raise DataError(f"No normalisation statistics for band(s) {missing}.")
    shape = (len(bands), 1, 1)
    if how == "zscore":
        shift = np.array([stats[b].mean for b in bands], np.float32).reshape(shape)
        scale = np.array([stats[b].std for b in bands], np.float32).reshape(shape)
        out = (raw - shift) / scale
    elif how == "quantile":
        lo = np.array([stats[b].q02 for b in bands], np.float32).reshape(shape)
        hi = np.array([stats[b].q98 for b in bands], np.float32).reshape(shape)
        out = np.clip((raw - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)
    else:
        raise DataError(f"Unknown normalisation {how!r}: use zscore or quantile.")
    valid = np.isfinite(raw)
    pad = ~valid.any(axis=(-3, -2, -1))
    out[~valid] = 0.0
    return out.astype(np.float32, copy=False), pad


def rot_flip(arrays: Mapping[str, np.ndarray], *, k: int, flip: bool) -> dict[str, np.ndarray]:
    """Rotate every array's last two axes by k * 90 degrees, then mirror them left-right."""
    out = {}
    for name, a in arrays.items():
        r = np.rot90(a, k=k, axes=(-2, -1))
        out[name] = r[..., ::-1] if flip else r
    return out


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)``: a seeded permutation per epoch (same order after a resume),
    sharded across DDP ranks when a process group is running."""

    def __init__(self, n: int, *, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at every epoch start."""
        self.epoch = epoch

    def _shard(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rank, world = self._shard()
        if self.shuffle:  # every rank gets the same count (wrap-around padding), as DDP needs
            ids = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            ids = np.resize(ids, len(self) * world)[rank::world]
        else:  # evaluation: each patch exactly once over all ranks
            ids = np.arange(rank, self.n, world)
        return iter([(self.epoch, int(i)) for i in ids])

    def __len__(self) -> int:
        rank, world = self._shard()
        return -(-self.n // world) if self.shuffle else len(range(rank, self.n, world))
