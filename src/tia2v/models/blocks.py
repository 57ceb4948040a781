"""Convolutional building blocks: timestep embedding, ResBlock, resampling, temporal conv."""

from __future__ import annotations

import math

import torch
from torch import nn

from tia2v.models.layout import batch_to_frames, frames_to_batch


def zero_module(module: nn.Module) -> nn.Module:
    """Zero-initialises a layer, so the block it ends starts as the identity (residual)."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


def group_norm(channels: int, groups: int, eps: float = 1e-5) -> nn.GroupNorm:
    """GroupNorm with at most ``groups`` groups, fewer when ``channels`` is not divisible."""
    return nn.GroupNorm(math.gcd(groups, channels), channels, eps=eps)


def timestep_embedding(
    timesteps: torch.Tensor, dim: int, max_period: float = 10000.0
) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: (N,) → (N, dim), [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=timesteps.device) / half)
    args = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    """GN → SiLU → conv, timestep scale-shift (or add), GN → SiLU → dropout → zero conv, + skip."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_dim: int,
        dropout: float,
        use_scale_shift_norm: bool,
        groups: int,
    ):
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            group_norm(in_channels, groups),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_dim, 2 * out_channels if use_scale_shift_norm else out_channels),
        )
        self.out_norm = group_norm(out_channels, groups)
        self.out_layers = nn.Sequential(
            nn.SiLU(),
            nn.Dropout(dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W), emb: (N, E) → (N, C_out, H, W)."""
        h = self.in_layers(x)  # (N, C_out, H, W)
        emb_out = self.emb_layers(emb)[:, :, None, None]  # (N, 2*C_out or C_out, 1, 1)
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_norm(h) * (1 + scale) + shift
        else:
            h = self.out_norm(h + emb_out)
        return self.skip(x) + self.out_layers(h)


class Downsample(nn.Module):
    """Strided 3×3 conv: (N, C, H, W) → (N, C, H/2, W/2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest ×2 then 3×3 conv: (N, C, H, W) → (N, C, 2H, 2W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class TemporalConv(nn.Module):
    """Four GN → SiLU → (dropout) → conv over time (kernel 3×1×1) stages, last one zero-init.

    The output is added to the input, so at initialisation the block is the identity.
    """

    def __init__(self, channels: int, dropout: float, groups: int):
        super().__init__()
        stages = []
        for index in range(4):
            conv = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))
            stages.append(
                nn.Sequential(
                    group_norm(channels, groups),
                    nn.SiLU(),
                    nn.Dropout(dropout if index > 0 else 0.0),
                    zero_module(conv) if index == 3 else conv,
                )
            )
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """x: (B*F, C, H, W) → (B*F, C, H, W)."""
        video = batch_to_frames(x, num_frames)  # (B, C, F, H, W)
        batch, channels, frames, height, width = video.shape
        # A 3×1×1 kernel over (F, H, W) is a 3×1 kernel over (F, H·W): the same weights run as
        # a 2-D convolution, which CPUs do several times faster than a 3-D one.
        h = video.reshape(batch, channels, frames, height * width)  # (B, C, F, H*W)
        for norm, act, dropout, conv in self.stages:
            h = dropout(act(norm(h)))
            h = nn.functional.conv2d(h, conv.weight.squeeze(-1), conv.bias, padding=(1, 0))
        return x + frames_to_batch(h.reshape(batch, channels, frames, height, width))
