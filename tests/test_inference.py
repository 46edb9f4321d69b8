"""Streamed sliding-window inference: blending against references, COG output, errors, memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from affine import Affine
from scipy import ndimage

from gee_fusion.deep.infer import inference as inference_module
from gee_fusion.deep.infer.accumulator import StripAccumulator
from gee_fusion.deep.infer.blending import TilePlan, blend_window
from gee_fusion.deep.infer.inference import iter_probability_strips, predict_raster
from gee_fusion.deep.infer.raster_source import ArraySource, XarraySource, read_tile
from gee_fusion.deep.infer.small_objects import StreamingSieve, remove_small_objects
from gee_fusion.errors import InferenceError, OutputError
from gee_fusion.io.stream_cog import StreamCOGWriter

K = 4
T, C = 2, 3
CRS = "EPSG:32631"
TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5400000.0)


class FlatConv(torch.nn.Module):
    """A deterministic conv on the dates x bands flattened S2 input (and S1 if given)."""

    size_divisor = 1
    sensors = ("S2",)

    def __init__(self, kernel: int, *, in_channels: int = T * C, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(in_channels, K, kernel, padding=kernel // 2)
        with torch.no_grad():
            self.conv.weight.mul_(3.0)
        self.calls = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        x = batch["S2"]
        return self.conv(x.reshape(x.shape[0], -1, *x.shape[-2:]))


def make_source(height: int, width: int, *, seed: int = 1, valid: np.ndarray | None = None) -> ArraySource:
    rng = np.random.default_rng(seed)
    s2 = rng.normal(size=(T, C, height, width)).astype(np.float32)
    return ArraySource({"S2": s2}, doy={"S2": [120, 240]}, crs=CRS, transform=TRANSFORM, valid=valid)


def stream(model: torch.nn.Module, source: ArraySource, **kw: object) -> np.ndarray:
    strips = list(iter_probability_strips(model, source, num_classes=K, **kw))  # type: ignore[arg-type]
    rows = [s.row for s in strips]
    assert rows == sorted(rows) and rows[0] == 0
    return torch.cat([s.probabilities for s in strips], dim=1).numpy()


def direct(model: FlatConv, source: ArraySource) -> np.ndarray:
    x = torch.from_numpy(np.asarray(source.read(slice(0, source.height), slice(0, source.width))["S2"]))
    with torch.no_grad():
        return torch.softmax(model({"S2": x[None]}), dim=1)[0].numpy()


# -- reference tiling: a plain in-memory implementation ------------------------------------
def ref_starts(n: int, tile: int, stride: int) -> list[int]:
    starts = [0]
    while starts[-1] + tile < n:
        starts.append(starts[-1] + stride)
    return starts


def ref_cosine(tile: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """TerraTorch's get_blend_mask ramp, with the raster-border sides kept at 1."""
    o = min(tile // 2, overlap)
    w = np.ones(tile)
    if o:
        ramp = np.cos(np.pi * (np.arange(o) + 1) / (o + 1)) / 2 + 0.5  # 1 -> 0, the tile's right edge
        if not first:
            w[:o] = ramp[::-1]
        if not last:
            w[-o:] = ramp
    return w


def ref_weights(blend: str, tile: int, overlap: int) -> Callable[[int, int, int, int], np.ndarray]:
    if blend == "gaussian":
        from monai.data.utils import compute_importance_map

        g = compute_importance_map((tile, tile), mode="gaussian", sigma_scale=0.125).numpy()
        return lambda i, j, ni, nj: g
    if blend == "constant":
        return lambda i, j, ni, nj: np.ones((tile, tile))
    return lambda i, j, ni, nj: np.outer(
        ref_cosine(tile, overlap, i == 0, i == ni - 1), ref_cosine(tile, overlap, j == 0, j == nj - 1)
    )


def reference_probs(model: FlatConv, source: ArraySource, tile: int, overlap: int, blend: str) -> np.ndarray:
    x = np.asarray(source.read(slice(0, source.height), slice(0, source.width))["S2"])
    height, width = x.shape[-2:]
    rows, cols = ref_starts(height, tile, tile - overlap), ref_starts(width, tile, tile - overlap)
    weight = ref_weights(blend, tile, overlap)
    acc = np.zeros((K, height, width))
    wsum = np.zeros((height, width))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            patch = x[:, :, r : r + tile, c : c + tile]
            h, w = patch.shape[-2:]
            patch = np.pad(patch, [(0, 0), (0, 0), (0, tile - h), (0, tile - w)], mode="reflect")
            with torch.no_grad():
                p = torch.softmax(model({"S2": torch.from_numpy(patch)[None]}), dim=1)[0].numpy()
            wt = weight(i, j, len(rows), len(cols))
            acc[:, r : r + h, c : c + w] += p[:, :h, :w] * wt[:h, :w]
            wsum[r : r + h, c : c + w] += wt[:h, :w]
    return acc / wsum


# -- (a) per-pixel model: blending must give back the direct prediction ---------------------
@pytest.mark.parametrize("blend", ["cosine", "gaussian", "constant"])
@pytest.mark.parametrize("shape", [(100, 77), (20, 13)])  # the second is smaller than a tile
def test_per_pixel_model_equals_direct_prediction(blend: str, shape: tuple[int, int]) -> None:
    model, source = FlatConv(1), make_source(*shape)
    got = stream(model, source, tile=32, overlap=12, blend=blend, batch_size=3)
    np.testing.assert_allclose(got, direct(model, source), rtol=0, atol=2e-6)


# -- (b) 3x3 model: equals a plain in-memory tiling/blending ---------------------------------
@pytest.mark.parametrize("blend", ["cosine", "gaussian", "constant"])
@pytest.mark.parametrize("overlap", [12, 20])  # 20 > tile / 2: three tiles overlap
def test_spatial_model_matches_reference_tiling(blend: str, overlap: int) -> None:
    model, source = FlatConv(3), make_source(100, 77)
    got = stream(model, source, tile=32, overlap=overlap, blend=blend, batch_size=5)
    ref = reference_probs(model, source, 32, overlap, blend)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)
    assert np.abs(got - direct(model, source)).max() > 1e-4  # tiling matters for this model


def test_gaussian_blend_matches_monai_where_tiles_are_placed_alike() -> None:
    from monai.inferers import sliding_window_inference

    model, source = FlatConv(3), make_source(92, 72)  # 32 + 3 x 20 and 32 + 2 x 20: same placement
    got = stream(model, source, tile=32, overlap=12, blend="gaussian", batch_size=4)
    x = torch.from_numpy(np.asarray(source.read(slice(0, 92), slice(0, 72))["S2"])).reshape(1, T * C, 92, 72)
    with torch.no_grad():
        monai = sliding_window_inference(
            x,
            32,
            4,
            lambda t: torch.softmax(model({"S2": t.reshape(-1, T, C, 32, 32)}), 1),
            overlap=12 / 32,
            mode="gaussian",
        )
    np.testing.assert_allclose(got, monai[0].numpy(), rtol=0, atol=2e-6)


# -- (c) invalid tilings fail before any work ------------------------------------------------
@pytest.mark.parametrize(
    ("tile", "overlap", "blend", "divisor"),
    [
        (32, 32, "cosine", 1),
        (32, 40, "cosine", 1),
        (32, -1, "cosine", 1),
        (0, 0, "cosine", 1),
        (30, 6, "cosine", 4),
        (32, 12, "hann", 1),
    ],
)
def test_invalid_tiling_raises_before_any_work(
    tmp_path: Path, tile: int, overlap: int, blend: str, divisor: int
) -> None:
    model = FlatConv(1)
    model.size_divisor = divisor
    reads: list[slice] = []
    source = make_source(100, 77)
    original = source.read

    def counting_read(rows: slice, cols: slice) -> dict[str, np.ndarray]:
        reads.append(rows)
        return original(rows, cols)

    source.read = counting_read  # type: ignore[method-assign]
    with pytest.raises(InferenceError):
        predict_raster(
            model,
            source,
            out_path=tmp_path / "out" / "map.tif",
            num_classes=K,
            tile=tile,
            overlap=overlap,
            blend=blend,
            progress=False,
        )
    assert model.calls == 0 and reads == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- (d) the COG ------------------------------------------------------------------------------
def test_class_map_cog_metadata_colours_overviews_nodata(tmp_path: Path) -> None:
    height, width = 600, 530
    valid = np.ones((height, width), bool)
    valid[:40, :50] = False
    model, source = FlatConv(1), make_source(height, width, valid=valid)
    colors = {c: (10 * c, 20, 30, 255) for c in range(1, K + 1)}
    result = predict_raster(
        model,
        source,
        out_path=tmp_path / "map.tif",
        num_classes=K,
        tile=64,
        overlap=16,
        batch_size=16,
        class_codes=range(1, K + 1),
        colormap=colors,
        write_probabilities=True,
        progress=False,
    )
    expected = direct(model, source)
    with rasterio.open(result.path) as ds:
        assert ds.crs.to_string() == CRS and ds.transform == TRANSFORM
        assert ds.dtypes == ("uint8",) and ds.nodata == 255
        assert ds.block_shapes == [(512, 512)] and ds.overviews(1) == [2]
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.colormap(1)[3] == (30, 20, 30, 255)
        codes = ds.read(1)
    assert (codes[:40, :50] == 255).all()
    want = expected.argmax(0) + 1
    np.testing.assert_array_equal(codes[valid], want[valid])
    assert result.probabilities_path is not None
    with rasterio.open(result.probabilities_path) as ds:
        assert ds.count == K and ds.dtypes[0] == "float32"
        probs = ds.read()
    assert np.isnan(probs[:, :40, :50]).all()
    np.testing.assert_allclose(probs[:, valid], expected[:, valid], atol=2e-6)


# -- (e) a failure mid-run leaves nothing -----------------------------------------------------
class FailingModel(FlatConv):
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.calls == 3:
            raise RuntimeError("boom")
        return super().forward(batch)


class FailingSource(ArraySource):
    def read(self, rows: slice, cols: slice) -> dict[str, np.ndarray]:
        if rows.start >= 60:
            raise OSError("disk gone")
        return super().read(rows, cols)


def test_failure_mid_run_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    with pytest.raises(RuntimeError, match="boom"):
        predict_raster(
            FailingModel(1),
            make_source(100, 77),
            out_path=out,
            num_classes=K,
            tile=32,
            overlap=12,
            batch_size=2,
            write_probabilities=True,
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []
    rng = np.random.default_rng(0)
    source = FailingSource(
        {"S2": rng.normal(size=(T, C, 100, 77)).astype(np.float32)},
        doy={"S2": [1, 2]},
        crs=CRS,
        transform=TRANSFORM,
    )
    with pytest.raises(OSError, match="disk gone"):
        predict_raster(FlatConv(1), source, out_path=out, num_classes=K, tile=32, overlap=12, progress=False)
    assert list(tmp_path.iterdir()) == []


# -- (f) small-object removal -------------------------------------------------------------------
def ref_sieve(codes: np.ndarray, min_size: int, nodata: int) -> np.ndarray:
    """One component at a time: ring = 8-dilation minus the component; kept neighbours vote first."""
    structure = np.ones((3, 3), bool)
    comps = []
    small_mask = np.zeros(codes.shape, bool)
    for value in np.unique(codes):
        if value == nodata:
            continue
        lab, n = ndimage.label(codes == value, structure)
        for i in range(1, n + 1):
            comp = lab == i
            if comp.sum() < min_size:
                comps.append(comp)
                small_mask |= comp
    out = codes.copy()
    for comp in comps:
        ring = ndimage.binary_dilation(comp, structure) & ~comp & (codes != nodata)
        votes = codes[ring & ~small_mask]
        if votes.size == 0:
            votes = codes[ring]
        if votes.size:
            out[comp] = np.bincount(votes, minlength=256).argmax()
    return out


def blobby_map(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(height, width)), 2.0)
    codes = np.digitize(field, np.quantile(field, [0.3, 0.6, 0.8])).astype(np.uint8) + 1
    noise = rng.random((height, width)) < 0.06
    codes[noise] = rng.integers(1, 6, noise.sum())
    codes[rng.random((height, width)) < 0.01] = 255
    return codes


@pytest.mark.parametrize("min_size", [2, 5, 9])
def test_small_object_removal_matches_reference_and_streams_exactly(min_size: int) -> None:
    codes = blobby_map(90, 61, seed=min_size)
    full = remove_small_objects(codes, min_size, nodata=255)
    np.testing.assert_array_equal(full, ref_sieve(codes, min_size, 255))
    assert (full != codes).sum() > 20
    sieve = StreamingSieve(90, 61, min_size, nodata=255)
    pieces = []
    for row in range(0, 90, 7):
        pieces += sieve.push(row, codes[row : row + 7])
    assert [p[0] for p in pieces] == sorted(p[0] for p in pieces)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces]), full)
    assert sieve.max_rows_held <= 4 * min_size + 2 * 7


def test_predict_raster_small_object_removal_equals_in_memory_sieve(tmp_path: Path) -> None:
    model, source = FlatConv(1), make_source(100, 77)
    result = predict_raster(
        model,
        source,
        out_path=tmp_path / "m.tif",
        num_classes=K,
        tile=32,
        overlap=12,
        min_object_size=6,
        progress=False,
    )
    raw = direct(model, source).argmax(0).astype(np.uint8)
    with rasterio.open(result.path) as ds:
        np.testing.assert_array_equal(ds.read(1), remove_small_objects(raw, 6, nodata=255))


# -- (g) memory does not grow with the height ---------------------------------------------------
def test_strip_accumulator_and_buffers_do_not_grow_with_height(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shapes: list[tuple[int, ...]] = []

    class Recording(StripAccumulator):
        def finish(self, n: int) -> tuple[torch.Tensor, np.ndarray]:
            shapes.append(tuple(self.weighted.shape))
            return super().finish(n)

    monkeypatch.setattr(inference_module, "StripAccumulator", Recording)
    peaks = []
    for height in (1300, 2600):
        model, source = FlatConv(1), make_source(height, 24, seed=height)
        result = predict_raster(
            model,
            source,
            out_path=tmp_path / f"{height}.tif",
            num_classes=K,
            tile=32,
            overlap=12,
            batch_size=8,
            progress=False,
        )
        assert result.accumulator_rows == 32
        peaks.append(result.peak_rows_held)
        with rasterio.open(result.path) as ds:
            np.testing.assert_array_equal(ds.read(1), direct(model, source).argmax(0))
    assert set(shapes) == {(K, 32, 24)}
    assert peaks[0] == peaks[1] <= 32 + 512 + 20


# -- (h) border pixels keep weight ----------------------------------------------------------------
@pytest.mark.parametrize("blend", ["cosine", "gaussian", "constant"])
def test_border_pixels_get_nonzero_weight(blend: str) -> None:
    plan = TilePlan.build(100, 77, tile=32, overlap=12, blend=blend)
    total = plan.weight_sum()
    assert total.min() >= 1e-3
    border = np.concatenate([total[0], total[-1], total[:, 0], total[:, -1]])
    if blend == "cosine":  # ramps are complementary and border sides are flat: a partition of unity
        np.testing.assert_allclose(total, 1.0, atol=1e-6)
    else:
        assert border.min() >= (1e-3 if blend == "gaussian" else 1.0)
    w = blend_window(32, 12, "cosine", top=False, bottom=False, left=False, right=False)
    assert 0 < w.min() < 0.01 and w.max() == 1.0


# -- sources and the writer -----------------------------------------------------------------------
def test_read_tile_reflect_pads_beyond_small_rasters() -> None:
    source = make_source(5, 1)
    sample = read_tile(source, 0, 0, 16)
    assert sample["S2"].shape == (T, C, 16, 16)
    np.testing.assert_array_equal(
        sample["S2"][..., :5, 0], source.read(slice(0, 5), slice(0, 1))["S2"][..., 0]
    )
    np.testing.assert_array_equal(sample["S2"][..., 5, 0], sample["S2"][..., 3, 0])  # reflected
    assert (sample["S2"][..., :, 1:] == sample["S2"][..., :, :1]).all()  # a 1-px axis repeats


def test_xarray_source_with_dask_matches_array_source() -> None:
    source = make_source(40, 30)
    s2 = np.asarray(source.read(slice(0, 40), slice(0, 30))["S2"]).copy()
    s2[1, :, :20, :] = np.nan  # the second date is missing in the top half
    times = np.array(["2021-04-30", "2021-08-28"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"S2": (("time", "band", "y", "x"), s2)},
        coords={"time": times, "y": 5400000.0 - 5 - 10 * np.arange(40), "x": 600005.0 + 10 * np.arange(30)},
        attrs={"crs": CRS},
    ).chunk({"y": 16, "x": 16})
    xs = XarraySource(ds)
    assert xs.transform == TRANSFORM and (xs.height, xs.width) == (40, 30)
    top, bottom = xs.read(slice(0, 16), slice(0, 30)), xs.read(slice(24, 40), slice(0, 30))
    assert top["S2_doy"].tolist() == [120, 240] and top["S2_pad"].tolist() == [False, True]
    assert bottom["S2_pad"].tolist() == [False, False] and (top["S2"][1] == 0).all()
    np.testing.assert_array_equal(bottom["S2"], np.nan_to_num(s2[:, :, 24:40]))


def test_stream_cog_writer_windows_in_any_order_and_abort(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 200, (2, 1100, 700)).astype(np.uint8)
    path = tmp_path / "w.tif"
    with StreamCOGWriter(path, width=700, height=1100, count=2, crs=CRS, transform=TRANSFORM) as w:
        w.write((slice(600, 1100), slice(0, 350)), data[:, 600:, :350])  # a block-unaligned window first
        for row in range(0, 1100, 150):  # then full-width strips
            if row < 600:
                w.write((slice(row, min(row + 150, 600)), slice(0, 700)), data[:, row : min(row + 150, 600)])
        w.write((slice(600, 1100), slice(350, 700)), data[:, 600:, 350:])
        assert w.max_pending_rows <= 512 + 150
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(), data)
        assert ds.overviews(1) == [2, 4]
    bad = StreamCOGWriter(tmp_path / "bad.tif", width=10, height=10, crs=CRS, transform=TRANSFORM)
    with pytest.raises(OutputError), bad as w:
        w.write((slice(0, 5), slice(0, 10)), np.zeros((5, 9), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.tif"]


def test_bf16_autocast_inference_on_cpu_agrees_with_float32() -> None:
    """``amp=True`` (the CUDA default) run on the CPU: the model in bfloat16, the blending in float32."""
    model, source = FlatConv(3, seed=2), make_source(90, 70, seed=3)
    dtypes: list[torch.dtype] = []
    model.conv.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    full = stream(model, source, tile=32, overlap=12, device="cpu", amp=False)
    half = stream(model, source, tile=32, overlap=12, device="cpu", amp=True)
    assert set(dtypes[: len(dtypes) // 2]) == {torch.float32} and set(dtypes[len(dtypes) // 2 :]) == {
        torch.bfloat16
    }
    assert half.dtype == np.float32 and np.abs(half - full).max() < 0.05
    assert (half.argmax(0) == full.argmax(0)).mean() > 0.97
