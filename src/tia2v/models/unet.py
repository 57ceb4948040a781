"""The content UNet (per-frame 2-D) and the motion UNet (+ temporal layers).

One class serves both: ``motion=True`` adds a temporal conv after every ResBlock and a
temporal transformer at every attention site. Module names are shared, so a motion model is
initialised from a content model by name (``load_content_weights``), and at initialisation
it reproduces the content model exactly (the temporal layers end in zero-initialised
projections).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tia2v.conditions import STAGE_MODALITIES, STAGES, Conditions, has_temporal_layers
from tia2v.config import ModelConfig
from tia2v.models.attention import FrameTokens, SpatialTransformer, TemporalTransformer
from tia2v.models.blocks import (
    Downsample,
    ResBlock,
    TemporalConv,
    Upsample,
    group_norm,
    timestep_embedding,
    zero_module,
)
from tia2v.models.guidance_embedding import GuidanceEmbedding
from tia2v.models.layout import batch_to_frames, frames_to_batch, repeat_per_frame
from tia2v.models.text_embedding import FrameTextEmbedding, PooledTextEmbedding, pool_text


class UNetBlock(nn.Module):
    """ResBlock → [temporal conv] → [spatial transformer] → [temporal transformer] → [resample]."""

    def __init__(self, res=None, temporal_conv=None, attn=None, temporal_attn=None, resample=None):
        super().__init__()
        self.res, self.temporal_conv, self.attn = res, temporal_conv, attn
        self.temporal_attn, self.resample = temporal_attn, resample

    def forward(self, h: torch.Tensor, emb: torch.Tensor, tokens: FrameTokens) -> torch.Tensor:
        """h: (B*F, C, H, W), emb: (B*F, E) → (B*F, C', H', W')."""
        if self.res is not None:
            h = self.res(h, emb)
        if self.temporal_conv is not None:
            h = self.temporal_conv(h, tokens.num_frames)
        if self.attn is not None:
            h = self.attn(h, tokens)
        if self.temporal_attn is not None:
            h = self.temporal_attn(h, tokens)
        if self.resample is not None:
            h = self.resample(h)
        return h


class UNet(nn.Module):
    """ε (and variance) prediction for videos (B, C, F, H, W); frames and size come from the input.

    Args:
        cfg: architecture.
        image_size: frame size the attention resolutions refer to.
        motion: add the temporal layers.
        audio: add the audio condition (default: with the temporal layers; the refiner has
            temporal layers and no audio).
        learn_sigma: also output the variance interpolation (C more channels).
        lowres_channels: every frame also gets the upsampled low-resolution video as input
            channels (a refiner's ``refiner.lowres_channels``).
        guidance_input: the guidance scales are an input (a distilled student,
            ``tia2v.models.guidance_embedding``).
    """

    def __init__(
        self,
        cfg: ModelConfig,
        image_size: int,
        motion: bool = False,
        audio: bool | None = None,
        learn_sigma: bool = True,
        lowres_channels: bool = False,
        guidance_input: bool = False,
    ):
        super().__init__()
        audio = motion if audio is None else audio
        self.cfg, self.motion, self.audio, self.lowres_channels = (
            cfg,
            motion,
            audio,
            lowres_channels,
        )
        mc, groups, emb_dim = cfg.model_channels, cfg.norm_groups, 4 * cfg.model_channels
        self.time_embed = nn.Sequential(
            nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        if cfg.pooled_text:
            self.text_embed = PooledTextEmbedding(cfg.context_dim, emb_dim)
        if guidance_input:
            self.guidance_embed = GuidanceEmbedding(mc, emb_dim)
        if cfg.frame_text:
            self.frame_text_embed = FrameTextEmbedding(cfg.context_dim, mc, emb_dim)
        self.null_text = nn.Parameter(torch.randn(1, cfg.context_dim) * 0.02)
        self.null_image = nn.Parameter(torch.randn(1, cfg.context_dim) * 0.02)
        if audio:
            self.null_audio = nn.Parameter(torch.randn(1, cfg.context_dim) * 0.02)

        def block(
            in_ch: int,
            out_ch: int,
            size: int,
            resample: nn.Module | None = None,
            attend: bool | None = None,
        ) -> UNetBlock:
            attend = size in cfg.attention_resolutions if attend is None else attend
            depth, heads, ctx = cfg.transformer_depth, cfg.num_heads, cfg.context_dim
            return UNetBlock(
                res=ResBlock(in_ch, out_ch, emb_dim, cfg.dropout, cfg.use_scale_shift_norm, groups),
                temporal_conv=TemporalConv(out_ch, cfg.temporal_dropout, groups)
                if motion
                else None,
                attn=SpatialTransformer(out_ch, heads, ctx, depth, groups, cfg.cross_attention)
                if attend
                else None,
                temporal_attn=TemporalTransformer(out_ch, heads, ctx, depth, groups, audio)
                if attend and motion
                else None,
                resample=resample,
            )

        # With first_frame_channels every frame also sees the clean first frame and a channel
        # saying whether it is given (zeros and 0 when the image condition is off).
        extra = cfg.in_channels + 1 if cfg.first_frame_channels else 0
        extra += cfg.in_channels if lowres_channels else 0
        self.conv_in = nn.Conv2d(cfg.in_channels + extra, mc, 3, padding=1)
        self.input_blocks, skips, ch, size = nn.ModuleList(), [mc], mc, image_size
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                self.input_blocks.append(block(ch, mc * mult, size))
                ch = mc * mult
                skips.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(UNetBlock(resample=Downsample(ch)))
                skips.append(ch)
                size //= 2
        # Middle: ResBlock + attention, then a plain ResBlock (as the original's middle block).
        self.middle_blocks = nn.ModuleList(
            [block(ch, ch, size, attend=True), block(ch, ch, size, attend=False)]
        )
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for index in range(cfg.num_res_blocks + 1):
                up = level > 0 and index == cfg.num_res_blocks
                self.output_blocks.append(
                    block(ch + skips.pop(), mc * mult, size, Upsample(mc * mult) if up else None)
                )
                ch = mc * mult
                size = size * 2 if up else size
        out_channels = cfg.in_channels * (2 if learn_sigma else 1)
        self.out = nn.Sequential(
            group_norm(ch, groups),
            nn.SiLU(),
            zero_module(nn.Conv2d(ch, out_channels, 3, padding=1)),
        )

    # ------------------------------------------------------------------------------------------
    # Conditions with learned nulls.

    def resolve(
        self,
        cond: Conditions,
        batch: int,
        num_frames: int,
        keep: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Concrete tokens, with the null embedding wherever a modality is absent or not kept.

        Args:
            cond: the batch's conditions.
            batch, num_frames: B and F of the video.
            keep: per modality, a (B,) bool tensor; False replaces that sample's tokens by null.

        Returns:
            text (B, Lt, D), text_mask (B, Lt), image (B, Li, D), audio (B, F, La, D) or None
            for a content model.
        """
        keep = keep or {}
        device = self.null_text.device

        def nulls(param: torch.Tensor, like: torch.Tensor | None, *shape: int) -> torch.Tensor:
            """``param`` expanded to (*shape, D), or to ``like``'s shape where given."""
            return param.expand(*(like.shape[:-1] if like is not None else shape), param.shape[-1])

        def kept(name: str, tokens: torch.Tensor, null_tokens: torch.Tensor) -> torch.Tensor:
            if name not in keep:
                return tokens
            mask = keep[name].view(-1, *([1] * (tokens.dim() - 1)))  # (B, 1, ...)
            return torch.where(mask, tokens, null_tokens)

        if cond.text is None:
            text = nulls(self.null_text, None, batch, 1)
            text_mask = torch.ones(batch, 1, dtype=torch.bool, device=device)
        else:
            text = kept("text", cond.text, nulls(self.null_text, cond.text))
            text_mask = cond.text_mask
            if text_mask is None:
                text_mask = torch.ones(cond.text.shape[:2], dtype=torch.bool, device=device)
            null_mask = torch.zeros_like(text_mask)
            null_mask[:, 0] = True  # a dropped prompt is one null token
            text_mask = kept("text", text_mask, null_mask)
        image = nulls(self.null_image, cond.image, batch, 1)
        if cond.image is not None:
            image = kept("image", cond.image, image)
        if not self.audio:
            return text, text_mask, image, None
        audio = nulls(self.null_audio, cond.audio, batch, num_frames, 1)
        if cond.audio is not None:
            audio = kept("audio", cond.audio, audio)
        return text, text_mask, image, audio

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        cond: Conditions,
        keep: dict[str, torch.Tensor] | None = None,
        guidance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, C, F, H, W), timesteps: (B,) float (the network's scale), guidance: (B, 3)
        scales of a student → (B, C_out, F, H, W)."""
        batch, _, num_frames, _, _ = x.shape
        text, text_mask, image, audio = self.resolve(cond, batch, num_frames, keep)
        image_given = torch.full((batch,), cond.image is not None, device=x.device)
        if cond.image is not None and "image" in (keep or {}):
            image_given = keep["image"].to(x.device)
        tokens = FrameTokens(
            num_frames=num_frames,
            text=repeat_per_frame(text, num_frames),  # (B*F, Lt, D)
            text_mask=repeat_per_frame(text_mask, num_frames),  # (B*F, Lt)
            image=repeat_per_frame(image, num_frames),  # (B*F, Li, D)
            image_given=image_given.repeat_interleave(num_frames),  # (B*F,)
            audio=None if audio is None else audio.flatten(0, 1),  # (B*F, La, D)
        )
        emb = self.time_embed(timestep_embedding(timesteps, self.cfg.model_channels))  # (B, E)
        if self.cfg.pooled_text or self.cfg.frame_text:
            pooled = pool_text(text, text_mask)  # (B, D)
        if self.cfg.pooled_text:
            emb = emb + self.text_embed(pooled)
        if hasattr(self, "guidance_embed"):
            if guidance is None:
                raise ValueError("a student network needs its guidance scales")
            emb = emb + self.guidance_embed(guidance.to(emb.dtype))
        emb = repeat_per_frame(emb, num_frames)  # (B*F, E)
        if self.cfg.frame_text:
            emb = emb + self.frame_text_embed(pooled, num_frames)  # (B*F, E)

        if self.cfg.first_frame_channels:
            x = torch.cat([x, self.first_frame_planes(cond, keep, x)], dim=1)  # (B, 2C+1, F, H, W)
        if self.lowres_channels:
            if cond.lowres is None:
                raise ValueError("this refiner (refiner.lowres_channels) needs cond.lowres")
            x = torch.cat([x, cond.lowres.to(x.dtype)], dim=1)  # (B, C'+C, F, H, W)
        frames = frames_to_batch(x)  # (B*F, C', H, W)
        h = self.conv_in(frames)  # (B*F, mc, H, W)
        skips = [h]
        for module in self.input_blocks:
            h = self._run(module, h, emb, tokens)
            skips.append(h)
        for module in self.middle_blocks:
            h = self._run(module, h, emb, tokens)
        for module in self.output_blocks:
            h = self._run(module, torch.cat([h, skips.pop()], dim=1), emb, tokens)
        return batch_to_frames(self.out(h), num_frames)  # (B, C_out, F, H, W)

    def first_frame_planes(
        self, cond: Conditions, keep: dict | None, x: torch.Tensor
    ) -> torch.Tensor:
        """(B, C+1, F, H, W): the clean first frame on every frame, and a given/not-given plane."""
        batch, channels, num_frames, height, width = x.shape
        given = torch.zeros(batch, dtype=x.dtype, device=x.device)
        image = torch.zeros(batch, channels, height, width, dtype=x.dtype, device=x.device)
        if cond.first_frame is not None:
            given = torch.ones_like(given)
            if keep is not None and "image" in keep:
                given = keep["image"].to(x.dtype)
            image = cond.first_frame.to(x.dtype) * given.view(-1, 1, 1, 1)
        planes = torch.cat([image, given.view(-1, 1, 1, 1).expand(-1, 1, height, width)], dim=1)
        return planes[:, :, None].expand(-1, -1, num_frames, -1, -1)

    def _run(
        self, module: UNetBlock, h: torch.Tensor, emb: torch.Tensor, tokens: FrameTokens
    ) -> torch.Tensor:
        if self.cfg.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(module, h, emb, tokens, use_reentrant=False)
        return module(h, emb, tokens)


# ----------------------------------------------------------------------------------------------
# Building a motion model from a content model.


def is_temporal(name: str) -> bool:
    """Parameters that exist only in the motion model: temporal layers and the audio null."""
    return name == "null_audio" or any(part.startswith("temporal_") for part in name.split("."))


def starts_as_identity(name: str) -> bool:
    """Parameters a source model may lack: their modules are no-ops at initialisation (the
    temporal layers, the pooled-text and frame-text paths, a student's guidance input), so the
    model starts as the one it was loaded from."""
    return is_temporal(name) or name.startswith(
        ("text_embed.", "frame_text_embed.", "guidance_embed.")
    )


@dataclass
class LoadReport:
    """Which tensors a weight transfer copied, which it left new, which it ignored."""

    loaded: list[str]
    new: list[str]
    unused: list[str]

    def __str__(self) -> str:
        return f"loaded {len(self.loaded)} tensors, {len(self.new)} new, {len(self.unused)} unused"


def load_content_weights(motion: UNet, content_state: dict[str, torch.Tensor]) -> LoadReport:
    """Copies a content model's weights into a motion model by module name.

    Raises:
        KeyError: a spatial tensor of the motion model is missing from ``content_state``.
        ValueError: a tensor's shape differs (the two configs do not match).
    """
    own = motion.state_dict()
    missing = [name for name in own if name not in content_state and not starts_as_identity(name)]
    if missing:
        raise KeyError(f"content weights lack {len(missing)} spatial tensors, e.g. {missing[0]!r}")
    for name, tensor in content_state.items():
        if name in own and own[name].shape != tensor.shape:
            raise ValueError(
                f"{name}: content shape {tuple(tensor.shape)} != motion {tuple(own[name].shape)}"
            )
    loaded = [name for name in content_state if name in own]
    motion.load_state_dict({name: content_state[name] for name in loaded}, strict=False)
    return LoadReport(
        loaded=loaded,
        new=[name for name in own if name not in content_state],
        unused=[name for name in content_state if name not in own],
    )


def freeze_spatial(model: UNet) -> list[str]:
    """Freezes every non-temporal parameter; returns the names still trainable."""
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(is_temporal(name))
        if is_temporal(name):
            trainable.append(name)
    return trainable


def build_model(
    cfg: ModelConfig,
    image_size: int,
    stage: str,
    learn_sigma: bool = True,
    lowres_channels: bool = False,
    guidance_input: bool = False,
) -> UNet:
    """The UNet of a stage: content (2-D), motion (+ temporal layers and audio) or refiner
    (+ temporal layers, text only: the SHR stage); a student takes the guidance scales too."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    return UNet(
        cfg,
        image_size,
        motion=has_temporal_layers(stage),
        audio="audio" in STAGE_MODALITIES[stage],
        learn_sigma=learn_sigma,
        lowres_channels=lowres_channels,
        guidance_input=guidance_input,
    )
