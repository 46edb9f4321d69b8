"""The demo world's disk cache: same pixels cold, warm, half-filled and across processes; a block
file read group by group; bad folders and files are bypassed or rebuilt with a warning, a part read
late from a file gone or damaged meanwhile computed again; bounded size; one key per world."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import ee
import numpy as np
import pytest
from typer.testing import CliRunner

from gee_fusion.cli import app
from gee_fusion.errors import ConfigError
from gee_fusion.local.world import blocks, cells, disk_cache, sentinel1, sentinel2
from gee_fusion.local.world.config import DEFAULT_WORLD, WorldConfig
from gee_fusion.local.world.disk_cache import WorldCacheWarning
from gee_fusion.local.world.lazy_block import LazyBlock
from tests.conftest import world_grid

CFG = WorldConfig(seed=7, size_km=3.0)
"""A small world of its own, so that no other test's blocks are involved."""

Product = dict[str, np.ndarray]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty disk cache of this test, with the in-memory tier emptied."""
    root = tmp_path / "world_cache"
    monkeypatch.setenv(disk_cache.ENV_DIR, str(root))
    monkeypatch.delenv(disk_cache.ENV_SWITCH, raising=False)
    monkeypatch.delenv(disk_cache.ENV_MB, raising=False)
    blocks.PRODUCTS.clear()
    yield root
    blocks.PRODUCTS.clear()


def block_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.npz"))


def assert_same(a: Product, b: Product) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the block computations of both products (a disk hit computes nothing)."""
    calls = {"s1": 0, "s2": 0}
    for module, kind in ((sentinel1, "s1"), (sentinel2, "s2")):
        original = getattr(module, f"_{kind}_block")

        def wrapped(*args: object, _f: Callable[..., Product] = original, _k: str = kind) -> Product:
            calls[_k] += 1
            return _f(*args)

        monkeypatch.setattr(module, f"_{kind}_block", wrapped)
    return calls


BLOCKS = [(5, 0, 0), (5, 1, 0), (9, 0, 1), (9, 1, 1)]


def read_all() -> tuple[list[Product], list[Product]]:
    return (
        [sentinel2.s2_block(CFG, i, bx, by) for i, bx, by in BLOCKS],
        [sentinel1.s1_block(CFG, i, bx, by) for i, bx, by in BLOCKS],
    )


def test_cold_warm_and_half_filled_blocks_equal_a_run_without_cache(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(disk_cache.ENV_SWITCH, "0")
    ref_s2, ref_s1 = read_all()
    assert not cache.exists()
    monkeypatch.delenv(disk_cache.ENV_SWITCH)
    calls = counting(monkeypatch)
    for state in ("cold", "warm", "half"):
        blocks.PRODUCTS.clear()
        if state == "half":
            for path in block_files(cache)[::2]:
                path.unlink()
        before = dict(calls)
        s2, s1 = read_all()
        for got, ref in zip(s2 + s1, ref_s2 + ref_s1, strict=True):
            assert_same(got, ref)
        computed = sum(calls.values()) - sum(before.values())
        assert computed == {"cold": 8, "warm": 0, "half": 4}[state], state
        assert len(block_files(cache)) == 8


def test_compute_pixels_identical_cold_warm_half_filled(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s2 = ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED").filterDate("2021-06-01", "2021-07-01").first()
    s2 = s2.select(["B2", "B8", "B11", "SCL", "QA60"])
    s1 = ee.ImageCollection("COPERNICUS/S1_GRD").filterDate("2021-06-01", "2021-07-01").first()
    g = world_grid(240, 300, 40, 24)  # straddles two blocks (columns 255 | 256)

    def pixels() -> list[np.ndarray]:
        blocks.PRODUCTS.clear()
        return [
            ee.data.computePixels({"expression": img, "grid": g, "fileFormat": "NUMPY_NDARRAY"})
            for img in (s2, s1)
        ]

    monkeypatch.setenv(disk_cache.ENV_SWITCH, "0")
    reference = pixels()
    monkeypatch.delenv(disk_cache.ENV_SWITCH)
    cold = pixels()
    files = block_files(cache)
    assert len(files) == 4  # two S2 and two S1 blocks
    warm = pixels()
    files[0].unlink()
    files[3].unlink()
    half = pixels()
    for run in (cold, warm, half):
        for got, ref in zip(run, reference, strict=True):
            assert got.dtype == ref.dtype
            for name in ref.dtype.names or ():
                np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    assert len(block_files(cache)) == 4


CHILD = """
import sys
import numpy as np
from gee_fusion.local.world import sentinel1, sentinel2
from gee_fusion.local.world.config import WorldConfig
cfg = WorldConfig(seed=7, size_km=3.0)
np.savez(sys.argv[1], **sentinel2.s2_block(cfg, 11, 1, 1))
np.savez(sys.argv[2], **sentinel1.s1_block(cfg, 11, 1, 1))
"""


def test_two_processes_write_the_same_blocks_and_a_third_reads_them(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(os.environ)
    outs = [(tmp_path / f"s2_{k}.npz", tmp_path / f"s1_{k}.npz") for k in range(2)]
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(a), str(b)], env=env, stderr=subprocess.PIPE)
        for a, b in outs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    files = block_files(cache)
    parts = [p.relative_to(cache).parts[1:] for p in files]
    assert parts == [("s1", "11", "1_1.npz"), ("s2", "11", "1_1.npz")]
    assert not [p for p in cache.rglob("*") if p.name.endswith(disk_cache.TMP_SUFFIX)]
    calls = counting(monkeypatch)
    got_s2, got_s1 = sentinel2.s2_block(CFG, 11, 1, 1), sentinel1.s1_block(CFG, 11, 1, 1)
    assert calls == {"s1": 0, "s2": 0}  # read from disk, not generated
    for s2_out, s1_out in outs:
        with np.load(s2_out) as a, np.load(s1_out) as b:
            assert_same(got_s2, {k: a[k] for k in a.files})
            assert_same(got_s1, {k: b[k] for k in b.files})


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_corrupt_block_file_is_rebuilt_with_a_warning(cache: Path, damage: str) -> None:
    good = sentinel1.s1_block(CFG, 3, 0, 0)
    (path,) = block_files(cache)
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"PK\x03\x04" + bytes(5000), "empty": b""}[damage]
    )
    blocks.PRODUCTS.clear()
    with pytest.warns(WorldCacheWarning, match=r"unreadable.*generated again"):
        again = sentinel1.s1_block(CFG, 3, 0, 0)
    assert_same(again, good)
    with np.load(path) as stored:  # rewritten whole
        assert_same({k: stored[k] for k in stored.files}, good)


def test_a_bad_byte_inside_a_block_file_is_caught(cache: Path) -> None:
    good = sentinel1.s1_block(CFG, 3, 1, 0)
    (path,) = block_files(cache)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside an array: the archive's CRC no longer matches
    path.write_bytes(bytes(data))
    blocks.PRODUCTS.clear()
    with pytest.warns(WorldCacheWarning, match="unreadable"):
        assert_same(sentinel1.s1_block(CFG, 3, 1, 0), good)


def test_a_warm_s2_block_is_read_group_by_group_on_first_use(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(disk_cache.ENV_SWITCH, "0")
    reference = dict(sentinel2.s2_block(CFG, 8, 1, 0))
    generated = sentinel2._s2_block(CFG, 8, 1, 0)  # every field, the ones not kept included
    monkeypatch.delenv(disk_cache.ENV_SWITCH)
    blocks.PRODUCTS.clear()
    sentinel2.s2_block(CFG, 8, 1, 0)  # cold: computed, written
    blocks.PRODUCTS.clear()
    calls = counting(monkeypatch)
    warm = sentinel2.s2_block(CFG, 8, 1, 0)
    assert isinstance(warm, LazyBlock)
    assert warm.loaded() == set(sentinel2.GROUPS[0])  # the bands: what the L1C and L2A collections read
    (path,) = [p for p in block_files(cache) if p.parts[-3] == "s2"]
    with zipfile.ZipFile(path) as archive:  # stored group by group: one read a group
        stored = [info.filename[:-4] for info in archive.infolist()]
    assert stored == [name for group in sentinel2.GROUPS for name in group]
    for name, how in sentinel2.AT_20M.items():  # kept at 20 m, as the 20 m bands read them
        np.testing.assert_array_equal(
            warm[name + sentinel2.SUFFIX_20M], cells.reduce_cells(generated[name], 2, how)
        )
    assert not set(sentinel2.KEPT_OUT) & set(warm) and set(sentinel2.KEPT_OUT) < set(generated)
    assert sorted(warm) == sorted(reference) and 1.5 * 2**20 < blocks.product_bytes(warm) < 2 * 2**20
    np.testing.assert_array_equal(warm["cs"], reference["cs"])
    assert warm.loaded() == {*sentinel2.GROUPS[0], "cs", "cs_cdf"}
    assert_same(warm, reference)
    assert calls == {"s1": 0, "s2": 0}


@pytest.mark.parametrize("damage", ["evicted", "bad byte"])
def test_a_part_of_a_file_gone_or_damaged_since_the_first_read_is_computed_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    reference = dict(sentinel2.s2_block(CFG, 9, 0, 1))
    (path,) = block_files(cache)
    blocks.PRODUCTS.clear()
    warm = sentinel2.s2_block(CFG, 9, 0, 1)
    assert "cs" not in cast(LazyBlock, warm).loaded()
    if damage == "evicted":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[data.index(reference["cs"].tobytes()) + 4321] ^= 0x04
        path.write_bytes(bytes(data))
    calls = counting(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_same(warm, reference)
    assert calls == {"s1": 0, "s2": 1}
    cache_warnings = [str(w.message) for w in caught if issubclass(w.category, WorldCacheWarning)]
    assert len(cache_warnings) == (damage == "bad byte") and all("unreadable" in m for m in cache_warnings)
    with np.load(path) as stored:  # written again, whole
        assert_same({k: stored[k] for k in stored.files}, reference)


def test_an_unusable_folder_is_bypassed_with_one_warning(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(disk_cache.ENV_SWITCH, "0")
    reference = [sentinel1.s1_block(CFG, 4, bx, 0) for bx in range(3)]
    blocks.PRODUCTS.clear()
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    monkeypatch.setenv(disk_cache.ENV_DIR, str(in_the_way / "cache"))  # mkdir fails (tests run as root)
    monkeypatch.delenv(disk_cache.ENV_SWITCH)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [sentinel1.s1_block(CFG, 4, bx, 0) for bx in range(3)]
    cache_warnings = [w for w in caught if issubclass(w.category, WorldCacheWarning)]
    assert len(cache_warnings) == 1, [str(w.message) for w in caught]
    message = str(cache_warnings[0].message)
    assert "cannot use" in message and disk_cache.ENV_DIR in message
    for a, b in zip(got, reference, strict=True):
        assert_same(a, b)


def test_a_folder_that_cannot_be_read_is_bypassed(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = sentinel1.s1_block(CFG, 6, 0, 0)
    blocks.PRODUCTS.clear()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(disk_cache.npz, "read_part", refuse)
    with pytest.warns(WorldCacheWarning, match="cannot use"):
        assert_same(sentinel1.s1_block(CFG, 6, 0, 0), good)


def fake(value: float) -> Callable[[], Product]:
    return lambda: {"a": np.full((256, 256), value, dtype=np.float32)}  # 256 KiB + a header


def test_eviction_keeps_the_folder_under_a_tiny_bound_least_recently_used_first(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(disk_cache.ENV_MB, "1")  # room for three of these blocks
    limit = 2**20
    for i in range(3):
        disk_cache.fetch("s2", CFG, i, 0, 0, fake(i))
    first = disk_cache.block_path(cache, CFG, "s2", 0, 0, 0)
    for k, path in enumerate(block_files(cache)):
        os.utime(path, (1_000_000 + k, 1_000_000 + k))  # deterministic ages
    disk_cache.fetch("s2", CFG, 0, 0, 0, fake(-1.0))  # a hit: touched, so now the most recent
    for i in range(3, 5):
        value = disk_cache.fetch("s2", CFG, i, 0, 0, fake(i))
        assert value["a"][0, 0] == i
        assert sum(p.stat().st_size for p in block_files(cache)) <= limit
    assert first.is_file()  # read recently, kept
    assert [p.parent.name for p in block_files(cache)] == ["0", "3", "4"]  # 1 and 2, the oldest, went
    hit = disk_cache.fetch("s2", CFG, 0, 0, 0, fake(-1.0))
    assert hit["a"][0, 0] == 0.0  # what was written, not recomputed


def test_the_folder_is_scanned_rarely(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[int] = []
    real = disk_cache.evict

    def spy(root: Path, limit: int) -> int:
        scans.append(limit)
        return real(root, limit)

    monkeypatch.setattr(disk_cache, "evict", spy)
    for i in range(20):
        disk_cache.fetch("s2", CFG, i, 0, 0, fake(i))
    assert len(scans) == 1  # the first write learns the folder's size; later ones add to it


def test_a_changed_world_config_or_generator_gets_a_new_key(cache: Path, tmp_path: Path) -> None:
    other: dict[str, Any] = {
        "seed": 8, "lon": 1.2, "lat": 49.5, "size_km": 4.0, "crs": "EPSG:32630", "changes": 3,
        "change_scale": 2.0,
    }  # fmt: skip
    assert set(other) == {f.name for f in dataclasses.fields(WorldConfig)}, "a new field: add it here"
    names = {disk_cache.key_name(CFG)}
    for field, value in other.items():
        names.add(disk_cache.key_name(dataclasses.replace(CFG, **{field: value})))
    assert len(names) == 1 + len(other)
    assert len({n.split("-")[0] for n in names}) == 1  # same generator
    assert disk_cache.key_name(WorldConfig(seed=7, size_km=3.0)) == disk_cache.key_name(CFG)

    sentinel1.s1_block(CFG, 2, 0, 0)
    sentinel1.s1_block(dataclasses.replace(CFG, change_scale=2.0), 2, 0, 0)
    assert len({p.relative_to(cache).parts[0] for p in block_files(cache)}) == 2

    source = Path(disk_cache.__file__).parent
    copy = tmp_path / "world_copy"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert disk_cache.source_hash(copy) == disk_cache.generator_version()
    (copy / "noise.py").write_text((copy / "noise.py").read_text() + "\n# edited\n")
    assert disk_cache.source_hash(copy) != disk_cache.generator_version()


def test_switched_off_and_bad_bound(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(disk_cache.ENV_SWITCH, "0")
    disk_cache.fetch("s2", CFG, 0, 0, 0, fake(1.0))
    assert not cache.exists()
    monkeypatch.delenv(disk_cache.ENV_SWITCH)
    monkeypatch.setenv(disk_cache.ENV_MB, "lots")
    with pytest.raises(ConfigError, match=r"GEE_FUSION_WORLD_DISK_CACHE_MB.*in MiB"):
        disk_cache.fetch("s2", CFG, 0, 0, 0, fake(1.0))


def test_default_location_is_the_user_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(disk_cache.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert disk_cache.cache_root() == tmp_path / "gee_fusion" / "world"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert disk_cache.cache_root() == Path.home() / ".cache" / "gee_fusion" / "world"


def test_cli_info_and_clear(cache: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["world", "cache", "--info"])
    assert res.exit_code == 0, res.output
    assert f"location: {cache}" in res.output and "0 blocks" in res.output
    sentinel1.s1_block(CFG, 1, 0, 0)
    disk_cache.fetch("s2", DEFAULT_WORLD, 0, 0, 0, fake(1.0))
    cache.joinpath("notes.txt").write_text("mine")
    res = runner.invoke(app, ["world", "cache", "--info"])
    assert res.exit_code == 0, res.output
    assert "2 blocks, 2 keys" in res.output
    for needle in (disk_cache.key_name(CFG), "seed=7", "size_km=3.0", "current generator"):
        assert needle in res.output, res.output
    res = runner.invoke(app, ["world", "cache", "--clear"])
    assert res.exit_code == 0, res.output
    assert "removed 2 blocks" in res.output
    assert block_files(cache) == [] and [p.name for p in cache.iterdir()] == ["notes.txt"]
    for args in ([], ["--info", "--clear"]):
        res = runner.invoke(app, ["world", "cache", *args])
        assert res.exit_code == 2 and "error:" in res.output and "--info" in res.output, res.output
    sentinel1.s1_block(CFG, 1, 1, 0)  # the cache works again after a clear
    assert len(block_files(cache)) == 1
