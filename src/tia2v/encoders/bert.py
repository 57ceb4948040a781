"""A BERT-architecture text encoder in plain PyTorch, read from a Hugging Face folder
(``config.json``, ``model.safetensors``, ``tokenizer.json``).

The shipped MiniLM prompt encoder runs through it: the same last hidden state as
``transformers.BertModel`` (checked in the tests), without importing ``transformers``, which
costs seconds at start-up. Post-LayerNorm BERT: token + position + segment-0 embeddings, then
per layer self-attention and a GELU MLP, each added to its input and layer-normalised.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tia2v.encoders.base import Encoded, FrozenEncoder
from tia2v.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` that the forward pass uses."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        data = json.loads(path.read_text())
        if data.get("model_type") != "bert" or data.get("hidden_act", "gelu") != "gelu":
            raise InputError(
                f"{path}: not a BERT config with GELU (model_type {data.get('model_type')!r})"
            )
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Table(nn.Module):
    """An embedding table left uninitialised (nn.Embedding's random init is wasted work when
    the weights are read from a file)."""

    def __init__(self, rows: int, width: int, device: torch.device | str | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, width, device=device))

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return F.embedding(index, self.weight)


class BertLayer(nn.Module):
    """Self-attention and MLP, each followed by residual + LayerNorm; Hugging Face names."""

    def __init__(self, cfg: BertConfig, device: torch.device | str | None = None):
        super().__init__()
        width, eps, inner = cfg.hidden_size, cfg.layer_norm_eps, cfg.intermediate_size
        self.heads = cfg.num_attention_heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        for name in ("query", "key", "value"):
            setattr(self.attention.self, name, nn.Linear(width, width, device=device))
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(width, width, device=device)
        self.attention.output.LayerNorm = nn.LayerNorm(width, eps=eps, device=device)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(width, inner, device=device)
        self.output = nn.Module()
        self.output.dense = nn.Linear(inner, width, device=device)
        self.output.LayerNorm = nn.LayerNorm(width, eps=eps, device=device)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h: (B, L, W), mask: (B, 1, 1, L) bool (True: attend) → (B, L, W)."""
        batch, length, width = h.shape
        attn = self.attention

        def heads(linear: nn.Linear) -> torch.Tensor:
            return linear(h).view(batch, length, self.heads, -1).transpose(1, 2)  # (B, H, L, d)

        q, k, v = heads(attn.self.query), heads(attn.self.key), heads(attn.self.value)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, L, d)
        context = context.transpose(1, 2).reshape(batch, length, width)
        h = attn.output.LayerNorm(attn.output.dense(context) + h)
        inner = F.gelu(self.intermediate.dense(h))  # (B, L, 4W), exact (erf) GELU
        return self.output.LayerNorm(self.output.dense(inner) + h)


class BertModel(nn.Module):
    """input ids (B, L), attention mask (B, L) → last hidden state (B, L, W).

    ``device="meta"`` builds it without weights, to be loaded with ``assign=True``."""

    def __init__(self, cfg: BertConfig, device: torch.device | str | None = None):
        super().__init__()
        self.config = cfg
        width = cfg.hidden_size
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = Table(cfg.vocab_size, width, device)
        self.embeddings.position_embeddings = Table(cfg.max_position_embeddings, width, device)
        self.embeddings.token_type_embeddings = Table(cfg.type_vocab_size, width, device)
        self.embeddings.LayerNorm = nn.LayerNorm(width, eps=cfg.layer_norm_eps, device=device)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            BertLayer(cfg, device) for _ in range(cfg.num_hidden_layers)
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        emb = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = (
            emb.word_embeddings(input_ids)
            + emb.position_embeddings(positions)[None]
            + emb.token_type_embeddings.weight[0]
        )  # (B, L, W)
        h = emb.LayerNorm(h)
        mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L)
        for layer in self.encoder.layer:
            h = layer(h, mask)
        return h


class BertTextEncoder(FrozenEncoder):
    """Per-token states of a BERT-architecture Hugging Face folder, tokenised by its
    ``tokenizer.json`` (the ``tokenizers`` library); padded to the longest prompt.

    Args:
        folder: with config.json, model.safetensors and tokenizer.json.
        max_length: token limit, special tokens included (longer prompts are truncated with a
            warning).
        identity: names the weights in the cache manifest.
    """

    def __init__(self, folder: str | Path, max_length: int, identity: str = ""):
        super().__init__()
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        needed = [folder / n for n in ("config.json", "model.safetensors", "tokenizer.json")]
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise InputError(f"{folder}: not a BERT folder ({', '.join(missing)} missing)")
        cfg = BertConfig.from_file(needed[0])
        model = BertModel(cfg, device="meta")  # no random initialisation: all from the file
        state = load_file(str(needed[1]))
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        own = model.state_dict()
        absent = sorted(set(own) - set(state))
        if absent:
            raise InputError(
                f"{needed[1]}: not BERT weights ({len(absent)} missing, e.g. {absent[0]})"
            )
        model.load_state_dict({k: state[k] for k in own}, assign=True)
        self.model = model
        self.tokenizer = Tokenizer.from_file(str(needed[2]))
        self.tokenizer.no_truncation()
        self.tokenizer.enable_padding(pad_id=cfg.pad_token_id)
        self.max_length, self.identity, self.dim = max_length, identity, cfg.hidden_size
        self.freeze()

    def encode(self, texts: list[str]) -> Encoded:
        """list of B prompts → tokens (B, L, D), mask (B, L)."""
        if any(not text.strip() for text in texts):
            raise InputError("empty prompt: give some text, or leave it out for the null condition")
        encodings = self.tokenizer.encode_batch(texts)
        lengths = [sum(e.attention_mask) for e in encodings]
        if max(lengths) > self.max_length:
            longest = lengths.index(max(lengths))
            logger.warning(
                "prompt of %d tokens truncated to %d: %r",
                max(lengths),
                self.max_length,
                texts[longest][:80],
            )
            self.tokenizer.enable_truncation(self.max_length)
            encodings = self.tokenizer.encode_batch(texts)
            self.tokenizer.no_truncation()
        ids = torch.tensor([e.ids for e in encodings], device=self.device)  # (B, L)
        mask = torch.tensor([e.attention_mask for e in encodings], device=self.device)
        hidden = self.model(ids, mask)  # (B, L, D)
        return Encoded(hidden.to(self.dtype), mask.bool())
