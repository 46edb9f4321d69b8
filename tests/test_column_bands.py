"""Column bands: wide rasters predicted band by band, bit-identical to a whole-width run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from gee_fusion.deep.infer.blending import TilePlan
from gee_fusion.deep.infer.column_bands import (
    AUTO_BAND_WIDTH,
    AUTO_MAX_WIDTH,
    plan_bands,
    resolve_band_width,
)
from gee_fusion.deep.infer.inference import predict_raster
from gee_fusion.deep.infer.small_objects import StreamingSieve, remove_small_objects
from gee_fusion.errors import ConfigError
from gee_fusion.io.stream_cog import StreamCOGWriter
from tests.test_inference import CRS, TRANSFORM, FlatConv, K, blobby_map, make_source


@pytest.mark.parametrize(("width", "band_width", "halo"), [(1300, 512, 0), (1300, 512, 18), (700, 1024, 0)])
def test_bands_partition_the_columns_and_hold_every_tile_of_their_columns(
    width: int, band_width: int, halo: int
) -> None:
    plan = TilePlan.build(90, width, tile=64, overlap=24, blend="cosine")
    bands = plan_bands(plan, band_width, halo=halo)
    assert len(bands) == -(-width // band_width)
    assert [b.core for b in bands] == [(a, min(a + band_width, width)) for a in range(0, width, band_width)]
    for band in bands:
        lo, hi = band.computed
        assert lo == max(0, band.core[0] - halo) and hi == min(width, band.core[1] + halo)
        assert band.span[0] <= lo and hi <= band.span[1] <= width
        starts = plan.col_starts
        needed = {j for j in range(len(starts)) if starts[j] < hi and starts[j] + plan.tile > lo}
        assert needed == set(range(*band.tile_cols))  # every tile touching the computed columns, no other
    if len(bands) == 1:
        assert bands[0].span == (0, width) and bands[0].tile_cols == (0, len(plan.col_starts))


@pytest.mark.parametrize("blend", ["cosine", "gaussian", "constant"])
def test_band_row_weights_equal_the_whole_plane_bit_for_bit(blend: str) -> None:
    plan = TilePlan.build(200, 1100, tile=64, overlap=24, blend=blend)
    for band in plan_bands(plan, 512, halo=10):
        lo, hi = band.computed
        for i in range(len(plan.row_starts)):
            part = plan.row_weight(i, band.tile_cols)
            whole = plan.row_weight(i)[:, lo:hi]
            assert part.shape == (plan.tile, band.width)
            assert np.array_equal(part[:, lo - band.span[0] : hi - band.span[0]], whole)


def test_band_width_rule_and_errors() -> None:
    assert resolve_band_width(5000, None) == 5000
    assert resolve_band_width(AUTO_MAX_WIDTH + 1, None) == AUTO_BAND_WIDTH
    assert resolve_band_width(100, 1024) == 100
    assert resolve_band_width(5000, 5000) == resolve_band_width(5000, 7777) == 5000  # one band
    assert resolve_band_width(5000, 1024) == 1024
    for bad in (0, 100, 700, -512):
        with pytest.raises(ConfigError, match="multiple of the output block size 512"):
            resolve_band_width(4000, bad)


@pytest.mark.parametrize("min_size", [3, 7])
def test_sieve_band_by_band_with_cut_sides_equals_the_whole_map(min_size: int) -> None:
    codes = blobby_map(70, 150, seed=min_size)
    full = remove_small_objects(codes, min_size, nodata=255)
    halo, out = 2 * min_size, np.zeros_like(codes)
    for a in range(0, 150, 40):
        b = min(a + 40, 150)
        lo, hi = max(0, a - halo), min(150, b + halo)
        sieve = StreamingSieve(70, hi - lo, min_size, nodata=255, cut_left=lo > 0, cut_right=hi < 150)
        for row in range(0, 70, 9):
            for start, piece in sieve.push(row, codes[row : row + 9, lo:hi]):
                out[start : start + piece.shape[0], a:b] = piece[:, a - lo : b - lo]
    np.testing.assert_array_equal(out, full)
    assert (full != codes).sum() > 20


@pytest.mark.parametrize(
    ("blend", "min_size", "probabilities"),
    [("cosine", 0, True), ("gaussian", 5, False), ("constant", 9, False)],
)
def test_banded_prediction_is_bit_identical_to_the_whole_width(
    tmp_path: Path, blend: str, min_size: int, probabilities: bool
) -> None:
    valid = np.ones((150, 1290), dtype=bool)
    valid[20:40, 500:530] = False  # nodata across a band edge
    model, source = FlatConv(3, seed=4), make_source(150, 1290, seed=5, valid=valid)
    runs = {}
    for name, band_width in (("whole", None), ("bands", 512)):
        runs[name] = predict_raster(
            model,
            source,
            out_path=tmp_path / f"{name}.tif",
            num_classes=K,
            tile=64,
            overlap=24,
            blend=blend,
            band_width=band_width,
            min_object_size=min_size,
            write_probabilities=probabilities,
            progress=False,
        )
    assert runs["whole"].bands == 1 and runs["bands"].bands == 3
    assert runs["bands"].accumulator_bytes < 0.6 * runs["whole"].accumulator_bytes
    assert runs["bands"].tiles > runs["whole"].tiles  # the tiles around band edges run twice
    with rasterio.open(runs["whole"].path) as a, rasterio.open(runs["bands"].path) as b:
        whole, banded = a.read(1), b.read(1)
        assert b.profile["blockxsize"] == 512 and b.profile["width"] == 1290
    np.testing.assert_array_equal(banded, whole)
    assert (whole == 255).sum() == 600 and len(np.unique(whole)) > 2
    if probabilities:
        paths = [r.probabilities_path for r in runs.values()]
        assert all(p is not None for p in paths)
        with rasterio.open(paths[0]) as a, rasterio.open(paths[1]) as b:
            np.testing.assert_array_equal(a.read(), b.read())


def test_band_memory_does_not_grow_with_width(tmp_path: Path) -> None:
    results = []
    for width in (1536, 3072):
        model, source = FlatConv(1), make_source(40, width, seed=width)
        results.append(
            predict_raster(
                model,
                source,
                out_path=tmp_path / f"{width}.tif",
                num_classes=K,
                tile=32,
                overlap=12,
                band_width=512,
                progress=False,
            )
        )
    assert [r.bands for r in results] == [3, 6]
    assert results[0].accumulator_bytes == results[1].accumulator_bytes
    assert results[0].peak_rows_held == results[1].peak_rows_held


def test_writer_buffers_block_aligned_column_bands(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 9, size=(700, 1100), dtype=np.uint8)
    path = tmp_path / "bands.tif"
    with StreamCOGWriter(path, width=1100, height=700, crs=CRS, transform=TRANSFORM, blocksize=256) as w:
        for a in range(0, 1100, 512):
            b = min(a + 512, 1100)
            for row in range(0, 700, 100):
                w.write((slice(row, min(row + 100, 700)), slice(a, b)), data[row : row + 100, a:b])
                assert w.pending_rows < 256 + 100
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(1), data)


@pytest.mark.parametrize("name", ["utae", "unet"])
def test_real_models_at_an_odd_batch_size_give_the_same_probabilities_banded(
    tmp_path: Path, name: str
) -> None:
    """Batches are always full, so a tile's output does not depend on its batch's size."""
    from gee_fusion.deep.models import InputShape, build_model, parse_model_spec

    spec = {
        "utae": {"name": "utae", "sensors": ["S2"], "encoder_widths": [8, 8, 8, 16],
                 "decoder_widths": [8, 8, 8, 16], "out_width": 8, "n_heads": 4, "d_model": 16, "d_k": 4},
        "unet": {"name": "unet", "encoder": "vgg16", "base_width": 4, "sensors": ["S2"]},
    }[name]  # fmt: skip
    torch.manual_seed(0)
    model = build_model(parse_model_spec(spec), inputs={"S2": InputShape(times=2, channels=3)}, num_classes=K)
    source = make_source(32, 1100, seed=11)
    paths = []
    for band_width in (None, 512):
        result = predict_raster(
            model, source, out_path=tmp_path / f"{band_width}.tif", num_classes=K, tile=32, overlap=8,
            batch_size=5, band_width=band_width, write_probabilities=True, progress=False,
        )  # fmt: skip
        paths.append(result.probabilities_path)
    with rasterio.open(paths[0]) as a, rasterio.open(paths[1]) as b:
        np.testing.assert_array_equal(b.read(), a.read())  # without full batches: differences of ~6e-8
