"""DPM-Solver++ (Lu et al. 2022), 2M and 2M SDE, in data prediction with x̂_0 clamped to [−1, 1].

Notation: α_t = √ᾱ_t, σ_t = √(1−ᾱ_t), λ_t = log(α_t/σ_t), h = λ_next − λ_now, D = x̂_0.
2M:
    x_s = (σ_s/σ_t)·x_t − α_s·(e^{−h} − 1)·D,  D = (1 + 1/2r)·x̂_0(t) − (1/2r)·x̂_0(t_prev)
and its SDE form (2M SDE with the same D, "midpoint"; η = 1 is the reverse-time SDE, η = 0
the ODE above; z ~ N(0, I)):
    x_s = (σ_s/σ_t)·e^{−ηh}·x_t + α_s·(1 − e^{−(1+η)h})·D + σ_s·√(1 − e^{−2ηh})·z
The last step goes to σ = 0.
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
    log_snr,
    randn_like,
    start,
)


@torch.no_grad()
def sample_dpmpp_2m(
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
    """DPM-Solver++ (2M), first order on the first step and on the last one(s); ``eta`` > 0
    injects fresh noise at each step (2M SDE), which forgets early errors as ancestral
    sampling does."""
    x, previous_x0, previous_h = start(noise, diffusion, timesteps[0], known, generator), None, None
    total = len(timesteps)
    end = StepEnd(diffusion, known, callback, generator, total)
    for step, t in enumerate(timesteps):
        s = timesteps[step + 1] if step + 1 < total else FINAL
        _, x0 = denoise(model_fn, diffusion, x, t, clip)
        (_, sigma_t), (alpha_s, sigma_s) = alpha_sigma(diffusion, t), alpha_sigma(diffusion, s)
        if s == FINAL:
            x = x0  # the first-order step to σ = 0 lands on x̂_0
        else:
            h = log_snr(diffusion, s) - log_snr(diffusion, t)
            if previous_x0 is None:  # first step: first order
                d = x0
            else:
                r = previous_h / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous_x0
            keep = (sigma_s / sigma_t) * math.exp(-eta * h)
            x = keep * x - alpha_s * math.expm1(-(1 + eta) * h) * d
            if eta > 0:
                x = x + sigma_s * math.sqrt(-math.expm1(-2 * eta * h)) * randn_like(x, generator)
            previous_h = h
        previous_x0 = x0
        x = end(x, step, x0, s)
    return x
