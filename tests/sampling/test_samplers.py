"""Samplers on a Gaussian toy target with an analytic ε, against each other and diffusers."""

import pytest
import torch

from tia2v.diffusion.schedule import Diffusion, cosine_betas
from tia2v.sampling.common import (
    KnownFrames,
    leading_timesteps,
    linspace_timesteps,
    randn_like,
    respaced_timesteps,
)
from tia2v.sampling.ddim import sample_ddim
from tia2v.sampling.ddpm import sample_ddpm
from tia2v.sampling.dpmpp import sample_dpmpp_2m
from tia2v.sampling.unipc import sample_unipc

MEAN, STD, T = 0.3, 0.2, 1000
DIFFUSION = Diffusion(cosine_betas(T), learn_sigma=False)


def analytic_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """E[ε | x_t] for data x_0 ~ N(MEAN, STD²) in every dimension."""
    ac = DIFFUSION.gather(DIFFUSION.alphas_cumprod, t, x.dim()).double()
    alpha, sigma = ac.sqrt(), (1 - ac).sqrt()
    x0 = MEAN + alpha * STD**2 / (ac * STD**2 + sigma**2) * (x.double() - alpha * MEAN)
    return ((x.double() - alpha * x0) / sigma).float()


SAMPLERS = {
    "ddpm-full": lambda fn, x, **kw: sample_ddpm(fn, x, DIFFUSION, **kw),
    "ddpm-100": lambda fn, x, **kw: sample_ddpm(
        fn, x, DIFFUSION, respaced_timesteps(DIFFUSION, 100), **kw
    ),
    "ddim-50": lambda fn, x, **kw: sample_ddim(
        fn, x, DIFFUSION, leading_timesteps(DIFFUSION, 50), **kw
    ),
    # Stochastic samplers ignore Var[x_0 | x_t]: they need more steps than the ODE solvers.
    "ddim-200-eta1": lambda fn, x, **kw: sample_ddim(
        fn, x, DIFFUSION, leading_timesteps(DIFFUSION, 200), eta=1.0, **kw
    ),
    "dpm++-25": lambda fn, x, **kw: sample_dpmpp_2m(
        fn, x, DIFFUSION, linspace_timesteps(DIFFUSION, 25), **kw
    ),
    "dpm++-sde-25": lambda fn, x, **kw: sample_dpmpp_2m(
        fn, x, DIFFUSION, linspace_timesteps(DIFFUSION, 25), eta=1.0, **kw
    ),
    "unipc-25": lambda fn, x, **kw: sample_unipc(
        fn, x, DIFFUSION, linspace_timesteps(DIFFUSION, 25), **kw
    ),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_recovers_the_gaussian_target(name):
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(4000, 1, generator=generator)
    x = SAMPLERS[name](analytic_eps, noise, generator=generator)
    assert x.mean().item() == pytest.approx(MEAN, abs=0.02)
    assert x.std().item() == pytest.approx(STD, abs=0.02)


def test_deterministic_solvers_agree_with_each_other():
    """The same probability-flow ODE from the same start: DDIM with 1000 steps as reference;
    the second-order solvers converge to it much faster than first-order DDIM."""
    noise = torch.randn(500, 1, generator=torch.Generator().manual_seed(1))
    reference = sample_ddim(analytic_eps, noise, DIFFUSION, linspace_timesteps(DIFFUSION, 1000))

    def error(sampler, steps):
        x = sampler(analytic_eps, noise, DIFFUSION, linspace_timesteps(DIFFUSION, steps))
        return (x - reference).abs().max().item()

    for solver in (sample_dpmpp_2m, sample_unipc):
        assert error(solver, 25) < 0.5 * error(sample_ddim, 25)
        assert error(solver, 50) < 0.01
        assert error(solver, 100) < error(solver, 50) / 4  # second order


@pytest.mark.parametrize("name", SAMPLERS)
def test_first_frame_replacement_and_callback(name):
    generator = torch.Generator().manual_seed(2)
    video = torch.rand(2, 3, 4, 4, 4, generator=generator) * 2 - 1
    frames = torch.tensor([True, False, False, False])
    steps = []
    x = SAMPLERS[name](
        lambda x, t: torch.zeros_like(x),
        torch.randn(video.shape, generator=generator),
        known=KnownFrames(video, frames),
        callback=lambda step, total, x, x0: steps.append((step, total)),
        generator=generator,
    )
    assert torch.equal(x[:, :, 0], video[:, :, 0])
    assert not torch.equal(x[:, :, 1:], video[:, :, 1:])
    assert [s for s, _ in steps] == list(range(steps[0][1]))


def test_learned_variance_ddpm_uses_the_variance_channels():
    learned = Diffusion(cosine_betas(T), learn_sigma=True)
    noise = torch.randn(2000, 1, generator=torch.Generator().manual_seed(3))

    def output(v: float):
        return lambda x, t: torch.cat([analytic_eps(x, t), torch.full_like(x, v)], dim=1)

    small = sample_ddpm(
        output(-1.0),
        noise,
        learned,
        respaced_timesteps(learned, 50),
        generator=torch.Generator().manual_seed(4),
    )
    large = sample_ddpm(
        output(1.0),
        noise,
        learned,
        respaced_timesteps(learned, 50),
        generator=torch.Generator().manual_seed(4),
    )
    assert large.std() > small.std() + 0.01  # v = 1 → β_t, v = −1 → β̃_t (smaller)


def run_diffusers(scheduler, steps, model, noise, **step_kwargs):
    scheduler.set_timesteps(steps)
    x = noise.clone()
    for t in scheduler.timesteps:
        output = model(x, torch.full((x.shape[0],), int(t)))
        x = scheduler.step(output, t, x, **step_kwargs).prev_sample
    return x, [int(t) for t in scheduler.timesteps]


def smooth_model(x, t):
    return 0.5 * torch.tanh(x) + 0.01 * (t.float() / T).view(-1, *[1] * (x.dim() - 1))


@pytest.mark.parametrize("steps", [10, 25])
def test_parity_with_diffusers(steps):
    diffusers = pytest.importorskip("diffusers")
    common = {"num_train_timesteps": T, "beta_schedule": "squaredcos_cap_v2"}
    multistep = {
        **common,
        "solver_order": 2,
        "thresholding": True,
        "sample_max_value": 1.0,
        "final_sigmas_type": "zero",
    }
    noise = torch.randn(2, 3, 2, 8, 8, generator=torch.Generator().manual_seed(5))
    ddim = diffusers.DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    ref, ts = run_diffusers(ddim, steps, smooth_model, noise)
    assert ts == leading_timesteps(DIFFUSION, steps)
    ours = sample_ddim(smooth_model, noise, DIFFUSION, ts, clip=False)
    assert (ref - ours).abs().max() < 1e-4
    dpm = diffusers.DPMSolverMultistepScheduler(
        **multistep, algorithm_type="dpmsolver++", lambda_min_clipped=-5.1
    )
    ref, ts = run_diffusers(dpm, steps, smooth_model, noise)
    assert ts == linspace_timesteps(DIFFUSION, steps)
    assert (ref - sample_dpmpp_2m(smooth_model, noise, DIFFUSION, ts)).abs().max() < 1e-5
    sde = diffusers.DPMSolverMultistepScheduler(
        **multistep, algorithm_type="sde-dpmsolver++", lambda_min_clipped=-5.1
    )
    ref, _ = run_diffusers(
        sde, steps, smooth_model, noise, generator=torch.Generator().manual_seed(6)
    )
    ours = sample_dpmpp_2m(
        smooth_model, noise, DIFFUSION, ts, eta=1.0, generator=torch.Generator().manual_seed(6)
    )
    assert (ref - ours).abs().max() < 1e-4
    ode = sample_dpmpp_2m(smooth_model, noise, DIFFUSION, ts)
    assert (ours - ode).abs().max() > 1e-2  # the noise does change the sample
    unipc = diffusers.UniPCMultistepScheduler(**multistep, predict_x0=True, solver_type="bh2")
    ref, ts = run_diffusers(unipc, steps, smooth_model, noise)
    assert ts == linspace_timesteps(DIFFUSION, steps, lambda_min=None)
    assert (ref - sample_unipc(smooth_model, noise, DIFFUSION, ts)).abs().max() < 1e-5


@pytest.mark.parametrize("name", SAMPLERS)
def test_clean_first_frame_is_seen_at_every_step(name):
    generator = torch.Generator().manual_seed(2)
    video = torch.rand(1, 3, 3, 4, 4, generator=generator) * 2 - 1
    inputs = []

    def model(x, t):
        inputs.append(x[:, :, 0].clone())
        return torch.zeros_like(x)

    x = SAMPLERS[name](
        model,
        torch.randn(video.shape, generator=generator),
        known=KnownFrames(video, torch.tensor([True, False, False]), clean=True),
        generator=generator,
    )
    assert all(torch.equal(frame, video[:, :, 0]) for frame in inputs)
    assert torch.equal(x[:, :, 0], video[:, :, 0])


def test_noise_comes_from_the_generator_in_the_tensors_dtype():
    x = torch.zeros(2, 3, 4, dtype=torch.float64)
    noise = randn_like(x, torch.Generator().manual_seed(7))
    expected = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert noise.dtype == torch.float64 and noise.device == x.device
    assert torch.equal(noise, expected)


def test_ancestral_steps_draw_their_noise_from_the_generator():
    diffusion = Diffusion(cosine_betas(50))
    noise = torch.randn(1, 2, 3, 4, 4, generator=torch.Generator().manual_seed(0))

    def model_fn(x, t):
        return torch.zeros_like(x)

    runs = [
        sample_ddpm(
            model_fn,
            noise,
            diffusion,
            respaced_timesteps(diffusion, 5),
            generator=torch.Generator().manual_seed(s),
        )
        for s in (1, 1, 2)
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
