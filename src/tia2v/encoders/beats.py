"""BEATs (Chen et al. 2022), inference only, loading the official checkpoint format.

An official checkpoint is a torch file ``{"cfg": dict, "model": state_dict}``; it is read with
``weights_only=True``. The architecture, from the paper and the MIT-licensed reference:
Kaldi log-mel fbank (128 bins, 25 ms / 10 ms at 16 kHz) of the waveform ×2¹⁵, normalised by
(x − 15.41663) / (2·6.55582); 16×16 patches → LayerNorm → Linear to the encoder width; a
convolutional position embedding (weight-normalised grouped Conv1d + GELU); a transformer
(post-LN with deep-norm residual scaling, or pre-LN) whose self-attention adds a T5-style
bucketed relative position bias, computed once and gated per layer by the query (GRU-style
gate). Tokens are ordered time-major: (time patch, frequency patch).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tia2v.errors import InputError

FBANK_MEAN, FBANK_STD = 15.41663, 6.55582
SAMPLE_RATE = 16000
WINDOW, HOP, FFT = 400, 160, 512  # 25 ms, 10 ms, next power of two


@dataclass
class BEATsConfig:
    """The checkpoint's ``cfg`` keys this implementation uses (others are ignored)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = True
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True
    finetuned_model: bool = False
    predictor_class: int = 527

    @classmethod
    def from_dict(cls, cfg: dict) -> BEATsConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


# ----------------------------------------------------------------------------------------------
# Kaldi-compatible fbank in torch (batched).


@functools.lru_cache(maxsize=4)
def _mel_filters(num_mel_bins: int) -> torch.Tensor:
    """Kaldi's mel filter bank for the 512-point FFT at 16 kHz: triangles over 20 Hz – 8 kHz,
    evenly spaced and triangular on the mel scale 1127·ln(1 + f/700), unnormalised (with 128
    bands the lowest ones fall between FFT bins and stay empty). → (257, num_mel_bins)."""

    def mel(hertz: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(hertz, np.float64) / 700.0)

    edges = np.linspace(mel(20.0), mel(SAMPLE_RATE / 2), num_mel_bins + 2)  # (M + 2,)
    bins = mel(np.linspace(0, SAMPLE_RATE // 2, FFT // 2 + 1))  # (257,) FFT bins in mel
    offsets = edges[None, :] - bins[:, None]  # (257, M + 2)
    widths = np.diff(edges)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling)))


def kaldi_fbank(waveform: torch.Tensor, num_mel_bins: int = 128) -> torch.Tensor:
    """Log-mel filterbank as Kaldi computes it (povey window, no dither, snip edges).

    Args:
        waveform: (N, S) at 16 kHz, in Kaldi's 16-bit scale (float audio × 2¹⁵).
        num_mel_bins: number of mel bands.

    Returns:
        (N, T, num_mel_bins) with T = 1 + (S − 400) // 160.
    """
    if waveform.shape[-1] < WINDOW:
        raise InputError(
            f"audio window of {waveform.shape[-1]} samples is shorter than one 25 ms fbank frame"
        )
    # float64 inside: a pure tone leaves bands ~1e-10 below its peak, where float32 FFT
    # rounding would move the log by tenths.
    frames = waveform.double().unfold(-1, WINDOW, HOP)  # (N, T, 400)
    frames = frames - frames.mean(dim=-1, keepdim=True)  # remove DC offset
    emphasised = frames - 0.97 * torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    n = torch.arange(WINDOW, dtype=torch.float64)
    povey = (0.5 - 0.5 * torch.cos(2 * math.pi * n / (WINDOW - 1))) ** 0.85
    spectrum = torch.fft.rfft(emphasised * povey.to(frames.device), n=FFT).abs() ** 2  # (N, T, 257)
    mel = spectrum @ _mel_filters(num_mel_bins).to(frames.device)
    return torch.log(mel.clamp(min=torch.finfo(torch.float32).eps)).float()


# ----------------------------------------------------------------------------------------------
# The network.


def relative_position_bucket(
    relative: torch.Tensor, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """T5-style bidirectional buckets: exact below num_buckets/4, logarithmic up to max_distance."""
    num_buckets //= 2
    buckets = (relative > 0).long() * num_buckets
    distance = relative.abs()
    max_exact = num_buckets // 2
    large = (
        max_exact
        + (
            torch.log(distance.float().clamp(min=1) / max_exact)
            / math.log(max_distance / max_exact)
            * (num_buckets - max_exact)
        ).long()
    )
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


class PositionalConv(nn.Module):
    """Weight-normalised grouped Conv1d (weight = g·v/‖v‖, norm over all but the kernel axis)."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.kernel, self.groups = kernel, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(dim, dim // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, L) → (N, C, L)."""
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        out = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        return out[..., :-1] if self.kernel % 2 == 0 else out  # "same" length


class SelfAttention(nn.Module):
    def __init__(self, cfg: BEATsConfig, with_bias_table: bool):
        super().__init__()
        dim, self.heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.cfg = cfg
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        if with_bias_table:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, self.heads)
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(dim // self.heads, 8)
            self.grep_a = nn.Parameter(torch.ones(1, self.heads, 1, 1))

    def position_bias(self, length: int) -> torch.Tensor:
        """(H, L, L) bias from the bucketed key − query offsets."""
        position = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = relative_position_bucket(
            position[None, :] - position[:, None], self.cfg.num_buckets, self.cfg.max_distance
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (N, L, C); bias: (H, L, L) from the first layer, or None → (N, L, C), bias."""
        q, k, v = (
            p(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        if bias is None and hasattr(self, "relative_attention_bias"):
            bias = self.position_bias(x.shape[1])
        mask = None
        if bias is not None:
            mask = bias[None]  # (1, H, L, L)
            if self.cfg.gru_rel_pos:
                gates = torch.sigmoid(
                    self.grep_linear(q).unflatten(-1, (2, 4)).sum(-1)
                )  # (N, H, L, 2)
                gate_a, gate_b = gates.chunk(2, dim=-1)  # (N, H, L, 1) each
                mask = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * mask  # (N, H, L, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, H, L, d)
        return self.out_proj(out.transpose(1, 2).flatten(2)), bias


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BEATsConfig, with_bias_table: bool):
        super().__init__()
        if cfg.activation_fn != "gelu":
            raise InputError(
                f"BEATs activation_fn={cfg.activation_fn!r} is not supported (only gelu)"
            )
        dim = cfg.encoder_embed_dim
        self.pre_norm = cfg.layer_norm_first
        self.alpha = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0
        self.self_attn = SelfAttention(cfg, with_bias_table)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = (
            nn.Linear(dim, cfg.encoder_ffn_embed_dim),
            nn.Linear(cfg.encoder_ffn_embed_dim, dim),
        )
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_norm:
            attn, bias = self.self_attn(self.self_attn_layer_norm(x), bias)
            x = x + attn
            return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x)))), bias
        attn, bias = self.self_attn(x, bias)
        x = self.self_attn_layer_norm(x * self.alpha + attn)
        return self.final_layer_norm(x * self.alpha + self.fc2(F.gelu(self.fc1(x)))), bias


class Encoder(nn.Module):
    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        self.pre_norm = cfg.layer_norm_first
        dim = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(PositionalConv(dim, cfg.conv_pos, cfg.conv_pos_groups))
        self.layer_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            EncoderLayer(cfg, with_bias_table=cfg.relative_position_embedding and i == 0)
            for i in range(cfg.encoder_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, C) → (N, L, C)."""
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2))).transpose(1, 2)
        if not self.pre_norm:
            x = self.layer_norm(x)
        bias = None  # computed by the first layer, shared by all
        for layer in self.layers:
            x, bias = layer(x, bias)
        return self.layer_norm(x) if self.pre_norm else x


class BEATs(nn.Module):
    """Waveform → BEATs tokens (last layer), ordered (time patch, frequency patch)."""

    def __init__(self, cfg: BEATsConfig):
        super().__init__()
        self.cfg = cfg
        patch = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, patch, stride=patch, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        if cfg.embed_dim != cfg.encoder_embed_dim:
            self.post_extract_proj = nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
        self.encoder = Encoder(cfg)
        if cfg.finetuned_model:
            self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)

    def fbank(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, S) float audio in [−1, 1] at 16 kHz → normalised fbank (N, T, 128)."""
        return (kaldi_fbank(waveform * 2**15, 128) - FBANK_MEAN) / (2 * FBANK_STD)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, S) → (N, T/16 · 128/16, C); needs at least 16 fbank frames (0.175 s)."""
        fbank = self.fbank(waveform)  # (N, T, 128)
        patch = self.cfg.input_patch_size
        if fbank.shape[1] < patch:
            seconds = (WINDOW + (patch - 1) * HOP) / SAMPLE_RATE
            raise InputError(
                f"BEATs needs an audio window of at least {seconds:.3f} s ({patch} fbank frames); "
                f"got {waveform.shape[-1] / SAMPLE_RATE:.3f} s (raise data.audio_window)"
            )
        features = self.patch_embedding(fbank[:, None])  # (N, E, T/16, 8)
        features = self.layer_norm(features.flatten(2).transpose(1, 2))  # (N, T/16·8, E)
        if hasattr(self, "post_extract_proj"):
            features = self.post_extract_proj(features)
        return self.encoder(features)

    # ------------------------------------------------------------------------------------------
    # The official file format.

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict named as the official code names it (the bias table under every layer)."""
        state = self.state_dict()
        key = "encoder.layers.0.self_attn.relative_attention_bias.weight"
        if key in state:
            for i in range(1, self.cfg.encoder_layers):
                state[key.replace("layers.0.", f"layers.{i}.")] = state[key]
        return state

    def save(self, path: str | Path) -> None:
        torch.save({"cfg": asdict(self.cfg), "model": self.official_state_dict()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> BEATs:
        """Loads an official BEATs checkpoint (``weights_only=True``; no pickled code runs)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such BEATs checkpoint")
        try:
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same input error
            raise InputError(
                f"{path}: not a readable BEATs checkpoint ({type(exc).__name__})"
            ) from exc
        if not isinstance(checkpoint, dict) or "cfg" not in checkpoint or "model" not in checkpoint:
            raise InputError(f"{path}: a BEATs checkpoint holds 'cfg' and 'model'")
        model = cls(BEATsConfig.from_dict(checkpoint["cfg"]))
        state = {k: v for k, v in checkpoint["model"].items() if not _is_shared_copy(k)}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(
                f"{path}: BEATs weights do not match its cfg "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        return model.eval()


def _is_shared_copy(key: str) -> bool:
    """The official file repeats layer 0's bias table under every layer; we keep one."""
    return key.endswith("self_attn.relative_attention_bias.weight") and not key.startswith(
        "encoder.layers.0."
    )
