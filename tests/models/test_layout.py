"""Video layouts: per-frame batches and per-pixel frame sequences, written out by index."""

import torch

from tia2v.models.layout import (
    batch_to_frames,
    batch_to_sequences,
    frames_to_batch,
    sequences_to_batch,
)


def test_each_layout_puts_every_value_where_its_indices_say():
    b, c, f, h, w = 2, 3, 4, 5, 6
    video = torch.arange(b * c * f * h * w, dtype=torch.float32).reshape(b, c, f, h, w)
    frames = frames_to_batch(video)
    sequences = batch_to_sequences(frames, f)
    assert frames.shape == (b * f, c, h, w) and sequences.shape == (b * h * w, f, c)
    for i, j, k, y, x in [(0, 0, 0, 0, 0), (1, 2, 3, 4, 5), (1, 0, 2, 3, 1), (0, 1, 1, 2, 4)]:
        value = video[i, j, k, y, x]
        assert frames[i * f + k, j, y, x] == value  # the frames of one video adjacent
        assert sequences[(i * h + y) * w + x, k, j] == value  # one sequence per pixel
    assert torch.equal(batch_to_frames(frames, f), video)
    assert torch.equal(sequences_to_batch(sequences, f, h, w), frames)


def test_the_temporal_conv_is_its_3d_convolution():
    """TemporalConv runs its 3×1×1 Conv3d weights as a 2-D convolution over (F, H·W)."""
    from tia2v.models.blocks import TemporalConv

    torch.manual_seed(0)
    block = TemporalConv(16, 0.0, 4).eval()
    for parameter in block.parameters():
        torch.nn.init.normal_(parameter, 0, 0.1)
    x = torch.randn(2 * 5, 16, 3, 4)  # 2 videos of 5 frames
    with torch.no_grad():
        expected = x + frames_to_batch(block.stages(batch_to_frames(x, 5)))
        assert torch.allclose(block(x, 5), expected, atol=1e-6)
