"""The SHR refiner applied SDEdit-style (Meng et al. 2022): upsample, noise part-way, denoise.

The video is upsampled ×``refiner.scale``, noised to t = strength·T − 1 and denoised with
DPM-Solver++ under text guidance; a refiner with ``refiner.lowres_channels`` also sees the
upsampled input at every step. Strength 0 returns the upsampled input.
"""

from __future__ import annotations

import numpy as np
import torch

from tia2v.conditions import Conditions
from tia2v.config import ExperimentConfig
from tia2v.diffusion.guidance import guided_model_fn
from tia2v.diffusion.schedule import Diffusion
from tia2v.errors import InputError
from tia2v.frames import frames_to_video, video_to_frames
from tia2v.models.layout import upsample_video
from tia2v.models.network import TIA2VNetwork
from tia2v.sampling.common import Callback, even_timesteps
from tia2v.sampling.dpmpp import sample_dpmpp_2m


@torch.no_grad()
def sdedit(
    refiner: TIA2VNetwork,
    cfg: ExperimentConfig,
    frames: np.ndarray,
    text: str | None = None,
    *,
    strength: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    callback: Callback | None = None,
) -> np.ndarray:
    """Re-renders uint8 frames (F, H, W, 3) at ``scale``× → uint8 (F, scale·H, scale·W, 3).

    Args:
        strength: in [0, 1] (default ``refiner.strength``; 0.375 = t 1499 of 4000).
        steps: DPM-Solver++ steps (default ``refiner.steps``), at most t_start + 1.
        seed: the noise, drawn on the CPU.
    """
    rc = cfg.refiner
    strength = rc.strength if strength is None else float(strength)
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"refine strength must be in [0, 1], got {strength}")
    diffusion = Diffusion.from_config(cfg.diffusion)
    device = next(refiner.unet.parameters()).device
    value_range = cfg.data.value_range
    video = frames_to_video(frames, value_range).to(device)  # (3, F, H, W)
    up = upsample_video(video[None], rc.scale)  # (1, 3, F, sH, sW)
    t_start = round(strength * diffusion.num_timesteps) - 1
    if t_start < 0:
        return video_to_frames(up[0], value_range)
    cond = Conditions(lowres=up if refiner.lowres_scale else None)
    if text is not None:
        encoded = refiner.conditioner.encode_text([text])
        cond.text, cond.text_mask = encoded.tokens, encoded.mask
    model_fn = guided_model_fn(
        refiner.unet,
        cond,
        {"text": rc.guidance_text},
        diffusion.model_timesteps,
        cfg.diffusion.learn_sigma,
    )
    timesteps = even_timesteps(t_start, min(steps or rc.steps, t_start + 1))
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(up.shape, generator=generator).to(device)
    x = diffusion.q_sample(up, torch.full((1,), t_start, device=device), noise)
    x = sample_dpmpp_2m(
        model_fn, x, diffusion, timesteps, generator=generator, callback=callback
    )  # (1, 3, F, sH, sW)
    return video_to_frames(x[0], value_range)
