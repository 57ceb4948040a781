"""``tia2v serve``: the web demo (Gradio), one shared model behind a bounded queue.

Every upload is checked before any work: its size, its type, that it decodes, the audio's
length. A bad one, or a request with no condition at all, is one message in the page; our own
bugs say "internal error" there and leave their traceback in the server's log. Everything the
app writes (Gradio's uploads and our results) lives under one temporary folder that the app
owns, prunes as it goes and removes when it stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tia2v.errors import InputError

logger = logging.getLogger(__name__)

IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
AUDIO_TYPES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".webm")
EMPTY_REQUEST = "Give a prompt, a first frame or an audio track (any of them, or all three)."


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    upload_mb: float = 20.0  # per uploaded file
    audio_seconds: float = 30.0  # the longest audio track (long videos follow it)
    max_steps: int = 100  # solver steps
    keep_minutes: float = 30.0  # results older than this are deleted


def _check_upload(path: str | None, kinds: tuple[str, ...], what: str, limits: Limits) -> None:
    if path is None:
        return
    suffix = Path(path).suffix.lower()
    if suffix not in kinds:
        raise InputError(
            f"the {what} is a {suffix or 'file without extension'}: give one of {', '.join(kinds)}"
        )
    megabytes = os.path.getsize(path) / 2**20
    if megabytes > limits.upload_mb:
        raise InputError(f"the {what} is {megabytes:.1f} MB: the limit is {limits.upload_mb:g} MB")


class Demo:
    """The request handler behind the page: checks, generates, writes the result files.

    Args:
        pipe: the shared pipeline (one model for every worker).
        workdir: the app's folder; results go to ``workdir/results/<id>/``.
        limits: upload and request limits.
    """

    def __init__(self, pipe, workdir: Path, limits: Limits = Limits()):
        self.pipe, self.workdir, self.limits = pipe, workdir, limits

    def generate(  # noqa: PLR0917 - Gradio passes one positional argument per control
        self,
        prompt: str,
        image: str | None,
        audio: str | None,
        sampler: str,
        steps: int,
        guidance_text: float,
        guidance_image: float,
        guidance_audio: float,
        seed: int,
        refine: bool = False,
        long: bool = False,
        progress=None,
    ) -> tuple[str, str, str, dict]:
        """→ (mp4 path, frame-strip png path, settings json path, settings)."""
        track = self._check(prompt, image, audio, steps, long)
        try:
            out = self.pipe(
                text=(prompt or "").strip() or None,
                image=image,
                audio=track,
                audio_rate=self.pipe.cfg.data.audio_rate,
                sampler=sampler,
                num_inference_steps=int(steps),
                guidance={"text": guidance_text, "image": guidance_image, "audio": guidance_audio},
                seed=int(seed),
                refine=bool(refine),
                long=bool(long),
                progress=progress or False,
            )
        finally:
            _give_back_freed_memory()
        self._prune()
        folder = self.workdir / "results" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        out.settings["image"] = None if image is None else Path(image).name
        out.settings["audio"] = None if audio is None else Path(audio).name
        video = out.save(folder / "video.mp4")  # + video.json, the settings
        strip = folder / "frames.png"
        _frame_strip(out.frames, strip)
        return str(video), str(strip), str(video.with_suffix(".json")), out.settings

    def _check(
        self, prompt: str, image: str | None, audio: str | None, steps: int, long: bool
    ) -> np.ndarray | None:
        """The checks of the page's limits; → the audio track at the model's rate. (The image is
        decoded, and refused with its reason, by the pipeline before it samples.)"""
        from tia2v.io import load_audio

        if not (prompt or "").strip() and image is None and audio is None:
            raise InputError(EMPTY_REQUEST)
        _check_upload(image, IMAGE_TYPES, "first frame", self.limits)
        _check_upload(audio, AUDIO_TYPES, "audio", self.limits)
        if not 1 <= int(steps) <= self.limits.max_steps:
            raise InputError(f"steps must be between 1 and {self.limits.max_steps}")
        if long and audio is None:
            raise InputError("a long video follows the audio: give an audio track")
        if audio is None:
            return None
        rate = self.pipe.cfg.data.audio_rate
        track = load_audio(audio, rate)
        if len(track) > self.limits.audio_seconds * rate:
            raise InputError(
                f"the audio lasts {len(track) / rate:.1f} s: the limit is "
                f"{self.limits.audio_seconds:g} s"
            )
        return track

    def _prune(self) -> None:
        """Deletes results older than ``limits.keep_minutes``."""
        cutoff = time.time() - self.limits.keep_minutes * 60
        for folder in (self.workdir / "results").glob("*"):
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


def _give_back_freed_memory() -> None:
    """Returns the C heap's freed pages to the system (glibc keeps them per thread arena, so a
    server whose workers take turns would otherwise grow with every thread that ran once)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _frame_strip(frames: np.ndarray, path: Path, count: int = 8, height: int = 128) -> None:
    """``count`` evenly spaced frames side by side, enlarged (pixels kept sharp) to ``height``."""
    from PIL import Image

    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    strip = Image.fromarray(np.concatenate([frames[i] for i in picks], axis=1))
    scale = max(1, height // strip.height)
    strip.resize((strip.width * scale, strip.height * scale), Image.NEAREST).save(path)


def build_app(demo: Demo, examples: Path | None = None):
    """The Gradio page around ``demo``."""
    import gradio as gr

    from tia2v.sampling.registry import SAMPLERS

    cfg = demo.pipe.cfg.sample
    has_refiner = demo.pipe.has_refiner
    # lcm only where the model has a student; each sampler starts at its own default steps
    samplers = [name for name, s in SAMPLERS.items() if demo.pipe.has_student or not s.student]
    student_steps = demo.pipe.cfg.distill.steps

    def default_steps(name: str) -> int:
        return student_steps if SAMPLERS[name].student else cfg.steps

    def run(*args, progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a bar
        def report(what: str, done: int, total: int) -> None:
            progress((done, total), desc=what)

        try:
            return demo.generate(*args, progress=report)
        except InputError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:  # noqa: BLE001 - the page shows a message, the log the traceback
            logger.exception("internal error while generating")
            raise gr.Error(
                "internal error: a tia2v bug (the server's log has the details)",
                print_exception=False,
            ) from None

    with gr.Blocks(
        title="tia2v",
        analytics_enabled=False,  # nothing leaves the machine
        delete_cache=(600, int(demo.limits.keep_minutes * 60)),
    ) as app:
        gr.Markdown(
            "# tia2v\nText + first frame + audio → a video whose motion follows the audio. "
            "Any condition may be left out."
        )
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", elem_id="prompt")
                image = gr.Image(label="First frame", type="filepath", elem_id="image")
                audio = gr.Audio(
                    label="Audio",
                    sources=["upload", "microphone"],
                    type="filepath",
                    elem_id="audio",
                )
                with gr.Accordion("Settings", open=False):
                    sampler = gr.Dropdown(samplers, value=cfg.sampler, label="Sampler")
                    steps = gr.Slider(
                        1, demo.limits.max_steps, default_steps(cfg.sampler), step=1, label="Steps"
                    )
                    sampler.change(default_steps, sampler, steps)
                    g_text = gr.Slider(0, 10, cfg.guidance_text, step=0.1, label="Text guidance")
                    g_image = gr.Slider(0, 10, cfg.guidance_image, step=0.1, label="Image guidance")
                    g_audio = gr.Slider(0, 10, cfg.guidance_audio, step=0.1, label="Audio guidance")
                    seed = gr.Number(0, precision=0, label="Seed")
                    refine = gr.Checkbox(
                        False,
                        label="Refine (SHR, 2× resolution)",
                        interactive=has_refiner,
                        info=None if has_refiner else "this model has no refiner",
                    )
                    long = gr.Checkbox(False, label="Long: as long as the audio")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                video = gr.Video(label="Video", elem_id="video", autoplay=False)
                strip = gr.Image(label="Frames", elem_id="strip", interactive=False)
                settings_file = gr.File(label="Settings (JSON)", elem_id="settings-file")
                settings = gr.JSON(label="Settings", elem_id="settings")
        inputs = [
            prompt,
            image,
            audio,
            sampler,
            steps,
            g_text,
            g_image,
            g_audio,
            seed,
            refine,
            long,
        ]
        if examples is not None and (examples / "prompt.txt").is_file():
            gr.Examples(
                [
                    [
                        (examples / "prompt.txt").read_text().strip(),
                        str(examples / "first.png"),
                        str(examples / "beats.wav"),
                    ]
                ],
                [prompt, image, audio],
            )
        button.click(run, inputs, [video, strip, settings_file, settings])
    return app


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(
    model: str,
    host: str = "127.0.0.1",
    port: int = 7860,
    concurrency: int = 1,
    max_queue: int = 16,
    limits: Limits = Limits(),
    examples: Path | None = None,
    device: str | None = None,
) -> None:
    """Loads ``model`` once and serves the page until interrupted; removes its folder after."""
    workdir = Path(tempfile.mkdtemp(prefix="tia2v-serve-"))
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "uploads")  # Gradio's copies stay ours
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    signal.signal(signal.SIGTERM, _interrupt)  # a stopped service cleans up as on Ctrl-C
    try:
        from tia2v.pipeline import TIA2VPipeline

        pipe = TIA2VPipeline.from_pretrained(model, device)
        app = build_app(Demo(pipe, workdir, limits), examples)
        app.queue(default_concurrency_limit=concurrency, max_size=max_queue)
        logger.info("serving %s on http://%s:%d (files under %s)", model, host, port, workdir)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes
        app.launch(
            server_name=host,
            server_port=port,
            max_file_size=f"{limits.upload_mb:g}mb",
            allowed_paths=[str(workdir)],
            quiet=True,
            ssr_mode=False,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
