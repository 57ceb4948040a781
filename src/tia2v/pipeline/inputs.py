"""Request inputs for the pipeline: the first frame and the conditioning audio."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from tia2v.errors import InputError
from tia2v.frames import resize_center_crop
from tia2v.io import load_audio, read_video, resample, to_mono
from tia2v.io.audio import VIDEO_SUFFIXES

logger = logging.getLogger(__name__)


MIN_IMAGE_SIZE = 8


def to_rgb(image) -> np.ndarray:
    """A PIL image of any mode → uint8 RGB (H, W, 3); 16- and 32-bit greyscale are scaled
    down from their own range (a plain convert("RGB") clips them to white)."""
    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def load_image(image, size: int) -> torch.Tensor:
    """A path (image, or a video's first frame), PIL image, uint8/float array (H, W, 3) or
    tensor (3, H, W) in [−1, 1] →
    (1, 3, size, size) in [−1, 1], resized and centre-cropped (warns when the aspect differs)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, str | Path) and Path(image).suffix.lower() in VIDEO_SUFFIXES:
        image = read_video(image, with_audio=False).frames[0]  # a video's first frame
    elif isinstance(image, str | Path):
        try:
            with Image.open(image) as opened:
                image = to_rgb(opened)
        except Image.DecompressionBombError as exc:
            raise InputError(f"{image}: image too large to decode ({exc})") from exc
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
            # PIL reports a broken PNG chunk as a SyntaxError
            raise InputError(f"{image}: cannot decode image ({exc.__class__.__name__})") from exc
    if isinstance(image, Image.Image):
        image = to_rgb(image)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise InputError(f"image array must be (H, W, 3), got {image.shape}")
        scale = 255.0 if image.dtype == np.uint8 else 1.0
        image = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / scale * 2 - 1
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise InputError(
            "image must be a path, a PIL image, an (H, W, 3) array or a (3, H, W) tensor"
        )
    height, width = image.shape[-2:]
    if min(height, width) < MIN_IMAGE_SIZE:
        raise InputError(
            f"image is {width}x{height}: at least {MIN_IMAGE_SIZE} px on each side is needed"
        )
    if abs(height / width - 1.0) > 0.01:
        logger.warning(
            "image is %dx%d, not square: it is centre-cropped to %dx%d", width, height, size, size
        )
    return resize_center_crop(((image + 1) / 2)[None].float(), size) * 2 - 1


def audio_samples(audio, audio_rate: int | None, rate: int) -> np.ndarray:
    """A path or an array ((S,) or (C, S) with ``audio_rate``) → mono float32 at ``rate``."""
    if isinstance(audio, str | Path):
        samples = load_audio(audio, rate)
    else:
        if audio_rate is None:
            raise InputError("audio given as an array needs audio_rate")
        array = audio.numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
        samples = resample(to_mono(array.astype(np.float32)), int(audio_rate), rate)
    if not np.isfinite(samples).all():
        name = audio if isinstance(audio, str | Path) else "audio array"
        raise InputError(f"{name}: the audio has non-finite samples (NaN or infinity)")
    return samples


def prepare_audio(audio, audio_rate: int | None, rate: int, seconds: float) -> np.ndarray:
    """``audio_samples`` of exactly ``seconds``: padded with silence (and a warning) when
    shorter, trimmed when longer."""
    samples = audio_samples(audio, audio_rate, rate)
    length = round(seconds * rate)
    if len(samples) < length:
        logger.warning(
            "audio lasts %.2f s, shorter than the clip's %.2f s: padded with silence",
            len(samples) / rate,
            seconds,
        )
        samples = np.pad(samples, (0, length - len(samples)))
    return samples[:length].astype(np.float32)
