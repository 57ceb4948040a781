import subprocess
import sys
from pathlib import Path

import yaml

from tia2v.cli import main
from tia2v.io import probe_video


def tia2v(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tia2v", *args], capture_output=True, text=True)


def test_help_has_examples():
    for command in ("synth", "prepare", "train"):
        result = tia2v(command, "--help")
        assert result.returncode == 0 and "example" in result.stdout


def test_synth_cli(tmp_path):
    result = tia2v(
        "--quiet",
        "synth",
        str(tmp_path / "toy"),
        "--train",
        "2",
        "--test",
        "1",
        "--size",
        "32",
        "--frames",
        "8",
        "--fps",
        "4",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 2 train + 1 test clips" in result.stdout
    assert probe_video(tmp_path / "toy/train/mp4/train_00001.mp4")[:2] == (8, 4.0)
    assert (tmp_path / "toy/test/meta/test_00000.json").is_file()


def test_dry_run_prints_the_resolved_config(capsys):
    assert (
        main(["train", "content", "--config", "tiny", "--set", "train.lr=3e-4", "--dry-run"]) == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["lr"] == 3e-4 and cfg["model"]["model_channels"] == 8


def test_bad_override_is_one_line_exit_2():
    result = tia2v(
        "train", "content", "--config", "tiny", "--set", "train.max_steps=many", "--dry-run"
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: config key 'train.max_steps': expected an integer, got 'many'"
    )


def test_missing_data_folder_is_exit_2(tmp_path):
    result = tia2v("prepare", str(tmp_path / "nowhere"), "--check")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nowhere: no train/ or test/ folder" in result.stderr


def test_quiet_shows_no_progress_bar_not_even_the_encoders(motion_model, tmp_path):
    out = tmp_path / "v.mp4"
    args = ("generate", "--model", str(motion_model), "--text", "a red circle", "--steps", "2")
    quiet = tia2v("--quiet", *args, "-o", str(out))
    assert quiet.returncode == 0, quiet.stderr
    assert "%|" not in quiet.stderr and "Loading" not in quiet.stderr
    loud = tia2v(*args, "-o", str(tmp_path / "w.mp4"))
    assert loud.returncode == 0 and "sample dpm++" in loud.stderr


def test_config_values_are_checked_against_their_choices():
    first_frame = tia2v("train", "content", "--set", "model.first_frame=clen", "--dry-run")
    assert first_frame.returncode == 2
    assert first_frame.stderr.strip() == (
        "error: config key 'model.first_frame': 'clen' is not one of noised, clean"
    )
    sampler = tia2v("train", "content", "--set", "sample.sampler=foo", "--dry-run")
    assert sampler.returncode == 2
    assert "'sample.sampler': 'foo' is not one of ddpm, ddim, dpm++, unipc" in sampler.stderr


def test_sampler_choices_come_from_the_registry():
    from tia2v.cli import build_parser
    from tia2v.sampling.registry import SAMPLERS

    generate = build_parser()._subparsers._group_actions[0].choices["generate"]
    sampler = next(a for a in generate._actions if a.dest == "sampler")
    assert list(sampler.choices) == list(SAMPLERS)


def test_transformers_load_reports_only_with_debug(tiny_clip_text_dir, toy_root, tmp_path):
    """A full CLIP folder read as a text encoder makes transformers list the vision weights it
    leaves out, a report that looks like a broken checkpoint: shown only with --debug."""
    import shutil

    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig

    from tests.helpers import tiny_clip_vision_config

    folder = Path(shutil.copytree(tiny_clip_text_dir, tmp_path / "clip"))
    text = CLIPTextConfig.from_pretrained(folder)
    vision = tiny_clip_vision_config(layers=1)
    CLIPModel(
        CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)
    ).save_pretrained(folder)
    data = Path(shutil.copytree(toy_root, tmp_path / "toy"))
    args = [
        "prepare",
        str(data),
        "--config",
        "tiny",
        "--set",
        "encoders.text=clip",
        "--set",
        f"encoders.text_path={folder}",
        "--set",
        "data.image_size=32",
    ]
    quiet = tia2v("--quiet", *args)
    assert quiet.returncode == 0, quiet.stderr
    assert "UNEXPECTED" not in quiet.stderr
    shutil.rmtree(data / "cache", ignore_errors=True)
    debug = tia2v("--quiet", "--debug", *args)
    assert debug.returncode == 0, debug.stderr
    assert "UNEXPECTED" in debug.stderr
