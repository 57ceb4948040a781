"""wav2clip: the official checkpoint layout, strict loading, shapes, per-frame alignment."""

import pytest
import torch

from tia2v.encoders.wav2clip import Wav2Clip
from tia2v.errors import InputError


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random wav2clip in the official file's layout (Lightning's ``state_dict`` with the
    ``audio_encoder.`` / ``audio_transform.`` prefixes, beside the training model's other keys)."""
    torch.manual_seed(0)
    model = Wav2Clip()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if "running_var" in name:
                buffer.uniform_(0.5, 1.5)
            elif "running_mean" in name:
                buffer.normal_(0, 0.1)
    state = {**model.state_dict(), "image_encoder.proj": torch.zeros(3)}
    path = tmp_path_factory.mktemp("wav2clip") / "ResNet_CX.ckpt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    return path, model.eval()


def test_the_official_layout_loads_strictly(checkpoint):
    path, reference = checkpoint
    loaded = Wav2Clip.load(str(path))
    names = set(loaded.state_dict())
    assert "audio_encoder.spectrogram.window" in names and "audio_encoder.fc.weight" in names
    assert {"audio_transform.sequential.0.weight", "audio_transform.sequential.3.weight"} <= names
    audio = torch.randn(3, 16000) * 0.1
    with torch.no_grad():
        out = loaded(audio)
        assert out.shape == (3, 512)
        assert torch.equal(out, reference(audio))


def test_each_window_alone_gives_frame_aligned_embeddings(checkpoint):
    _, model = checkpoint
    windows = torch.randn(4, 3200) * 0.1
    changed = windows.clone()
    changed[2] = torch.randn(3200)
    with torch.no_grad():
        alone, alone_changed = model(windows, joint=False), model(changed, joint=False)
        joint, joint_changed = model(windows, joint=True), model(changed, joint=True)
    moved = (alone - alone_changed).abs().amax(dim=1)
    assert moved[2] > 1e-3 and torch.all(moved[[0, 1, 3]] == 0)
    # the official standardisation couples the windows of one call
    assert (joint - joint_changed).abs().amax(dim=1)[0] > 0


def test_bad_checkpoints_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such wav2clip checkpoint"):
        Wav2Clip.load(str(tmp_path / "missing.ckpt"))
    torch.save({"state_dict": {"audio_encoder.conv1.weight": torch.zeros(1)}}, tmp_path / "b.ckpt")
    with pytest.raises(InputError, match="do not fit wav2clip"):
        Wav2Clip.load(str(tmp_path / "b.ckpt"))
    (tmp_path / "c.ckpt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="not a wav2clip checkpoint"):
        Wav2Clip.load(str(tmp_path / "c.ckpt"))


def test_wav2clip_as_the_audio_condition_is_frame_aligned(checkpoint):
    from tia2v.config import apply_overrides, resolve_config
    from tia2v.encoders import Conditioner

    path, _ = checkpoint
    cfg = apply_overrides(
        resolve_config("tiny"), ["encoders.audio=wav2clip", f"encoders.audio_path={path}"]
    )
    conditioner = Conditioner(cfg)
    windows = torch.randn(2, 4, 4000) * 0.1  # (B, F, W): 0.25 s per frame at 16 kHz
    changed = windows.clone()
    changed[1, 2] = torch.randn(4000)
    with torch.no_grad():
        tokens = conditioner.encode_audio(windows)
        tokens_changed = conditioner.encode_audio(changed)
    assert tokens.shape == (2, 4, 1, cfg.model.context_dim)
    moved = (tokens - tokens_changed).abs().amax(dim=(2, 3))  # (B, F)
    assert moved[1, 2] > 0 and (moved > 0).sum() == 1
    with pytest.raises(InputError, match="'wav2clip' audio encoder needs its checkpoint file"):
        Conditioner(apply_overrides(resolve_config("tiny"), ["encoders.audio=wav2clip"]))


def test_mismatched_audio_lowers_the_wav2clip_score():
    """The score pairs frame k with audio part k: with an audio side that reads loudness and
    frame embeddings that encode brightness the same way, the matched track scores higher
    than the same parts reordered."""
    import numpy as np

    from tia2v.metrics.clip_scores import clip_audio_score

    class Loudness(torch.nn.Module):  # a wav2clip stand-in: part → [rms, 1 − rms]
        sample_rate = 16000

        def forward(self, parts, joint=True):
            rms = parts.pow(2).mean(-1).sqrt().clamp(0, 1)
            return torch.stack([rms, 1 - rms], dim=-1)

    levels = [0.9, 0.1, 0.8, 0.2]
    frames = torch.nn.functional.normalize(torch.tensor([[x, 1 - x] for x in levels]), dim=-1)
    rng = np.random.default_rng(0)
    parts = [rng.normal(0, level, 4000) for level in levels]
    matched = np.concatenate(parts).astype(np.float32)
    mismatched = np.concatenate([parts[2], parts[1], parts[0], parts[3]]).astype(np.float32)
    loudness = Loudness()
    loudness.anchor = torch.nn.Parameter(torch.zeros(1))  # the score reads the device from it
    assert clip_audio_score(frames, matched, 16000, loudness) > clip_audio_score(
        frames, mismatched, 16000, loudness
    )
