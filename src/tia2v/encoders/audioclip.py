"""AudioCLIP (Guzhov et al. 2022): its audio head (44.1 kHz audio → its 1024-d space) and its
image tower (CLIP's ResNet-50), our implementations loading the official
``AudioCLIP-Full-Training.pt`` (its ``audio.*`` and ``visual.*`` tensors and
``logit_scale_ai``) with ``weights_only``. The original's CLIP-audio score compares the two.

Front end: the waveform in [−1, 1] is read as AudioCLIP reads 16-bit audio (×32768, then its
own linear map of [−32768, 32767] onto [−1, 1]), cut into frames of ``win_length`` samples every
``hop_length`` (zero-padded at both ends so the last frame fits), each multiplied by the
periodic Blackman–Harris window and zero-padded to ``n_fft``. A trainable complex filter bank
(FBSP) maps each frame to n_fft/2 + 1 bins: bin k has the weights
√fb_k · s_k(t)^m_k · e^(−i·fc_k·t), t = π·linspace(−1, 1, n_fft), s_k(t) = sinc(fb_k·t/m_k),
divided by √n_fft. The first 3·⌊bins/3⌋ bins are split into three bands, stacked as three
channels of a power spectrogram in dB (10·log10 |X|², 1e−18 where |X|² = 0).

Network: a ResNeXt-50 (32×4d) whose stages are each multiplied by a sigmoid attention map of
their input (max-pooled to the stage's output size, a depthwise then a pointwise conv and a
BatchNorm), then average pooling gated the same way, then a linear layer to 1024.

Image tower: CLIP's modified ResNet-50: a three-conv stem and a 2×2 average pool; bottlenecks
that downsample by average pooling after their 3×3 conv (and before their shortcut's 1×1);
attention pooling (the mean token, with learned positions, attends over the 7×7 grid; 32 heads)
to 1024. Frames are resized (bicubic) and centre-cropped to 224 and given CLIP's normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tia2v.errors import InputError

EPS = 1e-8
LOG10_FLOOR = 1e-18
# kernel and padding of the five attention gates (after stages 1–4, and after pooling)
GATES = (((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 1), (1, 0)), ((1, 5), (0, 2)), ((3, 5), (1, 2)))


@dataclass(frozen=True)
class AudioClipConfig:
    """The audio head's shape; the defaults are the official checkpoint's."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 561
    win_length: int = 1654
    layers: tuple[int, ...] = (3, 4, 6, 3)
    stem_width: int = 64
    groups: int = 32
    width_per_group: int = 4
    embed_dim: int = 1024

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1


def blackman_harris(length: int) -> torch.Tensor:
    """The periodic (FFT) 4-term Blackman–Harris window."""
    n = torch.arange(length, dtype=torch.float64) * (2 * math.pi / length)
    window = 0.35875 - 0.48829 * n.cos() + 0.14128 * (2 * n).cos() - 0.01168 * (3 * n).cos()
    return window.float()


class FilterBank(nn.Module):
    """FBSP: frames (…, n_fft) → complex spectrum (…, bins) as real and imaginary parts."""

    def __init__(self, bins: int):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(bins))
        self.fb = nn.Parameter(torch.ones(bins))
        self.fc = nn.Parameter(torch.arange(bins, dtype=torch.float32))

    def weights(self, n_fft: int, dtype: torch.dtype) -> torch.Tensor:
        """(bins, n_fft) complex."""
        t = math.pi * torch.linspace(-1.0, 1.0, n_fft, dtype=dtype, device=self.m.device) + EPS
        m, fb, fc = (p.to(dtype)[:, None] for p in (self.m, self.fb, self.fc))
        x = fb * t / (m + EPS)
        sinc = torch.where(x == 0, torch.ones_like(x), torch.sin(x) / x)  # (bins, n_fft), real
        # sinc^m of a real base: |sinc|^m, with phase m·π where the base is negative
        envelope = torch.polar(sinc.abs() ** m, m * torch.atan2(torch.zeros_like(sinc), sinc))
        kernel = torch.polar(torch.ones_like(t), -fc * t)  # e^(−i·fc·t)
        return fb.sqrt() * envelope * kernel / math.sqrt(n_fft)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.weights(frames.shape[-1], frames.dtype)
        return F.linear(frames, weights.real), F.linear(frames, weights.imag)


class Gate(nn.Module):
    """A stage's attention: max-pool its input to the output's size, depthwise conv, pointwise
    conv, BatchNorm, sigmoid."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], padding: tuple[int, int]):
        super().__init__()
        self.conv_depth = nn.Conv2d(cin, cin, kernel, padding=padding, groups=cin)
        self.conv_point = nn.Conv2d(cin, cout, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = F.adaptive_max_pool2d(x, size)
        return torch.sigmoid(self.bn(self.conv_point(self.conv_depth(x))))


class Bottleneck(nn.Module):
    """ResNeXt bottleneck: 1×1, grouped 3×3 (with the stride), 1×1 ×4, + shortcut."""

    def __init__(self, cin: int, planes: int, stride: int, cfg: AudioClipConfig):
        super().__init__()
        width = int(planes * cfg.width_per_group / 64) * cfg.groups
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=cfg.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class AudioClipAudio(nn.Module):
    """ESResNeXt-fbsp: (N, S) audio in [−1, 1] at ``cfg.sample_rate`` → (N, embed_dim).

    Module names follow the official checkpoint's ``audio.*`` keys."""

    def __init__(self, cfg: AudioClipConfig = AudioClipConfig()):
        super().__init__()
        self.cfg = cfg
        self.fbsp = FilterBank(cfg.bins)
        self.register_buffer("window", blackman_harris(cfg.win_length))
        stem = cfg.stem_width
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        widths, cin = [], stem
        for i, blocks in enumerate(cfg.layers):
            planes = stem * 2**i
            stage = [Bottleneck(cin, planes, 1 if i == 0 else 2, cfg)]
            stage += [Bottleneck(planes * 4, planes, 1, cfg) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            widths.append((cin, planes * 4))
            cin = planes * 4
        widths.append((cin, cin))
        for i, ((gin, gout), (kernel, padding)) in enumerate(zip(widths, GATES, strict=True)):
            setattr(self, f"att{i + 1}", Gate(gin, gout, kernel, padding))
        self.fc = nn.Linear(cin, cfg.embed_dim)

    def frames(self, audio: torch.Tensor) -> torch.Tensor:
        """(N, S) → windowed frames (N, T, n_fft)."""
        cfg, length = self.cfg, audio.shape[-1]
        count = (
            1
            if length <= cfg.win_length
            else 1 + math.ceil((length - cfg.win_length) / cfg.hop_length)
        )
        missing = max(0, (count - 1) * cfg.hop_length + cfg.win_length - length)
        audio = F.pad(audio, (missing // 2, missing - missing // 2))
        frames = audio.unfold(-1, cfg.win_length, cfg.hop_length)[:, :count] * self.window
        extra = cfg.n_fft - cfg.win_length
        return F.pad(frames, (extra // 2, extra - extra // 2))

    def log_power(self, audio: torch.Tensor) -> torch.Tensor:
        """(N, S) → three-band power spectrogram in dB (N, 3, bins // 3, T)."""
        real, imag = self.fbsp(self.frames(audio))  # (N, T, bins) each
        band = self.cfg.bins // 3
        power = (real**2 + imag**2)[..., : 3 * band]  # (N, T, 3·band)
        power = power.transpose(1, 2).unflatten(1, (3, band))  # (N, 3, band, T)
        power = torch.where(power > 0, power, torch.full_like(power, LOG10_FLOOR))
        return 10 * torch.log10(power)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = (audio.float() * 32768.0 + 32768.0) * (2.0 / 65535.0) - 1.0  # AudioCLIP's scaling
        x = self.log_power(x)
        x = F.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in range(1, 5):
            out = getattr(self, f"layer{i}")(x)
            x = out * getattr(self, f"att{i}")(x, out.shape[-2:])
        pooled = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        x = (pooled * self.att5(x, (1, 1))).flatten(1)  # (N, C)
        return self.fc(x)  # (N, embed_dim)


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageBottleneck(nn.Module):
    """CLIP's bottleneck: 1×1, 3×3, [avg-pool], 1×1 ×4; shortcut [avg-pool] 1×1 BN."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride > 1 or cin != planes * 4:
            self.downsample = nn.Module()  # keys "0" (conv) and "1" (BN), as CLIP's
            self.downsample.add_module("0", nn.Conv2d(cin, planes * 4, 1, bias=False))
            self.downsample.add_module("1", nn.BatchNorm2d(planes * 4))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.stride) if self.stride > 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.pool(torch.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        shortcut = x
        if self.downsample is not None:
            conv, norm = getattr(self.downsample, "0"), getattr(self.downsample, "1")
            shortcut = norm(conv(self.pool(x)))
        return torch.relu(out + shortcut)


class AttentionPool(nn.Module):
    """The mean token (with the grid, plus learned positions) attends over the grid."""

    def __init__(self, grid: int, width: int, heads: int, out_dim: int):
        super().__init__()
        self.heads = heads
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.k_proj, self.q_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.c_proj = nn.Linear(width, width), nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → (N, out_dim)."""
        tokens = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding  # (N, HW+1, C)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (N, H, L, d)

        q = heads(self.q_proj(tokens[:, :1]))
        k, v = heads(self.k_proj(tokens)), heads(self.v_proj(tokens))
        out = F.scaled_dot_product_attention(q, k, v)  # (N, H, 1, d)
        return self.c_proj(out.transpose(1, 2).flatten(2)[:, 0])


class AudioClipImage(nn.Module):
    """CLIP's modified ResNet-50, AudioCLIP's ``visual``: (N, 3, 224, 224) → (N, 1024)."""

    def __init__(self, layers=(3, 4, 6, 3), width: int = 64, out_dim: int = 1024, size: int = 224):
        super().__init__()
        self.size = size
        half = width // 2
        self.conv1 = nn.Conv2d(3, half, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        cin = width
        for i, blocks in enumerate(layers):
            planes = width * 2**i
            stage = [ImageBottleneck(cin, planes, 1 if i == 0 else 2)]
            stage += [ImageBottleneck(planes * 4, planes, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = planes * 4
        self.attnpool = AttentionPool(size // 32, cin, width * 32 // 64, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = torch.relu(norm(conv(x)))
        x = F.avg_pool2d(x, 2)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.attnpool(x)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) → (N, 3, size, size): the shorter side resized to ``size``
        (bicubic), centre-cropped, CLIP's normalisation."""
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        height, width = x.shape[-2:]
        scale = self.size / min(height, width)
        shape = (max(self.size, round(height * scale)), max(self.size, round(width * scale)))
        x = F.interpolate(x, size=shape, mode="bicubic", align_corners=False)
        top, left = (shape[0] - self.size) // 2, (shape[1] - self.size) // 2
        x = x[..., top : top + self.size, left : left + self.size]
        mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


class AudioClip(nn.Module):
    """The audio head, the image tower (when loaded with it) and the audio–image logit scale of
    an AudioCLIP checkpoint."""

    dim = AudioClipConfig.embed_dim
    sample_rate = AudioClipConfig.sample_rate

    def __init__(
        self, cfg: AudioClipConfig = AudioClipConfig(), visual: AudioClipImage | None = None
    ):
        super().__init__()
        self.audio = AudioClipAudio(cfg)
        self.visual = visual
        self.logit_scale_ai = nn.Parameter(torch.tensor(math.log(100.0)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(N, S) in [−1, 1] at 44.1 kHz → (N, 1024)."""
        return self.audio(audio)

    def logit_scale(self) -> torch.Tensor:
        """The audio–image scale as AudioCLIP applies it: exp, clamped to [1, 100]."""
        return self.logit_scale_ai.exp().clamp(1.0, 100.0)

    @classmethod
    def load(
        cls,
        path: str,
        cfg: AudioClipConfig = AudioClipConfig(),
        visual: AudioClipImage | None = None,
    ) -> AudioClip:
        """The official checkpoint (a state dict of the whole AudioCLIP), its audio head and
        ``logit_scale_ai`` loaded strictly, and the image tower ``visual`` (built empty by the
        caller, e.g. ``AudioClipImage()``) when given; the text tower is not read."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError as exc:
            raise InputError(f"{path}: no such AudioCLIP checkpoint") from exc
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same input error
            raise InputError(f"{path}: not an AudioCLIP checkpoint ({type(exc).__name__})") from exc
        if not isinstance(state, dict):
            raise InputError(f"{path}: not an AudioCLIP checkpoint (no state dict)")
        parts = ("audio.", "visual.") if visual is not None else ("audio.",)
        keep = {k: v for k, v in state.items() if k.startswith(parts) or k == "logit_scale_ai"}
        model = cls(cfg, visual)
        try:
            model.load_state_dict(keep, strict=True)
        except RuntimeError as exc:
            raise InputError(
                f"{path}: weights do not fit AudioCLIP ({str(exc).splitlines()[0]})"
            ) from exc
        return model.eval().requires_grad_(False)
