import pytest

from tia2v.config import apply_overrides, resolve_config
from tia2v.data.synth import synthesize


@pytest.fixture(scope="session")
def tiny_toy(tmp_path_factory):
    """Toy clips sized for the tiny preset: 4 frames of 16x16 at 8 fps."""
    root = tmp_path_factory.mktemp("tiny-toy")
    synthesize(root, num_train=4, num_test=2, seed=3, size=16, num_frames=4, progress=False)
    return root


def tiny_cfg(root, run_dir, *overrides):
    return apply_overrides(
        resolve_config("tiny"), [f"data.root={root}", f"train.run_dir={run_dir}", *overrides]
    )


@pytest.fixture(scope="session")
def motion_model(tiny_toy, tmp_path_factory):
    """An exported tiny motion model (content 4 steps, then motion 2 steps)."""
    from tia2v.training.loop import train

    runs = tmp_path_factory.mktemp("runs")
    train(tiny_cfg(tiny_toy, runs / "content", "train.max_steps=4"), "content", progress=False)
    cfg = tiny_cfg(
        tiny_toy, runs / "motion", "train.max_steps=2", f"train.init_from={runs / 'content'}"
    )
    train(cfg, "motion", progress=False)
    return runs / "motion" / "model"
