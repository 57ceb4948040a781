import json
import subprocess
import sys

import numpy as np
import pytest

from tia2v.data.synth import (
    PALETTE,
    TEMPLATES,
    clip_rng,
    make_spec,
    possible_directions,
    render_frames,
    synthesize,
)
from tia2v.io import load_audio, probe_video, read_video
from tia2v.metrics.toy import analyze


def test_same_seed_same_files(tmp_path):
    """In this process and in a fresh one (encoder state must not leak between encodes)."""
    synthesize(tmp_path / "a", num_train=3, num_test=2, seed=1, progress=False)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tia2v",
            "--quiet",
            "synth",
            str(tmp_path / "b"),
            "--train",
            "3",
            "--test",
            "2",
            "--seed",
            "1",
        ],
        check=True,
    )
    metas = sorted((tmp_path / "a").glob("*/meta/*.json"))
    assert len(metas) == 5
    for meta in metas:
        twin = tmp_path / "b" / meta.relative_to(tmp_path / "a")
        assert meta.read_text() == twin.read_text()
        video = meta.parent.parent / "mp4" / f"{meta.stem}.mp4"
        twin_video = twin.parent.parent / "mp4" / f"{meta.stem}.mp4"
        assert np.array_equal(read_video(video).frames, read_video(twin_video).frames)
        assert video.read_bytes() == twin_video.read_bytes()


def test_other_seed_other_clips(tmp_path):
    synthesize(tmp_path / "a", 2, 0, seed=1, progress=False)
    synthesize(tmp_path / "b", 2, 0, seed=2, progress=False)
    a = (tmp_path / "a/train/meta/train_00000.json").read_text()
    assert a != (tmp_path / "b/train/meta/train_00000.json").read_text()


def test_counts_do_not_shift_clips(tmp_path):
    synthesize(tmp_path / "a", 1, 1, seed=3, progress=False)
    synthesize(tmp_path / "b", 4, 2, seed=3, progress=False)
    for rel in ("train/meta/train_00000.json", "test/meta/test_00000.json"):
        assert (tmp_path / "a" / rel).read_text() == (tmp_path / "b" / rel).read_text()


def test_streams_have_16_frames_and_2s_of_audio(tmp_path):
    synthesize(tmp_path, 3, 2, seed=1, progress=False)
    for video in sorted(tmp_path.glob("*/mp4/*.mp4")):
        count, fps, audio_seconds = probe_video(video)
        assert (count, fps) == (16, 8.0)
        assert abs(audio_seconds - 2.0) <= 1024 / 16000
        decoded = read_video(video)
        assert decoded.frames.shape == (16, 64, 64, 3)
        assert abs(decoded.audio.shape[1] - 32000) <= 1024
        wav = load_audio(video.parent.parent / "wav" / f"{video.stem}.wav", 16000)
        assert wav.shape == (32000,)


def test_rendered_clips_match_their_meta(toy_root):
    for meta_path in sorted(toy_root.glob("*/meta/*.json")):
        meta = json.loads(meta_path.read_text())
        split = meta_path.parent.parent
        video = read_video(split / "mp4" / f"{meta['id']}.mp4")
        found = analyze(video.frames)
        assert found.color == meta["color"] and found.background == meta["bg"]
        assert found.shape == meta["shape"] and found.direction == meta["direction"]
        # Centroid = box centre, except for the triangle (1/3 of the half-height lower).
        expected = np.asarray(meta["centers"], np.float64)
        if meta["shape"] == "triangle":
            expected[:, 1] += meta["half_size"] * np.asarray(meta["scales"]) / 3
        assert np.abs(found.centers - expected).max() < 1.0
        assert found.pulse_frames == meta["onset_frames"]
        caption = (split / "txt" / f"{meta['id']}.txt").read_text().strip()
        assert caption == meta["caption"]
        for word in (meta["color"], meta["shape"], meta["direction"], meta["bg"]):
            assert word in caption


def test_audio_events_sit_on_onset_frames(toy_root):
    meta = json.loads((toy_root / "train/meta/train_00000.json").read_text())
    audio = load_audio(toy_root / "train/wav/train_00000.wav", 16000)
    per_frame = audio.reshape(meta["num_frames"], -1)  # 1000 samples = one frame period
    energy = (per_frame**2).sum(axis=1)
    loud = sorted(np.argsort(energy)[-len(meta["onset_frames"]) :].tolist())
    assert loud == meta["onset_frames"]
    assert energy[0] < 0.01 * energy[loud].min()  # never an event on frame 0: only noise


@pytest.mark.parametrize("index", range(40))
def test_spec_rules(index):
    spec = make_spec("x", clip_rng(0, "train", index), 64, 16, 8.0)
    assert spec.color != spec.bg and spec.color in PALETTE and spec.bg in PALETTE
    assert 2 <= len(spec.onset_frames) <= 4 and 0 not in spec.onset_frames
    assert all(b - a >= 3 for a, b in zip(spec.onset_frames, spec.onset_frames[1:], strict=False))
    assert all(0.5 <= loud <= 1.0 for loud in spec.loudness)
    assert all(220 <= p <= 880 for p in spec.pitches)
    for (x, y), scale in zip(spec.centers, spec.scales, strict=True):
        reach = spec.half_size * scale
        assert reach <= x <= 64 - reach and reach <= y <= 64 - reach
    for onset, loud in zip(spec.onset_frames, spec.loudness, strict=True):
        assert spec.scales[onset] == pytest.approx(1 + 0.6 * loud)
    frames = render_frames(spec)
    assert frames.shape == (16, 64, 64, 3)


def test_possible_directions_keep_the_object_inside_and_fix_the_sign():
    """A start allows the clip's own direction, never its opposite: the first frame tells the
    sign of the motion on each axis, the prompt must tell the axis."""
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}
    counts = []
    for index in range(200):
        spec = make_spec("x", clip_rng(0, "train", index), 32, 16, 8.0)
        allowed = possible_directions(32, 16, spec.start)
        assert spec.direction in allowed and opposite[spec.direction] not in allowed
        counts.append(len(allowed))
    assert set(counts) <= {1, 2} and counts.count(2) > 150
    assert possible_directions(32, 16, (16.0, 16.0)) == []  # the centre fits no 10 px trip
    assert possible_directions(32, 16, (8.0, 8.0)) == ["right", "down"]


def test_enough_caption_templates():
    assert len(set(TEMPLATES)) >= 5
