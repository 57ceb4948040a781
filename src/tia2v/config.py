"""Typed, nested experiment configuration.

One frozen dataclass per concern (model, diffusion, data, encoders, train, sample) inside
:class:`ExperimentConfig`. Configs are stored as YAML and loaded strictly: an unknown key or a
value of the wrong type is an error that names the key. Presets (``tiny``, ``demo``,
``paper-urmp``, ``paper-landscape``) are partial YAML files shipped in ``tia2v/configs/`` and
applied on top of the defaults; ``--set a.b=v`` overrides are applied last.

Field names are serialised into every checkpoint: rename with care.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from tia2v.errors import ConfigError

logger = logging.getLogger(__name__)

PRESETS = (
    "tiny",
    "demo",
    "paper-urmp",
    "paper-landscape",
    "paper-urmp-shr",
    "paper-landscape-shr",
)


def choice(default: str, *others: str) -> Any:
    """A string field that takes one of a fixed set of values, checked at load."""
    return field(default=default, metadata={"choices": (default, *others)})


def bounded(
    default: float,
    *,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
) -> Any:
    """A number field checked at load: ≥ ``low``, > ``above``, ≤ ``high`` (where given)."""
    return field(default=default, metadata={"low": low, "above": above, "high": high})


def sampler_choice(default: str) -> Any:
    """A sampler name, checked against the sampler registry at load."""
    return field(default=default, metadata={"choices": _sampler_names})


def _sampler_names() -> tuple[str, ...]:
    from tia2v.sampling.registry import SAMPLERS  # the registry owns the names

    return tuple(SAMPLERS)


@dataclass(frozen=True)
class ModelConfig:
    """UNet architecture shared by the content and the motion model.

    Frame count and resolution come from ``data``; ``attention_resolutions`` are feature-map
    sizes at ``data.image_size``. What each option does and why: docs/method.md.
    """

    in_channels: int = bounded(3, low=1)  # channels of a frame
    model_channels: int = bounded(64, low=1)  # width of the first level
    channel_mult: tuple[int, ...] = (1, 2, 3)  # width multiplier per level
    num_res_blocks: int = bounded(2, low=1)  # ResBlocks per level
    attention_resolutions: tuple[int, ...] = (16,)  # feature sizes with attention
    num_heads: int = bounded(4, low=1)  # attention heads
    transformer_depth: int = bounded(1, low=1)  # transformer blocks per attention site
    context_dim: int = bounded(768, low=1)  # width of the condition tokens
    norm_groups: int = bounded(32, low=1)  # GroupNorm groups
    use_scale_shift_norm: bool = True  # timestep embedding as FiLM scale and shift
    dropout: float = bounded(0.0, low=0, high=1)  # ResBlock dropout
    temporal_dropout: float = bounded(0.1, low=0, high=1)  # dropout in the temporal convolutions
    gradient_checkpointing: bool = False  # recompute blocks in backward (less memory)
    first_frame: str = choice("noised", "clean")  # frame 0 noised like the rest, or given clean
    # text and image cross-attention: one softmax over [text ; image], or the original's two
    # passes of the same weights, each with its own residual (attention_ti.BasicTransformerBlock)
    cross_attention: str = choice("joint", "separate")
    first_frame_channels: bool = False  # every frame also sees the clean first frame as input
    pooled_text: bool = False  # pooled prompt added to the timestep embedding
    frame_text: bool = False  # pooled prompt + frame position added per frame


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedule and training objective."""

    schedule: str = choice("cosine", "linear")  # ᾱ schedule
    num_timesteps: int = bounded(4000, low=2)  # T
    prediction: str = choice("eps", "v")  # what the network predicts
    learn_sigma: bool = True  # learned-range variance (extra output channels, VLB term)
    vlb_weight: float | None = None  # weight of the VLB term (None: T/1000, as iDDPM)
    # VLB posterior from x̂₀ clamped to [-1, 1], as the original's training_losses
    # (diffusion/tacm_gaussian_diffusion.py, _vb_terms_bpd with clip_denoised=True)
    vlb_clip_x0: bool = False
    loss_weighting: str = choice("none", "min_snr")  # weighting of the MSE term over t
    min_snr_gamma: float = bounded(5.0, above=0)  # γ of min-SNR-γ weighting


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from and how one training example is cut from them.

    fps and clip length are read from each file; ``expected_fps`` and ``clip_frames`` only let
    ``tia2v prepare --check`` flag files that differ from the data set's norm.
    """

    root: str = ""  # VAT folder
    expected_fps: float = 0.0  # fps that --check expects (0: any)
    clip_frames: int = 0  # clip length that --check expects (0: any)
    num_frames: int = bounded(16, low=1)  # frames per example
    frame_stride: int = bounded(1, low=1)  # take every n-th frame
    image_size: int = bounded(64, low=8)  # frame size in pixels (square)
    # pixels scaled to [-value_range, value_range] (the original trains on 0.5)
    value_range: float = bounded(1.0, above=0)
    audio_rate: int = bounded(16000, low=1)  # Hz the audio encoder reads
    audio_window: float = bounded(0.25, above=0)  # seconds of audio centred on each frame
    seed: int = 0  # crops and caption choice
    num_workers: int = bounded(0, low=0)  # DataLoader workers


@dataclass(frozen=True)
class EncoderConfig:
    """Condition encoders, built by name (``tia2v.encoders``)."""

    text: str = "minilm"  # minilm (shipped), clip, bert or hf
    text_path: str = ""  # folder or Hugging Face id for clip / hf (bert: bert-base-uncased)
    text_max_length: int = bounded(77, low=1)  # token limit
    image: str = "patch"  # patch (trainable) or clip
    image_path: str = ""  # folder or Hugging Face id for clip
    audio: str = "mel"  # mel (trainable), beats, wav2clip, audioclip or clap
    audio_path: str = ""  # BEATs or wav2clip checkpoint, or CLAP folder / id
    audio_tokens: int = bounded(8, low=1)  # audio tokens per frame


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, checkpointing and condition dropout. The timestep draw is
    t = s·u/(1+(s−1)·u)·max_noise·T for u uniform (s: ``timestep_shift``)."""

    run_dir: str = "runs/default"  # checkpoints, log and exported model
    init_from: str = ""  # motion stage: content run or model folder to start from
    attach_to: str = ""  # refiner stage: model folder that receives the trained refiner
    max_steps: int = bounded(100_000, low=0)  # optimiser steps
    batch_size: int = bounded(1, low=1)  # clips per micro-batch and process
    grad_accum: int = bounded(1, low=1)  # micro-batches per step
    lr: float = bounded(5e-5, above=0)  # AdamW learning rate
    weight_decay: float = bounded(0.0, low=0)  # AdamW weight decay
    warmup_steps: int = bounded(0, low=0)  # linear learning-rate warm-up
    grad_clip: float = bounded(1.0, above=0)  # gradient-norm clip
    mixed_precision: str = choice("no", "bf16", "fp16")  # autocast on GPU (never on CPU)
    tf32: bool = True  # TF32 matrix products and convolutions on GPU
    compile: bool = False  # torch.compile the UNet on GPU (never on CPU)
    ema_decay: float = bounded(0.9999, low=0, high=1)  # EMA decay
    ema_warmup: int = bounded(0, low=0)  # steps before the EMA starts averaging
    freeze_spatial: bool = True  # motion stage: train the temporal layers only
    drop_text: float = bounded(0.1, low=0, high=1)  # probability of the null text in training
    drop_image: float = bounded(0.1, low=0, high=1)  # probability of the null image
    drop_audio: float = bounded(0.1, low=0, high=1)  # probability of the null audio
    # training timesteps drawn from the first max_noise·T only (a refiner)
    max_noise: float = bounded(1.0, above=0, high=1)
    # s > 1 draws more high-noise training timesteps (the SD3 shift)
    timestep_shift: float = bounded(1.0, above=0)
    log_every: int = bounded(50, low=1)  # steps per log.jsonl row
    save_every: int = bounded(5000, low=1)  # steps per checkpoint
    sample_every: int = bounded(0, low=0)  # steps per progress video (0: none)
    seed: int = 0  # initial weights, noise, dropout, data order


@dataclass(frozen=True)
class SampleConfig:
    """Sampler defaults used by ``generate`` and ``sample``."""

    sampler: str = sampler_choice("dpm++")  # a name of the sampler registry
    steps: int = bounded(25, low=1)  # solver steps
    # fresh noise per ddim / dpm++ step (0: ODE, 1: DDPM-like / 2M SDE)
    eta: float = bounded(0.0, low=0)
    guidance_text: float = 3.0  # guidance scale of the text
    guidance_image: float = 1.5  # guidance scale of the first frame
    guidance_audio: float = 4.0  # guidance scale of the audio
    # no guidance below t = guidance_min_noise·T
    guidance_min_noise: float = bounded(0.0, low=0, high=1)
    first_frame_replacement: bool = True  # put the given first frame back at every step
    fps: float = bounded(8.0, above=0)  # frames per second of generated video


@dataclass(frozen=True)
class RefinerConfig:
    """The SHR refinement stage: a text-conditioned video model at ``scale``× the resolution,
    applied SDEdit-style to the upsampled output from t = strength·T − 1 (the original
    script started at 1499 of 4000: strength 0.375)."""

    scale: int = bounded(2, low=1)  # resolution factor
    strength: float = bounded(0.375, low=0, high=1)  # SDEdit start, as a fraction of T
    steps: int = bounded(10, low=1)  # DPM-Solver++ steps
    guidance_text: float = 3.0  # guidance scale of the text
    lowres_channels: bool = False  # the upsampled input also as input channels (SR3-style)
    model: ModelConfig = field(default_factory=ModelConfig)  # its UNet


@dataclass(frozen=True)
class DistillConfig:
    """Guided consistency distillation (``tia2v train distill``) of a trained model into a
    few-step student that takes the guidance scales as an input. Each training step draws one
    scale per modality from its [low, high] range; the EMA of the student
    (``train.ema_decay``, 0.95 as in LCM) is both the target network and the exported student."""

    teacher: str = ""  # model folder whose generator is distilled
    # the teacher's DDIM step spans T / teacher_steps schedule steps (LCM's skip k)
    teacher_steps: int = bounded(50, low=1)
    guidance_text: tuple[float, ...] = (1.0, 4.0)  # [low, high] of the text scale
    guidance_image: tuple[float, ...] = (1.0, 3.5)  # [low, high] of the image scale
    guidance_audio: tuple[float, ...] = (1.0, 3.0)  # [low, high] of the audio scale
    steps: int = bounded(4, low=1)  # the lcm sampler's default step count

    def __post_init__(self) -> None:
        for name in ("guidance_text", "guidance_image", "guidance_audio"):
            pair = getattr(self, name)
            if len(pair) != 2 or not 0 <= pair[0] <= pair[1]:
                raise ConfigError(
                    f"config key 'distill.{name}': expected [low, high] with 0 <= low <= high, "
                    f"got {list(pair)}"
                )


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
    distill: DistillConfig = field(default_factory=DistillConfig)


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
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"config key '{key}': expected a finite number, got {value!r}")
        return number
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
    if cls is ExperimentConfig:
        data = upgrade_removed_keys(data, base)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    updates = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown config key '{dotted}' (known here: {known})")
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            updates[key] = from_dict(annotation, value, getattr(base, key), f"{dotted}.")
            continue
        updates[key] = _coerce(value, annotation, dotted)
        _check_bounds(updates[key], fields[key].metadata, dotted)
        choices = fields[key].metadata.get("choices")
        if choices is not None:
            allowed = choices() if callable(choices) else choices
            if updates[key] not in allowed:
                raise ConfigError(
                    f"config key '{dotted}': {updates[key]!r} is not one of {', '.join(allowed)}"
                )
    return dataclasses.replace(base, **updates)


def _check_bounds(value: Any, metadata: Any, key: str) -> None:
    low, above, high = metadata.get("low"), metadata.get("above"), metadata.get("high")
    wrong = (
        (low is not None and value < low)
        or (above is not None and value <= above)
        or (high is not None and value > high)
    )
    if wrong:
        bounds = ((">=", low), (">", above), ("<=", high))
        allowed = " and ".join(f"{sign} {bound:g}" for sign, bound in bounds if bound is not None)
        raise ConfigError(f"config key '{key}': {value!r} is out of range (must be {allowed})")


# ----------------------------------------------------------------------------------------------
# Keys that older model folders carry. A key at the value that matched what the code still
# does is dropped silently; one that no longer has an effect warns; one whose value would
# change the output is an error.


def upgrade_removed_keys(data: dict[str, Any], base: ExperimentConfig) -> dict[str, Any]:
    """``data`` (a nested config dict) with the removed keys dropped or moved to their home."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    refiner = data.get("refiner")
    if isinstance(refiner, dict) and isinstance(refiner.get("model"), dict):
        refiner["model"] = dict(refiner["model"])
        if "lowres_channels" in refiner["model"]:
            refiner.setdefault("lowres_channels", refiner["model"].pop("lowres_channels"))
    diffusion = data.get("diffusion") if isinstance(data.get("diffusion"), dict) else {}
    learn_sigma = diffusion.get("learn_sigma", base.diffusion.learn_sigma)
    models = [("model", data.get("model"))]
    if isinstance(refiner, dict):
        models.append(("refiner.model", refiner.get("model")))
    for prefix, model in models:
        if not isinstance(model, dict):
            continue
        if model.pop("channels_last", False):
            logger.warning("%s.channels_last is no longer read (it gave no speed-up)", prefix)
        if model.pop("first_frame_residual", False):
            raise ConfigError(
                f"config key '{prefix}.first_frame_residual': this model works on the change "
                "from frame 0, which this version of tia2v no longer implements"
            )
        if prefix == "model" and model.pop("lowres_channels", False):
            raise ConfigError(
                "config key 'model.lowres_channels': only a refiner takes a low-resolution "
                "input (refiner.lowres_channels)"
            )
        if "learn_sigma" in model and model.pop("learn_sigma") != learn_sigma:
            raise ConfigError(
                f"config key '{prefix}.learn_sigma' differs from 'diffusion.learn_sigma'; "
                "keep only diffusion.learn_sigma"
            )
    for key, advice in (("train.resume", "use --resume RUN_DIR"), ("sample.seed", "use --seed")):
        section, name = key.split(".")
        if isinstance(data.get(section), dict) and data[section].pop(name, None):
            logger.warning("%s is no longer read (%s)", key, advice)
    return data


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


def load_config(
    path: str | Path, base: ExperimentConfig | None = None, _seen: tuple[Path, ...] = ()
) -> ExperimentConfig:
    """Loads a YAML config file strictly, on top of ``base`` (defaults when None).

    A file may start from another config: ``base: paper-urmp`` (a preset) or ``base: other.yaml``
    (a path, relative to the file); its own keys are applied on top."""
    path = Path(path)
    data = _read_yaml(path)
    parent = data.pop("base", None)
    if parent is not None:
        if path.resolve() in _seen:
            raise ConfigError(f"{path}: 'base' chain comes back to this file")
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: 'base' must name a preset or a YAML file")
        parent_path = preset_path(parent) if parent in PRESETS else path.parent / parent
        if not parent_path.is_file():
            raise ConfigError(f"{path}: base {parent!r} is neither a preset nor a file")
        base = load_config(parent_path, base, (*_seen, path.resolve()))
    try:
        return from_dict(ExperimentConfig, data, base)
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
