"""Ground-truth metrics of the toy-VAT domain, from output frames alone.

The object is every pixel far from the background colour, which is estimated on the frame
border. From its mask per frame come colour, shape (fill ratio of the bounding box),
direction (centroid displacement) and pulses (jumps of the area).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tia2v.data.synth import DIRECTIONS, PALETTE

PALETTE_NAMES = list(PALETTE)
PALETTE_RGB = np.asarray(list(PALETTE.values()), np.float32)
FILL_RATIOS = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}
TRIANGLE_SKEW = 1 / 6  # the up-pointing triangle's centroid sits 1/6 of its height low
# Half the smallest distance between two palette colours: the object/background threshold.
_pairwise = np.linalg.norm(PALETTE_RGB[:, None] - PALETTE_RGB[None], axis=-1)
OBJECT_THRESHOLD = float(_pairwise[_pairwise > 0].min() / 2)
PULSE_JUMP = 1.15  # an area peak must exceed the previous frame's area by 15 %


@dataclass
class ToyAnalysis:
    """What the frames show.

    Attributes:
        color: nearest palette name to the object's mean colour ("" when no object is found).
        background: nearest palette name to the border colour.
        shape: circle / square / triangle by the median fill ratio.
        direction: left / right / up / down by the centroid's first-to-last displacement.
        areas: object area in pixels per frame, (F,).
        centers: object centroid (x, y) per frame, (F, 2); NaN where the object is missing.
        fill_ratio: median area / bounding-box area.
        pulse_frames: frames where the area peaks after a jump.
    """

    color: str
    background: str
    shape: str
    direction: str
    areas: np.ndarray
    centers: np.ndarray
    fill_ratio: float
    pulse_frames: list[int]


def nearest_color(rgb: np.ndarray) -> str:
    return PALETTE_NAMES[int(np.linalg.norm(PALETTE_RGB - rgb, axis=-1).argmin())]


def border_color(frame: np.ndarray) -> np.ndarray:
    """Median colour of the one-pixel frame border, (3,)."""
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]).astype(np.float32)
    return np.median(border, axis=0)


def pulse_frames(areas: np.ndarray, jump: float = PULSE_JUMP) -> list[int]:
    """Frames f ≥ 1 whose area is a local maximum reached by a jump of more than ``jump``×."""
    peaks = []
    for f in range(1, len(areas)):
        rising = areas[f] > jump * max(areas[f - 1], 1.0)
        is_max = f == len(areas) - 1 or areas[f] >= areas[f + 1]
        if rising and is_max:
            peaks.append(f)
    return peaks


def analyze(frames: np.ndarray) -> ToyAnalysis:
    """Measures the object in uint8 (F, H, W, 3) frames.

    Edges are measured with sub-pixel coverage (how far a pixel has moved from the background
    toward the object colour), so shape and position stay exact at 32×32 and below.
    """
    frames = np.asarray(frames, np.float32)
    bg = np.median(np.stack([border_color(f) for f in frames]), axis=0)
    distance = np.linalg.norm(frames - bg, axis=-1)  # (F, H, W)
    mask = distance > OBJECT_THRESHOLD
    if not mask.any():
        empty = np.full((len(frames), 2), np.nan, np.float32)
        return ToyAnalysis(
            "", nearest_color(bg), "", "", np.zeros(len(frames), np.float32), empty, 0.0, []
        )
    fg = _core_color(frames, distance, mask)
    toward = fg - bg
    coverage = np.clip((frames - bg) @ toward / max(float(toward @ toward), 1.0), 0, 1)
    coverage[distance <= OBJECT_THRESHOLD / 2] = 0  # compression noise is not object
    areas = coverage.sum(axis=(1, 2)).astype(np.float32)
    ys, xs = np.mgrid[: frames.shape[1], : frames.shape[2]] + 0.5
    centers = np.full((len(frames), 2), np.nan, np.float32)
    fills, skews = [], []
    for f, weight in enumerate(coverage):
        if weight.sum() < 2:
            continue
        centers[f] = (xs * weight).sum() / weight.sum(), (ys * weight).sum() / weight.sum()
        # Sub-pixel bounding box: each row/column counts by its largest coverage.
        row_extent = weight.max(axis=1)
        height = row_extent.sum()
        fills.append(weight.sum() / (height * weight.max(axis=0).sum()))
        extent_middle = (ys[:, 0] * row_extent).sum() / height
        skews.append((centers[f, 1] - extent_middle) / height)
    fill = float(np.median(fills)) if fills else 0.0
    skew = float(np.median(skews)) if skews else 0.0
    return ToyAnalysis(
        color=nearest_color(fg),
        background=nearest_color(bg),
        shape=classify_shape(fill, skew),
        direction=_direction(centers),
        areas=areas,
        centers=centers,
        fill_ratio=fill,
        pulse_frames=pulse_frames(areas),
    )


def classify_shape(fill: float, skew: float) -> str:
    """Shape from the bounding-box fill ratio, with the triangle's vertical skew as a second cue.

    Blurred small triangles fill more than 1/2 of their box, so a triangle is also recognised
    by its centroid sitting low in its box (skew ≈ 1/6; 0 for circle and square).
    """
    if skew > TRIANGLE_SKEW / 2:
        return "triangle"
    return min(FILL_RATIOS, key=lambda name: abs(FILL_RATIOS[name] - fill))


def _core_color(frames: np.ndarray, distance: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean colour of the object's core: edge pixels blend with the background (and chroma
    subsampling spreads them), so only pixels nearly as far from it as the farthest count."""
    far = np.percentile(distance[mask], 90)
    return frames[mask & (distance >= 0.8 * far)].mean(axis=0)


def _direction(centers: np.ndarray) -> str:
    valid = centers[~np.isnan(centers).any(axis=1)]
    if len(valid) < 2:
        return ""
    dx, dy = valid[-1] - valid[0]
    step = (int(np.sign(dx)), 0) if abs(dx) >= abs(dy) else (0, int(np.sign(dy)))
    return next((name for name, d in DIRECTIONS.items() if d == step), "")


def sync_f1(predicted: list[int], onsets: list[int], tolerance: int = 1) -> float:
    """F1 of predicted pulse frames against onset frames, one-to-one within ±``tolerance``."""
    if not predicted and not onsets:
        return 1.0
    unmatched = list(onsets)
    hits = 0
    for p in predicted:
        match = next((o for o in unmatched if abs(o - p) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    if hits == 0:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(onsets)
    return 2 * precision * recall / (precision + recall)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images or videos of equal shape."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
