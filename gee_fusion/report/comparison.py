"""The models of one comparison, read from their records, checked to share the held-out blocks and
the class table, and reduced to one metrics record each (all from one confusion matrix per model).

Sources: the in-cloud RF job's record (``NAME.json`` of :mod:`gee_fusion.classic.job`: the
forest, each baseline, the cross-validations and the sensor ablation) and deep run folders
(``metrics.json``, ``learning_curves.png``, ``map.tif`` of :mod:`gee_fusion.deep.train`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gee_fusion.classes import GROUPS_6, GROUPS_10, NAMES_6, nested_groups
from gee_fusion.errors import DataError
from gee_fusion.metrics.confusion import ConfusionMatrix

Family = Literal["in-cloud", "classic", "deep"]
SAMPLES = "stratified samples of the test blocks"
PATCHES = "every labelled pixel of the test patches"


@dataclass(frozen=True)
class ModelRun:
    """One model's held-out confusion matrix and what goes with it in the report."""

    name: str
    family: Family
    matrix: ConfusionMatrix
    split_id: str
    engine: str
    evaluated_on: str
    importance: dict[str, float] = field(default_factory=dict)
    map_path: Path | None = None
    curves_png: Path | None = None
    notes: str = ""
    key: str = ""
    """What the model is, whatever its display name: ``smileRandomForest``, a baseline's name
    (``extra_trees``...) or a deep model's (``unet``...)."""


@dataclass(frozen=True)
class CloudRecord:
    """What the in-cloud RF job measured beyond its models: the two CVs and the ablation."""

    runs: list[ModelRun]
    cv: dict[str, dict[str, Any]]
    ablation: dict[str, ConfusionMatrix]
    split_id: str
    samples: dict[str, Any]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"Cannot read the {what} {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"The {what} {path} is not a JSON object.")
    return data


def read_cloud_record(path: str | Path) -> CloudRecord:
    """The in-cloud forest and the baselines of an in-cloud RF record.

    Raises:
        DataError: the file is missing, unreadable or not an in-cloud RF record.
    """
    path = Path(path)
    data = _read_json(path, "in-cloud RF record")
    if data.get("format") != "gee_fusion.cloud_rf/1":
        raise DataError(f"{path} is not an in-cloud RF record (format {data.get('format')!r}).")
    split, engine = str(data["split_id"]), str(data["engine"])
    map_path = path.parent / data["map"] if data.get("map") else None
    rf = data["rf"]
    runs = [
        ModelRun(
            "in-cloud RF (smileRandomForest)",
            "in-cloud",
            ConfusionMatrix.from_dict(rf["matrix"]),
            split,
            engine,
            SAMPLES,
            dict(rf.get("importance") or {}),
            map_path,
            notes=f"out-of-bag error {rf['oob_error']:.3f}" if rf.get("oob_error") is not None else "",
            key="smileRandomForest",
        ),
    ]
    for b in data.get("baselines", []):
        runs.append(
            ModelRun(
                f"{b['name']} (scikit-learn)",
                "classic",
                ConfusionMatrix.from_dict(b["matrix"]),
                split,
                "local",
                SAMPLES,
                dict(b.get("importance") or {}),
                notes=f"fit {b['fit_seconds']:.1f} s",
                key=str(b["name"]),
            )
        )
    ablation = {k: ConfusionMatrix.from_dict(v["matrix"]) for k, v in data.get("ablation", {}).items()}
    ablation["S1+S2"] = runs[0].matrix
    return CloudRecord(runs, dict(rf.get("cv") or {}), ablation, split, dict(data.get("samples") or {}))


def read_deep_run(run_dir: str | Path) -> ModelRun:
    """A deep model's run folder (its test matrix on the patch store's test patches).

    Raises:
        DataError: no ``metrics.json``, or one without its split identity.
    """
    run = Path(run_dir)
    data = _read_json(run / "metrics.json", "deep run metrics")
    if "test" not in data or "split_id" not in data:
        raise DataError(
            f"{run}/metrics.json has no test matrix or split identity: it was written by an older "
            "gee_fusion; rerun `gee-fusion train` to assess it again."
        )
    curves = run / "learning_curves.png"
    map_path = run / "map.tif"
    epochs = data.get("epochs")
    model = data.get("model", {}).get("name", "deep")
    return ModelRun(
        f"{data.get('experiment', run.name)} ({model})",
        "deep",
        ConfusionMatrix.from_dict(data["test"]),
        str(data["split_id"]),
        str(data.get("engine", "local")),
        PATCHES,
        map_path=map_path if map_path.exists() else None,
        curves_png=curves if curves.exists() else None,
        notes=f"{epochs} epochs on {data.get('device', '?')}"
        + (f"; {data['schedule']}" if data.get("schedule") else ""),
        key=str(model),
    )


def score_map_on_store(run: ModelRun, store_path: str | Path) -> ModelRun:
    """``run``'s map scored on every labelled pixel of the patch store's test patches: the pixels
    the deep models are scored on, so the comparison is on identical pixels.

    Raises:
        DataError: the run has no map, the store holds another split, or a test patch lies
            outside the map.
    """
    import rasterio
    from rasterio.windows import Window

    from gee_fusion.classes import NO_LABEL, class_table
    from gee_fusion.export.patch_store import open_patch_store

    if run.map_path is None:
        raise DataError(f"{run.name} has no map to score on the test patches.")
    store = open_patch_store(store_path)
    if store.manifest.get("split_id") != run.split_id:
        raise DataError(
            f"The patch store {store_path} holds other blocks than {run.name}'s: it cannot score it."
        )
    codes = list(run.matrix.codes or [])
    table = class_table(len(codes))
    to_index = table.index_lut()
    position = np.full(256, NO_LABEL, dtype=np.uint8)
    position[codes] = np.arange(len(codes))
    test = store.indices("test")
    labels, transforms = store.read("labels", test), store.read("transform", test)
    matrix = ConfusionMatrix(list(run.matrix.names), codes=codes)
    h, w = store.patch_shape
    with rasterio.open(run.map_path) as src:
        inverse = ~src.transform
        for patch, t in zip(labels, transforms, strict=True):
            col, row = (round(v) for v in inverse @ (t[2], t[5]))
            if col < 0 or row < 0 or col + w > src.width or row + h > src.height:
                raise DataError(f"A test patch at ({t[2]}, {t[5]}) lies outside the map {run.map_path}.")
            predicted = src.read(1, window=Window(col, row, w, h))
            truth = to_index[patch]
            keep = truth != NO_LABEL
            matrix.update(truth[keep], position[predicted[keep]])
    return ModelRun(
        f"{run.name}, map on the test patches",
        run.family,
        matrix,
        run.split_id,
        run.engine,
        PATCHES,
        map_path=None,
        notes="its map read at the deep models' test pixels",
        key=run.key,
    )


def check_comparable(runs: Sequence[ModelRun]) -> None:
    """Every model must be assessed on the same held-out blocks, in the same class table.

    Raises:
        DataError: no model, or models of different splits or class tables (names them).
    """
    if not runs:
        raise DataError("Nothing to compare: give an in-cloud RF record and/or deep run folders.")
    first = runs[0]
    for run in runs[1:]:
        if run.split_id != first.split_id:
            raise DataError(
                f"{run.name} was assessed on other held-out blocks (split {run.split_id}) than {first.name} "
                f"(split {first.split_id}): a report never mixes splits. Run both on the same area, block "
                "size, fractions and seed (the main job does)."
            )
        if run.matrix.names != first.matrix.names or run.matrix.codes != first.matrix.codes:
            raise DataError(
                f"{run.name} predicts another class table ({len(run.matrix.names)} classes: "
                f"{list(run.matrix.names)}) than {first.name} ({list(first.matrix.names)})."
            )


def model_metrics(run: ModelRun) -> dict[str, Any]:
    """One model's metrics record (``metrics.json``): summary, per class, its confusion matrix
    (``ConfusionMatrix.from_dict`` reads it back), and the 6-class aggregation of a 10-class matrix."""
    cm = run.matrix
    s = cm.summary()
    out: dict[str, Any] = {
        "name": run.name,
        "family": run.family,
        "engine": run.engine,
        "split_id": run.split_id,
        "evaluated_on": run.evaluated_on,
        "pixels": cm.total,
        "oa": s["overall_accuracy"],
        "kappa": s["kappa"],
        "f1_weighted": s["weighted_f1"],
        "f1_macro": s["macro_f1"],
        "miou": s["miou"],
        "per_class": cm.per_class(),
        "notes": run.notes,
        "matrix": cm.to_dict(),
    }
    if cm.codes is not None and list(cm.codes) == sorted(set(GROUPS_10.values())):
        coarse = cm.aggregate_codes(nested_groups(GROUPS_10, GROUPS_6), NAMES_6).summary()
        out["aggregated_6"] = {
            "oa": coarse["overall_accuracy"],
            "kappa": coarse["kappa"],
            "f1_weighted": coarse["weighted_f1"],
            "f1_macro": coarse["macro_f1"],
            "miou": coarse["miou"],
        }
    return out


def shows_importance(run: ModelRun) -> bool:
    """Whether the report charts ``run``'s importance: the in-cloud forest and ExtraTrees (chosen
    by family and model, not by display name)."""
    return bool(run.importance) and (
        run.family == "in-cloud" or (run.family == "classic" and run.key == "extra_trees")
    )


def best_per_evaluation(models: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best model (weighted F1) of each evaluation set: only models scored on the same pixels
    (same ``evaluated_on`` and number of pixels) compete, so stratified test-block samples and
    every pixel of the test patches are never ranked together.

    Args:
        models: Records of :func:`model_metrics`.

    Returns:
        One ``{"evaluated_on", "pixels", "name", "f1_weighted", "models"}`` per evaluation set, in
        the order the sets first appear (``models``: how many competed).
    """
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for m in models:
        groups.setdefault((str(m["evaluated_on"]), int(m["pixels"])), []).append(m)
    out = []
    for (evaluated_on, pixels), group in groups.items():
        best = max(group, key=lambda m: m["f1_weighted"])
        out.append({
            "evaluated_on": evaluated_on, "pixels": pixels, "name": best["name"],
            "f1_weighted": best["f1_weighted"], "models": len(group),
        })  # fmt: skip
    return out
