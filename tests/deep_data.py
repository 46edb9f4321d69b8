"""Tiny generated patch stores for the deep-stage tests (learnable: classes drive the bands)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from gee_fusion.classes import MULTISENGE_14
from gee_fusion.export.patch_store import SensorPatches
from gee_fusion.export.patch_writer import write_patch_store

S2_BANDS = ("B2", "B3", "B4", "B8")
S1_BANDS = ("VV", "VH")
CODES = (1, 2, 6, 9, 11, 14)  # a few MultiSenGE classes present in the tiny world


def make_store(
    path: Path,
    *,
    n: int = 12,
    size: int = 16,
    t2: int = 3,
    t1: int = 2,
    seed: int = 0,
    split: np.ndarray | None = None,
    prior: bool = True,
    missing_month: bool = True,
    unlabelled: tuple[int, ...] = (),
) -> Path:
    """A store whose S2/S1 values are class means + noise, blocks of 2 patches per split unit."""
    rng = np.random.default_rng(seed)
    labels = np.empty((n, size, size), np.uint8)
    for i in range(n):  # two or three rectangles of classes per patch
        labels[i] = rng.choice(CODES)
        r, c = rng.integers(2, size - 2, 2)
        labels[i, :r, :c] = rng.choice(CODES)
        labels[i, r:, c:] = rng.choice(CODES)
    labels[:, 0, :3] = 255  # some unlabelled pixels
    labels[list(unlabelled)] = 255  # whole patches without labels
    means2 = {code: rng.uniform(0.02, 0.4, len(S2_BANDS)) for code in CODES}
    means1 = {code: rng.uniform(-22, -3, len(S1_BANDS)) for code in CODES}
    lut2 = np.zeros((256, len(S2_BANDS)), np.float32)
    lut1 = np.zeros((256, len(S1_BANDS)), np.float32)
    for code in CODES:
        lut2[code], lut1[code] = means2[code], means1[code]
    s2 = np.moveaxis(lut2[labels], -1, 1)[:, None].repeat(t2, axis=1)  # (n, t, c, y, x)
    s2 = s2 + rng.normal(0, 0.02, s2.shape).astype(np.float32)
    s1 = np.moveaxis(lut1[labels], -1, 1)[:, None].repeat(t1, axis=1)
    s1 = s1 + rng.normal(0, 1.0, s1.shape).astype(np.float32)
    if missing_month:
        s2[0, 1] = np.nan  # patch 0 has no valid S2 pixel in month 2
        s2[1, 0, :, :4, :4] = np.nan  # a cloudy corner
    if split is None:
        split = np.zeros(n, np.int8)
        split[-4:-2], split[-2:] = 1, 2
    transforms = np.array([[10.0, 0, 1000.0 * i, 0, -10.0, 5000.0] for i in range(n)])
    wc = np.where(np.isin(labels, (1, 2)), 50, np.where(labels == 14, 80, 10)).astype(np.uint8)
    return write_patch_store(
        path,
        sensors={
            "S2": SensorPatches(
                s2.astype(np.float32), [date(2021, m, 1) for m in (7, 8, 9, 11)[:t2]], S2_BANDS
            ),
            "S1": SensorPatches(
                s1.astype(np.float32), [date(2021, m, 1) for m in (7, 8, 9, 11)[:t1]], S1_BANDS
            ),
        },
        labels=labels,
        prior=wc if prior else None,
        crs="EPSG:32631",
        transforms=transforms,
        split=split,
        block=np.arange(n) // 2,
        classes={c.code: (c.name, c.color) for c in MULTISENGE_14},
        label_scheme="multisenge14",
        recipe={"generated_by": "tests", "seed": seed},
        engine="local",
    )
