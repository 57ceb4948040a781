"""Typed, nested experiment configuration.

One frozen dataclass per concern (model, diffusion, data, encoders, train, sample) inside
:class:`ExperimentConfig`. Configs are stored as YAML and loaded strictly: an unknown key or a
value of the wrong type is an error that names the key. Presets (``tiny``, ``demo``,
``paper-urmp``, ``paper-landscape``) are partial YAML files shipped in ``tia2v/configs/`` and
applied on top of the defaults; ``--set a.b=v`` overrides are applied last.

Field names are serialised into every checkpoint: rename with care.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from tia2v.errors import ConfigError

PRESETS = ("tiny", "demo", "paper-urmp", "paper-landscape")


@dataclass(frozen=True)
class ModelConfig:
    """UNet architecture shared by the content and the motion model (method §3-4).

    Frame count and resolution are not architecture: they come from ``data`` (one name per
    concept), and ``attention_resolutions`` are feature-map sizes at ``data.image_size``.
    ``first_frame``: "noised" (the paper: frame 0 is noised like the others in training and put
    back noised to the current level when sampling) or "clean" (frame 0 is given clean to the
    network whenever the image condition is on, in training and sampling, and excluded from
    the loss; without the image it is noised like the others). ``first_frame_channels``: every
    frame also gets the clean first frame as extra input channels (a direct, pixel-aligned
    path for copying appearance; a deliberate change from the paper, method §9.10).
    ``first_frame_residual``: the network works on the change from the first frame: it sees
    x_t − √ᾱ_t·frame₀ and its prediction is shifted back (v − √(1−ᾱ_t)·frame₀), so frame 0's
    appearance comes through these shifts and the layers only model what changes; without
    the image it is the plain network. Exact for any sampler or guidance (affine in x₀).
    ``pooled_text``: the masked mean of the text tokens, projected, is added to the timestep
    embedding (as Imagen does), so every ResBlock at every resolution sees the prompt, not only
    the attention sites; zero-initialised, so a model trained without it is fine-tuned from
    its exact output.
    ``frame_text``: the pooled prompt beside each frame's position encoding, through an MLP, is
    added to that frame's timestep embedding, so what the prompt asks of frame f (how far the
    object has moved by then, say) reaches every ResBlock of that frame; the other paths give
    every frame the same prompt vector. Zero-initialised like ``pooled_text``.
    ``lowres_channels`` (refiner): every frame also gets the upsampled low-resolution video as
    input channels (SR3-style), so the refiner re-renders what it is given instead of guessing
    it from text and a noised copy (the paper's SHR has only those; method §6).
    """

    in_channels: int = 3
    model_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 3)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16,)
    num_heads: int = 4
    transformer_depth: int = 1
    context_dim: int = 768
    norm_groups: int = 32
    use_scale_shift_norm: bool = True
    learn_sigma: bool = True
    dropout: float = 0.0
    temporal_dropout: float = 0.1
    gradient_checkpointing: bool = False
    channels_last: bool = False
    first_frame: str = "noised"
    first_frame_channels: bool = False
    first_frame_residual: bool = False
    pooled_text: bool = False
    frame_text: bool = False
    lowres_channels: bool = False


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedule and training objective (method §5)."""

    schedule: str = "cosine"
    num_timesteps: int = 4000
    prediction: str = "eps"
    learn_sigma: bool = True
    vlb_weight: float | None = None
    loss_weighting: str = "none"
    min_snr_gamma: float = 5.0


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from and how one training example is cut from them.

    fps and clip length are read from each file; ``expected_fps`` and ``clip_frames`` (0: any)
    only let ``tia2v prepare --check`` flag files that differ from the data set's norm.
    ``audio_window`` is the length in seconds of the audio window centred on each frame.
    """

    root: str = ""
    expected_fps: float = 0.0
    clip_frames: int = 0
    num_frames: int = 16
    frame_stride: int = 1
    image_size: int = 64
    audio_rate: int = 16000
    audio_window: float = 0.25
    seed: int = 0
    num_workers: int = 0


@dataclass(frozen=True)
class EncoderConfig:
    """Condition encoders, built by name (``tia2v.encoders``)."""

    text: str = "minilm"
    text_path: str = ""
    text_max_length: int = 77
    image: str = "patch"
    image_path: str = ""
    audio: str = "mel"
    audio_path: str = ""
    audio_tokens: int = 8


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, checkpointing and condition dropout.

    ``max_noise``: training timesteps are drawn from the first ``max_noise``·T only; a refiner
    applied at strengths up to ``max_noise`` never denoises from higher, so its training can
    spend every step there (the demo's refiner; 1 everywhere else).

    ``timestep_shift``: s > 1 draws training timesteps toward high noise,
    t = s·u/(1+(s−1)·u)·max_noise·T for u uniform (the SD3 shift applied to the draw only;
    the schedule and sampling are unchanged). Text is what decides a toy video's layout and
    motion only near t = T, where x_t no longer shows them: s = 4 trains t > 0.95·T 17 % of
    the time instead of 5 %.
    """

    run_dir: str = "runs/default"
    init_from: str = ""
    resume: str = ""
    max_steps: int = 100_000
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    grad_clip: float = 1.0
    mixed_precision: str = "no"
    ema_decay: float = 0.9999
    ema_warmup: int = 0
    freeze_spatial: bool = True
    drop_text: float = 0.1
    drop_image: float = 0.1
    drop_audio: float = 0.1
    max_noise: float = 1.0
    timestep_shift: float = 1.0
    log_every: int = 50
    save_every: int = 5000
    sample_every: int = 0
    seed: int = 0


@dataclass(frozen=True)
class SampleConfig:
    """Sampler defaults used by ``generate`` and ``sample``.

    ``eta``: fresh noise per step of ``ddim`` and ``dpm++`` (0: the deterministic ODE solver;
    1: DDPM-like for DDIM, the 2M SDE solver for DPM-Solver++). ``guidance_min_noise``: guidance
    applies only at t ≥ guidance_min_noise·T; below, the fully conditional prediction alone (one
    UNet branch instead of one per modality + 1).
    """

    sampler: str = "dpm++"
    steps: int = 25
    eta: float = 0.0
    guidance_text: float = 3.0
    guidance_image: float = 1.5
    guidance_audio: float = 4.0
    guidance_min_noise: float = 0.0
    first_frame_replacement: bool = True
    fps: float = 8.0
    seed: int = 0


@dataclass(frozen=True)
class RefinerConfig:
    """The SHR refinement stage: a text-conditioned video model at ``scale``× the resolution,
    applied SDEdit-style to the upsampled output from t = strength·T − 1 (the historical
    script started at 1499 of 4000: strength 0.375)."""

    scale: int = 2
    strength: float = 0.375
    steps: int = 10
    guidance_text: float = 3.0
    model: ModelConfig = field(default_factory=ModelConfig)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs; saved as ``config.yaml`` and inside every checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    encoders: EncoderConfig = field(default_factory=EncoderConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)


T = TypeVar("T")


# ----------------------------------------------------------------------------------------------
# Strict conversion between plain dicts and the dataclasses.


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Converts ``value`` to ``annotation`` or raises a ConfigError naming ``key``."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        inner = [a for a in options if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is tuple:
        item_type = get_args(annotation)[0]
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        return tuple(_coerce(v, item_type, key) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    raise ConfigError(f"config key '{key}': unsupported type {annotation!r}")


def from_dict(cls: type[T], data: dict[str, Any], base: T | None = None, prefix: str = "") -> T:
    """Builds ``cls`` from a (possibly partial) nested dict, strictly.

    Args:
        cls: a config dataclass.
        data: keys to set; every key must be a field of ``cls``.
        base: values for the keys ``data`` leaves out (defaults when None).
        prefix: dotted path of ``cls`` inside the experiment config, for error messages.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or 'root'}': expected a mapping, got {data!r}")
    base = base if base is not None else cls()
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    updates = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown config key '{dotted}' (known here: {known})")
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            updates[key] = from_dict(annotation, value, getattr(base, key), f"{dotted}.")
        else:
            updates[key] = _coerce(value, annotation, dotted)
    return dataclasses.replace(base, **updates)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict (tuples become lists) suitable for YAML or JSON."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def to_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(to_yaml(cfg))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return data


def load_config(path: str | Path, base: ExperimentConfig | None = None) -> ExperimentConfig:
    """Loads a YAML config file strictly, on top of ``base`` (defaults when None)."""
    path = Path(path)
    try:
        return from_dict(ExperimentConfig, _read_yaml(path), base)
    except ConfigError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {exc}") from exc


def preset_path(name: str) -> Path:
    return Path(str(resources.files("tia2v") / "configs" / f"{name}.yaml"))


def resolve_config(name_or_path: str | None, overrides: list[str] = ()) -> ExperimentConfig:
    """The config a command runs with: a preset name or YAML path, then ``--set`` overrides."""
    cfg = ExperimentConfig()
    if name_or_path:
        if name_or_path in PRESETS:
            cfg = load_config(preset_path(name_or_path))
        elif Path(name_or_path).exists():
            cfg = load_config(name_or_path)
        else:
            raise ConfigError(
                f"{name_or_path}: no such config file (presets: {', '.join(PRESETS)})"
            )
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Applies ``a.b=value`` strings; values are parsed as YAML, then typed by the field."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}': expected key=value, e.g. train.lr=2e-4")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        nested: Any = value
        for part in reversed(key.strip().split(".")):
            nested = {part: nested}
        cfg = from_dict(ExperimentConfig, nested, cfg)
    return cfg
