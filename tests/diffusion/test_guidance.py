import torch

from tests.helpers import conditions, randomize_zero_layers
from tia2v.conditions import Conditions
from tia2v.config import resolve_config
from tia2v.diffusion.guidance import guided_model_fn
from tia2v.models.unet import build_model

CFG = resolve_config("tiny").model


class Counting(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.calls, self.batches = model, 0, []

    def forward(self, *args, **kwargs):
        self.calls += 1
        self.batches.append(args[0].shape[0])
        return self.model(*args, **kwargs)


def setup():
    model = build_model(CFG, 16, "motion").eval()
    randomize_zero_layers(model)
    x = torch.randn(2, 3, 2, 16, 16, generator=torch.Generator().manual_seed(3))
    return model, x, torch.tensor([40, 40]), conditions(2, 2)


def identity(t):
    return t.float()


@torch.no_grad()
def test_all_scales_one_is_the_conditional_output():
    model, x, t, cond = setup()
    counting = Counting(model)
    fn = guided_model_fn(counting, cond, {"text": 1.0, "image": 1.0, "audio": 1.0}, identity, True)
    assert torch.allclose(fn(x, t), model(x, t.float(), cond), atol=1e-5)
    assert counting.calls == 1  # every branch in one batched pass


@torch.no_grad()
def test_below_min_t_one_unguided_branch():
    model, x, t, cond = setup()
    counting = Counting(model)
    scales = {"text": 3.0, "image": 1.5, "audio": 4.0}
    fn = guided_model_fn(counting, cond, scales, identity, True, min_t=41)
    low = fn(x, t)  # t = 40 < 41: the fully conditional branch, batch 2 not 8
    assert torch.allclose(low, model(x, t.float(), cond), atol=1e-5)
    high = fn(x, t + 1)  # t = 41: guided
    guided = guided_model_fn(model, cond, scales, identity, True)(x, t + 1)
    assert torch.allclose(high, guided, atol=1e-5)
    assert not torch.allclose(high, model(x, (t + 1).float(), cond), atol=1e-3)
    assert counting.batches == [2, 8]  # one branch, then ∅ + three modalities


@torch.no_grad()
def test_nested_formula():
    model, x, t, cond = setup()
    scales = {"text": 3.0, "image": 1.5, "audio": 4.0}
    guided = guided_model_fn(model, cond, scales, identity, True)(x, t)
    none = Conditions()
    text = Conditions(cond.text, cond.text_mask)
    text_image = Conditions(cond.text, cond.text_mask, cond.image)
    eps = [model(x, t.float(), c)[:, :3] for c in (none, text, text_image, cond)]
    expected = eps[0] + 3.0 * (eps[1] - eps[0]) + 1.5 * (eps[2] - eps[1]) + 4.0 * (eps[3] - eps[2])
    assert torch.allclose(guided[:, :3], expected, atol=1e-4)
    assert torch.allclose(guided[:, 3:], model(x, t.float(), cond)[:, 3:], atol=1e-5)


@torch.no_grad()
def test_scale_zero_ignores_the_modality():
    model, x, t, cond = setup()
    for name in ("text", "image", "audio"):
        scales = {"text": 2.0, "image": 1.5, "audio": 3.0, name: 0.0}
        with_it = guided_model_fn(model, cond, scales, identity, True)(x, t)
        fields = {
            "text": cond.text,
            "text_mask": cond.text_mask,
            "image": cond.image,
            "audio": cond.audio,
        }
        fields[name] = None
        if name == "text":
            fields["text_mask"] = None
        without = guided_model_fn(model, Conditions(**fields), scales, identity, True)(x, t)
        assert torch.allclose(with_it, without, atol=1e-5), name
        different = {"text": 2.0, "image": 1.5, "audio": 3.0}
        assert not torch.allclose(
            with_it, guided_model_fn(model, cond, different, identity, True)(x, t)
        )


@torch.no_grad()
def test_branches_without_the_image_get_their_own_input():
    model, x, t, cond = setup()
    seen = []

    def spy(x_in, *args):
        seen.append(x_in)
        return model(x_in, *args)

    unlocked = torch.full_like(x, 7.0)
    fn = guided_model_fn(
        spy, cond, {"text": 2.0, "image": 2.0, "audio": 2.0}, identity, True, lambda x, t: unlocked
    )
    fn(x, t)
    copies = seen[0].chunk(4)
    assert torch.equal(copies[0], unlocked) and torch.equal(copies[1], unlocked)  # ∅, text
    assert torch.equal(copies[2], x) and torch.equal(copies[3], x)  # text+image, all
