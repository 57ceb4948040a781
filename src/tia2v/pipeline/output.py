"""What a pipeline call returns: frames, the audio they were conditioned on, every setting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tia2v.io import write_video


@dataclass
class PipelineOutput:
    """frames: uint8 (F, H, W, 3); audio: mono float32 at ``audio_rate`` spanning the clip, or
    None (silent)."""

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
