import subprocess
import sys

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
