"""The toy-VAT benchmark: what each condition contributes, and fast vs original sampling.

    .venv/bin/python benchmarks/toy_eval.py [--model checkpoints/demo] [--requests 48]
        [--ddpm-requests 8] [--student-steps 1,2,4] [--seed 1] [--eta 1]
        [--out benchmarks/results/toy_eval.md]

"No image" means no image token and no first-frame lock (TA2V's setting). UNet calls are
batched: one call per step evaluates every guidance branch. Held-out requests come from ``tia2v
synth`` with a seed not used in training (the demo trains on seed 0). Every generated video is
scored from its frames alone with ``tia2v.metrics.toy``: colour / shape / direction accuracy,
first-frame PSNR against the conditioning image, pulse-sync F1 against the request's onsets,
and the same F1 when the video was generated with another request's audio (the shuffled-audio
control). A model folder with a few-step student also gets the student's rows at each of
``--student-steps`` (the lcm sampler, the same scales as the teacher's), beside the teacher's
25-step row, and the student's guidance ablations (audio scale 0, text scale 0). Prints one
JSON line and writes a Markdown table, with shape accuracy and the median fill ratio (the shape
cue) broken down by the requested shape. With ``--scores``, every video's scores and time are
appended to a JSONL file as they come, and a rerun with the same file, model and settings
reuses them: a long sampler comparison survives an interruption.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tia2v.data.synth import possible_directions, synthesize
from tia2v.frames import video_to_frames
from tia2v.io import load_audio
from tia2v.metrics import toy
from tia2v.pipeline import TIA2VPipeline
from tia2v.pipeline.inputs import load_image

SETTINGS = {  # name: (use text, use image, use audio)
    "default (text + image + audio)": (True, True, True),
    "null text": (False, True, True),
    "null audio": (True, True, False),
    "no image (text + audio)": (True, False, True),
    "no image, null text (audio only)": (False, False, True),
}
# --settings names of the rows, in SETTINGS order
SHORT = dict(
    zip(("default", "null_text", "null_audio", "no_image", "audio_only"), SETTINGS, strict=True)
)


def load_requests(root: Path, count: int, rate: int) -> list[dict]:
    requests = []
    for meta_path in sorted((root / "test" / "meta").glob("*.json"))[:count]:
        meta = json.loads(meta_path.read_text())
        clip = meta["id"]
        requests.append(
            {
                "meta": meta,
                "caption": meta["caption"],
                "image": str(root / "test" / "mp4" / f"{clip}.mp4"),
                "audio": load_audio(root / "test" / "wav" / f"{clip}.wav", rate),
            }
        )
    return requests


def held_out_requests(root: Path, cfg, count: int, seed: int) -> list[dict]:
    """``count`` toy test requests from synth ``seed``, rendered at twice the model's size."""
    synthesize(
        root,
        0,
        count,
        seed=seed,
        size=2 * cfg.data.image_size,
        num_frames=cfg.data.num_frames,
        fps=cfg.sample.fps,
        progress=False,
    )
    return load_requests(root, count, cfg.data.audio_rate)


def direction_from_start(requests: list[dict]) -> float:
    """Direction accuracy of a guess among the directions each start position allows: what
    the first frame alone gives, with no prompt (about 0.5; 0.25 without the image)."""
    metas = [request["meta"] for request in requests]
    allowed = [possible_directions(m["size"], m["num_frames"], m["start"]) for m in metas]
    return float(np.mean([1 / len(directions) for directions in allowed]))


def config_guidance(cfg) -> dict[str, float]:
    """The model config's guidance scales by modality."""
    return {name: getattr(cfg.sample, f"guidance_{name}") for name in ("text", "image", "audio")}


def score(frames: np.ndarray, request: dict, reference: np.ndarray | None) -> dict:
    found = toy.analyze(frames)
    meta = request["meta"]
    row = {
        "color": float(found.color == meta["color"]),
        "shape": float(found.shape == meta["shape"]),
        "direction": float(found.direction == meta["direction"]),
        "pulse_f1": toy.sync_f1(found.pulse_frames, meta["onset_frames"]),
        "fill_ratio": found.fill_ratio,
    }
    if reference is not None:
        row["first_frame_psnr"] = min(toy.psnr(frames[0], reference), 100.0)
    return row


class ScoreCache:
    """Per-video scores and seconds in a JSONL file, keyed by everything that decides the video
    (model files, request, settings, seed), appended and flushed one video at a time."""

    def __init__(self, path: Path | None, context: dict):
        self.path, self.context, self.entries, self.reused = path, context, {}, 0
        text = path.read_text() if path is not None and path.exists() else ""
        complete = text[: text.rfind("\n") + 1]
        if complete != text:  # a line cut short by an interrupted run: cut it off
            os.truncate(path, len(complete.encode()))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        for line in complete.splitlines():
            entry = json.loads(line)
            self.entries[entry["key"]] = entry

    def key(self, **fields) -> str:
        return json.dumps({**self.context, **fields}, sort_keys=True)

    def get(self, key: str) -> dict | None:
        entry = self.entries.get(key)
        self.reused += entry is not None
        return entry

    def put(self, key: str, row: dict, seconds: float) -> None:
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"key": key, "row": row, "seconds": seconds}) + "\n")


def model_fingerprint(model: str) -> str:
    """sha256 over the model directory's files (names and bytes), so that cached scores of
    other weights are never reused."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(model).rglob("*") if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run(
    pipe,
    requests,
    use,
    *,
    sampler="dpm++",
    steps=None,
    shuffle=False,
    guidance=None,
    eta=None,
    cache=None,
) -> dict:
    rows, seconds = [], []
    use_text, use_image, use_audio = use
    size = pipe.cfg.data.image_size
    cache = cache or ScoreCache(None, {})
    for i, request in enumerate(requests):
        audio_from = requests[(i + 1) % len(requests)] if shuffle else request
        # the shuffled control's audio source depends on the request count: part of its key
        audio_source = {"audio_from": audio_from["meta"]["id"]} if shuffle else {}
        key = cache.key(
            **audio_source,
            request=request["meta"]["id"],
            caption=request["caption"],
            use=list(use),
            sampler=sampler,
            steps=steps,
            shuffle=shuffle,
            guidance=guidance,
            eta=eta,
            seed=i,
        )
        if (entry := cache.get(key)) is not None:
            rows.append(entry["row"])
            seconds.append(entry["seconds"])
            continue
        start = time.perf_counter()
        out = pipe(
            text=request["caption"] if use_text else None,
            image=request["image"] if use_image else None,
            audio=audio_from["audio"] if use_audio else None,
            audio_rate=pipe.cfg.data.audio_rate,
            sampler=sampler,
            num_inference_steps=steps,
            guidance=guidance,
            eta=eta,
            seed=i,
        )
        seconds.append(time.perf_counter() - start)
        reference = None
        if use_image:
            image = load_image(request["image"], size)[0]
            reference = video_to_frames(image[:, None])[0]
        rows.append(score(out.frames, request, reference))
        cache.put(key, rows[-1], seconds[-1])
    summary = {
        key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key != "fill_ratio"
    }
    summary["seconds_per_video"] = float(np.median(seconds))
    summary["by_shape"] = by_shape(rows, requests)
    return summary


def student_rows(pipe, requests, steps_list, guidance, eta, cache) -> dict[str, dict]:
    """The student at each step count (with its shuffled-audio control), then its guidance
    ablations at the most steps: audio scale 0 and text scale 0."""
    default = SETTINGS["default (text + image + audio)"]
    rows = {}
    for steps in steps_list:
        common = {"sampler": "lcm", "steps": steps, "eta": eta, "cache": cache}
        row = run(pipe, requests, default, guidance=guidance, **common)
        control = run(pipe, requests, default, shuffle=True, guidance=guidance, **common)
        rows[f"student, {steps} steps"] = {
            **row,
            "pulse_f1_shuffled_audio": control["pulse_f1"],
            "unet_calls": steps,
        }
    most = max(steps_list)
    common = {"sampler": "lcm", "steps": most, "eta": eta, "cache": cache}
    for name in ("audio", "text"):
        scaled = {**guidance, name: 0.0}
        row = run(pipe, requests, default, guidance=scaled, **common)
        rows[f"student, {most} steps, {name} scale 0"] = {**row, "unet_calls": most}
    return rows


def by_shape(rows: list[dict], requests: list[dict]) -> dict[str, dict[str, float]]:
    """Shape accuracy and median fill ratio (the metric's cue, ``toy.FILL_RATIOS``) per
    requested shape."""
    groups: dict[str, list[dict]] = {}
    for row, request in zip(rows, requests, strict=True):
        groups.setdefault(request["meta"]["shape"], []).append(row)
    return {
        shape: {
            "requests": len(group),
            "accuracy": float(np.mean([r["shape"] for r in group])),
            "median_fill_ratio": float(np.median([r["fill_ratio"] for r in group])),
        }
        for shape, group in sorted(groups.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="checkpoints/demo")
    parser.add_argument("--device", help="default: cuda if available, else cpu")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--ddpm-requests", type=int, default=8, help="0: no sampler comparison")
    parser.add_argument("--ddpm-steps", type=int, default=1000)
    parser.add_argument(
        "--samplers-only", action="store_true", help="only the DPM-Solver++ vs ancestral runs"
    )
    parser.add_argument("--seed", type=int, default=1, help="synth seed of the held-out requests")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/toy_eval.md"))
    for name in ("text", "image", "audio"):
        parser.add_argument(f"--guidance-{name}", type=float, help="default: the model config's")
    parser.add_argument("--eta", type=float, help="DPM-Solver++ noise (default: the config's)")
    parser.add_argument("--scores", type=Path, help="JSONL of per-video scores to resume from")
    parser.add_argument(
        "--settings",
        default=",".join([*SHORT, "shuffled"]),
        help="the guided model's rows: default, null_text, null_audio, no_image, audio_only and "
        "shuffled (the default row's shuffled-audio control)",
    )
    parser.add_argument(
        "--student-steps",
        default="1,2,4",
        help="lcm step counts of the student's rows (comma-separated; empty: none)",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = TIA2VPipeline.from_pretrained(args.model, args.device)
    cfg = pipe.cfg
    guidance = config_guidance(cfg)
    guidance.update({k: v for k in guidance if (v := getattr(args, f"guidance_{k}")) is not None})
    eta = cfg.sample.eta if args.eta is None else args.eta
    context = {"model": model_fingerprint(args.model), "synth_seed": args.seed}
    cache = ScoreCache(args.scores, {**context, "device": pipe.device.type})
    with tempfile.TemporaryDirectory() as tmp:
        requests = held_out_requests(Path(tmp), cfg, args.requests, args.seed)
        default = SETTINGS["default (text + image + audio)"]
        common = {"guidance": guidance, "eta": eta, "cache": cache}
        results = {}
        wanted = args.settings.split(",")
        unknown = set(wanted) - {*SHORT, "shuffled"}
        if unknown:
            parser.error(f"--settings: unknown {', '.join(sorted(unknown))}")
        if not args.samplers_only:
            results = {
                SHORT[short]: run(pipe, requests, SETTINGS[SHORT[short]], **common)
                for short in SHORT
                if short in wanted
            }
            if "shuffled" in wanted and "default" in wanted:
                control = run(pipe, requests, default, shuffle=True, **common)
                results["default (text + image + audio)"]["pulse_f1_shuffled_audio"] = control[
                    "pulse_f1"
                ]
        student = {}
        student_steps = [int(n) for n in args.student_steps.split(",") if n.strip()]
        if pipe.has_student and student_steps and "default" in wanted and not args.samplers_only:
            student = student_rows(pipe, requests, student_steps, guidance, eta, cache)
            student["teacher (dpm++ 25 steps)"] = {
                **results["default (text + image + audio)"],
                "unet_calls": cfg.sample.steps,
            }
        sampling = {}
        if args.ddpm_requests > 0:
            few, steps = requests[: args.ddpm_requests], cfg.sample.steps
            fast = run(pipe, few, default, guidance=guidance, eta=eta, cache=cache)
            slow = run(
                pipe,
                few,
                default,
                sampler="ddpm",
                steps=args.ddpm_steps,
                guidance=guidance,
                cache=cache,
            )
            solver = "dpm++ 2M SDE" if eta > 0 else "dpm++ 2M"
            sampling = {
                f"{solver} {steps} steps": {**fast, "unet_calls": steps},
                f"ddpm ancestral {args.ddpm_steps} steps": {**slow, "unet_calls": args.ddpm_steps},
                "wall_time_ratio": slow["seconds_per_video"] / fast["seconds_per_video"],
            }
    report = {
        "benchmark": "toy_eval",
        "model": args.model,
        "device": torch.cuda.get_device_name() if pipe.device.type == "cuda" else "cpu",
        "requests": args.requests,
        "seed": args.seed,
        "guidance": guidance,
        "guidance_min_noise": cfg.sample.guidance_min_noise,
        "eta": eta,
        "direction_from_start": direction_from_start(requests),
        "videos_reused": cache.reused,
        "scores": str(args.scores) if args.scores else None,
        "settings": results,
        "student": student,
        "sampling": sampling,
    }
    print(json.dumps(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(report))


def markdown(report: dict) -> str:
    keys = [
        "color",
        "shape",
        "direction",
        "first_frame_psnr",
        "pulse_f1",
        "pulse_f1_shuffled_audio",
        "seconds_per_video",
    ]
    lines = [
        f"Toy-VAT benchmark: {report['requests']} held-out requests "
        f"(synth seed {report['seed']}), model `{report['model']}`, on {report['device']}, "
        f"guidance {report['guidance']} at t ≥ {report['guidance_min_noise']:g}·T, "
        f"sampler η = {report['eta']:g}.",
    ]
    if report["videos_reused"]:
        lines.append(
            f"{report['videos_reused']} videos' scores and seconds were measured by an earlier "
            f"run and reused from `{report['scores']}`."
        )
    if report["settings"]:
        lines.append(
            "Direction from the start position alone (a guess among the directions the first "
            f"frame allows): {report['direction_from_start']:.3f}."
        )
        lines += ["", "| setting | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in report["settings"].items():
        lines.append(
            f"| {name} | " + " | ".join(f"{row[k]:.3f}" if k in row else "–" for k in keys) + " |"
        )
    if report["settings"]:
        lines += shape_table(report["settings"])
    if report["student"]:
        teacher = report["student"]["teacher (dpm++ 25 steps)"]["seconds_per_video"]
        lines += [
            "",
            "Few-step student (lcm sampler, the same scales) beside the teacher:",
            "",
            "| model | unet calls | " + " | ".join(keys) + " | time / teacher's |",
            "|---" * (len(keys) + 3) + "|",
        ]
        for name, row in report["student"].items():
            lines.append(
                f"| {name} | {row['unet_calls']} | "
                + " | ".join(f"{row[k]:.3f}" if k in row else "–" for k in keys)
                + f" | {row['seconds_per_video'] / teacher:.3f} |"
            )
    if not report["sampling"]:
        return "\n".join(lines) + "\n\nSampler comparison not run (--ddpm-requests 0).\n"
    lines += [
        "",
        "| sampler | unet calls | " + " | ".join(keys[:5]) + " | s/video |",
        "|---" * 8 + "|",
    ]
    for name, row in report["sampling"].items():
        if isinstance(row, dict):
            lines.append(
                f"| {name} | {row['unet_calls']} | "
                + " | ".join(f"{row.get(k, float('nan')):.3f}" for k in keys[:5])
                + f" | {row['seconds_per_video']:.1f} |"
            )
    lines.append(f"\nWall-time ratio ddpm / dpm++: {report['sampling']['wall_time_ratio']:.1f}")
    sampler_rows = {k: v for k, v in report["sampling"].items() if isinstance(v, dict)}
    return "\n".join(lines + shape_table(sampler_rows)) + "\n"


def shape_table(rows: dict[str, dict]) -> list[str]:
    """Markdown lines: shape accuracy (median fill ratio) per requested shape and row."""
    shapes = sorted({shape for row in rows.values() for shape in row["by_shape"]})
    lines = [
        "",
        "Shape accuracy by requested shape (median fill ratio of the box; "
        + ", ".join(f"{name} ≈ {ratio:.3g}" for name, ratio in toy.FILL_RATIOS.items())
        + "):",
        "",
        "| | " + " | ".join(shapes) + " |",
        "|---" * (len(shapes) + 1) + "|",
    ]
    for name, row in rows.items():
        cells = [shape_cell(row["by_shape"].get(shape)) for shape in shapes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def shape_cell(group: dict | None) -> str:
    if group is None:
        return "–"
    return f"{group['accuracy']:.3f} ({group['median_fill_ratio']:.2f}, n={group['requests']})"


if __name__ == "__main__":
    main()
