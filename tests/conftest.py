"""Fixtures shared by every test module: small synthesised toy-VAT sets, trained tiny models,
and a tiny CLIP text model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from tests.helpers import tiny_cfg
from tia2v.data.synth import synthesize


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 train + 2 test toy clips of 16 frames, 32x32, seed 1 (read-only: copy to modify)."""
    root = tmp_path_factory.mktemp("toy")
    synthesize(root, num_train=4, num_test=2, seed=1, size=32, progress=False)
    return root


@pytest.fixture
def toy_copy(toy_root: Path, tmp_path: Path) -> Path:
    """A private copy of the toy set that a test may break."""
    return Path(shutil.copytree(toy_root, tmp_path / "toy"))


@pytest.fixture(scope="session")
def tiny_clip_text_dir(tmp_path_factory):
    """A CLIP text model (2 layers, width 32) and a real CLIPTokenizer with a byte-level vocab."""
    folder = tmp_path_factory.mktemp("clip-text")
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[])
    tokenizer.save_pretrained(folder)
    config = CLIPTextConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=16,
        bos_token_id=len(tokens) - 2,
        eos_token_id=len(tokens) - 1,
        pad_token_id=len(tokens) - 1,
    )
    CLIPTextModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_toy(tmp_path_factory):
    """Toy clips sized for the tiny preset: 4 frames of 16x16 at 8 fps."""
    root = tmp_path_factory.mktemp("tiny-toy")
    synthesize(root, num_train=4, num_test=2, seed=3, size=16, num_frames=4, progress=False)
    return root


@pytest.fixture(scope="session")
def motion_model(tiny_toy, tmp_path_factory):
    """An exported tiny motion model (content 4 steps, then motion 2 steps)."""
    from tia2v.training.loop import train

    runs = tmp_path_factory.mktemp("runs")
    train(tiny_cfg(tiny_toy, runs / "content", "train.max_steps=4"), "content", progress=False)
    cfg = tiny_cfg(
        tiny_toy, runs / "motion", "train.max_steps=2", f"train.init_from={runs / 'content'}"
    )
    train(cfg, "motion", progress=False)
    return runs / "motion" / "model"
