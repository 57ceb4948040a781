"""Clips per second of the VAT data set on a toy-VAT folder (decode mp4 + wav, crop, resize).

    .venv/bin/python benchmarks/loader.py [--data DIR] [--repeats 5]

Prints one JSON line. Synthesises a 32-clip toy set in a temporary folder unless --data is given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from tia2v.config import DataConfig
from tia2v.data.synth import synthesize
from tia2v.data.vat import VATDataset


def clips_per_second(ds: VATDataset) -> float:
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return len(ds) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="a VAT folder (default: synthesise 32 toy clips)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or tmp
        if not args.data:
            synthesize(root, num_train=32, num_test=0, seed=0, progress=False)
        ds = VATDataset(DataConfig(root=root, num_frames=16, image_size=args.image_size), "train")
        clips_per_second(ds)  # warm-up: imports, page cache
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        rates = [clips_per_second(ds) for _ in range(args.repeats)]
        cpu_per_wall = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
    print(
        json.dumps(
            {
                "benchmark": "loader",
                "source": "decode mp4 + wav",
                "clips": len(ds),
                "image_size": args.image_size,
                "clips_per_s_median": round(statistics.median(rates), 1),
                "clips_per_s_all": [round(r, 1) for r in rates],
                "cpu_s_per_wall_s": round(cpu_per_wall, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
