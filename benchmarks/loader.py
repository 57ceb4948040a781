"""Clips per second of the VAT data set: decoding mp4 + wav and running the frozen encoders
live, vs reading the embedding cache written by ``tia2v prepare``.

    .venv/bin/python benchmarks/loader.py [--data DIR] [--config demo] [--repeats 5]

Synthesises a 32-clip toy set in a temporary folder unless --data is given; builds the cache
for the config there. Prints one JSON line (2 threads; medians of the repeats).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from tia2v.config import apply_overrides, resolve_config
from tia2v.data.cache import build_cache
from tia2v.data.synth import synthesize
from tia2v.data.vat import VATDataset
from tia2v.encoders.text import build_text_encoder


def clips_per_second(ds: VATDataset, encode) -> float:
    start = time.perf_counter()
    for i in range(len(ds)):
        encode(ds[i])
    return len(ds) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="a VAT folder (default: synthesise 32 toy clips)")
    parser.add_argument("--config", default="demo")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or tmp
        if not args.data:
            synthesize(root, num_train=32, num_test=0, seed=0, progress=False)
        cfg = apply_overrides(resolve_config(args.config), [f"data.root={root}"])
        text = build_text_encoder(
            cfg.encoders.text, cfg.encoders.text_path, cfg.encoders.text_max_length
        )
        cache, _, _ = build_cache(root, cfg, progress=False)
        live = VATDataset(cfg.data, "train")
        cached = VATDataset(cfg.data, "train", cache=cache)

        def run_encoders(item):  # what a live training step computes that the cache holds
            text([item["caption"]])

        results = {}
        for name, ds, encode in (
            ("live", live, run_encoders),
            ("cached", cached, lambda item: None),
        ):
            clips_per_second(ds, encode)  # warm-up
            results[name] = [clips_per_second(ds, encode) for _ in range(args.repeats)]
    live_rate, cached_rate = (
        statistics.median(results["live"]),
        statistics.median(results["cached"]),
    )
    print(
        json.dumps(
            {
                "benchmark": "loader",
                "config": args.config,
                "clips": len(live),
                "frames": cfg.data.num_frames,
                "image_size": cfg.data.image_size,
                "frozen_encoders": list(cache.manifest["encoders"]),
                "live_clips_per_s": round(live_rate, 1),
                "cached_clips_per_s": round(cached_rate, 1),
                "cached_vs_live": round(cached_rate / live_rate, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
