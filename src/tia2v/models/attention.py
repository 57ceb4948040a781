"""Attention blocks: the spatial transformer (cross-frame self-attention, cross-attention
over text + image) and the temporal transformer (frame self-attention with a temporal
position encoding, frame-aligned audio cross-attention, text cross-attention)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tia2v.models.blocks import group_norm, timestep_embedding, zero_module
from tia2v.models.layout import batch_to_sequences, sequences_to_batch


@dataclass
class FrameTokens:
    """The condition tokens every frame's attention sites read, repeated per frame.

    Attributes:
        num_frames: F.
        text: (B*F, Lt, D); text_mask: (B*F, Lt) bool, True for real tokens.
        image: (B*F, Li, D), the null embedding where the image is absent.
        image_given: (B*F,) bool, False where the image is absent or dropped.
        audio: (B*F, La, D) frame f's audio tokens, or None (no audio condition).
    """

    num_frames: int
    text: torch.Tensor
    text_mask: torch.Tensor
    image: torch.Tensor
    image_given: torch.Tensor
    audio: torch.Tensor | None


class Attention(nn.Module):
    """Multi-head attention through ``scaled_dot_product_attention`` (q, k, v without bias)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        context_dim = context_dim or dim
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (N, Lq, dim), context: (N, Lk, context_dim), mask: (N, Lk) bool keep
        → (N, Lq, dim)."""
        context = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (
            t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v)
        )  # (N, h, L, d)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (N, 1, 1, Lk)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (N, h, Lq, d)
        return self.to_out(out.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """GEGLU feed-forward: Linear(dim → 2·4dim), value·GELU(gate), Linear(4dim → dim)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.proj_in = nn.Linear(dim, 2 * mult * dim)
        self.proj_out = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(value * F.gelu(gate))


class SpatialTransformerBlock(nn.Module):
    """Cross-frame self-attention, cross-attention over text and image, feed-forward.

    ``cross_attention`` "joint": one softmax over the concatenated ``[text ; image]`` tokens,
    one residual. "separate" (the original's ``attention_ti.BasicTransformerBlock``): the same
    weights applied to the text and to the image tokens apart, each added to its own copy of
    the residual stream, x ← (x + attn(x, text)) + (x + attn(x, image)); where the image is
    absent or dropped its branch is left out, x ← x + attn(x, text).
    """

    def __init__(self, dim: int, heads: int, context_dim: int, cross_attention: str = "joint"):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads, context_dim)
        self.ff = FeedForward(dim)
        self.separate = cross_attention == "separate"

    def forward(self, x: torch.Tensor, tokens: FrameTokens) -> torch.Tensor:
        """x: (B*F, HW, C) → (B*F, HW, C)."""
        h = self.norm1(x)
        # Cross-frame self-attention: every frame's queries read frame 0 of the same video.
        first = h.unflatten(0, (-1, tokens.num_frames))[:, :1]  # (B, 1, HW, C)
        first = first.expand(-1, tokens.num_frames, -1, -1).flatten(0, 1)  # (B*F, HW, C)
        x = x + self.self_attn(h, first)
        h = self.norm2(x)
        if self.separate:
            text = self.cross_attn(h, tokens.text, tokens.text_mask)  # (B*F, HW, C)
            image = x + self.cross_attn(h, tokens.image)  # (B*F, HW, C)
            x = x + text + tokens.image_given.to(x.dtype).view(-1, 1, 1) * image
        else:
            context = torch.cat([tokens.text, tokens.image], dim=1)  # (B*F, Lt+Li, D)
            image_mask = torch.ones(tokens.image.shape[:2], dtype=torch.bool, device=x.device)
            context_mask = torch.cat([tokens.text_mask, image_mask], dim=1)  # (B*F, Lt+Li)
            x = x + self.cross_attn(h, context, context_mask)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """GN → 1×1 conv → transformer blocks over the H·W tokens of each frame → zero 1×1 conv, + x."""

    def __init__(
        self,
        channels: int,
        heads: int,
        context_dim: int,
        depth: int,
        groups: int,
        cross_attention: str = "joint",
    ):
        super().__init__()
        self.norm = group_norm(channels, groups, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.blocks = nn.ModuleList(
            SpatialTransformerBlock(channels, heads, context_dim, cross_attention)
            for _ in range(depth)
        )
        self.proj_out = zero_module(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor, tokens: FrameTokens) -> torch.Tensor:
        """x: (B*F, C, H, W) → (B*F, C, H, W)."""
        _, _, height, width = x.shape
        h = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)  # (B*F, HW, C)
        for block in self.blocks:
            h = block(h, tokens)
        h = h.transpose(1, 2).unflatten(2, (height, width))  # (B*F, C, H, W)
        return x + self.proj_out(h)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int, audio: bool = True):
        super().__init__()
        self.norm1, self.norm3, self.norm4 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim) if audio else None
        self.frame_attn = Attention(dim, heads)
        self.audio_attn = Attention(dim, heads, context_dim) if audio else None
        self.text_attn = Attention(dim, heads, context_dim)
        self.ff = FeedForward(dim)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.norm2 is None:  # older refiner files carry an audio norm that was never used
            state_dict.pop(f"{prefix}norm2.weight", None)
            state_dict.pop(f"{prefix}norm2.bias", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self,
        x: torch.Tensor,
        size: tuple[int, int, int],
        audio: torch.Tensor | None,
        text: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> torch.Tensor:
        """x: (B*F, HW, C); size: (F, H, W); audio: (B*F, La, D) or None; text: (B*F, Lt, D)."""
        num_frames, height, width = size
        # Self-attention across the frames of each pixel, with a temporal position encoding.
        seq = batch_to_sequences(x.transpose(1, 2).unflatten(2, (height, width)), num_frames)
        position = timestep_embedding(torch.arange(num_frames, device=x.device), seq.shape[-1])
        h = self.norm1(seq + position.to(seq.dtype))  # (B*H*W, F, C)
        seq = seq + self.frame_attn(h)
        x = sequences_to_batch(seq, num_frames, height, width).flatten(2).transpose(1, 2)
        if self.audio_attn is not None:
            # Frame-aligned audio: the pixels of frame f attend to frame f's audio tokens only.
            x = x + self.audio_attn(self.norm2(x), audio)  # (B*F, HW, C)
        x = x + self.text_attn(self.norm3(x), text, text_mask)
        return x + self.ff(self.norm4(x))


class TemporalTransformer(nn.Module):
    """GN → linear → temporal transformer blocks → zero linear, + x. Identity at initialisation.
    Without ``audio`` (the refiner) the blocks have no audio cross-attention."""

    def __init__(
        self,
        channels: int,
        heads: int,
        context_dim: int,
        depth: int,
        groups: int,
        audio: bool = True,
    ):
        super().__init__()
        self.norm = group_norm(channels, groups, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.blocks = nn.ModuleList(
            TemporalTransformerBlock(channels, heads, context_dim, audio) for _ in range(depth)
        )
        self.proj_out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor, tokens: FrameTokens) -> torch.Tensor:
        """x: (B*F, C, H, W) → (B*F, C, H, W)."""
        _, _, height, width = x.shape
        h = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))  # (B*F, HW, C)
        size = (tokens.num_frames, height, width)
        for block in self.blocks:
            h = block(h, size, tokens.audio, tokens.text, tokens.text_mask)
        h = self.proj_out(h).transpose(1, 2).unflatten(2, (height, width))  # (B*F, C, H, W)
        return x + h
