"""The demo world's helper processes (``processes.py``): blocks made with helpers are byte for byte
those made in one process, cold and read back warm; a helper follows the disk cache settings of each
task; a helper that dies gives one warning and the blocks are then made here, still right; the disk
cache off means no helper; a bad process count is a ConfigError; the blocks are shared evenly."""

from __future__ import annotations

import functools
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from gee_fusion.errors import ConfigError
from gee_fusion.local.world import blocks, changes, disk_cache, processes, schedule, sentinel2
from gee_fusion.local.world.config import WorldConfig

CFG = WorldConfig(seed=23, size_km=6.0)
"""A world of its own (600 x 600 px: 3 x 3 blocks), so that no other test's blocks are involved."""
WINDOW = (100, 60, 500, 540)
"""A window of its 10 m lattice over 3 x 3 blocks."""


def _acquisition(k: int = 2) -> int:
    acqs = schedule.s2_acquisitions()
    return next(j for j, a in enumerate(acqs) if a.when.year == 2021) + k


def _fields(i: int) -> list[bytes]:
    """Every field of every block of the window, in memory emptied first (read from disk)."""
    blocks.PRODUCTS.clear()
    return [
        np.ascontiguousarray(product[name]).tobytes()
        for bx, by in blocks.window_blocks(*WINDOW)
        for product in [sentinel2.s2_block(CFG, i, bx, by)]
        for name in sorted(product)
    ]


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(disk_cache.ENV_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(processes.ENV_PROCESSES, "3")  # this process and two helpers
    processes.stop()
    blocks.PRODUCTS.clear()
    sentinel2.GROUNDS.clear()
    yield
    processes.stop()


def _reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, i: int) -> list[bytes]:
    """The fields made in this process alone, disk cache off."""
    with monkeypatch.context() as m:
        m.setenv(disk_cache.ENV_SWITCH, "0")
        m.setenv(processes.ENV_PROCESSES, "1")
        blocks.PRODUCTS.clear()
        sentinel2.GROUNDS.clear()
        fields = _fields(i)
    blocks.PRODUCTS.clear()  # the window's blocks are to be made again
    return fields


def test_blocks_made_with_helpers_equal_those_made_alone(
    helpers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    i = _acquisition()
    expected = _reference(monkeypatch, tmp_path, i)
    assert processes.warm_up(timeout=60)
    made = []
    original = processes.generate

    def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(processes, "generate", recorded)
    sentinel2._prefetch(CFG, i, WINDOW)
    assert made == [True]  # shared with the helpers: only this process's share is in its memory
    here = [("s2", CFG, i, bx, by) in blocks.PRODUCTS for bx, by in blocks.window_blocks(*WINDOW)]
    assert here == [processes.share_of(bx, by, 3) == 0 for bx, by in blocks.window_blocks(*WINDOW)]
    files = sorted((tmp_path / "cache").rglob("*.npz"))
    assert len(files) == 9  # every block written, the helpers' ones too
    assert _fields(i) == expected
    sentinel2.GROUNDS.clear()
    assert _fields(i) == expected  # read back warm


def test_a_helper_follows_the_disk_cache_settings_of_each_task(
    helpers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert processes.warm_up(timeout=60)
    for k, folder in enumerate(("first", "second")):
        monkeypatch.setenv(disk_cache.ENV_DIR, str(tmp_path / folder))
        sentinel2._prefetch(CFG, _acquisition(5 + k), WINDOW)
        assert len(list((tmp_path / folder).rglob("*.npz"))) == 9, folder


def test_a_helper_that_dies_gives_one_warning_and_the_blocks_are_made_here(
    helpers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    i = _acquisition(8)
    expected = _reference(monkeypatch, tmp_path, i)
    assert processes.warm_up(timeout=60)
    assert processes._helpers is not None
    processes._helpers[1][0].proc.kill()
    processes._helpers[1][0].proc.wait()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sentinel2._prefetch(CFG, i, WINDOW)
        assert _fields(i) == expected
        sentinel2._prefetch(CFG, _acquisition(9), WINDOW)  # no helper any more, no new warning
    failed = [w for w in caught if issubclass(w.category, processes.WorldProcessWarning)]
    assert len(failed) == 1 and processes.ENV_PROCESSES in str(failed[0].message)
    assert not processes.warm_up(timeout=1)


def test_no_helper_without_the_disk_cache(helpers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(disk_cache.ENV_SWITCH, "0")
    assert not processes.generate(lambda coords, keep=True: None, [(0, 0), (1, 0)])
    assert processes._helpers is None  # none started


def test_planted_changes_are_given_to_a_helper_not_placed_again() -> None:
    cfg = WorldConfig(seed=29, size_km=3.0)
    placed = changes.planted_changes(cfg)
    changes._adopted.pop(cfg, None)
    changes.adopt_planted_changes(cfg, placed)
    changes._place.cache_clear()
    try:
        assert changes.planted_changes(cfg) is placed
        assert changes._place.cache_info().currsize == 0
    finally:
        changes._adopted.pop(cfg, None)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_blocks_are_shared_evenly_and_always_to_the_same_process(n: int) -> None:
    coords = [(bx, by) for by in range(3, 9) for bx in range(5, 13)]  # 8 x 6 blocks
    counts = np.bincount([processes.share_of(bx, by, n) for bx, by in coords], minlength=n)
    assert counts.max() - counts.min() <= 2
    assert [processes.share_of(7, 4, n) for _ in range(3)] == [processes.share_of(7, 4, n)] * 3


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_bad_process_count_is_a_config_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(processes.ENV_PROCESSES, raw)
    with pytest.raises(ConfigError, match=processes.ENV_PROCESSES):
        processes.count()


def test_helpers_that_cannot_start_give_one_warning_and_the_blocks_are_made_here(
    helpers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("no new process here")

    monkeypatch.setattr(processes.subprocess, "Popen", refuse)
    with pytest.warns(processes.WorldProcessWarning, match="no new process here"):
        assert not processes.generate(lambda coords, keep=True: None, [(0, 0), (1, 0)])
    assert not processes.generate(lambda coords, keep=True: None, [(0, 0), (1, 0)])  # no second try


def _nothing(coords: object, keep: bool = True) -> None:
    """Makes no block (a picklable task)."""


def _die_there(coords: object, keep: bool = True) -> None:
    """Ends the helper process it runs in (nothing here)."""
    if not keep:
        os._exit(3)


def _bypass_there(coords: object, keep: bool = True) -> None:
    """Turns the disk cache off in the helper it runs in (its blocks would be made for nothing)."""
    if not keep:
        os.environ[disk_cache.ENV_SWITCH] = "0"


@pytest.mark.parametrize(("make", "words"), [(_die_there, "ended"), (_bypass_there, "did not keep")])
def test_a_helper_that_fails_during_a_task_gives_one_warning(helpers: None, make: object, words: str) -> None:
    assert processes.warm_up(timeout=60)
    with pytest.warns(processes.WorldProcessWarning, match=words):
        assert not processes.generate(functools.partial(make), [(0, 0), (1, 0), (2, 0)])  # type: ignore[arg-type]
    assert processes._helpers is None and not processes.warm_up(timeout=1)


def test_an_interruption_while_waiting_stops_the_helpers_and_is_raised(
    helpers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert processes.warm_up(timeout=60)

    def interrupted(self: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(processes._Helper, "receive", interrupted)
    with pytest.raises(KeyboardInterrupt), pytest.warns(processes.WorldProcessWarning):
        processes.generate(_nothing, [(0, 0), (1, 0), (2, 0)])
    assert processes._helpers is None  # an answer may be left in a pipe: those helpers are gone


def test_a_second_thread_uses_its_own_threads_while_the_helpers_are_busy(helpers: None) -> None:
    assert processes.warm_up(timeout=60)
    got: list[bool] = []
    with processes._lock:  # another thread's window in progress
        other = threading.Thread(target=lambda: got.append(processes.generate(print, [(0, 0), (1, 0)])))
        other.start()
        other.join(timeout=30)  # it does not wait for the lock
        assert not other.is_alive()
    assert got == [False]


def test_helpers_run_this_gee_fusion_not_the_one_of_the_working_directory(
    helpers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "cwd" / "gee_fusion"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('the working directory's gee_fusion')\n")
    monkeypatch.chdir(tmp_path / "cwd")
    assert processes.warm_up(timeout=60)


def test_a_task_that_cannot_be_sent_gives_one_warning(helpers: None) -> None:
    assert processes.warm_up(timeout=60)
    with pytest.warns(processes.WorldProcessWarning, match="could not be sent"):
        assert not processes.generate(lambda coords, keep=True: None, [(0, 0), (1, 0), (2, 0)])
