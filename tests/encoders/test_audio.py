import dataclasses

import numpy as np
import pytest
import torch
from transformers import ClapAudioConfig, ClapAudioModel, ClapFeatureExtractor
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from tests.helpers import TINY_BEATS, random_beats
from tia2v.encoders.audio import BEATsAudioEncoder, ClapAudioEncoder, MelAudioEncoder
from tia2v.encoders.beats import BEATs, kaldi_fbank
from tia2v.errors import InputError


def numpy_kaldi_fbank(waveform: np.ndarray) -> np.ndarray:
    """transformers' numpy path (as ASTFeatureExtractor uses without torchaudio), Kaldi's
    povey window."""
    filters = mel_filter_bank(
        num_frequency_bins=257,
        num_mel_filters=128,
        min_frequency=20,
        max_frequency=8000,
        sampling_rate=16000,
        norm=None,
        mel_scale="kaldi",
        triangularize_in_mel_space=True,
    )
    return spectrogram(
        waveform,
        window_function(400, "povey", periodic=False),
        frame_length=400,
        hop_length=160,
        fft_length=512,
        power=2.0,
        center=False,
        preemphasis=0.97,
        mel_filters=filters,
        log_mel="log",
        mel_floor=1.192092955078125e-07,
        remove_dc_offset=True,
    ).T


@pytest.mark.filterwarnings("ignore:At least one mel filter")
@pytest.mark.parametrize("signal", ["tone", "noise"])
def test_fbank_matches_the_numpy_kaldi_path(signal):
    t = np.arange(8000) / 16000
    rng = np.random.default_rng(0)
    wave = 0.5 * np.sin(2 * np.pi * 440 * t) if signal == "tone" else rng.normal(0, 0.1, 8000)
    wave = (wave * 2**15).astype(np.float32)
    ours = kaldi_fbank(torch.from_numpy(wave)[None], 128)[0].numpy()
    reference = numpy_kaldi_fbank(wave)
    assert ours.shape == reference.shape == (48, 128)
    assert np.abs(ours - reference).max() < 1e-3


@pytest.mark.parametrize(
    "cfg",
    [
        TINY_BEATS,
        dataclasses.replace(TINY_BEATS, layer_norm_first=True, deep_norm=False, gru_rel_pos=False),
    ],
)
def test_beats_official_format_round_trip(tmp_path, cfg):
    model = random_beats(cfg)
    model.save(tmp_path / "beats.pt")
    saved = torch.load(tmp_path / "beats.pt", weights_only=True)
    assert set(saved) == {"cfg", "model"}
    assert (
        "encoder.layers.1.self_attn.relative_attention_bias.weight" in saved["model"]
    )  # as the official file
    assert "encoder.pos_conv.0.weight_g" in saved["model"]
    loaded = BEATs.load(tmp_path / "beats.pt")
    wave = torch.randn(2, 4000) * 0.1
    with torch.no_grad():
        assert torch.equal(model(wave), loaded(wave))


def test_beats_tokens_per_frame():
    encoder = BEATsAudioEncoder(random_beats())
    windows = torch.randn(2, 3, 3200) * 0.1  # 0.2 s at 16 kHz: 18 fbank frames, one time patch
    tokens = encoder(windows)
    assert tokens.shape == (2, 3, 8, 32)
    longer = encoder(torch.randn(1, 2, 8000) * 0.1)  # 0.5 s: 3 time patches, averaged
    assert longer.shape == (1, 2, 8, 32)
    # Each frame's tokens depend on its own window only.
    changed = windows.clone()
    changed[:, 1] = torch.randn(2, 3200)
    other = encoder(changed)
    assert torch.allclose(other[:, 0], tokens[:, 0]) and not torch.allclose(
        other[:, 1], tokens[:, 1]
    )


def test_beats_window_shorter_than_one_patch_is_a_clear_error():
    encoder = BEATsAudioEncoder(random_beats())
    with pytest.raises(InputError, match=r"at least 0\.175 s .* got 0\.100 s"):
        encoder(torch.randn(1, 2, 1600))


def test_beats_bad_files(tmp_path):
    with pytest.raises(InputError, match="no such BEATs checkpoint"):
        BEATs.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.pt: not a readable BEATs checkpoint"):
        BEATs.load(tmp_path / "junk.pt")


def tiny_clap(folder=None) -> ClapAudioEncoder:
    """A random ClapAudioModel with the real feature extractor; saved to ``folder`` if given."""
    torch.manual_seed(0)
    config = ClapAudioConfig(
        patch_embeds_hidden_size=16,
        hidden_size=32,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        window_size=4,
        num_mel_bins=64,
        spec_size=256,
        patch_size=8,
        patch_stride=8,
        enable_fusion=False,
    )
    model, extractor = ClapAudioModel(config), ClapFeatureExtractor()
    if folder is not None:
        model.save_pretrained(folder)
        extractor.save_pretrained(folder)
    return ClapAudioEncoder(model, extractor, num_tokens=4)


def test_clap_audio_tokens():
    encoder = tiny_clap()
    tokens = encoder(torch.randn(2, 3, 12000) * 0.1)  # 0.25 s windows at 48 kHz
    assert tokens.shape == (2, 3, 4, 32)
    assert all(not p.requires_grad for p in encoder.parameters())


def test_mel_encoder_hears_loudness_and_trains():
    encoder = MelAudioEncoder(dim=16, num_tokens=2)
    quiet = torch.zeros(1, 2, 4000)
    loud = quiet.clone()
    loud[0, 1, 1800:2400] = torch.sin(torch.arange(600) * 0.3) * 0.8
    a, b = encoder(quiet), encoder(loud)
    assert a.shape == (1, 2, 2, 16)
    assert torch.allclose(a[0, 0], b[0, 0]) and not torch.allclose(a[0, 1], b[0, 1])
    b.sum().backward()
    assert encoder.convs[0].weight.grad is not None


@pytest.mark.parametrize("bands", [64, 128])
def test_the_kaldi_mel_filters_equal_transformers(bands):
    """Our own filter bank (no transformers import at start-up) is transformers' Kaldi one."""
    import warnings

    from tia2v.encoders.beats import _mel_filters

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = mel_filter_bank(
            num_frequency_bins=257,
            num_mel_filters=bands,
            min_frequency=20.0,
            max_frequency=8000.0,
            sampling_rate=16000,
            norm=None,
            mel_scale="kaldi",
            triangularize_in_mel_space=True,
        )
    assert np.array_equal(_mel_filters(bands).numpy(), reference)
