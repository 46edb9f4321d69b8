"""Streamed sliding-window inference: overhead over the bare model, MONAI, and memory vs size.

A synthetic city-sized stack (S2: 4 dates x 6 bands, S1: 4 dates x 2 bands; default 1376 x 1376 px
at 10 m = 189 km^2, one float32 array in memory) is classified into 10 classes by a small U-Net
defined here (3 levels, 16-32-64 filters, ~0.1 M parameters), with 256 px tiles, 96 px overlap,
batches of 8 and the Gaussian blend. Measured, in this order:

1. ``pure_model_s``: the model's forward passes alone over the same tiles, batches stacked
   beforehand outside the timer — the limit any tiled inference can reach;
2. ``ours_s``: :func:`gee_fusion.deep.infer.inference.predict_raster` end to end (reading the tiles,
   softmax, blending, argmax, writing and publishing the class-map COG with overviews) ->
   ``overhead_ratio = ours_s / pure_model_s``;
3. ``monai_s``: ``monai.inferers.sliding_window_inference`` (roi 256, overlap 96/256, Gaussian,
   softmax in the predictor) on the whole in-memory raster, returning in-memory probabilities
   (it writes nothing) -> ``speedup_vs_monai = monai_s / ours_s``;

1-3 run interleaved ``--repeat`` times and the minimum of each is reported;
4. ``max_abs_diff``: our blended probabilities (streamed again, untimed) against MONAI's. Sizes
   of the form ``256 + 160 k`` place tiles identically in both (MONAI shifts its last tile back
   inside the raster, we reflect-pad it); other sizes report the difference anyway;
5. peak memory (VmHWM of fresh subprocesses reading a procedural source that holds no raster,
   with a 1x1-conv model so that U-Net activations do not hide the pipeline's own memory) for
   heights H, 4H and 8H at width H/2: it must not grow with the height (the first few thousand
   rows warm the allocator up; from 4H to 8H the peak should stay put); and (``memory_wide``) for
   widths 2H, 8H and 16H at height H/2 in column bands of ``--mem-band`` px: it must not grow
   with the width either.

Prints one JSON line. Usage:
    python benchmarks/inference.py [--size 1376] [--device cpu] [--repeat 2]
                                   [--mem-width 688] [--mem-band 1024] [--mem-model pointwise|unet]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from affine import Affine
from torch import nn

from gee_fusion.deep.devices import resolve_device
from gee_fusion.deep.infer.blending import TilePlan
from gee_fusion.deep.infer.inference import iter_probability_strips, predict_raster
from gee_fusion.deep.infer.raster_source import ArraySource, read_tile

TILE, OVERLAP, BATCH, K = 256, 96, 8, 10
S2_SHAPE, S1_SHAPE = (4, 6), (4, 2)
CHANNELS = S2_SHAPE[0] * S2_SHAPE[1] + S1_SHAPE[0] * S1_SHAPE[1]
PIXEL_M = 10.0
CRS = "EPSG:32631"
DOY = {"S2": [182, 213, 244, 305], "S1": [180, 212, 243, 304]}
TILING: dict[str, Any] = {"num_classes": K, "tile": TILE, "overlap": OVERLAP, "blend": "gaussian",
                          "batch_size": BATCH}  # fmt: skip


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SmallUNet(nn.Module):
    """A 3-level U-Net on the dates x bands of both sensors stacked as channels."""

    size_divisor = 4
    sensors = ("S2", "S1")

    def __init__(self, base: int = 16, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.e1, self.e2, self.e3 = _block(CHANNELS, base), _block(base, 2 * base), _block(2 * base, 4 * base)
        self.u2 = nn.ConvTranspose2d(4 * base, 2 * base, 2, stride=2)
        self.d2 = _block(4 * base, 2 * base)
        self.u1 = nn.ConvTranspose2d(2 * base, base, 2, stride=2)
        self.d1 = _block(2 * base, base)
        self.head = nn.Conv2d(base, K, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        s2, s1 = batch["S2"], batch["S1"]
        x = torch.cat([s2.flatten(1, 2), s1.flatten(1, 2)], dim=1)
        a = self.e1(x)
        b = self.e2(nn.functional.max_pool2d(a, 2))
        c = self.e3(nn.functional.max_pool2d(b, 2))
        d = self.d2(torch.cat([self.u2(c), b], dim=1))
        return self.head(self.d1(torch.cat([self.u1(d), a], dim=1)))


def split_channels(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, 32, h, w) channels -> the batch dict (views)."""
    n2 = S2_SHAPE[0] * S2_SHAPE[1]
    return {"S2": x[:, :n2].unflatten(1, S2_SHAPE), "S1": x[:, n2:].unflatten(1, S1_SHAPE)}


def make_stack(size: int, seed: int = 0) -> np.ndarray:
    """(32, size, size) float32: smooth per-channel patterns plus noise (normalised-like values)."""
    rng = np.random.default_rng(seed)
    y = np.arange(size, dtype=np.float32)
    out = rng.standard_normal((CHANNELS, size, size), dtype=np.float32)
    out *= np.float32(0.3)
    for ch in range(CHANNELS):
        fy, fx = rng.uniform(0.005, 0.05, 2).astype(np.float32)
        out[ch] += np.sin(fy * y)[:, None] * np.cos(fx * y)[None, :]
    return out


def array_source(stack: np.ndarray) -> ArraySource:
    n2 = S2_SHAPE[0] * S2_SHAPE[1]
    h, w = stack.shape[1:]
    sensors = {"S2": stack[:n2].reshape(*S2_SHAPE, h, w), "S1": stack[n2:].reshape(*S1_SHAPE, h, w)}
    return ArraySource(sensors, doy=DOY, crs=CRS, transform=Affine(PIXEL_M, 0, 500000, 0, -PIXEL_M, 5e6))


class SyntheticSource:
    """A procedural source: every window is generated on demand, no raster is held."""

    def __init__(self, height: int, width: int, seed: int = 0) -> None:
        self.height, self.width = height, width
        self.crs, self.transform = CRS, Affine(PIXEL_M, 0, 500000, 0, -PIXEL_M, 5e6)
        rng = np.random.default_rng(seed)
        self._freq = rng.uniform(0.005, 0.05, (CHANNELS, 2)).astype(np.float32)

    def read(self, rows: slice, cols: slice) -> dict[str, np.ndarray]:
        y = np.arange(rows.start, rows.stop, dtype=np.float32)
        x = np.arange(cols.start, cols.stop, dtype=np.float32)
        sy = np.sin(self._freq[:, :1] * y[None])  # (32, h)
        cx = np.cos(self._freq[:, 1:] * x[None])  # (32, w)
        data = sy[:, :, None] * cx[:, None, :]
        n2 = S2_SHAPE[0] * S2_SHAPE[1]
        out = {
            "S2": data[:n2].reshape(*S2_SHAPE, *data.shape[1:]),
            "S1": data[n2:].reshape(*S1_SHAPE, *data.shape[1:]),
        }
        for s in ("S2", "S1"):
            out[f"{s}_doy"] = np.asarray(DOY[s], dtype=np.int64)
            out[f"{s}_pad"] = np.zeros(4, dtype=bool)
        return out


def time_pure_model(model: nn.Module, source: ArraySource, device: torch.device) -> float:
    """Forward passes only, over the same tiles and batches as ours; batches built outside the timer."""
    plan = TilePlan.build(
        source.height, source.width, tile=TILE, overlap=OVERLAP, blend="gaussian", size_divisor=4
    )
    tiles = [(int(r), int(c)) for r in plan.row_starts for c in plan.col_starts]
    total = 0.0
    with torch.inference_mode():
        for k in range(0, len(tiles), BATCH):
            samples = [read_tile(source, r, c, TILE) for r, c in tiles[k : k + BATCH]]
            batch = {s: torch.from_numpy(np.stack([x[s] for x in samples])).to(device) for s in ("S2", "S1")}
            _sync(device)
            start = time.perf_counter()
            model(batch)
            _sync(device)
            total += time.perf_counter() - start
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ours(model: nn.Module, source: ArraySource, device: torch.device, out: Path) -> float:
    start = time.perf_counter()
    predict_raster(
        model,
        source,
        out_path=out,
        device=device,
        progress=False,
        **TILING,
    )
    return time.perf_counter() - start


def run_monai(model: nn.Module, stack: np.ndarray, device: torch.device) -> tuple[float, torch.Tensor]:
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(stack)[None]

    def predictor(t: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(split_channels(t.to(device))).float(), dim=1)

    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        probs = sliding_window_inference(
            x, TILE, BATCH, predictor, overlap=OVERLAP / TILE, mode="gaussian", sw_device=device, device="cpu"
        )
        _sync(device)
    return time.perf_counter() - start, probs[0]


def compare(
    model: nn.Module, source: ArraySource, monai: torch.Tensor, device: torch.device
) -> dict[str, float]:
    """Max |ours - MONAI| of the probabilities and the share of pixels with the same argmax."""
    worst, same = 0.0, 0
    for strip in iter_probability_strips(
        model,
        source,
        device=device,
        **TILING,
    ):
        n = strip.probabilities.shape[1]
        (c0, c1), inside = strip.core_columns  # column bands (wide rasters): each band's core
        ref = monai[:, strip.row : strip.row + n, c0:c1]
        ours = strip.probabilities[:, :, inside].cpu()
        worst = max(worst, float((ours - ref).abs().max()))
        same += int((ours.argmax(0) == ref.argmax(0)).sum())
    return {"max_abs_diff": worst, "argmax_agreement": same / (source.height * source.width)}


class PointwiseNet(nn.Module):
    """A 1x1 convolution: for memory runs, so model activations do not mask the pipeline's memory."""

    size_divisor = 1
    sensors = ("S2", "S1")

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(CHANNELS, K, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.cat([batch["S2"].flatten(1, 2), batch["S1"].flatten(1, 2)], dim=1))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; getrusage's ru_maxrss elsewhere).

    On Linux ``ru_maxrss`` survives ``execve`` and starts at the forking parent's resident size, so a
    child of a big benchmark process would report the parent's memory; VmHWM belongs to the new image.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_run(height: int, width: int, band: int, device: str, model_kind: str) -> dict[str, Any]:
    """In a fresh process: predict a procedural raster (nothing held in memory); report peak RSS.

    ``band`` > 0 runs column bands of that width; 0 runs the whole width in one band.
    """
    model: nn.Module = SmallUNet() if model_kind == "unet" else PointwiseNet()
    source = SyntheticSource(height, width)
    with tempfile.TemporaryDirectory() as tmp:
        result = predict_raster(
            model,
            source,
            out_path=Path(tmp) / "map.tif",
            device=device,
            band_width=band or width,  # band 0: one band, the whole width
            progress=False,
            **TILING,
        )
    return {
        "height": height,
        "width": width,
        "bands": result.bands,
        "accumulator_mb": round(result.accumulator_bytes / 2**20, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "seconds": round(result.seconds, 2),
        "tiles": result.tiles,
        "peak_rows_held": result.peak_rows_held,
    }


def measure_memory(shapes: list[tuple[int, int]], band: int, device: str, model_kind: str) -> dict[str, Any]:
    """Peak RSS of fresh processes, one per (height, width)."""
    runs = []
    for h, w in shapes:
        cmd = [sys.executable, __file__, "--memory-run", str(h), str(w), str(band), "--device", device,
               "--mem-model", model_kind]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "model": model_kind,
        "band_width": band or None,
        "heights": [h for h, _ in shapes],
        "widths": [w for _, w in shapes],
        "bands": [r["bands"] for r in runs],
        "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
        "growth_mb": round(runs[-1]["peak_rss_mb"] - runs[0]["peak_rss_mb"], 1),
        "growth_last_doubling_mb": round(runs[-1]["peak_rss_mb"] - runs[-2]["peak_rss_mb"], 1),
        "input_raster_mb_if_held": [round(h * w * CHANNELS * 4 / 2**20, 1) for h, w in shapes],
        "accumulator_mb": [r["accumulator_mb"] for r in runs],
        "tiles": [r["tiles"] for r in runs],
        "seconds": [r["seconds"] for r in runs],
        "peak_rows_held": [r["peak_rows_held"] for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=1376, help="raster side (px); 256 + 160 k aligns with MONAI"
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--mem-width", type=int, default=None, help="width of the memory runs (default --size)"
    )
    parser.add_argument(
        "--mem-model",
        choices=("pointwise", "unet"),
        default="pointwise",
        help="model of the memory runs (default: a 1x1 conv, so activations do not hide the rest)",
    )
    parser.add_argument(
        "--mem-band", type=int, default=1024, help="column-band width of the width runs (px, multiple of 512)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="timing repeats (the minimum is reported)")
    parser.add_argument(
        "--memory-run", nargs=3, type=int, metavar=("HEIGHT", "WIDTH", "BAND"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.memory_run:
        height, width, band = args.memory_run
        print(json.dumps(memory_run(height, width, band, str(device), args.mem_model)))
        return
    # Memory first: children are measured while this process is still small.
    started = time.perf_counter()
    mem_width, dev = args.mem_width or max(args.size // 2, 1), str(device)
    heights = [args.size, 4 * args.size, 8 * args.size]
    memory = measure_memory([(h, mem_width) for h in heights], 0, dev, args.mem_model)
    widths = [2 * args.size, 8 * args.size, 16 * args.size]
    memory_wide = measure_memory([(mem_width, w) for w in widths], args.mem_band, dev, args.mem_model)
    model = SmallUNet().to(device).eval()
    stack = make_stack(args.size)
    source = array_source(stack)
    plan = TilePlan.build(args.size, args.size, tile=TILE, overlap=OVERLAP, blend="gaussian", size_divisor=4)
    with tempfile.TemporaryDirectory() as tmp:
        time_pure_model(model, array_source(stack[:, :512, :512].copy()), device)  # warm-up
        pure, ours, monai = [], [], []
        for _ in range(max(args.repeat, 1)):  # interleaved, so drifts of the machine hit all three alike
            pure.append(time_pure_model(model, source, device))
            ours.append(time_ours(model, source, device, Path(tmp) / "map.tif"))
            seconds, monai_probs = run_monai(model, stack, device)
            monai.append(seconds)
        diff = compare(model, source, monai_probs, device)
    del monai_probs
    area = args.size * args.size * PIXEL_M**2 / 1e6
    pure_s, ours_s, monai_s = min(pure), min(ours), min(monai)
    report = {
        "size_px": args.size,
        "area_km2": round(area, 1),
        "tiles": plan.n_tiles,
        "tile": TILE,
        "overlap": OVERLAP,
        "batch_size": BATCH,
        "classes": K,
        "input_channels": CHANNELS,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "model_params": sum(p.numel() for p in model.parameters()),
        "pure_model_s": round(pure_s, 2),
        "ours_s": round(ours_s, 2),
        "monai_s": round(monai_s, 2),
        "pure_runs_s": [round(v, 2) for v in pure],
        "ours_runs_s": [round(v, 2) for v in ours],
        "monai_runs_s": [round(v, 2) for v in monai],
        "overhead_ratio": round(ours_s / pure_s, 3),
        "speedup_vs_monai": round(monai_s / ours_s, 3),
        "ours_km2_per_s": round(area / ours_s, 2),
        "monai_km2_per_s": round(area / monai_s, 2),
        "pure_km2_per_s": round(area / pure_s, 2),
        "placement_identical": (args.size - TILE) % (TILE - OVERLAP) == 0,
        "max_abs_diff": diff["max_abs_diff"],
        "argmax_agreement": round(diff["argmax_agreement"], 6),
        "memory": memory,
        "memory_wide": memory_wide,
        "benchmark_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
