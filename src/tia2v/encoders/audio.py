"""Audio encoders: per-frame windows (B, F, W) → tokens (B, F, La, D).

``beats`` (the paper's, frozen, 16 kHz), ``wav2clip`` (frozen, 16 kHz, one token per frame),
``audioclip`` (AudioCLIP's audio head, frozen, 44.1 kHz, one token per frame),
``clap`` (transformers ClapAudioModel, frozen, 48 kHz) and the default ``mel``: a Kaldi
log-mel of each window → a small trainable conv net.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from tia2v.encoders.audioclip import AudioClip
from tia2v.encoders.base import FrozenEncoder, load_pretrained
from tia2v.encoders.beats import BEATs, kaldi_fbank
from tia2v.encoders.wav2clip import Wav2Clip

MEL_BINS = 64


def pool_tokens(tokens: torch.Tensor, count: int) -> torch.Tensor:
    """(N, L, D) → (N, count, D) by adaptive average pooling over L."""
    return F.adaptive_avg_pool1d(tokens.transpose(1, 2), count).transpose(1, 2)


class BEATsAudioEncoder(FrozenEncoder):
    """BEATs tokens per frame window: 8 frequency tokens, averaged over its time patches."""

    sample_rate = 16000

    def __init__(self, model: BEATs, identity: str = ""):
        super().__init__()
        self.model, self.identity = model, identity
        self.dim = model.cfg.encoder_embed_dim
        self.freq_tokens = 128 // model.cfg.input_patch_size
        self.freeze()

    @classmethod
    def from_file(cls, path: str) -> BEATsAudioEncoder:
        stat = os.stat(path) if os.path.isfile(path) else None
        identity = f"beats:{path}:{stat.st_size if stat else 0}"
        return cls(BEATs.load(path), identity)

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, F, W) at 16 kHz → (B, F, 8, C)."""
        batch, frames, _ = windows.shape
        tokens = self.model(windows.flatten(0, 1).to(self.dtype))  # (B·F, T/16·8, C)
        tokens = tokens.unflatten(1, (-1, self.freq_tokens)).mean(dim=1)  # (B·F, 8, C)
        return tokens.unflatten(0, (batch, frames))


class Wav2ClipAudioEncoder(FrozenEncoder):
    """wav2clip's embedding of each frame's window, standardised alone: one token per frame."""

    sample_rate = Wav2Clip.sample_rate

    def __init__(self, model: Wav2Clip, identity: str = ""):
        super().__init__()
        self.model, self.identity, self.dim = model, identity, Wav2Clip.dim
        self.freeze()

    @classmethod
    def from_file(cls, path: str) -> Wav2ClipAudioEncoder:
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        return cls(Wav2Clip.load(path), f"wav2clip:{path}:{size}")

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, F, W) at 16 kHz → (B, F, 1, 512)."""
        batch, frames, _ = windows.shape
        embeddings = self.model(windows.flatten(0, 1).to(self.dtype), joint=False)  # (B·F, 512)
        return embeddings.unflatten(0, (batch, frames))[:, :, None]


class AudioClipAudioEncoder(FrozenEncoder):
    """AudioCLIP's audio embedding of each frame's window (44.1 kHz): one token per frame."""

    sample_rate = AudioClip.sample_rate

    def __init__(self, model: AudioClip, identity: str = ""):
        super().__init__()
        self.model, self.identity, self.dim = model, identity, AudioClip.dim
        self.freeze()

    @classmethod
    def from_file(cls, path: str) -> AudioClipAudioEncoder:
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        return cls(AudioClip.load(path), f"audioclip:{path}:{size}")

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, F, W) at 44.1 kHz → (B, F, 1, 1024)."""
        batch, frames, _ = windows.shape
        embeddings = self.model(windows.flatten(0, 1).to(self.dtype))  # (B·F, 1024)
        return embeddings.unflatten(0, (batch, frames))[:, :, None]


class ClapAudioEncoder(FrozenEncoder):
    """transformers ClapAudioModel (48 kHz): last hidden state pooled to ``num_tokens`` tokens."""

    sample_rate = 48000

    def __init__(self, model, feature_extractor, num_tokens: int, identity: str = ""):
        super().__init__()
        self.model, self.feature_extractor = model, feature_extractor
        self.num_tokens, self.identity = num_tokens, identity
        self.dim = model.config.hidden_size
        self.freeze()

    @classmethod
    def from_pretrained(cls, path: str, num_tokens: int) -> ClapAudioEncoder:
        from transformers import ClapAudioModel, ClapFeatureExtractor

        model, extractor = load_pretrained(
            path, "a CLAP audio model", ClapAudioModel, ClapFeatureExtractor
        )
        return cls(model, extractor, num_tokens, identity=f"clap:{path}:{num_tokens}")

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, F, W) at 48 kHz → (B, F, num_tokens, D)."""
        batch, frames, _ = windows.shape
        features = self.feature_extractor(
            list(windows.flatten(0, 1).float().cpu().numpy()),
            sampling_rate=self.sample_rate,
            truncation="rand_trunc",  # one channel; "fusion" needs a fusion model
            padding="repeatpad",
            return_tensors="pt",
        )["input_features"].to(self.device, self.dtype)
        hidden = self.model(input_features=features).last_hidden_state  # (B·F, D, h, w)
        tokens = pool_tokens(hidden.flatten(2).transpose(1, 2), self.num_tokens)  # (B·F, n, D)
        return tokens.unflatten(0, (batch, frames))


class MelAudioEncoder(nn.Module):
    """Trainable default: Kaldi log-mel (64 bands) of each frame's window → conv net → tokens.

    (B, F, W) at 16 kHz → (B, F, num_tokens, dim). Loudness and onset timing survive: the
    log-mel is only shifted and scaled by fixed constants, never normalised per window.
    """

    frozen = False
    identity = "mel"
    sample_rate = 16000

    def __init__(self, dim: int, num_tokens: int, width: int = 64):
        super().__init__()
        self.dim, self.num_tokens = dim, num_tokens
        self.convs = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GELU(),
        )
        self.proj = nn.Linear(width, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = windows.shape
        mel = kaldi_fbank(windows.flatten(0, 1) * 2**15, MEL_BINS)  # (B·F, T, 64)
        mel = (mel - 15.0) / 5.0
        h = self.convs(mel[:, None])  # (B·F, width, T/4, 16)
        h = (
            F.adaptive_avg_pool2d(h, (1, self.num_tokens)).squeeze(2).transpose(1, 2)
        )  # (B·F, n, width)
        return self.norm(self.proj(h)).unflatten(0, (batch, frames))  # (B, F, n, dim)
