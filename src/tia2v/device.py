"""The ``--device`` of every command: a name checked against what this torch build has."""

from __future__ import annotations

import torch

from tia2v.errors import InputError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device``, checked against what this torch has (default: cuda when available)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"--device {device}: not a device name (cpu, cuda, cuda:1, …)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: this torch build sees no CUDA device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(f"--device {device}: only {torch.cuda.device_count()} CUDA devices")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device}: tia2v runs on cpu or cuda")
    return device
