import numpy as np
import torch

from tia2v.frames import frames_to_video, images_to_tensor, video_to_frames


def test_frames_round_trip_exactly_and_span_minus_one_to_one():
    frames = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    video = frames_to_video(frames)  # (3, F, H, W)
    assert video.shape == (3, 3, 5, 7)
    assert np.array_equal(video_to_frames(video), frames)
    edges = frames_to_video(np.array([[[[0, 255, 128]]]], dtype=np.uint8))[:, 0, 0, 0]
    assert edges[0] == -1 and edges[1] == 1 and abs(edges[2]) < 0.01


def test_images_are_channel_first_and_out_of_range_values_clamp():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[1, ..., 2] = 255
    tensor = images_to_tensor(images)
    assert tensor.shape == (2, 3, 4, 4) and tensor[1, 2].eq(1).all() and tensor[0].eq(-1).all()
    assert video_to_frames(torch.full((3, 1, 2, 2), 3.0)).max() == 255


def test_a_value_range_scales_both_ways_exactly():
    frames = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    half = frames_to_video(frames, value_range=0.5)
    assert half.abs().max() <= 0.5 and torch.allclose(half, frames_to_video(frames) * 0.5)
    assert np.array_equal(video_to_frames(half, value_range=0.5), frames)
    assert torch.allclose(images_to_tensor(frames, 0.5), images_to_tensor(frames) / 2)
