"""Property-based tests: config overrides and the per-frame audio windows."""

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tia2v.config import ExperimentConfig, apply_overrides, from_dict, to_dict
from tia2v.data.vat import frame_windows
from tia2v.errors import ConfigError


def leaf_keys(cfg, prefix=""):
    keys = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys += leaf_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


KEYS = leaf_keys(ExperimentConfig())


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), raw=st.text(max_size=12))
def test_any_override_is_applied_or_refused_with_a_config_error(key, raw):
    try:
        cfg = apply_overrides(ExperimentConfig(), [f"{key}={raw}"])
    except ConfigError as exc:
        assert key in str(exc) or "override" in str(exc)
        return
    assert from_dict(ExperimentConfig, to_dict(cfg)) == cfg  # what is accepted round-trips


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(0, 4000),
    rate=st.sampled_from([8000, 16000, 22050]),
    times=st.lists(st.floats(-1.0, 2.0, allow_nan=False), min_size=1, max_size=6),
    window=st.floats(0.001, 0.3),
)
def test_each_frame_window_is_its_own_slice_of_the_audio(length, rate, times, window):
    audio = np.random.default_rng(length).normal(size=length).astype(np.float32)
    windows = frame_windows(audio, rate, np.asarray(times), window)
    size = round(window * rate)
    assert windows.shape == (len(times), size) and windows.dtype == np.float32
    for row, t in zip(windows, times, strict=True):
        start = int(np.rint(t * rate)) - size // 2
        expected = [audio[i] if 0 <= i < length else 0.0 for i in range(start, start + size)]
        np.testing.assert_array_equal(row, np.asarray(expected, np.float32))
