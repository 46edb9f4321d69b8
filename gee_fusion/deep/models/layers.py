"""Small building blocks shared by the zoo (pure torch)."""

from __future__ import annotations

from torch import Tensor, nn


def conv_bn_relu(
    in_channels: int, out_channels: int, *, kernel_size: int = 3, stride: int = 1
) -> nn.Sequential:
    """Convolution (no bias, 'same' padding for stride 1) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConvStack(nn.Sequential):
    """``depth`` successive 3x3 conv-BN-ReLU layers (a VGG stage, or a U-Net double convolution)."""

    def __init__(self, in_channels: int, out_channels: int, *, depth: int = 2) -> None:
        layers = [conv_bn_relu(in_channels if i == 0 else out_channels, out_channels) for i in range(depth)]
        super().__init__(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layers in order."""
        for layer in self:
            x = layer(x)
        return x


def scaled(width: int, base_width: int) -> int:
    """Scale a width given for ``base_width=64`` to another base width (at least 1)."""
    return max(1, width * base_width // 64)
