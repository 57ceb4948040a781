"""A generation request: the call's options with the model's defaults filled in, checked."""

from __future__ import annotations

import logging
import math
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import tia2v
from tia2v.config import ExperimentConfig
from tia2v.encoders.base import Encoded
from tia2v.errors import InputError
from tia2v.pipeline.first_frame_lock import locks_first_frame
from tia2v.pipeline.progress import StepReport
from tia2v.sampling.registry import get_sampler

logger = logging.getLogger(__name__)


@dataclass
class Encodings:
    """The conditions of B videos, encoded once for all their clips: the prompts' tokens
    (B, L, D), the first frames (B, 3, S, S) in the model's range, and each audio track at the
    model's rate."""

    text: Encoded | None
    first_frame: torch.Tensor | None
    audio: list[np.ndarray] | None


@dataclass(frozen=True)
class Request:
    """What one pipeline call generates (conditions aside).

    Attributes:
        sampler, steps, eta: the sampler (a registry name), its steps and its noise.
        guidance: scale per modality; guidance_min_noise: no guidance below this·T.
        seed: noise of clip k is drawn from ``seed + k``'s first frame index.
        num_frames, fps: one clip's length and rate.
        long: chain clips over the whole audio; refine / strength: the SHR refiner.
        progress: show tqdm bars, or a function (what, steps done, steps) called per step.
    """

    sampler: str
    steps: int
    eta: float
    guidance: dict[str, float]
    guidance_min_noise: float
    seed: int
    num_frames: int
    fps: float
    long: bool
    refine: bool
    strength: float | None
    progress: bool | StepReport

    def min_timestep(self, num_timesteps: int) -> int:
        return round(self.guidance_min_noise * num_timesteps)

    def settings(
        self, cfg: ExperimentConfig, model: str, conditions: dict, num_frames: int
    ) -> dict:
        """The sidecar: every setting that made the video (``conditions``: the call's text,
        image and audio as given)."""
        return {
            "text": conditions["text"],
            "image": describe(conditions["image"]),
            "audio": describe(conditions["audio"]),
            "sampler": self.sampler,
            "steps": self.steps,
            "guidance": self.guidance,
            "guidance_min_noise": self.guidance_min_noise,
            "eta": self.eta if get_sampler(self.sampler).takes_eta else None,
            "seed": self.seed,
            "long": self.long,
            "refine": self.refine,
            "strength": (cfg.refiner.strength if self.strength is None else self.strength)
            if self.refine
            else None,
            "num_frames": num_frames,
            "fps": self.fps,
            "size": cfg.data.image_size,
            "model": model,
            "first_frame_lock": conditions["image"] is not None and locks_first_frame(cfg),
            "versions": {
                "tia2v": tia2v.__version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
        }


MAX_SEED = 2**62  # seeds grow by a frame index per chained clip; torch takes < 2**64


def check_conditions(text: str | None, image, audio) -> str | None:
    """At least one condition, and no empty prompt (leave it out for the null text). Returns
    the prompt as valid Unicode: bytes that are not UTF-8 (from a command line in another
    encoding) become U+FFFD."""
    if text is None and image is None and audio is None:
        raise InputError("give at least one condition: text, image or audio")
    if text is None:
        return None
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if not text.strip():
        raise InputError("empty prompt: give some text, or leave it out for the null condition")
    return text


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value}")
    return value


def build_request(
    cfg: ExperimentConfig,
    *,
    sampler: str | None,
    num_inference_steps: int | None,
    eta: float | None,
    guidance: dict[str, float] | None,
    guidance_min_noise: float | None,
    seed: int,
    num_frames: int | None,
    fps: float | None,
    long: bool,
    refine: bool,
    strength: float | None,
    progress: bool | StepReport,
) -> Request:
    """The pipeline call's options (None: the model's default, ``cfg.sample``) → a Request."""
    defaults = cfg.sample
    sampler = sampler or defaults.sampler
    student = get_sampler(sampler).student
    if guidance_min_noise is None:
        guidance_min_noise = defaults.guidance_min_noise
    if not 0.0 <= guidance_min_noise <= 1.0:
        raise InputError(f"guidance_min_noise must be in [0, 1], got {guidance_min_noise}")
    eta = _finite("eta", defaults.eta if eta is None else eta)
    if eta < 0:
        raise InputError(f"eta must be ≥ 0, got {eta}")
    if student and eta > 1:
        raise InputError(f"eta of the {sampler} sampler is TCD's gamma, in [0, 1]; got {eta}")
    steps = num_inference_steps
    if steps is None:
        steps = cfg.distill.steps if student else defaults.steps
    if not 1 <= steps <= cfg.diffusion.num_timesteps:
        raise InputError(
            f"steps must be in [1, {cfg.diffusion.num_timesteps}] (the model's T), got {steps}"
        )
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be in [0, 2**62], got {seed}")
    scales = {
        "text": defaults.guidance_text,
        "image": defaults.guidance_image,
        "audio": defaults.guidance_audio,
        **(guidance or {}),
    }
    for name, scale in scales.items():
        _finite(f"guidance {name}", scale)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps}")
    if fps is not None and abs(fps - defaults.fps) > 1e-6 * defaults.fps:
        logger.warning(
            "fps %g differs from the %g fps the model was trained at: motion and the audio "
            "windows follow %g fps",
            fps,
            defaults.fps,
            fps,
        )
    if num_frames is not None and num_frames < 1:
        raise InputError(f"num_frames must be ≥ 1, got {num_frames}")
    return Request(
        sampler=sampler,
        steps=steps,
        eta=eta,
        guidance=scales,
        guidance_min_noise=guidance_min_noise,
        seed=seed,
        num_frames=num_frames or cfg.data.num_frames,
        fps=fps or defaults.fps,
        long=long,
        refine=refine,
        strength=strength,
        progress=progress,
    )


def describe(value) -> str | None:
    """How the sidecar names a condition: its path, "array", or None."""
    if value is None:
        return None
    return str(value) if isinstance(value, str | Path) else "array"
