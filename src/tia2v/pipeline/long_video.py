"""Long videos: clips chained over the whole audio track.

Each new clip starts from (is locked to) the last frame so far and is conditioned on its own
span of the audio; clips overlap by that one frame.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tia2v.errors import InputError
from tia2v.frames import images_to_tensor

ClipFn = Callable[[int, torch.Tensor | None, int], np.ndarray]
"""(first frame's index in the video, frame to lock as frame 0 or None, seed offset) → uint8
frames (F, H, W, 3)."""


def long_audio(
    samples: np.ndarray, rate: int, fps: float, clip_frames: int
) -> tuple[np.ndarray, int]:
    """The track cut to a whole number of frames, and that number; one clip at least."""
    total = int(len(samples) / rate * fps)
    if total < clip_frames:
        raise InputError(
            f"audio lasts {len(samples) / rate:.2f} s, shorter than one clip "
            f"({clip_frames} frames at {fps:g} fps = {clip_frames / fps:.2f} s)"
        )
    return samples[: round(total / fps * rate)], total


def chain_clips(
    clip: ClipFn,
    first: torch.Tensor | None,
    total: int,
    device: torch.device,
    value_range: float = 1.0,
) -> np.ndarray:
    """``total`` frames: the first clip from ``first``, then clips from the last frame so far
    (in the model's data range) until the video is long enough. Clip k's seed offset is its
    first frame's index."""
    frames = clip(0, first, 0)
    while len(frames) < total:
        last = images_to_tensor(frames[-1:], value_range).to(device)  # (1, 3, H, W)
        more = clip(len(frames) - 1, last, len(frames))
        frames = np.concatenate([frames, more[1:]])[:total]
    return frames
