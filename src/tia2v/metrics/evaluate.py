"""``tia2v eval``: the paper's metrics over a folder of real and a folder of generated videos.

Videos are paired by file name (``real/<id>.mp4`` ↔ ``fake/<id>.mp4``), as ``tia2v sample``
writes them; captions come from ``txt/<id>.txt`` and toy-VAT parameters from ``meta/<id>.json``
beside either folder. One bad file never stops the run: it is listed under ``skipped`` with
the reason. A metric whose network is not configured is reported as "not computed: …".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tia2v.assets import locate
from tia2v.errors import InputError
from tia2v.io import load_audio, read_video
from tia2v.metrics import ALL_METRICS, I3D_HINT, INCEPTION_HINT, av_align, frechet, paired, toy

logger = logging.getLogger(__name__)

PSNR_CAP = 100.0  # dB: identical frames would give infinity, which no mean or JSON can hold


@dataclass
class Networks:
    """Local files / folders / Hugging Face ids of the feature networks (None: not given)."""

    i3d: str | None = None
    inception: str | None = None
    fd_net: str | None = None
    clip: str | None = None
    clap: str | None = None
    wav2clip: str | None = None
    audioclip: str | None = None


# metric -> (its flag, the function that turns frames into that network's features)
FEATURE_NETWORKS = {
    "fvd": ("--i3d", frechet.i3d_features),
    "fid": ("--inception", frechet.inception_features),
    "fd": ("--fd-net", frechet.inception_features),
}

NOT_COMPUTED = {
    "fvd": f"not computed: give --i3d {I3D_HINT}",
    "fid": f"not computed: give --inception {INCEPTION_HINT}",
    "fd": "not computed: give --fd-net <TorchScript image feature network>",
    "clip_text": "not computed: give --clip <CLIP folder or id, e.g. openai/clip-vit-base-patch32>",
    "first_frame": "not computed: give --clip <CLIP folder or id>",
    "temporal": "not computed: give --clip <CLIP folder or id>",
    "clip_audio": "not computed: give --clip <CLIP ViT-B/32 folder> and --wav2clip ResNet_CX.ckpt "
    "(tia2v download clip-b32 wav2clip); its AudioCLIP variant, clip_audio_audioclip, needs "
    "--audioclip AudioCLIP-Full-Training.pt",
    "clap_audio_text": (
        "not computed: give --clap <CLAP folder or id, e.g. laion/clap-htsat-unfused>"
    ),
}


def _beside(folder: Path, sub: str, name: str) -> Path | None:
    for base in (folder.parent / sub, folder / sub):
        if (base / name).is_file():
            return base / name
    return None


def pair_videos(real: Path, fake: Path) -> tuple[list[str], list[str]]:
    """(ids present in both, messages about the ones present in only one)."""
    for folder in (real, fake):
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
    real_ids = {p.stem for p in real.glob("*.mp4")}
    fake_ids = {p.stem for p in fake.glob("*.mp4")}
    skipped = [
        f"{real / i}.mp4: no generated video with this name in {fake}"
        for i in sorted(real_ids - fake_ids)
    ]
    skipped += [
        f"{fake / i}.mp4: no real video with this name in {real}"
        for i in sorted(fake_ids - real_ids)
    ]
    if not real_ids & fake_ids:
        raise InputError(f"{real} and {fake}: no video names in common")
    return sorted(real_ids & fake_ids), skipped


def evaluate(
    real: str | Path,
    fake: str | Path,
    metrics=ALL_METRICS,
    networks: Networks | None = None,
    progress: bool = True,
    audio_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """Computes the metrics, every network on ``device``; returns the report
    (JSON-serialisable).

    AV-Align reads each video's onsets from ``<audio_dir>/<id>.wav`` (default: the ``audio/``
    folder beside ``fake``, which ``tia2v sample`` writes) where the file exists, else from
    the mp4's audio track; ``report["av_align_audio"]`` says which, per video."""
    from tqdm import tqdm

    real, fake, nets = Path(real), Path(fake), networks or Networks()
    unknown = set(metrics) - set(ALL_METRICS)
    if unknown:
        raise InputError(
            f"unknown metrics {sorted(unknown)} (choose from {', '.join(ALL_METRICS)})"
        )
    ids, skipped = pair_videos(real, fake)
    i3d = frechet.load_network(nets.i3d, I3D_HINT, device) if "fvd" in metrics else None
    inception = (
        frechet.load_network(nets.inception, INCEPTION_HINT, device) if "fid" in metrics else None
    )
    fd_net = (
        frechet.load_network(nets.fd_net, "a TorchScript image network", device)
        if "fd" in metrics
        else None
    )
    clip = None
    if nets.clip and {"clip_text", "first_frame", "temporal", "clip_audio"} & set(metrics):
        from tia2v.metrics.clip_scores import ClipScorer, clip_audio_score

        clip = ClipScorer.from_pretrained(nets.clip, device)
    wav2clip = None
    if nets.clip and nets.wav2clip and "clip_audio" in metrics:
        from tia2v.encoders.wav2clip import Wav2Clip

        wav2clip = Wav2Clip.load(locate(nets.wav2clip)).to(device)
    audioclip = None
    if nets.audioclip and "clip_audio" in metrics:
        from tia2v.encoders.audioclip import AudioClip, AudioClipImage
        from tia2v.metrics.clip_scores import audioclip_audio_score

        audioclip = AudioClip.load(locate(nets.audioclip), visual=AudioClipImage()).to(device)
    clap = None
    if nets.clap and "clap_audio_text" in metrics:
        from tia2v.metrics.clip_scores import ClapScorer

        clap = ClapScorer.from_pretrained(nets.clap, device)

    per_video, features = {}, {k: ([], []) for k in FEATURE_NETWORKS}
    feature_nets = {"fvd": i3d, "fid": inception, "fd": fd_net}
    failed = set()
    onset_sources = {}
    for clip_id in tqdm(ids, desc="eval", unit="video", disable=not progress):
        try:
            real_video = read_video(real / f"{clip_id}.mp4")
            fake_video = read_video(fake / f"{clip_id}.mp4")
        except InputError as exc:
            skipped.append(str(exc))
            continue
        a, b = real_video.frames, fake_video.frames
        if len(a) != len(b) or a.shape[1:] != b.shape[1:]:
            skipped.append(
                f"{fake / clip_id}.mp4: {b.shape[:3]} frames vs real {a.shape[:3]}; paired "
                f"metrics use the first {min(len(a), len(b))} frames, FVD/FID all"
            )
        n = min(len(a), len(b))
        row = {}
        if a.shape[1:] == b.shape[1:]:
            if "psnr" in metrics:
                row["psnr"] = min(paired.psnr(a[:n], b[:n]), PSNR_CAP)
            if "ssim" in metrics:
                row["ssim"] = paired.ssim(a[:n], b[:n])
        text_file = _beside(fake, "txt", f"{clip_id}.txt") or _beside(real, "txt", f"{clip_id}.txt")
        caption = text_file.read_text().splitlines()[0].strip() if text_file else None
        audio, rate = _audio(fake_video, fake, clip_id)  # one read for AV-Align and CLAP
        if "av_align" in metrics:
            wav = (
                Path(audio_dir) / f"{clip_id}.wav"
                if audio_dir is not None
                else _beside(fake, "audio", f"{clip_id}.wav")
            )
            if wav is not None and wav.is_file():
                row["av_align"] = av_align.av_align_wav(b, fake_video.fps, wav)
                onset_sources[clip_id] = str(wav)
            elif audio is None:
                skipped.append(
                    f"{fake / clip_id}.mp4: no audio track or audio/{clip_id}.wav: AV-Align skipped"
                )
            else:
                row["av_align"] = av_align.av_align(b, fake_video.fps, audio, rate)
                onset_sources[clip_id] = "mp4 audio track"
        if "toy" in metrics:
            meta_file = _beside(real, "meta", f"{clip_id}.json") or _beside(
                fake, "meta", f"{clip_id}.json"
            )
            if meta_file:
                row.update(_toy_row(b, a, json.loads(meta_file.read_text())))
        if clip is not None:
            embeddings = clip.image_embeddings(b)  # (F, D): one CLIP pass for every CLIP score
            row.update({k: v for k, v in clip.scores(embeddings, caption).items() if k in metrics})
            if wav2clip is not None and audio is not None:
                row["clip_audio"] = clip_audio_score(embeddings, audio, rate, wav2clip)
        if audioclip is not None and audio is not None:
            row["clip_audio_audioclip"] = audioclip_audio_score(b, audio, rate, audioclip)
        if clap is not None and caption and audio is not None:
            row["clap_audio_text"] = clap.audio_text(audio, rate, caption)
        for name, (flag, fn) in FEATURE_NETWORKS.items():
            net = feature_nets[name]
            if net is None:
                continue
            try:
                pair = np.atleast_2d(fn(net, a, device)), np.atleast_2d(fn(net, b, device))
            # A user-given network may fail in any way (--i3d and --inception swapped, say).
            except Exception as exc:  # noqa: BLE001
                reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
                skipped.append(
                    f"{flag} {getattr(nets, flag[2:].replace('-', '_'))}: failed on "
                    f"{clip_id}.mp4 ({type(exc).__name__}: {reason}); {name} not computed "
                    "(is it the right network for this flag?)"
                )
                feature_nets[name] = None
                features[name] = ([], [])
                failed.add(name)
                continue
            features[name][0].append(pair[0])
            features[name][1].append(pair[1])
        per_video[clip_id] = row

    summary = {}
    for name in metrics:
        values = [row[name] for row in per_video.values() if name in row and np.isfinite(row[name])]
        if name in features and features[name][0]:
            fd = frechet.frechet_of_features(
                np.concatenate(features[name][0]), np.concatenate(features[name][1])
            )
            label = name if name != "fd" else f"fd_{Path(nets.fd_net).stem}"
            summary[label] = fd
        elif values:
            summary[name] = float(np.mean(values))
        elif name in failed:
            summary[name] = "not computed: its network failed (see skipped)"
        elif name in NOT_COMPUTED:
            summary[name] = NOT_COMPUTED[name]
    for key in (
        "clip_audio_audioclip",
        "color_acc",
        "shape_acc",
        "direction_acc",
        "first_frame_psnr",
        "pulse_f1",
        "pulse_f1_real",
    ):
        values = [row[key] for row in per_video.values() if key in row]
        if values:
            summary[key] = float(np.mean([v for v in values if np.isfinite(v)] or [float("nan")]))
    return {
        "real": str(real),
        "fake": str(fake),
        "videos": len(per_video),
        "metrics": summary,
        "skipped": skipped,
        "av_align_audio": onset_sources,
        "per_video": per_video,
    }


def _audio(video, fake: Path, clip_id: str) -> tuple[np.ndarray | None, int]:
    if video.audio is not None and video.audio.shape[-1] > 0:
        return video.audio.mean(axis=0), video.audio_rate
    wav = _beside(fake, "audio", f"{clip_id}.wav")
    if wav is None:
        return None, 0
    return load_audio(wav, 22050), 22050


def _toy_row(frames: np.ndarray, real_frames: np.ndarray, meta: dict) -> dict:
    found = toy.analyze(frames)
    return {
        "color_acc": float(found.color == meta["color"]),
        "shape_acc": float(found.shape == meta["shape"]),
        "direction_acc": float(found.direction == meta["direction"]),
        "first_frame_psnr": min(toy.psnr(frames[0], real_frames[0]), PSNR_CAP),
        "pulse_f1": toy.sync_f1(found.pulse_frames, meta["onset_frames"]),
        "pulse_f1_real": toy.sync_f1(toy.analyze(real_frames).pulse_frames, meta["onset_frames"]),
    }


def markdown(report: dict) -> str:
    rows = ["| metric | value |", "|---|---|"]
    for name, value in report["metrics"].items():
        rows.append(
            f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |"
        )
    text = (
        f"{report['videos']} video pairs: `{report['real']}` vs `{report['fake']}`\n\n"
        + "\n".join(rows)
    )
    sources = list(report.get("av_align_audio", {}).values())
    if sources:
        from_track = sources.count("mp4 audio track")
        text += (
            f"\n\nAV-Align onsets: {len(sources) - from_track} from wav files, "
            f"{from_track} from the mp4 audio tracks"
        )
    if report["skipped"]:
        text += "\n\nSkipped or partial:\n" + "\n".join(f"- {line}" for line in report["skipped"])
    return text + "\n"
