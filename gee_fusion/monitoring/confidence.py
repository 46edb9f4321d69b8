"""Per-pixel confidence of the monthly class maps, and what the change rules make of it (numpy).

Each month's class map carries a confidence per pixel (band ``confidence`` of ``class.tif``, in
percent): the share of the in-cloud forest's trees that voted for the class
(:func:`gee_fusion.monitoring.optical.vote_share`), or a deep checkpoint's probability of the
6-class group it chose (:func:`group_probability`). A month that cloud remnants, haze or speckle
leave ambiguous gets a low one.

- :func:`confident_classes` lets only confident months speak (``min_class_confidence`` of the
  monitoring config): a pixel-month under the threshold takes the class of the pixel's latest
  confident month, so an unsure month can neither make nor break a persistent change.
- :func:`change_confidence` is, per changed pixel, the mean confidence of the ``persist`` months
  from its onset (the months that established its new state); alerts carry the mean over their
  core as ``class_confidence``, and ``changes.tif`` carries it per pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gee_fusion.errors import DataError
from gee_fusion.monitoring.optical import CONFIDENCE_BAND, class_stack


def read_confidence(paths: Sequence[Path]) -> np.ndarray:
    """The ``confidence`` band (percent) of each month's class map, as shares (0-1), (months, rows,
    cols) float32; NaN where a map has none (written before the band existed) or no class."""
    import rasterio

    layers = []
    for path in paths:
        with rasterio.open(path) as src:
            if CONFIDENCE_BAND not in src.descriptions:
                layers.append(np.full((src.height, src.width), np.nan, dtype=np.float32))
                continue
            percent = src.read(1 + src.descriptions.index(CONFIDENCE_BAND)).astype(np.float32)
        layers.append(np.where(percent > 0, percent / 100.0, np.nan).astype(np.float32))
    return np.stack(layers)


def as_percent(share: np.ndarray) -> np.ndarray:
    """A confidence (0-1, NaN: none) as uint8 percent, 0 where there is none (the maps' nodata)."""
    clean = np.nan_to_num(np.asarray(share, dtype=np.float64), nan=0.0)
    return np.clip(np.rint(clean * 100.0), 0, 100).astype(np.uint8)


def confident_classes(
    classes: Sequence[np.ndarray] | np.ndarray, confidence: np.ndarray, *, minimum: float
) -> np.ndarray:
    """The class maps with every pixel-month whose confidence is under ``minimum`` replaced by the
    class of the pixel's latest confident month before it (before its first confident month: the
    first confident one). Pixel-months of unknown confidence (NaN) count as confident, and a pixel
    never confident keeps its classes. ``minimum`` 0 returns the maps as they are.

    Raises:
        DataError: ``confidence`` does not have the shape of the class maps, or ``minimum`` is not
            in [0, 1].
    """
    stack = class_stack(classes)
    if not 0.0 <= minimum <= 1.0:
        raise DataError(f"min_class_confidence must lie in [0, 1], got {minimum}.")
    if confidence.shape != stack.shape:
        raise DataError(f"Confidence maps {confidence.shape} do not match the class maps {stack.shape}.")
    if minimum == 0.0:
        return stack
    sure = np.asarray(~(confidence < minimum))  # NaN: unknown, kept
    months = np.arange(stack.shape[0])[:, None, None]
    latest = np.maximum.accumulate(np.where(sure, months, -1), axis=0)  # latest confident month so far
    ever = np.asarray(sure.any(axis=0))
    first = np.where(ever[None], sure.argmax(axis=0)[None], months)  # never sure: its own months
    source = np.where(latest >= 0, latest, first)
    return np.take_along_axis(stack, source, 0)


def change_confidence(confidence: np.ndarray, onset: np.ndarray, *, persist: int) -> np.ndarray:
    """Per pixel, the mean confidence of the ``persist`` months from a change's onset (month index,
    -1: none): how sure the class maps were of the new state when they established it. NaN where
    there is no change or no known confidence."""
    count = confidence.shape[0]
    total = np.zeros(onset.shape, dtype=np.float64)
    known = np.zeros(onset.shape, dtype=np.int64)
    for k in range(persist):
        month = np.clip(onset + k, 0, count - 1)
        value = np.take_along_axis(confidence, month[None], 0)[0].astype(np.float64)
        use = (onset >= 0) & (onset + k < count) & np.isfinite(value)
        total += np.where(use, value, 0.0)
        known += use
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, total / known, np.nan).astype(np.float32)


def group_probability(
    probabilities: np.ndarray, codes: Sequence[int], lut: np.ndarray, chosen: np.ndarray
) -> np.ndarray:
    """A deep checkpoint's probability of the 6-class group it chose per pixel: the sum of the
    probabilities (``probabilities``: (classes, rows, cols), band k for class code ``codes[k]``) of
    the fine classes that ``lut`` groups into ``chosen`` (6-class codes, 0: none). NaN where
    ``chosen`` is 0 or the probabilities are not finite."""
    groups = lut[np.asarray(codes)]
    total = np.zeros(chosen.shape, dtype=np.float64)
    for k, group in enumerate(groups):
        total += np.where(chosen == group, np.nan_to_num(probabilities[k].astype(np.float64)), 0.0)
    finite = np.isfinite(probabilities).all(axis=0)
    return np.where((chosen > 0) & finite, total, np.nan).astype(np.float32)
