"""Fréchet distances (FVD, FID) on feature networks loaded from local TorchScript files.

The files are those the StyleGAN-V (FVD) and StyleGAN2-ADA (FID) metric code uses:
- I3D ``i3d_torchscript.pt``: ``net(videos, rescale=False, resize=True, return_features=True)``
  with videos float32 (N, 3, T, 224, 224) in [−1, 1] → (N, 400); frames are resized (shorter
  side to 224, bilinear) and centre-cropped first, as StyleGAN-V does.
- Inception ``inception-2015-12-05.pt``: ``net(images, return_features=True)`` with uint8
  images (N, 3, H, W) → (N, 2048) pool features; the network resizes to 299 itself.
FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}), with symmetric PSD square
roots (eigendecompositions in float64), which stay real and stable where ``sqrtm`` of the
non-symmetric product does not.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tia2v.assets import locate
from tia2v.errors import InputError


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    root = _psd_sqrt(sigma1)
    covmean_trace = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sigma2 @ root), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * covmean_trace)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_of_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*statistics(a), *statistics(b))


def load_network(
    path: str | Path | None, hint: str, device: str | torch.device = "cpu"
) -> torch.jit.ScriptModule | None:
    """The TorchScript feature network on ``device``, or None when no path is configured."""
    if not path:
        return None
    path = Path(locate(str(path)))
    if not path.is_file():
        raise InputError(f"{path}: no such feature network file (expected {hint})")
    try:
        with warnings.catch_warnings():  # the metric files are TorchScript by contract
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a TorchScript file ({str(exc).splitlines()[0]})") from exc


def i3d_input(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """uint8 (F, H, W, 3) → float32 (1, 3, F, size, size) in [−1, 1], StyleGAN-V style."""
    video = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255  # (F, 3, H, W)
    height, width = video.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, int(np.ceil(height * scale))), max(size, int(np.ceil(width * scale)))
    video = F.interpolate(video, (new_h, new_w), mode="bilinear", align_corners=False)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    video = video[..., top : top + size, left : left + size]
    return (video * 2 - 1).permute(1, 0, 2, 3)[None].contiguous()


@torch.no_grad()
def i3d_features(net, frames: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """(D,): the video's I3D features, computed on ``device`` (where ``net`` is)."""
    video = i3d_input(frames).to(device)  # (1, 3, F, 224, 224)
    return net(video, rescale=False, resize=True, return_features=True).cpu().numpy()[0]


@torch.no_grad()
def inception_features(net, frames: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """(F, D): every frame's pool features, computed on ``device`` (where ``net`` is)."""
    images = (
        torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).contiguous()
    )  # uint8 (F, 3, H, W)
    return net(images.to(device), return_features=True).cpu().numpy()
