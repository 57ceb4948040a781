"""UniPC-bh2 of order 2 (Zhao et al. 2023) in data prediction with x̂_0 clamped to [−1, 1].

A predictor of DPM-Solver++'s form (UniP) plus a corrector (UniC) that re-uses the model
evaluation at the new point, so it costs no extra network call. Notation as in
``tia2v.sampling.dpmpp``.
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
    start,
)


@torch.no_grad()
def sample_unipc(
    model_fn: ModelFn,
    noise: torch.Tensor,
    diffusion: Diffusion,
    timesteps: list[int],
    *,
    clip: bool = True,
    known: KnownFrames | None = None,
    callback: Callback | None = None,
    generator: Generators = None,
) -> torch.Tensor:
    """UniPC-bh2 of order 2 (UniP predictor + UniC corrector), lower order at the ends."""
    x, total = start(noise, diffusion, timesteps[0], known, generator), len(timesteps)
    end = StepEnd(diffusion, known, callback, generator, total)
    history: list[tuple[int, torch.Tensor]] = []  # (t, x̂_0) of earlier evaluations
    x_prev, order = x, 1  # the point the last predictor step started from, and its order
    for step, t in enumerate(timesteps):
        _, x0 = denoise(model_fn, diffusion, x, t, clip)
        if history:  # correct the point just reached with its own evaluation (UniC)
            x = _unipc_update(diffusion, x_prev, history, t, order, corrector=x0)
            if known is not None:
                x = known.replace(x, diffusion, t, generator)
        history = [*history[-1:], (t, x0)]
        x_prev = x
        s = timesteps[step + 1] if step + 1 < total else FINAL
        order = min(2, len(history), total - step)
        x = _unipc_update(diffusion, x, history, s, order)
        x = end(x, step, x0, s)
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
