import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from tia2v import TIA2VPipeline
from tia2v.errors import InputError
from tia2v.io import read_video


def test_same_seed_same_frames_and_sidecar(motion_model, tmp_path):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    kwargs = {
        "text": "a red circle",
        "image": np.zeros((16, 16, 3), np.uint8),
        "num_inference_steps": 3,
    }
    a, b = pipe(**kwargs, seed=5), pipe(**kwargs, seed=5)
    assert a.frames.shape == (4, 16, 16, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, pipe(**kwargs, seed=6).frames)
    assert a.audio is None  # silent without audio
    a.save(tmp_path / "x.mp4")
    settings = json.loads((tmp_path / "x.json").read_text())
    assert settings["seed"] == 5 and settings["steps"] == 3 and "torch" in settings["versions"]
    assert read_video(tmp_path / "x.mp4").audio is None


def test_first_frame_is_the_given_image(motion_model):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    image = np.zeros((16, 16, 3), np.uint8)
    image[4:12, 4:12] = (220, 40, 40)
    out = pipe(text="a red square", image=image, num_inference_steps=3)
    assert np.abs(out.frames[0].astype(int) - image).max() <= 1


def test_guidance_min_noise(motion_model, tmp_path):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    kwargs = {"text": "a red circle", "image": np.zeros((16, 16, 3), np.uint8)}
    kwargs |= {"num_inference_steps": 3, "guidance": {"text": 4.0, "image": 2.0}}
    guided = pipe(**kwargs, guidance_min_noise=0.0)
    unguided = pipe(**kwargs, guidance_min_noise=1.0)  # every step below T: no guidance
    plain = pipe(**(kwargs | {"guidance": {"text": 1.0, "image": 1.0, "audio": 1.0}}))
    assert np.abs(unguided.frames.astype(int) - plain.frames).max() <= 1
    assert not np.array_equal(guided.frames, unguided.frames)
    assert unguided.settings["guidance_min_noise"] == 1.0
    with pytest.raises(InputError, match="guidance_min_noise must be in"):
        pipe(**kwargs, guidance_min_noise=1.5)


def test_eta_makes_dpmpp_stochastic_per_seed(motion_model):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    kwargs = {"text": "a red circle", "num_inference_steps": 4, "sampler": "dpm++"}
    ode = pipe(**kwargs, eta=0.0)
    sde = [pipe(**kwargs, eta=1.0, seed=seed) for seed in (0, 0, 1)]
    assert np.array_equal(sde[0].frames, sde[1].frames)  # same seed, same noise
    assert not np.array_equal(sde[0].frames, sde[2].frames)
    assert not np.array_equal(sde[0].frames, ode.frames)
    assert sde[0].settings["eta"] == 1.0 and ode.settings["eta"] == 0.0
    assert pipe(**(kwargs | {"sampler": "unipc"})).settings["eta"] is None
    with pytest.raises(InputError, match="eta must be"):
        pipe(**kwargs, eta=-0.5)


def test_audio_is_resampled_padded_and_trimmed(motion_model, caplog):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    stereo = np.random.default_rng(0).normal(0, 0.1, (2, 44100)).astype(np.float32)  # 1 s, 44.1 kHz
    out = pipe(text="a circle", audio=stereo, audio_rate=44100, num_inference_steps=2)
    assert out.audio.shape == (8000,) and out.audio_rate == 16000  # trimmed to the 0.5 s clip
    with caplog.at_level(logging.WARNING):
        short = pipe(
            text="a circle",
            audio=np.zeros(1000, np.float32),
            audio_rate=16000,
            num_inference_steps=2,
        )
    assert short.audio.shape == (8000,) and "padded with silence" in caplog.text
    with pytest.raises(InputError, match="needs audio_rate"):
        pipe(text="a circle", audio=np.zeros(100))


def test_non_square_image_warns(motion_model, tmp_path, caplog):
    Image.fromarray(np.full((20, 40, 3), 128, np.uint8)).save(tmp_path / "wide.png")
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    with caplog.at_level(logging.WARNING):
        pipe(image=tmp_path / "wide.png", num_inference_steps=2)
    assert "not square" in caplog.text


def test_save_pretrained_round_trip(motion_model, tmp_path):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    pipe.save_pretrained(tmp_path / "copy")
    again = TIA2VPipeline.from_pretrained(tmp_path / "copy")
    kwargs = {"text": "a circle", "num_inference_steps": 2, "seed": 1}
    assert np.array_equal(pipe(**kwargs).frames, again(**kwargs).frames)
    assert (tmp_path / "copy" / "README.md").is_file()


def generate(*args):
    return subprocess.run(
        [sys.executable, "-m", "tia2v", "--quiet", "generate", *args],
        capture_output=True,
        text=True,
    )


def assert_one_line_exit_2(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_inputs_are_one_line_exit_2(motion_model, tiny_toy, tmp_path):
    out = ["-o", str(tmp_path / "o.mp4"), "--steps", "2"]
    assert_one_line_exit_2(
        generate("--model", str(tmp_path / "none"), "--text", "x", *out),
        "none: no such model folder",
    )
    corrupt = tmp_path / "corrupt"
    shutil.copytree(motion_model, corrupt)
    (corrupt / "motion.safetensors").write_bytes(b"garbage")
    assert_one_line_exit_2(
        generate("--model", str(corrupt), "--text", "x", *out),
        "motion.safetensors: 7 bytes, the manifest says",
    )
    mismatch = tmp_path / "mismatch"
    shutil.copytree(motion_model, mismatch)
    cfg = yaml.safe_load((mismatch / "config.yaml").read_text())
    cfg["model"]["model_channels"] = 16
    (mismatch / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert_one_line_exit_2(
        generate("--model", str(mismatch), "--text", "x", *out), "weights do not match config.yaml"
    )
    (tmp_path / "bad.png").write_bytes(b"not a png")
    assert_one_line_exit_2(
        generate("--model", str(motion_model), "--image", str(tmp_path / "bad.png"), *out),
        "bad.png: cannot decode image",
    )
    (tmp_path / "bad.wav").write_bytes(b"RIFFjunkWAVE")
    assert_one_line_exit_2(
        generate("--model", str(motion_model), "--audio", str(tmp_path / "bad.wav"), *out),
        "bad.wav: cannot decode audio",
    )
    assert_one_line_exit_2(
        generate("--model", str(motion_model), "--text", " ", *out), "empty prompt"
    )
    assert_one_line_exit_2(generate("--model", str(motion_model), *out), "give at least one")
    assert_one_line_exit_2(
        generate("--model", str(motion_model), "--text", "x", "--eta", "-1", *out), "eta must be"
    )


def test_resume_bad_checkpoint_dirs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tia2v", "train", "content", "--resume", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert_one_line_exit_2(result, "nothing: no such run or checkpoint folder")
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tia2v", "train", "content", "--resume", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
    )
    assert_one_line_exit_2(result, "empty: no checkpoint found")


def test_generate_help_has_a_complete_example():
    result = subprocess.run(
        [sys.executable, "-m", "tia2v", "generate", "--help"], capture_output=True, text=True
    )
    assert (
        "tia2v generate --text" in result.stdout
        and "--image" in result.stdout
        and "--audio" in result.stdout
    )


def test_long_video_follows_the_whole_audio(motion_model, tmp_path):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    audio = np.random.default_rng(0).normal(0, 0.1, 3 * 16000).astype(np.float32)
    out = pipe(
        text="a red circle",
        image=np.zeros((16, 16, 3), np.uint8),
        audio=audio,
        audio_rate=16000,
        num_inference_steps=2,
        long=True,
    )
    assert out.frames.shape == (24, 16, 16, 3) and out.audio.shape == (3 * 16000,)
    out.save(tmp_path / "long.mp4")
    video = read_video(tmp_path / "long.mp4")
    assert len(video.frames) == 24 and video.audio.shape == (1, 3 * 16000)
    with pytest.raises(InputError, match="shorter than one clip"):
        pipe(text="a circle", audio=audio[:4000], audio_rate=16000, long=True)
    with pytest.raises(InputError, match="long mode follows the audio"):
        pipe(text="a circle", long=True)


@pytest.mark.slow
def test_eight_seconds_of_audio_give_64_frames(motion_model, tmp_path):
    pipe = TIA2VPipeline.from_pretrained(motion_model)
    audio = np.random.default_rng(1).normal(0, 0.1, 8 * 16000).astype(np.float32)
    out = pipe(
        text="a blue square",
        image=np.zeros((16, 16, 3), np.uint8),
        audio=audio,
        audio_rate=16000,
        num_inference_steps=2,
        long=True,
    )
    out.save(tmp_path / "long.mp4")
    video = read_video(tmp_path / "long.mp4")
    assert video.frames.shape[0] == 64 and video.fps == 8.0
    assert video.audio.shape == (1, 8 * 16000)  # the whole track
    assert out.settings["long"] and out.settings["num_frames"] == 64


@pytest.mark.parametrize(
    ("sampler", "eta", "first_frame"),
    [("dpm++", 0.7, "noised"), ("ddpm", 0.0, "noised"), ("unipc", 0.0, "clean")],
)
def test_a_batch_gives_each_request_its_own_video(
    motion_model, tmp_path, sampler, eta, first_frame
):
    """Clip k of a batch is the clip of request k alone: the same starting noise, per-step
    noise and first-frame noise from its own seed (stochastic samplers included)."""
    folder = tmp_path / "model"
    shutil.copytree(motion_model, folder)
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    cfg["model"]["first_frame"] = first_frame
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    pipe = TIA2VPipeline.from_pretrained(folder)
    rng = np.random.default_rng(0)
    requests = [
        {
            "text": text,
            "image": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
            "audio": rng.standard_normal(8000).astype(np.float32) * 0.3,
            "seed": seed,
        }
        for text, seed in (("a red circle", 3), ("a blue square moving left", 9), ("green", 4))
    ]
    options = {"num_inference_steps": 4, "sampler": sampler, "eta": eta, "audio_rate": 16000}
    together = pipe.batch(requests, **options)
    for request, video in zip(requests, together, strict=True):
        alone = pipe(**request, **options)
        difference = np.abs(video.frames.astype(int) - alone.frames.astype(int))
        assert difference.max() <= 1 and difference.mean() < 0.01
        assert video.settings == alone.settings
        assert np.array_equal(video.audio, alone.audio)
    assert not np.array_equal(together[0].frames, together[1].frames)
    with pytest.raises(InputError, match="same conditions"):
        pipe.batch([requests[0], {"text": "no image", "seed": 1}], **options)


def test_sample_batches_clips_without_changing_them(motion_model, tiny_toy, tmp_path):
    def sample(out, batch):
        args = ["--model", str(motion_model), "--data", str(tiny_toy), "--split", "train"]
        args += ["--num", "3"]
        args += ["--steps", "2", "--batch-size", batch, "-o", str(out)]
        return subprocess.run(
            [sys.executable, "-m", "tia2v", "--quiet", "sample", *args],
            capture_output=True,
            text=True,
        )

    assert sample(tmp_path / "one", "1").returncode == 0
    result = sample(tmp_path / "two", "2")
    assert result.returncode == 0, result.stderr
    fakes = sorted(p.name for p in (tmp_path / "one" / "fake").glob("*.mp4"))
    assert len(fakes) == 3 and fakes == sorted(
        p.name for p in (tmp_path / "two" / "fake").glob("*.mp4")
    )
    for name in fakes:
        a = read_video(tmp_path / "one" / "fake" / name).frames.astype(int)
        b = read_video(tmp_path / "two" / "fake" / name).frames.astype(int)
        assert np.abs(a - b).mean() < 0.5  # the same clip (up to the mp4 encoder)
        for folder in ("real", "audio", "txt"):
            assert any((tmp_path / "two" / folder).glob(f"{name[:-4]}.*"))
    bad = sample(tmp_path / "three", "0")
    assert bad.returncode == 2 and "--batch-size 0: must be >= 1" in bad.stderr


def test_progress_can_be_a_function_fed_every_step(motion_model):
    steps = []
    TIA2VPipeline.from_pretrained(motion_model)(
        text="a red circle", num_inference_steps=3, progress=lambda *step: steps.append(step)
    )
    assert steps == [("sample dpm++", 1, 3), ("sample dpm++", 2, 3), ("sample dpm++", 3, 3)]
