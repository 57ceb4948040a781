"""Train-step speed and peak memory of the motion model, original-style settings vs ours.

    .venv/bin/python benchmarks/training.py [--presets demo paper-urmp] [--steps 4]

Each variant runs in its own process (peak RSS is per process): forward + hybrid loss +
backward + AdamW on one video of the preset's size with random conditions, 2 threads.
"original" trains every parameter (the original's freezing was a no-op); "ours"
freezes the spatial layers. Prints one JSON line with steps/s, peak RSS and ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "original": {"freeze": False, "gradient_checkpointing": False},
    "ours": {"freeze": True, "gradient_checkpointing": False},
    "ours+checkpointing": {"freeze": True, "gradient_checkpointing": True},
}


def run_variant(preset: str, variant: str, steps: int) -> dict:
    import dataclasses

    import torch

    from tia2v.conditions import Conditions
    from tia2v.config import resolve_config
    from tia2v.diffusion.losses import training_losses
    from tia2v.diffusion.schedule import Diffusion
    from tia2v.models.unet import build_model, freeze_spatial

    torch.set_num_threads(2)
    torch.manual_seed(0)
    settings = VARIANTS[variant]
    cfg = resolve_config(preset)
    model_cfg = dataclasses.replace(
        cfg.model, gradient_checkpointing=settings["gradient_checkpointing"]
    )
    model = build_model(model_cfg, cfg.data.image_size, "motion").train()
    if settings["freeze"]:
        freeze_spatial(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    diffusion = Diffusion.from_config(cfg.diffusion)
    frames, size, dim = cfg.data.num_frames, cfg.data.image_size, cfg.model.context_dim
    x0 = torch.rand(1, 3, frames, size, size) * 2 - 1
    cond = Conditions(
        text=torch.randn(1, 77, dim),
        image=torch.randn(1, 1, dim),
        audio=torch.randn(1, frames, 8, dim),
    )
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        t = torch.randint(0, diffusion.num_timesteps, (1,))
        losses = training_losses(
            diffusion,
            cfg.diffusion,
            lambda x, s: model(x, diffusion.model_timesteps(s), cond),
            x0,
            t,
            torch.randn_like(x0),
        )
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times[1:])  # the first step warms up
    return {
        "steps_per_s": round(1 / seconds, 4),
        "s_per_step": round(seconds, 3),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "trainable_params": sum(p.numel() for p in params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["demo", "paper-urmp"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process
        print(json.dumps(run_variant(args.preset, args.variant, args.steps)))
        return
    report = {"benchmark": "training", "model": "motion", "threads": 2}
    for preset in args.presets:
        rows = {}
        for variant in VARIANTS:
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--preset",
                    preset,
                    "--variant",
                    variant,
                    "--steps",
                    str(args.steps),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows[variant] = json.loads(child.stdout.strip().splitlines()[-1])
        base = rows["original"]
        for row in rows.values():
            row["speed_vs_original"] = round(row["steps_per_s"] / base["steps_per_s"], 3)
            row["rss_vs_original"] = round(row["peak_rss_gib"] / base["peak_rss_gib"], 3)
        report[preset] = rows
    print(json.dumps(report))


if __name__ == "__main__":
    main()
