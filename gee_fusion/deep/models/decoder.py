"""The U-Net decoder shared by the U-Net, ConvLSTM and dual-encoder models."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gee_fusion.deep.models.layers import ConvStack
from gee_fusion.errors import ConfigError


def decoder_width(stride: int, base_width: int) -> int:
    """Default decoder width at an output stride: half the VGG width there, between base/2 and 4*base."""
    return max(1, min(base_width * stride // 2, 4 * base_width), base_width // 2)


class UpBlock(nn.Module):
    """2x2 transposed-convolution upsampling, optional skip concatenation, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = ConvStack(out_channels + skip_channels, out_channels, depth=2)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        """Upsample ``x`` x2 and fuse it with ``skip`` (same size as the upsampled map)."""
        x = self.up(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class UNetDecoder(nn.Module):
    """Decode an encoder's features (shallowest first) to logits at full resolution.

    The deepest map is upsampled x2 at a time and fused with the skip of each shallower level; when the
    shallowest feature map is not at full resolution (ResNet: stride 2) further blocks without skip
    bring it there. A 1x1 convolution gives the class scores.

    Args:
        channels: Channels of the encoder features, shallowest first.
        strides: Output stride of each feature map; each must double the previous one.
        num_classes: Output classes.
        base_width: Scales the decoder widths (see :func:`decoder_width`).
    """

    def __init__(
        self, *, channels: Sequence[int], strides: Sequence[int], num_classes: int, base_width: int = 64
    ) -> None:
        super().__init__()
        if len(channels) != len(strides) or len(channels) < 2:
            raise ConfigError(f"UNetDecoder needs >= 2 levels with one stride each: {channels}, {strides}")
        if any(b != 2 * a for a, b in itertools.pairwise(strides)) or strides[0] < 1:
            raise ConfigError(f"UNetDecoder strides must double level to level, got {list(strides)}")
        blocks = []
        prev = channels[-1]
        for skip_ch, stride in zip(reversed(channels[:-1]), reversed(strides[:-1]), strict=True):
            width = decoder_width(stride, base_width)
            blocks.append(UpBlock(prev, skip_ch, width))
            prev = width
        stride = strides[0]
        while stride > 1:
            stride //= 2
            width = decoder_width(stride, base_width)
            blocks.append(UpBlock(prev, 0, width))
            prev = width
        self.n_skips = len(channels) - 1
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(prev, num_classes, 1)
        self.out_channels = prev

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Return logits ``(B, K, H, W)`` at the input resolution of the encoder."""
        x = features[-1]
        skips = list(reversed(features[:-1]))
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < self.n_skips else None)
        return self.head(x)
