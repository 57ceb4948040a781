"""What every sampler shares: timestep spacings, the denoised estimate, known frames and the
step callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tia2v.diffusion.schedule import Diffusion, append_dims

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x_t, t) → network output; t is a (B,) long tensor of the training schedule's timesteps."""

Callback = Callable[[int, int, torch.Tensor, torch.Tensor], None]
"""(step, total, x after the step, x̂_0 at the step) → None."""

Generators = torch.Generator | list[torch.Generator] | None
"""One generator for the batch, or one per row (a batch of clips, each with its own seed)."""

FINAL = -1  # "timestep" of clean data: ᾱ = 1, σ = 0


def alpha_sigma(diffusion: Diffusion, t: int) -> tuple[float, float]:
    """(√ᾱ_t, √(1−ᾱ_t)) with t = FINAL meaning (1, 0)."""
    if t == FINAL:
        return 1.0, 0.0
    ac = float(diffusion.alphas_cumprod[t])
    return ac**0.5, (1.0 - ac) ** 0.5


def log_snr(diffusion: Diffusion, t: int) -> float:
    """λ_t = log(√ᾱ_t / √(1−ᾱ_t))."""
    alpha, sigma = alpha_sigma(diffusion, t)
    return float(np.log(alpha) - np.log(sigma))


def leading_timesteps(diffusion: Diffusion, steps: int) -> list[int]:
    """DDIM's spacing: 0, T/N, 2T/N, … in decreasing order (diffusers' "leading")."""
    ratio = diffusion.num_timesteps // steps
    return [int(t) for t in (np.arange(steps) * ratio)[::-1]]


def linspace_timesteps(
    diffusion: Diffusion, steps: int, lambda_min: float | None = -5.1
) -> list[int]:
    """Multistep solvers' spacing, with the start of the schedule clipped at λ ≥ ``lambda_min``.

    At the very start of the cosine schedule ᾱ ≈ 1e-10: turning ε̂ into x̂_0 there multiplies
    the ε error by ~1e5 and the sample saturates (docs/samplers.md).
    """
    last = diffusion.num_timesteps
    if lambda_min is not None:
        lambdas = 0.5 * (np.log(diffusion.alphas_cumprod) - np.log1p(-diffusion.alphas_cumprod))
        last = diffusion.num_timesteps - int(np.searchsorted(lambdas[::-1], lambda_min))
    grid = np.linspace(0, last - 1, steps + 1).round()[::-1][:-1]
    return [int(t) for t in grid]


def even_timesteps(last: int, steps: int) -> list[int]:
    """At most ``steps`` timesteps evenly spread over [0, last], decreasing."""
    return sorted({int(t) for t in np.linspace(0, last, steps).round()}, reverse=True)


def respaced_timesteps(diffusion: Diffusion, steps: int) -> list[int]:
    """Ancestral sampling's spacing: every timestep when ``steps`` ≥ T, else ``steps`` evenly
    spread over [0, T−1] (iDDPM respacing); decreasing."""
    if steps >= diffusion.num_timesteps:
        return list(range(diffusion.num_timesteps - 1, -1, -1))
    return even_timesteps(diffusion.num_timesteps - 1, steps)


@dataclass
class KnownFrames:
    """Frames given in advance (e.g. the first frame), put back at every step.

    Attributes:
        video: (B, C, F, H, W) holding the known frames (other frames are ignored).
        frames: (F,) bool, which frames are known.
        clean: put them back clean at every step (a model trained with ``first_frame: clean``)
            instead of noised to the current level.
    """

    video: torch.Tensor
    frames: torch.Tensor
    clean: bool = False

    def replace(
        self,
        x: torch.Tensor,
        diffusion: Diffusion,
        t: int,
        generator: Generators = None,
    ) -> torch.Tensor:
        """x with the known frames noised to level t (exact at t = FINAL)."""
        known = self.video
        if t != FINAL and not self.clean:
            noise = randn_like(known, generator)
            known = diffusion.q_sample(known, torch.full((x.shape[0],), t, device=x.device), noise)
        mask = append_dims(self.frames.to(x.device), 3).view(1, 1, -1, 1, 1)
        return torch.where(mask, known.to(x.dtype), x)


def randn_like(x: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn on the generator's device and moved to x's.

    A CPU generator therefore gives the same noise whether the model runs on CPU or GPU. A list
    of generators gives row k of the batch its own stream: a clip sampled in a batch draws the
    same noise as when sampled alone.
    """
    if isinstance(generator, list):
        return torch.cat([randn_like(x[k : k + 1], g) for k, g in enumerate(generator)])
    device = x.device if generator is None else generator.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def make_batch_t(x: torch.Tensor, t: int) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)


def denoise(
    model_fn: ModelFn, diffusion: Diffusion, x: torch.Tensor, t: int, clip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ε̂, x̂_0) at timestep t, x̂_0 clamped to [−1, 1] with ``clip``."""
    output = model_fn(x, make_batch_t(x, t))
    prediction, _ = diffusion.split_output(output)
    return diffusion.eps_and_x0(prediction, x, make_batch_t(x, t), clip)


@dataclass
class StepEnd:
    """What happens after every solver step: known frames put back, then the callback."""

    diffusion: Diffusion
    known: KnownFrames | None
    callback: Callback | None
    generator: Generators
    total: int

    def __call__(self, x: torch.Tensor, step: int, x0: torch.Tensor, t_next: int) -> torch.Tensor:
        if self.known is not None:
            x = self.known.replace(x, self.diffusion, t_next, self.generator)
        if self.callback is not None:
            self.callback(step, self.total, x, x0)
        return x


def start(
    noise: torch.Tensor, diffusion: Diffusion, t: int, known: KnownFrames | None, generator
) -> torch.Tensor:
    """x at the first timestep: the noise, with the known frames put in at that level."""
    return noise if known is None else known.replace(noise, diffusion, t, generator)
