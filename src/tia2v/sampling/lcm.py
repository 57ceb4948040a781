"""Multistep consistency sampling for a distilled student (LCM, Luo et al. 2023), with TCD's
γ (Zheng et al. 2024) as ``eta``: one network call per step, no guidance branches.

The student's consistency function is

    f(x_t, t) = c_skip(t)·x_t + c_out(t)·x̂_0(x_t, t),
    c_skip = σ_d² / ((10·t)² + σ_d²),  c_out = 10·t / √((10·t)² + σ_d²),  σ_d = 0.5,

with x̂_0 from the network's ε or v output and t on the network's scale, so f is exactly the
identity at t = 0 (the boundary condition) and the network's x̂_0 anywhere else. Each step
takes x_t to the clean estimate f and goes on to the next timestep s: through TCD's
intermediate s' = ⌊(1 − γ)·s⌋, x_s' = α_s'·f + σ_s'·ε̂ (ε̂ the noise that f implies), then
forward-noised from s' to s. γ = 1 is LCM's sampler (x_s = α_s·f + σ_s·z), γ = 0 a
deterministic step.
"""

from __future__ import annotations

import math

import torch

from tia2v.diffusion.schedule import Diffusion, append_dims
from tia2v.sampling.common import (
    FINAL,
    Callback,
    Generators,
    KnownFrames,
    ModelFn,
    StepEnd,
    alpha_sigma,
    make_batch_t,
    randn_like,
    start,
)

SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0


def consistency_scalings(network_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) at network timesteps (B,): (1, 0) at t = 0."""
    scaled = network_t.double() * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2).sqrt()
    return c_skip.float(), c_out.float()


def consistency_output(
    output: torch.Tensor, diffusion: Diffusion, x: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The consistency function f(x_t, t) from a student's network output at schedule
    timesteps t (B,)."""
    prediction, _ = diffusion.split_output(output)
    _, x0 = diffusion.eps_and_x0(prediction, x, t, clip=False)
    c_skip, c_out = consistency_scalings(diffusion.model_timesteps(t))
    return append_dims(c_skip, x.dim()) * x + append_dims(c_out, x.dim()) * x0


def lcm_timesteps(diffusion: Diffusion, steps: int) -> list[int]:
    """T−1, T−1−T/N, …: ``steps`` evenly spaced timesteps from the last one down."""
    last = diffusion.num_timesteps
    return [last - 1 - (k * last) // steps for k in range(steps)]


@torch.no_grad()
def sample_lcm(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    timesteps: list[int],
    *,
    eta: float = 1.0,
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: Generators = None,
) -> torch.Tensor:
    """Multistep consistency sampling; ``eta`` is TCD's γ in [0, 1] (1: LCM)."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"lcm: eta (TCD's gamma) must lie in [0, 1], got {eta}")
    x = start(noise, diffusion, timesteps[0], known, generator)
    end = StepEnd(diffusion, known, callback, generator, len(timesteps))
    for step, t in enumerate(timesteps):
        s = timesteps[step + 1] if step + 1 < len(timesteps) else FINAL
        batch_t = make_batch_t(x, t)
        x0 = consistency_output(model_fn(x, batch_t), diffusion, x, batch_t)
        if clip:
            x0 = x0.clamp(-1, 1)
        if s == FINAL:
            x = end(x0, step, x0, s)
            continue
        alpha_t, sigma_t = alpha_sigma(diffusion, t)
        eps = (x - alpha_t * x0) / sigma_t
        between = FINAL if eta == 1.0 else math.floor((1.0 - eta) * s)
        alpha_b, sigma_b = alpha_sigma(diffusion, between)
        x = alpha_b * x0 + sigma_b * eps
        if between != s:  # forward-noise from s' to s
            ratio = (alpha_sigma(diffusion, s)[0] / alpha_b) ** 2
            x = math.sqrt(ratio) * x + math.sqrt(max(1.0 - ratio, 0.0)) * randn_like(x, generator)
        x = end(x, step, x0, s)
    return x
