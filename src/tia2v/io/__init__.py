"""Media I/O: video through PyAV, audio through soundfile and soxr."""

from tia2v.io.audio import load_audio, read_audio_file, resample, to_mono, write_audio
from tia2v.io.video import VideoFile, probe_video, read_video, write_video

__all__ = [
    "VideoFile",
    "load_audio",
    "probe_video",
    "read_audio_file",
    "read_video",
    "resample",
    "to_mono",
    "write_audio",
    "write_video",
]
