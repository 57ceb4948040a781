"""Paired frame metrics between a real and a generated video: PSNR and SSIM."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from tia2v.metrics.toy import psnr


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03) over frames and channels.

    a, b: (F, H, W, 3) uint8 of equal shape.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    sigma = (0, 1.5, 1.5, 0)  # blur inside each frame and channel only

    def blur(z):
        return gaussian_filter(z, sigma, truncate=3.5)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())


__all__ = ["psnr", "ssim"]
