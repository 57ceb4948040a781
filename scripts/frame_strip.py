"""A still strip of a video's frames, side by side, as a PNG (for the README and for looking).

.venv/bin/python scripts/frame_strip.py out/demo.mp4 docs/demo_strip.png [--scale 4] [--every 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tia2v.errors import InputError
from tia2v.io import read_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=int, default=4, help="pixel repeat (default 4)")
    parser.add_argument("--every", type=int, default=1, help="keep every n-th frame")
    args = parser.parse_args()
    try:
        frames = read_video(args.video).frames[:: args.every]  # (F, H, W, 3) uint8
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    gap = np.full((frames.shape[1], 1, 3), 255, np.uint8)
    strip = np.concatenate([part for f in frames for part in (f, gap)][:-1], axis=1)
    image = Image.fromarray(strip)
    image = image.resize((image.width * args.scale, image.height * args.scale), Image.NEAREST)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print(f"wrote {args.out} ({len(frames)} frames)")


if __name__ == "__main__":
    main()
