"""ConvLSTM (+Inception) U-Net of the seed paper (Wenger et al. 2023, MultiSenGE).

One ConvLSTM branch per sensor runs over that sensor's dates (3x3 kernel, 32 filters); the branches'
last hidden states are concatenated, optionally with an Inception branch (parallel 1x1, 3x3, 5x5
convolutions and 3x3 max-pool + 1x1) applied to the first date of the stacked S2+S1 input, and the
result feeds a U-Net with a VGG-16 encoder. Padded dates leave the recurrent state unchanged, and the
Inception branch reads each sensor's first *available* date (in the paper every date is present, so
this is its "first date").
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gee_fusion.deep.models.base import InputShape, SegmentationModel, sensor_series
from gee_fusion.deep.models.layers import conv_bn_relu
from gee_fusion.deep.models.spec import ConvLSTMSpec
from gee_fusion.deep.models.unet import UNetBody


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell (Shi et al. 2015): all four gates from one convolution of ``[x, h]``.

    Args:
        in_channels: Channels of the input at one date.
        hidden: Channels of the hidden and cell states (filters).
        kernel_size: Odd kernel size of the gate convolution.
    """

    def __init__(self, in_channels: int, hidden: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One step: return the new ``(h, c)``."""
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMBranch(nn.Module):
    """Run a :class:`ConvLSTMCell` over a ``(B, T, C, H, W)`` series and return the last hidden state.

    At a padded date (``pad[b, t]`` True) sample ``b`` keeps its previous ``(h, c)``; a sample whose
    dates are all padded returns the zero initial state.
    """

    def __init__(self, in_channels: int, hidden: int, *, kernel_size: int) -> None:
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, hidden, kernel_size=kernel_size)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        """Return the hidden state ``(B, hidden, H, W)`` after the last valid date."""
        b, t, _, hh, ww = x.shape
        h = x.new_zeros(b, self.cell.hidden, hh, ww)
        c = torch.zeros_like(h)
        for step in range(t):
            h_new, c_new = self.cell(x[:, step], (h, c))
            keep = pad[:, step, None, None, None]
            h = torch.where(keep, h, h_new)
            c = torch.where(keep, c, c_new)
        return h


class InceptionBranch(nn.Module):
    """Inception module (Szegedy et al. 2015): 1x1, 3x3, 5x5 and 3x3 max-pool + 1x1, concatenated."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.paths = nn.ModuleList(
            [
                conv_bn_relu(in_channels, width, kernel_size=1),
                conv_bn_relu(in_channels, width, kernel_size=3),
                conv_bn_relu(in_channels, width, kernel_size=5),
                nn.Sequential(
                    nn.MaxPool2d(3, stride=1, padding=1), conv_bn_relu(in_channels, width, kernel_size=1)
                ),
            ]
        )
        self.out_channels = 4 * width

    def forward(self, x: Tensor) -> Tensor:
        """Return the four paths concatenated, ``(B, 4*width, H, W)``."""
        return torch.cat([path(x) for path in self.paths], dim=1)


def first_valid_date(x: Tensor, pad: Tensor) -> Tensor:
    """Return each sample's first non-padded date of ``x`` ``(B, T, C, H, W)`` (zeros if none)."""
    valid = ~pad
    index = valid.to(torch.int64).argmax(dim=1)  # first True; 0 when all padded
    first = x[torch.arange(x.shape[0], device=x.device), index]
    return first * valid.any(dim=1).to(x.dtype)[:, None, None, None]


class ConvLSTMUNet(SegmentationModel):
    """ConvLSTM-S1 / -S2 / -S1S2 and ConvLSTM+Inception-S1S2 of Wenger et al. (2023).

    Args:
        spec: The model spec.
        inputs: Input shape per sensor (any number of dates works at run time; C is fixed).
        num_classes: Output classes.
    """

    def __init__(self, spec: ConvLSTMSpec, *, inputs: Mapping[str, InputShape], num_classes: int) -> None:
        super().__init__(sensors=spec.sensors, inputs=inputs, num_classes=num_classes)
        self.spec = spec
        self.branches = nn.ModuleDict(
            {
                s: ConvLSTMBranch(self.inputs[s].channels, spec.hidden, kernel_size=spec.kernel_size)
                for s in self.sensors
            }
        )
        head_channels = spec.hidden * len(self.sensors)
        self.inception: InceptionBranch | None = None
        if spec.inception:
            stacked = sum(self.inputs[s].channels for s in self.sensors)
            self.inception = InceptionBranch(stacked, spec.inception_width)
            head_channels += self.inception.out_channels
        self.head = UNetBody(
            head_channels, encoder="vgg16", base_width=spec.base_width, num_classes=num_classes
        )
        self.size_divisor = self.head.size_divisor

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Return logits ``(B, K, H, W)`` for a batch of the deep-stage contract."""
        self.spatial_size(batch)
        states, firsts = [], []
        for s in self.sensors:
            x, pad = sensor_series(batch, s, self.inputs[s], fixed_times=False, require_pad=True)
            assert pad is not None  # require_pad=True
            states.append(self.branches[s](x, pad))
            if self.inception is not None:
                firsts.append(first_valid_date(x, pad))
        if self.inception is not None:
            states.append(self.inception(torch.cat(firsts, dim=1)))
        return self.head(torch.cat(states, dim=1))
