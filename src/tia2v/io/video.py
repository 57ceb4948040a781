"""Video files through PyAV: decode to uint8 frames, encode H.264 yuv420p with muxed AAC."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tia2v.errors import MediaError

logger = logging.getLogger(__name__)

AAC_FRAME = 1024  # samples per AAC frame; decoders return up to one frame of padding


@dataclass
class VideoFile:
    """A decoded video file.

    Attributes:
        frames: uint8 (F, H, W, 3) RGB.
        fps: frames per second from the stream's average rate.
        audio: float32 (C, S) in [-1, 1], or None when the file has no audio stream.
        audio_rate: sample rate of ``audio`` (0 when there is none).
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None
    audio_rate: int

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def _stream_fps(stream: av.video.stream.VideoStream, path: Path) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise MediaError(f"{path}: video stream reports no frame rate")
    return float(rate)


def _audio_samples(frame: av.AudioFrame) -> np.ndarray:
    """One decoded audio frame as float32 (C, n) in [-1, 1]."""
    samples = frame.to_ndarray()  # planar: (C, n); packed: (1, n*C)
    if not frame.format.is_planar:
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    if samples.dtype.kind in "iu":
        info = np.iinfo(samples.dtype)
        offset = (int(info.max) + 1) // 2 if samples.dtype.kind == "u" else 0
        return ((samples.astype(np.float32) - offset) / (info.max - offset + 1)).astype(np.float32)
    return samples.astype(np.float32)


def _true_length(stream: av.audio.stream.AudioStream, rate: int, decoded: int) -> int:
    """Decoded length minus encoder padding, from the container's stream duration."""
    if stream.duration and stream.time_base:
        length = round(float(stream.duration * stream.time_base) * rate)
        if 0 < length < decoded:
            return length
    return decoded


def read_video(path: str | Path, with_audio: bool = True) -> VideoFile:
    """Decodes every frame (RGB uint8) and, optionally, the audio track of a video file.

    Raises:
        MediaError: naming the file when it is missing, undecodable or has no video frames.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such video file")
    frames, chunks, audio, audio_rate = [], [], None, 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            video_stream = container.streams.video[0]
            fps = _stream_fps(video_stream, path)
            streams = [video_stream]
            if with_audio and container.streams.audio:
                audio_stream = container.streams.audio[0]
                if audio_stream.codec_context is None:
                    raise MediaError(f"{path}: cannot decode its audio stream")
                audio_rate = audio_stream.codec_context.sample_rate or audio_stream.rate
                streams.append(audio_stream)
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if packet.stream is video_stream:
                        frames.append(frame.to_ndarray(format="rgb24"))
                    else:
                        chunks.append(_audio_samples(frame))
            if len(streams) == 2:
                audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
                audio = audio[:, : _true_length(audio_stream, audio_rate, audio.shape[1])]
                audio = np.ascontiguousarray(audio)
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        raise MediaError(f"{path}: cannot decode video ({exc})") from exc
    if not frames:
        raise MediaError(f"{path}: video has no frames")
    return VideoFile(np.stack(frames), fps, audio, audio_rate)


def probe_video(path: str | Path) -> tuple[int, float, float]:
    """(frame count, fps, audio duration in s, 0 without audio) read from stream headers only."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for p in container.demux(stream) if p.size)
            fps = _stream_fps(stream, path)
            audio_seconds = 0.0
            if container.streams.audio:
                audio = container.streams.audio[0]
                if audio.duration and audio.time_base:
                    audio_seconds = float(audio.duration * audio.time_base)
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError) as exc:
        raise MediaError(f"{path}: cannot open video ({exc})") from exc
    return count, fps, audio_seconds


def _even(frames: np.ndarray) -> np.ndarray:
    """Pads odd heights/widths by repeating the last row/column (yuv420p needs even sizes)."""
    _, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    logger.warning("padding %dx%d frames to even size for yuv420p", w, h)
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB with even H, W → (H * 3 // 2, W) planar yuv420p, BT.601 limited range.

    Done in numpy rather than by swscale, whose output was seen to vary from run to run, so
    that the same frames always give the same file.
    """
    rgb = frame.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.256788 * r + 0.504129 * g + 0.097906 * b
    u = 128 - 0.148223 * r - 0.290993 * g + 0.439216 * b
    v = 128 + 0.439216 * r - 0.367788 * g - 0.071427 * b
    height, width = y.shape
    u = u.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    v = v.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    planes = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)])
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8).reshape(height * 3 // 2, width)


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    audio_rate: int = 0,
    crf: int = 18,
) -> Path:
    """Writes an H.264 yuv420p mp4, with an AAC track when ``audio`` is given.

    The file is written to a temporary name and renamed, so a crash never leaves a
    half-written file under ``path``.

    Args:
        path: output file (.mp4).
        frames: uint8 (F, H, W, 3) RGB. Odd sizes are padded to even by edge repetition.
        fps: frame rate; fractional rates such as 30000/1001 are kept exactly.
        audio: float (S,) mono or (C, S) with C in {1, 2}, values in [-1, 1].
        audio_rate: sample rate of ``audio``.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(
            f"{path}: frames must be uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    if audio is not None:
        audio = _as_channels(audio, path)
        if audio_rate <= 0:
            raise MediaError(f"{path}: audio_rate must be given with audio")
    frames = _even(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(tmp), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        # Repeatable bit stream: one x264 thread, and no macroblock tree, whose output was seen
        # to depend on earlier encodes in the same process.
        video.options = {"crf": str(crf), "threads": "1", "x264-params": "mbtree=0"}
        if audio is not None:
            _add_audio(container, audio, audio_rate)
        for frame in frames:
            yuv = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
            for packet in video.encode(yuv):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            _encode_audio(container, audio)
    tmp.replace(path)
    return path


def _as_channels(audio: np.ndarray, path: Path) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise MediaError(
            f"{path}: audio must be (S,) or (C, S) with C in {{1, 2}}, got {audio.shape}"
        )
    return np.clip(audio, -1.0, 1.0)


def _layout(audio: np.ndarray) -> str:
    return "mono" if audio.shape[0] == 1 else "stereo"


def _add_audio(container: av.container.OutputContainer, audio: np.ndarray, rate: int) -> None:
    stream = container.add_stream("aac", rate=rate)
    stream.layout = _layout(audio)


def _encode_audio(container: av.container.OutputContainer, audio: np.ndarray) -> None:
    """Encodes in whole AAC frames with explicit pts, so the muxer records the exact length."""
    stream = container.streams.audio[0]
    layout = _layout(audio)
    for start in range(0, audio.shape[1], AAC_FRAME):
        chunk = np.ascontiguousarray(audio[:, start : start + AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = stream.rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
