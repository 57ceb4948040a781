"""``TIA2VPipeline``: a trained network with its config, ready to sample."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tia2v.conditions import STAGE_MODALITIES, Conditions
from tia2v.config import ExperimentConfig
from tia2v.data.vat import frame_windows
from tia2v.device import resolve_device
from tia2v.diffusion.guidance import guided_model_fn, student_model_fn
from tia2v.diffusion.schedule import Diffusion
from tia2v.errors import InputError
from tia2v.frames import video_to_frames
from tia2v.model_folder import (
    generator_stage,
    has_refiner,
    has_student,
    load_network,
    read_config,
    save_model_folder,
    verify_folder,
)
from tia2v.models.network import TIA2VNetwork
from tia2v.pipeline.first_frame_lock import first_frame_lock, locks_first_frame
from tia2v.pipeline.inputs import audio_samples, load_image, prepare_audio
from tia2v.pipeline.long_video import chain_clips, long_audio
from tia2v.pipeline.output import PipelineOutput
from tia2v.pipeline.progress import StepReport, progress_bar
from tia2v.pipeline.request import Encodings, Request, build_request, check_conditions
from tia2v.pipeline.sdedit import sdedit
from tia2v.sampling.registry import SamplerCall, get_sampler


class TIA2VPipeline:
    """A trained network with its config, ready to sample.

    Args:
        cfg: the config the model was trained with.
        network: a TIA2VNetwork (content or motion) with its weights.
        source: where it was loaded from (for the sidecar).
        refiner: the SHR refiner network, if the folder has one.
        student: the few-step student of ``network`` (``--sampler lcm``), if the folder has one.

    ``from_pretrained`` reads each network from the folder when it is first used: a call with
    the student never loads the guided model, one without ``refine`` never the refiner.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        network: TIA2VNetwork | None,
        source: str = "",
        refiner: TIA2VNetwork | None = None,
        student: TIA2VNetwork | None = None,
    ):
        self.cfg, self.source = cfg, source
        self._networks = {"network": network, "refiner": refiner, "student": student}
        self._loaders: dict[str, Callable[[], TIA2VNetwork]] = {}
        self._device = None if network is None else next(network.parameters()).device
        for loaded in self._networks.values():
            if loaded is not None:
                loaded.eval()
        self.diffusion = Diffusion.from_config(cfg.diffusion)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device | None = None
    ) -> TIA2VPipeline:
        """Loads a model folder onto ``device`` (default: ``cuda`` when available, else
        ``cpu``). Noise is drawn on the CPU from the seed, so a seed gives the same starting
        noise on every device."""
        device = resolve_device(device)
        folder = Path(path)
        cfg = read_config(folder)
        stage = generator_stage(folder)
        if stage is None:
            raise InputError(f"{folder}: no motion.safetensors or content.safetensors")
        verify_folder(folder)
        pipe = cls(cfg, None, str(folder))
        pipe._device = torch.device(device)

        def loader(name: str, student: bool = False) -> Callable[[], TIA2VNetwork]:
            return lambda: load_network(folder, cfg, name, student, verify=False).to(device)

        pipe._loaders["network"] = loader(stage)
        if has_refiner(folder):
            pipe._loaders["refiner"] = loader("refiner")
        if has_student(folder):
            pipe._loaders["student"] = loader(stage, student=True)
        return pipe

    def _get(self, name: str) -> TIA2VNetwork | None:
        if self._networks[name] is None and name in self._loaders:
            self._networks[name] = self._loaders.pop(name)().eval()
        return self._networks[name]

    @property
    def network(self) -> TIA2VNetwork:
        """The guided generator (motion or content)."""
        return self._get("network")

    @property
    def refiner(self) -> TIA2VNetwork | None:
        return self._get("refiner")

    @property
    def student(self) -> TIA2VNetwork | None:
        return self._get("student")

    @property
    def has_refiner(self) -> bool:
        return self._networks["refiner"] is not None or "refiner" in self._loaders

    @property
    def has_student(self) -> bool:
        return self._networks["student"] is not None or "student" in self._loaders

    def save_pretrained(self, path: str | Path) -> Path:
        """Writes a model folder that ``from_pretrained`` loads, with the source's model card."""
        folder = Path(path)
        card = Path(self.source) / "README.md" if self.source else None
        keep_card = card is not None and card.is_file()
        if keep_card and card.resolve() == (folder / "README.md").resolve():
            keep_card = False  # saved over itself: the card is already there
        networks = [(self.network, None)] + [
            (extra, None) for extra in (self.refiner, self.student) if extra is not None
        ]
        return save_model_folder(
            folder, self.cfg, networks, card.read_text() if keep_card else None
        )

    def generator(self, sampler: str) -> TIA2VNetwork:
        """The network a sampler runs: the student for ``lcm``, else the guided model."""
        if not get_sampler(sampler).student:
            return self.network
        if not self.has_student:
            raise InputError(
                f"--sampler {sampler} runs a distilled student, and "
                f"{self.source or 'this model'} has none (student.safetensors): distil one with "
                "`tia2v train distill`, or choose another sampler"
            )
        return self.student

    def _require_refiner(self) -> None:
        if not self.has_refiner:
            raise InputError(
                f"{self.source or 'this model'}: no refiner (refiner.safetensors) to refine with"
            )

    @property
    def device(self) -> torch.device:
        return self._device

    @torch.no_grad()
    def __call__(
        self,
        text: str | None = None,
        image=None,
        audio=None,
        *,
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
        progress: bool | StepReport = False,
    ) -> PipelineOutput:
        """Generates a video. Any omitted condition is the model's null condition; without an
        image there is no first-frame lock; without audio the clip is silent.

        Options left at None take the model's ``sample`` config. With ``long``, the video
        lasts as long as the audio (clips chained from the last frame so far, each on its own
        span of the audio). Guidance applies at t ≥ ``guidance_min_noise``·T. ``eta``: fresh
        noise per step of ``ddim`` and ``dpm++`` (0: their ODE form). With ``refine``, the SHR
        refiner re-renders the result at ``refiner.scale``× the resolution (``refine``).
        ``progress``: tqdm bars, or a function ``(what, steps done, steps)`` called after every
        solver step (to feed a progress bar of one's own).
        """
        # 1. Check the request; fill in the model's defaults.
        text = check_conditions(text, image, audio)
        if refine:
            self._require_refiner()
        request = build_request(
            self.cfg,
            sampler=sampler,
            num_inference_steps=num_inference_steps,
            eta=eta,
            guidance=guidance,
            guidance_min_noise=guidance_min_noise,
            seed=seed,
            num_frames=num_frames,
            fps=fps,
            long=long,
            refine=refine,
            strength=strength,
            progress=progress,
        )
        rate = self.cfg.data.audio_rate

        # 2. Encode the prompt and the first frame; read the audio (the whole track when long).
        total = request.num_frames
        samples = None
        if long:
            if audio is None:
                raise InputError("long mode follows the audio: give --audio")
            track = audio_samples(audio, audio_rate, rate)
            samples, total = long_audio(track, rate, request.fps, request.num_frames)
        elif audio is not None:
            samples = prepare_audio(audio, audio_rate, rate, request.num_frames / request.fps)
        value_range = self.cfg.data.value_range
        first = None if image is None else load_image(image, self.cfg.data.image_size) * value_range
        conditioner = self.generator(request.sampler).conditioner
        encodings = Encodings(
            text=None if text is None else conditioner.encode_text([text]),
            first_frame=None if first is None else first.to(self.device),  # (1, 3, S, S)
            audio=None if samples is None else [samples],
        )

        # 3. Sample the clip(s), chained over the audio when long.
        def clip(start: int, lock: torch.Tensor | None, index: int) -> np.ndarray:
            return self._clips(request, encodings, start, lock, [request.seed + index])[0]

        frames = chain_clips(clip, encodings.first_frame, total, self.device, value_range)

        # 4. Refine at refiner.scale× the resolution.
        if refine:
            frames = self.refine(frames, text, strength, seed=seed, progress=progress)

        # 5. Record every setting beside the frames.
        conditions = {"text": text, "image": image, "audio": audio}
        settings = request.settings(self.cfg, self.source, conditions, len(frames))
        return PipelineOutput(frames, request.fps, samples, rate, settings)

    @torch.no_grad()
    def batch(
        self,
        requests: list[dict],
        *,
        audio_rate: int | None = None,
        num_inference_steps: int | None = None,
        sampler: str | None = None,
        guidance: dict[str, float] | None = None,
        guidance_min_noise: float | None = None,
        eta: float | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        refine: bool = False,
        strength: float | None = None,
        progress: bool | StepReport = False,
    ) -> list[PipelineOutput]:
        """Several videos sampled together, one batch per network call. ``requests`` holds
        each video's ``text``, ``image``, ``audio`` and ``seed``; the other options are shared
        and mean what they mean in ``__call__``. Video k is the one ``__call__`` gives for
        ``requests[k]``, up to float rounding in batched kernels. Every request must give the
        same conditions; a long video is one call of its own."""
        if not requests:
            return []
        given = {tuple(r.get(k) is None for k in ("text", "image", "audio")) for r in requests}
        if len(given) > 1:
            raise InputError("a batch needs the same conditions (text, image, audio) in each")
        texts = [check_conditions(r.get("text"), r.get("image"), r.get("audio")) for r in requests]
        if refine:
            self._require_refiner()
        seeds = [r.get("seed", 0) for r in requests]
        request = build_request(
            self.cfg,
            sampler=sampler,
            num_inference_steps=num_inference_steps,
            eta=eta,
            guidance=guidance,
            guidance_min_noise=guidance_min_noise,
            seed=seeds[0],
            num_frames=num_frames,
            fps=fps,
            long=False,
            refine=refine,
            strength=strength,
            progress=progress,
        )
        rate, size = self.cfg.data.audio_rate, self.cfg.data.image_size
        seconds = request.num_frames / request.fps
        tracks = [r.get("audio") for r in requests]
        samples = [
            None if a is None else prepare_audio(a, audio_rate, rate, seconds) for a in tracks
        ]
        images = [r.get("image") for r in requests]
        first = None
        if images[0] is not None:
            first = torch.cat([load_image(image, size) for image in images])  # (B, 3, S, S)
            first = (first * self.cfg.data.value_range).to(self.device)
        conditioner = self.generator(request.sampler).conditioner
        encodings = Encodings(
            text=None if texts[0] is None else conditioner.encode_text(texts),
            first_frame=first,
            audio=None if samples[0] is None else samples,
        )
        videos = self._clips(request, encodings, 0, first, seeds)
        outputs = []
        for k, frames in enumerate(videos):
            if refine:
                frames = self.refine(frames, texts[k], strength, seed=seeds[k], progress=progress)
            conditions = {"text": texts[k], "image": images[k], "audio": tracks[k]}
            own = dataclasses.replace(request, seed=seeds[k])
            settings = own.settings(self.cfg, self.source, conditions, len(frames))
            outputs.append(PipelineOutput(frames, request.fps, samples[k], rate, settings))
        return outputs

    def _clips(
        self,
        request: Request,
        encodings: Encodings,
        start: int,
        lock: torch.Tensor | None,
        seeds: list[int],
    ) -> list[np.ndarray]:
        """One clip per seed, all in one batch: clip k's frame 0 is frame ``start`` of its
        video, locked to ``lock[k]`` (``lock``: (B, 3, S, S)) when given. Clip k's noise comes
        from ``seeds[k]`` alone, so it is the same clip whatever the batch. → B × uint8
        (F, S, S, 3)."""
        network = self.generator(request.sampler)
        cfg, device, conditioner = self.cfg, self.device, network.conditioner
        num_frames, size, batch = request.num_frames, cfg.data.image_size, len(seeds)
        cond = Conditions()
        if encodings.text is not None:
            cond.text, cond.text_mask = encodings.text.tokens, encodings.text.mask  # (B, L, D)
        if lock is not None:
            cond.image, cond.first_frame = conditioner.encode_image(lock), lock
        if encodings.audio is not None and "audio" in STAGE_MODALITIES[network.stage]:
            times = (start + np.arange(num_frames)) / request.fps
            windows = np.stack(
                [
                    frame_windows(track, cfg.data.audio_rate, times, cfg.data.audio_window)
                    for track in encodings.audio
                ]
            )  # (B, F, W)
            cond.audio = conditioner.encode_audio(torch.from_numpy(windows).to(device))
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        shape = (1, cfg.model.in_channels, num_frames, size, size)
        noise = torch.cat([torch.randn(shape, generator=g) for g in generators]).to(
            device
        )  # (B, C, F, S, S)
        known, without_image = None, None
        if lock is not None and locks_first_frame(cfg):
            held = first_frame_lock(lock, num_frames, cfg, self.diffusion, seeds)
            known, without_image = held.known, held.without_image
        if network.student:
            model_fn = student_model_fn(
                network.unet, cond, request.guidance, self.diffusion.model_timesteps
            )
        else:
            model_fn = guided_model_fn(
                network.unet,
                cond,
                request.guidance,
                self.diffusion.model_timesteps,
                cfg.diffusion.learn_sigma,
                without_image,
                request.min_timestep(self.diffusion.num_timesteps),
            )
        call = SamplerCall(request.sampler, request.steps, request.eta, known, generators)
        steps = len(call.timesteps(self.diffusion))
        with progress_bar(request.progress, f"sample {request.sampler}", steps) as call.callback:
            x = call.run(model_fn, noise, self.diffusion)  # (B, C, F, S, S)
        return [video_to_frames(x[k], cfg.data.value_range) for k in range(batch)]

    @torch.no_grad()
    def refine(
        self,
        frames: np.ndarray,
        text: str | None = None,
        strength: float | None = None,
        steps: int | None = None,
        seed: int = 0,
        progress: bool | StepReport = False,
    ) -> np.ndarray:
        """The SHR refiner applied SDEdit-style (``tia2v.pipeline.sdedit``): uint8 (F, H, W, 3)
        → uint8 (F, scale·H, scale·W, 3); strength 0 returns the upsampled input."""
        self._require_refiner()
        with progress_bar(progress, "refine") as callback:
            return sdedit(
                self.refiner,
                self.cfg,
                frames,
                text,
                strength=strength,
                steps=steps,
                seed=seed,
                callback=callback,
            )
