"""The VAT folder data set: URMP-VAT, Landscape-VAT, AudioSet-Drums-VAT and toy-VAT.

Layout: ``<root>/<split>/{mp4,wav,txt}/<id>.*`` (``stft_pickle/`` and ``meta/`` may exist and
are not needed). Files are paired by id; fps and length come from each mp4. One example is
``num_frames`` consecutive frames (every ``frame_stride``-th) with one audio window per frame,
centred on that frame's time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tia2v.config import DataConfig
from tia2v.data.cache import EmbeddingCache
from tia2v.errors import DataError, MediaError
from tia2v.frames import frames_to_video, to_model_frames
from tia2v.io import load_audio, probe_video, read_video

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


@dataclass(frozen=True)
class ClipFiles:
    """The files of one clip; ``audio`` is the wav (or the mp4 itself when no wav exists)."""

    id: str
    video: Path
    audio: Path
    caption: Path


def find_clips(root: str | Path, split: str) -> tuple[list[ClipFiles], list[tuple[Path, str]]]:
    """Pairs the files of a split by id.

    Returns:
        (clips with a video, a caption and audio; problems as (file, message) for the rest).
    """
    base = Path(root) / split
    if not (base / "mp4").is_dir():
        raise DataError(f"{base / 'mp4'}: no such folder (expected <root>/<split>/mp4/<id>.mp4)")
    clips, problems = [], []
    for video in sorted((base / "mp4").glob("*.mp4")):
        clip_id = video.stem
        caption = base / "txt" / f"{clip_id}.txt"
        audio = next(
            (p for s in AUDIO_SUFFIXES if (p := base / "wav" / f"{clip_id}{s}").is_file()), None
        )
        if not caption.is_file():
            problems.append((video, f"missing caption {caption}"))
            continue
        if audio is None:
            problems.append((video, f"missing audio {base / 'wav' / clip_id}.wav"))
            continue
        clips.append(ClipFiles(clip_id, video, audio, caption))
    for folder, kind in (("txt", "caption"), ("wav", "audio")):
        for path in sorted((base / folder).glob("*")) if (base / folder).is_dir() else []:
            if path.is_file() and not (base / "mp4" / f"{path.stem}.mp4").is_file():
                problems.append((path, f"{kind} without a video {base / 'mp4' / path.stem}.mp4"))
    return clips, problems


def read_captions(path: Path) -> list[str]:
    """The non-empty lines of a caption file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read caption ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: caption is not valid UTF-8 (byte {exc.start})") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: caption is empty")
    return lines


def frame_windows(audio: np.ndarray, rate: int, times: np.ndarray, window: float) -> np.ndarray:
    """One window of ``window`` seconds centred on each time; samples before the start or
    after the end of the audio (however far) are zeros.

    Args:
        audio: mono (S,) float32.
        rate: sample rate of ``audio``.
        times: (F,) frame times in seconds.
        window: window length in seconds.

    Returns:
        (F, W) float32 with W = round(window * rate).
    """
    length = round(window * rate)
    starts = np.rint(times * rate).astype(np.int64) - length // 2
    index = starts[:, None] + np.arange(length)[None, :]  # (F, W) sample positions
    inside = (index >= 0) & (index < len(audio))
    values = audio[np.clip(index, 0, max(len(audio) - 1, 0))] if len(audio) else 0.0
    return np.where(inside, values, 0.0).astype(np.float32)


class VATDataset(Dataset):
    """Clips of a VAT folder as training examples, decoded live or read from the embedding cache.

    Each item is a dict:
        ``video``: float32 (C, F, H, W) in [-1, 1];
        ``first_frame``: float32 (C, H, W), ``video[:, 0]``;
        ``audio``: float32 (F, W), one window per frame at ``cfg.audio_rate``;
        ``captions``: list[str], every line of the caption file; ``caption``: the line drawn
        for this example;
        ``id``: the clip id; ``fps``: effective frame rate (file fps / frame_stride);
        ``frame_indices``: int64 (F,) indices into the file's frames;
        from the cache only, the frozen encoders' outputs: ``text_tokens`` (L, D) and
        ``text_mask`` (L,) of the drawn caption, ``image_tokens`` (Li, D) of the first frame,
        ``audio_tokens`` (F, La, D).

    Crops and caption lines are random in training (reproducibly: they depend on ``seed``, the
    epoch and the index only, never on the worker) and depend on ``seed`` and the index in test.
    """

    def __init__(
        self,
        cfg: DataConfig,
        split: str = "train",
        root: str | Path | None = None,
        cache: EmbeddingCache | None = None,
    ):
        self.cfg, self.split, self.cache = cfg, split, cache
        self.root = Path(root if root is not None else cfg.root)
        if not str(self.root):
            raise DataError("no data folder: set data.root or pass DATA_DIR")
        self.clips, problems = find_clips(self.root, split)
        for path, message in problems:
            logger.warning("skipping %s: %s", path, message)
        if not self.clips:
            raise DataError(f"{self.root / split}: no complete clips (mp4 + wav + txt)")
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.clips)

    def example_fps(self, sample: int = 64) -> float:
        """The frame rate of an example (the clips' fps over ``frame_stride``), the median over
        up to ``sample`` clips, read from the stream headers."""
        rates = [probe_video(clip.video)[1] for clip in self.clips[:sample]]
        return float(np.median(rates)) / self.cfg.frame_stride

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        stream = (
            [self.cfg.seed, index] if self.split != "train" else [self.cfg.seed, self.epoch, index]
        )
        return np.random.default_rng(stream)

    def _source(self, clip: ClipFiles) -> tuple[np.ndarray | torch.Tensor, float, dict]:
        """(frames, fps, cached tensors): model-size uint8 frames from the cache, else raw ones."""
        if self.cache is not None:
            tensors, meta = self.cache.read_clip(self.split, clip.id)
            return tensors.pop("frames"), meta["fps"], tensors
        decoded = read_video(clip.video, with_audio=False)
        return decoded.frames, decoded.fps, {}

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        """``index``, or ``(epoch, index)`` (for samplers that span epochs)."""
        if isinstance(index, tuple):
            self.epoch, index = index
        clip, cfg = self.clips[index], self.cfg
        frames, fps, cached = self._source(clip)
        span = (cfg.num_frames - 1) * cfg.frame_stride + 1
        if len(frames) < span:
            raise DataError(
                f"{clip.video}: clip has {len(frames)} frames, fewer than the "
                f"{span} needed (num_frames={cfg.num_frames}, frame_stride={cfg.frame_stride})"
            )
        rng = self._rng(index)
        start = int(rng.integers(0, len(frames) - span + 1))
        frame_indices = start + cfg.frame_stride * np.arange(cfg.num_frames)

        if cached:
            model_frames = frames[torch.from_numpy(frame_indices)]  # (F, S, S, 3) uint8
            audio = cached.pop("audio").numpy()
        else:
            model_frames = to_model_frames(frames[frame_indices], cfg.image_size)
            try:
                audio = load_audio(clip.audio, cfg.audio_rate)
            except MediaError as exc:
                raise DataError(str(exc)) from exc
        video = frames_to_video(model_frames, cfg.value_range)  # (3, F, S, S) in [-r, r]
        windows = frame_windows(
            audio, cfg.audio_rate, frame_indices / fps, cfg.audio_window
        )  # (F, W)
        captions = read_captions(clip.caption)
        line = int(rng.integers(0, len(captions)))
        item = {
            "video": video,
            "first_frame": video[:, 0].clone(),
            "audio": torch.from_numpy(windows),
            "captions": captions,
            "caption": captions[line],
            "id": clip.id,
            "fps": fps / cfg.frame_stride,
            "frame_indices": torch.from_numpy(frame_indices),
        }
        if "text_tokens" in cached:
            item["text_tokens"] = cached["text_tokens"][line]
            item["text_mask"] = cached["text_mask"][line].bool()
        if "image_tokens" in cached:
            item["image_tokens"] = cached["image_tokens"][frame_indices[0]]
        if "audio_tokens" in cached:
            item["audio_tokens"] = cached["audio_tokens"][torch.from_numpy(frame_indices)]
        return item


def collate(items: list[dict]) -> dict:
    """Stacks tensors (padding cached text tokens to the longest); keeps lists of the rest."""
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if key in ("text_tokens", "text_mask"):
            batch[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True)
        elif isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch
