"""A generation request: the call's options with the model's defaults filled in, checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tia2v.config import ExperimentConfig
from tia2v.errors import InputError
from tia2v.sampling.registry import get_sampler


@dataclass(frozen=True)
class Request:
    """What one pipeline call generates (conditions aside).

    Attributes:
        sampler, steps, eta: the sampler (a registry name), its steps and its noise.
        guidance: scale per modality; guidance_min_noise: no guidance below this·T.
        seed: noise of clip k is drawn from ``seed + k``'s first frame index.
        num_frames, fps: one clip's length and rate.
        long: chain clips over the whole audio; refine / strength: the SHR refiner.
        progress: show progress bars.
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
    progress: bool

    def min_timestep(self, num_timesteps: int) -> int:
        return round(self.guidance_min_noise * num_timesteps)


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
    progress: bool,
) -> Request:
    """The pipeline call's options (None: the model's default, ``cfg.sample``) → a Request."""
    defaults = cfg.sample
    sampler = sampler or defaults.sampler
    get_sampler(sampler)
    if guidance_min_noise is None:
        guidance_min_noise = defaults.guidance_min_noise
    if not 0.0 <= guidance_min_noise <= 1.0:
        raise InputError(f"guidance_min_noise must be in [0, 1], got {guidance_min_noise}")
    eta = defaults.eta if eta is None else eta
    if eta < 0:
        raise InputError(f"eta must be ≥ 0, got {eta}")
    return Request(
        sampler=sampler,
        steps=num_inference_steps or defaults.steps,
        eta=eta,
        guidance={
            "text": defaults.guidance_text,
            "image": defaults.guidance_image,
            "audio": defaults.guidance_audio,
            **(guidance or {}),
        },
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
