"""Choosing the torch device for training and inference (GPU when there is one, overridable)."""

from __future__ import annotations

import torch

from gee_fusion.errors import ConfigError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when torch sees a GPU, else the CPU; ``"gpu"`` means CUDA.

    Raises:
        ConfigError: an unknown device, or CUDA asked for when torch sees no GPU.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(device)
    if name.split(":", 1)[0] not in ("cpu", "cuda", "gpu", "mps"):
        raise ConfigError(f"Unknown device {name!r}: use auto, cpu, cuda (or cuda:N) or gpu.")
    try:
        dev = torch.device("cuda" if name == "gpu" else device)
    except RuntimeError as exc:
        raise ConfigError(f"Unknown device {name!r}: use auto, cpu, cuda (or cuda:N) or gpu.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Device {str(device)!r} was asked for but torch sees no CUDA GPU: use cpu.")
    return dev
