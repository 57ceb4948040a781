import numpy as np
import pytest

from tia2v.data.synth import clip_rng, make_spec, render_frames
from tia2v.metrics.toy import analyze, psnr, pulse_frames, sync_f1


@pytest.mark.parametrize("index", range(12))
def test_analysis_of_clean_renders(index):
    spec = make_spec("x", clip_rng(9, "test", index), 32, 16, 8.0)
    found = analyze(render_frames(spec))
    assert (found.color, found.background) == (spec.color, spec.bg)
    assert (found.shape, found.direction) == (spec.shape, spec.direction)
    assert found.pulse_frames == spec.onset_frames


def test_blank_video_finds_nothing():
    found = analyze(np.full((4, 16, 16, 3), 128, np.uint8))
    assert found.color == "" and found.direction == "" and found.pulse_frames == []


def test_pulse_frames_need_a_jump():
    areas = np.array([10, 10, 20, 15, 12, 11, 11, 11.5, 30, 20])
    assert pulse_frames(areas) == [2, 8]


def test_sync_f1():
    assert sync_f1([3, 8], [3, 8]) == 1.0
    assert sync_f1([4, 9], [3, 8]) == 1.0  # within one frame
    assert sync_f1([5], [3, 8]) == 0.0
    assert sync_f1([3, 12], [3, 8]) == pytest.approx(0.5)
    assert sync_f1([3, 4], [3]) == pytest.approx(2 / 3)  # one onset matches once


def test_psnr():
    a = np.zeros((8, 8, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 1) == pytest.approx(20 * np.log10(255), rel=1e-6)
