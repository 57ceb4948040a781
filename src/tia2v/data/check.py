"""Validation of a whole VAT folder (``tia2v prepare DATA_DIR --check``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import soundfile
from tqdm import tqdm

from tia2v.config import DataConfig
from tia2v.data.vat import ClipFiles, find_clips, read_captions
from tia2v.errors import InputError
from tia2v.io import read_audio_file, read_video


@dataclass(frozen=True)
class Problem:
    """One problem: the split, the clip id and a line that names the file and what is wrong."""

    split: str
    clip_id: str
    message: str


def _audio_seconds(path: Path) -> float:
    try:
        info = soundfile.info(str(path))
        return info.frames / info.samplerate
    except (soundfile.LibsndfileError, RuntimeError):
        samples, rate = read_audio_file(path)  # raises a MediaError naming the file
        return samples.shape[-1] / rate


def check_clip(clip: ClipFiles, cfg: DataConfig) -> list[str]:
    """Every problem of one clip, as messages (empty when the clip is usable)."""
    problems = []
    try:
        read_captions(clip.caption)
    except InputError as exc:
        problems.append(str(exc))
    try:
        video = read_video(clip.video, with_audio=False)
    except InputError as exc:
        return [*problems, str(exc)]
    count, fps = len(video.frames), video.fps
    span = (cfg.num_frames - 1) * cfg.frame_stride + 1
    if count < span:
        problems.append(f"{clip.video}: clip has {count} frames, fewer than num_frames={span}")
    if cfg.clip_frames and count != cfg.clip_frames:
        problems.append(
            f"{clip.video}: {count} frames, expected data.clip_frames={cfg.clip_frames}"
        )
    if cfg.expected_fps and abs(fps - cfg.expected_fps) > 0.01:
        problems.append(
            f"{clip.video}: {fps:.3f} fps, expected data.expected_fps={cfg.expected_fps:g}"
        )
    try:
        seconds = _audio_seconds(clip.audio)
    except InputError as exc:
        return [*problems, str(exc)]
    if seconds + 0.5 / fps < count / fps:
        problems.append(
            f"{clip.audio}: audio lasts {seconds:.3f} s, "
            f"shorter than the video's {count / fps:.3f} s"
        )
    return problems


def check_folder(
    root: str | Path, cfg: DataConfig, progress: bool = True
) -> tuple[int, list[Problem]]:
    """Checks every split folder under ``root``; returns (clips checked, problems)."""
    root = Path(root)
    splits = [s for s in ("train", "test") if (root / s).is_dir()]
    if not splits:
        raise InputError(
            f"{root}: no train/ or test/ folder (expected <root>/<split>/mp4/<id>.mp4)"
        )
    problems, checked = [], 0
    for split in splits:
        clips, missing = find_clips(root, split)
        problems += [Problem(split, path.stem, f"{path}: {message}") for path, message in missing]
        for clip in tqdm(clips, desc=f"check {split}", unit="clip", disable=not progress):
            checked += 1
            problems += [Problem(split, clip.id, m) for m in check_clip(clip, cfg)]
    return checked, problems


def format_table(problems: list[Problem]) -> str:
    """A Markdown table: split, clip id, problem."""
    rows = ["| split | clip | problem |", "|---|---|---|"]
    rows += [f"| {p.split} | {p.clip_id} | {p.message} |" for p in problems]
    return "\n".join(rows)
