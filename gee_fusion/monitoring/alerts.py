"""Alert objects of the monitoring job: GeoJSON features of change objects (numpy masks to polygons).

An alert is one 8-connected object of a change mask of at least ``min_area_m2``, with its
``type`` (``urbanisation``, ``demolition``, ``site``, ``flood``), the ``evidence`` that raised it, its
``onset`` month, its area, the classes before and after, and its ``confidence`` (the share of its
pixels the other source confirms). Floods also carry their ``end`` month.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
from scipy import ndimage

from gee_fusion.grid import PixelGrid
from gee_fusion.monitoring import flood
from gee_fusion.monitoring.optical import Transitions, class_stack


def _geometry(obj: np.ndarray, grid: PixelGrid) -> dict[str, Any]:
    """The polygon(s) of a boolean object mask, in the grid's CRS."""
    from rasterio.features import shapes

    rings = [g["coordinates"] for g, v in shapes(obj.astype(np.uint8), mask=obj, transform=grid.affine) if v]
    if len(rings) == 1:
        return {"type": "Polygon", "coordinates": rings[0]}
    return {"type": "MultiPolygon", "coordinates": rings}


def _pixel_area(grid: PixelGrid) -> float:
    return abs(grid.transform[0] * grid.transform[4])


def _evidence(evidence: str | Sequence[tuple[str, np.ndarray]], obj: np.ndarray) -> str:
    """The evidence of one object: ``evidence`` itself, or the labels of the masks it overlaps."""
    if isinstance(evidence, str):
        return evidence
    shares = [(int(m[obj].sum()), label) for label, m in evidence]
    return ", ".join(label for n, label in sorted(shares, key=lambda s: -s[0]) if n)


def event_core(onset: np.ndarray, obj: np.ndarray, *, tolerance: int = 1) -> tuple[int, np.ndarray]:
    """The pixels of ``obj`` that changed together (``onset``: the month index per pixel): those
    within ``tolerance`` months of the month most of them are near (ties: the earliest), with
    their median month."""
    values, counts = np.unique(onset[obj], return_counts=True)
    near = np.abs(values[:, None] - values[None, :]) <= tolerance
    centre = int(values[int(np.argmax(near.astype(np.int64) @ counts))])
    core = obj & (np.abs(onset - centre) <= tolerance)
    return int(np.median(onset[core])), core


def change_alerts(
    mask: np.ndarray,
    transitions: Transitions,
    confirmed: np.ndarray,
    *,
    grid: PixelGrid,
    months: Sequence[date],
    min_area_m2: float,
    kind: str,
    evidence: str | Sequence[tuple[str, np.ndarray]],
    tolerance: int = 1,
    class_confidence: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Features (``type`` ``kind``) of the 8-connected objects of ``mask`` of at least
    ``min_area_m2``, with their area, onset, classes before and after, confidence and evidence; with
    ``class_confidence`` (per pixel, 0-1, NaN: unknown; :func:`.confidence.change_confidence`), also
    its mean over the core as ``class_confidence`` (null where unknown).

    An object's pixels rarely change in one month (a site is cleared, then built, over months; the
    class maps of a sparse estate flicker), and the noise of the class maps around it joins it
    with unrelated months. So its **onset** is the month within ``tolerance`` of which most of its
    pixels changed (:func:`event_core`), and its classes and **confidence** (the share of pixels
    ``confirmed``) are those of that core; the polygon is the whole object. ``evidence`` is a
    label, or (label, mask) pairs of which the object gets the labels of the masks it overlaps,
    most pixels first.
    """
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    area_px = _pixel_area(grid)
    sizes = np.bincount(labels.ravel())
    features = []
    for k in np.flatnonzero(sizes * area_px >= min_area_m2):  # the objects large enough, only
        if k == 0:
            continue
        obj = labels == k
        area = float(sizes[k] * area_px)
        onset_index, core = event_core(transitions.onset, obj, tolerance=tolerance)
        properties = {
            "type": kind, "evidence": _evidence(evidence, obj), "onset": f"{months[onset_index]:%Y-%m}",
            "area_m2": area, "from_class": int(np.bincount(transitions.before[core]).argmax()),
            "to_class": int(np.bincount(transitions.after[core]).argmax()),
            "confidence": round(float(confirmed[core].mean()), 3),
        }  # fmt: skip
        if class_confidence is not None:
            known = class_confidence[core][np.isfinite(class_confidence[core])]
            properties["class_confidence"] = round(float(known.mean()), 3) if known.size else None
        features.append({"type": "Feature", "geometry": _geometry(obj, grid), "properties": properties})
    return features


def flood_alerts(
    flooded: np.ndarray,
    classes: Sequence[np.ndarray],
    *,
    grid: PixelGrid,
    months: Sequence[date],
    min_area_m2: float,
) -> list[dict[str, Any]]:
    """Features (``type`` ``flood``) of the flood events of the flooded months (``flooded``, from
    :func:`flood.flooded` on the monthly VV means):
    onset and end month, flooded area (the union of its months), the usual class of its pixels
    (``from_class``, their most common class outside the event), ``to_class`` 6 and the share of its
    pixels the class maps call water, wetland or open in one of its months (``confidence``)."""
    min_px = max(1, int(np.ceil(min_area_m2 / _pixel_area(grid))))
    events = flood.flood_events(flooded, min_pixels=min_px)
    stack = class_stack(classes)
    features = []
    for event in events:
        outside = np.r_[stack[: event.first], stack[event.last + 1 :]]
        usual = outside[:, event.mask].ravel() if len(outside) else stack[:, event.mask].ravel()
        properties = {
            "type": "flood", "evidence": "SAR water + class", "onset": f"{months[event.first]:%Y-%m}",
            "end": f"{months[event.last]:%Y-%m}", "area_m2": float(event.mask.sum() * _pixel_area(grid)),
            "from_class": int(np.bincount(usual).argmax()) if usual.size else 0, "to_class": flood.WATER_6,
            "confidence": round(flood.event_confidence(event, classes), 3),
        }  # fmt: skip
        geometry = _geometry(event.mask, grid)
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return features
