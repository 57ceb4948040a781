"""The lcm sampler: multistep consistency sampling on an analytic consistency function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tia2v.diffusion.schedule import Diffusion, cosine_betas
from tia2v.sampling.common import KnownFrames
from tia2v.sampling.lcm import consistency_output, consistency_scalings, lcm_timesteps, sample_lcm

MEAN, STD = 0.2, 0.1  # data: N(MEAN, STD² I), so the probability-flow ODE is solvable


def exact_consistency(diffusion: Diffusion, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The ODE's endpoint from (x_t, t) for Gaussian data: μ + s·(x_t − α μ)/√(α² s² + σ²)."""
    alpha, sigma = diffusion.alpha_sigma(t, x.dim())
    return MEAN + STD * (x - alpha * MEAN) / (alpha**2 * STD**2 + sigma**2).sqrt()


def exact_student(diffusion: Diffusion):
    """A v-prediction network output whose consistency function is the exact one."""

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        target = exact_consistency(diffusion, x, t)
        c_skip, c_out = (
            c.view(-1, 1, 1, 1, 1) for c in consistency_scalings(diffusion.model_timesteps(t))
        )
        x0 = (target - c_skip * x) / c_out  # what the network's x̂_0 must be
        alpha, sigma = diffusion.alpha_sigma(t, x.dim())
        return (alpha * x - x0) / sigma  # v with α·x − σ·v = x̂_0

    return model_fn


@pytest.fixture
def diffusion():
    return Diffusion(cosine_betas(1000), prediction="v", learn_sigma=False)


def test_one_step_returns_the_exact_answer(diffusion):
    noise = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = lcm_timesteps(diffusion, 1)
    assert t == [999]
    out = sample_lcm(exact_student(diffusion), noise, diffusion, t, eta=1.0)
    expected = exact_consistency(diffusion, noise, torch.full((2,), 999))
    assert (out - expected).abs().max() < 1e-5


def test_lcm_steps_stay_on_the_data_distribution(diffusion):
    """γ = 1: each step re-noises the exact answer with fresh noise, so every x_s has the
    forward process's marginal and the last answer the data's."""
    noise = torch.randn(64, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    out = sample_lcm(
        exact_student(diffusion),
        noise,
        diffusion,
        lcm_timesteps(diffusion, 4),
        eta=1.0,
        generator=torch.Generator().manual_seed(2),
    )
    assert abs(float(out.mean()) - MEAN) < 0.01
    assert abs(float(out.std()) - STD) < 0.01


def test_gamma_0_draws_no_noise_and_gamma_above_0_does(diffusion):
    noise = torch.randn(1, 3, 2, 8, 8)
    student, steps = exact_student(diffusion), lcm_timesteps(diffusion, 3)

    def run(eta, seed):
        generator = torch.Generator().manual_seed(seed)
        return sample_lcm(student, noise, diffusion, steps, eta=eta, generator=generator)

    assert torch.equal(run(0.0, 1), run(0.0, 2))
    assert not torch.equal(run(0.5, 1), run(0.5, 2))


def test_the_boundary_is_the_identity(diffusion):
    c_skip, c_out = consistency_scalings(torch.tensor([0.0, 1.0, 500.0]))
    assert c_skip[0] == 1 and c_out[0] == 0
    assert c_skip[2] < 1e-6 and abs(float(c_out[2]) - 1) < 1e-6
    x = torch.randn(1, 3, 2, 4, 4)
    output = torch.randn_like(x)
    assert (
        torch.equal(
            consistency_output(output, diffusion, x, torch.zeros(1, dtype=torch.long))[0], x[0]
        )
        or (consistency_output(output, diffusion, x, torch.zeros(1, dtype=torch.long)) - x)
        .abs()
        .max()
        < 1e-6
    )


def test_timesteps_and_known_frames(diffusion):
    assert lcm_timesteps(diffusion, 4) == [999, 749, 499, 249]
    assert lcm_timesteps(diffusion, 2) == [999, 499]
    noise = torch.randn(1, 3, 4, 8, 8)
    first = torch.full((1, 3, 4, 8, 8), 0.7)
    known = KnownFrames(first, torch.tensor([True, False, False, False]), clean=True)
    out = sample_lcm(exact_student(diffusion), noise, diffusion, [999, 499], known=known)
    assert torch.equal(out[:, :, 0], first[:, :, 0])


def test_gamma_outside_0_1_is_refused(diffusion):
    with pytest.raises(ValueError, match="gamma"):
        sample_lcm(exact_student(diffusion), torch.zeros(1, 3, 1, 4, 4), diffusion, [999], eta=1.5)


def test_spacing_covers_the_schedule_for_other_lengths():
    short = Diffusion(cosine_betas(100), prediction="eps", learn_sigma=True)
    steps = lcm_timesteps(short, 3)
    assert steps[0] == 99 and np.all(np.diff(steps) < 0) and steps[-1] >= 0
