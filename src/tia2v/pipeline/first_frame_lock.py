"""The first-frame lock: the given first frame is put back into the sample at every step.

A model trained with ``model.first_frame: noised`` (the paper) gets frame 0 back noised to the
current level (replacement, as in inpainting); one trained with ``clean`` sees it clean
whenever the image condition is on, and its guidance branches without the image see frame 0
noised, as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from tia2v.config import ExperimentConfig
from tia2v.diffusion.schedule import Diffusion
from tia2v.sampling.common import KnownFrames


def locks_first_frame(cfg: ExperimentConfig) -> bool:
    """Whether a given first frame is held during sampling."""
    return cfg.sample.first_frame_replacement or cfg.model.first_frame == "clean"


@dataclass
class FirstFrameLock:
    """known: frame 0 for the sampler; without_image: (x_t, t) → the input of guidance branches
    without the image (None for ``first_frame: noised``)."""

    known: KnownFrames
    without_image: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None


def first_frame_lock(
    first: torch.Tensor,
    num_frames: int,
    cfg: ExperimentConfig,
    diffusion: Diffusion,
    seeds: list[int],
) -> FirstFrameLock:
    """The lock of (B, C, H, W) first frames over clips of ``num_frames``; the noise of clip
    k's unlocked branches is drawn on the CPU from ``seeds[k] + 1``."""
    video = first[:, :, None].expand(-1, -1, num_frames, -1, -1)  # (B, C, F, H, W)
    clean = cfg.model.first_frame == "clean"
    known = KnownFrames(video, torch.arange(num_frames, device=first.device) == 0, clean=clean)
    if not clean:
        return FirstFrameLock(known, None)
    unlock_noise = torch.cat(
        [
            torch.randn(video[:1].shape, generator=torch.Generator().manual_seed(seed + 1))
            for seed in seeds
        ]
    ).to(first.device)  # (B, C, F, H, W)

    def without_image(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        noised = diffusion.q_sample(video, t, unlock_noise)
        return torch.where(known.frames.view(1, 1, -1, 1, 1), noised, x)

    return FirstFrameLock(known, without_image)
