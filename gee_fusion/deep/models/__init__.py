"""The model zoo of the local deep stage: specs, and :func:`build_model` to turn a spec into a model.

Every model follows the contract of :mod:`gee_fusion.deep`: ``forward(batch)`` returns logits
``(B, K, H, W)`` for H, W multiples of ``model.size_divisor``; ``model.sensors`` names what it reads.

Example:
    >>> spec = parse_model_spec({"name": "convlstm", "sensors": ["S1", "S2"], "inception": True})
    >>> model = build_model(spec, inputs={"S2": InputShape(4, 10), "S1": InputShape(4, 3)}, num_classes=10)
"""

from __future__ import annotations

from collections.abc import Mapping

from gee_fusion.deep.models.base import InputShape, SegmentationModel, check_num_classes, require_inputs
from gee_fusion.deep.models.convlstm import ConvLSTMUNet
from gee_fusion.deep.models.dual_fusion import DualEncoderFusion
from gee_fusion.deep.models.spec import (
    ConvLSTMSpec,
    DualFusionSpec,
    ModelSpec,
    UNetSpec,
    UTAESpec,
    parse_model_spec,
)
from gee_fusion.deep.models.unet import UNet
from gee_fusion.deep.models.utae import UTAE
from gee_fusion.errors import ConfigError

__all__ = [
    "UTAE",
    "ConvLSTMSpec",
    "ConvLSTMUNet",
    "DualEncoderFusion",
    "DualFusionSpec",
    "InputShape",
    "ModelSpec",
    "SegmentationModel",
    "UNet",
    "UNetSpec",
    "UTAESpec",
    "build_model",
    "parse_model_spec",
]


def build_model(spec: ModelSpec, *, inputs: Mapping[str, InputShape], num_classes: int) -> SegmentationModel:
    """Build the model a spec describes.

    Args:
        spec: A model spec (e.g. from :func:`parse_model_spec`).
        inputs: Input shape ``(times, channels)`` of each available sensor; extra sensors are ignored.
        num_classes: Number of output classes K (>= 2).

    Returns:
        The model, in training mode, with ``sensors``, ``size_divisor`` and ``num_classes`` set.

    Raises:
        DataError: If a sensor the spec reads is missing from ``inputs``.
        ConfigError: If ``num_classes`` < 2 or ``spec`` is not a model spec.
    """
    require_inputs(getattr(spec, "sensors", ()), inputs)
    check_num_classes(num_classes)
    if isinstance(spec, UNetSpec):
        return UNet(spec, inputs=inputs, num_classes=num_classes)
    if isinstance(spec, ConvLSTMSpec):
        return ConvLSTMUNet(spec, inputs=inputs, num_classes=num_classes)
    if isinstance(spec, UTAESpec):
        return UTAE(spec, inputs=inputs, num_classes=num_classes)
    if isinstance(spec, DualFusionSpec):
        return DualEncoderFusion(spec, inputs=inputs, num_classes=num_classes)
    raise ConfigError(f"Not a model spec: {spec!r}; build one with parse_model_spec({{'name': ..., ...}})")
