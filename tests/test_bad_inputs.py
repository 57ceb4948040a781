"""Bad input at the command line: one line naming the flag, key or file, exit 2, nothing lost."""

import datetime
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import soundfile
from PIL import Image

from tia2v.cli import main
from tia2v.errors import InputError
from tia2v.training.checkpoint import load_checkpoint


def run(capsys, *argv):
    code = main(["--quiet", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line(capsys, fragment, *argv):
    code, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], err


def png_header_only(path, width, height):
    """A PNG whose header claims ``width`` x ``height`` (PIL refuses it before decoding)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


GENERATE_ROWS = {
    "seed above 2**62": (["--seed", "18446744073709551615"], "seed must be in [0, 2**62]"),
    "negative seed": (["--seed", "-1"], "seed must be in [0, 2**62]"),
    "negative steps": (["--steps", "-1"], "steps must be in [1, "),
    "zero steps": (["--steps", "0"], "steps must be in [1, "),
    "steps above T": (["--steps", "100000"], "steps must be in [1, "),
    "nan text guidance": (["--guidance-text", "nan"], "guidance text must be a finite number"),
    "inf audio guidance": (["--guidance-audio", "inf"], "guidance audio must be a finite"),
    "nan eta": (["--eta", "nan"], "eta must be a finite number"),
    "device tpu9": (["--device", "tpu9"], "--device tpu9: not a device name"),
    "device cuda without cuda": (["--device", "cuda"], "sees no CUDA device"),
}


@pytest.mark.parametrize("row", list(GENERATE_ROWS), ids=list(GENERATE_ROWS))
def test_generate_flags(row, motion_model, tmp_path, capsys):
    flags, fragment = GENERATE_ROWS[row]
    out = tmp_path / "o.mp4"
    assert_one_line(
        capsys,
        fragment,
        "generate",
        "--model",
        str(motion_model),
        "--text",
        "x",
        "--steps",
        "2",
        *flags,
        "-o",
        str(out),
    )
    assert not out.exists()


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_audio_samples(value, motion_model, tmp_path, capsys):
    samples = np.zeros(16000, np.float32)
    samples[100] = value
    soundfile.write(tmp_path / "a.wav", samples, 16000, subtype="FLOAT")
    assert_one_line(
        capsys,
        "a.wav: the audio has non-finite samples",
        "generate",
        "--model",
        str(motion_model),
        "--audio",
        str(tmp_path / "a.wav"),
        "--steps",
        "2",
        "-o",
        str(tmp_path / "o.mp4"),
    )


def test_images_too_small_or_too_large(motion_model, tmp_path, capsys):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    png_header_only(tmp_path / "huge.png", 20000, 20000)
    for name, fragment in (("dot.png", "at least 8 px"), ("huge.png", "image too large")):
        assert_one_line(
            capsys,
            fragment,
            "generate",
            "--model",
            str(motion_model),
            "--image",
            str(tmp_path / name),
            "--steps",
            "2",
            "-o",
            str(tmp_path / "o.mp4"),
        )


def test_sixteen_bit_greyscale_is_grey_not_white(tmp_path):
    from tia2v.pipeline.inputs import load_image

    Image.fromarray(np.full((16, 16), 32768, np.uint16)).save(tmp_path / "grey16.png")
    image = load_image(tmp_path / "grey16.png", 16)  # [-1, 1]
    assert abs(float(image.mean())) < 0.02  # mid-grey, where a plain RGB convert gave white


def test_a_prompt_that_is_not_utf8_is_replaced_not_a_crash(motion_model, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    code, err = run(
        capsys,
        "generate",
        "--model",
        str(motion_model),
        "--text",
        "caf\udce9",
        "--steps",
        "2",
        "-o",
        str(out),
    )
    assert code == 0, err
    assert json.loads(out.with_suffix(".json").read_text())["text"] == "caf\ufffd"


def test_outputs_are_checked_before_any_work_and_never_overwritten(motion_model, tmp_path, capsys):
    base = ["generate", "--model", str(motion_model), "--text", "x", "--steps", "2"]
    (tmp_path / "folder.mp4").mkdir()
    assert_one_line(capsys, "is a folder", *base, "-o", str(tmp_path / "folder.mp4"))
    (tmp_path / "file").write_text("keep me")
    assert_one_line(capsys, "cannot create", *base, "-o", str(tmp_path / "file" / "o.mp4"))
    assert_one_line(capsys, "must end in .mp4", *base, "-o", str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()
    out = tmp_path / "o.mp4"
    assert run(capsys, *base, "-o", str(out))[0] == 0
    before = out.read_bytes()
    assert_one_line(
        capsys, "exists (--overwrite replaces it)", *base, "--seed", "3", "-o", str(out)
    )
    assert out.read_bytes() == before
    assert run(capsys, *base, "--seed", "3", "--overwrite", "-o", str(out))[0] == 0
    assert out.read_bytes() != before


CONFIG_ROWS = {
    "save_every 0": ("train.save_every=0", "'train.save_every': 0 is out of range (must be >= 1)"),
    "log_every 0": ("train.log_every=0", "'train.log_every': 0 is out of range"),
    "batch_size 0": ("train.batch_size=0", "'train.batch_size': 0 is out of range"),
    "lr nan": ("train.lr=nan", "'train.lr': expected a finite number"),
    "lr -1": ("train.lr=-1", "'train.lr': -1.0 is out of range (must be > 0)"),
    "prediction foo": ("diffusion.prediction=foo", "'foo' is not one of eps, v"),
    "schedule foo": ("diffusion.schedule=foo", "'foo' is not one of cosine, linear"),
    "drop_text 2": ("train.drop_text=2", "'train.drop_text': 2.0 is out of range"),
    "image_size 4": ("data.image_size=4", "'data.image_size': 4 is out of range (must be >= 8)"),
}


@pytest.mark.parametrize("row", list(CONFIG_ROWS), ids=list(CONFIG_ROWS))
def test_config_values(row, capsys):
    override, fragment = CONFIG_ROWS[row]
    assert_one_line(
        capsys, fragment, "train", "content", "--config", "tiny", "--set", override, "--dry-run"
    )


def test_motion_from_a_content_run_of_another_config(motion_model, tmp_path, capsys):
    content_run = motion_model.parent.parent / "content"
    assert_one_line(
        capsys,
        "do not fit this config's model",
        "train",
        "motion",
        "--config",
        "demo",
        "--set",
        f"train.init_from={content_run}",
        "--set",
        f"train.run_dir={tmp_path / 'run'}",
        "--set",
        f"data.root={motion_model.parent.parent}",
    )


def test_synth_bad_places_and_rates(tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    assert_one_line(
        capsys,
        "cannot write there",
        "synth",
        str(tmp_path / "file" / "toy"),
        "--train",
        "1",
        "--test",
        "0",
    )
    assert_one_line(capsys, "--fps a number > 0", "synth", str(tmp_path / "toy"), "--fps", "nan")
    assert (tmp_path / "file").read_text() == "keep me"


def test_a_fresh_run_never_starts_over_in_a_folder_that_holds_one(
    motion_model, tiny_toy, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    shutil.copytree(motion_model.parent, run_dir)
    files = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert_one_line(
        capsys,
        "already holds a run; continue it with --resume",
        "train",
        "motion",
        "--config",
        "tiny",
        "--set",
        f"data.root={tiny_toy}",
        "--set",
        f"train.run_dir={run_dir}",
        "--set",
        f"train.init_from={motion_model}",
    )
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == files


def test_resuming_a_copy_continues_in_the_copy(motion_model, tmp_path, capsys):
    original = motion_model.parent
    before = {p: p.read_bytes() for p in original.rglob("*") if p.is_file()}
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    code, err = run(capsys, "train", "motion", "--resume", str(copy), "--set", "train.max_steps=3")
    assert code == 0, err
    assert {p: p.read_bytes() for p in original.rglob("*") if p.is_file()} == before
    assert (copy / "checkpoints" / "step_00000003").is_dir()


def test_a_checkpoint_holding_pickled_objects_is_refused_in_one_line(
    motion_model, tmp_path, capsys
):
    import torch

    copy = tmp_path / "run"
    shutil.copytree(motion_model.parent, copy)
    latest = copy / "checkpoints" / (copy / "checkpoints" / "latest").read_text().strip()
    torch.save({"state": datetime.datetime(2026, 1, 1)}, latest / "optimizer.pt")  # not a tensor
    # the manifest finds the altered file first; without one (an older checkpoint) loading does
    assert_one_line(capsys, "no checkpoint verifies", "train", "motion", "--resume", str(copy))
    (latest / "manifest.json").unlink()
    with pytest.raises(InputError, match="holding more than plain tensors"):
        load_checkpoint(latest)


def test_every_torch_load_is_weights_only_and_nothing_unpickles():
    import pathlib
    import re

    sources = pathlib.Path(__file__).parents[1].joinpath("src", "tia2v").rglob("*.py")
    for path in sources:
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start() : text.find("\n", match.start()) + 1]
            assert "weights_only=True" in call, (path, call)
        assert not re.search(r"^\s*import pickle|pickle\.load", text, flags=re.M), path


def test_sample_and_eval_keep_what_is_there(motion_model, tiny_toy, tmp_path, capsys):
    from tia2v.io import write_video

    out = tmp_path / "samples"
    (out / "fake").mkdir(parents=True)
    write_video(out / "fake" / "kept.mp4", np.zeros((4, 16, 16, 3), np.uint8), 8.0)
    before = (out / "fake" / "kept.mp4").read_bytes()
    assert_one_line(
        capsys,
        "already holds samples (--overwrite",
        "sample",
        "--model",
        str(motion_model),
        "--data",
        str(tiny_toy),
        "--num",
        "1",
        "-o",
        str(out),
    )
    assert (out / "fake" / "kept.mp4").read_bytes() == before
    real = tmp_path / "real"
    write_video(real / "kept.mp4", np.zeros((4, 16, 16, 3), np.uint8), 8.0)
    report = tmp_path / "report.json"
    args = ["eval", "--real", str(real), "--fake", str(out / "fake"), "--metrics", "psnr"]
    assert run(capsys, *args, "-o", str(report))[0] == 0
    first = report.read_text()
    assert_one_line(capsys, "exists (--overwrite replaces it)", *args, "-o", str(report))
    assert report.read_text() == first
    assert_one_line(capsys, "must end in .json", *args, "-o", str(tmp_path / "report.txt"))
