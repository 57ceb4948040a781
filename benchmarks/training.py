"""Train-step speed and peak memory of the motion model: original-style settings vs ours, and
the GPU options of the paper presets (TF32, bf16 autocast, torch.compile) on and off.

    .venv/bin/python benchmarks/training.py [--presets demo paper-urmp] [--steps 4]
    python benchmarks/training.py --options --presets paper-urmp --device cuda --batch-size 4

Each variant runs in its own process (peak memory is per process): forward + hybrid loss +
backward + AdamW on videos of the preset's size with random conditions (2 threads on a CPU).
"original" trains every parameter (the original's freezing was a no-op); "ours" freezes the
spatial layers. With ``--options`` the rows are "fp32" (every option off), "tf32" (CUDA
only), "bf16" (+ TF32 on CUDA) and "bf16+compile"; the first step (and a compile) is timed
apart as warm-up. Prints a JSON line per variant as it finishes, then one with every row and
the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

MEMORY_VARIANTS = {
    "original": {"freeze": False},
    "ours": {"freeze": True},
    "ours+checkpointing": {"freeze": True, "gradient_checkpointing": True},
}
OPTION_VARIANTS = {
    "fp32": {"freeze": True},
    "tf32": {"freeze": True, "tf32": True},
    "bf16": {"freeze": True, "tf32": True, "bf16": True},
    "bf16+compile": {"freeze": True, "tf32": True, "bf16": True, "compile": True},
}


def run_variant(preset: str, settings: dict, steps: int, device: str, batch: int) -> dict:
    import dataclasses

    import torch

    from tia2v.conditions import Conditions
    from tia2v.config import resolve_config
    from tia2v.diffusion.losses import training_losses
    from tia2v.diffusion.schedule import Diffusion
    from tia2v.models.unet import build_model, freeze_spatial

    torch.set_num_threads(2)
    torch.manual_seed(0)
    cuda = device.startswith("cuda")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(
        settings.get("tf32")
    )
    cfg = resolve_config(preset)
    model_cfg = dataclasses.replace(
        cfg.model, gradient_checkpointing=bool(settings.get("gradient_checkpointing"))
    )
    model = build_model(model_cfg, cfg.data.image_size, "motion").train().to(device)
    if settings["freeze"]:
        freeze_spatial(model)
    if settings.get("compile"):
        model.compile()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, foreach=True)
    diffusion = Diffusion.from_config(cfg.diffusion)
    frames, size, dim = cfg.data.num_frames, cfg.data.image_size, cfg.model.context_dim
    x0 = torch.rand(batch, 3, frames, size, size, device=device) * 2 - 1
    cond = Conditions(
        text=torch.randn(batch, 77, dim, device=device),
        image=torch.randn(batch, 1, dim, device=device),
        audio=torch.randn(batch, frames, 8, dim, device=device),
    )
    autocast = torch.autocast(
        "cuda" if cuda else "cpu", torch.bfloat16, enabled=bool(settings.get("bf16"))
    )
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        t = torch.randint(0, diffusion.num_timesteps, (batch,), device=device)
        with autocast:
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
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times[1:])  # the first step warms up (and compiles)
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return {
        "steps_per_s": round(1 / seconds, 4),
        "clips_per_s": round(batch / seconds, 4),
        "s_per_step": round(seconds, 3),
        "first_step_s": round(times[0], 1),
        "peak_gib": round(peak, 2),
        "trainable_params": sum(p.numel() for p in params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["demo", "paper-urmp"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--options", action="store_true", help="the GPU options on and off")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    variants = OPTION_VARIANTS if args.options else MEMORY_VARIANTS
    if args.variant:  # child process
        row = run_variant(
            args.preset, variants[args.variant], args.steps, args.device, args.batch_size
        )
        print(json.dumps(row))
        return
    report = {
        "benchmark": "training",
        "model": "motion",
        "device": args.device,
        "batch_size": args.batch_size,
        "threads": 2,
    }
    base_name = "fp32" if args.options else "original"
    for preset in args.presets:
        rows = {}
        for variant in variants:
            if variant == "tf32" and not args.device.startswith("cuda"):
                rows[variant] = "n/a: TF32 is a CUDA setting"
                continue
            command = [sys.executable, __file__, "--preset", preset, "--variant", variant]
            command += ["--steps", str(args.steps), "--device", args.device]
            command += ["--batch-size", str(args.batch_size)] + ["--options"] * args.options
            child = subprocess.run(command, capture_output=True, text=True)
            if child.returncode != 0:
                rows[variant] = f"failed: {child.stderr.strip().splitlines()[-1][:200]}"
                continue
            rows[variant] = json.loads(child.stdout.strip().splitlines()[-1])
            print(json.dumps({"partial": preset, variant: rows[variant]}), flush=True)
        base = rows[base_name]
        for row in rows.values():
            if isinstance(row, dict):
                row[f"speed_vs_{base_name}"] = round(row["steps_per_s"] / base["steps_per_s"], 3)
                row[f"memory_vs_{base_name}"] = round(row["peak_gib"] / base["peak_gib"], 3)
        report[preset] = rows
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
