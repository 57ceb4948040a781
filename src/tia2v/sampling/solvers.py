"""Fast samplers: DDIM (η), DPM-Solver++ (2M and 2M SDE) and UniPC (bh2, order 2).

All work in data prediction with x̂_0 clamped to [−1, 1] and step to σ = 0 at the end. Notation:
α_t = √ᾱ_t, σ_t = √(1−ᾱ_t), λ_t = log(α_t/σ_t), h = λ_next − λ_now, D = x̂_0.
DPM-Solver++ (Lu et al. 2022, eq. for 2M):
    x_s = (σ_s/σ_t)·x_t − α_s·(e^{−h} − 1)·D,  D = (1 + 1/2r)·x̂_0(t) − (1/2r)·x̂_0(t_prev)
and its SDE form (2M SDE with the same D, "midpoint"; η = 1 is the reverse-time SDE, η = 0
the ODE above; z ~ N(0, I)):
    x_s = (σ_s/σ_t)·e^{−ηh}·x_t + α_s·(1 − e^{−(1+η)h})·D + σ_s·√(1 − e^{−2ηh})·z
UniPC (Zhao et al. 2023): a predictor of the same form plus a corrector that re-uses the model
evaluation at the new point (no extra network call).
"""

from __future__ import annotations

import math

import torch

from tia2v.diffusion.schedule import Diffusion
from tia2v.sampling.common import (
    FINAL,
    Callback,
    KnownFrames,
    ModelFn,
    alpha_sigma,
    log_snr,
    make_batch_t,
    randn_like,
    start,
)


def _denoise(model_fn: ModelFn, diffusion: Diffusion, x: torch.Tensor, t: int, clip: bool):
    output = model_fn(x, make_batch_t(x, t))
    prediction, _ = diffusion.split_output(output)
    return diffusion.eps_and_x0(prediction, x, make_batch_t(x, t), clip)  # (ε̂, x̂_0)


def _finish(x, step, total, x0, diffusion, t_next, known, callback, generator):
    if known is not None:
        x = known.replace(x, diffusion, t_next, generator)
    if callback is not None:
        callback(step, total, x, x0)
    return x


@torch.no_grad()
def sample_ddim(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    timesteps: list[int],
    eta: float = 0.0,
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDIM: x_s = α_s·x̂_0 + √(1 − ᾱ_s − σ²)·ε̂ + σ·z, σ = η·√((1−ᾱ_s)/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_s)."""
    x = start(noise, diffusion, timesteps[0], known, generator)
    for step, t in enumerate(timesteps):
        s = timesteps[step + 1] if step + 1 < len(timesteps) else FINAL
        eps, x0 = _denoise(model_fn, diffusion, x, t, clip)
        alpha_t, (alpha_s, sigma_s) = alpha_sigma(diffusion, t)[0], alpha_sigma(diffusion, s)
        ac_t, ac_s = alpha_t**2, alpha_s**2
        noise_level = eta * math.sqrt(max((1 - ac_s) / (1 - ac_t) * (1 - ac_t / ac_s), 0.0))
        x = alpha_s * x0 + math.sqrt(max(sigma_s**2 - noise_level**2, 0.0)) * eps
        if noise_level > 0:
            x = x + noise_level * randn_like(x, generator)
        x = _finish(x, step, len(timesteps), x0, diffusion, s, known, callback, generator)
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    timesteps: list[int],
    eta: float = 0.0,
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DPM-Solver++ (2M), first order on the first step and on the last one(s); ``eta`` > 0
    injects fresh noise at each step (2M SDE), which forgets early errors as ancestral
    sampling does."""
    x, previous_x0, previous_h = start(noise, diffusion, timesteps[0], known, generator), None, None
    total = len(timesteps)
    for step, t in enumerate(timesteps):
        s = timesteps[step + 1] if step + 1 < total else FINAL
        _, x0 = _denoise(model_fn, diffusion, x, t, clip)
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
        x = _finish(x, step, total, x0, diffusion, s, known, callback, generator)
    return x


@torch.no_grad()
def sample_unipc(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    timesteps: list[int],
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """UniPC-bh2 of order 2 (UniP predictor + UniC corrector), lower order at the ends."""
    x, total = start(noise, diffusion, timesteps[0], known, generator), len(timesteps)
    history: list[tuple[int, torch.Tensor]] = []  # (t, x̂_0) of earlier evaluations
    x_prev, order = x, 1  # the point the last predictor step started from, and its order
    for step, t in enumerate(timesteps):
        _, x0 = _denoise(model_fn, diffusion, x, t, clip)
        if history:  # correct the point just reached with its own evaluation (UniC)
            x = _unipc_update(diffusion, x_prev, history, t, order, corrector=x0)
            if known is not None:
                x = known.replace(x, diffusion, t, generator)
        history = [*history[-1:], (t, x0)]
        x_prev = x
        s = timesteps[step + 1] if step + 1 < total else FINAL
        order = min(2, len(history), total - step)
        x = _unipc_update(diffusion, x, history, s, order)
        x = _finish(x, step, total, x0, diffusion, s, known, callback, generator)
    return x


def _unipc_update(
    diffusion: Diffusion,
    x: torch.Tensor,
    history: list[tuple[int, torch.Tensor]],
    s: int,
    order: int,
    corrector: torch.Tensor | None = None,
) -> torch.Tensor:
    """One UniP step from history[-1]'s time to s; with ``corrector`` (x̂_0 at s), the UniC step."""
    t0, m0 = history[-1]
    (_, sigma_0), (alpha_s, sigma_s) = alpha_sigma(diffusion, t0), alpha_sigma(diffusion, s)
    lambda_0 = log_snr(diffusion, t0)
    h = (math.inf if s == FINAL else log_snr(diffusion, s)) - lambda_0
    hh = -h
    h_phi_1 = math.expm1(hh)  # e^{−h} − 1
    b_h = h_phi_1  # "bh2"
    rks, d1s = [], []
    if order == 2:
        t1, m1 = history[-2]
        rk = (log_snr(diffusion, t1) - lambda_0) / h
        rks.append(rk)
        d1s.append((m1 - m0) / rk)
    base = (sigma_s / sigma_0) * x - alpha_s * h_phi_1 * m0
    if corrector is None:
        return base - alpha_s * b_h * 0.5 * d1s[0] if d1s else base
    # Corrector coefficients: solve R ρ = b over the points used (the new one at r = 1).
    rks.append(1.0)
    h_phi_k, factorial, b = h_phi_1 / hh - 1, 1, []
    for i in range(1, len(rks) + 1):
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    if len(rks) == 1:
        rhos = [0.5]
    else:
        matrix = torch.tensor(
            [[rk ** (i - 1) for rk in rks] for i in range(1, len(rks) + 1)], dtype=torch.float64
        )
        rhos = torch.linalg.solve(matrix, torch.tensor(b, dtype=torch.float64)).tolist()
    correction = sum(rho * d for rho, d in zip(rhos[:-1], d1s, strict=True)) if d1s else 0.0
    return base - alpha_s * b_h * (correction + rhos[-1] * (corrector - m0))
