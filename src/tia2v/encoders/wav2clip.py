"""wav2clip (Wu et al. 2022): audio → CLIP's 512-d space. Our implementation of its network,
loading the official ``ResNet_CX.ckpt`` (``tia2v download wav2clip``) with ``weights_only``.

A window of 16 kHz audio → power spectrogram (512-point periodic Hann STFT, hop 353, centred,
reflect-padded) → log(· + 1e−7) → standardised → a ResNet-18 with one input channel, average
pooled to 512 → a two-layer MLP (512 → 512 → 512, ReLU between). The official code standardises
with the mean and standard deviation of everything in the batch it is given (``joint``); as a
per-frame condition each window is standardised alone, so that frame k's audio reaches frame
k's embedding only.

The checkpoint's ``state_dict`` holds ``audio_encoder.*`` (the ResNet, with its STFT window and
an unused classifier) and ``audio_transform.sequential.{0,3}.*`` (the MLP).
"""

from __future__ import annotations

import torch
from torch import nn

from tia2v.errors import InputError

N_FFT, HOP = 512, 353
STAGES = (64, 128, 256, 512)  # ResNet-18 widths, two blocks each


class _Block(nn.Module):
    """ResNet basic block: 3×3 conv-BN-ReLU, 3×3 conv-BN, + shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class _Spectrogram(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(N, S) → power spectrogram (N, 1, 257, T)."""
        spec = torch.stft(
            audio,
            N_FFT,
            HOP,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec.abs().pow(2)[:, None]


class _AudioResNet(nn.Module):
    def __init__(self, classes: int = 1000):
        super().__init__()
        self.spectrogram = _Spectrogram()
        self.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, *STAGES)
        for i in range(4):
            stride = 1 if i == 0 else 2
            blocks = [
                _Block(widths[i], widths[i + 1], stride),
                _Block(widths[i + 1], widths[i + 1], 1),
            ]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(512, classes)  # in the checkpoint; the embedding is taken before it

    def forward(self, audio: torch.Tensor, joint: bool) -> torch.Tensor:
        """(N, S) → (N, 512)."""
        x = torch.log(self.spectrogram(audio) + 1e-7)  # (N, 1, 257, T)
        if joint:
            x = (x - x.mean()) / (x.std() + 1e-9)
        else:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-9)
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return x.mean(dim=(2, 3))  # adaptive average pool to 1×1


class _Projection(nn.Module):
    def __init__(self):
        super().__init__()
        self.sequential = nn.Sequential(
            nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.1), nn.Linear(512, 512)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)


class Wav2Clip(nn.Module):
    """The wav2clip network: ``audio_encoder`` (ResNet-18) + ``audio_transform`` (MLP)."""

    sample_rate = 16000
    dim = 512

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.audio_encoder = _AudioResNet(classes)
        self.audio_transform = _Projection()

    def forward(self, audio: torch.Tensor, joint: bool = True) -> torch.Tensor:
        """(N, S) 16 kHz → (N, 512) in CLIP's space; ``joint``: standardise over the batch
        (the official code), else each window alone."""
        return self.audio_transform(self.audio_encoder(audio, joint))

    @classmethod
    def load(cls, path: str) -> Wav2Clip:
        """The official checkpoint (``ResNet_CX.ckpt``), loaded strictly."""
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            state = checkpoint["state_dict"]
        except FileNotFoundError as exc:
            raise InputError(f"{path}: no such wav2clip checkpoint") from exc
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same input error
            raise InputError(f"{path}: not a wav2clip checkpoint ({type(exc).__name__})") from exc
        keep = {
            k: v
            for k, v in state.items()
            if k.split(".")[0] in ("audio_encoder", "audio_transform")
        }
        classes = (
            keep["audio_encoder.fc.weight"].shape[0] if "audio_encoder.fc.weight" in keep else 1000
        )
        model = cls(classes)
        try:
            model.load_state_dict(keep, strict=True)
        except RuntimeError as exc:
            raise InputError(
                f"{path}: weights do not fit wav2clip ({str(exc).splitlines()[0]})"
            ) from exc
        return model.eval()
