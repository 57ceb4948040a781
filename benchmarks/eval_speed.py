"""Videos per second of each eval metric on the toy set (2 threads, one JSON line).

    .venv/bin/python benchmarks/eval_speed.py [--videos 16]

Synthesises toy test clips, pairs each with itself plus noise, and times every metric that
needs no downloaded network separately (FVD/FID timed on small TorchScript stand-ins with
the real input contract; their cost here is the preprocessing, not I3D/Inception).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tia2v.data.synth import synthesize
from tia2v.io import read_video, write_video
from tia2v.metrics.evaluate import Networks, evaluate


class MeanStd(torch.nn.Module):
    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        y = x.float()
        return torch.cat([y.mean(dim=(2, 3)), y.std(dim=(2, 3))], dim=1)


class MeanStd3D(torch.nn.Module):
    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = True,
        return_features: bool = True,
    ) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize(root / "toy", 0, args.videos, seed=7, size=64, progress=False)
        real = root / "toy" / "test" / "mp4"
        fake = root / "fake"
        rng = np.random.default_rng(0)
        for path in real.glob("*.mp4"):
            video = read_video(path)
            noisy = np.clip(
                video.frames.astype(int) + rng.integers(-10, 10, video.frames.shape), 0, 255
            ).astype(np.uint8)
            write_video(fake / path.name, noisy, video.fps, video.audio, video.audio_rate)
        torch.jit.script(MeanStd()).save(str(root / "inception.pt"))
        torch.jit.script(MeanStd3D()).save(str(root / "i3d.pt"))
        nets = Networks(i3d=str(root / "i3d.pt"), inception=str(root / "inception.pt"))
        evaluate(real, fake, ["av_align"], nets, progress=False)  # warm-up (librosa JIT)
        report = {"benchmark": "eval_speed", "videos": args.videos, "video": "16 frames, 64x64"}
        for metric in ("psnr", "ssim", "av_align", "toy", "fvd", "fid"):
            start = time.perf_counter()
            evaluate(real, fake, [metric], nets, progress=False)
            report[f"{metric}_videos_per_s"] = round(args.videos / (time.perf_counter() - start), 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
