"""The only place where video tensors change layout.

Public tensors are ``(B, C, F, H, W)``. Per-frame 2-D layers see frames folded into the
batch, ``(B*F, C, H, W)`` with the frames of one video adjacent; temporal layers see each
pixel's frame sequence, ``(B*H*W, F, C)``. Resizing whole videos (the refiner's
low-resolution view) is here too.
"""

from __future__ import annotations

import torch


def frames_to_batch(video: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) → (B*F, C, H, W)."""
    batch, channels, frames, height, width = video.shape
    return video.transpose(1, 2).reshape(batch * frames, channels, height, width)


def batch_to_frames(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*F, C, H, W) → (B, C, F, H, W)."""
    _, channels, height, width = x.shape
    return x.reshape(-1, num_frames, channels, height, width).transpose(1, 2)


def batch_to_sequences(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*F, C, H, W) → (B*H*W, F, C): one frame sequence per pixel."""
    _, channels, height, width = x.shape
    video = x.reshape(-1, num_frames, channels, height, width)  # (B, F, C, H, W)
    return video.permute(0, 3, 4, 1, 2).reshape(-1, num_frames, channels)


def sequences_to_batch(x: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
    """(B*H*W, F, C) → (B*F, C, H, W)."""
    channels = x.shape[-1]
    video = x.reshape(-1, height, width, num_frames, channels)  # (B, H, W, F, C)
    return video.permute(0, 3, 4, 1, 2).reshape(-1, channels, height, width)


def repeat_per_frame(tokens: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B, L, D) per-video tokens → (B*F, L, D), the same tokens for every frame."""
    return tokens.repeat_interleave(num_frames, dim=0)


def upsample_video(video: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, F, H, W) in [−1, 1] → (B, C, F, scale·H, scale·W), bilinear, clamped."""
    frames = torch.nn.functional.interpolate(
        frames_to_batch(video), scale_factor=scale, mode="bilinear", align_corners=False
    )
    return batch_to_frames(frames, video.shape[2]).clamp(-1, 1)


def lowres_view(video: torch.Tensor, scale: int) -> torch.Tensor:
    """What the refiner is given of a clip at its own resolution: the clip area-downsampled
    by ``scale`` and upsampled back like a generated video. (B, C, F, H, W) → same shape."""
    small = torch.nn.functional.avg_pool2d(frames_to_batch(video), scale)
    return upsample_video(batch_to_frames(small, video.shape[2]), scale)
