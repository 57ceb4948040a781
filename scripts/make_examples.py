"""Writes examples/ (the demo's inputs) from one toy-VAT request of a seed never used in
training (training uses seed 0): first.png (the first frame, 64x64), beats.wav (2 s, 16 kHz)
and prompt.txt (the caption).

    .venv/bin/python scripts/make_examples.py
"""

from pathlib import Path

import numpy as np
from PIL import Image

from tia2v.data.synth import clip_rng, make_spec, render_audio, render_frames
from tia2v.io import write_audio

SEED, INDEX = 2024, 3


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "examples"
    out.mkdir(exist_ok=True)
    rng = clip_rng(SEED, "test", INDEX)
    spec = make_spec("example", rng, size=64, num_frames=16, fps=8.0)
    frames = render_frames(spec)
    Image.fromarray(frames[0]).save(out / "first.png")
    write_audio(out / "beats.wav", render_audio(spec, rng), spec.audio_rate)
    (out / "prompt.txt").write_text(spec.caption + "\n")
    print(
        f"{out}: '{spec.caption}', onsets at frames {spec.onset_frames}, {np.asarray(frames).shape}"
    )


if __name__ == "__main__":
    main()
