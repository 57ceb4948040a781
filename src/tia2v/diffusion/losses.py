"""The training objective: MSE on the prediction + λ·VLB (Improved DDPM's hybrid loss).

L = mean (target − prediction)² · w(t) + λ · L_vlb, with λ = T/1000 by default (the original's
RESCALED_MSE). L_vlb is KL(q(x_{t−1}|x_t,x_0) ‖ p_θ(x_{t−1}|x_t)) in bits per dimension, or the
discretised-Gaussian decoder NLL at t = 0; the mean enters it with a stop-gradient, so the VLB
trains only the variance. One timestep per video: t has shape (B,).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from tia2v.config import DiffusionConfig
from tia2v.diffusion.schedule import Diffusion


def mean_flat(x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over all but the batch dimension: (B, …) → (B,); ``weight`` (broadcastable, 0/1)
    restricts it to the elements it marks."""
    if weight is None:
        return x.flatten(1).mean(dim=1)
    weight = weight.expand_as(x)
    return (x * weight).flatten(1).sum(dim=1) / weight.flatten(1).sum(dim=1).clamp(min=1)


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor
) -> torch.Tensor:
    """log p(x) of data in [−1, 1] quantised to 256 bins under N(means, e^{2·log_scales})."""
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(
        x < -0.999,
        log_cdf_plus,
        torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))),
    )


def vlb_terms(
    diffusion: Diffusion,
    output: torch.Tensor,
    x0: torch.Tensor,
    xt: torch.Tensor,
    t: torch.Tensor,
    weight: torch.Tensor | None = None,
    clip_x0: bool = False,
) -> torch.Tensor:
    """Per-video VLB term in bits/dim: KL for t > 0, decoder NLL at t = 0. (B,). The model's
    posterior is taken from x̂_0 clamped to [−1, 1] with ``clip_x0`` (the original's choice),
    from the raw x̂_0 without (iDDPM's)."""
    true_mean, true_log_var = diffusion.q_posterior(x0, xt, t)
    model_mean, model_log_var, _ = diffusion.p_mean_variance(output, xt, t, clip=clip_x0)
    kl = normal_kl(true_mean, true_log_var, model_mean, model_log_var)
    kl = mean_flat(kl, weight) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var)
    nll = mean_flat(nll, weight) / math.log(2.0)
    return torch.where(t == 0, nll, kl)


def training_losses(
    diffusion: Diffusion,
    cfg: DiffusionConfig,
    model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    known: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-video loss terms.

    Args:
        diffusion: the training schedule.
        cfg: prediction target, loss weighting and the VLB weight.
        model_fn: (x_t, t) → network output (B, C or 2C, …).
        x0: clean data (B, C, …) in [−1, 1].
        t: (B,) integer timesteps, one per video.
        noise: ε, like x0.
        known: (B, F) bool, frames given clean to the network (x0 of shape (B, C, F, H, W));
            they take no part in the loss.

    Returns:
        "loss", "mse", "vb": (B,) each ("vb" is zero without a learned variance).
    """
    xt = diffusion.q_sample(x0, t, noise)
    weight = None
    if known is not None:
        frames = known[:, None, :, None, None]  # (B, 1, F, 1, 1)
        xt = torch.where(frames, x0, xt)
        weight = (~frames).to(x0.dtype)
    output = model_fn(xt, t)
    prediction, var_values = diffusion.split_output(output)
    if diffusion.prediction == "v":
        alpha, sigma = diffusion.alpha_sigma(t, x0.dim())
        target = alpha * noise - sigma * x0
    else:
        target = noise
    mse = mean_flat((target - prediction) ** 2, weight)
    weighted = mse * loss_weight(diffusion, cfg, t)
    if var_values is None:
        vb = torch.zeros_like(mse)
    else:
        # Stop-gradient on the mean: the VLB only trains the variance (iDDPM hybrid loss).
        frozen = torch.cat([prediction.detach(), var_values], dim=1)
        vb = vlb_terms(diffusion, frozen, x0, xt, t, weight, clip_x0=cfg.vlb_clip_x0)
    vlb_weight = cfg.vlb_weight if cfg.vlb_weight is not None else diffusion.num_timesteps / 1000.0
    return {"loss": weighted + vlb_weight * vb, "mse": mse, "vb": vb}


def sample_timesteps(
    size: int, highest: int, shift: float, generator: torch.Generator
) -> torch.Tensor:
    """(size,) integer training timesteps in [0, highest): uniform for ``shift`` = 1, else the
    uniform draw u mapped to shift·u / (1 + (shift − 1)·u), which favours high noise for
    shift > 1."""
    if shift == 1.0:
        return torch.randint(0, highest, (size,), generator=generator)
    u = torch.rand(size, generator=generator, dtype=torch.float64)
    shifted = shift * u / (1 + (shift - 1) * u)
    return (shifted * highest).long().clamp(max=highest - 1)


def loss_weight(diffusion: Diffusion, cfg: DiffusionConfig, t: torch.Tensor) -> torch.Tensor:
    """w(t): 1, or min-SNR-γ (Hang et al. 2023) expressed for the chosen target. (B,)."""
    if cfg.loss_weighting == "none":
        return torch.ones_like(t, dtype=torch.float32)
    if cfg.loss_weighting != "min_snr":
        raise ValueError(
            f"diffusion.loss_weighting must be 'none' or 'min_snr', got {cfg.loss_weighting!r}"
        )
    snr = diffusion.snr(t)
    clipped = snr.clamp(max=cfg.min_snr_gamma)
    # ε-MSE equals x0-MSE·SNR, v-MSE equals x0-MSE·(SNR+1): divide that factor back out.
    return clipped / (snr + 1) if diffusion.prediction == "v" else clipped / snr
