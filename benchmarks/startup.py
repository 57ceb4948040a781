"""``tia2v generate`` from process start to the mp4 on disk, and where the time goes.

    .venv/bin/python benchmarks/startup.py [--model checkpoints/demo] [--runs 5]
        [--out benchmarks/results/startup.json]

For each way of sampling the model folder offers (its few-step student with ``lcm`` at its
default steps when it has one; the guided model with ``dpm++`` at 25 steps), runs the
``make demo`` command (the examples/ prompt, first frame and audio) ``--runs`` times, each
a fresh process with 2 threads, and reports the median wall time. Then, in one fresh process
per sampler, the split of the same work: import (``tia2v.pipeline``), load (the folder and
the network the sampler runs), encode (prompt, image and audio), sample (the solver steps)
and write (the mp4 with its audio and the sidecar). Prints one JSON line; writes it to
``--out``. Run it alone: other jobs on the cores change every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPLIT = r"""
import json, sys, time
start = time.perf_counter()
import torch
torch.set_num_threads(2)
from tia2v.pipeline import TIA2VPipeline
from tia2v.pipeline.inputs import load_image, prepare_audio
from tia2v.io import load_audio
imported = time.perf_counter()
model, sampler, steps, prompt, image, audio, out = sys.argv[1:8]
pipe = TIA2VPipeline.from_pretrained(model, "cpu")
network = pipe.generator(sampler)
loaded = time.perf_counter()
cfg = pipe.cfg
network.conditioner.encode_text([prompt])
load_image(image, cfg.data.image_size)
rate = cfg.data.audio_rate
prepare_audio(load_audio(audio, rate), rate, rate, cfg.data.num_frames / cfg.sample.fps)
encoded = time.perf_counter()
steps = int(steps)
result = pipe(text=prompt, image=image, audio=audio, sampler=sampler, num_inference_steps=steps)
called = time.perf_counter()
result.save(out)
written = time.perf_counter()
print(json.dumps({
    "import": imported - start,
    "load": loaded - imported,
    "encode": encoded - loaded,
    "sample": (called - encoded) - (encoded - loaded),  # the call encodes again
    "write": written - called,
}))
"""


def generate_command(model: str, sampler: str, steps: int, out: Path) -> list[str]:
    prompt = Path("examples/prompt.txt").read_text().strip()
    return [
        str(Path(sys.executable).with_name("tia2v")),
        "--quiet",
        "generate",
        "--model",
        model,
        "--text",
        prompt,
        "--image",
        "examples/first.png",
        "--audio",
        "examples/beats.wav",
        "--sampler",
        sampler,
        "--steps",
        str(steps),
        "--overwrite",
        "-o",
        str(out),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="checkpoints/demo")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/startup.json"))
    args = parser.parse_args()
    from tia2v.config import load_config
    from tia2v.model_folder import has_student

    cfg = load_config(Path(args.model) / "config.yaml")
    ways = [("dpm++", 25)]
    if has_student(Path(args.model)):
        ways.insert(0, ("lcm", cfg.distill.steps))
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    report = {"benchmark": "startup", "model": args.model, "runs": args.runs, "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo.mp4"
        for sampler, steps in ways:
            command = generate_command(args.model, sampler, steps, out)
            seconds = []
            for _ in range(args.runs):
                start = time.perf_counter()
                subprocess.run(command, check=True, env=env, capture_output=True)
                seconds.append(time.perf_counter() - start)
            prompt = command[command.index("--text") + 1]
            split = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    SPLIT,
                    args.model,
                    sampler,
                    str(steps),
                    prompt,
                    "examples/first.png",
                    "examples/beats.wav",
                    str(Path(tmp) / "split.mp4"),
                ],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            )
            report["rows"][f"{sampler} {steps} steps"] = {
                "process_start_to_mp4_s": statistics.median(seconds),
                "all_runs_s": [round(s, 2) for s in seconds],
                "split_s": {k: round(v, 3) for k, v in json.loads(split.stdout).items()},
            }
    rows = list(report["rows"].values())
    if len(rows) == 2:
        report["student_over_teacher"] = (
            rows[0]["process_start_to_mp4_s"] / rows[1]["process_start_to_mp4_s"]
        )
    print(json.dumps(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
