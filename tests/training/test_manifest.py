"""Checkpoints and model folders that verify themselves."""

import shutil

import pytest

from tests.helpers import tiny_cfg
from tia2v.errors import InputError
from tia2v.manifest import MANIFEST, manifest_problem
from tia2v.model_folder import generator_stage, load_network, read_config
from tia2v.training.checkpoint import find_checkpoint, load_checkpoint
from tia2v.training.loop import train


def flip_a_byte(path, at=-100):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def run(tiny_toy, tmp_path_factory):
    """A tiny content run with checkpoints at steps 2 and 4 (read-only: copy to modify)."""
    folder = tmp_path_factory.mktemp("manifest") / "run"
    cfg = tiny_cfg(tiny_toy, folder, "train.max_steps=4", "train.save_every=2")
    train(cfg, "content", progress=False)
    return folder


def test_every_checkpoint_lists_its_files(run):
    for step in ("step_00000002", "step_00000004"):
        folder = run / "checkpoints" / step
        assert (folder / MANIFEST).is_file() and manifest_problem(folder) is None
    assert manifest_problem(run / "model") is None


def test_a_bit_flipped_newest_checkpoint_is_skipped_for_the_one_before(run, tmp_path, caplog):
    copy = shutil.copytree(run, tmp_path / "run")
    flip_a_byte(copy / "checkpoints" / "step_00000004" / "ema.safetensors")
    folder = find_checkpoint(copy)
    assert folder.name == "step_00000002"
    assert "skipping checkpoint step_00000004" in caplog.text and "ema.safetensors" in caplog.text
    assert load_checkpoint(folder)["state"]["step"] == 2


def test_truncation_and_a_missing_latest(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "checkpoints" / "latest").unlink()  # a convenience, not the source of truth
    assert find_checkpoint(copy).name == "step_00000004"
    model = copy / "checkpoints" / "step_00000004" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:500])
    assert find_checkpoint(copy).name == "step_00000002"
    flip_a_byte(copy / "checkpoints" / "step_00000002" / "optimizer.pt", at=10)
    with pytest.raises(InputError, match="no checkpoint verifies"):
        find_checkpoint(copy)


def test_an_old_checkpoint_without_a_manifest_still_resumes(run, tmp_path, caplog):
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "checkpoints" / "step_00000004" / MANIFEST).unlink()
    assert find_checkpoint(copy).name == "step_00000004"
    assert "no manifest" in caplog.text


def test_a_flipped_model_folder_is_one_error_naming_the_file(run, tmp_path):
    copy = shutil.copytree(run / "model", tmp_path / "model")
    flip_a_byte(copy / "content.safetensors")
    with pytest.raises(InputError, match="content.safetensors: altered"):
        load_network(copy, read_config(copy), generator_stage(copy))


def test_the_shipped_demo_folder_verifies():
    from pathlib import Path

    assert manifest_problem(Path(__file__).parents[2] / "checkpoints" / "demo") is None
    assert (Path(__file__).parents[2] / "checkpoints" / "demo" / MANIFEST).is_file()
