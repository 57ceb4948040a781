"""Guidance scales for a model, chosen on validation requests (not the benchmark's).

    python benchmarks/guidance_sweep.py [--model checkpoints/demo] [--requests 12] [--seed 2]
        [--device cuda] [--out guidance.json]

Varies one scale at a time around the model config's (text, image, audio) scales, scores
every setting on ``--requests`` toy requests from synth seed 2 (the benchmark uses seed 1,
training seed 0) with all three conditions given, and keeps, per modality, the scale with the
best score = mean(colour, shape, direction accuracy) + pulse-sync F1. Prints one JSON line per
setting and writes the chosen scales to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from toy_eval import SETTINGS, config_guidance, held_out_requests, run

from tia2v.pipeline import TIA2VPipeline

GRID = {"text": [1.0, 2.0, 3.0, 5.0], "image": [1.0, 1.5, 2.5], "audio": [1.0, 2.0, 4.0, 6.0]}


def score(row: dict) -> float:
    return (row["color"] + row["shape"] + row["direction"]) / 3 + row["pulse_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="checkpoints/demo")
    parser.add_argument("--device", help="default: cuda if available, else cpu")
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2, help="synth seed of the requests")
    parser.add_argument("--out", type=Path, default=Path("guidance.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = TIA2VPipeline.from_pretrained(args.model, args.device)
    base = config_guidance(pipe.cfg)
    chosen = dict(base)
    with tempfile.TemporaryDirectory() as tmp:
        requests = held_out_requests(Path(tmp), pipe.cfg, args.requests, args.seed)
        everything, rows = SETTINGS["default (text + image + audio)"], {}
        for name, values in GRID.items():
            for value in values:
                guidance = {**base, name: value}
                key = tuple(guidance.values())
                if key not in rows:  # the config's own scales come up once per modality
                    rows[key] = run(pipe, requests, everything, guidance=guidance)
                    rows[key]["score"] = score(rows[key])
                    print(json.dumps({"guidance": guidance, **rows[key]}), flush=True)
            chosen[name] = max(  # ties keep the config's scale
                values,
                key=lambda v: (rows[tuple({**base, name: v}.values())]["score"], v == base[name]),
            )
    print(json.dumps({"chosen": chosen, "config": base}))
    args.out.write_text(json.dumps(chosen) + "\n")


if __name__ == "__main__":
    main()
