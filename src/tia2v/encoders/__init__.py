"""Condition encoders, built by name from ``cfg.encoders``, behind one module: the Conditioner.

| modality | names (default first) | output |
|---|---|---|
| text  | minilm (shipped MiniLM-L6), clip, bert, hf | (B, L, D) + mask |
| image | patch (trainable), clip              | (B, Li, D) |
| audio | mel (trainable), beats, wav2clip, audioclip, clap | (B, F, La, D) |

A frozen encoder whose width differs from ``model.context_dim`` gets a trainable linear
projection; trainable encoders are built at ``context_dim``. Only trainable parameters are
saved with the model (``trainable_state_dict``); frozen ones are loaded by name.
"""

from __future__ import annotations

import torch
from torch import nn

from tia2v.assets import locate
from tia2v.conditions import MODALITIES, Conditions
from tia2v.config import ExperimentConfig
from tia2v.encoders.audio import (
    AudioClipAudioEncoder,
    BEATsAudioEncoder,
    ClapAudioEncoder,
    MelAudioEncoder,
    Wav2ClipAudioEncoder,
)
from tia2v.encoders.base import Encoded, FrozenEncoder
from tia2v.encoders.image import ClipImageEncoder, PatchImageEncoder
from tia2v.encoders.text import build_text_encoder
from tia2v.errors import ConfigError, InputError

IMAGE_PATCH_TOKENS = 4  # patches per side for the trainable image encoder


def build_image_encoder(cfg: ExperimentConfig, context_dim: int | None = None) -> nn.Module:
    enc = cfg.encoders
    if enc.image == "patch":
        size = cfg.data.image_size
        return PatchImageEncoder(
            size, max(1, size // IMAGE_PATCH_TOKENS), context_dim or cfg.model.context_dim
        )
    if enc.image == "clip":
        if not enc.image_path:
            raise InputError(
                "encoders.image_path: the 'clip' image encoder needs a folder or a Hugging Face id"
            )
        return ClipImageEncoder.from_pretrained(locate(enc.image_path))
    raise InputError(f"encoders.image: unknown image encoder {enc.image!r} (choose patch or clip)")


# Pretrained audio encoders: name → (what ``encoders.audio_path`` must name, the loader).
PRETRAINED_AUDIO = {
    "beats": ("a checkpoint file", lambda path, enc: BEATsAudioEncoder.from_file(path)),
    "wav2clip": ("its checkpoint file", lambda path, enc: Wav2ClipAudioEncoder.from_file(path)),
    "audioclip": (
        "its checkpoint file (AudioCLIP-Full-Training.pt)",
        lambda path, enc: AudioClipAudioEncoder.from_file(path),
    ),
    "clap": (
        "a folder or a Hugging Face id",
        lambda path, enc: ClapAudioEncoder.from_pretrained(path, enc.audio_tokens),
    ),
}


def build_audio_encoder(cfg: ExperimentConfig, context_dim: int | None = None) -> nn.Module:
    enc = cfg.encoders
    if enc.audio == "mel":
        encoder = MelAudioEncoder(context_dim or cfg.model.context_dim, enc.audio_tokens)
    elif enc.audio in PRETRAINED_AUDIO:
        needs, load = PRETRAINED_AUDIO[enc.audio]
        if not enc.audio_path:
            raise InputError(f"encoders.audio_path: the '{enc.audio}' audio encoder needs {needs}")
        encoder = load(locate(enc.audio_path), enc)
    else:
        raise InputError(
            f"encoders.audio: unknown audio encoder {enc.audio!r} "
            "(choose mel, beats, wav2clip, audioclip or clap)"
        )
    if encoder.sample_rate != cfg.data.audio_rate:
        raise ConfigError(
            f"data.audio_rate={cfg.data.audio_rate} but the '{enc.audio}' encoder "
            f"expects {encoder.sample_rate} Hz"
        )
    return encoder


def _projection(encoder: nn.Module, context_dim: int) -> nn.Module:
    return nn.Identity() if encoder.dim == context_dim else nn.Linear(encoder.dim, context_dim)


class Conditioner(nn.Module):
    """The encoders (+ projections to the model's context width).

    Args:
        cfg: the experiment config.
        modalities: the encoders to build (text is always built: a stage's table in
            ``tia2v.conditions``).
        context_dim: the network's context width (default ``cfg.model.context_dim``).
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        modalities: tuple[str, ...] = MODALITIES,
        context_dim: int | None = None,
    ):
        super().__init__()
        context_dim = context_dim or cfg.model.context_dim
        self.value_range = cfg.data.value_range
        self.text = build_text_encoder(
            cfg.encoders.text, cfg.encoders.text_path, cfg.encoders.text_max_length
        )
        self.text_proj = _projection(self.text, context_dim)
        if "image" in modalities:
            self.image = build_image_encoder(cfg, context_dim)
            self.image_proj = _projection(self.image, context_dim)
        if "audio" in modalities:
            self.audio = build_audio_encoder(cfg, context_dim)
            self.audio_proj = _projection(self.audio, context_dim)

    def identities(self) -> dict[str, str]:
        """Names of the frozen encoders' weights (the embedding cache is keyed by them)."""
        modules = {
            "text": self.text,
            "image": getattr(self, "image", None),
            "audio": getattr(self, "audio", None),
        }
        return {name: m.identity for name, m in modules.items() if isinstance(m, FrozenEncoder)}

    def encode_text(self, captions: list[str]) -> Encoded:
        raw = self.text(captions)
        return Encoded(self.text_proj(raw.tokens), raw.mask)

    def project_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> Encoded:
        """Cached frozen text tokens → the model's width."""
        return Encoded(self.text_proj(tokens), mask)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in the model's data range (``data.value_range``) → (B, Li, context_dim);
        the encoder itself sees [−1, 1]."""
        return self.image_proj(self.image(images / self.value_range).tokens)

    def encode_audio(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, F, W) → (B, F, La, context_dim)."""
        return self.audio_proj(self.audio(windows))

    def conditions(self, batch: dict) -> Conditions:
        """A training batch → the model's Conditions, from cached tokens where the batch has them.

        Frozen-encoder outputs in the batch (``text_tokens``, ``image_tokens``, ``audio_tokens``,
        from the embedding cache) are only projected; everything else is encoded here.
        """
        if "text_tokens" in batch:
            text = self.project_text(batch["text_tokens"], batch["text_mask"])
        else:
            text = self.encode_text(batch["caption"])
        image = self._batch_tokens(batch, "image", "first_frame", self.encode_image)
        audio = self._batch_tokens(batch, "audio", "audio", self.encode_audio)
        first_frame = batch["first_frame"] if image is not None else None
        return Conditions(
            text=text.tokens, text_mask=text.mask, image=image, audio=audio, first_frame=first_frame
        )

    def _batch_tokens(self, batch: dict, name: str, raw: str, encode) -> torch.Tensor | None:
        """A modality's tokens: its cached frozen tokens projected, else ``batch[raw]`` encoded;
        None when this Conditioner has no encoder for it."""
        if not hasattr(self, name):
            return None
        if f"{name}_tokens" in batch:
            return getattr(self, f"{name}_proj")(batch[f"{name}_tokens"])
        return encode(batch[raw])

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters that are trained and saved with the model (not the frozen encoders)."""
        frozen = [name for name, m in self.named_children() if isinstance(m, FrozenEncoder)]
        return {k: v for k, v in self.state_dict().items() if k.split(".")[0] not in frozen}
