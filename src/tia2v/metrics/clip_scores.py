"""CLIP-based scores (RGB frames with CLIP's own preprocessing and normalisation).

- CLIP-text: 100 · mean over frames of cos(image(frame), text(caption)).
- first-frame consistency: 100 · mean over k ≥ 1 of cos(image(frame_k), image(frame_0)).
- temporal consistency: 100 · mean over k of cos(image(frame_k), image(frame_{k+1})).
- CLAP audio–text: 100 · cos(CLAP audio(track), CLAP text(caption)), the audio slot's first
  encoder (the original's CLIP-audio needs AudioCLIP/wav2clip weights in CLIP image space).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tia2v.assets import locate
from tia2v.encoders.base import load_pretrained
from tia2v.encoders.image import clip_preprocess
from tia2v.frames import images_to_tensor


class ClipScorer:
    """A transformers CLIPModel (folder or Hugging Face id) and its tokenizer."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.size = model.config.vision_config.image_size

    @classmethod
    def from_pretrained(cls, path: str, device: str | torch.device = "cpu") -> ClipScorer:
        from transformers import AutoTokenizer, CLIPModel

        model, tokenizer = load_pretrained(locate(path), "a CLIP model", CLIPModel, AutoTokenizer)
        return cls(model.to(device), tokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def image_embeddings(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 RGB (F, H, W, 3) → unit vectors (F, D)."""
        images = images_to_tensor(frames).to(self.device)  # (F, 3, H, W)
        features = self.model.get_image_features(pixel_values=clip_preprocess(images, self.size))
        features = getattr(features, "pooler_output", features)
        return F.normalize(features, dim=-1)

    @torch.no_grad()
    def text_embedding(self, text: str) -> torch.Tensor:
        tokens = self.tokenizer(
            [text], padding=True, truncation=True, max_length=77, return_tensors="pt"
        ).to(self.device)
        features = self.model.get_text_features(**tokens)
        return F.normalize(getattr(features, "pooler_output", features), dim=-1)[0]

    def scores(self, emb: torch.Tensor, text: str | None) -> dict[str, float]:
        """First-frame and temporal consistency of one video's frame embeddings (F, D) (from
        ``image_embeddings``), and its CLIP-text score when ``text`` is given."""
        out = {
            "first_frame": float(100 * (emb[1:] @ emb[0]).mean()) if len(emb) > 1 else float("nan"),
            "temporal": float(100 * (emb[1:] * emb[:-1]).sum(-1).mean())
            if len(emb) > 1
            else float("nan"),
        }
        if text:
            out["clip_text"] = float(100 * (emb @ self.text_embedding(text)).mean())
        return out


class ClapScorer:
    """A transformers ClapModel with its feature extractor and tokenizer (48 kHz audio)."""

    rate = 48000

    def __init__(self, model, feature_extractor, tokenizer):
        self.model, self.feature_extractor, self.tokenizer = (
            model.eval(),
            feature_extractor,
            tokenizer,
        )

    @classmethod
    def from_pretrained(cls, path: str, device: str | torch.device = "cpu") -> ClapScorer:
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        model, extractor, tokenizer = load_pretrained(
            locate(path), "a CLAP model", ClapModel, ClapFeatureExtractor, AutoTokenizer
        )
        return cls(model.to(device), extractor, tokenizer)

    @torch.no_grad()
    def audio_text(self, audio: np.ndarray, rate: int, text: str) -> float:
        from tia2v.io import resample

        wave = resample(audio, rate, self.rate)
        features = self.feature_extractor(
            [wave], sampling_rate=self.rate, truncation="rand_trunc", return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        audio_emb = self.model.get_audio_features(
            input_features=features["input_features"].to(device)
        )
        tokens = self.tokenizer([text], padding=True, return_tensors="pt").to(device)
        text_emb = self.model.get_text_features(**tokens)
        audio_emb = F.normalize(getattr(audio_emb, "pooler_output", audio_emb), dim=-1)
        text_emb = F.normalize(getattr(text_emb, "pooler_output", text_emb), dim=-1)
        return float(100 * (audio_emb * text_emb).sum())


@torch.no_grad()
def clip_audio_score(
    frame_embeddings: torch.Tensor, audio: np.ndarray, rate: int, wav2clip
) -> float:
    """The original's CLIP-audio score with wav2clip: the track split into one equal part per
    frame, all parts embedded in one call (wav2clip standardises over the call, as the
    original's ``embed_audio`` of the (F, S) array did), 100·cos with each frame's CLIP image
    embedding, averaged over the frames. Fixed against the original: the audio is read at
    wav2clip's 16 kHz (not 48 kHz) and the frames are RGB with CLIP's normalisation.

    frame_embeddings: (F, 512) unit vectors; audio: mono at ``rate``."""
    from tia2v.io import resample

    frames = len(frame_embeddings)
    wave = resample(audio, rate, wav2clip.sample_rate)
    per_frame = len(wave) // frames
    parts = torch.from_numpy(np.ascontiguousarray(wave[: per_frame * frames], np.float32))
    device = next(wav2clip.parameters()).device
    embedded = wav2clip(parts.reshape(frames, per_frame).to(device), joint=True)  # (F, 512)
    embedded = F.normalize(embedded, dim=-1).to(frame_embeddings.device)
    return float(100 * (embedded * frame_embeddings).sum(-1).mean())


@torch.no_grad()
def audioclip_audio_score(frames: np.ndarray, audio: np.ndarray, rate: int, audioclip) -> float:
    """The original's CLIP-audio score with AudioCLIP: the track split into one equal part per
    frame, each part embedded by AudioCLIP's audio head and each frame by its own image tower,
    and the mean over frames of exp(logit_scale_ai), clamped to [1, 100] as AudioCLIP does,
    times the cosine of the pair (the diagonal of its audio–image logits). Fixed against the
    original: the audio is resampled to AudioCLIP's 44.1 kHz and the frames are RGB.

    frames: uint8 (F, H, W, 3); audio: mono at ``rate``; audioclip: a ``tia2v.encoders
    .audioclip.AudioClip`` loaded with its image tower."""
    from tia2v.io import resample

    device = next(audioclip.parameters()).device
    count = len(frames)
    wave = resample(audio, rate, audioclip.sample_rate)
    per_frame = len(wave) // count
    parts = torch.from_numpy(np.ascontiguousarray(wave[: per_frame * count], np.float32))
    audio_emb = F.normalize(audioclip(parts.reshape(count, per_frame).to(device)), dim=-1)
    images = audioclip.visual.preprocess(torch.from_numpy(np.ascontiguousarray(frames)).to(device))
    image_emb = F.normalize(audioclip.visual(images), dim=-1)  # (F, 1024)
    return float(audioclip.logit_scale() * (audio_emb * image_emb).sum(-1).mean())
