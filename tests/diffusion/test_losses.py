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
