"""The toy-VAT generator: a procedural data set in the VAT folder layout.

Each modality carries its own information: the text names colour, shape and direction; the
image fixes the start position and exact look; the audio decides when and how much the object
pulses. Every parameter is written to ``meta/<id>.json`` so metrics can be exact.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tia2v.io import write_audio, write_video

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 210, 40),
    "purple": (150, 60, 190),
    "orange": (240, 140, 30),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}
TEMPLATES = (
    "a {color} {shape} moving {direction} on a {bg} background",
    "a {color} {shape} slides {direction} across a {bg} background",
    "the {color} {shape} travels {direction} over a {bg} backdrop",
    "{bg} background with a {color} {shape} heading {direction}",
    "a {shape} in {color} drifting {direction}, {bg} background",
    "a {color} {shape} goes {direction} in front of a {bg} wall",
)

AUDIO_RATE = 16000
PULSE_GAIN = 0.6  # scale jumps to 1 + PULSE_GAIN * loudness at an onset
PULSE_DECAY_FRAMES = 2.0  # time constant of the scale's return to 1
BURST_DECAY_S = 0.060  # time constant of a percussive event
NOISE_DB = -50.0
MIN_ONSET_GAP = 3  # frames
HALF_SIZE_DIVISOR = 8  # the object's base half-size is the frame size / 8
SPEED_DIVISOR = 48  # it moves the frame size / 48 pixels per frame
SUPERSAMPLE = 4  # render at 4x and average: anti-aliased edges
SPLIT_CODES = {"train": 0, "test": 1}


@dataclass
class ClipSpec:
    """Every generator parameter of one clip; serialised as ``meta/<id>.json``."""

    id: str
    size: int
    num_frames: int
    fps: float
    audio_rate: int
    color: str
    color_rgb: tuple[int, int, int]
    bg: str
    bg_rgb: tuple[int, int, int]
    shape: str
    direction: str
    half_size: float
    speed: float
    start: tuple[float, float]
    onset_frames: list[int]
    loudness: list[float]
    pitches: list[float]
    template: int
    caption: str
    centers: list[tuple[float, float]]
    scales: list[float]


def pulse_scales(num_frames: int, onset_frames: list[int], loudness: list[float]) -> list[float]:
    """Object scale per frame: a jump at each onset that decays back to 1 (max over events)."""
    scales = []
    for f in range(num_frames):
        bumps = [
            PULSE_GAIN * loud * math.exp(-(f - onset) / PULSE_DECAY_FRAMES)
            for onset, loud in zip(onset_frames, loudness, strict=True)
            if f >= onset
        ]
        scales.append(1.0 + max(bumps, default=0.0))
    return scales


def _onsets(rng: np.random.Generator, num_frames: int) -> list[int]:
    """2-4 onset frames, never frame 0, at least MIN_ONSET_GAP apart (fewer if F is small)."""
    feasible = max(0, math.ceil((num_frames - 1) / MIN_ONSET_GAP))
    count = min(int(rng.integers(2, 5)), feasible)
    while True:
        frames = sorted(rng.choice(np.arange(1, num_frames), size=count, replace=False).tolist())
        if all(b - a >= MIN_ONSET_GAP for a, b in zip(frames, frames[1:], strict=False)):
            return frames


def start_range(size: int, num_frames: int, direction: str) -> list[tuple[float, float]]:
    """(low, high) of the start centre's x and y for a clip moving ``direction``: anywhere that
    keeps the largest possible object inside the frame on every frame."""
    reach = size / HALF_SIZE_DIVISOR * (1 + PULSE_GAIN)
    travel = size / SPEED_DIVISOR * (num_frames - 1)
    return [
        (reach - min(0.0, step * travel), size - reach - max(0.0, step * travel))
        for step in DIRECTIONS[direction]
    ]


def possible_directions(size: int, num_frames: int, start: tuple[float, float]) -> list[str]:
    """The directions a clip starting at ``start`` may move in. A start fixes the sign on each
    axis (a left-mover starts right of centre), so this is mostly one horizontal and one
    vertical direction: the first frame alone leaves about half the directions right, and
    only the prompt can tell the axis."""
    return [
        name
        for name in DIRECTIONS
        if all(
            low <= value <= high
            for value, (low, high) in zip(start, start_range(size, num_frames, name), strict=True)
        )
    ]


def make_spec(
    clip_id: str, rng: np.random.Generator, size: int, num_frames: int, fps: float
) -> ClipSpec:
    """Draws one clip's parameters from ``rng``."""
    names = list(PALETTE)
    color, bg = (names[i] for i in rng.choice(len(names), size=2, replace=False))
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    direction = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
    half_size, speed = size / HALF_SIZE_DIVISOR, size / SPEED_DIVISOR
    onset_frames = _onsets(rng, num_frames)
    loudness = [float(x) for x in rng.uniform(0.5, 1.0, len(onset_frames))]
    pitches = [float(x) for x in rng.uniform(220.0, 880.0, len(onset_frames))]
    start = [
        float(rng.uniform(low, high)) for low, high in start_range(size, num_frames, direction)
    ]
    dx, dy = DIRECTIONS[direction]
    centers = [(start[0] + dx * speed * f, start[1] + dy * speed * f) for f in range(num_frames)]
    template = int(rng.integers(len(TEMPLATES)))
    caption = TEMPLATES[template].format(color=color, shape=shape, direction=direction, bg=bg)
    return ClipSpec(
        id=clip_id,
        size=size,
        num_frames=num_frames,
        fps=float(fps),
        audio_rate=AUDIO_RATE,
        color=color,
        color_rgb=PALETTE[color],
        bg=bg,
        bg_rgb=PALETTE[bg],
        shape=shape,
        direction=direction,
        half_size=half_size,
        speed=speed,
        start=(start[0], start[1]),
        onset_frames=onset_frames,
        loudness=loudness,
        pitches=pitches,
        template=template,
        caption=caption,
        centers=centers,
        scales=pulse_scales(num_frames, onset_frames, loudness),
    )


def shape_mask(shape: str, size: int, center: tuple[float, float], half: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape, (size, size) float32.

    Coordinates are continuous with pixel i covering [i, i+1); the triangle points up, with
    its base and height equal to the square's side (bounding-box fill ratio 1/2).
    """
    n = size * SUPERSAMPLE
    coords = (np.arange(n, dtype=np.float32) + 0.5) / SUPERSAMPLE
    x, y = coords[None, :] - center[0], coords[:, None] - center[1]
    if shape == "circle":
        inside = x**2 + y**2 <= half**2
    elif shape == "square":
        inside = (np.abs(x) <= half) & (np.abs(y) <= half)
    elif shape == "triangle":
        inside = (y <= half) & (np.abs(x) <= (y + half) / 2)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32)


def render_frames(spec: ClipSpec) -> np.ndarray:
    """uint8 (F, S, S, 3) frames of a clip."""
    bg = np.asarray(spec.bg_rgb, np.float32)
    fg = np.asarray(spec.color_rgb, np.float32)
    frames = []
    for center, scale in zip(spec.centers, spec.scales, strict=True):
        alpha = shape_mask(spec.shape, spec.size, center, spec.half_size * scale)[..., None]
        frames.append(np.rint(bg + alpha * (fg - bg)).astype(np.uint8))
    return np.stack(frames)


def render_audio(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """float32 (S,) mono audio: a decaying tone burst at each onset, faint noise elsewhere."""
    length = round(spec.audio_rate * spec.num_frames / spec.fps)
    t = np.arange(length, dtype=np.float64) / spec.audio_rate
    audio = rng.normal(0.0, 10 ** (NOISE_DB / 20), length)
    for onset, loud, pitch in zip(spec.onset_frames, spec.loudness, spec.pitches, strict=True):
        local = t - onset / spec.fps
        burst = np.sin(2 * np.pi * pitch * local) * np.exp(-local / BURST_DECAY_S)
        audio += np.where(local >= 0, loud * burst, 0.0)
    return np.clip(audio, -1, 1).astype(np.float32)


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """One independent stream per (seed, split, clip): counts never shift other clips."""
    return np.random.default_rng([seed, SPLIT_CODES[split], index])


def write_clip(root: Path, split: str, spec: ClipSpec, rng: np.random.Generator) -> None:
    """Writes the mp4 (with muxed audio), wav, txt and meta files of one clip."""
    base = root / split
    frames, audio = render_frames(spec), render_audio(spec, rng)
    write_video(base / "mp4" / f"{spec.id}.mp4", frames, spec.fps, audio, spec.audio_rate)
    write_audio(base / "wav" / f"{spec.id}.wav", audio, spec.audio_rate)
    (base / "txt").mkdir(parents=True, exist_ok=True)
    (base / "txt" / f"{spec.id}.txt").write_text(spec.caption + "\n")
    (base / "meta").mkdir(parents=True, exist_ok=True)
    (base / "meta" / f"{spec.id}.json").write_text(json.dumps(asdict(spec), indent=1))


def synthesize(
    out_dir: str | Path,
    num_train: int = 64,
    num_test: int = 16,
    seed: int = 0,
    size: int = 64,
    num_frames: int = 16,
    fps: float = 8.0,
    progress: bool = True,
) -> dict[str, int]:
    """Writes a toy-VAT data set; the same arguments always give the same files' content."""
    from tqdm import tqdm

    if size < 8 or num_frames < 2 or fps <= 0:
        raise ValueError("toy clips need size >= 8, frames >= 2 and fps > 0")
    root = Path(out_dir)
    counts = {"train": num_train, "test": num_test}
    jobs = [(split, i) for split, n in counts.items() for i in range(n)]
    for split, i in tqdm(jobs, desc="synth", unit="clip", disable=not progress):
        rng = clip_rng(seed, split, i)
        spec = make_spec(f"{split}_{i:05d}", rng, size, num_frames, fps)
        write_clip(root, split, spec, rng)
    return counts
