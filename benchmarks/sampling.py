"""UNet evaluations and wall time of each sampler vs ancestral DDPM over the full schedule.

    .venv/bin/python benchmarks/sampling.py [--config tiny] [--set diffusion.num_timesteps=1000]
                                            [--steps 25] [--ddim-steps 50]

A motion model of the config (random weights: speed does not depend on them) generates one
video with guidance on text, image and audio (one batched UNet call per step) and first-frame
replacement; 2 threads. Prints one JSON line: calls, batch rows, seconds and the speed-up of
each sampler over the full ancestral schedule, all measured in this run.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from tia2v.conditions import Conditions
from tia2v.config import resolve_config
from tia2v.diffusion.guidance import guided_model_fn
from tia2v.diffusion.schedule import Diffusion
from tia2v.models.unet import build_model
from tia2v.sampling.common import KnownFrames
from tia2v.sampling.registry import SamplerCall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="tiny")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=["diffusion.num_timesteps=1000"]
    )
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--ddim-steps", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = resolve_config(args.config, args.overrides)
    model = build_model(cfg.model, cfg.data.image_size, "motion").eval()
    diffusion = Diffusion.from_config(cfg.diffusion)
    frames, size, dim = cfg.data.num_frames, cfg.data.image_size, cfg.model.context_dim
    cond = Conditions(
        text=torch.randn(1, 16, dim),
        image=torch.randn(1, 1, dim),
        audio=torch.randn(1, frames, 8, dim),
    )
    counter = {"calls": 0, "rows": 0}

    def counted(x, t, c, keep=None):
        counter["calls"] += 1
        counter["rows"] += x.shape[0]
        return model(x, t, c, keep)

    model_fn = guided_model_fn(
        counted,
        cond,
        {"text": 3.0, "image": 1.5, "audio": 4.0},
        diffusion.model_timesteps,
        cfg.diffusion.learn_sigma,
    )
    first = torch.rand(1, 3, frames, size, size) * 2 - 1
    known = KnownFrames(first, torch.arange(frames) == 0)
    T = diffusion.num_timesteps
    calls = {
        f"ddpm-ancestral-{T}": SamplerCall("ddpm", T, known=known),
        f"ddim-{args.ddim_steps}": SamplerCall("ddim", args.ddim_steps, known=known),
        f"dpm++2m-{args.steps}": SamplerCall("dpm++", args.steps, known=known),
        f"unipc-{args.steps}": SamplerCall("unipc", args.steps, known=known),
    }
    report = {
        "benchmark": "sampling",
        "config": args.config,
        "overrides": args.overrides,
        "video": [frames, size, size],
        "guidance_branches": 4,
    }
    noise = torch.randn(1, 3, frames, size, size)
    with torch.no_grad():
        model_fn(noise, torch.zeros(1, dtype=torch.long))  # warm-up
    for name, call in calls.items():
        counter.update(calls=0, rows=0)
        cpu, start = time.process_time(), time.perf_counter()
        call.run(model_fn, noise.clone(), diffusion)
        seconds = time.perf_counter() - start
        report[name] = {
            "unet_calls": counter["calls"],
            "unet_batch_rows": counter["rows"],
            "seconds": round(seconds, 2),
            "cpu_s_per_wall_s": round((time.process_time() - cpu) / seconds, 2),
        }
    full = report[f"ddpm-ancestral-{T}"]["seconds"]
    for name in calls:
        report[name]["speedup_vs_full_ancestral"] = round(full / report[name]["seconds"], 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
