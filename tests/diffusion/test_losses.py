import dataclasses

import pytest
import torch

from tia2v.config import DiffusionConfig
from tia2v.diffusion.losses import sample_timesteps, training_losses
from tia2v.diffusion.schedule import Diffusion, cosine_betas

CFG = DiffusionConfig(num_timesteps=1000)


def setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(4, 3, 2, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    t = torch.tensor([0, 5, 300, 999])
    return Diffusion(cosine_betas(1000)), x0, noise, t


def test_hybrid_loss_is_finite_with_the_right_terms():
    d, x0, noise, t = setup()
    out = training_losses(
        d, CFG, lambda x, s: torch.zeros(x.shape[0], 6, *x.shape[2:]), x0, t, noise
    )
    assert set(out) == {"loss", "mse", "vb"}
    for value in out.values():
        assert value.shape == (4,) and torch.isfinite(value).all()
    assert torch.allclose(out["loss"], out["mse"] + 1.0 * out["vb"])  # λ = T/1000 = 1


def test_vlb_drops_when_the_model_predicts_the_true_noise():
    d, x0, noise, t = setup()
    var = torch.zeros_like(noise)

    def truth(x, s):
        return torch.cat([noise, var], 1)

    def wrong(x, s):
        return torch.cat([torch.randn_like(noise), var], 1)

    good = training_losses(d, CFG, truth, x0, t, noise)
    bad = training_losses(d, CFG, wrong, x0, t, noise)
    assert torch.all(good["mse"] < 1e-10)
    assert good["vb"][1:].sum() < bad["vb"][1:].sum() / 10  # KL terms, t > 0
    assert good["vb"][0] < bad["vb"][0]  # decoder NLL at t = 0


def test_vlb_trains_only_the_variance():
    d, x0, noise, t = setup()
    output = torch.zeros(4, 6, 2, 8, 8, requires_grad=True)
    training_losses(d, dataclasses.replace(CFG, vlb_weight=1.0), lambda x, s: output, x0, t, noise)[
        "vb"
    ].sum().backward()
    assert torch.all(output.grad[:, :3] == 0) and output.grad[:, 3:].abs().sum() > 0


def test_vlb_weight_default_is_t_over_1000():
    d4000 = Diffusion(cosine_betas(4000))
    _, x0, noise, _ = setup()
    t = torch.tensor([100, 200, 300, 400])
    out = training_losses(
        d4000, DiffusionConfig(), lambda x, s: torch.zeros(4, 6, 2, 8, 8), x0, t, noise
    )
    assert torch.allclose(out["loss"], out["mse"] + 4.0 * out["vb"])


def test_min_snr_weighting_caps_low_noise_steps():
    d, x0, noise, t = setup()
    cfg = dataclasses.replace(CFG, loss_weighting="min_snr", vlb_weight=0.0)
    zero = lambda x, s: torch.zeros(4, 6, 2, 8, 8)  # noqa: E731
    weighted = training_losses(d, cfg, zero, x0, t, noise)
    plain = training_losses(d, dataclasses.replace(CFG, vlb_weight=0.0), zero, x0, t, noise)
    ratio = weighted["loss"] / plain["loss"]
    snr = d.snr(t)
    assert torch.allclose(ratio, snr.clamp(max=5.0) / snr, rtol=1e-5)
    assert ratio[0] < 0.01 and ratio[-1] == pytest.approx(1.0)


def test_v_prediction_target():
    d = Diffusion(cosine_betas(1000), prediction="v", learn_sigma=False)
    _, x0, noise, t = setup()
    ac = d.gather(d.alphas_cumprod, t, 5)
    v = ac.sqrt() * noise - (1 - ac).sqrt() * x0
    out = training_losses(d, dataclasses.replace(CFG, prediction="v"), lambda x, s: v, x0, t, noise)
    assert torch.all(out["mse"] < 1e-10) and torch.all(out["vb"] == 0)


def test_known_frames_are_given_clean_and_left_out_of_the_loss():
    d, x0, noise, t = setup()
    known = torch.zeros(4, 2, dtype=torch.bool)
    known[:2, 0] = True
    seen = {}

    def model(x, s):
        seen["x"] = x
        out = torch.zeros(4, 6, 2, 8, 8)
        out[:, :3, 0] = 100.0  # wildly wrong on frame 0 only
        return out

    out = training_losses(d, CFG, model, x0, t, noise, known)
    assert torch.equal(seen["x"][:2, :, 0], x0[:2, :, 0])  # clean where known
    assert not torch.equal(seen["x"][2:, :, 0], x0[2:, :, 0])
    assert torch.all(out["mse"][:2] < 2) and torch.all(out["mse"][2:] > 1000)


def test_timestep_shift_draws_high_noise_more_often_and_stays_in_range():
    def draw(shift, highest=1000):
        return sample_timesteps(200_000, highest, shift, torch.Generator().manual_seed(0))

    uniform, shifted = draw(1.0), draw(4.0)
    assert torch.equal(
        uniform, torch.randint(0, 1000, (200_000,), generator=torch.Generator().manual_seed(0))
    )
    # P(t >= 950) is 5 % uniform; with shift 4 it is P(u > 0.95 / (4 - 3 * 0.95)) = 17.4 %.
    assert (uniform >= 950).float().mean().item() == pytest.approx(0.05, abs=0.003)
    assert (shifted >= 950).float().mean().item() == pytest.approx(1 - 0.95 / 1.15, abs=0.003)
    assert shifted.min() >= 0 and shifted.max() == 999 and shifted.dtype == torch.long
    assert draw(0.5).float().mean() < uniform.float().mean()  # shift < 1: toward low noise
    assert draw(4.0, highest=100).max() == 99  # respects train.max_noise's bound


def _hand_vlb(d: Diffusion, output, x0, noise, t, clip: bool):
    """The hybrid loss's VLB term written out in float64: posterior of q and of the model from
    x̂₀ (clamped with ``clip``), KL in bits for t > 0, discretised-Gaussian NLL at t = 0."""
    x0, noise, output = x0.double(), noise.double(), output.double()
    ac = torch.from_numpy(d.alphas_cumprod)[t].view(-1, 1, 1, 1, 1)
    ac_prev = torch.from_numpy(d.alphas_cumprod_prev)[t].view(-1, 1, 1, 1, 1)
    beta = torch.from_numpy(d.betas)[t].view(-1, 1, 1, 1, 1)
    xt = ac.sqrt() * x0 + (1 - ac).sqrt() * noise
    eps_hat, var_values = output.chunk(2, dim=1)
    x0_hat = (xt - (1 - ac).sqrt() * eps_hat) / ac.sqrt()
    if clip:
        x0_hat = x0_hat.clamp(-1, 1)

    def posterior_mean(start):
        return (beta * ac_prev.sqrt() * start + (1 - ac_prev) * (1 - beta).sqrt() * xt) / (1 - ac)

    variance = beta * (1 - ac_prev) / (1 - ac)
    floor = torch.from_numpy(d.posterior_variance)[1]
    log_floor = torch.where(
        t.view(-1, 1, 1, 1, 1) == 0, floor.log(), variance.clamp(min=1e-40).log()
    )
    frac = (var_values + 1) / 2
    model_log_var = frac * beta.log() + (1 - frac) * log_floor
    true_mean, model_mean = posterior_mean(x0), posterior_mean(x0_hat)
    kl = 0.5 * (
        -1.0
        + model_log_var
        - log_floor
        + (log_floor - model_log_var).exp()
        + (true_mean - model_mean) ** 2 * (-model_log_var).exp()
    )
    kl = kl.mean(dim=(1, 2, 3, 4)) / torch.log(torch.tensor(2.0, dtype=torch.float64))
    std = (0.5 * model_log_var).exp()

    def cdf(v):
        return 0.5 * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (v + 0.044715 * v**3)))

    upper = torch.where(x0 > 0.999, torch.ones_like(x0), cdf((x0 - model_mean + 1 / 255) / std))
    lower = torch.where(x0 < -0.999, torch.zeros_like(x0), cdf((x0 - model_mean - 1 / 255) / std))
    nll = -(upper - lower).clamp(min=1e-12).log().mean(dim=(1, 2, 3, 4))
    nll = nll / torch.log(torch.tensor(2.0, dtype=torch.float64))
    return torch.where(t == 0, nll, kl)


@pytest.mark.parametrize("clip", [False, True], ids=["unclipped", "clipped-as-the-original"])
def test_vlb_equals_a_hand_computation_with_the_chosen_posterior(clip):
    d, x0, noise, _ = setup(3)
    t = torch.tensor([0, 2, 700, 999])
    g = torch.Generator().manual_seed(5)
    eps = torch.randn(x0.shape, generator=g) * 3  # far off: x̂₀ leaves [-1, 1]
    var_values = torch.rand(x0.shape, generator=g) * 2 - 1
    # At t = 0 the decoder likelihood of 1/255-wide bins is only well conditioned in float32
    # for a prediction close to the truth and the widest variance.
    eps[0] = noise[0] + 0.1 * torch.randn(noise[0].shape, generator=g)
    var_values[0] = 1.0
    output = torch.cat([eps, var_values], 1)
    cfg = dataclasses.replace(CFG, vlb_clip_x0=clip)
    ours = training_losses(d, cfg, lambda x, s: output, x0, t, noise)["vb"]
    torch.testing.assert_close(
        ours.double(), _hand_vlb(d, output, x0, noise, t, clip), rtol=1e-4, atol=1e-4
    )


def test_the_paper_presets_clip_the_vlb_posterior_and_the_clip_matters():
    from tia2v.config import resolve_config

    assert resolve_config("paper-urmp").diffusion.vlb_clip_x0
    assert not resolve_config("demo").diffusion.vlb_clip_x0
    d, x0, noise, _ = setup(3)
    t = torch.tensor([990, 995, 998, 999])  # near T a poor prediction leaves the data range
    output = torch.cat([torch.full_like(x0, 4.0), torch.zeros_like(x0)], 1)
    clipped = training_losses(
        d, dataclasses.replace(CFG, vlb_clip_x0=True), lambda x, s: output, x0, t, noise
    )
    raw = training_losses(d, CFG, lambda x, s: output, x0, t, noise)
    assert (raw["vb"] - clipped["vb"]).abs().max() > 1.0


def test_schedule_terms_match_float64_near_t_zero():
    d = Diffusion(cosine_betas(4000))
    x0, noise = torch.ones(2, 1), torch.ones(2, 1)
    t = torch.tensor([0, 1])
    ac = torch.from_numpy(d.alphas_cumprod)[t].view(-1, 1)
    exact = ac.sqrt() + (1 - ac).sqrt()
    assert (d.q_sample(x0, t, noise).double() - exact).abs().max() < 1e-6
