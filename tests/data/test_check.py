"""Every bad input of `tia2v prepare --check`: one clear line naming the file, nothing lost."""

import subprocess
import sys

import numpy as np
import pytest

from tia2v.config import DataConfig
from tia2v.data.check import check_folder
from tia2v.data.vat import VATDataset
from tia2v.io import write_audio

CFG = DataConfig(num_frames=16, image_size=16)


def break_clip(root, kind: str) -> tuple[str, str]:
    """Damages train_00001 in one way; returns (file named in the message, problem text)."""
    base = root / "train"
    if kind == "missing caption":
        (base / "txt/train_00001.txt").unlink()
        return "train_00001.mp4", "missing caption"
    if kind == "orphan audio":
        (base / "mp4/train_00001.mp4").unlink()
        (base / "txt/train_00001.txt").unlink()
        return "train_00001.wav", "audio without a video"
    if kind == "unreadable mp4":
        (base / "mp4/train_00001.mp4").write_bytes(b"\x00\x01garbage" * 100)
        return "train_00001.mp4", "cannot decode video"
    if kind == "empty mp4":
        (base / "mp4/train_00001.mp4").write_bytes(b"")
        return "train_00001.mp4", "cannot decode video"
    if kind == "short audio":
        write_audio(base / "wav/train_00001.wav", np.zeros(8000, np.float32), 16000)
        return "train_00001.wav", "audio lasts 0.500 s, shorter than the video's 2.000 s"
    if kind == "undecodable caption":
        (base / "txt/train_00001.txt").write_bytes(b"\xff\xfe\xfa caption")
        return "train_00001.txt", "caption is not valid UTF-8"
    if kind == "empty caption":
        (base / "txt/train_00001.txt").write_text("\n  \n")
        return "train_00001.txt", "caption is empty"
    raise ValueError(kind)


KINDS = [
    "missing caption",
    "orphan audio",
    "unreadable mp4",
    "empty mp4",
    "short audio",
    "undecodable caption",
    "empty caption",
]


@pytest.mark.parametrize("kind", KINDS)
def test_each_problem_is_reported_and_the_rest_loads(toy_copy, kind):
    file_name, problem = break_clip(toy_copy, kind)
    checked, problems = check_folder(toy_copy, CFG, progress=False)
    assert len(problems) == 1, problems
    message = problems[0].message
    assert file_name in message and problem in message and "\n" not in message
    # Nothing else is lost: every other clip still loads.
    ds = VATDataset(CFG, "train", toy_copy)
    for i, clip in enumerate(ds.clips):
        if clip.id != "train_00001":
            assert ds[i]["video"].shape == (3, 16, 16, 16)


def test_clip_shorter_than_num_frames(toy_copy):
    _, problems = check_folder(toy_copy, DataConfig(num_frames=20), progress=False)
    assert len(problems) == 6  # every clip has 16 frames
    assert "clip has 16 frames, fewer than num_frames=20" in problems[0].message


def test_cli_reports_all_problems_in_one_table(toy_copy):
    break_clip(toy_copy, "unreadable mp4")
    (toy_copy / "test/txt/test_00000.txt").write_bytes(b"\xff\xff")
    result = subprocess.run(
        [sys.executable, "-m", "tia2v", "--quiet", "prepare", str(toy_copy), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 3  # header + 2 problems
    assert "train_00001.mp4: cannot decode video" in result.stdout
    assert "test_00000.txt: caption is not valid UTF-8" in result.stdout
    assert "2 problem(s)" in result.stdout


def test_clean_folder_passes(toy_root):
    checked, problems = check_folder(toy_root, CFG, progress=False)
    assert (checked, problems) == (6, [])


def test_expected_fps_and_length_are_checked(toy_root):
    _, problems = check_folder(
        toy_root, DataConfig(expected_fps=30, clip_frames=90), progress=False
    )
    messages = " ".join(p.message for p in problems)
    assert "8.000 fps, expected data.expected_fps=30" in messages
    assert "16 frames, expected data.clip_frames=90" in messages
