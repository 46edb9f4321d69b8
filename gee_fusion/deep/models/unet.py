"""Single-stack U-Net: each sensor's dates flattened to ``T*C`` channels, concatenated, one encoder.

This is the "fusion-20" style baseline (all bands of all dates in one image) with a VGG-16 or
ResNet-18/34/50 encoder built from scratch.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from gee_fusion.deep.models.base import InputShape, SegmentationModel, flat_stack, stack_channels
from gee_fusion.deep.models.decoder import UNetDecoder
from gee_fusion.deep.models.encoders import EncoderName, build_encoder
from gee_fusion.deep.models.spec import UNetSpec


class UNetBody(nn.Module):
    """Encoder + :class:`UNetDecoder` on a plain ``(B, C, H, W)`` image.

    Attributes:
        size_divisor: Input H and W must be multiples of it (the deepest stride).
    """

    def __init__(self, in_channels: int, *, encoder: EncoderName, base_width: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = build_encoder(encoder, in_channels, base_width=base_width)
        self.decoder = UNetDecoder(
            channels=self.encoder.channels,
            strides=self.encoder.strides,
            num_classes=num_classes,
            base_width=base_width,
        )
        self.size_divisor = self.encoder.strides[-1]

    def forward(self, x: Tensor) -> Tensor:
        """Return logits ``(B, K, H, W)``."""
        return self.decoder(self.encoder(x))


class UNet(SegmentationModel):
    """U-Net on the flattened, concatenated time series of ``spec.sensors``.

    Args:
        spec: The model spec.
        inputs: Input shape per sensor (T is fixed: the dates are stacked as channels).
        num_classes: Output classes.
    """

    def __init__(self, spec: UNetSpec, *, inputs: Mapping[str, InputShape], num_classes: int) -> None:
        super().__init__(sensors=spec.sensors, inputs=inputs, num_classes=num_classes)
        self.spec = spec
        self.body = UNetBody(
            stack_channels(self.sensors, self.inputs),
            encoder=spec.encoder,
            base_width=spec.base_width,
            num_classes=num_classes,
        )
        self.size_divisor = self.body.size_divisor

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Return logits ``(B, K, H, W)`` for a batch of the deep-stage contract."""
        self.spatial_size(batch)
        return self.body(flat_stack(batch, self.sensors, self.inputs))
