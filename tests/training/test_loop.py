import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import tiny_cfg
from tia2v.config import resolve_config
from tia2v.diffusion.losses import training_losses
from tia2v.diffusion.schedule import Diffusion
from tia2v.errors import ConfigError, TrainingError
from tia2v.io import probe_video, read_video
from tia2v.model_folder import read_weights
from tia2v.models.network import TIA2VNetwork
from tia2v.training import checkpoint as checkpoint_module
from tia2v.training import loop as loop_module
from tia2v.training.checkpoint import find_checkpoint, load_checkpoint
from tia2v.training.loop import train
from tia2v.training.signals import Stopped


def tia2v(*args):
    return subprocess.run(
        [sys.executable, "-m", "tia2v", "--quiet", *args], capture_output=True, text=True
    )


def test_content_then_motion_then_generate_from_the_cli(tiny_toy, tmp_path):
    common = ["--config", "tiny", "--set", f"data.root={tiny_toy}"]
    result = tia2v(
        "train",
        "content",
        *common,
        "--set",
        f"train.run_dir={tmp_path / 'c'}",
        "--set",
        "train.max_steps=2",
    )
    assert result.returncode == 0, result.stderr
    result = tia2v(
        "train",
        "motion",
        *common,
        "--set",
        f"train.run_dir={tmp_path / 'm'}",
        "--set",
        "train.max_steps=2",
        "--set",
        f"train.init_from={tmp_path / 'c'}",
    )
    assert result.returncode == 0, result.stderr
    model = tmp_path / "m" / "model"
    assert {p.name for p in model.iterdir()} == {
        "config.yaml",
        "motion.safetensors",
        "encoders.safetensors",
        "README.md",
        "manifest.json",
    }
    assert "train motion --config tiny" in (model / "README.md").read_text()
    result = tia2v(
        "generate",
        "--model",
        str(model),
        "--text",
        "a red circle moving left",
        "--image",
        str(tiny_toy / "test/mp4/test_00000.mp4"),
        "--audio",
        str(tiny_toy / "test/wav/test_00000.wav"),
        "--steps",
        "3",
        "-o",
        str(tmp_path / "g.mp4"),
    )
    assert result.returncode == 0, result.stderr
    frames, fps, audio_seconds = probe_video(tmp_path / "g.mp4")
    assert (frames, fps) == (4, 8.0) and abs(audio_seconds - 0.5) <= 1024 / 16000
    video = read_video(tmp_path / "g.mp4")
    assert video.audio.shape == (1, 8000)
    sidecar = json.loads((tmp_path / "g.json").read_text())
    assert sidecar["seed"] == 0 and sidecar["sampler"] == "dpm++" and sidecar["first_frame_lock"]


def test_exact_resume(tiny_toy, tmp_path):
    train(tiny_cfg(tiny_toy, tmp_path / "a", "train.max_steps=4"), "content", progress=False)
    train(tiny_cfg(tiny_toy, tmp_path / "b", "train.max_steps=2"), "content", progress=False)
    with (tmp_path / "b" / "log.jsonl").open("a") as log:  # a run killed after its checkpoint
        log.write(json.dumps({"step": 3, "loss": 9.0}) + "\n")
        log.write('{"step": 4, "lo')  # cut off mid-line
    cfg = tiny_cfg(tiny_toy, tmp_path / "b", "train.max_steps=4")
    train(cfg, "content", resume=str(tmp_path / "b"), progress=False)
    a, b = (load_checkpoint(find_checkpoint(tmp_path / run)) for run in "ab")
    assert a["state"]["step"] == b["state"]["step"] == 4
    for key in a["model"]:
        assert (a["model"][key] - b["model"][key]).abs().max() <= 1e-6, key
    for key in a["ema"]:
        assert (a["ema"][key] - b["ema"][key]).abs().max() <= 1e-6, key

    def values(run):
        lines = [
            json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()
        ]
        return [{k: r[k] for k in ("step", "loss", "mse", "vb", "grad_norm", "lr")} for r in lines]

    assert values("a") == values("b")


def test_motion_stage_fine_tunes_an_exported_motion_model(motion_model, tiny_toy, tmp_path):
    cfg = tiny_cfg(tiny_toy, tmp_path, f"train.init_from={motion_model}")
    network = TIA2VNetwork(cfg, "motion")
    loop_module._init_from(network, cfg.train.init_from)
    shipped = {
        "unet": read_weights(motion_model / "motion.safetensors"),
        "conditioner": read_weights(motion_model / "encoders.safetensors"),
    }
    for part, weights in shipped.items():
        own = getattr(network, part).state_dict()
        assert weights and all(torch.equal(own[name], tensor) for name, tensor in weights.items())


def test_overfits_one_batch():
    cfg = resolve_config("tiny")
    torch.manual_seed(0)
    network = TIA2VNetwork(cfg, "content")
    diffusion = Diffusion.from_config(cfg.diffusion)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 3, 4, 16, 16, generator=g) * 2 - 1
    t, noise = torch.randint(0, 100, (2,), generator=g), torch.randn(x0.shape, generator=g)
    batch = {"caption": ["a red circle", "a blue square"], "first_frame": x0[:, :, 0]}
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=2e-3)

    def loss():
        fn = lambda x, s: network(x, diffusion.model_timesteps(s), batch)  # noqa: E731
        return training_losses(diffusion, cfg.diffusion, fn, x0, t, noise)["loss"].mean()

    start = loss().item()
    for _ in range(150):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    assert loss().item() < 0.3 * start


def test_two_processes_with_gloo(tiny_toy, tmp_path):
    run = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "tia2v",
        "--quiet",
        "train",
        "content",
        "--config",
        "tiny",
        "--set",
        f"data.root={tiny_toy}",
        "--set",
        f"train.run_dir={run}",
        "--set",
        "train.max_steps=3",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    sync = json.loads((run / "sync.json").read_text())
    assert sync["world"] == 2 and sync["global_batch"] == 2 * 1
    assert sync["checksums"][0] == sync["checksums"][1]
    assert [p.name for p in (run / "checkpoints").glob("step_*")] == ["step_00000003"]
    last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert last["samples_per_s"] == pytest.approx(2 * last["steps_per_s"], rel=1e-3)


def test_max_noise_limits_the_training_timesteps(tiny_toy, tmp_path, monkeypatch):
    real, drawn = loop_module.training_losses, []

    def recording(diffusion, cfg, model_fn, x0, t, *rest):
        drawn.extend(t.tolist())
        return real(diffusion, cfg, model_fn, x0, t, *rest)

    monkeypatch.setattr(loop_module, "training_losses", recording)
    cfg = tiny_cfg(tiny_toy, tmp_path / "low", "train.max_steps=8", "train.max_noise=0.1")
    train(cfg, "refiner", progress=False)
    highest = round(0.1 * cfg.diffusion.num_timesteps)
    assert len(drawn) == 8 * cfg.train.batch_size and max(drawn) < highest
    assert len(set(drawn)) > 1
    drawn.clear()  # a large train.timestep_shift puts (almost) every draw near the top
    shifted = ("train.max_steps=4", "train.max_noise=0.1", "train.timestep_shift=1000")
    train(tiny_cfg(tiny_toy, tmp_path / "shift", *shifted), "refiner", progress=False)
    assert len(drawn) == 4 * cfg.train.batch_size and min(drawn) >= 0.9 * highest
    for bad in ("0", "1.5"):  # refused when the config is read, before any training
        with pytest.raises(ConfigError, match="'train.max_noise': .* out of range"):
            tiny_cfg(tiny_toy, tmp_path / bad, f"train.max_noise={bad}")
    with pytest.raises(ConfigError, match="'train.timestep_shift': 0.0 is out of range"):
        tiny_cfg(tiny_toy, tmp_path / "bad-shift", "train.timestep_shift=0")


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tiny_toy, tmp_path, monkeypatch):
    real = loop_module.training_losses
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        out = real(*args)
        if calls["n"] == 3:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(loop_module, "training_losses", poisoned)
    cfg = tiny_cfg(tiny_toy, tmp_path / "nan", "train.max_steps=5", "train.save_every=2")
    with pytest.raises(TrainingError, match=r"non-finite loss by step 3.*step_00000002"):
        train(cfg, "content", progress=False)
    assert load_checkpoint(find_checkpoint(tmp_path / "nan"))["state"]["step"] == 2


def test_killed_mid_save_leaves_the_previous_checkpoint(tiny_toy, tmp_path, monkeypatch):
    train(tiny_cfg(tiny_toy, tmp_path / "k", "train.max_steps=2"), "content", progress=False)
    real = checkpoint_module.save_file
    calls = {"n": 0}

    def dying(tensors, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the process dies after model.safetensors, before ema.safetensors
            raise OSError("simulated kill")
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "save_file", dying)
    cfg = tiny_cfg(tiny_toy, tmp_path / "k", "train.max_steps=4")
    with pytest.raises(OSError, match="simulated kill"):
        train(cfg, "content", resume=str(tmp_path / "k"), progress=False)
    monkeypatch.setattr(checkpoint_module, "save_file", real)
    folder = find_checkpoint(tmp_path / "k")
    assert folder.name == "step_00000002"
    assert load_checkpoint(folder)["state"]["step"] == 2


def test_sample_videos_every_n_steps(tiny_toy, tmp_path):
    cfg = tiny_cfg(
        tiny_toy, tmp_path / "s", "train.max_steps=2", "train.sample_every=2", "sample.steps=2"
    )
    train(cfg, "content", progress=False)
    video = read_video(tmp_path / "s" / "samples" / "step_00000002.mp4")
    assert video.frames.shape == (4, 16, 16, 3)
    assert json.loads((tmp_path / "s" / "samples" / "step_00000002.json").read_text())["steps"] == 2


def test_sigterm_stops_after_the_step_with_a_checkpoint(tiny_toy, tmp_path, monkeypatch):
    real = loop_module.training_losses
    calls = {"n": 0}

    def terminated(*args):
        calls["n"] += 1
        if calls["n"] == 3:  # mid step 3: the handler must only take note
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            signal.raise_signal(signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(loop_module, "training_losses", terminated)
    before = signal.getsignal(signal.SIGTERM)
    cfg = tiny_cfg(tiny_toy, tmp_path / "term", "train.max_steps=6", "train.save_every=100")
    with pytest.raises(Stopped):
        train(cfg, "content", progress=False)
    assert signal.getsignal(signal.SIGTERM) == before
    assert load_checkpoint(find_checkpoint(tmp_path / "term"))["state"]["step"] == 3
    last = json.loads((tmp_path / "term" / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 3


def test_a_model_trained_on_30_fps_clips_generates_at_30_fps(tmp_path, caplog):
    from tia2v import TIA2VPipeline
    from tia2v.data.synth import synthesize

    root = tmp_path / "toy30"
    synthesize(
        root, num_train=2, num_test=1, seed=4, size=16, num_frames=8, fps=30.0, progress=False
    )
    train(tiny_cfg(root, tmp_path / "c", "train.max_steps=2"), "content", progress=False)
    cfg = tiny_cfg(root, tmp_path / "m", "train.max_steps=2", f"train.init_from={tmp_path / 'c'}")
    train(cfg, "motion", progress=False)
    pipe = TIA2VPipeline.from_pretrained(tmp_path / "m" / "model", "cpu")
    assert pipe.cfg.sample.fps == 30.0  # the tiny preset says 8; the clips said 30
    audio = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    out = pipe(text="a red circle", audio=audio, audio_rate=16000, num_inference_steps=2)
    frames = pipe.cfg.data.num_frames
    assert out.fps == 30.0 and len(out.audio) == round(frames / 30.0 * 16000)
    assert not caplog.records
    slower = pipe(
        text="a red circle", audio=audio, audio_rate=16000, num_inference_steps=2, fps=10.0
    )
    assert slower.fps == 10.0 and len(slower.audio) == round(frames / 10.0 * 16000)
    assert "differs from the 30 fps the model was trained at" in caplog.text


@pytest.mark.parametrize("stage", ["content", "motion", "refiner"])
def test_every_trained_parameter_gets_a_gradient_whatever_is_dropped(tiny_toy, stage):
    """DDP runs without its unused-parameter search: that is right only if every trainable
    parameter takes part in every step, with every condition dropped or none."""
    from tia2v.data.vat import VATDataset, collate
    from tia2v.models.network import stage_model

    cfg = tiny_cfg(tiny_toy, "unused")
    data = cfg.data.__class__(**{**cfg.data.__dict__, "image_size": stage_model(cfg, stage)[1]})
    batch = collate([VATDataset(data, "train")[i] for i in range(2)])
    diffusion = Diffusion.from_config(cfg.diffusion)
    network = TIA2VNetwork(cfg, stage)
    if stage == "motion":
        network.freeze_spatial()
    modalities = {"content": ("text", "image"), "motion": ("text", "image", "audio")}
    for kept in (False, True):
        network.zero_grad(set_to_none=True)
        keep = {m: torch.full((2,), kept) for m in modalities.get(stage, ("text",))}
        losses = training_losses(
            diffusion,
            cfg.diffusion,
            lambda x, s: network(x, diffusion.model_timesteps(s), batch, keep),  # noqa: B023
            batch["video"],
            torch.tensor([5, 60]),
            torch.randn_like(batch["video"]),
        )
        losses["loss"].mean().backward()
        missing = [n for n, p in network.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, (kept, missing[:5])
