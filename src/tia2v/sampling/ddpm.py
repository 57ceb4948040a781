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
    KnownFrames,
    ModelFn,
    even_timesteps,
    make_batch_t,
    randn_like,
    start,
)


@torch.no_grad()
def sample_ddpm(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    steps: int | None = None,
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x_T = noise → x_0 with p_θ(x_{t−1} | x_t) = N(μ_θ, Σ_θ).

    Args:
        model_fn: (x_t, t) → output; t are timesteps of ``diffusion`` (the training schedule).
        noise: x_T, any shape (B, C, …).
        diffusion: the training schedule.
        steps: respace to this many steps (None: all T).
        clip: clamp x̂_0 to [−1, 1].
        known: frames to put back at every step (x must then be (B, C, F, H, W)).
        callback: called after every step.
        generator: for the per-step noise.
    """
    num = diffusion.num_timesteps
    keep = even_timesteps(num, steps) if steps and steps < num else list(range(num - 1, -1, -1))
    spaced = diffusion.respaced(keep)
    x = start(noise, diffusion, int(spaced.timestep_map[-1]), known, generator)
    total = spaced.num_timesteps
    for step, index in enumerate(range(total - 1, -1, -1)):
        t_index = make_batch_t(x, index)
        output = model_fn(x, make_batch_t(x, int(spaced.timestep_map[index])))
        mean, log_variance, x0 = spaced.p_mean_variance(output, x, t_index, clip)
        if index > 0:
            z = randn_like(x, generator)
            x = mean + torch.exp(0.5 * log_variance) * z
        else:
            x = mean
        if known is not None:
            next_t = int(spaced.timestep_map[index - 1]) if index > 0 else FINAL
            x = known.replace(x, diffusion, next_t, generator)
        if callback is not None:
            callback(step, total, x, x0)
    return x
