"""The prompt in the timestep embedding, beside the attention sites.

Cross-attention reaches the prompt only where there is attention. Two optional paths give it
to every ResBlock: ``PooledTextEmbedding`` adds the masked mean of the text tokens, projected,
to the timestep embedding (as Imagen does); ``FrameTextEmbedding`` adds, per frame, an MLP of
the pooled prompt beside that frame's position, so what the prompt asks of frame f (how far
the object has moved by then) reaches that frame's blocks. Both end in a zero-initialised
layer: a model trained without them is fine-tuned from its exact output.
"""

from __future__ import annotations

import torch
from torch import nn

from tia2v.models.blocks import timestep_embedding, zero_module


def pool_text(text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """text (B, Lt, D), text_mask (B, Lt) → the mean of the real tokens (B, D)."""
    weights = text_mask.to(text.dtype).unsqueeze(-1)  # (B, Lt, 1)
    return (text * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, D)


class PooledTextEmbedding(nn.Sequential):
    """pooled prompt (B, D) → (B, E), added to the timestep embedding."""

    def __init__(self, context_dim: int, emb_dim: int):
        super().__init__(
            nn.Linear(context_dim, emb_dim), nn.SiLU(), zero_module(nn.Linear(emb_dim, emb_dim))
        )


class FrameTextEmbedding(nn.Sequential):
    """pooled prompt (B, D) and a frame count F → (B*F, E), added to each frame's embedding.

    Args:
        context_dim: D.
        position_dim: width of the sinusoidal frame-position encoding.
        emb_dim: E.
    """

    def __init__(self, context_dim: int, position_dim: int, emb_dim: int):
        super().__init__(
            nn.Linear(context_dim + position_dim, emb_dim),
            nn.SiLU(),
            zero_module(nn.Linear(emb_dim, emb_dim)),
        )
        self.position_dim = position_dim

    def forward(self, pooled: torch.Tensor, num_frames: int) -> torch.Tensor:
        return super().forward(self.pairs(pooled, num_frames))  # (B*F, E)

    def pairs(self, pooled: torch.Tensor, num_frames: int) -> torch.Tensor:
        """pooled (B, D) → (B*F, D+P): the pooled prompt beside each frame's position."""
        frames = torch.arange(num_frames, device=pooled.device)
        position = timestep_embedding(frames, self.position_dim).to(pooled.dtype)  # (F, P)
        pairs = torch.cat(
            [
                pooled[:, None].expand(-1, num_frames, -1),  # (B, F, D)
                position[None].expand(pooled.shape[0], -1, -1),  # (B, F, P)
            ],
            dim=-1,
        )
        return pairs.flatten(0, 1)  # (B*F, D+P)
