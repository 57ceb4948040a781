"""Gaussian diffusion: noise schedules, forward process, posterior, model parameterisations.

Notation (Ho et al. 2020; Nichol & Dhariwal 2021), index t = 0 … T-1:

| name in code               | symbol                          | meaning                        |
|----------------------------|---------------------------------|--------------------------------|
| ``betas[t]``               | β_t                             | noise added at step t          |
| ``alphas_cumprod[t]``      | ᾱ_t = Π_{s≤t} (1-β_s)           | signal power left at t         |
| ``alphas_cumprod_prev[t]`` | ᾱ_{t-1} (ᾱ_{-1} = 1)            |                                |
| ``sqrt_(one_minus_)alphas_cumprod[t]`` | √ᾱ_t, √(1-ᾱ_t)     | scales of x_0 and ε in x_t     |
| ``posterior_variance[t]``  | β̃_t = β_t (1-ᾱ_{t-1})/(1-ᾱ_t)   | variance of q(x_{t-1} | x_t, x_0) |
| ``posterior_mean_coef1/2`` | μ̃_t = c1·x_0 + c2·x_t           | mean of q(x_{t-1} | x_t, x_0)  |
| ``eps``, ``v``             | ε, v = √ᾱ ε − √(1-ᾱ) x_0        | prediction targets             |
| ``log_variance``           | u·log β_t + (1-u)·log β̃_t       | learned range, u = (v_σ+1)/2   |

q(x_t | x_0) = N(√ᾱ_t x_0, (1-ᾱ_t) I). The network sees t·1000/T (``model_timesteps``), as in
the original code. All tensors are broadcast over any number of trailing dimensions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # annotation only: the sampler registry, which the config reads, imports this
    from tia2v.config import DiffusionConfig

NETWORK_TIMESTEPS = 1000.0  # the network sees timesteps rescaled to [0, NETWORK_TIMESTEPS)


def cosine_betas(num_timesteps: int, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule: ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2)."""

    def f(t: float) -> float:
        return math.cos((t / num_timesteps + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(num_timesteps)]
    return np.asarray(betas, np.float64)


def linear_betas(num_timesteps: int) -> np.ndarray:
    """The original linear schedule, scaled so that T = 1000 gives β from 1e-4 to 0.02."""
    scale = 1000 / num_timesteps
    return np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64)


def append_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """(B,) → (B, 1, …, 1) with ``ndim`` dimensions in all."""
    return x.reshape(x.shape + (1,) * (ndim - x.dim()))


class Diffusion:
    """A discrete-time Gaussian diffusion over a schedule of betas.

    Args:
        betas: (T,) float64.
        prediction: "eps" or "v", what the network's first C channels predict.
        learn_sigma: the network's last C channels interpolate the log-variance (learned range).
        timestep_map: original timestep of each index (a respaced schedule keeps some steps
            of a longer one; the network must see the original t).
        original_num_timesteps: T of the schedule the network was trained on.
    """

    def __init__(
        self,
        betas: np.ndarray,
        prediction: str = "eps",
        learn_sigma: bool = True,
        timestep_map: np.ndarray | None = None,
        original_num_timesteps: int | None = None,
    ):
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
        self.prediction, self.learn_sigma = prediction, learn_sigma
        self.betas = np.asarray(betas, np.float64)
        self.num_timesteps = len(self.betas)
        self.timestep_map = (
            np.arange(self.num_timesteps) if timestep_map is None else np.asarray(timestep_map)
        )
        self.original_num_timesteps = original_num_timesteps or self.num_timesteps
        alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        # √ᾱ, √(1−ᾱ) and the SNR in float64 here, cast to the data's dtype only when gathered:
        # 1 − ᾱ in float32 loses most of its digits near t = 0.
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.snr_table = self.alphas_cumprod / (1.0 - self.alphas_cumprod)
        self.posterior_variance = (
            self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        )
        # β̃_0 = 0: clip the log at t = 0 to β̃_1 (iDDPM).
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
        )
        self.posterior_mean_coef1 = (
            self.betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        )
        self.posterior_mean_coef2 = (
            (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        )

    @classmethod
    def from_config(cls, cfg: DiffusionConfig) -> Diffusion:
        schedules = {"cosine": cosine_betas, "linear": linear_betas}
        if cfg.schedule not in schedules:
            raise ValueError(
                f"diffusion.schedule must be one of {sorted(schedules)}, got {cfg.schedule!r}"
            )
        return cls(schedules[cfg.schedule](cfg.num_timesteps), cfg.prediction, cfg.learn_sigma)

    def respaced(self, timesteps: list[int] | np.ndarray) -> Diffusion:
        """The diffusion over a subset of steps (iDDPM respacing):
        β'_i = 1 − ᾱ_{k_i}/ᾱ_{k_{i−1}}."""
        keep = np.asarray(sorted(int(t) for t in timesteps))
        alphas_cumprod = self.alphas_cumprod[keep]
        betas = 1.0 - alphas_cumprod / np.append(1.0, alphas_cumprod[:-1])
        return Diffusion(
            betas,
            self.prediction,
            self.learn_sigma,
            self.timestep_map[keep],
            self.original_num_timesteps,
        )

    # ------------------------------------------------------------------------------------------

    def gather(self, array: np.ndarray, t: torch.Tensor, ndim: int) -> torch.Tensor:
        """array[t] as float32 (B, 1, …) on t's device."""
        values = torch.from_numpy(array).to(t.device)[t.long()].float()
        return append_dims(values, ndim)

    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """What the network sees: the original timestep rescaled to [0, 1000)."""
        original = torch.from_numpy(self.timestep_map).to(t.device)[t.long()]
        return original.float() * (NETWORK_TIMESTEPS / self.original_num_timesteps)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε."""
        alpha, sigma = self.alpha_sigma(t, x0.dim())
        return alpha * x0 + sigma * noise

    def alpha_sigma(self, t: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(√ᾱ_t, √(1−ᾱ_t)), each (B, 1, …), computed in float64."""
        return (
            self.gather(self.sqrt_alphas_cumprod, t, ndim),
            self.gather(self.sqrt_one_minus_alphas_cumprod, t, ndim),
        )

    def q_posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean μ̃_t and log-variance log β̃_t of q(x_{t−1} | x_t, x_0)."""
        mean = (
            self.gather(self.posterior_mean_coef1, t, xt.dim()) * x0
            + self.gather(self.posterior_mean_coef2, t, xt.dim()) * xt
        )
        return mean, self.gather(self.posterior_log_variance_clipped, t, xt.dim())

    def split_output(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Network output → (prediction, variance interpolation v_σ or None); channels on dim 1."""
        if self.learn_sigma:
            prediction, var_values = output.chunk(2, dim=1)
            return prediction, var_values
        return output, None

    def eps_and_x0(
        self, prediction: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, clip: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε̂, x̂_0) from an ε or v prediction; x̂_0 is clamped to [−1, 1] when ``clip``.

        With clipping, ε̂ is recomputed from the clamped x̂_0 so the two stay consistent.
        """
        alpha, sigma = self.alpha_sigma(t, xt.dim())
        if self.prediction == "v":
            x0 = alpha * xt - sigma * prediction
        else:
            x0 = (xt - sigma * prediction) / alpha
        if not clip and self.prediction == "eps":
            return prediction, x0
        if clip:
            x0 = x0.clamp(-1, 1)
        return (xt - alpha * x0) / sigma, x0

    def model_log_variance(
        self, var_values: torch.Tensor | None, t: torch.Tensor, ndim: int
    ) -> torch.Tensor:
        """log Σ_θ: learned range between log β_t and log β̃_t, or fixed at log β̃_t."""
        min_log = self.gather(self.posterior_log_variance_clipped, t, ndim)
        if var_values is None:
            return min_log
        max_log = self.gather(np.log(self.betas), t, ndim)
        frac = (var_values + 1) / 2
        return frac * max_log + (1 - frac) * min_log

    def p_mean_variance(
        self, output: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, clip: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p_θ(x_{t−1} | x_t), and x̂_0."""
        prediction, var_values = self.split_output(output)
        _, x0 = self.eps_and_x0(prediction, xt, t, clip)
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, self.model_log_variance(var_values, t, xt.dim()), x0

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """ᾱ_t / (1 − ᾱ_t), (B,)."""
        return self.gather(self.snr_table, t, 1)
