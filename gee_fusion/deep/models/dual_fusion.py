"""Dual-encoder U-Net (Stocker & Le Bris): two encoders merged before the deepest layer.

The first encoder reads the image stack (each sensor's dates flattened to ``T*C`` channels). The
second reads either a prior label map (``batch["prior"]``, one-hot over ``prior_classes``; 255 = unknown
gives all zeros) or, for sensor fusion without a prior, the S1 stack while the first reads S2. Both
encoders have four VGG-style stages; their deepest maps are pooled, concatenated and processed by a
shared bottleneck stage, and the decoder receives both encoders' skips concatenated level by level.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.nn import functional

from gee_fusion.deep.models.base import InputShape, SegmentationModel, flat_stack, stack_channels
from gee_fusion.deep.models.decoder import UNetDecoder
from gee_fusion.deep.models.encoders import VGGEncoder
from gee_fusion.deep.models.layers import ConvStack, scaled
from gee_fusion.deep.models.spec import DualFusionSpec
from gee_fusion.errors import DataError

PRIOR_UNKNOWN = 255
"""Value of ``batch["prior"]`` where the prior map says nothing."""


def one_hot_prior(prior: Tensor, num_classes: int) -> Tensor:
    """One-hot encode a ``(B, H, W)`` class map to ``(B, num_classes, H, W)`` float; 255 gives zeros.

    Raises:
        DataError: If a value is neither 255 nor in ``0..num_classes-1``.
    """
    if prior.ndim != 3:
        raise DataError(f'batch["prior"] must be (B, H, W) class indices, got shape {tuple(prior.shape)}')
    prior = prior.long()
    unknown = prior == PRIOR_UNKNOWN
    bad = ~unknown & ((prior < 0) | (prior >= num_classes))
    if bool(bad.any()):
        values = torch.unique(prior[bad]).tolist()[:10]
        raise DataError(
            f'batch["prior"] holds values {values} outside 0..{num_classes - 1} (and not 255 = unknown); '
            f"set prior_classes in the model spec to the prior map's number of classes"
        )
    encoded = (
        functional.one_hot(prior.masked_fill(unknown, 0), num_classes).permute(0, 3, 1, 2).to(torch.float32)
    )
    return encoded * (~unknown)[:, None].to(torch.float32)


class DualEncoderFusion(SegmentationModel):
    """Dual-encoder fusion U-Net with a prior-map encoder (``use_prior``) or an S2 / S1 encoder pair.

    Args:
        spec: The model spec.
        inputs: Input shape per sensor (T is fixed: the dates are stacked as channels).
        num_classes: Output classes.
    """

    def __init__(self, spec: DualFusionSpec, *, inputs: Mapping[str, InputShape], num_classes: int) -> None:
        super().__init__(sensors=spec.sensors, inputs=inputs, num_classes=num_classes)
        self.spec = spec
        if spec.use_prior:
            assert spec.prior_classes is not None  # checked by the spec
            self.first_sensors: tuple[str, ...] = self.sensors
            self.second_sensors: tuple[str, ...] = ()
            second_in = spec.prior_classes
        else:
            self.first_sensors, self.second_sensors = ("S2",), ("S1",)
            second_in = stack_channels(self.second_sensors, self.inputs)
        first_in = stack_channels(self.first_sensors, self.inputs)
        widths = [scaled(w, spec.base_width) for w in (64, 128, 256, 512)]
        self.first = VGGEncoder(first_in, widths=widths, depths=(2, 2, 2, 2))
        self.second = VGGEncoder(second_in, widths=widths, depths=(2, 2, 2, 2))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvStack(2 * widths[-1], widths[-1], depth=2)
        self.decoder = UNetDecoder(
            channels=[2 * w for w in widths] + [widths[-1]],
            strides=[1, 2, 4, 8, 16],
            num_classes=num_classes,
            base_width=spec.base_width,
        )
        self.size_divisor = 16

    def _second_input(self, batch: Mapping[str, Tensor]) -> Tensor:
        if not self.spec.use_prior:
            return flat_stack(batch, self.second_sensors, self.inputs)
        if "prior" not in batch:
            raise DataError(
                'The batch has no "prior" entry; this model (use_prior=True) reads a prior label map.'
            )
        assert self.spec.prior_classes is not None
        return one_hot_prior(batch["prior"], self.spec.prior_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Return logits ``(B, K, H, W)`` for a batch of the deep-stage contract."""
        h, w = self.spatial_size(batch)
        first = flat_stack(batch, self.first_sensors, self.inputs)
        second = self._second_input(batch).to(device=first.device, dtype=first.dtype)
        if tuple(second.shape[-2:]) != (h, w):
            raise DataError(f"The second encoder's input is {tuple(second.shape[-2:])}, the images {(h, w)}")
        a, b = self.first(first), self.second(second)
        deepest = self.bottleneck(torch.cat([self.pool(a[-1]), self.pool(b[-1])], dim=1))
        skips = [torch.cat([fa, fb], dim=1) for fa, fb in zip(a, b, strict=True)]
        return self.decoder([*skips, deepest])
