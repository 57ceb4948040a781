"""The pretrained files the paper setting needs, where they are published, and where tia2v
looks for them.

``tia2v download NAME`` puts each one in the asset folder (``$TIA2V_HOME``, else
``~/.cache/tia2v``). An encoder or metric path from a config or a flag is used as given when it
exists; otherwise a file or folder of the same base name in the asset folder is used, so the
paper presets' ``saved_ckpts/BEATs_iter3_plus_AS20K.pt`` and ``openai/clip-vit-large-patch14``
find the downloaded copies from any working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HF = "https://huggingface.co"
# The tokenizer, processor and config files of a Hugging Face folder; weights listed apart.
HF_FILES = (
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "special_tokens_map.json",
)
BEATS_URL = (
    "https://valle.blob.core.windows.net/share/BEATs/BEATs_iter3_plus_AS20K.pt"
    "?sv=2020-08-04&st=2023-03-01T07%3A51%3A05Z&se=2033-03-02T07%3A51%3A00Z&sr=c&sp=rl"
    "&sig=QJXmSJG9DbMKf48UDIU1MfzIro8HQOf3sqlNXiflY1I%3D"
)


@dataclass(frozen=True)
class Asset:
    """One downloadable file, or a Hugging Face folder of files.

    Args:
        what: what it is, for ``tia2v download --help`` and messages.
        target: the file or folder name in the asset folder.
        urls: file name → its URL (a folder's files; one entry for a single file).
        weights: for a folder, the weight files to try in order (the first that exists).
        use: how to point tia2v at it; ``{path}`` is replaced by where it was written.
    """

    what: str
    target: str
    urls: dict[str, str]
    use: str
    weights: tuple[str, ...] = ()

    @property
    def is_folder(self) -> bool:
        return bool(self.weights)


def _hf(repo: str, what: str, use: str) -> Asset:
    files = (*HF_FILES, "model.safetensors", "pytorch_model.bin")
    urls = {name: f"{HF}/{repo}/resolve/main/{name}" for name in files}
    return Asset(what, repo.split("/")[-1], urls, use, ("model.safetensors", "pytorch_model.bin"))


ASSETS = {
    "beats": Asset(
        "BEATs iter3+ AS20K, the paper's audio encoder (Microsoft unilm)",
        "BEATs_iter3_plus_AS20K.pt",
        {"BEATs_iter3_plus_AS20K.pt": BEATS_URL},
        "--set encoders.audio_path={path}",
    ),
    "clip": _hf(
        "openai/clip-vit-large-patch14",
        "CLIP ViT-L/14, the paper's text and image encoder",
        "--set encoders.text_path={path} --set encoders.image_path={path}",
    ),
    "bert": _hf(
        "google-bert/bert-base-uncased",
        "BERT base uncased, the original's other text encoder",
        "--set encoders.text=bert --set encoders.text_path={path}",
    ),
    "clip-b32": _hf(
        "openai/clip-vit-base-patch32",
        "CLIP ViT-B/32, the network of the original's CLIP scores",
        "tia2v eval --clip {path}",
    ),
    "wav2clip": Asset(
        "wav2clip's audio encoder (the original's CLIP-audio score)",
        "ResNet_CX.ckpt",
        {"ResNet_CX.ckpt": "https://www.dropbox.com/s/94fqdi4lgi8vu19/ResNet_CX.ckpt?dl=1"},
        "tia2v eval --wav2clip {path}",
    ),
    "audioclip": Asset(
        "AudioCLIP (full training), its audio head is the original's other audio encoder",
        "AudioCLIP-Full-Training.pt",
        {
            "AudioCLIP-Full-Training.pt": "https://github.com/AndreyGuzhov/AudioCLIP/releases/"
            "download/v0.1/AudioCLIP-Full-Training.pt"
        },
        "--set encoders.audio=audioclip --set encoders.audio_path={path} "
        "--set data.audio_rate=44100",
    ),
    "i3d": Asset(
        "I3D (TorchScript) of StyleGAN-V's FVD code",
        "i3d_torchscript.pt",
        {"i3d_torchscript.pt": "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"},
        "tia2v eval --i3d {path}",
    ),
    "inception": Asset(
        "Inception-v3 (TorchScript) of StyleGAN2-ADA's FID code",
        "inception-2015-12-05.pt",
        {
            "inception-2015-12-05.pt": "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/"
            "pretrained/metrics/inception-2015-12-05.pt"
        },
        "tia2v eval --inception {path}",
    ),
    "clap": _hf(
        "laion/clap-htsat-unfused",
        "CLAP HTS-AT (LAION), the audio-text score",
        "tia2v eval --clap {path}",
    ),
}


def asset_dir() -> Path:
    """Where ``tia2v download`` writes and where paths are looked up: ``$TIA2V_HOME``, else
    ``~/.cache/tia2v``."""
    home = os.environ.get("TIA2V_HOME")
    return Path(home) if home else Path.home() / ".cache" / "tia2v"


def locate(path: str, *places: Path) -> str:
    """``path`` when it exists; else, in each of ``places`` (default: the asset folder),
    ``place/path`` or a file or folder of the same base name, the first that exists; else
    ``path`` unchanged (a Hugging Face id, or a missing file that the caller reports)."""
    if not path or os.path.exists(path):
        return path
    for place in places or (asset_dir(),):
        for candidate in (place / path, place / Path(path).name):
            if candidate.exists():
                return str(candidate)
    return path
