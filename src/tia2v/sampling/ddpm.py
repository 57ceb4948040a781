"""Ancestral DDPM sampling with the learned variance, over the full or a respaced schedule.

This is the original code's procedure (3,900 steps of the 4,000 in the released scripts); it
is kept as the reference that the fast solvers are measured against.
"""

from __future__ import annotations

import torch

from tia2v.diffusion.schedule import Diffusion
from tia2v.sampling.common import (
    FINAL,
    Callback,
    Generators,
    KnownFrames,
    ModelFn,
    StepEnd,
    make_batch_t,
    randn_like,
    start,
)


@torch.no_grad()
def sample_ddpm(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    timesteps: list[int] | None = None,
    *,
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: Generators = None,
) -> torch.Tensor:
    """x_T = noise → x_0 with p_θ(x_{t−1} | x_t) = N(μ_θ, Σ_θ).

    Args:
        model_fn: (x_t, t) → output; t are timesteps of ``diffusion`` (the training schedule).
        noise: x_T, any shape (B, C, …).
        diffusion: the training schedule.
        timesteps: the steps to keep (iDDPM respacing, e.g. ``respaced_timesteps``; None: all T).
        clip: clamp x̂_0 to [−1, 1].
        known: frames to put back at every step (x must then be (B, C, F, H, W)).
        callback: called after every step.
        generator: for the per-step noise.
    """
    spaced = diffusion.respaced(range(diffusion.num_timesteps) if timesteps is None else timesteps)
    x = start(noise, diffusion, int(spaced.timestep_map[-1]), known, generator)
    total = spaced.num_timesteps
    end = StepEnd(diffusion, known, callback, generator, total)
    for step, index in enumerate(range(total - 1, -1, -1)):
        t_index = make_batch_t(x, index)
        output = model_fn(x, make_batch_t(x, int(spaced.timestep_map[index])))
        mean, log_variance, x0 = spaced.p_mean_variance(output, x, t_index, clip)
        if index > 0:
            z = randn_like(x, generator)
            x = mean + torch.exp(0.5 * log_variance) * z
        else:
            x = mean
        x = end(x, step, x0, int(spaced.timestep_map[index - 1]) if index > 0 else FINAL)
    return x
