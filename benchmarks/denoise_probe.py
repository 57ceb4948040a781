"""Training diagnostic: how well does a model denoise real clips at each noise level, and
does its prediction depend on the prompt?

    .venv/bin/python benchmarks/denoise_probe.py RUN_OR_MODEL [--clips 8] [--stage content]
        [--data data/toy-demo] [--swap direction|axis|colour] [--no-image]
        [--shape circle|square|triangle]

Loads a run's latest checkpoint (EMA weights) or a model folder (``checkpoints/demo``), noises
held-out clips to several t with frame 0 given as in training, and prints one JSON line: the
mean |x̂₀ − x₀| over frames 1+ per t, next to the error of simply copying frame 0 (a model
that cannot beat the copy at high noise will not sample a video that follows its first
frame). With ``--swap``, each toy caption's direction is replaced by its opposite
(``direction``), by one on the other axis that the start position also allows (``axis``:
the first frame tells the sign, only the prompt the axis), or its object and background
colours by others (``colour``); the report adds, per t, the error with that wrong prompt
and the mean |Δx̂₀| it caused: a model that ignores the prompt has Δ ≈ 0. ``--no-image``
drops the image condition (frame 0 is noised like the others). ``--shape`` takes only test
clips of that shape and adds the median fill ratio of x̂₀ per t (the toy metric's shape cue,
``tia2v.metrics.toy``) next to the clips' own: how sharp the one-shot prediction is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from tia2v.config import load_config
from tia2v.data.synth import DIRECTIONS, possible_directions
from tia2v.data.vat import VATDataset, collate
from tia2v.diffusion.schedule import Diffusion
from tia2v.frames import video_to_frames
from tia2v.metrics import toy
from tia2v.models.network import TIA2VNetwork
from tia2v.pipeline import TIA2VPipeline
from tia2v.training.checkpoint import averaged_weights, find_checkpoint

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def load_network(path: Path, stage: str) -> tuple[TIA2VNetwork, object]:
    """A run (its latest checkpoint's EMA weights) or a model folder → (network, config)."""
    if (path / "checkpoints").is_dir() or (path / "model.safetensors").is_file():
        folder = find_checkpoint(path)
        cfg = load_config(folder / "config.yaml")
        network = TIA2VNetwork(cfg, stage)
        network.load_saved_state(averaged_weights(folder))
        return network.eval(), cfg
    pipe = TIA2VPipeline.from_pretrained(path, device="cpu")
    return pipe.network.eval(), pipe.cfg


def swapped_caption(caption: str, meta: dict, what: str) -> str:
    """The caption with its direction reversed or moved to the other axis, or its
    object/background colours changed."""
    if what == "direction":
        return caption.replace(meta["direction"], OPPOSITE[meta["direction"]])
    if what == "axis":
        allowed = possible_directions(meta["size"], meta["num_frames"], meta["start"])
        axis = [
            name
            for name in DIRECTIONS
            if name not in (meta["direction"], OPPOSITE[meta["direction"]])
        ]
        other = next((name for name in allowed if name in axis), axis[0])
        return caption.replace(meta["direction"], other)
    color = "green" if meta["color"] != "green" else "red"
    background = "blue" if meta["bg"] != "blue" else "yellow"
    return caption.replace(meta["color"], color).replace(meta["bg"], background)


def held_out_meta(cfg, clip: str) -> dict:
    return json.loads((Path(cfg.data.root) / "test" / "meta" / f"{clip}.json").read_text())


def median_fill_ratio(videos: torch.Tensor) -> float:
    """Median over clips of the toy metric's fill ratio, videos (B, 3, F, H, W) in [−1, 1]."""
    return float(np.median([toy.analyze(video_to_frames(v)).fill_ratio for v in videos]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--stage", default="content", choices=["content", "motion"])
    parser.add_argument("--data", help="data root (default: the model config's data.root)")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[20, 200, 400, 600, 800, 950])
    parser.add_argument("--swap", choices=["direction", "axis", "colour"])
    parser.add_argument("--no-image", action="store_true")
    parser.add_argument("--shape", choices=["circle", "square", "triangle"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    network, cfg = load_network(args.run, args.stage)
    if args.data:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=args.data))
    diffusion = Diffusion.from_config(cfg.diffusion)
    ds = VATDataset(cfg.data, "test")
    indices = range(len(ds))
    if args.shape:
        indices = [i for i in indices if held_out_meta(cfg, ds.clips[i].id)["shape"] == args.shape]
    batch = collate([ds[i] for i in indices[: args.clips]])
    x0 = batch["video"]
    size = x0.shape[0]
    keep = {name: torch.ones(size, dtype=torch.bool) for name in ("text", "image", "audio")}
    if network.stage == "content":
        keep.pop("audio")
    keep["image"] = torch.full((size,), not args.no_image)
    clean_first = cfg.model.first_frame == "clean" and not args.no_image
    prompts = {"true": batch["caption"]}
    if args.swap:
        metas = [held_out_meta(cfg, clip) for clip in batch["id"]]
        prompts["swapped"] = [
            swapped_caption(c, m, args.swap) for c, m in zip(batch["caption"], metas, strict=True)
        ]
    batch = {k: v for k, v in batch.items() if k not in ("text_tokens", "text_mask")}
    report = {
        "benchmark": "denoise_probe",
        "model": str(args.run),
        "clips": size,
        "swap": args.swap,
        "image": not args.no_image,
        "copy_frame0_error": (x0[:, :, 1:] - x0[:, :, :1]).abs().mean().item(),
    }
    if args.shape:
        report["fill_ratio_data"] = median_fill_ratio(x0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in [t for t in args.timesteps if t < diffusion.num_timesteps]:
            steps = torch.full((size,), t)
            xt = diffusion.q_sample(x0, steps, torch.randn(x0.shape, generator=generator))
            if clean_first:
                xt[:, :, 0] = x0[:, :, 0]
            x0_hats = {}
            for name, captions in prompts.items():
                out = network(
                    xt, diffusion.model_timesteps(steps), {**batch, "caption": captions}, keep
                )
                x0_hats[name] = diffusion.eps_and_x0(diffusion.split_output(out)[0], xt, steps)[1]
            report[f"x0_error_t{t}"] = (x0_hats["true"] - x0)[:, :, 1:].abs().mean().item()
            if args.shape:
                report[f"fill_ratio_t{t}"] = median_fill_ratio(x0_hats["true"])
            if args.swap:
                wrong = x0_hats["swapped"][:, :, 1:]
                report[f"x0_error_swapped_t{t}"] = (wrong - x0[:, :, 1:]).abs().mean().item()
                report[f"x0_change_t{t}"] = (wrong - x0_hats["true"][:, :, 1:]).abs().mean().item()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
