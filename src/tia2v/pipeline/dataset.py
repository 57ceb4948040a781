"""``tia2v sample``: generate for the clips of a data set, in the layout ``tia2v eval`` reads."""

from __future__ import annotations

import dataclasses
import shutil
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
    progress: bool = True,
    device: str | None = None,
    **options,
) -> int:
    """Writes ``real/``, ``fake/`` (mp4 with audio), ``audio/`` (wav), ``txt/`` and, for
    toy-VAT, ``meta/``, one file each per clip, named by clip id; returns the clip count.

    Clip k is generated with seed ``seed + k`` and the pipeline's keyword ``options``
    (sampler, steps, guidance, …); with ``refine=True`` the fakes go through the SHR refiner
    and the reals are read at the refined resolution. ``device``: as in
    ``TIA2VPipeline.from_pretrained``."""
    from tqdm import tqdm

    from tia2v.pipeline.pipeline import TIA2VPipeline

    pipe = TIA2VPipeline.from_pretrained(model, device)
    cfg = pipe.cfg
    ds = VATDataset(cfg.data, split, root=data)
    refine = bool(options.get("refine"))
    scale = cfg.refiner.scale if refine else 1
    reals = VATDataset(
        dataclasses.replace(cfg.data, image_size=cfg.data.image_size * scale), split, root=data
    )
    out = Path(out_dir)
    count = len(ds) if num is None else min(num, len(ds))
    for index in tqdm(range(count), desc="sample", unit="clip", disable=not progress):
        item = ds[index]
        clip, rate = ds.clips[index], cfg.data.audio_rate
        frames = len(item["frame_indices"])
        start = float(item["frame_indices"][0]) / (item["fps"] * cfg.data.frame_stride)
        track = load_audio(clip.audio, rate)
        audio = track[
            round(start * rate) : round(start * rate) + round(frames / item["fps"] * rate)
        ]
        result = pipe(
            text=item["caption"],
            image=item["first_frame"],
            audio=audio,
            audio_rate=rate,
            seed=seed + index,
            num_frames=frames,
            fps=item["fps"],
            **options,
        )
        result.save(out / "fake" / f"{clip.id}.mp4")
        real = (
            reals[index]["video"] if refine else item["video"]
        )  # the same crop, at the output size
        write_video(
            out / "real" / f"{clip.id}.mp4",
            video_to_frames(real, cfg.data.value_range),
            item["fps"],
            result.audio,
            rate,
        )
        write_audio(out / "audio" / f"{clip.id}.wav", result.audio, rate)
        (out / "txt").mkdir(parents=True, exist_ok=True)
        (out / "txt" / f"{clip.id}.txt").write_text("\n".join(item["captions"]) + "\n")
        meta = Path(data) / split / "meta" / f"{clip.id}.json"
        if meta.is_file():
            (out / "meta").mkdir(parents=True, exist_ok=True)
            shutil.copy(meta, out / "meta" / meta.name)
    return count
