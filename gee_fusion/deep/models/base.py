"""What every model of the zoo shares: input shapes, the model base class, batch access with checks.

The batch contract is the one of :mod:`gee_fusion.deep`: ``batch[s]`` is ``(B, T, C, H, W)``,
``batch[f"{s}_doy"]`` ``(B, T)`` int64 and ``batch[f"{s}_pad"]`` ``(B, T)`` bool (True = missing date).
Values at padded dates are replaced by zeros before a model sees them, so whatever a dataset leaves
there (zeros, noise, NaN) never reaches the output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gee_fusion.errors import ConfigError, DataError


@dataclass(frozen=True)
class InputShape:
    """Shape of one sensor's input time series, as the patch store provides it.

    Attributes:
        times: Number of dates ``T`` (padded dates included).
        channels: Number of bands ``C`` per date.
    """

    times: int
    channels: int

    def __post_init__(self) -> None:
        for field, value in (("times", self.times), ("channels", self.channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"InputShape.{field} must be a positive integer, got {value!r}")


def require_inputs(sensors: Sequence[str], inputs: Mapping[str, InputShape]) -> dict[str, InputShape]:
    """Return the input shapes of ``sensors``, failing clearly when one is missing.

    Raises:
        DataError: If a sensor the model reads has no entry in ``inputs``.
    """
    missing = [s for s in sensors if s not in inputs]
    if missing:
        raise DataError(
            f"The model reads sensors {list(sensors)} but no input shape was given for {missing} "
            f"(inputs has {sorted(inputs)}); add them to the data config or drop them from the model spec."
        )
    return {s: inputs[s] for s in sensors}


def check_num_classes(num_classes: int) -> int:
    """Validate the number of output classes (>= 2)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return num_classes


class SegmentationModel(nn.Module):
    """Base class of the zoo: ``forward(batch)`` returns logits ``(B, K, H, W)``.

    Attributes:
        sensors: Sensors the model reads, in canonical order.
        size_divisor: H and W of a batch must be multiples of it.
        num_classes: Number of output classes K.
        inputs: Input shape of each sensor the model was built for.
    """

    def __init__(self, *, sensors: Sequence[str], inputs: Mapping[str, InputShape], num_classes: int) -> None:
        super().__init__()
        self.sensors: tuple[str, ...] = tuple(sensors)
        self.inputs: dict[str, InputShape] = require_inputs(self.sensors, inputs)
        self.num_classes: int = check_num_classes(num_classes)
        self.size_divisor: int = 1

    def spatial_size(self, batch: Mapping[str, Tensor]) -> tuple[int, int]:
        """Return ``(H, W)`` of the batch after checking every sensor agrees and fits ``size_divisor``.

        Raises:
            DataError: If sensors disagree on H, W or these are not multiples of ``size_divisor``.
        """
        sizes = {s: tuple(sensor_tensor(batch, s).shape[-2:]) for s in self.sensors}
        distinct = set(sizes.values())
        if len(distinct) != 1:
            raise DataError(f"Sensors must share H, W in one batch, got {sizes}")
        h, w = distinct.pop()
        d = self.size_divisor
        if h % d or w % d:
            raise DataError(
                f"{type(self).__name__} needs H and W multiples of {d}, got {h}x{w}; "
                f"crop or pad patches to a multiple of model.size_divisor"
            )
        return int(h), int(w)


def sensor_tensor(batch: Mapping[str, Tensor], sensor: str) -> Tensor:
    """Return ``batch[sensor]`` after checking it is a 5-D ``(B, T, C, H, W)`` tensor."""
    if sensor not in batch:
        raise DataError(
            f"The batch has no {sensor!r} entry (keys: {sorted(batch)}); the model reads {sensor}."
        )
    x = batch[sensor]
    if x.ndim != 5:
        raise DataError(f"batch[{sensor!r}] must be (B, T, C, H, W), got shape {tuple(x.shape)}")
    return x


def pad_mask(batch: Mapping[str, Tensor], sensor: str, *, required: bool) -> Tensor | None:
    """Return the ``(B, T)`` bool pad mask of ``sensor`` (True = missing date).

    Args:
        batch: The batch.
        sensor: Sensor name.
        required: Raise if the mask is absent; otherwise return None then.
    """
    key = f"{sensor}_pad"
    x = sensor_tensor(batch, sensor)
    if key not in batch:
        if required:
            raise DataError(f"The batch has no {key!r} entry: temporal models need the pad mask of {sensor}.")
        return None
    pad = batch[key]
    if tuple(pad.shape) != tuple(x.shape[:2]):
        raise DataError(f"batch[{key!r}] must have shape {tuple(x.shape[:2])} (B, T), got {tuple(pad.shape)}")
    return pad.to(device=x.device, dtype=torch.bool)


def day_of_year(batch: Mapping[str, Tensor], sensor: str) -> Tensor:
    """Return the ``(B, T)`` day of year of ``sensor``'s dates."""
    key = f"{sensor}_doy"
    x = sensor_tensor(batch, sensor)
    if key not in batch:
        raise DataError(f"The batch has no {key!r} entry: the model encodes the day of year of {sensor}.")
    doy = batch[key]
    if tuple(doy.shape) != tuple(x.shape[:2]):
        raise DataError(f"batch[{key!r}] must have shape {tuple(x.shape[:2])} (B, T), got {tuple(doy.shape)}")
    return doy.to(device=x.device)


def sensor_series(
    batch: Mapping[str, Tensor], sensor: str, shape: InputShape, *, fixed_times: bool, require_pad: bool
) -> tuple[Tensor, Tensor | None]:
    """Return ``sensor``'s ``(B, T, C, H, W)`` series with padded dates zeroed, and its pad mask.

    Args:
        batch: The batch.
        sensor: Sensor name.
        shape: The input shape the model was built for; C must match, T too if ``fixed_times``.
        fixed_times: The model needs exactly ``shape.times`` dates (stacking models).
        require_pad: The pad mask must be present.

    Raises:
        DataError: If the tensor's T or C differ from what the model was built for.
    """
    x = sensor_tensor(batch, sensor)
    if x.shape[2] != shape.channels:
        raise DataError(
            f"batch[{sensor!r}] has {x.shape[2]} channels; the model was built for {shape.channels}"
        )
    if fixed_times and x.shape[1] != shape.times:
        raise DataError(
            f"batch[{sensor!r}] has {x.shape[1]} dates; this model stacks the dates as channels "
            f"and was built for {shape.times}"
        )
    pad = pad_mask(batch, sensor, required=require_pad)
    if pad is not None:
        x = x.masked_fill(pad[:, :, None, None, None], 0.0)
    return x, pad


def flat_stack(
    batch: Mapping[str, Tensor], sensors: Sequence[str], inputs: Mapping[str, InputShape]
) -> Tensor:
    """Flatten each sensor's ``(B, T, C, H, W)`` series to ``(B, T*C, H, W)`` and concatenate them."""
    parts = []
    for s in sensors:
        x, _ = sensor_series(batch, s, inputs[s], fixed_times=True, require_pad=False)
        parts.append(x.flatten(1, 2))
    return torch.cat(parts, dim=1)


def stack_channels(sensors: Sequence[str], inputs: Mapping[str, InputShape]) -> int:
    """Number of channels of :func:`flat_stack` for these sensors."""
    return sum(inputs[s].times * inputs[s].channels for s in sensors)
