"""The trained network of a stage: the UNet plus the trainable parts of the condition encoders."""

from __future__ import annotations

import torch
from torch import nn

from tia2v.conditions import STAGE_MODALITIES, Conditions
from tia2v.config import ExperimentConfig, ModelConfig
from tia2v.encoders import Conditioner
from tia2v.encoders.base import FrozenEncoder
from tia2v.models.layout import lowres_view
from tia2v.models.unet import build_model, freeze_spatial


def stage_model(cfg: ExperimentConfig, stage: str) -> tuple[ModelConfig, int]:
    """The architecture and frame size of a stage."""
    if stage == "refiner":
        return cfg.refiner.model, cfg.data.image_size * cfg.refiner.scale
    return cfg.model, cfg.data.image_size


class TIA2VNetwork(nn.Module):
    """UNet (content, motion or refiner) + Conditioner. Frozen pretrained encoders are never saved.

    Args:
        cfg: the experiment config.
        stage: "content", "motion" or "refiner" (``cfg.refiner.model`` at
            ``cfg.refiner.scale``× the resolution, text only).
        student: the few-step student of that stage's model: the same UNet with the guidance
            scales as an input (``tia2v.training.distill``).
    """

    def __init__(self, cfg: ExperimentConfig, stage: str, student: bool = False):
        super().__init__()
        self.stage, self.student = stage, student
        model_cfg, size = stage_model(cfg, stage)
        lowres = stage == "refiner" and cfg.refiner.lowres_channels
        self.unet = build_model(
            model_cfg, size, stage, cfg.diffusion.learn_sigma, lowres, guidance_input=student
        )
        # The refiner's low-resolution input is its clip seen at 1/scale (0: not used).
        self.lowres_scale = cfg.refiner.scale if lowres else 0
        self.conditioner = Conditioner(cfg, STAGE_MODALITIES[stage], model_cfg.context_dim)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        cond: Conditions | dict,
        keep: dict[str, torch.Tensor] | None = None,
        guidance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, C, F, H, W); cond: Conditions, or a training batch to encode here (inside
        forward, so that distributed training sees the trainable encoders used; a refiner with
        ``refiner.lowres_channels`` gets the batch video's low-resolution view); guidance:
        (B, 3) scales of a student."""
        if isinstance(cond, dict):
            batch = cond
            cond = self.conditioner.conditions(batch)
            if self.lowres_scale:
                cond.lowres = lowres_view(batch["video"], self.lowres_scale)
        return self.unet(x, timesteps, cond, keep, guidance)

    def saved_state(self, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """What a checkpoint holds: the UNet and the trainable encoder parts (not the frozen
        encoders)."""
        state = self.state_dict() if state is None else state
        keep = {f"conditioner.{k}" for k in self.conditioner.trainable_state_dict()}
        return {k: v for k, v in state.items() if k.startswith("unet.") or k in keep}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        """Loads ``saved_state`` output strictly (frozen encoders keep their pretrained weights)."""
        result = self.load_state_dict(state, strict=False)
        missing = set(result.missing_keys) & set(self.saved_state())  # frozen ones: not saved
        unexpected = set(result.unexpected_keys)
        if missing or unexpected:
            raise KeyError(
                f"weights do not match the model: "
                f"{len(missing)} missing (e.g. {sorted(missing)[:1]}), "
                f"{len(unexpected)} unexpected (e.g. {sorted(unexpected)[:1]})"
            )

    def freeze_spatial(self) -> None:
        """Motion stage: only temporal layers and the audio encoder train."""
        freeze_spatial(self.unet)
        for name, parameter in self.conditioner.named_parameters():
            top = name.split(".")[0]
            module = getattr(self.conditioner, top)
            parameter.requires_grad_(
                top in ("audio", "audio_proj") and not isinstance(module, FrozenEncoder)
            )
