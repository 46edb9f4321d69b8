"""Convolutional encoders built from scratch: VGG-style and ResNet-18/34/50, any number of input channels.

An encoder returns its feature maps from the shallowest to the deepest; ``channels`` and ``strides``
describe them (each stride doubles the previous one), which is all :class:`UNetDecoder` needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from gee_fusion.deep.models.layers import ConvStack, conv_bn_relu, scaled
from gee_fusion.errors import ConfigError

EncoderName = Literal["vgg16", "resnet18", "resnet34", "resnet50"]


class Encoder(nn.Module):
    """A multi-scale encoder: ``forward(x)`` returns one feature map per entry of ``channels``."""

    channels: tuple[int, ...]
    strides: tuple[int, ...]

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        """Return the feature maps, shallowest first."""
        raise NotImplementedError


class VGGEncoder(Encoder):
    """VGG-style encoder: stages of 3x3 conv-BN-ReLU layers, 2x2 max-pool before every stage but the first.

    Args:
        in_channels: Input channels.
        widths: Width of each stage.
        depths: Number of convolutions of each stage.
    """

    def __init__(self, in_channels: int, *, widths: Sequence[int], depths: Sequence[int]) -> None:
        super().__init__()
        if len(widths) != len(depths) or not widths:
            raise ConfigError(f"VGGEncoder needs one depth per width, got widths={widths} depths={depths}")
        stages = []
        prev = in_channels
        for width, depth in zip(widths, depths, strict=True):
            stages.append(ConvStack(prev, width, depth=depth))
            prev = width
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)
        self.channels = tuple(widths)
        self.strides = tuple(2**i for i in range(len(widths)))

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the output of every stage (strides 1, 2, 4, ...)."""
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            features.append(x)
        return features


def vgg16_encoder(in_channels: int, *, base_width: int = 64) -> VGGEncoder:
    """VGG-16 convolutional part with BatchNorm: 2-2-3-3-3 convolutions, widths 64..512 scaled by base/64."""
    widths = [scaled(w, base_width) for w in (64, 128, 256, 512, 512)]
    return VGGEncoder(in_channels, widths=widths, depths=(2, 2, 3, 3, 3))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, *, stride: int = 1) -> None:
        super().__init__()
        out = width * self.expansion
        self.body = nn.Sequential(
            conv_bn_relu(in_channels, width, stride=stride),
            nn.Conv2d(width, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = _shortcut(in_channels, out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Residual update."""
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1 reduce, 3x3 with the stride, 1x1 expand x4)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, *, stride: int = 1) -> None:
        super().__init__()
        out = width * self.expansion
        self.body = nn.Sequential(
            conv_bn_relu(in_channels, width, kernel_size=1),
            conv_bn_relu(width, width, stride=stride),
            nn.Conv2d(width, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.shortcut = _shortcut(in_channels, out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Residual update."""
        return self.relu(self.body(x) + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )


_RESNET_LAYOUT: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNetEncoder(Encoder):
    """ResNet-18/34/50 encoder (He et al. 2016): 7x7/2 stem, 3x3/2 max-pool, four residual stages.

    Features: the stem (stride 2) and the four stages (strides 4, 8, 16, 32).
    """

    def __init__(self, in_channels: int, *, depth: int, base_width: int = 64) -> None:
        super().__init__()
        if depth not in _RESNET_LAYOUT:
            raise ConfigError(f"ResNet depth must be one of {sorted(_RESNET_LAYOUT)}, got {depth}")
        block, counts = _RESNET_LAYOUT[depth]
        stem_width = scaled(64, base_width)
        self.stem = conv_bn_relu(in_channels, stem_width, kernel_size=7, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        layers = []
        prev = stem_width
        channels = [stem_width]
        for i, count in enumerate(counts):
            width = scaled(64 * 2**i, base_width)
            blocks = []
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(prev, width, stride=stride))
                prev = width * block.expansion
            layers.append(nn.Sequential(*blocks))
            channels.append(prev)
        self.layers = nn.ModuleList(layers)
        self.channels = tuple(channels)
        self.strides = (2, 4, 8, 16, 32)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the stem output and the four stage outputs."""
        x = self.stem(x)
        features = [x]
        x = self.pool(x)
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


def build_encoder(name: EncoderName, in_channels: int, *, base_width: int = 64) -> Encoder:
    """Build the named encoder for ``in_channels`` input channels."""
    if name == "vgg16":
        return vgg16_encoder(in_channels, base_width=base_width)
    if name.startswith("resnet") and name[6:].isdigit():
        return ResNetEncoder(in_channels, depth=int(name[6:]), base_width=base_width)
    raise ConfigError(f"Unknown encoder {name!r}; use vgg16, resnet18, resnet34 or resnet50")
