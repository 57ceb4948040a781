"""DDIM (Song et al. 2021) with η: deterministic at η = 0, DDPM-like at η = 1.

Data prediction with x̂_0 clamped to [−1, 1]; the last step goes to σ = 0. Notation:
α_t = √ᾱ_t, σ_t = √(1−ᾱ_t).
"""

from __future__ import annotations

import math

import torch

from tia2v.diffusion.schedule import Diffusion
from tia2v.sampling.common import (
    FINAL,
    Callback,
    Generators,
    KnownFrames,
    ModelFn,
    StepEnd,
    alpha_sigma,
    denoise,
    randn_like,
    start,
)


@torch.no_grad()
def sample_ddim(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    timesteps: list[int],
    *,
    eta: float = 0.0,
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: Generators = None,
) -> torch.Tensor:
    """DDIM: x_s = α_s·x̂_0 + √(1 − ᾱ_s − σ²)·ε̂ + σ·z, σ = η·√((1−ᾱ_s)/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_s)."""
    x = start(noise, diffusion, timesteps[0], known, generator)
    end = StepEnd(diffusion, known, callback, generator, len(timesteps))
    for step, t in enumerate(timesteps):
        s = timesteps[step + 1] if step + 1 < len(timesteps) else FINAL
        eps, x0 = denoise(model_fn, diffusion, x, t, clip)
        alpha_t, (alpha_s, sigma_s) = alpha_sigma(diffusion, t)[0], alpha_sigma(diffusion, s)
        ac_t, ac_s = alpha_t**2, alpha_s**2
        noise_level = eta * math.sqrt(max((1 - ac_s) / (1 - ac_t) * (1 - ac_t / ac_s), 0.0))
        x = alpha_s * x0 + math.sqrt(max(sigma_s**2 - noise_level**2, 0.0)) * eps
        if noise_level > 0:
            x = x + noise_level * randn_like(x, generator)
        x = end(x, step, x0, s)
    return x
