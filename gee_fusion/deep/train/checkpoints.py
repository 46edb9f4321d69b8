"""Loading checkpoints safely (``weights_only=True``) and checking they fit what is asked."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gee_fusion.errors import CheckpointError

_REQUIRED = (
    "experiment",
    "inputs",
    "class_names",
    "class_codes",
    "class_weights",
    "bands",
    "normalisation",
)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded with ``weights_only=True`` (no code runs from the file).

    Raises:
        CheckpointError: missing, unreadable, or not a gee_fusion land-cover checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a checkpoint: not a torch archive (truncated, or another kind of file). "
            "Pass a best.ckpt or last.ckpt written by `gee-fusion train`."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused an object, or the pickle is corrupt
        raise CheckpointError(
            f"{path} cannot be loaded safely: it is corrupt or holds objects other than weights and "
            "settings (gee_fusion only loads checkpoints with weights_only=True)."
        ) from exc
    except Exception as exc:  # torch raises several types for damaged archives
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is a damaged checkpoint ({reason}): write it again.") from exc
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hp, dict) or any(k not in hp for k in _REQUIRED) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a gee_fusion land-cover checkpoint (no model description).")
    return dict(ckpt)


def _differences(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    diffs = []
    if want["experiment"]["model"] != have["experiment"]["model"]:
        diffs.append(f"model {have['experiment']['model']} vs {want['experiment']['model']}")
    if list(want["class_names"]) != list(have["class_names"]):
        diffs.append(f"classes {list(have['class_names'])} vs {list(want['class_names'])}")
    if [int(c) for c in want["class_codes"]] != [int(c) for c in have["class_codes"]]:
        diffs.append(f"class codes {list(have['class_codes'])} vs {list(want['class_codes'])}")
    if dict(want["bands"]) != dict(have["bands"]):
        diffs.append(f"bands {dict(have['bands'])} vs {dict(want['bands'])}")
    if want["experiment"]["data"].get("normalisation") != have["experiment"]["data"].get("normalisation"):
        diffs.append("input normalisation method")
    if want["normalisation"] != have["normalisation"]:
        diffs.append("normalisation statistics (the patch store was rebuilt?)")
    if {k: list(v) for k, v in want["inputs"].items()} != {k: list(v) for k, v in have["inputs"].items()}:
        diffs.append(f"inputs (times, channels) {dict(have['inputs'])} vs {dict(want['inputs'])}")
    return diffs


# Settings a resumed run may change: its name, where data and outputs live (the data themselves are
# checked through bands and normalisation statistics), devices, loader workers, the schedule's length.
_RESUME_FREE: dict[str, set[str] | None] = {
    "name": None,
    "out_dir": None,
    "trainer": None,
    "patches": None,
    "data": {"store", "num_workers"},
    "optim": {"max_epochs", "early_stopping_patience"},
}


def _training_settings(experiment: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in experiment.items():
        if key in _RESUME_FREE and _RESUME_FREE[key] is None:
            continue
        free = _RESUME_FREE.get(key) or set()
        out[key] = {k: v for k, v in value.items() if k not in free} if isinstance(value, Mapping) else value
    return out


def _resume_differences(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    diffs = []
    a, b = _training_settings(want["experiment"]), _training_settings(have["experiment"])
    for key in sorted(set(a) | set(b)):
        if key != "model" and a.get(key) != b.get(key):
            diffs.append(f"experiment {key!r} {b.get(key)} vs {a.get(key)}")
    w, h = np.asarray(want["class_weights"], float), np.asarray(have["class_weights"], float)
    if w.shape == h.shape and not np.allclose(w, h, rtol=1e-6, atol=0):  # other shapes: other classes
        diffs.append("class weights (the training split's class frequencies changed?)")
    return diffs


def check_checkpoint(path: str | Path, module: torch.nn.Module) -> dict[str, Any]:
    """Refuse to resume ``module`` from a checkpoint of another model, class table, bands or
    training settings (seed, data, optimisation; the schedule's length may change).

    Returns:
        The checkpoint, as :func:`read_checkpoint` loads it.
    """
    ckpt = read_checkpoint(path)
    want = dict(getattr(module, "hparams", {}))
    have = ckpt["hyper_parameters"]
    diffs = _differences(want, have) + _resume_differences(want, have)
    if diffs:
        raise CheckpointError(f"{path} does not match this experiment: " + "; ".join(diffs) + ".")
    return ckpt


def next_epoch(ckpt: Mapping[str, Any]) -> int:
    """The epoch a run resumed from this checkpoint starts with (Lightning's processed epochs)."""
    try:
        return int(ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(ckpt["epoch"]) + 1


def load_module(
    path: str | Path,
    *,
    expect_classes: Sequence[str] | None = None,
    expect_codes: Sequence[int] | None = None,
    expect_bands: Mapping[str, Sequence[str]] | None = None,
) -> Any:
    """A :class:`~gee_fusion.deep.train.module.LandCoverModule` rebuilt from a checkpoint, in eval mode.

    Raises:
        CheckpointError: the file is not usable, or its classes / bands differ from the expected.
    """
    from gee_fusion.deep.train.module import LandCoverModule

    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    if expect_classes is not None and list(expect_classes) != list(hp["class_names"]):
        raise CheckpointError(
            f"{path} predicts classes {list(hp['class_names'])}, expected {list(expect_classes)}."
        )
    if expect_codes is not None and [int(c) for c in expect_codes] != [int(c) for c in hp["class_codes"]]:
        raise CheckpointError(
            f"{path} writes class codes {list(hp['class_codes'])}, expected {list(expect_codes)}."
        )
    if expect_bands is not None and {k: list(v) for k, v in expect_bands.items()} != dict(hp["bands"]):
        raise CheckpointError(f"{path} was trained on bands {dict(hp['bands'])}, not {dict(expect_bands)}.")
    module = LandCoverModule(**{k: hp[k] for k in _REQUIRED}, recipe=dict(hp.get("recipe") or {}))
    try:
        module.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model it describes: {exc}") from exc
    return module.eval()
