"""Audio files: read any wav/flac/mp3 (soundfile) or a video's track (PyAV), mono, resampled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from tia2v.errors import MediaError

VIDEO_SUFFIXES = {".mp4", ".m4a", ".mov", ".mkv", ".webm", ".avi"}


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(C, S) or (S,) float → (S,) float32, the mean over channels."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resamples mono (S,) float audio with soxr (high quality); a no-op at equal rates."""
    if rate == target_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(np.asarray(audio, dtype=np.float32), rate, target_rate).astype(np.float32)


def read_audio_file(path: str | Path) -> tuple[np.ndarray, int]:
    """All channels of an audio or video file as float32 (C, S) and its sample rate."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such audio file")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        from tia2v.io.video import read_video

        video = read_video(path)
        if video.audio is None:
            raise MediaError(f"{path}: the video has no audio stream")
        return video.audio, video.audio_rate
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise MediaError(f"{path}: cannot decode audio ({exc})") from exc
    return np.ascontiguousarray(samples.T), rate


def load_audio(path: str | Path, rate: int) -> np.ndarray:
    """Mono float32 (S,) at ``rate`` Hz from a wav/flac/mp3/ogg file or a video's audio track."""
    samples, native_rate = read_audio_file(path)
    if samples.shape[-1] == 0:
        raise MediaError(f"{path}: audio is empty")
    return resample(to_mono(samples), native_rate, rate)


def write_audio(path: str | Path, audio: np.ndarray, rate: int) -> Path:
    """Writes (S,) or (C, S) float audio as 16-bit PCM (wav/flac by suffix), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.asarray(audio, dtype=np.float32)
    data = audio.T if audio.ndim == 2 else audio
    tmp = path.with_name(f".{path.name}.tmp")
    soundfile.write(
        str(tmp), np.clip(data, -1, 1), rate, subtype="PCM_16", format=path.suffix[1:].upper()
    )
    tmp.replace(path)
    return path
