"""The encoder interface: every encoder returns tokens (B, L, D) and a mask (B, L).

Frozen encoders (pretrained CLIP, MiniLM, BEATs, CLAP) stay in eval mode with
``requires_grad=False`` and run under ``torch.no_grad()``; they take device and dtype from the
caller (``.to(...)``). Trainable encoders (patch, mel) are ordinary modules trained and saved
with the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tia2v.errors import InputError


@dataclass
class Encoded:
    """tokens: (B, L, D) float; mask: (B, L) bool, True for real tokens."""

    tokens: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def dense(cls, tokens: torch.Tensor) -> Encoded:
        """Every token real."""
        return cls(tokens, torch.ones(tokens.shape[:-1], dtype=torch.bool, device=tokens.device))


class FrozenEncoder(nn.Module):
    """A pretrained encoder that is never trained: eval mode forever, no gradients.

    Subclasses implement ``encode``; calling the module runs it under ``torch.no_grad()``.
    ``identity`` names the weights (for the embedding cache's manifest).
    """

    frozen = True
    identity = ""
    dim = 0

    def freeze(self) -> FrozenEncoder:
        self.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> FrozenEncoder:  # noqa: ARG002 - always eval
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.encode(*args, **kwargs)

    def encode(self, *args, **kwargs):
        raise NotImplementedError


def load_pretrained(path: str, what: str, *classes) -> tuple:
    """``cls.from_pretrained(path)`` for each class (a folder or a Hugging Face id); a missing
    or unreadable model is one InputError line naming the path."""
    try:
        return tuple(cls.from_pretrained(path) for cls in classes)
    except OSError as exc:
        raise InputError(f"{path}: cannot load {what} ({str(exc).splitlines()[0]})") from exc
