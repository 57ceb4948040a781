"""What a network is conditioned on: the modalities, which stage sees which, and the tokens.

| stage   | network                                   | modalities          |
|---------|-------------------------------------------|---------------------|
| content | per-frame 2-D UNet                        | text, image         |
| motion  | content UNet + temporal layers            | text, image, audio  |
| refiner | video UNet at a higher resolution (SHR)   | text                |
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

MODALITIES = ("text", "image", "audio")
STAGE_MODALITIES: dict[str, tuple[str, ...]] = {
    "content": ("text", "image"),
    "motion": ("text", "image", "audio"),
    "refiner": ("text",),
}
STAGES = tuple(STAGE_MODALITIES)


def has_temporal_layers(stage: str) -> bool:
    """Every stage but the per-frame content model runs temporal layers."""
    return stage != "content"


@dataclass
class Conditions:
    """Condition tokens of a batch; None means the modality is absent (its null embedding).

    Attributes:
        text: (B, Lt, D) text tokens; text_mask: (B, Lt) bool, True for real tokens.
        image: (B, Li, D) first-frame tokens.
        audio: (B, F, La, D) audio tokens, La per frame.
        first_frame: (B, C, H, W) the clean first frame in [−1, 1], for models that also
            take it as input channels (``model.first_frame_channels``); part of the image
            condition (dropped with it).
        lowres: (B, C, F, H, W) the upsampled low-resolution video, for a refiner with
            ``refiner.lowres_channels``; never dropped.
    """

    text: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None
    image: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    first_frame: torch.Tensor | None = None
    lowres: torch.Tensor | None = None

    def repeat(self, copies: int) -> Conditions:
        """Every present tensor repeated ``copies`` times along the batch (guidance branches)."""

        def tile(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.repeat(copies, *([1] * (tensor.dim() - 1)))

        return Conditions(**{f.name: tile(getattr(self, f.name)) for f in dataclasses.fields(self)})
