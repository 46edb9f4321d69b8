"""The monitoring job's batch mode: one Export.image.toAsset task per month, months brought back
from the assets (also by a later process), months still running left for the next run, and the
same class maps as the interactive mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from gee_fusion.errors import ConfigError
from gee_fusion.local import tasks
from gee_fusion.local.catalog import CATALOG
from gee_fusion.local.world.changes import planted_changes
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.monitoring import batch
from gee_fusion.monitoring.job import load_monitor_config, run_monitor

FOLDER = "users/demo/monitoring"


def config(tmp_path: Path, out: str, *, with_batch: bool) -> Path:
    """A 48 x 48 px area by the construction site built in 2023-01, from 2022-09."""
    site = next(c for c in planted_changes(W) if c.kind == "construction" and str(c.end) == "2023-01-01")
    x0, y1 = W.origin[0] + (site.col0 - 12) * 10.0, W.origin[1] - (site.row0 - 12) * 10.0
    path = tmp_path / f"{out}.yaml"
    text = (
        f"area: {{origin: [{x0}, {y1}], size_px: [48, 48]}}\n"
        f'start: "2022-09"\nout: {tmp_path / out}\npoints_per_class: 30\nrf: {{number_of_trees: 8}}\n'
    )
    path.write_text(text + (f"batch: {{asset_folder: {FOLDER}}}\n" if with_batch else ""))
    return path


@pytest.fixture(autouse=True)
def own_exports(tmp_path: Path) -> Iterator[Path]:
    """Exports of this test only (then back to the session's folder)."""
    tasks.set_exports_dir(tmp_path / "exports")
    yield tmp_path / "exports"
    tasks.set_exports_dir(None)


def class_maps(out: Path) -> list[np.ndarray]:
    maps = []
    for path in sorted(out.glob("months/*/class.tif")):
        with rasterio.open(path) as src:
            maps.append(src.read())
    return maps


@pytest.mark.slow
def test_batch_months_equal_the_interactive_ones_and_come_back_in_a_new_process(tmp_path: Path) -> None:
    res = run_monitor(
        load_monitor_config(config(tmp_path, "batch", with_batch=True)), until="2022-12", progress=False
    )
    assert len(res.new_months) == 4 and res.months[-1].month == 12
    state = json.loads((tmp_path / "batch" / batch.STATE_FILE).read_text())
    assert sorted(state) == ["2022-09", "2022-10", "2022-11", "2022-12"]
    assert all(r["state"] == "FETCHED" and r["task_id"] for r in state.values())
    assets = tasks.exports_dir() / "assets" / FOLDER
    assert sorted(p.name for p in assets.glob("*.tif")) == [
        f"demo_city_monitoring_2022_{m:02d}.tif" for m in (9, 10, 11, 12)
    ]
    run_monitor(
        load_monitor_config(config(tmp_path, "interactive", with_batch=False)),
        until="2022-12",
        progress=False,
    )
    for got, want in zip(class_maps(tmp_path / "batch"), class_maps(tmp_path / "interactive"), strict=True):
        assert np.array_equal(got, want)
    # a new process: the catalog forgets the assets; connecting registers them from the exports folder
    for asset_id in [i for i in CATALOG.ids() if i.startswith(FOLDER)]:
        CATALOG.unregister(asset_id)
    assert len([i for i in tasks.register_exported_assets() if i.startswith(FOLDER)]) == 4
    for path in (tmp_path / "batch").glob("months/*/class.tif"):
        path.unlink()
    started: list[Any] = []
    real_start = batch.start_task

    def counting_start(task: Any, grid: Any) -> dict[str, Any]:
        started.append(task)
        return real_start(task, grid)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "start_task", counting_start)
        again = run_monitor(
            load_monitor_config(config(tmp_path, "batch", with_batch=True)), until="2022-12", progress=False
        )
    assert not started and len(again.new_months) == 4  # fetched from the assets, no task started
    for got, want in zip(class_maps(tmp_path / "batch"), class_maps(tmp_path / "interactive"), strict=True):
        assert np.array_equal(got, want)


def test_months_still_running_are_left_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "start_task", lambda task, grid: {"state": "READY"})
    monkeypatch.setattr(batch, "_asset_exists", lambda asset_id: False)
    monkeypatch.setattr(batch, "_task_state", lambda task_id: "RUNNING")
    cfg = load_monitor_config(config(tmp_path, "queued", with_batch=True))
    res = run_monitor(cfg, until="2022-11", progress=False)
    assert res.months == [] and res.alerts == 0
    state = json.loads((tmp_path / "queued" / batch.STATE_FILE).read_text())
    assert sorted(state) == ["2022-09", "2022-10", "2022-11"] and all(
        r["state"] == "READY" for r in state.values()
    )
    calls: list[str] = []

    def counting_start(task: Any, grid: Any) -> dict[str, Any]:
        calls.append("start")
        return {"state": "READY"}

    monkeypatch.setattr(batch, "start_task", counting_start)
    run_monitor(cfg, until="2022-11", progress=False)
    assert calls == []  # running tasks are not started twice
    monkeypatch.setattr(batch, "_task_state", lambda task_id: "FAILED")
    run_monitor(cfg, until="2022-11", progress=False)
    assert calls == ["start"] * 3  # failed tasks are started again


def test_a_bad_asset_folder_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("batch: {asset_folder: my-bucket/monitoring}\n")
    with pytest.raises(ConfigError, match="projects/<project>/assets/<folder>"):
        load_monitor_config(path)


def test_the_rouen_batch_config_loads() -> None:
    cfg = load_monitor_config(Path(__file__).parents[1] / "ee_scripts/configs/rouen_monitoring_batch.yaml")
    assert cfg.batch is not None and cfg.engine == "earthengine" and cfg.labels == "worldcover"
    assert (
        cfg.batch.asset_id(cfg.name, date(2024, 6, 1))
        == "projects/my-project/assets/monitoring/rouen_monitoring_2024_06"
    )
    assert cfg.area.grid().shape == (1200, 1200)
