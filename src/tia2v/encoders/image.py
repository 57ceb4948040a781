"""Image (first-frame) encoders: CLIP vision (the paper) and a small trainable patch encoder."""

from __future__ import annotations

import torch
from torch import nn

from tia2v.encoders.base import Encoded, FrozenEncoder, load_pretrained
from tia2v.errors import InputError
from tia2v.frames import resize_center_crop

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, H, W) RGB in [−1, 1] → CLIP input: shorter side to ``size`` (bicubic, antialiased),
    centre crop, normalised by CLIP's mean and std. (B, 3, size, size)."""
    images = resize_center_crop((images.float() + 1) / 2, size, mode="bicubic").clamp(0, 1)
    mean = torch.tensor(CLIP_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


class ClipImageEncoder(FrozenEncoder):
    """CLIP ViT image embedding: the projected pooled token (1 × proj_dim, as the paper), or
    with ``patch_tokens`` every token through the final norm and projection (1+N × proj_dim)."""

    def __init__(self, model, patch_tokens: bool = False, identity: str = ""):
        super().__init__()
        self.model, self.patch_tokens, self.identity = model, patch_tokens, identity
        self.dim = model.config.projection_dim
        self.size = (
            model.config.vision_config.image_size
            if hasattr(model.config, "vision_config")
            else model.config.image_size
        )
        self.freeze()

    @classmethod
    def from_pretrained(cls, path: str, patch_tokens: bool = False) -> ClipImageEncoder:
        from transformers import CLIPVisionModelWithProjection

        (model,) = load_pretrained(path, "a CLIP vision model", CLIPVisionModelWithProjection)
        return cls(
            model,
            patch_tokens,
            identity=f"clip-vision:{path}:{'patches' if patch_tokens else 'pooled'}",
        )

    def encode(self, images: torch.Tensor) -> Encoded:
        """(B, 3, H, W) in [−1, 1] → tokens (B, 1 or 1+N, proj_dim)."""
        pixels = clip_preprocess(images, self.size).to(self.dtype)
        out = self.model(pixel_values=pixels)
        if not self.patch_tokens:
            return Encoded.dense(out.image_embeds[:, None])  # (B, 1, proj_dim)
        hidden = self.model.vision_model.post_layernorm(out.last_hidden_state)
        return Encoded.dense(self.model.visual_projection(hidden))  # (B, 1+N, proj_dim)


class PatchImageEncoder(nn.Module):
    """Trainable first-frame encoder: non-overlapping patches → linear → + position → MLP.

    (B, 3, S, S) in [−1, 1] → (B, (S/p)², dim). Trained with the content model.
    """

    frozen = False
    identity = "patch"

    def __init__(self, image_size: int, patch_size: int, dim: int):
        super().__init__()
        if image_size % patch_size:
            raise InputError(
                f"encoders.image_patch_size={patch_size} does not divide "
                f"the image size {image_size}"
            )
        self.dim = dim
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.position = nn.Parameter(torch.randn(1, (image_size // patch_size) ** 2, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, images: torch.Tensor) -> Encoded:
        tokens = self.proj(images).flatten(2).transpose(1, 2) + self.position  # (B, N, dim)
        tokens = tokens + self.mlp(self.norm(tokens))
        return Encoded.dense(tokens)
