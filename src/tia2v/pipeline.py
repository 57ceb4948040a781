"""``TIA2VPipeline``: text + first frame + audio → a video with sound (DESIGN §3).

pipe = TIA2VPipeline.from_pretrained("checkpoints/demo")
out = pipe(text="a red circle moving left on a blue background", image="first.png",
           audio="beats.wav", num_inference_steps=25, sampler="dpm++", seed=0)
out.save("out.mp4")   # H.264 + AAC, and out.json with every setting
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import tia2v
from tia2v.config import ExperimentConfig, load_config, save_config
from tia2v.data.vat import frame_windows, to_uint8_frames
from tia2v.diffusion.guidance import guided_model_fn
from tia2v.diffusion.schedule import Diffusion
from tia2v.errors import InputError
from tia2v.inputs import audio_samples, load_image, prepare_audio
from tia2v.io import write_video
from tia2v.models.layout import upsample_video
from tia2v.models.network import TIA2VNetwork
from tia2v.models.unet import Conditions
from tia2v.sampling.common import KnownFrames, leading_timesteps, linspace_timesteps
from tia2v.sampling.ddpm import sample_ddpm
from tia2v.sampling.solvers import sample_ddim, sample_dpmpp_2m, sample_unipc

logger = logging.getLogger(__name__)

SAMPLERS = ("ddpm", "ddim", "dpm++", "unipc")


@dataclass
class PipelineOutput:
    """frames: uint8 (F, H, W, 3); audio: mono float32 at ``audio_rate`` spanning the clip, or None."""

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None
    audio_rate: int
    settings: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Writes the mp4 (with the conditioning audio muxed) and a JSON sidecar next to it."""
        path = Path(path)
        write_video(path, self.frames, self.fps, self.audio, self.audio_rate)
        path.with_suffix(".json").write_text(json.dumps(self.settings, indent=1))
        return path


def load_network(
    folder: Path, cfg: ExperimentConfig, stage: str, weights: str, encoders: str
) -> TIA2VNetwork:
    """A stage's network from a model folder, with one clear error for any mismatch."""
    network = TIA2VNetwork(cfg, stage)
    state = {}
    for name, prefix in ((weights, "unet."), (encoders, "conditioner.")):
        try:
            state.update({prefix + k: v for k, v in load_file(str(folder / name)).items()})
        except Exception as exc:  # noqa: BLE001 - every unreadable file is the same input error
            raise InputError(
                f"{folder / name}: missing or corrupt weights ({type(exc).__name__})"
            ) from exc
    try:
        network.load_saved_state(state)
    except (KeyError, RuntimeError) as exc:
        raise InputError(
            f"{folder}: {stage} weights do not match config.yaml ({str(exc).splitlines()[0][:200]})"
        ) from exc
    return network


def save_network(
    folder: Path, network: TIA2VNetwork, weights: str, encoders: str, state: dict | None = None
) -> None:
    """The inverse of ``load_network``: the UNet and the trainable encoder parts (of ``state``,
    e.g. EMA weights, when given)."""
    state = network.saved_state(state)
    save_file(
        {k[5:]: v.contiguous() for k, v in state.items() if k.startswith("unet.")},
        str(folder / weights),
    )
    save_file(
        {k[12:]: v.contiguous() for k, v in state.items() if k.startswith("conditioner.")},
        str(folder / encoders),
    )


class TIA2VPipeline:
    """A trained network with its config, ready to sample.

    Args:
        cfg: the config the model was trained with.
        network: a TIA2VNetwork (content or motion) with its weights.
        source: where it was loaded from (for the sidecar).
        refiner: the SHR refiner network, if the folder has one.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        network: TIA2VNetwork,
        source: str = "",
        refiner: TIA2VNetwork | None = None,
    ):
        self.cfg, self.network, self.source = cfg, network.eval(), source
        self.refiner = None if refiner is None else refiner.eval()
        self.diffusion = Diffusion.from_config(cfg.diffusion)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device | None = None
    ) -> TIA2VPipeline:
        """Loads a model folder (config.yaml, motion/content.safetensors, encoders.safetensors)
        onto ``device`` (default: ``cuda`` when available, else ``cpu``). Noise is drawn on
        the CPU from the seed, so a seed gives the same starting noise on every device."""
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        folder = Path(path)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such model folder (train one, or use checkpoints/demo)")
        if not (folder / "config.yaml").is_file():
            raise InputError(f"{folder}: not a model folder (config.yaml missing)")
        cfg = load_config(folder / "config.yaml")
        stage = next(
            (s for s in ("motion", "content") if (folder / f"{s}.safetensors").is_file()), None
        )
        if stage is None:
            raise InputError(f"{folder}: no motion.safetensors or content.safetensors")
        network = load_network(folder, cfg, stage, f"{stage}.safetensors", "encoders.safetensors")
        refiner = None
        if (folder / "refiner.safetensors").is_file():
            refiner = load_network(
                folder, cfg, "refiner", "refiner.safetensors", "refiner_encoders.safetensors"
            )
            refiner = refiner.to(device)
        return cls(cfg, network.to(device), str(folder), refiner)

    def save_pretrained(self, path: str | Path) -> Path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        stage = self.network.stage
        save_network(folder, self.network, f"{stage}.safetensors", "encoders.safetensors")
        if self.refiner is not None:
            save_network(
                folder, self.refiner, "refiner.safetensors", "refiner_encoders.safetensors"
            )
        save_config(self.cfg, folder / "config.yaml")
        card = Path(self.source) / "README.md" if self.source else None
        if (
            card is not None
            and card.is_file()
            and card.resolve() != (folder / "README.md").resolve()
        ):
            (folder / "README.md").write_text(card.read_text())
        return folder

    @property
    def device(self) -> torch.device:
        return next(self.network.unet.parameters()).device

    @torch.no_grad()
    def __call__(
        self,
        text: str | None = None,
        image=None,
        audio=None,
        audio_rate: int | None = None,
        num_inference_steps: int | None = None,
        sampler: str | None = None,
        guidance: dict[str, float] | None = None,
        guidance_min_noise: float | None = None,
        eta: float | None = None,
        seed: int = 0,
        num_frames: int | None = None,
        fps: float | None = None,
        long: bool = False,
        refine: bool = False,
        strength: float | None = None,
        progress: bool = False,
    ) -> PipelineOutput:
        """Generates a video. Any omitted condition is the model's null condition; without an
        image there is no first-frame lock; without audio the clip is silent.

        With ``long``, the video lasts as long as the audio: clips are chained, each starting
        from (locked to) the last frame of the one before and conditioned on its own span of
        the audio; the whole track is muxed. Guidance applies at t ≥ ``guidance_min_noise``·T
        (default ``sample.guidance_min_noise``). ``eta`` (default ``sample.eta``): fresh noise per
        step of ``ddim`` and ``dpm++``, 0 for their deterministic (ODE) form. With ``refine``,
        the SHR refiner re-renders the result at ``refiner.scale``× the resolution (see
        ``refine``).
        """
        cfg, sc = self.cfg, self.cfg.sample
        if text is None and image is None and audio is None:
            raise InputError("give at least one condition: text, image or audio")
        if text is not None and not text.strip():
            raise InputError("empty prompt: give some text, or leave it out for the null condition")
        sampler = sampler or sc.sampler
        if sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {sampler!r} (choose {', '.join(SAMPLERS)})")
        if refine and self.refiner is None:
            raise InputError(
                f"{self.source or 'this model'}: no refiner (refiner.safetensors) to refine with"
            )
        steps = num_inference_steps or sc.steps
        clip_frames, fps = num_frames or cfg.data.num_frames, fps or sc.fps
        rate = cfg.data.audio_rate
        scales = {
            "text": sc.guidance_text,
            "image": sc.guidance_image,
            "audio": sc.guidance_audio,
            **(guidance or {}),
        }
        if guidance_min_noise is None:
            guidance_min_noise = sc.guidance_min_noise
        if not 0.0 <= guidance_min_noise <= 1.0:
            raise InputError(f"guidance_min_noise must be in [0, 1], got {guidance_min_noise}")
        min_t = round(guidance_min_noise * self.diffusion.num_timesteps)
        eta = sc.eta if eta is None else eta
        if eta < 0:
            raise InputError(f"eta must be ≥ 0, got {eta}")

        text_cond = None
        if text is not None:
            text_cond = self.network.conditioner.encode_text([text])
        first = (
            None if image is None else load_image(image, cfg.data.image_size).to(self.device)
        )  # (1, 3, S, S)
        samples, total = None, clip_frames
        if long:
            if audio is None:
                raise InputError("long mode follows the audio: give --audio")
            samples = audio_samples(audio, audio_rate, rate)
            total = int(len(samples) / rate * fps)
            if total < clip_frames:
                raise InputError(
                    f"audio lasts {len(samples) / rate:.2f} s, shorter than one clip "
                    f"({clip_frames} frames at {fps:g} fps = {clip_frames / fps:.2f} s)"
                )
            samples = samples[: round(total / fps * rate)]
        elif audio is not None:
            samples = prepare_audio(audio, audio_rate, rate, clip_frames / fps)

        def clip(start: int, lock: torch.Tensor | None, index: int) -> np.ndarray:
            return self._clip(
                text_cond,
                lock,
                samples,
                start,
                clip_frames,
                fps,
                scales,
                min_t,
                sampler,
                steps,
                eta,
                seed + index,
                progress,
            )

        frames = clip(0, first, 0)
        while len(frames) < total:  # each new clip starts from the last frame so far
            last = (
                torch.from_numpy(frames[-1]).permute(2, 0, 1).float()[None].to(self.device) / 127.5
                - 1
            )
            more = clip(len(frames) - 1, last, len(frames))
            frames = np.concatenate([frames, more[1:]])[:total]
        if refine:
            frames = self.refine(frames, text, strength, seed=seed, progress=progress)
        settings = {
            "text": text,
            "image": str(image)
            if isinstance(image, str | Path)
            else (None if image is None else "array"),
            "audio": str(audio)
            if isinstance(audio, str | Path)
            else (None if audio is None else "array"),
            "sampler": sampler,
            "steps": steps,
            "guidance": scales,
            "guidance_min_noise": guidance_min_noise,
            "eta": eta if sampler in ("ddim", "dpm++") else None,
            "seed": seed,
            "long": long,
            "refine": refine,
            "strength": (self.cfg.refiner.strength if strength is None else strength)
            if refine
            else None,
            "num_frames": len(frames),
            "fps": fps,
            "size": cfg.data.image_size,
            "model": self.source,
            "first_frame_lock": first is not None
            and (sc.first_frame_replacement or cfg.model.first_frame == "clean"),
            "versions": {
                "tia2v": tia2v.__version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
        }
        return PipelineOutput(frames, fps, samples, rate, settings)

    def _clip(
        self,
        text_cond,
        first,
        samples,
        start,
        num_frames,
        fps,
        scales,
        min_t,
        sampler,
        steps,
        eta,
        seed,
        progress,
    ) -> np.ndarray:
        """One clip of ``num_frames`` frames whose frame 0 is at frame ``start`` of the video."""
        cfg, sc, device = self.cfg, self.cfg.sample, self.device
        size, conditioner = cfg.data.image_size, self.network.conditioner
        cond = Conditions()
        if text_cond is not None:
            cond.text, cond.text_mask = text_cond.tokens, text_cond.mask
        if first is not None:
            cond.image, cond.first_frame = conditioner.encode_image(first), first
        if samples is not None and self.network.stage == "motion":
            times = (start + np.arange(num_frames)) / fps
            windows = frame_windows(samples, cfg.data.audio_rate, times, cfg.data.audio_window)
            cond.audio = conditioner.encode_audio(torch.from_numpy(windows)[None].to(device))
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(
            (1, cfg.model.in_channels, num_frames, size, size), generator=generator
        ).to(device)
        known, without_image = None, None
        if first is not None and (sc.first_frame_replacement or cfg.model.first_frame == "clean"):
            video = first[:, :, None].expand(-1, -1, num_frames, -1, -1)
            clean = cfg.model.first_frame == "clean"
            known = KnownFrames(video, torch.arange(num_frames, device=device) == 0, clean=clean)
            if clean:  # branches without the image see frame 0 noised, as in training
                unlock_noise = torch.randn(
                    video.shape, generator=torch.Generator().manual_seed(seed + 1)
                ).to(device)

                def without_image(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                    noised = self.diffusion.q_sample(video, t, unlock_noise)
                    return torch.where(known.frames.view(1, 1, -1, 1, 1), noised, x)

        model_fn = guided_model_fn(
            self.network.unet,
            cond,
            scales,
            self.diffusion.model_timesteps,
            cfg.diffusion.learn_sigma,
            without_image,
            min_t,
        )
        x = self._sample(model_fn, noise, sampler, steps, eta, known, generator, progress)
        return to_uint8_frames(x[0])

    @torch.no_grad()
    def refine(
        self,
        frames: np.ndarray,
        text: str | None = None,
        strength: float | None = None,
        steps: int | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> np.ndarray:
        """SDEdit with the SHR refiner: upsample ×scale, noise to t = strength·T − 1, denoise
        with DPM-Solver++ under text guidance (a refiner with ``lowres_channels`` also sees the
        upsampled input on every step). Strength 0 returns the upsampled input.

        Args:
            frames: uint8 (F, H, W, 3).
            strength: in [0, 1] (default ``refiner.strength``; 0.375 = t 1499 of 4000).

        Returns:
            uint8 (F, scale·H, scale·W, 3).
        """
        if self.refiner is None:
            raise InputError(
                f"{self.source or 'this model'}: no refiner (refiner.safetensors) to refine with"
            )
        rc = self.cfg.refiner
        strength = rc.strength if strength is None else float(strength)
        if not 0.0 <= strength <= 1.0:
            raise InputError(f"refine strength must be in [0, 1], got {strength}")
        device = next(self.refiner.unet.parameters()).device
        video = (
            torch.from_numpy(np.array(frames)).permute(3, 0, 1, 2).float().to(device) / 127.5 - 1
        )  # (3, F, H, W)
        up = upsample_video(video[None], rc.scale)  # (1, 3, F, sH, sW)
        t_start = round(strength * self.diffusion.num_timesteps) - 1
        if t_start >= 0:
            cond = Conditions(lowres=up if self.refiner.lowres_scale else None)
            if text is not None:
                encoded = self.refiner.conditioner.encode_text([text])
                cond.text, cond.text_mask = encoded.tokens, encoded.mask
            model_fn = guided_model_fn(
                self.refiner.unet,
                cond,
                {"text": rc.guidance_text},
                self.diffusion.model_timesteps,
                self.cfg.diffusion.learn_sigma,
            )
            count = min(steps or rc.steps, t_start + 1)
            timesteps = sorted(
                {int(t) for t in np.linspace(0, t_start, count).round()}, reverse=True
            )
            generator = torch.Generator().manual_seed(seed)
            noise = torch.randn(up.shape, generator=generator).to(device)
            x = self.diffusion.q_sample(up, torch.full((1,), t_start, device=device), noise)
            up = sample_dpmpp_2m(model_fn, x, self.diffusion, timesteps, generator=generator)
        return to_uint8_frames(up[0])

    def _sample(
        self, model_fn, noise, sampler, steps, eta, known, generator, progress
    ) -> torch.Tensor:
        from tqdm import tqdm

        diffusion = self.diffusion
        total = (
            diffusion.num_timesteps
            if sampler == "ddpm" and steps >= diffusion.num_timesteps
            else steps
        )
        bar = tqdm(total=total, desc=f"sample {sampler}", unit="step", disable=not progress)
        kwargs = {"known": known, "generator": generator, "callback": lambda *args: bar.update(1)}
        try:
            if sampler == "ddpm":
                return sample_ddpm(model_fn, noise, diffusion, steps=steps, **kwargs)
            if sampler == "ddim":
                return sample_ddim(
                    model_fn,
                    noise,
                    diffusion,
                    leading_timesteps(diffusion.num_timesteps, steps),
                    eta=eta,
                    **kwargs,
                )
            timesteps = linspace_timesteps(diffusion, steps)
            if sampler == "dpm++":
                return sample_dpmpp_2m(model_fn, noise, diffusion, timesteps, eta=eta, **kwargs)
            return sample_unipc(model_fn, noise, diffusion, timesteps, **kwargs)
        finally:
            bar.close()


__all__ = ["PipelineOutput", "TIA2VPipeline"]
