"""``tia2v sample``: generate for the clips of a data set, in the layout ``tia2v eval`` reads."""

from __future__ import annotations

import dataclasses
import shutil
from itertools import groupby
from pathlib import Path

from tia2v.data.vat import VATDataset
from tia2v.frames import video_to_frames
from tia2v.io import load_audio, write_audio, write_video


def sample_dataset(
    model: str | Path,
    data: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    num: int | None = None,
    seed: int = 0,
    batch_size: int = 1,
    progress: bool = True,
    device: str | None = None,
    **options,
) -> int:
    """Writes ``real/``, ``fake/`` (mp4 with audio), ``audio/`` (wav), ``txt/`` and, for
    toy-VAT, ``meta/``, one file each per clip, named by clip id; returns the clip count.

    Clip k is generated with seed ``seed + k`` and the pipeline's keyword ``options``
    (sampler, steps, guidance, …), ``batch_size`` clips per network call (clip k is the same
    whatever the batch size); with ``refine=True`` the fakes go through the SHR refiner and
    the reals are read at the refined resolution. ``device``: as in
    ``TIA2VPipeline.from_pretrained``."""
    from tqdm import tqdm

    from tia2v.pipeline.pipeline import TIA2VPipeline

    pipe = TIA2VPipeline.from_pretrained(model, device)
    cfg = pipe.cfg
    ds = VATDataset(cfg.data, split, root=data)
    scale = cfg.refiner.scale if options.get("refine") else 1
    reals = VATDataset(
        dataclasses.replace(cfg.data, image_size=cfg.data.image_size * scale), split, root=data
    )
    out, rate = Path(out_dir), cfg.data.audio_rate
    count = len(ds) if num is None else min(num, len(ds))
    with tqdm(total=count, desc="sample", unit="clip", disable=not progress) as bar:
        for first in range(0, count, batch_size):
            items = {k: ds[k] for k in range(first, min(first + batch_size, count))}
            lengths = {k: _length(item) for k, item in items.items()}
            # clips of one length and fps sample together (all of them, in VAT data)
            for (frames, fps), group in groupby(items, lengths.get):
                group = list(group)
                requests = [_conditions(ds, k, items[k], seed + k, rate) for k in group]
                results = pipe.batch(
                    requests, audio_rate=rate, num_frames=frames, fps=fps, **options
                )
                for k, result in zip(group, results, strict=True):
                    real = reals[k]["video"] if scale > 1 else items[k]["video"]  # same crop
                    result.save(out / "fake" / f"{ds.clips[k].id}.mp4")
                    _write_real(out, ds.clips[k].id, items[k], real, result, cfg)
                    _copy_meta(Path(data) / split / "meta" / f"{ds.clips[k].id}.json", out)
                bar.update(len(group))
    return count


def _length(item: dict) -> tuple[int, float]:
    return len(item["frame_indices"]), item["fps"]


def _conditions(ds: VATDataset, index: int, item: dict, seed: int, rate: int) -> dict:
    """Clip ``index``'s request: its caption, its first frame, the audio under its frames."""
    frames = len(item["frame_indices"])
    start = float(item["frame_indices"][0]) / (item["fps"] * ds.cfg.frame_stride)
    track = load_audio(ds.clips[index].audio, rate)
    begin = round(start * rate)
    audio = track[begin : begin + round(frames / item["fps"] * rate)]
    return {"text": item["caption"], "image": item["first_frame"], "audio": audio, "seed": seed}


def _write_real(out: Path, clip_id: str, item: dict, real, result, cfg) -> None:
    """The real clip at the output size with the fake's audio track, the wav, the captions."""
    rate = cfg.data.audio_rate
    frames = video_to_frames(real, cfg.data.value_range)
    write_video(out / "real" / f"{clip_id}.mp4", frames, item["fps"], result.audio, rate)
    write_audio(out / "audio" / f"{clip_id}.wav", result.audio, rate)
    (out / "txt").mkdir(parents=True, exist_ok=True)
    (out / "txt" / f"{clip_id}.txt").write_text("\n".join(item["captions"]) + "\n")


def _copy_meta(meta: Path, out: Path) -> None:
    if meta.is_file():  # toy-VAT's ground truth, for the toy metrics
        (out / "meta").mkdir(parents=True, exist_ok=True)
        shutil.copy(meta, out / "meta" / meta.name)
