import json
import shutil

import numpy as np
import pytest
import torch

from tests.helpers import tiny_cfg
from tia2v import TIA2VPipeline
from tia2v.conditions import Conditions
from tia2v.errors import InputError
from tia2v.manifest import manifest_problem
from tia2v.models.layout import lowres_view, upsample_video
from tia2v.models.network import TIA2VNetwork
from tia2v.training.loop import train


@pytest.fixture(scope="module")
def refined_model(motion_model, tiny_toy, tmp_path_factory):
    runs = tmp_path_factory.mktemp("refiner")
    folder = runs / "combined"
    shutil.copytree(motion_model, folder)
    cfg = tiny_cfg(tiny_toy, runs / "r", "train.max_steps=2", f"train.attach_to={folder}")
    train(cfg, "refiner", progress=False)
    exported = runs / "r" / "model"
    for name in ("refiner.safetensors", "refiner_encoders.safetensors"):
        assert (folder / name).read_bytes() == (exported / name).read_bytes()
    assert manifest_problem(folder) is None
    assert "refiner.safetensors" in json.loads((folder / "manifest.json").read_text())["files"]
    assert (folder / "motion.safetensors").read_bytes() == (
        motion_model / "motion.safetensors"
    ).read_bytes()
    return folder


def test_a_refiner_that_cannot_serve_the_model_is_refused_before_training(
    motion_model, tiny_toy, tmp_path
):
    cfg = tiny_cfg(
        tiny_toy,
        tmp_path / "r",
        "diffusion.num_timesteps=50",
        f"train.attach_to={motion_model}",
    )
    with pytest.raises(InputError, match=r"train.attach_to .*diffusion differs"):
        train(cfg, "refiner", progress=False)
    assert not (tmp_path / "r").exists()
    content = tiny_cfg(tiny_toy, tmp_path / "c", f"train.attach_to={motion_model}")
    with pytest.raises(InputError, match="only a refiner"):
        train(content, "content", progress=False)


def test_refiner_is_text_only_with_temporal_layers(tiny_toy):
    network = TIA2VNetwork(tiny_cfg(tiny_toy, "unused"), "refiner")
    names = [n for n, _ in network.named_parameters()]
    assert any("temporal_attn" in n for n in names) and any("temporal_conv" in n for n in names)
    assert not any("audio" in n for n in names) and not hasattr(network.conditioner, "image")


def test_refiner_sees_the_low_resolution_video(tiny_toy):
    cfg = tiny_cfg(tiny_toy, "unused")
    assert cfg.refiner.lowres_channels
    network = TIA2VNetwork(cfg, "refiner").eval()
    torch.nn.init.normal_(network.unet.out[-1].weight, std=0.1)  # zero-initialised
    x = torch.randn(1, 3, 4, 32, 32)
    text = network.conditioner.encode_text(["a red circle"])
    cond = Conditions(text=text.tokens, text_mask=text.mask, lowres=torch.zeros_like(x))
    t = torch.full((1,), 500.0)
    with torch.no_grad():
        blank = network(x, t, cond)
        cond.lowres = torch.ones_like(x)
        assert not torch.allclose(blank, network(x, t, cond))
        cond.lowres = None
        with pytest.raises(ValueError, match="needs cond.lowres"):
            network(x, t, cond)


def test_lowres_view_blurs_like_an_upsampled_video():
    video = torch.full((1, 3, 2, 8, 8), 0.25)
    assert torch.equal(lowres_view(video, 2), video)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 2.0 - 1  # ±1 pixels
    flat = lowres_view(checker.expand(1, 3, 2, 8, 8), 2)
    assert flat.shape == (1, 3, 2, 8, 8) and flat.abs().max() == 0  # 2×2 means are 0
    assert upsample_video(video, 2).shape == (1, 3, 2, 16, 16)


def test_refine_doubles_the_resolution(refined_model):
    pipe = TIA2VPipeline.from_pretrained(refined_model)
    out = pipe(
        text="a red circle",
        image=np.zeros((16, 16, 3), np.uint8),
        num_inference_steps=2,
        refine=True,
    )
    assert out.frames.shape == (4, 32, 32, 3)
    assert out.settings["refine"] and out.settings["strength"] == pytest.approx(0.375)
    again = TIA2VPipeline.from_pretrained(refined_model)
    kwargs = {"text": "a red circle", "num_inference_steps": 2, "refine": True, "seed": 3}
    assert np.array_equal(pipe(**kwargs).frames, again(**kwargs).frames)


def test_strength_zero_returns_the_input(refined_model):
    pipe = TIA2VPipeline.from_pretrained(refined_model)
    frames = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    out = pipe.refine(frames, "a circle", strength=0.0)
    up = torch.nn.functional.interpolate(
        torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1,
        scale_factor=2,
        mode="bilinear",
    )
    expected = ((up.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.array_equal(out, expected)
    assert not np.array_equal(pipe.refine(frames, "a circle", strength=0.5), expected)


def test_bad_strengths_and_missing_refiner(refined_model, motion_model):
    pipe = TIA2VPipeline.from_pretrained(refined_model)
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    for strength in (-0.1, 1.5):
        with pytest.raises(InputError, match="strength must be in"):
            pipe.refine(frames, "x", strength=strength)
    with pytest.raises(InputError, match="no refiner"):
        TIA2VPipeline.from_pretrained(motion_model)(text="x", refine=True)


def test_sample_with_refine_writes_pairs_at_the_refined_size(refined_model, tiny_toy, tmp_path):
    from tia2v.io import read_video
    from tia2v.pipeline.dataset import sample_dataset

    assert (
        sample_dataset(
            refined_model,
            tiny_toy,
            tmp_path,
            num=1,
            num_inference_steps=2,
            refine=True,
            progress=False,
        )
        == 1
    )
    real, fake = (read_video(tmp_path / kind / "test_00000.mp4") for kind in ("real", "fake"))
    assert real.frames.shape == fake.frames.shape == (4, 32, 32, 3)
    assert fake.audio is not None
