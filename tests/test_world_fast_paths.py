"""The demo world's and the local engine's fast paths equal the plain numpy they replace: the
integer block mean of 20 m / 60 m bands (block by block for 20 m), nearest gathering by two takes
(columns doubled by widening), and the strip-wise filling of computePixels' structured result; a
block cache trims the heap after evicting enough; block files written and read by npz; the
Sentinel-2 bands of a block rendered band by band."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from gee_fusion.local import server, workers
from gee_fusion.local.grid import gather, take_columns
from gee_fusion.local.server import interleave
from gee_fusion.local.world import (
    atmosphere,
    blocks,
    noise,
    npz,
    phenology,
    s2_bands,
    schedule,
    sentinel2,
    surface,
)
from gee_fusion.local.world.blocks import BLOCK
from gee_fusion.local.world.cells import reduce_cells as _reduce
from gee_fusion.local.world.config import DEFAULT_WORLD
from gee_fusion.local.world.landcover import INDUSTRIAL, OPEN


@pytest.mark.parametrize("factor", [2, 6])
@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_integer_block_mean_rounds_half_to_even_like_rint(factor: int, dtype: type) -> None:
    rng = np.random.default_rng(factor)
    top = np.iinfo(dtype).max
    arr = rng.integers(0, top + 1, size=(60 + factor - 1, 73), dtype=dtype)  # a partial last cell
    arr[:12, :12] = rng.integers(0, 3, size=(12, 12))  # small values: many exact halves
    arr[60 - factor : 60, 72 - factor : 72] = top  # no overflow at the top of the range
    cells = arr[:60, :72].reshape(60 // factor, factor, 72 // factor, factor)
    expected = np.rint(cells.mean(axis=(1, 3)))
    got = _reduce(arr, factor, "mean")
    assert got.dtype == arr.dtype
    np.testing.assert_array_equal(got, expected.astype(dtype))


def test_gather_by_takes_equals_the_outer_index() -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 100, size=(20, 30)).astype(np.uint16)
    mask = rng.random((20, 30)) > 0.2
    rows, cols = np.arange(-3, 37) // 2, np.arange(-2, 64) // 2
    values, valid = gather(arr, mask, rows, cols, shape=(20, 30))
    ri, ci = np.clip(rows, 0, 19), np.clip(cols, 0, 29)
    inside = ((rows >= 0) & (rows < 20))[:, None] & ((cols >= 0) & (cols < 30))[None, :]
    np.testing.assert_array_equal(values, arr[ri[:, None], ci[None, :]])
    np.testing.assert_array_equal(valid, mask[ri[:, None], ci[None, :]] & inside)
    for flag in (True, False):  # a constant (broadcast) mask
        _, const = gather(arr, np.broadcast_to(np.bool_(flag), arr.shape), rows, cols, shape=(20, 30))
        np.testing.assert_array_equal(const, inside & flag)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.int32, np.bool_, np.float64])
def test_take_columns_equals_the_take(dtype: type) -> None:
    arr = (np.random.default_rng(3).random((7, 9)) * 100).astype(dtype)
    for first in range(4):
        for phase in (0, 1):  # pairs from the first pixel, or from the second half of one
            for n in range(2, 2 * (9 - first) + 3):  # up to one pair past the last column (clipped)
                cols = np.clip(first + (np.arange(n) + phase) // 2, 0, 8)
                got = take_columns(arr, cols)
                assert got.dtype == arr.dtype, (first, phase, n)
                np.testing.assert_array_equal(got, arr.take(cols, axis=1), err_msg=f"{first} {phase} {n}")
    for cols in ([0, 0, 2, 2, 3], [3, 3, 3, 4], [4, 3], [5]):  # not a doubling: the take itself
        np.testing.assert_array_equal(take_columns(arr, np.array(cols)), arr.take(cols, axis=1))


@pytest.mark.parametrize(("factor", "how"), [(2, "mean"), (2, "centre"), (4, "mean"), (1, "mean")])
@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.float32])
def test_a_window_reduced_block_by_block_equals_the_reduced_window(
    factor: int, how: str, dtype: type
) -> None:
    rng = np.random.default_rng(factor)
    tiles = {
        (bx, by): (rng.random((blocks.BLOCK, blocks.BLOCK)) * 900).astype(dtype)
        for bx in range(3)
        for by in range(2)
    }
    for col0, row0, width, height in ((0, 0, 768, 512), (200, 60, 400, 300), (252, 248, 8, 16)):
        whole = blocks.assemble(lambda bx, by: tiles[bx, by], col0, row0, width, height)
        got = blocks.assemble(lambda bx, by: tiles[bx, by], col0, row0, width, height,
                              reduce=lambda a: _reduce(a, factor, how), factor=factor)  # fmt: skip
        assert got.dtype == whole.dtype
        np.testing.assert_array_equal(got, _reduce(whole, factor, how))
    with pytest.raises(ValueError, match="straddle"):
        blocks.assemble(lambda bx, by: tiles[bx, by], 3, 0, 6, 6, reduce=lambda a: a, factor=2)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_interleave_fills_every_field_strip_by_strip(monkeypatch: pytest.MonkeyPatch, threads: str) -> None:
    monkeypatch.setenv(workers.ENV_WORKERS, threads)
    monkeypatch.setattr(server, "PARALLEL_BYTES", 0)  # runs of strips filled by the threads
    monkeypatch.setattr(server, "INTERLEAVE_BYTES", 41 * 11 * 5)  # 5 rows a strip
    rng = np.random.default_rng(2)
    shape = (97, 41)
    a = rng.integers(0, 60000, size=shape).astype(np.uint16)
    b = rng.random(shape).astype(np.float32)
    mask_b = rng.random(shape) > 0.5
    dtype = np.dtype([("a", np.uint16), ("b", np.float32), ("c", np.uint8)])
    every = np.broadcast_to(np.True_, shape)
    out = interleave(dtype, shape, [("a", a, every), ("b", b, mask_b), ("c", 7, np.zeros(shape, bool))])
    np.testing.assert_array_equal(out["a"], a)
    np.testing.assert_array_equal(out["b"], np.where(mask_b, b, 0))
    assert (out["c"] == 0).all()


def test_a_block_cache_trims_the_heap_after_evicting_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(blocks, "release_free_memory", lambda: trims.append(1))
    monkeypatch.setattr(blocks, "TRIM_EVERY", 3000)
    cache: blocks.ByteLRU[np.ndarray] = blocks.ByteLRU(2500, sizeof=lambda a: a.nbytes)
    for k in range(6):  # 1000 bytes each: two fit, every put from the third evicts one
        cache.get(k, lambda: np.zeros(1000, np.uint8))
    assert len(trims) == 1  # after 3000 bytes evicted
    monkeypatch.undo()
    blocks.release_free_memory()  # the real one: harmless (a no-op off glibc)


def test_block_files_round_trip_through_npz_and_numpy(tmp_path: Path) -> None:
    arrays = {
        "c": np.arange(6, dtype=np.uint16).reshape(2, 3),
        "f": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "empty": np.zeros((0, 5), np.float32),
        "flag": np.ones((3, 3), bool),
        "scalar": np.asarray(np.float32(3)),
    }
    path = tmp_path / "block.npz"
    with open(path, "wb") as fh:
        npz.write(fh, arrays)
    back = npz.read(path)
    with np.load(path) as stored:  # numpy reads what npz writes
        for name, arr in arrays.items():
            for got in (back[name], stored[name]):
                assert got.dtype == arr.dtype and got.shape == arr.shape, name
                np.testing.assert_array_equal(got, arr, err_msg=name)
    data = bytearray(path.read_bytes())
    data[data.index(arrays["c"].tobytes()) + 3] ^= 0xFF  # a bad byte inside array "c"
    path.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        npz.read(path)


BLOCK_LIKE = {
    "B2": np.arange(256 * 256, dtype=np.uint16).reshape(256, 256),
    "SCL": np.full((256, 256), 4, np.uint8),
    "cloud": np.linspace(0, 1, 256 * 256, dtype=np.float32).reshape(256, 256),
}


def written(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as fh:
        npz.write(fh, arrays)
    return path


def test_block_files_hold_aligned_arrays_and_a_checked_index(tmp_path: Path) -> None:
    assert npz.fast_crc32c()  # google_crc32c's C implementation (a dependency of zarr and of ee)
    path = written(tmp_path / "block.npz", BLOCK_LIKE)
    comment = zipfile.ZipFile(path).comment
    assert comment.startswith(npz.INDEX_TAG)
    back = npz.read(path)
    base = next(iter(back.values())).base
    for name, arr in BLOCK_LIKE.items():
        np.testing.assert_array_equal(back[name], arr, err_msg=name)
        assert back[name].flags.writeable and back[name].flags.aligned, name
        assert (back[name].ctypes.data - np.asarray(base).ctypes.data) % npz.ALIGN == 0, name
    with np.load(path) as stored:
        assert sorted(stored.files) == sorted(BLOCK_LIKE)
    data = bytearray(path.read_bytes())
    at = data.rindex(b'"SCL.npy",') + len(b'"SCL.npy",')
    data[at] = ord("9") if data[at] != ord("9") else ord("8")  # the index moves SCL elsewhere
    path.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile, match="index"):
        npz.read(path)


def test_block_files_fall_back_to_the_zip_crc_without_the_fast_crc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = written(tmp_path / "indexed.npz", BLOCK_LIKE)
    plain = tmp_path / "plain.npz"
    np.savez(plain, **BLOCK_LIKE)  # no index: read through the ZIP directory, fast CRC or not
    monkeypatch.setattr(npz, "fast_crc32c", lambda: False)
    bare = written(tmp_path / "bare.npz", BLOCK_LIKE)
    assert zipfile.ZipFile(bare).comment == b""
    for path in (indexed, plain, bare):
        back = npz.read(path)
        for name, arr in BLOCK_LIKE.items():
            np.testing.assert_array_equal(back[name], arr, err_msg=f"{path.name} {name}")
    data = bytearray(indexed.read_bytes())
    data[data.index(BLOCK_LIKE["B2"].tobytes()) + 1001] ^= 0x10
    indexed.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile, match="CRC-32 "):
        npz.read(indexed)


def _whole_block_bands(
    mix: surface.Mixture, cover: np.ndarray, wet: float, shift: tuple[float, float],
    f: atmosphere.CloudFields, haze: np.ndarray, label: np.ndarray,
) -> s2_bands.Bands:  # fmt: skip
    """The bands of a block the way the generator computed them before the band-by-band render:
    every step on the whole (13, h, w) arrays."""
    refl = surface.mix_neighbours(surface.compose(mix, cover, wet), *shift)
    if f.shadow.any():
        shade = s2_bands.SHADOW_DEPTH * f.shadow
        np.subtract(1.0, shade, out=shade)
        refl *= shade
    if f.opacity.any():
        toa = refl * (1.0 - f.opacity)
        toa += s2_bands.CLOUD_SPECTRUM * f.opacity
    else:
        toa = refl.copy()
    if f.cirrus.any():
        toa += f.cirrus * np.float32(0.06)
    toa[10] = 0.003 + 0.25 * f.cirrus + 0.06 * f.opacity
    bright = (np.isin(label, (OPEN, INDUSTRIAL)) & (toa[1] > 0.15)).astype(np.float32)
    path = s2_bands.HAZE_DIMMING * refl
    np.subtract(s2_bands.HAZE_PATH, path, out=path)
    path *= haze * (1.0 - f.opacity)
    toa += path
    ndvi = (toa[7] - toa[3]) / np.maximum(toa[7] + toa[3], 1e-6)
    dark = toa[1:4].mean(axis=0) < 0.03
    toa *= 10000.0
    np.rint(toa, out=toa)
    np.clip(toa, 1, 65535, out=toa)
    return s2_bands.Bands(toa.astype(np.uint16), ndvi, dark, bright)


@pytest.mark.parametrize("shifted", [True, False])
def test_the_band_by_band_render_equals_the_whole_block_formula(shifted: bool) -> None:
    cfg = DEFAULT_WORLD
    acqs = schedule.s2_acquisitions()
    first = next(k for k, a in enumerate(acqs) if a.when.year == 2021)
    seen = set()
    for i in range(first, first + 40, 3):
        millis = float(acqs[i].millis)
        sky = atmosphere.sky(cfg, millis)
        for bx, by in ((2, 2), (4, 1)):
            g = sentinel2.ground(cfg, bx, by, millis)
            f = atmosphere.cloud_fields(cfg, sky, bx * BLOCK, by * BLOCK, BLOCK, BLOCK)
            haze = atmosphere.haze_field(cfg, sky, bx * BLOCK, by * BLOCK, BLOCK, BLOCK)
            cover = phenology.cover_at(g.cover, millis)
            wet = phenology.wetness(cfg, millis)
            shift = sentinel2.coregistration_offset(cfg, i) if shifted else (0.0, 0.0)
            args = (g.mixture, cover, wet, shift, f, haze, g.label)
            got, expected = s2_bands.render(*args), _whole_block_bands(*args)
            for name, a, b in zip(s2_bands.Bands._fields, got, expected, strict=True):
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (i, bx, by, name)
            seen.add((bool(f.opacity.any()), bool(f.shadow.any()), bool(f.cirrus.any())))
    assert {(True, True, True), (False, False, False)} <= seen  # clouds, shadows, cirrus, and none


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacked_normals_equal_the_normals_one_by_one(dtype: type) -> None:
    ix, iy = np.arange(-40, 260)[None, :], np.arange(1000, 1100)[:, None]
    salts = (7, 2**64 - 3, 0x5BD1E995, 123456789012345)
    expected = np.stack([noise.normal(ix, iy, salt, dtype) for salt in salts])
    got = noise.normals(ix, iy, salts, dtype)
    assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


def test_cloud_fields_cut_from_a_tile_equal_those_evaluated_on_their_own() -> None:
    cfg, acqs = DEFAULT_WORLD, schedule.s2_acquisitions()
    first = next(k for k, a in enumerate(acqs) if a.when.year == 2021)
    skies = [atmosphere.sky(cfg, float(a.millis)) for a in acqs[first : first + 60]]
    sky = max(skies, key=lambda s: (s.cirrus > 0) * min(s.cover, 1 - s.cover))  # clouds and cirrus
    assert sky.cirrus > 0 and 0.1 < sky.cover < 0.9
    # a window across the tiles (evaluated on its own) and blocks inside one (cut from the tile's)
    edge = atmosphere.TILE
    wide = atmosphere.cloud_fields(cfg, sky, edge - 300, edge - 200, 400, 300)
    haze = atmosphere.haze_field(cfg, sky, edge - 300, edge - 200, 400, 300)
    inside = [(edge - 300, edge - 200, 256, 200), (edge - 44, edge - 200, 44, 200), (edge, edge, 100, 100)]
    for col, row, w, h in [*inside, (edge - 20, edge - 20, 60, 60)]:  # the last across four tiles
        part = atmosphere.cloud_fields(cfg, sky, col, row, w, h)
        cut = np.s_[row - edge + 200 : row - edge + 200 + h, col - edge + 300 : col - edge + 300 + w]
        for name in ("opacity", "shadow", "cirrus"):
            assert getattr(part, name).tobytes() == getattr(wide, name)[cut].tobytes(), (col, row, name)
        assert atmosphere.haze_field(cfg, sky, col, row, w, h).tobytes() == haze[cut].tobytes()


def test_the_truth_served_from_the_sky_equals_the_fields_the_block_was_generated_with() -> None:
    cfg, i = DEFAULT_WORLD, 40
    generated = [sentinel2._s2_block(cfg, i, bx, by) for by in (0, 1) for bx in (0, 1)]
    for name in sentinel2.TRUTH:  # a window across the four blocks, at an odd offset
        got = sentinel2._window(cfg, i, name, (101, 77, 300, 250), 1, "mean")
        whole = np.block([[generated[0][name], generated[1][name]], [generated[2][name], generated[3][name]]])
        assert got.tobytes() == np.ascontiguousarray(whole[77:327, 101:401]).tobytes(), name
    assert not set(sentinel2.TRUTH) & set(sentinel2.s2_block(cfg, i, 0, 0))  # not kept in the blocks
