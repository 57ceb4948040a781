"""CPU vs GPU: the example request gives the same video on both devices.

    python benchmarks/device_parity.py [--model checkpoints/demo] [--device cuda] [--runs 3]

Starting noise comes from a CPU generator seeded by ``seed``, so both devices start from the
same noise and the frames may differ only by floating-point rounding. Prints one JSON line:
max and mean |difference| of the uint8 frames (plain and, when the model has a refiner,
refined) and the median seconds per video on each device after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tia2v.pipeline import TIA2VPipeline

EXAMPLES = Path("examples")


def generate(pipe: TIA2VPipeline, refine: bool) -> np.ndarray:
    return pipe(
        text=(EXAMPLES / "prompt.txt").read_text().strip(),
        image=str(EXAMPLES / "first.png"),
        audio=str(EXAMPLES / "beats.wav"),
        refine=refine,
        seed=0,
    ).frames


def timed(pipe: TIA2VPipeline, refine: bool, runs: int) -> tuple[np.ndarray, float]:
    frames = generate(pipe, refine)  # warm-up (kernels, allocator)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        generate(pipe, refine)
        if pipe.device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return frames, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="checkpoints/demo")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipes = [TIA2VPipeline.from_pretrained(args.model, d) for d in ("cpu", args.device)]
    report = {"benchmark": "device_parity", "model": args.model, "device": args.device}
    if pipes[1].device.type == "cuda":
        report["device"] = torch.cuda.get_device_name()
    modes = [False] + ([True] if pipes[0].has_refiner else [])
    for refine in modes:
        (cpu, cpu_s), (other, other_s) = (timed(p, refine, args.runs) for p in pipes)
        difference = np.abs(cpu.astype(np.int16) - other.astype(np.int16))
        report["refined" if refine else "plain"] = {
            "shape": list(cpu.shape),
            "max_abs_difference": int(difference.max()),
            "mean_abs_difference": float(difference.mean()),
            "seconds_cpu_2_threads": cpu_s,
            "seconds_device": other_s,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
