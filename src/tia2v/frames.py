"""Frames ↔ tensors: uint8 pictures (…, H, W, 3) and float tensors in the model's data range
[−r, r] (``data.value_range``, 1 by default; the original trains on r = 0.5), and resizing.

The one place where pixel values change scale: ``(x / 127.5 − 1)·r`` one way, ``(x/r + 1)·127.5``
rounded the other.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _pixels(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    return images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))


def images_to_tensor(images: np.ndarray | torch.Tensor, value_range: float = 1.0) -> torch.Tensor:
    """uint8 (N, H, W, 3) → float (N, 3, H, W) in [−value_range, value_range]."""
    return (_pixels(images).permute(0, 3, 1, 2).float() / 127.5 - 1) * value_range


def frames_to_video(frames: np.ndarray | torch.Tensor, value_range: float = 1.0) -> torch.Tensor:
    """uint8 (F, H, W, 3) → a video (3, F, H, W) in [−value_range, value_range]."""
    return (_pixels(frames).permute(3, 0, 1, 2).float() / 127.5 - 1) * value_range


def video_to_frames(video: torch.Tensor, value_range: float = 1.0) -> np.ndarray:
    """A video (3, F, H, W) in [−value_range, value_range] → uint8 frames (F, H, W, 3), on the
    CPU."""
    video = video.detach().float() / value_range
    video = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return video.permute(1, 2, 3, 0).cpu().numpy()


def resize_center_crop(frames: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """(N, 3, H, W) float → (N, 3, size, size): shorter side to ``size`` (antialiased),
    centre crop."""
    height, width = frames.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    if (new_h, new_w) != (height, width):
        frames = F.interpolate(
            frames, (new_h, new_w), mode=mode, antialias=True, align_corners=False
        )
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return frames[..., top : top + size, left : left + size]


def to_model_frames(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) → uint8 (N, size, size, 3): resized, centre-cropped, re-quantised.

    Re-quantising makes live decoding and the embedding cache give identical examples.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
    x = resize_center_crop(x, size)  # (N, 3, S, S) in [0, 1]
    return (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
