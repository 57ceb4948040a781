import dataclasses

import pytest
import torch

from tests.helpers import D, conditions, randomize_zero_layers
from tia2v.conditions import Conditions
from tia2v.config import resolve_config
from tia2v.models.unet import (
    build_model,
    freeze_spatial,
    is_temporal,
    load_content_weights,
)

CFG = resolve_config("tiny").model


@pytest.mark.parametrize("stage", ["content", "motion"])
@pytest.mark.parametrize(("frames", "size"), [(2, 16), (3, 16), (4, 32)])
def test_output_shapes(stage, frames, size):
    model = build_model(CFG, size, stage)
    x = torch.randn(2, 3, frames, size, size)
    out = model(x, torch.tensor([1.0, 900.0]), conditions(2, frames))
    assert out.shape == (2, 6, frames, size, size)


def test_null_conditions_work_for_any_subset():
    model = build_model(CFG, 16, "motion")
    randomize_zero_layers(model)
    x, t = torch.randn(1, 3, 2, 16, 16), torch.tensor([50.0])
    full = model(x, t, conditions(1, 2))
    none = model(x, t, Conditions())
    text_only = model(x, t, Conditions(text=conditions(1, 2).text))
    assert none.shape == full.shape == text_only.shape
    assert not torch.allclose(full, none) and not torch.allclose(text_only, none)


def test_keep_false_equals_the_absent_modality():
    model = build_model(CFG, 16, "motion").eval()
    randomize_zero_layers(model)
    x, t, cond = torch.randn(2, 3, 2, 16, 16), torch.tensor([5.0, 5.0]), conditions(2, 2)
    dropped = model(x, t, cond, keep={"audio": torch.tensor([False, True])})
    absent = model(x, t, Conditions(cond.text, cond.text_mask, cond.image, None))
    present = model(x, t, cond)
    assert torch.allclose(dropped[0], absent[0], atol=1e-5)
    assert torch.allclose(dropped[1], present[1], atol=1e-5)


def test_motion_from_content_reproduces_content():
    content = build_model(CFG, 16, "content")
    randomize_zero_layers(content)  # a "trained" content model
    motion = build_model(CFG, 16, "motion")
    report = load_content_weights(motion, content.state_dict())
    assert report.unused == [] and all(is_temporal(name) for name in report.new)
    assert len(report.loaded) == len(content.state_dict())
    x, t, cond = torch.randn(2, 3, 4, 16, 16), torch.tensor([3.0, 700.0]), conditions(2, 4)
    content.eval(), motion.eval()
    with torch.no_grad():
        expected = content(x, t, cond)
        assert (motion(x, t, cond) - expected).abs().max() <= 1e-5


def test_freeze_spatial_leaves_only_temporal_trainable():
    motion = build_model(CFG, 16, "motion")
    trainable = freeze_spatial(motion)
    assert trainable and all(is_temporal(name) for name in trainable)
    for name, parameter in motion.named_parameters():
        assert parameter.requires_grad == is_temporal(name)
    x = torch.randn(1, 3, 2, 16, 16)
    motion(x, torch.tensor([10.0]), conditions(1, 2)).square().mean().backward()
    assert all(p.grad is None for n, p in motion.named_parameters() if not is_temporal(n))


def test_missing_spatial_key_is_an_error():
    content = build_model(CFG, 16, "content").state_dict()
    del content["input_blocks.0.res.in_layers.2.weight"]
    with pytest.raises(KeyError, match="input_blocks.0.res.in_layers.2.weight"):
        load_content_weights(build_model(CFG, 16, "motion"), content)


def test_frame_k_audio_changes_frame_k_first():
    motion = build_model(CFG, 16, "motion")
    randomize_zero_layers(motion)
    motion.eval()
    first_temporal = next(m for n, m in motion.named_modules() if n.endswith("temporal_attn"))
    seen = []
    first_temporal.register_forward_hook(lambda module, args, out: seen.append(out))
    x, t, cond = torch.randn(1, 3, 4, 16, 16), torch.tensor([100.0]), conditions(1, 4)
    changed = Conditions(cond.text, cond.text_mask, cond.image, cond.audio.clone())
    changed.audio[:, 2] += 1.0  # frame 2's audio only
    with torch.no_grad():
        motion(x, t, cond)
        motion(x, t, changed)
    difference = (seen[0] - seen[1]).abs().flatten(1).amax(dim=1)  # per folded frame (F=4)
    assert difference[2] > 1e-3
    assert torch.all(difference[[0, 1, 3]] == 0)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = build_model(CFG, 16, "motion")
    randomize_zero_layers(plain)
    ckpt = build_model(
        CFG.__class__(**{**CFG.__dict__, "gradient_checkpointing": True}), 16, "motion"
    )
    ckpt.load_state_dict(plain.state_dict())
    x, t, cond = torch.randn(1, 3, 2, 16, 16), torch.tensor([10.0]), conditions(1, 2)
    for model in (plain, ckpt):
        model.train()
        torch.manual_seed(1)  # same dropout masks
        model(x, t, cond).square().mean().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        if a.grad is None:  # e.g. the null embeddings of conditions that were given
            assert b.grad is None, name
        else:
            assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_paper_parameter_counts():
    """Content within ±10 % of the original's 16,317,766; motion vs its 33,105,478 (README)."""
    cfg = resolve_config("paper-urmp")
    content = sum(p.numel() for p in build_model(cfg.model, 64, "content").parameters())
    motion = sum(p.numel() for p in build_model(cfg.model, 64, "motion").parameters())
    print(f"paper-urmp parameters: content {content:,}, motion {motion:,}")
    assert abs(content - 16_317_766) / 16_317_766 < 0.10
    # One temporal transformer per site (shared self-attention and FF, separate audio and
    # text cross-attention) instead of the original's two full ones: 6 x 667,008 fewer.
    assert motion == 33_105_478 - 6 * 667_008 + (content - 16_317_766) + 768  # + null_audio


def test_first_frame_channels_are_part_of_the_image_condition():
    model = build_model(dataclasses.replace(CFG, first_frame_channels=True), 16, "motion").eval()
    randomize_zero_layers(model)
    x, t = torch.randn(2, 3, 2, 16, 16), torch.tensor([5.0, 5.0])
    cond = conditions(2, 2)
    frame = torch.rand(2, 3, 16, 16) * 2 - 1
    with_frame = Conditions(cond.text, cond.text_mask, cond.image, cond.audio, first_frame=frame)
    other = Conditions(cond.text, cond.text_mask, cond.image, cond.audio, first_frame=-frame)
    with torch.no_grad():
        a, b = model(x, t, with_frame), model(x, t, other)
        assert not torch.allclose(a, b)  # the frame's pixels reach the output
        dropped = model(x, t, with_frame, keep={"image": torch.tensor([False, True])})
        absent = model(x, t, Conditions(cond.text, cond.text_mask, None, cond.audio))
    assert torch.allclose(dropped[0], absent[0], atol=1e-5) and torch.allclose(
        dropped[1], a[1], atol=1e-5
    )


def test_pooled_text_starts_as_a_no_op_and_then_carries_the_prompt():
    plain = dataclasses.replace(CFG, attention_resolutions=())  # cross-attention: the middle only
    pooled = dataclasses.replace(plain, pooled_text=True)
    x, t = torch.randn(1, 3, 2, 16, 16), torch.tensor([500.0])
    text = conditions(1, 2, seed=1).text, conditions(1, 2, seed=2).text
    torch.manual_seed(0)
    without = build_model(plain, 16, "motion").eval()
    with_pooled = build_model(pooled, 16, "motion").eval()
    randomize_zero_layers(without)  # the zero output layers would hide every path
    report = load_content_weights(with_pooled, without.state_dict())
    assert report.new and all(name.startswith("text_embed.") for name in report.new)
    before = with_pooled(x, t, Conditions(text=text[0]))
    assert torch.equal(before, without(x, t, Conditions(text=text[0])))  # zero-initialised
    randomize_zero_layers(with_pooled.text_embed)
    # Only the pooled path differs between the two models: it alone carries the prompt's change.
    shift = with_pooled(x, t, Conditions(text=text[0])) - without(x, t, Conditions(text=text[0]))
    other = with_pooled(x, t, Conditions(text=text[1])) - without(x, t, Conditions(text=text[1]))
    assert shift.abs().max() > 1e-3 and not torch.allclose(shift, other)
    # Padding is not pooled: a masked-out token changes nothing.
    padded = torch.cat([text[0], torch.randn(1, 2, D)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 2])
    assert torch.allclose(
        with_pooled(x, t, Conditions(text=padded, text_mask=mask)),
        with_pooled(x, t, Conditions(text=text[0])),
        atol=1e-5,
    )


def test_frame_text_starts_as_a_no_op_and_pairs_the_prompt_with_each_frame():
    plain = dataclasses.replace(CFG, attention_resolutions=(), pooled_text=True)
    framed = dataclasses.replace(plain, frame_text=True)
    x, t = torch.randn(2, 3, 3, 16, 16), torch.tensor([500.0, 900.0])
    cond = conditions(2, 3, seed=1)
    torch.manual_seed(0)
    without = build_model(plain, 16, "motion").eval()
    with_frames = build_model(framed, 16, "motion").eval()
    randomize_zero_layers(without)
    report = load_content_weights(with_frames, without.state_dict())
    assert report.new and all(name.startswith("frame_text_embed.") for name in report.new)
    assert torch.equal(with_frames(x, t, cond), without(x, t, cond))  # zero-initialised
    randomize_zero_layers(with_frames.frame_text_embed)
    other = dataclasses.replace(cond, text=conditions(2, 3, seed=2).text)
    shift = with_frames(x, t, cond) - without(x, t, cond)
    assert shift.abs().max() > 1e-3
    assert not torch.allclose(shift, with_frames(x, t, other) - without(x, t, other))
    # Each frame's pair: the same pooled prompt, that frame's own position.
    pooled = torch.randn(2, D)
    pairs = with_frames.frame_text_embed.pairs(pooled, 3).unflatten(0, (2, 3))  # (B, F, D+mc)
    assert pairs.shape == (2, 3, D + CFG.model_channels)
    assert torch.equal(pairs[:, :, :D], pooled[:, None].expand(-1, 3, -1))
    assert torch.equal(pairs[0, :, D:], pairs[1, :, D:])
    assert not torch.allclose(pairs[:, 0, D:], pairs[:, 1, D:])


@pytest.mark.slow
def test_the_compiled_unet_computes_what_the_eager_one_does():
    """train.compile: torch.compile of the motion UNet (inductor; minutes on a CPU) gives the
    eager outputs and gradients."""
    cfg = resolve_config("tiny")
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.data.image_size, "motion")
    randomize_zero_layers(model)
    model.eval()  # no dropout: the two passes must see the same network
    frames, size = cfg.data.num_frames, cfg.data.image_size
    x, t = torch.randn(2, 3, frames, size, size), torch.tensor([10.0, 500.0])
    cond = conditions(2, frames)

    def run():
        model.zero_grad(set_to_none=True)
        out = model(x, t, cond)
        out.square().mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return out.detach(), grads

    eager, eager_grads = run()
    model.compile()
    compiled, compiled_grads = run()
    assert torch.allclose(compiled, eager, atol=1e-4)
    assert compiled_grads.keys() == eager_grads.keys() and len(eager_grads) > 100
    assert all(torch.allclose(compiled_grads[n], g, atol=1e-4) for n, g in eager_grads.items())
