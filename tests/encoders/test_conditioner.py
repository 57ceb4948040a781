import pytest
import torch

from tests.encoders.test_audio import random_beats, tiny_clap
from tia2v.config import apply_overrides, resolve_config
from tia2v.encoders import Conditioner
from tia2v.errors import ConfigError, InputError


def test_default_conditioner_projects_to_the_context_width():
    cfg = resolve_config("tiny")  # minilm (384) → context 32, trainable patch and mel
    conditioner = Conditioner(cfg)
    text = conditioner.encode_text(["a red circle moving left"])
    assert text.tokens.shape[-1] == 32 and text.mask.shape == text.tokens.shape[:2]
    assert conditioner.encode_image(torch.rand(2, 3, 16, 16) * 2 - 1).shape == (2, 16, 32)
    assert conditioner.encode_audio(torch.zeros(2, 4, 4000)).shape == (2, 4, 2, 32)
    assert set(conditioner.identities()) == {"text"}
    saved = conditioner.trainable_state_dict()
    assert saved and not any(key.startswith("text.") for key in saved)
    assert any(key.startswith("text_proj.") for key in saved)
    assert any(key.startswith("image.") for key in saved) and any(
        key.startswith("audio.") for key in saved
    )


def test_content_stage_has_no_audio_encoder():
    conditioner = Conditioner(resolve_config("tiny"), ("text", "image"))
    assert not hasattr(conditioner, "audio")


def test_beats_from_the_config(tmp_path):
    random_beats().save(tmp_path / "beats.pt")
    cfg = apply_overrides(
        resolve_config("tiny"),
        ["encoders.audio=beats", f"encoders.audio_path={tmp_path / 'beats.pt'}"],
    )
    conditioner = Conditioner(cfg)
    assert conditioner.encode_audio(torch.randn(1, 2, 4000) * 0.1).shape == (1, 2, 8, 32)
    assert set(conditioner.identities()) == {"text", "audio"}


def test_config_errors_name_the_key(tmp_path):
    tiny_clap(tmp_path / "clap")
    cfg = apply_overrides(
        resolve_config("tiny"), ["encoders.audio=clap", f"encoders.audio_path={tmp_path / 'clap'}"]
    )
    with pytest.raises(
        ConfigError, match="data.audio_rate=16000 but the 'clap' encoder expects 48000"
    ):
        Conditioner(cfg)
    assert Conditioner(apply_overrides(cfg, ["data.audio_rate=48000"])).audio.sample_rate == 48000
    with pytest.raises(InputError, match="encoders.audio: unknown audio encoder 'audioclap'"):
        Conditioner(apply_overrides(resolve_config("tiny"), ["encoders.audio=audioclap"]))
