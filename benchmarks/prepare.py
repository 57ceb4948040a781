"""Clips per second of ``tia2v prepare`` for a paper preset: decoding plus the frozen encoders
(CLIP ViT-L/14 text and image, BEATs), on each device given, in one run.

    .venv/bin/python benchmarks/prepare.py [--preset paper-urmp] [--clips 2] [--devices cpu cuda]

The encoders are random-weight networks of the official architectures (CLIP ViT-L/14:
24 layers of width 1024 on 224 px; BEATs iter3: 12 layers of width 768), so no download is
needed and the cost is the real one. The clips are noise clips shaped like the preset's data
(URMP-VAT: 90 frames at 30 fps; Landscape-VAT: 30 at 10), 128 px, with 16 kHz wavs. Rows: decoding
alone (no frozen encoder), then the full cache per device. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def stand_in_encoders(folder: Path) -> dict[str, str]:
    """CLIP ViT-L/14 and BEATs iter3 with random weights, saved where the config reads them."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    from tia2v.encoders.beats import BEATs, BEATsConfig

    torch.manual_seed(0)
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[]).save_pretrained(
        folder / "clip"
    )
    text = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}
    text["projection_dim"] = 768
    vision = {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "patch_size": 14,
        "image_size": 224,
        "projection_dim": 768,
    }
    CLIPModel(
        CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)
    ).save_pretrained(folder / "clip")
    BEATs(BEATsConfig()).save(folder / "beats.pt")
    return {"clip": str(folder / "clip"), "beats": str(folder / "beats.pt")}


def write_clips(root: Path, clips: int, frames: int, fps: float, size: int = 128) -> None:
    """``clips`` VAT clips of ``frames`` frames at ``fps``: moving noise, a noise track at
    16 kHz, two caption lines (the toy generator cannot make 90-frame clips)."""
    import numpy as np

    from tia2v.io import write_audio, write_video

    rng = np.random.default_rng(0)
    for k in range(clips):
        video = rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
        audio = (rng.standard_normal(int(frames / fps * 16000)) * 0.1).astype(np.float32)
        write_video(root / "train" / "mp4" / f"clip_{k}.mp4", video, fps)
        write_audio(root / "train" / "wav" / f"clip_{k}.wav", audio, 16000)
        (root / "train" / "txt").mkdir(parents=True, exist_ok=True)
        (root / "train" / "txt" / f"clip_{k}.txt").write_text("a violin\na person playing\n")


def run(preset: str, clips: int, devices: list[str]) -> dict:
    import torch

    from tia2v.config import apply_overrides, resolve_config
    from tia2v.data.cache import build_cache

    torch.set_num_threads(2)
    paper = resolve_config(preset)
    report = {"benchmark": "prepare", "preset": preset, "clips": clips, "threads": 2, "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames, fps = paper.data.clip_frames or 90, paper.data.expected_fps or 30
        write_clips(tmp / "data", clips, frames, fps)
        files = stand_in_encoders(tmp)
        frozen = [
            f"encoders.text_path={files['clip']}",
            f"encoders.image_path={files['clip']}",
            f"encoders.audio_path={files['beats']}",
        ]
        decode_only = ["encoders.text=minilm", "encoders.text_path=", "encoders.image=patch"]
        decode_only += ["encoders.audio=mel"]
        variants = {"decode only (cpu)": (decode_only, "cpu")}
        variants |= {f"frozen encoders on {device}": (frozen, device) for device in devices}
        for name, (overrides, device) in variants.items():
            cfg = apply_overrides(paper, [f"data.root={tmp / 'data'}", *overrides])
            shutil.rmtree(tmp / "data" / "cache", ignore_errors=True)  # nothing reused
            start = time.perf_counter()
            build_cache(tmp / "data", cfg, progress=False, device=device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            report["rows"][name] = {
                "s_per_clip": round(seconds / clips, 2),
                "clips_per_s": round(clips / seconds, 4),
            }
    return report


def main() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # the stand-ins' load reports
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="paper-urmp")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--devices", nargs="+", default=["cpu"])
    args = parser.parse_args()
    print(json.dumps(run(args.preset, args.clips, args.devices)))


if __name__ == "__main__":
    main()
