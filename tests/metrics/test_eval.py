import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn
from transformers import CLIPConfig, CLIPModel

from tia2v.io import read_video, write_video
from tia2v.metrics import av_align, frechet
from tia2v.metrics.evaluate import Networks, evaluate, markdown
from tia2v.metrics.plots import plot_report

FPS, RATE = 8.0, 16000


def jumping_video(jumps: list[int], frames: int = 16, size: int = 64) -> np.ndarray:
    """A textured square that stands still except for a jump into each frame of ``jumps``."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    video, x = [], 8
    for f in range(frames):
        if f in jumps:
            x += 8
        frame = np.full((size, size, 3), 30, np.uint8)
        frame[24:40, x : x + 16] = texture
        video.append(frame)
    return np.stack(video)


def clicks(frames_at: list[int], seconds: float = 2.0) -> np.ndarray:
    audio = np.zeros(int(seconds * RATE), np.float32)
    for f in frames_at:
        start = int(f / FPS * RATE)
        audio[start : start + 400] = (
            np.sin(np.arange(400) * 0.5) * np.exp(-np.arange(400) / 100) * 0.9
        )
    return audio


def test_av_align_hand_computed():
    video = jumping_video([4, 9, 13])
    assert av_align.av_align(video, FPS, clicks([4, 9, 13]), RATE) == pytest.approx(1.0)
    assert av_align.av_align(video, FPS, clicks([1, 6, 10]), RATE) == 0.0  # 3 frames early
    # two of three onsets match one of three peaks each: IoU = 2 / (3 + 3 - 2)
    assert av_align.av_align(video, FPS, clicks([4, 9, 1]), RATE) == pytest.approx(0.5)


def test_frechet_identical_and_closed_form():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 8))
    assert abs(frechet.frechet_of_features(features, features)) <= 1e-6
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1 + 4 + sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)  # = 5 + 1 + 1
    assert frechet.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(
        expected, abs=1e-9
    )
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # a non-diagonal pair with the same answer
    s1, s2 = rotation @ np.diag(var1) @ rotation.T, rotation @ np.diag(var2) @ rotation.T
    assert frechet.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, abs=1e-6)


class TinyI3D(nn.Module):
    """The I3D file's contract: (N, 3, T, 224, 224) in [-1, 1] + flags → (N, D)."""

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = True,
        return_features: bool = True,
    ) -> torch.Tensor:
        assert x.shape[1] == 3 and x.shape[3] == 224 and x.shape[4] == 224
        assert bool(x.min() >= -1) and bool(x.max() <= 1)
        return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)


class TinyInception(nn.Module):
    """The Inception file's contract: uint8 (N, 3, H, W) → (N, D)."""

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        assert x.dtype == torch.uint8
        y = x.float() / 255
        return torch.cat([y.mean(dim=(2, 3)), y.std(dim=(2, 3))], dim=1)


@pytest.fixture
def folders(tmp_path):
    real, fake = tmp_path / "real", tmp_path / "fake"
    rng = np.random.default_rng(1)
    for i in range(4):
        frames = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
        write_video(real / f"v{i}.mp4", frames, FPS, clicks([3], 1.0), RATE)
        noisy = np.clip(frames.astype(int) + rng.integers(-20, 20, frames.shape), 0, 255).astype(
            np.uint8
        )
        write_video(fake / f"v{i}.mp4", noisy, FPS, clicks([3], 1.0), RATE)
        (tmp_path / "txt").mkdir(exist_ok=True)
        (tmp_path / "txt" / f"v{i}.txt").write_text("a noisy video\n")
    return real, fake


def test_fvd_fid_end_to_end_on_stand_ins(folders, tmp_path):
    torch.jit.script(TinyI3D()).save(str(tmp_path / "i3d_torchscript.pt"))
    torch.jit.script(TinyInception()).save(str(tmp_path / "inception-2015-12-05.pt"))
    torch.jit.script(TinyInception()).save(str(tmp_path / "my_encoder.pt"))
    nets = Networks(
        str(tmp_path / "i3d_torchscript.pt"),
        str(tmp_path / "inception-2015-12-05.pt"),
        str(tmp_path / "my_encoder.pt"),
    )
    report = evaluate(*folders, ["fvd", "fid", "fd", "psnr", "ssim"], nets, progress=False)
    metrics = report["metrics"]
    assert (
        isinstance(metrics["fvd"], float)
        and isinstance(metrics["fid"], float)
        and metrics["fid"] > 0
    )
    assert "fd_my_encoder" in metrics and "fd" not in metrics  # another network carries its name
    assert 15 < metrics["psnr"] < 40 and 0 < metrics["ssim"] < 1
    same = evaluate(folders[0], folders[0], ["fvd", "fid"], nets, progress=False)["metrics"]
    assert abs(same["fvd"]) < 1e-6 and abs(same["fid"]) < 1e-6


def test_missing_networks_are_reported_not_replaced(folders):
    metrics = evaluate(*folders, ["fvd", "fid", "clip_text"], Networks(), progress=False)["metrics"]
    assert metrics["fvd"].startswith("not computed: give --i3d i3d_torchscript.pt")
    assert metrics["fid"].startswith("not computed: give --inception inception-2015-12-05.pt")
    assert metrics["clip_text"].startswith("not computed")


def tiny_clip_dir(folder, tokenizer_dir, projection_dim=16):
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "vocab_size": 516,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "bos_token_id": 514,
            "eos_token_id": 515,
            "pad_token_id": 515,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
        },
        projection_dim=projection_dim,
    )
    CLIPModel(config).save_pretrained(folder)
    for name in tokenizer_dir.iterdir():
        if "token" in name.name or name.name in ("vocab.json", "merges.txt"):
            shutil.copy(name, folder / name.name)
    return folder


def test_clip_metrics_use_rgb(folders, tmp_path, tiny_clip_text_dir):
    clip = tiny_clip_dir(tmp_path / "clip", tiny_clip_text_dir)
    report = evaluate(
        *folders, ["clip_text", "first_frame", "temporal"], Networks(clip=str(clip)), progress=False
    )
    metrics = report["metrics"]
    assert all(isinstance(metrics[k], float) for k in ("clip_text", "first_frame", "temporal"))
    swapped = tmp_path / "swapped"
    for path in folders[1].glob("*.mp4"):
        video = read_video(path)
        write_video(
            swapped / path.name,
            video.frames[..., ::-1].copy(),
            video.fps,
            video.audio,
            video.audio_rate,
        )
    other = evaluate(folders[0], swapped, ["clip_text"], Networks(clip=str(clip)), progress=False)[
        "metrics"
    ]
    assert other["clip_text"] != pytest.approx(metrics["clip_text"], abs=1e-4)


def test_mismatches_and_bad_files_do_not_crash(folders, tmp_path):
    real, fake = folders
    (fake / "v0.mp4").write_bytes(b"broken")
    write_video(fake / "v1.mp4", np.zeros((5, 32, 32, 3), np.uint8), FPS)  # fewer frames, no audio
    write_video(fake / "extra.mp4", np.zeros((8, 32, 32, 3), np.uint8), FPS)
    (real / "v3.mp4").rename(real / "renamed.mp4")
    report = evaluate(real, fake, ["psnr", "av_align"], Networks(), progress=False)
    text = "\n".join(report["skipped"])
    assert "v0.mp4: cannot decode video" in text
    assert "v1.mp4: (5, 32, 32) frames vs real (8, 32, 32)" in text
    assert "v1.mp4: no audio track" in text and "AV-Align skipped" in text
    assert (
        "extra.mp4: no real video with this name" in text
        and "renamed.mp4: no generated video" in text
    )
    assert report["videos"] == 2 and "v2" in report["per_video"]
    assert "Skipped or partial" in markdown(report)
    paths = plot_report(report, tmp_path / "plots")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_toy_metrics_from_meta(tmp_path):
    from tia2v.data.synth import synthesize

    synthesize(tmp_path / "toy", 0, 2, seed=4, size=32, progress=False)
    test = tmp_path / "toy" / "test"
    report = evaluate(test / "mp4", test / "mp4", ["toy"], Networks(), progress=False)
    metrics = report["metrics"]
    assert metrics["color_acc"] == metrics["shape_acc"] == metrics["direction_acc"] == 1.0
    assert metrics["pulse_f1"] == 1.0 and metrics["first_frame_psnr"] == 100.0
    assert json.dumps(report)  # serialisable


def test_clap_audio_text_score(folders, tmp_path):
    from transformers import AutoTokenizer, ClapConfig, ClapFeatureExtractor, ClapModel

    from tia2v.encoders.text import minilm_path

    torch.manual_seed(0)
    config = ClapConfig(
        text_config={
            "vocab_size": 30522,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "max_position_embeddings": 80,
        },
        audio_config={
            "patch_embeds_hidden_size": 16,
            "hidden_size": 32,
            "depths": [1, 1],
            "num_attention_heads": [2, 2],
            "window_size": 4,
            "num_mel_bins": 64,
            "spec_size": 256,
            "patch_size": 8,
            "patch_stride": 8,
            "enable_fusion": False,
        },
        projection_dim=16,
    )
    folder = tmp_path / "clap"
    ClapModel(config).save_pretrained(folder)
    ClapFeatureExtractor().save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    metrics = evaluate(*folders, ["clap_audio_text"], Networks(clap=str(folder)), progress=False)[
        "metrics"
    ]
    assert (
        isinstance(metrics["clap_audio_text"], float) and -100 <= metrics["clap_audio_text"] <= 100
    )


def test_av_align_never_counts_the_first_or_last_frame_as_a_peak():
    video = jumping_video([4, 15])  # the jump into the last frame is its motion's maximum
    times = av_align.motion_peaks(video, FPS)
    assert list(times * FPS) == pytest.approx([4.0])
    # the original's rule: strict local maxima of frames 1 .. F-2
    flow = av_align.flow_magnitudes(video)
    expected = [i for i in range(1, len(flow) - 1) if flow[i - 1] < flow[i] > flow[i + 1]]
    assert list(times * FPS) == pytest.approx(expected)
    assert av_align.av_align(video, FPS, clicks([4, 15]), RATE) == pytest.approx(1 / 2)


def test_av_align_prefers_the_wav_to_the_mp4_track(tmp_path):
    from tia2v.io import write_audio

    real, fake = tmp_path / "real", tmp_path / "fake"
    video = jumping_video([4, 9, 13])
    write_video(real / "v.mp4", video, FPS, clicks([4, 9, 13]), RATE)
    write_video(fake / "v.mp4", video, FPS, np.zeros(2 * RATE, np.float32), RATE)  # silent track
    track = evaluate(real, fake, ["av_align"], Networks(), progress=False)
    assert track["per_video"]["v"]["av_align"] == 0.0
    assert track["av_align_audio"] == {"v": "mp4 audio track"}
    write_audio(tmp_path / "audio" / "v.wav", clicks([4, 9, 13]), RATE)  # what `sample` writes
    wav = evaluate(real, fake, ["av_align"], Networks(), progress=False)
    decoded = read_video(fake / "v.mp4")
    peaks = av_align.motion_peaks(decoded.frames, decoded.fps)
    expected = av_align.iou(av_align.wav_onsets(tmp_path / "audio" / "v.wav"), peaks, FPS)
    assert wav["per_video"]["v"]["av_align"] == pytest.approx(expected) and expected >= 0.75
    assert wav["av_align_audio"] == {"v": str(tmp_path / "audio" / "v.wav")}
    elsewhere = tmp_path / "elsewhere"
    write_audio(elsewhere / "v.wav", np.zeros(2 * RATE, np.float32), RATE)  # no onsets
    given = evaluate(real, fake, ["av_align"], Networks(), progress=False, audio_dir=elsewhere)
    assert given["per_video"]["v"]["av_align"] == 0.0


def test_swapped_networks_are_skipped_and_the_rest_computed(folders, tmp_path):
    torch.jit.script(TinyI3D()).save(str(tmp_path / "i3d_torchscript.pt"))
    torch.jit.script(TinyInception()).save(str(tmp_path / "inception-2015-12-05.pt"))
    swapped = Networks(
        str(tmp_path / "inception-2015-12-05.pt"), str(tmp_path / "i3d_torchscript.pt")
    )
    report = evaluate(*folders, ["fvd", "fid", "psnr"], swapped, progress=False)
    metrics = report["metrics"]
    assert metrics["fvd"] == metrics["fid"] == "not computed: its network failed (see skipped)"
    assert 15 < metrics["psnr"] < 40
    text = "\n".join(report["skipped"])
    assert "--i3d" in text and "--inception" in text and "is it the right network" in text


def test_every_eval_network_is_loaded_onto_the_device(
    folders, tmp_path, tiny_clip_text_dir, monkeypatch
):
    torch.jit.script(TinyI3D()).save(str(tmp_path / "i3d.pt"))
    torch.jit.script(TinyInception()).save(str(tmp_path / "inception.pt"))
    clip = tiny_clip_dir(tmp_path / "clip", tiny_clip_text_dir)
    device, placed = torch.device("cpu"), []
    real_load, real_to = torch.jit.load, torch.nn.Module.to

    def load(path, map_location):
        placed.append(map_location)
        return real_load(path, map_location=map_location)

    def to(module, *args, **kwargs):
        if isinstance(module, CLIPModel):
            placed.append(args[0])
        return real_to(module, *args, **kwargs)

    monkeypatch.setattr(torch.jit, "load", load)
    monkeypatch.setattr(torch.nn.Module, "to", to)
    nets = Networks(str(tmp_path / "i3d.pt"), str(tmp_path / "inception.pt"), clip=str(clip))
    report = evaluate(*folders, ["fvd", "fid", "temporal"], nets, progress=False, device=device)
    assert placed == [device, device, device]
    assert all(isinstance(report["metrics"][m], float) for m in ("fvd", "fid", "temporal"))


def test_clip_audio_score_with_wav2clip(folders, tmp_path, tiny_clip_text_dir):
    """The original's CLIP-audio definition, recomputed here by hand from its parts."""
    from tia2v.encoders.wav2clip import Wav2Clip
    from tia2v.io import resample
    from tia2v.metrics.clip_scores import ClipScorer

    clip = tiny_clip_dir(tmp_path / "clip", tiny_clip_text_dir, projection_dim=512)
    torch.manual_seed(1)
    torch.save({"state_dict": Wav2Clip().state_dict()}, tmp_path / "ResNet_CX.ckpt")
    nets = Networks(clip=str(clip), wav2clip=str(tmp_path / "ResNet_CX.ckpt"))
    report = evaluate(*folders, ["clip_audio"], nets, progress=False)
    scorer, wav2clip = (
        ClipScorer.from_pretrained(str(clip)),
        Wav2Clip.load(str(tmp_path / "ResNet_CX.ckpt")),
    )
    for clip_id, row in report["per_video"].items():
        video = read_video(folders[1] / f"{clip_id}.mp4")
        wave = resample(video.audio.mean(axis=0), video.audio_rate, 16000)
        frames = len(video.frames)
        parts = torch.tensor(wave[: len(wave) // frames * frames], dtype=torch.float32)
        with torch.no_grad():
            audio = wav2clip(parts.reshape(frames, -1), joint=True)
        audio = audio / audio.norm(dim=-1, keepdim=True)
        expected = 100 * (audio * scorer.image_embeddings(video.frames)).sum(-1).mean()
        assert row["clip_audio"] == pytest.approx(float(expected), abs=1e-4)
    assert isinstance(report["metrics"]["clip_audio"], float)
    missing = evaluate(*folders, ["clip_audio"], Networks(clip=str(clip)), progress=False)
    assert missing["metrics"]["clip_audio"].startswith("not computed: give --clip")


@pytest.mark.slow
def test_clip_audio_with_audioclip_from_the_cli_flags(folders, tmp_path):
    """``--audioclip`` (a full-size random AudioCLIP in the official layout): the AudioCLIP
    variant of the CLIP-audio score, per video and averaged, beside a wav2clip-less report."""
    from tia2v.encoders.audioclip import AudioClip, AudioClipImage
    from tia2v.metrics.clip_scores import audioclip_audio_score

    torch.manual_seed(0)
    model = AudioClip(visual=AudioClipImage()).eval()
    torch.save(model.state_dict(), tmp_path / "AudioCLIP-Full-Training.pt")
    nets = Networks(audioclip=str(tmp_path / "AudioCLIP-Full-Training.pt"))
    report = evaluate(*folders, ["clip_audio"], nets, progress=False)
    for clip_id, row in report["per_video"].items():
        video = read_video(folders[1] / f"{clip_id}.mp4")
        expected = audioclip_audio_score(
            video.frames, video.audio.mean(axis=0), video.audio_rate, model
        )
        assert row["clip_audio_audioclip"] == pytest.approx(expected, abs=1e-4)
    assert isinstance(report["metrics"]["clip_audio_audioclip"], float)
    assert report["metrics"]["clip_audio"].startswith("not computed")
