"""U-TAE (Garnot & Landrieu 2021): U-Net with Lightweight Temporal Attention Encoding.

Per sensor: a convolutional encoder shared across dates (GroupNorm, reflect padding, strided 4x4
down-convolutions), an :class:`~gee_fusion.deep.models.ltae.LTAE` at the lowest resolution with a
sinusoidal day-of-year encoding, and attention-weighted temporal aggregation of every skip feature
map (one head per channel group, attention masks upsampled bilinearly). With two sensors, their
aggregated maps are concatenated level by level before one shared decoder (BatchNorm, 4x4 transposed
convolutions). Padded dates are neither encoded nor attended to.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from gee_fusion.deep.models.base import InputShape, SegmentationModel, day_of_year, sensor_series
from gee_fusion.deep.models.ltae import LTAE, aggregate_by_attention
from gee_fusion.deep.models.spec import UTAESpec


def _conv(
    in_channels: int, out_channels: int, *, norm: nn.Module, kernel_size: int = 3, stride: int = 1
) -> nn.Sequential:
    pad = 1 if kernel_size in (3, 4) else kernel_size // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=pad, padding_mode="reflect"),
        norm,
        nn.ReLU(),
    )


class DownBlock(nn.Module):
    """Strided 4x4 convolution (/2), then a conv and a residual conv, GroupNorm after each."""

    def __init__(self, in_channels: int, out_channels: int, *, groups: int) -> None:
        super().__init__()
        self.down = _conv(
            in_channels, in_channels, norm=nn.GroupNorm(groups, in_channels), kernel_size=4, stride=2
        )
        self.conv1 = _conv(in_channels, out_channels, norm=nn.GroupNorm(groups, out_channels))
        self.conv2 = _conv(out_channels, out_channels, norm=nn.GroupNorm(groups, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        """Halve the resolution."""
        x = self.conv1(self.down(x))
        return x + self.conv2(x)


class UpBlock(nn.Module):
    """4x4 transposed conv (x2), 1x1 skip conv, concatenation, conv + residual conv (BatchNorm)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.skip_conv = nn.Sequential(
            nn.Conv2d(skip_channels, skip_channels, 1), nn.BatchNorm2d(skip_channels), nn.ReLU()
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.conv1 = _conv(out_channels + skip_channels, out_channels, norm=nn.BatchNorm2d(out_channels))
        self.conv2 = _conv(out_channels, out_channels, norm=nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Double the resolution and fuse the skip map."""
        x = self.conv1(torch.cat([self.up(x), self.skip_conv(skip)], dim=1))
        return x + self.conv2(x)


class SharedEncoder(nn.Module):
    """Convolutional encoder applied to every date independently; padded dates are skipped (zeros)."""

    def __init__(self, in_channels: int, widths: Sequence[int], *, groups: int) -> None:
        super().__init__()
        w0 = widths[0]
        self.in_conv = nn.Sequential(
            _conv(in_channels, w0, norm=nn.GroupNorm(groups, w0)),
            _conv(w0, w0, norm=nn.GroupNorm(groups, w0)),
        )
        self.down = nn.ModuleList(DownBlock(a, b, groups=groups) for a, b in itertools.pairwise(widths))

    def forward(self, x: Tensor, pad: Tensor) -> list[Tensor]:
        """Encode ``(B, T, C, H, W)``; return one ``(B, T, C_l, H_l, W_l)`` map per level."""
        b, t = x.shape[:2]
        flat = x.flatten(0, 1)
        valid = (~pad).flatten()
        index = valid.nonzero().squeeze(1)
        scale = 1.0
        if index.numel() == 0:  # nothing to encode: keep the graph connected, contribute zeros
            index, scale = index.new_zeros(1), 0.0
        feats = [self.in_conv(flat[index])]
        for block in self.down:
            feats.append(block(feats[-1]))
        out = []
        for f in feats:
            full = f.new_zeros((b * t, *f.shape[1:]))
            full = full.index_copy(0, index, f * scale)
            out.append(full.view(b, t, *f.shape[1:]))
        return out


class UTAE(SegmentationModel):
    """U-TAE over one or two sensors.

    Args:
        spec: The model spec (defaults: the paper's widths, 16 heads, d_model 256, d_k 4).
        inputs: Input shape per sensor (C is fixed; any number of dates works at run time).
        num_classes: Output classes.

    Attributes:
        size_divisor: ``2 ** len(encoder_widths)``: one more halving than the encoder does, so the
            lowest resolution is at least 2x2 and reflect padding stays valid.
    """

    def __init__(self, spec: UTAESpec, *, inputs: Mapping[str, InputShape], num_classes: int) -> None:
        super().__init__(sensors=spec.sensors, inputs=inputs, num_classes=num_classes)
        self.spec = spec
        enc, dec = spec.encoder_widths, spec.decoder_widths
        self.encoders = nn.ModuleDict(
            {s: SharedEncoder(self.inputs[s].channels, enc, groups=spec.norm_groups) for s in self.sensors}
        )
        self.temporal = nn.ModuleDict(
            {
                s: LTAE(
                    enc[-1],
                    out_channels=enc[-1],
                    n_heads=spec.n_heads,
                    d_model=spec.d_model,
                    d_k=spec.d_k,
                    dropout=spec.dropout,
                    period=spec.positional_period,
                )
                for s in self.sensors
            }
        )
        n = len(self.sensors)
        ups = []
        for level in range(len(enc) - 1, 0, -1):
            d_in = n * enc[-1] if level == len(enc) - 1 else dec[level]
            ups.append(UpBlock(d_in, n * enc[level - 1], dec[level - 1]))
        self.up = nn.ModuleList(ups)
        self.out_conv = nn.Sequential(
            _conv(dec[0], spec.out_width, norm=nn.BatchNorm2d(spec.out_width)),
            nn.Conv2d(spec.out_width, num_classes, 3, padding=1, padding_mode="reflect"),
        )
        self.size_divisor = 2 ** len(enc)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Return logits ``(B, K, H, W)`` for a batch of the deep-stage contract."""
        self.spatial_size(batch)
        per_level: list[list[Tensor]] = [[] for _ in self.spec.encoder_widths]
        for s in self.sensors:
            x, pad = sensor_series(batch, s, self.inputs[s], fixed_times=False, require_pad=True)
            assert pad is not None  # require_pad=True
            feats = self.encoders[s](x, pad)
            deepest, attn = self.temporal[s](feats[-1], doy=day_of_year(batch, s), pad=pad)
            per_level[-1].append(deepest)
            for level, f in enumerate(feats[:-1]):
                per_level[level].append(aggregate_by_attention(f, attn))
        maps = [torch.cat(parts, dim=1) for parts in per_level]
        out = maps[-1]
        for i, block in enumerate(self.up):
            out = block(out, maps[-(i + 2)])
        return self.out_conv(out)
