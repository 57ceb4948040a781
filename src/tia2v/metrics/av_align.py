"""AV-Align: do the video's motion peaks fall on the audio's onsets?

Audio onsets come from librosa's onset detector (at 22.05 kHz, as the original script);
motion peaks are the local maxima of the mean Farnebäck optical-flow magnitude between
consecutive frames (the first pair is counted twice, so index k is the motion into frame k,
at time k / fps). An onset is matched when a peak lies within one frame period. The score is
the IoU: matches / (onsets + peaks − matches). fps is read from each file.
"""

from __future__ import annotations

import numpy as np

ONSET_RATE = 22050


def audio_onsets(audio: np.ndarray, rate: int) -> np.ndarray:
    """Onset times in seconds of mono float audio."""
    import librosa

    y = (
        librosa.resample(np.asarray(audio, np.float32), orig_sr=rate, target_sr=ONSET_RATE)
        if rate != ONSET_RATE
        else audio
    )
    return librosa.onset.onset_detect(y=np.asarray(y, np.float32), sr=ONSET_RATE, units="time")


def flow_magnitudes(frames: np.ndarray) -> np.ndarray:
    """(F,) mean optical-flow magnitude into each frame (frame 0 repeats frame 1's value)."""
    import cv2

    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    magnitudes = []
    for previous, current in zip(gray[:-1], gray[1:], strict=True):
        flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitudes.append(float(np.linalg.norm(flow, axis=-1).mean()))
    return np.asarray(magnitudes[:1] + magnitudes) if magnitudes else np.zeros(len(frames))


def motion_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) of the local maxima of the flow magnitude."""
    m = flow_magnitudes(frames)
    peaks = [
        i
        for i in range(len(m))
        if (i == 0 or m[i] > m[i - 1]) and (i == len(m) - 1 or m[i] > m[i + 1]) and m[i] > 0
    ]
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
