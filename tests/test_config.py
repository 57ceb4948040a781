import dataclasses
from pathlib import Path

import pytest
import yaml

from tia2v.config import (
    PRESETS,
    ExperimentConfig,
    apply_overrides,
    load_config,
    resolve_config,
    save_config,
)
from tia2v.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = apply_overrides(ExperimentConfig(), ["train.lr=3e-4", "model.channel_mult=[1,2,4]"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_unknown_key_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown config key 'train\.learning_rate'"):
        load_config(tmp_path / "c.yaml")


def test_unknown_section_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        apply_overrides(ExperimentConfig(), ["trian.lr=1"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.max_steps=ten", "train.max_steps': expected an integer"),
        ("train.lr=fast", "train.lr': expected a number"),
        ("model.use_scale_shift_norm=maybe", "expected true/false"),
        ("train.max_steps=1.5", "expected an integer"),
        ("model=3", "section 'model"),
        ("train.lr", "expected key=value"),
    ],
)
def test_mistyped_values_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ExperimentConfig(), [override])


def test_overrides_convert_types():
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "train.lr=1e-4",  # YAML reads this as a string; the field makes it a float
            "train.max_steps=2_000",
            "model.use_scale_shift_norm=false",
            "model.attention_resolutions=16,8",
            "diffusion.vlb_weight=null",
            "data.root=/tmp/x",
            "sample.fps=10",
        ],
    )
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.max_steps == 2000
    assert cfg.model.use_scale_shift_norm is False
    assert cfg.model.attention_resolutions == (16, 8)
    assert cfg.diffusion.vlb_weight is None
    assert cfg.data.root == "/tmp/x"
    assert cfg.sample.fps == 10.0 and isinstance(cfg.sample.fps, float)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ExperimentConfig().train.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load(name):
    cfg = resolve_config(name)
    assert cfg.data.num_frames >= 2 and cfg.data.image_size >= 16


def test_paper_presets_hold_the_paper_values():
    urmp, landscape = resolve_config("paper-urmp"), resolve_config("paper-landscape")
    for cfg in (urmp, landscape):
        assert (cfg.data.image_size, cfg.data.num_frames) == (64, 16)
        assert (cfg.diffusion.schedule, cfg.diffusion.num_timesteps) == ("cosine", 4000)
        assert cfg.model.model_channels == 64 and cfg.model.channel_mult == (1, 2, 3)
        assert (cfg.encoders.text, cfg.encoders.image, cfg.encoders.audio) == (
            "clip",
            "clip",
            "beats",
        )
    assert (urmp.data.expected_fps, urmp.data.clip_frames) == (30, 90)
    assert (landscape.data.expected_fps, landscape.data.clip_frames) == (10, 30)


def test_tiny_preset_is_tiny():
    cfg = resolve_config("tiny")
    assert cfg.data.num_frames <= 4 and cfg.data.image_size == 16 and cfg.model.model_channels == 8


def test_missing_config_file():
    with pytest.raises(ConfigError, match="no-such.yaml: no such config file"):
        resolve_config("no-such.yaml")


def test_invalid_yaml_is_named(tmp_path):
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_the_shipped_demo_config_loads_and_the_demo_preset_describes_it(caplog):
    shipped = load_config(Path(__file__).parents[1] / "checkpoints/demo/config.yaml")
    assert not caplog.records
    assert shipped.refiner.lowres_channels
    assert shipped.model == resolve_config("demo").model
    assert shipped.refiner == resolve_config("demo").refiner
    assert shipped.sample.sampler == "lcm" and shipped.distill.teacher == "checkpoints/demo"


def test_an_older_folders_removed_keys_at_their_old_defaults_load_quietly(tmp_path, caplog):
    """As the demo's config.yaml was written before those keys were removed."""
    (tmp_path / "old.yaml").write_text(
        "model:\n  channels_last: false\n  first_frame_residual: false\n"
        "  lowres_channels: false\nrefiner:\n  model:\n    lowres_channels: true\n"
    )
    old = load_config(tmp_path / "old.yaml")
    assert not caplog.records
    assert old.refiner.lowres_channels  # moved from refiner.model


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"model": {"first_frame_residual": True}}, "no longer implements"),
        ({"model": {"lowres_channels": True}}, "only a refiner"),
        ({"model": {"learn_sigma": False}}, "keep only diffusion.learn_sigma"),
        ({"refiner": {"model": {"learn_sigma": False}}}, "keep only diffusion.learn_sigma"),
    ],
)
def test_removed_keys_that_would_change_the_output_are_errors(tmp_path, section, message):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(section))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_removed_keys_without_effect_warn(tmp_path, caplog):
    path = tmp_path / "old.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "model": {"channels_last": True, "learn_sigma": True},
                "train": {"resume": "runs/x"},
                "sample": {"seed": 3},
            }
        )
    )
    assert load_config(path) == ExperimentConfig()
    warned = " ".join(record.getMessage() for record in caplog.records)
    for key in ("model.channels_last", "train.resume", "sample.seed"):
        assert key in warned


def test_a_config_file_starts_from_its_base(tmp_path):
    (tmp_path / "mine.yaml").write_text("base: paper-urmp\ndata:\n  root: /data/urmp\n")
    (tmp_path / "run.yaml").write_text("base: mine.yaml\ntrain:\n  lr: 1.0e-4\n")
    cfg = resolve_config(str(tmp_path / "run.yaml"))
    paper = resolve_config("paper-urmp")
    assert cfg.data.root == "/data/urmp" and cfg.train.lr == 1e-4
    assert cfg.model == paper.model and cfg.encoders == paper.encoders
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="comes back"):
        resolve_config(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("base: nowhere\n")
    with pytest.raises(ConfigError, match="c.yaml: base 'nowhere' is neither"):
        resolve_config(str(tmp_path / "c.yaml"))


@pytest.mark.parametrize("data_set", ["urmp", "landscape"])
def test_the_shr_presets_have_the_original_refiners_shape(data_set):
    cfg, paper = resolve_config(f"paper-{data_set}-shr"), resolve_config(f"paper-{data_set}")
    model = cfg.refiner.model
    assert (model.model_channels, model.channel_mult) == (64, (1, 1, 2, 3, 4))
    assert (model.attention_resolutions, model.num_heads, model.num_res_blocks) == ((16, 8), 4, 2)
    assert cfg.data.image_size * cfg.refiner.scale == 128
    assert (cfg.train.batch_size, cfg.train.lr) == (2, 5e-5)
    assert (cfg.data, cfg.diffusion, cfg.encoders) == (paper.data, paper.diffusion, paper.encoders)
