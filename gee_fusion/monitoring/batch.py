"""Monthly classification by Earth Engine batch tasks (the ``batch`` section of a monitoring YAML).

Classifying a month interactively fetches the month's class map while Earth Engine computes it,
which hits the interactive limits (request size, time, concurrency) over a city. In batch mode
each month not yet done becomes one ``Export.image.toAsset`` task of the same image (``class``,
``source``, ``confidence``, ``VV``, ``VH`` as float32, on exactly the area's grid) into
``asset_folder``, named ``<job name>_YYYY_MM``. A run starts the tasks of the months that have
none, records them in ``batch_tasks.json`` beside the outputs, and brings back every month whose
asset exists (a finished task): reading a stored asset is fast, so the job then continues as in
interactive mode. Months whose task is still queued or running are left for the next run (the job
says so); a failed or unknown task is started again. On the local engine a task has run when ``start()``
returns, and its asset outlives the process (:func:`gee_fusion.local.tasks.register_exported_assets`).

Create the folder once on Earth Engine (``earthengine create folder projects/<p>/assets/<folder>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import ee
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gee_fusion.export.batch import BatchConfig, image_task, start_task
from gee_fusion.export.fetch import compute_by_tile
from gee_fusion.grid import PixelGrid
from gee_fusion.io.atomic import atomic_path

STATE_FILE = "batch_tasks.json"
BANDS = ("class", "source", "confidence", "VV", "VH")
_FOLDER = re.compile(
    r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/assets|users/[A-Za-z0-9_-]+)(/[A-Za-z0-9_-]+)+$"
)
_DONE, _RUNNING = {"COMPLETED", "SUCCEEDED"}, {"READY", "PENDING", "RUNNING", "CANCEL_REQUESTED"}


class MonitorBatch(BaseModel):
    """Where the monthly batch tasks write (``batch`` section of a monitoring YAML)."""

    model_config = ConfigDict(extra="forbid")

    asset_folder: str = Field(
        description="An existing asset folder: projects/<project>/assets/<folder> or users/<user>/<folder>."
    )
    priority: int | None = Field(None, ge=0, le=9999, description="Task priority (Earth Engine projects).")

    @field_validator("asset_folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        value = value.rstrip("/")
        if not _FOLDER.match(value):
            raise ValueError(
                "asset_folder must look like 'projects/<project>/assets/<folder>' or "
                f"'users/<user>/<folder>', got {value!r}"
            )
        return value

    def asset_id(self, name: str, month: date) -> str:
        """The asset of one month's classification."""
        return f"{self.asset_folder}/{name}_{month:%Y_%m}"


@dataclass(frozen=True)
class BatchProgress:
    """What a batch pass did: months brought back, tasks started, months still running."""

    fetched: list[date]
    started: list[date]
    running: list[date]


def _load_state(out: Path) -> dict[str, dict[str, Any]]:
    path = out / STATE_FILE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # unreadable: the assets say what is done; tasks are started again
    return state if isinstance(state, dict) else {}


def _save_state(out: Path, state: dict[str, dict[str, Any]]) -> None:
    with atomic_path(out / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))


def _asset_exists(asset_id: str) -> bool:
    return ee.data.getInfo(asset_id) is not None


def _task_state(task_id: str) -> str:
    return str(ee.data.getTaskStatus(task_id)[0].get("state", "UNKNOWN"))


def classify_by_batch(
    months: Sequence[date],
    image_of: Callable[[date], ee.Image],
    *,
    name: str,
    grid: PixelGrid,
    out: Path,
    batch: MonitorBatch,
    write: Callable[[date, dict[str, Any]], None],
) -> BatchProgress:
    """Start a task for each month without one, and bring back (``write``) every month whose asset
    exists.

    Args:
        months: The months still to do, in order.
        image_of: A month's classification image (bands :data:`BANDS`).
        name: The job's name (prefix of the assets and tasks).
        grid: The area's grid (the assets are exported on it exactly).
        out: The job's output folder (holds ``batch_tasks.json``).
        batch: The destination.
        write: Called with each month brought back and its bands (numpy arrays by band name).

    Raises:
        ExportError: A task's request is invalid or Earth Engine refused to start it.
    """
    state = _load_state(out)
    fetched, started, running = [], [], []
    for month in months:
        key, asset = f"{month:%Y-%m}", batch.asset_id(name, month)
        record = state.get(key)
        if not _asset_exists(asset):
            status = _task_state(record["task_id"]) if record else "NONE"
            if status in _RUNNING:
                running.append(month)
                continue
            image = image_of(month).select(list(BANDS)).toFloat()
            options = BatchConfig(destination="asset", asset_id=asset, priority=batch.priority)
            task = image_task(image, grid, name=f"{name}_{month:%Y_%m}", batch=options)
            done = start_task(task, grid)
            state[key] = {"task_id": str(task.id), "asset_id": asset, "state": str(done.get("state"))}
            _save_state(out, state)
            started.append(month)
            if not _asset_exists(asset):  # queued on Earth Engine: the next run fetches it
                running.append(month)
                continue
        write(month, compute_by_tile(ee.Image(asset), grid))  # an older asset may lack confidence
        state[key] = {**state.get(key, {"asset_id": asset}), "state": "FETCHED"}
        fetched.append(month)
    _save_state(out, state)
    return BatchProgress(fetched, started, running)
