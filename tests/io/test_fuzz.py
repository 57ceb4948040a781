"""A bounded fuzz of the media readers: mutated mp4, wav and png files end in the documented
errors (InputError and its kinds) or decode, never in anything else."""

import numpy as np
import pytest

from tia2v.errors import InputError
from tia2v.io import load_audio, read_video
from tia2v.pipeline.inputs import load_image

CASES_PER_KIND = 700


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:  # flip bytes
        for at in rng.integers(0, len(data), rng.integers(1, 16)):
            data[at] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate
        data = data[: int(rng.integers(0, len(data)))]
    elif kind == 2:  # overwrite a run with random bytes
        at = int(rng.integers(0, len(data)))
        data[at : at + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    else:  # repeat a slice
        a, b = sorted(rng.integers(0, len(data), 2))
        data = data[:b] + data[a:b] + data[b:]
    return bytes(data)


@pytest.mark.slow
def test_mutated_media_files(toy_root, tmp_path):
    sources = {
        "mp4": (toy_root / "test" / "mp4" / "test_00000.mp4", lambda p: read_video(p)),
        "wav": (toy_root / "test" / "wav" / "test_00000.wav", lambda p: load_audio(p, 16000)),
        "png": (None, lambda p: load_image(p, 16)),
    }
    from PIL import Image

    Image.fromarray(np.arange(48 * 48 * 3, dtype=np.uint8).reshape(48, 48, 3)).save(
        tmp_path / "seed.png"
    )
    sources["png"] = (tmp_path / "seed.png", sources["png"][1])
    rng, counts, unexpected = np.random.default_rng(0), {}, []
    for kind, (seed_file, reader) in sources.items():
        original = seed_file.read_bytes()
        counts[kind] = {"decoded": 0, "refused": 0}
        for case in range(CASES_PER_KIND):
            path = tmp_path / f"case{case}.{kind}"
            path.write_bytes(mutate(original, rng))
            try:
                reader(path)
                counts[kind]["decoded"] += 1
            except InputError:
                counts[kind]["refused"] += 1
            except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
                unexpected.append(f"{kind} case {case}: {type(exc).__name__}: {exc}")
    total = sum(c["decoded"] + c["refused"] for c in counts.values()) + len(unexpected)
    print(f"fuzz: {total} mutated files, {counts}, {len(unexpected)} unexpected")
    assert total >= 2000
    assert not unexpected, "\n".join(unexpected[:20])
