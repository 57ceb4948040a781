"""The samplers by name: each a function on a ``model_fn(x_t, t)`` closure and its spacing.

| name  | method                                  | spacing of ``steps``             | η  |
|-------|-----------------------------------------|----------------------------------|----|
| ddpm  | ancestral, learned variance             | every step, or iDDPM respacing   | –  |
| ddim  | DDIM                                    | "leading": 0, T/N, 2T/N, …       | ✓  |
| dpm++ | DPM-Solver++ 2M (2M SDE with η > 0)     | linear in t, λ ≥ −5.1            | ✓  |
| unipc | UniPC-bh2, order 2                      | linear in t, λ ≥ −5.1            | –  |
| lcm   | multistep consistency, a student's only | T−1, T−1−T/N, …                  | γ  |

``lcm`` runs a distilled student (``tia2v train distill``): one call per step, the guidance
scales are the student's input; its η is TCD's γ in [0, 1] (1: LCM's fresh noise per step).

To add a sampler: a module with ``sample_<name>(model_fn, noise, diffusion, timesteps, *,
known, callback, generator)`` (and ``eta`` if it injects noise) and a row here; the CLI, the
pipeline and the config check read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from tia2v.diffusion.schedule import Diffusion
from tia2v.errors import InputError
from tia2v.sampling.common import (
    Callback,
    Generators,
    KnownFrames,
    ModelFn,
    leading_timesteps,
    linspace_timesteps,
    respaced_timesteps,
)
from tia2v.sampling.ddim import sample_ddim
from tia2v.sampling.ddpm import sample_ddpm
from tia2v.sampling.dpmpp import sample_dpmpp_2m
from tia2v.sampling.lcm import lcm_timesteps, sample_lcm
from tia2v.sampling.unipc import sample_unipc


@dataclass(frozen=True)
class Sampler:
    """A sampling function, the timesteps it runs for a step count, whether it takes η, and
    whether it runs a distilled student instead of the guided model."""

    sample: Callable[..., torch.Tensor]
    spacing: Callable[[Diffusion, int], list[int]]
    takes_eta: bool
    student: bool = False


SAMPLERS: dict[str, Sampler] = {
    "ddpm": Sampler(sample_ddpm, respaced_timesteps, takes_eta=False),
    "ddim": Sampler(sample_ddim, leading_timesteps, takes_eta=True),
    "dpm++": Sampler(sample_dpmpp_2m, linspace_timesteps, takes_eta=True),
    "unipc": Sampler(sample_unipc, linspace_timesteps, takes_eta=False),
    "lcm": Sampler(sample_lcm, lcm_timesteps, takes_eta=True, student=True),
}


def get_sampler(name: str) -> Sampler:
    if name not in SAMPLERS:
        raise InputError(f"unknown sampler {name!r} (choose {', '.join(SAMPLERS)})")
    return SAMPLERS[name]


@dataclass
class SamplerCall:
    """Everything but the model and the noise: what a request asks of a sampler."""

    name: str
    steps: int
    eta: float = 0.0
    known: KnownFrames | None = None
    generator: Generators = None
    callback: Callback | None = None

    def timesteps(self, diffusion: Diffusion) -> list[int]:
        return get_sampler(self.name).spacing(diffusion, self.steps)

    def run(self, model_fn: ModelFn, noise: torch.Tensor, diffusion: Diffusion) -> torch.Tensor:
        sampler = get_sampler(self.name)
        extra = {"eta": self.eta} if sampler.takes_eta else {}
        return sampler.sample(
            model_fn,
            noise,
            diffusion,
            self.timesteps(diffusion),
            known=self.known,
            callback=self.callback,
            generator=self.generator,
            **extra,
        )
