"""Training diagnostic: how well does a run denoise real clips at each noise level?

    .venv/bin/python benchmarks/denoise_probe.py RUN_DIR [--clips 8] [--stage content]

Loads the run's latest checkpoint (EMA weights), noises held-out clips to several t with
frame 0 given as in training, and prints one JSON line: the mean |x̂₀ − x₀| over frames 1+
per t, next to the error of simply copying frame 0 (a model that cannot beat the copy at
high noise will not sample a video that follows its first frame).
"""

from __future__ import annotations

import argparse
import json

import torch

from tia2v.config import load_config
from tia2v.data.vat import VATDataset, collate
from tia2v.diffusion.schedule import Diffusion
from tia2v.models.network import TIA2VNetwork
from tia2v.training.checkpoint import find_checkpoint, load_weights


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--stage", default="content", choices=["content", "motion"])
    parser.add_argument("--timesteps", type=int, nargs="+", default=[20, 200, 400, 600, 800, 950])
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = find_checkpoint(args.run)
    cfg = load_config(folder / "config.yaml")
    network = TIA2VNetwork(cfg, args.stage).eval()
    state = load_weights(folder, "model.safetensors")
    state.update(load_weights(folder, "ema.safetensors"))
    network.load_saved_state(state)
    diffusion = Diffusion.from_config(cfg.diffusion)
    ds = VATDataset(cfg.data, "test")
    batch = collate([ds[i] for i in range(min(args.clips, len(ds)))])
    x0 = batch["video"]
    size = x0.shape[0]
    keep = {name: torch.ones(size, dtype=torch.bool) for name in ("text", "image", "audio")}
    if args.stage == "content":
        keep.pop("audio")
    clean_first = cfg.model.first_frame == "clean"
    report = {
        "benchmark": "denoise_probe",
        "checkpoint": str(folder),
        "clips": size,
        "copy_frame0_error": (x0[:, :, 1:] - x0[:, :, :1]).abs().mean().item(),
    }
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in [t for t in args.timesteps if t < diffusion.num_timesteps]:
            steps = torch.full((size,), t)
            xt = diffusion.q_sample(x0, steps, torch.randn(x0.shape, generator=generator))
            if clean_first:
                xt[:, :, 0] = x0[:, :, 0]
            out = network(xt, diffusion.model_timesteps(steps), batch, keep)
            _, x0_hat = diffusion.eps_and_x0(diffusion.split_output(out)[0], xt, steps)
            report[f"x0_error_t{t}"] = (x0_hat - x0)[:, :, 1:].abs().mean().item()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
