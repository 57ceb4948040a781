"""AudioCLIP's audio head: the official checkpoint layout, strict loading, the FBSP front end
against its formula, shapes and per-frame alignment."""

import math

import numpy as np
import pytest
import torch

from tia2v.config import apply_overrides, resolve_config
from tia2v.encoders import build_audio_encoder
from tia2v.encoders.audio import AudioClipAudioEncoder
from tia2v.encoders.audioclip import (
    AudioClip,
    AudioClipConfig,
    AudioClipImage,
    FilterBank,
    blackman_harris,
)
from tia2v.errors import InputError

# The official layout at a small size: the same modules and key names, fewer channels.
TINY = AudioClipConfig(
    n_fft=256, hop_length=70, win_length=206, layers=(1, 1, 1, 1), stem_width=16, groups=2,
    width_per_group=32, embed_dim=24,
)  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random AudioCLIP audio head saved as the official file is: the whole model's state
    dict, with ``audio.*``, the logit scales and the image and text towers side by side."""
    torch.manual_seed(0)
    model = AudioClip(TINY)
    with torch.no_grad():
        model.audio.fbsp.m.uniform_(0.5, 1.5)
        model.audio.fbsp.fb.uniform_(0.5, 2.0)
        for name, buffer in model.named_buffers():
            if "running_var" in name:
                buffer.uniform_(0.5, 1.5)
            elif "running_mean" in name:
                buffer.normal_(0, 0.1)
        model.logit_scale_ai.fill_(math.log(150.0))  # above the clamp
    state = {
        **model.state_dict(),
        "logit_scale": torch.tensor(4.6),
        "logit_scale_at": torch.tensor(4.6),
        "visual.conv1.weight": torch.zeros(4, 3, 3, 3),
        "token_embedding.weight": torch.zeros(10, 8),
    }
    path = tmp_path_factory.mktemp("audioclip") / "AudioCLIP-Full-Training.pt"
    torch.save(state, path)
    return path, model.eval()


def test_the_official_layout_loads_strictly(checkpoint):
    path, reference = checkpoint
    loaded = AudioClip.load(str(path), TINY)
    names = set(loaded.state_dict())
    for key in (
        "audio.fbsp.m",
        "audio.fbsp.fb",
        "audio.fbsp.fc",
        "audio.window",
        "audio.fc.weight",
    ):
        assert key in names
    assert {f"audio.att{i}.conv_depth.weight" for i in range(1, 6)} <= names
    assert "audio.layer4.0.conv2.weight" in names and "audio.layer1.0.downsample.0.weight" in names
    audio = torch.randn(3, 4000) * 0.3
    with torch.no_grad():
        out = loaded(audio)
    assert out.shape == (3, 24) and torch.isfinite(out).all()
    assert torch.equal(out, reference(audio))
    assert float(loaded.logit_scale()) == 100.0  # exp(log 150) clamped as AudioCLIP does


def test_the_full_size_head_has_the_official_shapes():
    model = AudioClip()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["audio.fbsp.m"] == (1025,) and shapes["audio.window"] == (1654,)
    assert shapes["audio.conv1.weight"] == (64, 3, 7, 7)
    assert shapes["audio.layer1.0.conv2.weight"] == (128, 4, 3, 3)  # 32 groups of 4
    assert shapes["audio.att5.conv_point.weight"] == (2048, 2048, 1, 1)
    assert shapes["audio.fc.weight"] == (1024, 2048)
    assert sum(len(getattr(model.audio, f"layer{i}")) for i in range(1, 5)) == 16


def test_wrong_files_are_one_clear_error(checkpoint, tmp_path):
    with pytest.raises(InputError, match="no such AudioCLIP checkpoint"):
        AudioClip.load(str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not an AudioCLIP checkpoint"):
        AudioClip.load(str(tmp_path / "junk.pt"))
    path, _ = checkpoint
    with pytest.raises(InputError, match="do not fit AudioCLIP"):
        AudioClip.load(str(path))  # the full-size head does not fit the tiny file


def test_the_filter_bank_follows_its_formula():
    """Each bin: √fb · sinc(fb·t/m)^m (a complex power of a real base) · e^(−i·fc·t) / √n_fft."""
    torch.manual_seed(1)
    bank = FilterBank(9)
    with torch.no_grad():
        bank.m.uniform_(0.3, 2.0)
        bank.fb.uniform_(0.5, 3.0)
    n = 32
    got = bank.weights(n, torch.float64).detach().numpy()
    t = np.pi * np.linspace(-1, 1, n) + 1e-8
    for k in range(9):
        m, fb, fc = (float(p[k].detach()) for p in (bank.m, bank.fb, bank.fc))
        x = fb * t / (m + 1e-8)
        base = np.sin(x) / x
        envelope = np.power(base.astype(complex), m)  # principal branch: phase m·π if negative
        expected = np.sqrt(fb) * envelope * np.exp(-1j * fc * t) / np.sqrt(n)
        assert np.abs(got[k] - expected).max() < 1e-9


def test_frames_window_and_padding():
    model = AudioClip(TINY).audio
    window = blackman_harris(TINY.win_length)
    assert abs(float(window[0]) - 6e-5) < 1e-6 and float(window.max()) <= 1.0
    audio = torch.arange(1000, dtype=torch.float32)[None]
    frames = model.frames(audio)
    count = 1 + math.ceil((1000 - 206) / 70)
    assert frames.shape == (1, count, 256)
    missing = (count - 1) * 70 + 206 - 1000
    first = torch.cat([torch.zeros(missing // 2), audio[0, : 206 - missing // 2]]) * window
    assert torch.allclose(frames[0, 0, 25:231], first) and (frames[0, :, :25] == 0).all()


def test_as_the_audio_condition_each_frame_has_its_own_token(checkpoint):
    path, _ = checkpoint

    encoder = AudioClipAudioEncoder(AudioClip.load(str(path), TINY), "audioclip:test")
    windows = torch.randn(2, 4, 2205) * 0.2
    tokens = encoder(windows)
    assert tokens.shape == (2, 4, 1, 24)
    changed = windows.clone()
    changed[1, 2] = torch.randn(2205) * 0.2
    moved = (encoder(changed) - tokens).abs().amax(dim=(2, 3))
    assert moved[1, 2] > 0 and moved.sum() == moved[1, 2]  # only frame 2 of clip 1


def test_the_config_names_it_and_needs_its_file():
    cfg = apply_overrides(resolve_config("tiny"), ["encoders.audio=audioclip"])
    with pytest.raises(InputError, match="AudioCLIP-Full-Training.pt"):
        build_audio_encoder(cfg)


TINY_IMAGE = {"layers": (1, 1, 1, 1), "width": 8, "out_dim": 24, "size": 64}


def tiny_audioclip(seed: int = 0) -> AudioClip:
    torch.manual_seed(seed)
    model = AudioClip(TINY, AudioClipImage(**TINY_IMAGE))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("positional_embedding"):
                parameter.normal_(0, 0.1)
        model.logit_scale_ai.fill_(math.log(40.0))
    return model.eval()


def test_the_image_tower_loads_from_the_official_layout(tmp_path):
    model = tiny_audioclip()
    state = {**model.state_dict(), "token_embedding.weight": torch.zeros(3, 2)}
    torch.save(state, tmp_path / "a.pt")
    loaded = AudioClip.load(str(tmp_path / "a.pt"), TINY, AudioClipImage(**TINY_IMAGE))
    names = set(loaded.state_dict())
    assert {"visual.attnpool.positional_embedding", "visual.layer2.0.downsample.0.weight"} <= names
    assert "visual.conv3.weight" in names and "visual.attnpool.c_proj.weight" in names
    frames = torch.randint(0, 256, (3, 40, 30, 3), dtype=torch.uint8)
    images = loaded.visual.preprocess(frames)
    assert images.shape == (3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.visual(images), model.visual(images))
        assert loaded.visual(images).shape == (3, 24)


def test_the_full_size_image_tower_has_clips_shapes():
    shapes = {k: tuple(v.shape) for k, v in AudioClipImage().state_dict().items()}
    assert shapes["conv1.weight"] == (32, 3, 3, 3)
    assert shapes["attnpool.positional_embedding"] == (50, 2048)
    assert shapes["attnpool.c_proj.weight"] == (1024, 2048)
    assert shapes["layer4.0.downsample.0.weight"] == (2048, 1024, 1, 1)


def test_the_audioclip_score_is_its_definition():
    """Mean over frames of clamp(exp(logit_scale_ai), 1, 100)·cos(frame's audio part, frame),
    recomputed here from its parts; 44.1 kHz parts from audio at another rate."""
    from tia2v.io import resample
    from tia2v.metrics.clip_scores import audioclip_audio_score

    model = tiny_audioclip()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.2, 16000).astype(np.float32)  # 1 s at 16 kHz
    score = audioclip_audio_score(frames, audio, 16000, model)
    wave = resample(audio, 16000, 44100)
    parts = torch.tensor(wave[: len(wave) // 4 * 4]).reshape(4, -1)
    with torch.no_grad():
        a = torch.nn.functional.normalize(model.audio(parts), dim=-1)
        v = model.visual(model.visual.preprocess(torch.from_numpy(frames)))
        v = torch.nn.functional.normalize(v, dim=-1)
    assert score == pytest.approx(float(40.0 * (a * v).sum(-1).mean()), abs=1e-4)


def test_mismatched_audio_lowers_the_audioclip_score():
    """With towers that see loudness and brightness the same way, a video whose brightness
    follows its audio's loudness scores higher than the same video with the parts reordered."""
    from tia2v.metrics.clip_scores import audioclip_audio_score

    class Loudness(torch.nn.Module):  # audio part → [rms, 1 − rms]
        def forward(self, parts):
            rms = parts.pow(2).mean(-1).sqrt().clamp(0, 1)
            return torch.stack([rms, 1 - rms], dim=-1)

    class Brightness(torch.nn.Module):  # frame → [brightness, 1 − brightness]
        def preprocess(self, frames):
            return frames.float() / 255

        def forward(self, images):
            level = images.mean(dim=(1, 2, 3))
            return torch.stack([level, 1 - level], dim=-1)

    model = AudioClip(TINY, None)
    model.audio, model.visual = Loudness(), Brightness()
    levels = np.array([0.9, 0.1, 0.8, 0.2])
    frames = (levels[:, None, None, None] * 255 * np.ones((4, 8, 8, 3))).astype(np.uint8)
    rng = np.random.default_rng(1)
    parts = [rng.normal(0, level, 11025) for level in levels]
    matched = np.concatenate(parts).astype(np.float32)
    mismatched = np.concatenate(parts[::-1][1:] + parts[-1:]).astype(np.float32)
    assert audioclip_audio_score(frames, matched, 44100, model) > audioclip_audio_score(
        frames, mismatched, 44100, model
    )
