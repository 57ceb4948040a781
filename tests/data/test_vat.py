import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tia2v.config import DataConfig
from tia2v.data.vat import VATDataset, collate, frame_windows
from tia2v.errors import DataError
from tia2v.frames import resize_center_crop
from tia2v.io import write_audio, write_video

URMP_FPS, URMP_FRAMES, CLICK_EVERY = 30.0, 90, 10


@pytest.fixture(scope="module")
def urmp_root(tmp_path_factory):
    """A folder shaped like URMP-VAT: 90-frame 30 fps clips, 44.1 kHz stereo wavs.

    Frame i has grey level 2*i (so crops can be located), and the audio has a click at the
    time of every 10th frame.
    """
    root = tmp_path_factory.mktemp("urmp")
    rate = 44100
    for clip_id in ("1_vn_44_K515_15_5", "2_fl_12_Jupiter_3_1", "3_tpt_07_Fanfare_0_2"):
        frames = np.stack([np.full((24, 40, 3), 2 * i, np.uint8) for i in range(URMP_FRAMES)])
        audio = np.zeros((2, round(rate * URMP_FRAMES / URMP_FPS)), np.float32)
        for k in range(CLICK_EVERY, URMP_FRAMES, CLICK_EVERY):
            at = round(k / URMP_FPS * rate)
            audio[:, at : at + 20] = 0.9
        for split in ("train", "test"):
            base = root / split
            write_video(base / "mp4" / f"{clip_id}.mp4", frames, URMP_FPS)
            write_audio(base / "wav" / f"{clip_id}.wav", audio, rate)
            (base / "txt").mkdir(exist_ok=True)
            (base / "txt" / f"{clip_id}.txt").write_text("a violin\nsomeone playing violin\n")
            (base / "stft_pickle").mkdir(exist_ok=True)  # present in real VAT folders, ignored
    return root


def urmp_cfg(**overrides) -> DataConfig:
    return DataConfig(num_frames=16, image_size=16, audio_rate=16000, audio_window=0.2, **overrides)


def test_toy_item_shapes_and_ranges(toy_root):
    ds = VATDataset(DataConfig(root=str(toy_root), num_frames=16, image_size=16), "train")
    assert len(ds) == 4
    item = ds[0]
    assert item["video"].shape == (3, 16, 16, 16) and item["video"].dtype == torch.float32
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert item["video"].max() - item["video"].min() > 0.5  # not a constant
    assert torch.equal(item["first_frame"], item["video"][:, 0])
    assert item["audio"].shape == (16, 4000)
    assert item["fps"] == 8.0 and item["id"] == "train_00000"
    assert isinstance(item["captions"], list) and item["captions"][0]


def test_loader_batches(toy_root):
    ds = VATDataset(DataConfig(root=str(toy_root), num_frames=4, image_size=16), "test")
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate)))
    assert batch["video"].shape == (2, 3, 4, 16, 16) and batch["audio"].shape == (2, 4, 4000)
    assert batch["id"] == ["test_00000", "test_00001"]


def test_urmp_shaped_folder(urmp_root):
    ds = VATDataset(urmp_cfg(root=str(urmp_root)), "train")
    assert len(ds) == 3
    item = ds[1]
    assert item["video"].shape == (3, 16, 16, 16)
    assert item["captions"] == ["a violin", "someone playing violin"]
    assert item["fps"] == pytest.approx(URMP_FPS)
    # Frames are the consecutive ones the indices say (grey level 2*i).
    indices = item["frame_indices"].numpy()
    assert np.array_equal(np.diff(indices), np.ones(15))
    grey = ((item["video"][0, :, 8, 8] + 1) / 2 * 255).numpy()
    assert np.abs(grey - 2 * indices).max() < 4


def test_click_at_frame_k_lands_in_window_k(urmp_root):
    ds = VATDataset(urmp_cfg(root=str(urmp_root)), "test")
    item = ds[0]
    windows, indices = item["audio"].numpy(), item["frame_indices"].numpy()
    width = windows.shape[1]
    click_frames = [f for f, i in enumerate(indices) if i % CLICK_EVERY == 0]
    assert click_frames, "every 16-frame crop holds a multiple of 10"
    for f in click_frames:
        peak = int(np.argmax(np.abs(windows[f])))
        assert abs(peak - width // 2) < 16  # centred (within 1 ms at 16 kHz)
    for f, i in enumerate(indices):
        distance = min(abs(i - k) for k in range(CLICK_EVERY, URMP_FRAMES, CLICK_EVERY))
        if distance / URMP_FPS > 0.1 + 0.01:  # farther than half a window: silent
            assert np.abs(windows[f]).max() < 0.05


def test_stride_and_test_crops_are_deterministic(urmp_root):
    cfg = urmp_cfg(root=str(urmp_root), frame_stride=3, seed=7)
    a, b = VATDataset(cfg, "test"), VATDataset(cfg, "test")
    for i in range(len(a)):
        assert torch.equal(a[i]["frame_indices"], b[i]["frame_indices"])
        assert torch.equal(a[i]["video"], b[i]["video"])
    indices = a[0]["frame_indices"].numpy()
    assert np.array_equal(np.diff(indices), np.full(15, 3)) and indices[-1] < URMP_FRAMES
    assert a[0]["fps"] == pytest.approx(10.0)


def test_train_crops_vary_by_epoch_reproducibly(urmp_root):
    ds = VATDataset(urmp_cfg(root=str(urmp_root)), "train")
    starts = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        starts.append(int(ds[0]["frame_indices"][0]))
    assert len(set(starts)) > 1
    ds.set_epoch(2)
    assert int(ds[0]["frame_indices"][0]) == starts[2]


def test_files_are_paired_by_id(toy_copy, caplog):
    (toy_copy / "train/wav/train_00001.wav").unlink()
    with caplog.at_level(logging.WARNING):
        ds = VATDataset(DataConfig(root=str(toy_copy), num_frames=4, image_size=16), "train")
    assert [c.id for c in ds.clips] == ["train_00000", "train_00002", "train_00003"]
    assert "train_00001.mp4: missing audio" in caplog.text
    assert ds[1]["id"] == "train_00002"
    assert ds[1]["captions"] == [(toy_copy / "train/txt/train_00002.txt").read_text().strip()]


def test_clip_too_short_is_a_clear_error(toy_root):
    ds = VATDataset(DataConfig(root=str(toy_root), num_frames=20, image_size=16), "test")
    with pytest.raises(DataError, match="test_00000.mp4: clip has 16 frames, fewer than the 20"):
        ds[0]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="mp4: no such folder"):
        VATDataset(DataConfig(root=str(tmp_path)), "train")


def test_resize_center_crop_keeps_the_middle():
    frames = torch.zeros(1, 3, 30, 60)
    frames[..., :, 15:45] = 1.0  # the central 30 columns
    out = resize_center_crop(frames, 10)
    assert out.shape == (1, 3, 10, 10)
    assert out[..., 1:-1].min() > 0.99 and out.min() > 0.5  # antialiasing blends the edge


def test_frame_windows_pad_at_the_ends():
    audio = np.arange(1, 101, dtype=np.float32)
    windows = frame_windows(audio, rate=10, times=np.array([0.0, 5.0, 10.0]), window=0.4)
    assert windows.shape == (3, 4)
    assert windows[0].tolist() == [0, 0, 1, 2] and windows[1].tolist() == [49, 50, 51, 52]
    assert windows[2].tolist() == [99, 100, 0, 0]


def test_frame_windows_far_past_either_end_are_silence():
    # long videos chain clips whose last frames can lie beyond the end of the audio
    audio = np.arange(1, 101, dtype=np.float32)
    windows = frame_windows(audio, rate=10, times=np.array([-3.0, 10.1, 12.5]), window=0.4)
    assert windows[0].tolist() == [0, 0, 0, 0] and windows[2].tolist() == [0, 0, 0, 0]
    assert windows[1].tolist() == [100, 0, 0, 0]
    assert frame_windows(audio[:0], 10, np.array([0.0]), 0.4).tolist() == [[0, 0, 0, 0]]
