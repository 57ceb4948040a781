"""Long videos and the SHR refiner on held-out toy requests (one JSON line + Markdown).

    .venv/bin/python benchmarks/long_refine.py [--model checkpoints/demo] [--requests 12]
        [--strengths 0.375 0.2] [--refine-only] [--out benchmarks/results/long_refine.md]

Long: the audio of four held-out requests is concatenated (8 s at 8 fps = 64 frames; the
onsets are known); the video is generated with ``long=True`` from the first request's text
and image. Reported: pulse-sync F1 over the whole video vs the mean single-clip F1 of the
four requests, and the mean absolute frame difference at the seams vs inside the clips.
Refine: colour / shape / direction accuracy of refined vs unrefined outputs, and sharpness
(mean gradient magnitude) and PSNR against the ground-truth render at the refined size, at
each ``--strengths`` value (default: the config's; skipped when the model has no refiner).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from tia2v.data.synth import synthesize
from tia2v.io import load_audio, read_video
from tia2v.metrics import toy
from tia2v.pipeline import TIA2VPipeline


def sharpness(frames: np.ndarray) -> float:
    gray = frames.astype(np.float64).mean(axis=-1)
    return float(np.mean(np.abs(np.diff(gray, axis=1))) + np.mean(np.abs(np.diff(gray, axis=2))))


def accuracy(frames: np.ndarray, meta: dict) -> dict:
    found = toy.analyze(frames)
    return {k: float(getattr(found, k) == meta[k]) for k in ("color", "shape", "direction")}


def long_video(pipe: TIA2VPipeline, test: Path, metas: list[dict], wav: list) -> dict:
    """One video over the audio of the first four requests, from the first's text and image."""
    frames, rate = pipe.cfg.data.num_frames, pipe.cfg.data.audio_rate
    image = str(test / "mp4" / f"{metas[0]['id']}.mp4")
    onsets = [f + k * frames for k, m in enumerate(metas[:4]) for f in m["onset_frames"]]
    long = pipe(
        text=metas[0]["caption"],
        image=image,
        audio=np.concatenate(wav[:4]),
        audio_rate=rate,
        long=True,
    )
    video = long.frames.astype(np.float64)
    step = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))  # difference into frame i+1
    seams = list(range(frames - 1, len(video) - 1, frames - 1))  # clip k starts at k(F-1)
    inside = [d for i, d in enumerate(step) if i not in seams]
    single = [
        toy.sync_f1(
            toy.analyze(
                pipe(
                    text=m["caption"],
                    image=str(test / "mp4" / f"{m['id']}.mp4"),
                    audio=w,
                    audio_rate=rate,
                    seed=k,
                ).frames
            ).pulse_frames,
            m["onset_frames"],
        )
        for k, (m, w) in enumerate(zip(metas[:4], wav[:4], strict=True))
    ]
    long_report = {
        "frames": len(video),
        "audio_seconds": len(long.audio) / rate,
        "pulse_f1_long": toy.sync_f1(toy.analyze(long.frames).pulse_frames, onsets),
        "pulse_f1_single_clips": float(np.mean(single)),
        "seam_difference": float(np.mean([step[i] for i in seams])) if seams else float("nan"),
        "inside_difference": float(np.mean(inside)),
    }
    long_report["seam_to_inside_ratio"] = (
        long_report["seam_difference"] / long_report["inside_difference"]
    )
    return long_report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="checkpoints/demo")
    parser.add_argument("--device", help="default: cuda if available, else cpu")
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strengths", type=float, nargs="+", help="default: refiner.strength")
    parser.add_argument("--refine-only", action="store_true", help="skip the long video")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/long_refine.md"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = TIA2VPipeline.from_pretrained(args.model, args.device)
    cfg = pipe.cfg
    size, frames, fps, rate = (
        cfg.data.image_size,
        cfg.data.num_frames,
        cfg.sample.fps,
        cfg.data.audio_rate,
    )
    scale = cfg.refiner.scale
    device = torch.cuda.get_device_name() if pipe.device.type == "cuda" else "cpu"
    report = {"benchmark": "long_refine", "model": args.model, "device": device}
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(
            tmp,
            0,
            max(4, args.requests),
            seed=args.seed,
            size=size * scale,
            num_frames=frames,
            fps=fps,
            progress=False,
        )
        test = Path(tmp) / "test"
        metas = [json.loads(p.read_text()) for p in sorted((test / "meta").glob("*.json"))]
        wav = [load_audio(test / "wav" / f"{m['id']}.wav", rate) for m in metas]

        report["long"] = {} if args.refine_only else long_video(pipe, test, metas, wav)

        # -- Refiner ----------------------------------------------------------------------------
        strengths = args.strengths or [cfg.refiner.strength]
        rows = {"unrefined": [], **{f"refined (strength {s:g})": [] for s in strengths}}
        pairs = zip(metas[: args.requests], wav[: args.requests], strict=True)
        for k, (meta, audio) in enumerate(pairs if pipe.has_refiner else []):
            clip = str(test / "mp4" / f"{meta['id']}.mp4")
            truth = read_video(clip).frames  # the render at the refined size
            out = pipe(text=meta["caption"], image=clip, audio=audio, audio_rate=rate, seed=k)
            upsampled = pipe.refine(out.frames, meta["caption"], strength=0.0)
            results = [("unrefined", upsampled, out.frames)]
            for strength in strengths:
                refined = pipe.refine(out.frames, meta["caption"], strength=strength, seed=k)
                results.append((f"refined (strength {strength:g})", refined, refined))
            for name, result, judged in results:
                rows[name].append(
                    {
                        **accuracy(judged, meta),
                        "sharpness": sharpness(result),
                        "psnr_vs_truth": toy.psnr(result, truth),
                    }
                )
        report["refine"] = {
            name: {key: float(np.mean([r[key] for r in items])) for key in items[0]}
            for name, items in rows.items()
            if items  # none when the model has no refiner
        }
    print(json.dumps(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = (
        ["| long video | value |", "|---|---|"]
        + [f"| {k} | {v:.3f} |" for k, v in report["long"].items()]
        if report["long"]
        else ["Long video not measured (--refine-only)."]
    )
    if report["refine"]:
        keys = list(report["refine"]["unrefined"])
        lines += ["", "| output | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += [
            f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |"
            for name, row in report["refine"].items()
        ]
    else:
        lines += ["", f"No refiner in `{args.model}`: refinement not measured."]
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
