"""Helpers shared by the tests: configs, tiny random networks, the ffmpeg binary."""

from __future__ import annotations

import subprocess

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from tia2v.conditions import Conditions
from tia2v.config import apply_overrides, resolve_config
from tia2v.encoders.beats import BEATs, BEATsConfig

D = resolve_config("tiny").model.context_dim


def tiny_cfg(root, run_dir, *overrides):
    return apply_overrides(
        resolve_config("tiny"), [f"data.root={root}", f"train.run_dir={run_dir}", *overrides]
    )


def ffmpeg(*args: str) -> None:
    """Runs the ffmpeg binary that the imageio-ffmpeg test dependency ships (no root needed)."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def conditions(batch: int, frames: int, seed: int = 0) -> Conditions:
    g = torch.Generator().manual_seed(seed)
    return Conditions(
        text=torch.randn(batch, 5, D, generator=g),
        text_mask=torch.tensor([[True] * 5, [True] * 3 + [False] * 2][:batch]),
        image=torch.randn(batch, 1, D, generator=g),
        audio=torch.randn(batch, frames, 2, D, generator=g),
    )


def randomize_zero_layers(model: torch.nn.Module) -> None:
    """Gives every parameter a non-zero value, so zero-initialised outputs stop hiding paths."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.abs().max() == 0:
                parameter.normal_(0, 0.1)


TINY_BEATS = BEATsConfig(
    embed_dim=24,
    encoder_layers=2,
    encoder_embed_dim=32,
    encoder_ffn_embed_dim=64,
    encoder_attention_heads=4,
    conv_pos=16,
    conv_pos_groups=4,
    num_buckets=32,
    max_distance=64,
)


def random_beats(cfg: BEATsConfig = TINY_BEATS) -> BEATs:
    torch.manual_seed(0)
    model = BEATs(cfg)
    with torch.no_grad():  # no zero or one initialisations left: every path matters
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


def tiny_clip_vision_config(projection_dim: int = 16, layers: int = 2) -> CLIPVisionConfig:
    """A CLIP vision tower of width 32 on 32 px images in 8 px patches."""
    return CLIPVisionConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        projection_dim=projection_dim,
    )


def tiny_clip_vision(projection_dim: int = 16, layers: int = 2) -> CLIPVisionModelWithProjection:
    torch.manual_seed(0)
    return CLIPVisionModelWithProjection(tiny_clip_vision_config(projection_dim, layers))


def manual_attention(module, heads, x, context, mask=None):
    """Multi-head softmax attention written out with einsum (no SDPA)."""
    q, k, v = module.to_q(x), module.to_k(context), module.to_v(context)
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v))  # (N, h, L, d)
    scores = torch.einsum("nhid,nhjd->nhij", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], -torch.inf)
    out = torch.einsum("nhij,nhjd->nhid", scores.softmax(-1), v)
    return module.to_out(out.transpose(1, 2).flatten(2))
