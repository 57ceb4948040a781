import pytest
import torch

from tia2v.errors import InputError
from tia2v.model_folder import (
    generator_stage,
    join_state,
    load_network,
    read_config,
    read_stage_weights,
    save_model_folder,
    split_state,
)
from tia2v.models.network import TIA2VNetwork


def test_split_and_join_are_inverse():
    state = {"unet.a.weight": torch.ones(1), "conditioner.text_proj.bias": torch.zeros(2)}
    parts = split_state(state)
    assert parts == {
        "unet": {"a.weight": state["unet.a.weight"]},
        "conditioner": {"text_proj.bias": state["conditioner.text_proj.bias"]},
    }
    assert join_state(parts["unet"], parts["conditioner"]) == state


def test_save_then_load_gives_the_same_network(motion_model, tmp_path):
    cfg = read_config(motion_model)
    network = load_network(motion_model, cfg, generator_stage(motion_model))
    save_model_folder(tmp_path / "copy", cfg, [(network, None)], card="# card\n")
    assert generator_stage(tmp_path / "copy") == "motion"
    again = load_network(tmp_path / "copy", read_config(tmp_path / "copy"), "motion")
    for (name, a), (_, b) in zip(
        network.saved_state().items(), again.saved_state().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert (tmp_path / "copy" / "README.md").read_text() == "# card\n"
    parts = read_stage_weights(tmp_path / "copy", "motion")
    assert set(parts["unet"]) == set(network.unet.state_dict())


def test_a_truncated_weights_file_is_one_error_naming_it(motion_model, tmp_path):
    cfg = read_config(motion_model)
    network = TIA2VNetwork(cfg, "motion")
    save_model_folder(tmp_path, cfg, [(network, None)], card=None)
    weights = tmp_path / "motion.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InputError, match="does not verify: .*motion.safetensors: 1000 bytes"):
        load_network(tmp_path, cfg, "motion")
    (tmp_path / "manifest.json").unlink()  # a folder from before manifests: read, and refused
    with pytest.raises(InputError, match="motion.safetensors: missing or corrupt"):
        load_network(tmp_path, cfg, "motion")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a model folder"):
        read_config(tmp_path / "empty")


def test_encoder_files_shipped_inside_a_model_folder_are_found_from_anywhere(tmp_path, monkeypatch):
    from tia2v.config import apply_overrides, resolve_config, save_config
    from tia2v.model_folder import read_config

    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "BEATs.pt").write_bytes(b"x")
    cfg = apply_overrides(
        resolve_config("tiny"),
        ["encoders.audio=beats", "encoders.audio_path=weights/BEATs.pt", "encoders.text_path=gone"],
    )
    save_config(cfg, folder / "config.yaml")
    monkeypatch.chdir(tmp_path)
    read = read_config(folder)
    assert read.encoders.audio_path == str(folder / "weights" / "BEATs.pt")
    assert read.encoders.text_path == "gone"  # not there either: left for the loader to report
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "BEATs.pt").write_bytes(b"y")  # where the config says: used as is
    assert read_config(folder).encoders.audio_path == "weights/BEATs.pt"


def test_loading_without_random_init_gives_every_weight_of_the_file(motion_model):
    """Networks are built without nn.init's draws before their weights are loaded: the result
    is the network built the usual way and loaded, tensor for tensor (buffers included), and
    nn.init works again afterwards."""
    from tia2v.model_folder import INIT_FUNCTIONS, no_random_init

    cfg = read_config(motion_model)
    fast = load_network(motion_model, cfg, "motion")
    usual = TIA2VNetwork(cfg, "motion")
    parts = read_stage_weights(motion_model, "motion")
    usual.load_saved_state(join_state(parts["unet"], parts["conditioner"]))
    a, b = fast.state_dict(), usual.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with no_random_init():
        pass
    assert all(
        getattr(torch.nn.init, name).__module__ == "torch.nn.init" for name in INIT_FUNCTIONS
    )
    assert torch.nn.init.ones_(torch.zeros(2)).sum() == 2
