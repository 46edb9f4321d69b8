"""Choosing the torch device for training and inference (GPU when there is one, overridable)."""

from __future__ import annotations

import torch

from gee_fusion.errors import ConfigError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when torch sees a GPU, else the CPU; ``"gpu"`` means CUDA.

    Raises:
        ConfigError: CUDA was asked for but torch sees no GPU.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device("cuda" if str(device) == "gpu" else device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Device {str(device)!r} was asked for but torch sees no CUDA GPU: use cpu.")
    return dev
