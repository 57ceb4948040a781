"""Tiny random-weight models of the real transformers classes, built offline."""

import pytest
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode


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
