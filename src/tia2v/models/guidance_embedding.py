"""The guidance scales as an input: what makes a few-step student steerable.

A consistency-distilled student is trained to reproduce its teacher's *guided* sampling in a
single network call, so the guidance scales (text, image, audio) become an input of the
network instead of a mix of several calls. Each scale gets a sinusoidal embedding (as a
timestep), the three are concatenated and an MLP maps them to the timestep embedding's width;
the result is added to the timestep embedding. The last layer is zero-initialised: a fresh
student computes exactly its teacher's conditional output.
"""

from __future__ import annotations

import torch
from torch import nn

from tia2v.conditions import MODALITIES
from tia2v.models.blocks import timestep_embedding, zero_module

SCALE_RESOLUTION = 100.0  # a scale s is embedded as the "timestep" 100·s: 0.01 apart is visible


class GuidanceEmbedding(nn.Module):
    """Guidance scales (B, 3), in the order text, image, audio → (B, E)."""

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(
            nn.Linear(len(MODALITIES) * channels, emb_dim),
            nn.SiLU(),
            zero_module(nn.Linear(emb_dim, emb_dim)),
        )

    def forward(self, scales: torch.Tensor) -> torch.Tensor:
        features = [
            timestep_embedding(scales[:, k] * SCALE_RESOLUTION, self.channels)  # (B, channels)
            for k in range(scales.shape[1])
        ]
        return self.mlp(torch.cat(features, dim=1))  # (B, E)
