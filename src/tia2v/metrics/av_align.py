"""AV-Align: do the video's motion peaks fall on the audio's onsets?

Computed as the original script does (``av_align.py``, after TempoTokens): audio onsets from
librosa's onset strength and onset detector at 22.05 kHz (a wav file is read with
``librosa.load``, as the original reads the wav beside the video; an mp4's AAC track is
resampled to 22.05 kHz); motion as the mean Farnebäck optical-flow magnitude between
consecutive frames (the first pair counted twice, so index k is the motion into frame k, at
time k / fps); peaks are the strict local maxima of that curve, never its first or last
frame. An onset is matched when a peak lies within one frame period; the score is the IoU
matches / (onsets + peaks − matches), and 1 when neither has any event (the original divides
by zero). fps is read from each file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ONSET_RATE = 22050


def _onsets(y: np.ndarray, rate: int) -> np.ndarray:
    import librosa

    envelope = librosa.onset.onset_strength(y=y, sr=rate)
    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=rate)
    return librosa.frames_to_time(frames, sr=rate)


def audio_onsets(audio: np.ndarray, rate: int) -> np.ndarray:
    """Onset times in seconds of mono float audio at ``rate``."""
    import librosa

    y = np.asarray(audio, np.float32)
    if rate != ONSET_RATE:
        y = librosa.resample(y, orig_sr=rate, target_sr=ONSET_RATE)
    return _onsets(np.asarray(y, np.float32), ONSET_RATE)


def wav_onsets(path: str | Path) -> np.ndarray:
    """Onset times in seconds of an audio file, read as the original script reads it."""
    import librosa

    y, rate = librosa.load(str(path))  # mono at 22.05 kHz
    return _onsets(y, rate)


def flow_magnitudes(frames: np.ndarray) -> np.ndarray:
    """(F,) mean optical-flow magnitude into each frame (frame 0 repeats frame 1's value)."""
    import cv2

    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    magnitudes = []
    for previous, current in zip(gray[:-1], gray[1:], strict=True):
        flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitudes.append(cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0])
    return np.asarray(magnitudes[:1] + magnitudes) if magnitudes else np.zeros(len(frames))


def motion_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) of the strict local maxima of the flow magnitude, first and last frame
    excluded."""
    m = flow_magnitudes(frames)
    peaks = [i for i in range(1, len(m) - 1) if m[i - 1] < m[i] > m[i + 1]]
    return np.asarray(peaks, np.float64) / fps


def iou(onsets: np.ndarray, peaks: np.ndarray, fps: float) -> float:
    """Matches within one frame period, over the union of both event sets."""
    if len(onsets) == 0 and len(peaks) == 0:
        return 1.0
    matches = sum(1 for a in onsets if len(peaks) and np.min(np.abs(peaks - a)) < 1.0 / fps)
    return matches / (len(onsets) + len(peaks) - matches)


def av_align(frames: np.ndarray, fps: float, audio: np.ndarray, rate: int) -> float:
    """AV-Align of one video: uint8 (F, H, W, 3) frames at ``fps`` and mono audio at ``rate``."""
    return iou(audio_onsets(audio, rate), motion_peaks(frames, fps), fps)


def av_align_wav(frames: np.ndarray, fps: float, wav: str | Path) -> float:
    """AV-Align of one video against the audio file it was generated from."""
    return iou(wav_onsets(wav), motion_peaks(frames, fps), fps)
