"""``tia2v train distill``: the few-step student, its training run and its sampling."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import conditions, randomize_zero_layers, tiny_cfg
from tia2v.config import apply_overrides, load_config
from tia2v.diffusion.guidance import guidance_vector, student_model_fn
from tia2v.errors import InputError
from tia2v.model_folder import STUDENT_FILE
from tia2v.pipeline import TIA2VPipeline
from tia2v.training.checkpoint import find_checkpoint, load_checkpoint
from tia2v.training.distill import teacher_and_student
from tia2v.training.loop import train


def distill_cfg(teacher, run_dir, *overrides):
    cfg = load_config(teacher / "config.yaml")
    return apply_overrides(
        cfg,
        [
            f"distill.teacher={teacher}",
            f"train.run_dir={run_dir}",
            "train.ema_decay=0.95",
            "train.log_every=1",
            *overrides,
        ],
    )


def test_a_fresh_student_computes_its_teachers_conditional_output(motion_model, tmp_path):
    teacher, student = teacher_and_student(distill_cfg(motion_model, tmp_path))
    student.eval()  # no temporal dropout
    cond = conditions(batch=2, frames=4)
    x = torch.randn(2, 3, 4, 16, 16)
    t = torch.tensor([10.0, 900.0])
    scales = {"text": 3.0, "image": 2.0, "audio": 4.0}
    expected = teacher(x, t, cond)
    got = student(x, t, cond, None, guidance_vector(cond, scales, 2, x.device))
    assert torch.equal(got, expected)
    # Only the UNet's new guidance input trains; the encoders are the teacher's, frozen.
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("unet.") for n in trainable)


def test_a_scale_of_0_is_the_modality_left_out(motion_model, tmp_path):
    _, student = teacher_and_student(distill_cfg(motion_model, tmp_path))
    student.eval()
    randomize_zero_layers(student.unet)  # a trained student: the scales matter
    cond = conditions(batch=1, frames=4)
    x, t = torch.randn(1, 3, 4, 16, 16), torch.tensor([50])
    timestep = torch.Tensor.float
    without_audio = conditions(batch=1, frames=4)
    without_audio.audio = None
    zero = student_model_fn(student, cond, {"text": 2.0, "image": 1.5, "audio": 0.0}, timestep)
    absent = student_model_fn(student, without_audio, {"text": 2.0, "image": 1.5}, timestep)
    other = student_model_fn(student, cond, {"text": 2.0, "image": 1.5, "audio": 3.0}, timestep)
    assert torch.equal(zero(x, t), absent(x, t))
    assert not torch.allclose(zero(x, t), other(x, t))


def test_a_distill_run_resumes_exactly(motion_model, tmp_path):
    train(distill_cfg(motion_model, tmp_path / "a", "train.max_steps=4"), "distill", progress=False)
    cfg = distill_cfg(motion_model, tmp_path / "b", "train.max_steps=2")
    train(cfg, "distill", progress=False)
    cfg = distill_cfg(motion_model, tmp_path / "b", "train.max_steps=4")
    train(cfg, "distill", resume=str(tmp_path / "b"), progress=False)
    a, b = (load_checkpoint(find_checkpoint(tmp_path / run)) for run in "ab")
    assert a["state"]["step"] == b["state"]["step"] == 4
    for key in a["model"]:
        assert (a["model"][key] - b["model"][key]).abs().max() <= 1e-6, key
    for key in a["ema"]:
        assert (a["ema"][key] - b["ema"][key]).abs().max() <= 1e-6, key
    rows = [
        [
            json.loads(line)["loss"]
            for line in (tmp_path / run / "log.jsonl").read_text().splitlines()
        ]
        for run in "ab"
    ]
    assert rows[0] == rows[1] and all(np.isfinite(rows[0]))
    # The exported folder is the teacher's with the student beside it, and says how it was made.
    model = tmp_path / "a" / "model"
    assert (model / STUDENT_FILE).is_file() and (model / "motion.safetensors").is_file()
    assert "Few-step student" in (model / "README.md").read_text()
    assert load_config(model / "config.yaml").distill.teacher == str(motion_model)


def test_the_student_samples_with_lcm_and_the_teacher_refuses_it(motion_model, tmp_path, tiny_toy):
    train(distill_cfg(motion_model, tmp_path, "train.max_steps=2"), "distill", progress=False)
    pipe = TIA2VPipeline.from_pretrained(tmp_path / "model", "cpu")
    calls = []
    unet = pipe.student.unet
    unet.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    out = pipe(
        text="a red circle moving left",
        image=str(tiny_toy / "test/mp4/test_00000.mp4"),
        audio=np.zeros(8000, np.float32),
        audio_rate=16000,
        sampler="lcm",
        num_inference_steps=4,
    )
    assert out.frames.shape == (4, 16, 16, 3)
    assert calls == [1, 1, 1, 1]  # one call per step, no guidance branches
    assert out.settings["sampler"] == "lcm" and out.settings["steps"] == 4
    with pytest.raises(InputError, match="student"):
        TIA2VPipeline.from_pretrained(motion_model, "cpu")(text="a red circle", sampler="lcm")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tia2v",
            "--quiet",
            "generate",
            "--model",
            str(motion_model),
            "--text",
            "a red circle",
            "--sampler",
            "lcm",
            "-o",
            str(tmp_path / "x.mp4"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "student" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.mp4").exists()


def test_a_paper_style_teacher_distils_and_samples(tiny_toy, tmp_path):
    """ε-prediction, learned variance, linear schedule and a noised first frame, as the
    paper-urmp preset (at tiny size)."""
    paper = [
        "diffusion.prediction=eps",
        "diffusion.learn_sigma=true",
        "diffusion.schedule=linear",
        "model.first_frame=noised",
        "model.cross_attention=separate",
    ]
    runs = tmp_path / "runs"
    train(tiny_cfg(tiny_toy, runs / "c", "train.max_steps=2", *paper), "content", progress=False)
    cfg = tiny_cfg(
        tiny_toy, runs / "m", "train.max_steps=2", f"train.init_from={runs / 'c'}", *paper
    )
    train(cfg, "motion", progress=False)
    teacher = runs / "m" / "model"
    train(distill_cfg(teacher, runs / "s", "train.max_steps=3"), "distill", progress=False)
    losses = [
        json.loads(line)["loss"] for line in (runs / "s" / "log.jsonl").read_text().splitlines()
    ]
    assert len(losses) == 3 and all(np.isfinite(losses))
    pipe = TIA2VPipeline.from_pretrained(runs / "s" / "model", "cpu")
    first = np.full((16, 16, 3), 200, np.uint8)
    out = pipe(text="a blue square", image=first, sampler="lcm", num_inference_steps=2)
    assert out.frames.shape == (4, 16, 16, 3)
    assert np.abs(out.frames[0].astype(int) - 200).max() <= 1  # the first frame is held


def test_the_teacher_must_match_the_run(motion_model, tmp_path):
    cfg = distill_cfg(motion_model, tmp_path, "model.model_channels=16")
    with pytest.raises(InputError, match="model config differs"):
        teacher_and_student(cfg)
    with pytest.raises(InputError, match="distill.teacher"):
        teacher_and_student(distill_cfg(motion_model, tmp_path, "distill.teacher="))
