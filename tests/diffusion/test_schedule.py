import numpy as np
import pytest
import torch

from tia2v.config import DiffusionConfig
from tia2v.diffusion.schedule import Diffusion, cosine_betas, linear_betas


def test_cosine_matches_diffusers_squaredcos_cap_v2():
    diffusers = pytest.importorskip("diffusers")
    ours = Diffusion(cosine_betas(4000))
    theirs = diffusers.DDPMScheduler(num_train_timesteps=4000, beta_schedule="squaredcos_cap_v2")
    assert np.abs(ours.alphas_cumprod - theirs.alphas_cumprod.double().numpy()).max() <= 1e-6


def test_cosine_values_from_the_method_notes():
    ac = Diffusion(cosine_betas(4000)).alphas_cumprod
    assert ac[1499] == pytest.approx(0.684, abs=1e-3)
    assert ac[3899] == pytest.approx(1.52e-3, rel=1e-2)
    assert ac[3999] == pytest.approx(1.5e-10, rel=5e-2)


def test_linear_schedule_scales_with_t():
    assert linear_betas(1000)[[0, -1]] == pytest.approx([1e-4, 0.02])
    assert linear_betas(4000)[[0, -1]] == pytest.approx([2.5e-5, 0.005])


def test_from_config():
    d = Diffusion.from_config(DiffusionConfig(schedule="linear", num_timesteps=50, prediction="v"))
    assert d.num_timesteps == 50 and d.prediction == "v"
    with pytest.raises(ValueError, match="schedule"):
        Diffusion.from_config(DiffusionConfig(schedule="sigmoid"))


def test_q_sample_statistics():
    d = Diffusion(cosine_betas(1000))
    x0 = torch.full((20000, 1), 0.5)
    t = torch.full((20000,), 400)
    xt = d.q_sample(x0, t, torch.randn_like(x0))
    ac = d.alphas_cumprod[400]
    assert xt.mean().item() == pytest.approx(0.5 * ac**0.5, abs=0.02)
    assert xt.std().item() == pytest.approx((1 - ac) ** 0.5, abs=0.02)


def test_posterior_is_the_exact_conditional():
    """μ̃ and β̃ from the closed form equal the Gaussian conditioning of q(x_{t-1}, x_t | x_0)."""
    d = Diffusion(cosine_betas(100))
    t = 37
    ac, ac_prev, beta = d.alphas_cumprod[t], d.alphas_cumprod_prev[t], d.betas[t]
    x0, xt = torch.tensor([[0.3]]), torch.tensor([[-0.2]])
    mean, log_var = d.q_posterior(x0, xt, torch.tensor([t]))
    # x_t = √(1-β) x_{t-1} + √β ε: condition the prior N(√ᾱ_{t-1} x0, 1-ᾱ_{t-1}) on x_t.
    prior_var = 1 - ac_prev
    gain = prior_var * (1 - beta) ** 0.5 / (1 - ac)
    expected_mean = ac_prev**0.5 * 0.3 + gain * (-0.2 - (ac) ** 0.5 * 0.3)
    expected_var = prior_var - gain * (1 - beta) ** 0.5 * prior_var
    assert mean.item() == pytest.approx(expected_mean, rel=1e-5)
    assert log_var.exp().item() == pytest.approx(expected_var, rel=1e-4)


def test_respacing_keeps_alphas_cumprod():
    d = Diffusion(cosine_betas(1000))
    keep = [999, 600, 300, 10, 0]
    spaced = d.respaced(keep)
    assert spaced.num_timesteps == 5
    assert np.allclose(spaced.alphas_cumprod, d.alphas_cumprod[sorted(keep)])
    assert spaced.model_timesteps(torch.tensor([4, 0])).tolist() == [999.0, 0.0]


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_eps_and_x0_invert_the_forward_process(prediction):
    d = Diffusion(cosine_betas(1000), prediction=prediction, learn_sigma=False)
    x0, noise = torch.rand(4, 3, 2, 2) * 1.8 - 0.9, torch.randn(4, 3, 2, 2)
    t = torch.tensor([0, 10, 500, 990])
    xt = d.q_sample(x0, t, noise)
    ac = d.gather(d.alphas_cumprod, t, 4)
    target = noise if prediction == "eps" else ac.sqrt() * noise - (1 - ac).sqrt() * x0
    eps, x0_hat = d.eps_and_x0(target, xt, t, clip=False)
    assert torch.allclose(x0_hat, x0, atol=1e-3) and torch.allclose(eps, noise, atol=1e-3)
