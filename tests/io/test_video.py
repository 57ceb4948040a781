"""Round trips through our writer and through files made by the ffmpeg CLI (imageio-ffmpeg)."""

import numpy as np
import pytest
import soundfile

from tests.helpers import ffmpeg
from tia2v.errors import MediaError
from tia2v.io import load_audio, probe_video, read_audio_file, read_video, write_audio, write_video


def gradient_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    frames = [
        np.stack([(x * 255 // width), (y * 255 // height), np.full_like(x, 20 * f % 256)], -1)
        for f in range(num_frames)
    ]
    return np.stack(frames).astype(np.uint8)


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)).astype(
        np.float32
    )


def test_write_read_round_trip(tmp_path):
    frames, audio = gradient_frames(16, 32, 48), tone(2.0, 16000)
    path = write_video(tmp_path / "a.mp4", frames, 8.0, audio, 16000)
    video = read_video(path)
    assert video.frames.shape == (16, 32, 48, 3) and video.frames.dtype == np.uint8
    assert video.fps == 8.0
    assert np.abs(video.frames.astype(int) - frames).mean() < 3
    # AAC padding is trimmed: exactly the samples written, aligned with them.
    assert video.audio.shape == (1, 32000) and video.audio_rate == 16000
    assert np.corrcoef(video.audio[0, 2000:30000], audio[2000:30000])[0, 1] > 0.99
    assert not list(tmp_path.glob(".*.tmp"))


def test_click_position_survives_aac(tmp_path):
    audio = np.zeros(16000, np.float32)
    audio[6000:6050] = 0.9
    write_video(tmp_path / "c.mp4", gradient_frames(8, 16, 16), 8, audio, 16000)
    decoded = read_video(tmp_path / "c.mp4").audio[0]
    assert abs(int(np.argmax(np.abs(decoded))) - 6025) < 64


def test_odd_size_is_padded_to_even(tmp_path):
    write_video(tmp_path / "o.mp4", gradient_frames(4, 61, 97), 10)
    video = read_video(tmp_path / "o.mp4")
    assert video.frames.shape == (4, 62, 98, 3) and video.audio is None


def test_stereo_written_and_read(tmp_path):
    audio = np.stack([tone(1.0, 48000, 440), tone(1.0, 48000, 660)])
    write_video(tmp_path / "s.mp4", gradient_frames(10, 16, 16), 10, audio, 48000)
    video = read_video(tmp_path / "s.mp4")
    assert video.audio.shape == (2, 48000) and video.audio_rate == 48000


def test_ntsc_fps_from_ffmpeg(tmp_path):
    path = tmp_path / "ntsc.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=30000/1001",
        "-frames:v",
        "30",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    video = read_video(path)
    assert video.fps == pytest.approx(30000 / 1001, rel=1e-6)
    assert video.frames.shape == (30, 48, 64, 3) and video.audio is None
    count, fps, audio_seconds = probe_video(path)
    assert count == 30 and fps == pytest.approx(29.97, abs=1e-2) and audio_seconds == 0


def test_odd_size_stereo_44k_from_ffmpeg(tmp_path):
    path = tmp_path / "odd.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=97x61:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-ac",
        "2",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv444p",
        "-c:a",
        "aac",
        str(path),
    )
    video = read_video(path)
    assert video.frames.shape == (25, 61, 97, 3)
    assert video.audio_rate == 44100 and video.audio.shape == (2, 44100)
    mono16k = load_audio(path, 16000)
    assert mono16k.shape == (16000,)
    # The 440 Hz tone is still the dominant frequency after mixing and resampling.
    spectrum = np.abs(np.fft.rfft(mono16k))
    assert abs(np.argmax(spectrum) * 16000 / len(mono16k) - 440) < 2


def test_stereo_48k_audio_from_ffmpeg(tmp_path):
    path = tmp_path / "a48.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=32x32:rate=8",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-ac",
        "2",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(path),
    )
    video = read_video(path)
    assert video.frames.shape[0] == 16 and video.audio_rate == 48000
    assert video.audio.shape == (2, 96000)
    assert np.allclose(video.audio[0], video.audio[1], atol=1e-3)


@pytest.mark.parametrize("suffix", ["wav", "flac", "mp3"])
def test_load_audio_formats_from_ffmpeg(tmp_path, suffix):
    path = tmp_path / f"t.{suffix}"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:sample_rate=44100",
        "-ac",
        "2",
        "-t",
        "1.5",
        str(path),
    )
    audio = load_audio(path, 16000)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(len(audio) - 24000) <= (1200 if suffix == "mp3" else 1)  # mp3 adds codec delay
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 500) < 2


def test_write_audio_round_trip(tmp_path):
    audio = tone(0.5, 22050)
    write_audio(tmp_path / "x.wav", audio, 22050)
    samples, rate = read_audio_file(tmp_path / "x.wav")
    assert rate == 22050 and samples.shape == (1, 11025)
    assert np.abs(samples[0] - audio).max() < 1e-3
    assert soundfile.info(str(tmp_path / "x.wav")).subtype == "PCM_16"


def test_bad_files_raise_one_clear_line(tmp_path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    with pytest.raises(MediaError, match="broken.mp4: cannot decode video"):
        read_video(garbage)
    with pytest.raises(MediaError, match="missing.mp4: no such video file"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "bad.wav").write_bytes(b"RIFF1234WAVEjunk")
    with pytest.raises(MediaError, match="bad.wav: cannot decode audio"):
        load_audio(tmp_path / "bad.wav", 16000)
    write_video(tmp_path / "silent.mp4", gradient_frames(2, 16, 16), 8)
    with pytest.raises(MediaError, match="silent.mp4: the video has no audio stream"):
        load_audio(tmp_path / "silent.mp4", 16000)


def test_write_rejects_wrong_frames(tmp_path):
    with pytest.raises(MediaError, match="frames must be uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8, 3), np.float32), 8)
