import logging

import pytest
import torch

from tests.helpers import random_beats, tiny_clip_vision
from tia2v.config import apply_overrides, resolve_config
from tia2v.data import cache as cache_module
from tia2v.data.cache import build_cache, find_cache
from tia2v.data.vat import VATDataset, collate
from tia2v.encoders import Conditioner


@pytest.fixture
def frozen_cfg(toy_copy, tmp_path):
    """tiny + frozen CLIP image and BEATs audio encoders (random weights, saved to disk)."""
    tiny_clip_vision().save_pretrained(tmp_path / "clip-vision")
    random_beats().save(tmp_path / "beats.pt")
    return apply_overrides(
        resolve_config("tiny"),
        [
            f"data.root={toy_copy}",
            "data.audio_window=0.2",
            "encoders.image=clip",
            f"encoders.image_path={tmp_path / 'clip-vision'}",
            "encoders.audio=beats",
            f"encoders.audio_path={tmp_path / 'beats.pt'}",
        ],
    )


def batches(cfg, cache):
    ds = VATDataset(cfg.data, "train", cache=cache)
    ds.set_epoch(3)
    return collate([ds[i] for i in range(len(ds))])


def test_cached_batches_equal_live_ones(frozen_cfg):
    cache, written, reused = build_cache(frozen_cfg.data.root, frozen_cfg, progress=False)
    assert (written, reused) == (6, 0)
    assert find_cache(frozen_cfg.data.root, frozen_cfg).dir == cache.dir
    cached, live = batches(frozen_cfg, cache), batches(frozen_cfg, None)
    assert {"text_tokens", "image_tokens", "audio_tokens"} <= set(cached)
    for key in ("video", "first_frame", "audio", "frame_indices"):
        assert torch.equal(cached[key], live[key]), key
    assert cached["caption"] == live["caption"]
    conditioner = Conditioner(frozen_cfg).eval()
    with torch.no_grad():
        a, b = conditioner.conditions(cached), conditioner.conditions(live)
    assert torch.equal(a.text_mask, b.text_mask)
    mask = a.text_mask[..., None]
    assert torch.allclose(a.text * mask, b.text * mask, atol=1e-5)
    assert torch.allclose(a.image, b.image, atol=1e-5)
    assert torch.allclose(a.audio, b.audio, atol=1e-5)


def test_interrupted_build_keeps_whole_clips_and_resumes(frozen_cfg, monkeypatch):
    original = cache_module.encode_clip
    calls = {"n": 0}

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(cache_module, "encode_clip", failing)
    with pytest.raises(KeyboardInterrupt):
        build_cache(frozen_cfg.data.root, frozen_cfg, progress=False)
    assert find_cache(frozen_cfg.data.root, frozen_cfg) is None  # incomplete: not used
    cache = cache_module.EmbeddingCache(frozen_cfg.data.root, frozen_cfg)
    files = sorted(cache.dir.glob("*/*.safetensors"))
    assert len(files) == 2 and not list(cache.dir.glob("*/.*.tmp"))
    for path in files:
        cache.read_clip(path.parent.name, path.stem)  # whole, readable
    monkeypatch.setattr(cache_module, "encode_clip", original)
    _, written, reused = build_cache(frozen_cfg.data.root, frozen_cfg, progress=False)
    assert (written, reused) == (4, 2)
    assert find_cache(frozen_cfg.data.root, frozen_cfg) is not None


def test_changed_encoder_config_is_detected(frozen_cfg, caplog):
    build_cache(frozen_cfg.data.root, frozen_cfg, progress=False)
    changed = apply_overrides(frozen_cfg, ["encoders.text_max_length=32"])
    with caplog.at_level(logging.WARNING):
        assert find_cache(frozen_cfg.data.root, changed) is None
    assert "built for other encoders or data settings" in caplog.text
    resized = apply_overrides(frozen_cfg, ["data.image_size=32"])
    assert find_cache(frozen_cfg.data.root, resized) is None


def test_prepare_runs_every_frozen_encoder_on_the_device(frozen_cfg):
    """Each frozen encoder is moved to --device and reads its inputs there (the CPU here;
    the same path puts them on a GPU)."""
    from tia2v.encoders.base import FrozenEncoder

    device, seen = torch.device("cpu"), {}

    def record(module, args):
        if isinstance(module, FrozenEncoder):
            inputs = {a.device for a in args if isinstance(a, torch.Tensor)}
            seen[type(module).__name__] = inputs | {p.device for p in module.parameters()}

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        build_cache(frozen_cfg.data.root, frozen_cfg, progress=False, device=device)
    finally:
        handle.remove()
    assert set(seen) == {"BertTextEncoder", "ClipImageEncoder", "BEATsAudioEncoder"}
    assert all(devices == {device} for devices in seen.values())


@pytest.mark.parametrize(
    ("device", "message"),
    [("cuda:99", "CUDA device"), ("tpu", "not a device name")],
)
def test_prepare_and_eval_refuse_a_device_they_cannot_use(toy_root, tmp_path, device, message):
    import subprocess
    import sys

    commands = [
        ["prepare", str(toy_root), "--config", "tiny", "--device", device],
        ["eval", "--real", str(toy_root), "--fake", str(toy_root), "-o", str(tmp_path / "r.json")],
    ]
    commands[1] += ["--device", device]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "tia2v", "--quiet", *command], capture_output=True, text=True
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    assert not (toy_root / "cache").exists() and not (tmp_path / "r.json").exists()
