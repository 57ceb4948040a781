"""The model folder: what ``TIA2VPipeline.from_pretrained`` reads and training exports.

```
config.yaml                    the ExperimentConfig the model was trained with
motion.safetensors             the UNet of the stage (or content.safetensors)
encoders.safetensors           the trainable encoder parts (frozen encoders are not saved)
refiner.safetensors            optional: the SHR refiner's UNet
refiner_encoders.safetensors   and its trainable text projection
student.safetensors            optional: a few-step student of the generator (its UNet; it
                               shares encoders.safetensors with the generator)
README.md                      the model card
```

A network's state has two parts, ``unet.*`` and ``conditioner.*``; each file holds one part
with its prefix removed. This module is the only place that adds or removes the prefixes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tia2v.assets import locate
from tia2v.config import ExperimentConfig, load_config, save_config
from tia2v.errors import InputError
from tia2v.manifest import MANIFEST, manifest_problem, write_manifest
from tia2v.models.network import TIA2VNetwork

GENERATOR_STAGES = ("motion", "content")  # stages a model folder generates with, preferred first
PARTS = ("unet", "conditioner")
STUDENT_FILE = "student.safetensors"


def weights_file(stage: str) -> str:
    return f"{stage}.safetensors"


def has_student(folder: Path) -> bool:
    return (folder / STUDENT_FILE).is_file()


def encoders_file(stage: str) -> str:
    """The refiner's text projection lives beside it, apart from the main model's encoders."""
    return "refiner_encoders.safetensors" if stage == "refiner" else "encoders.safetensors"


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or one clear error naming it."""
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - every unreadable file is the same input error
        raise InputError(f"{path}: missing or corrupt weights ({type(exc).__name__})") from exc


def split_state(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """A network state → {"unet": …, "conditioner": …}, each without its prefix."""
    parts: dict[str, dict[str, torch.Tensor]] = {part: {} for part in PARTS}
    for key, value in state.items():
        part, _, name = key.partition(".")
        if part in parts:
            parts[part][name] = value
    return parts


def join_state(unet: dict[str, torch.Tensor], conditioner: dict[str, torch.Tensor]) -> dict:
    """The inverse of ``split_state``."""
    return {
        **{f"unet.{k}": v for k, v in unet.items()},
        **{f"conditioner.{k}": v for k, v in conditioner.items()},
    }


def read_stage_weights(folder: Path, stage: str) -> dict[str, dict[str, torch.Tensor]]:
    """{"unet": …, "conditioner": …} of a stage in a model folder."""
    return {
        "unet": read_weights(folder / weights_file(stage)),
        "conditioner": read_weights(folder / encoders_file(stage)),
    }


def generator_stage(folder: Path) -> str | None:
    """The stage a model folder generates with (motion before content), or None."""
    return next((s for s in GENERATOR_STAGES if (folder / weights_file(s)).is_file()), None)


def has_refiner(folder: Path) -> bool:
    return (folder / weights_file("refiner")).is_file()


def read_config(folder: Path) -> ExperimentConfig:
    """A model folder's config, after checking that the folder is one."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such model folder (train one, or use checkpoints/demo)")
    if not (folder / "config.yaml").is_file():
        raise InputError(f"{folder}: not a model folder (config.yaml missing)")
    return _encoder_paths_in(load_config(folder / "config.yaml"), folder)


def _encoder_paths_in(cfg: ExperimentConfig, folder: Path) -> ExperimentConfig:
    """Encoder paths that do not exist as written but do inside the model folder (a folder
    shipped with its BEATs file, say) point there, whatever the working directory."""
    import dataclasses

    enc = cfg.encoders
    paths = {
        key: locate(getattr(enc, key), folder) for key in ("text_path", "image_path", "audio_path")
    }
    return dataclasses.replace(cfg, encoders=dataclasses.replace(enc, **paths))


INIT_FUNCTIONS = (
    "kaiming_uniform_",
    "kaiming_normal_",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "constant_",
    "zeros_",
    "ones_",
)


@contextlib.contextmanager
def no_random_init():
    """Modules built inside skip ``torch.nn.init``'s draws (their weights are left as
    allocated): for networks whose every weight is loaded next, strictly. Drawing them costs
    a tenth of a demo video's time on 2 CPU cores."""
    saved = {name: getattr(nn.init, name) for name in INIT_FUNCTIONS}
    for name in INIT_FUNCTIONS:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def verify_folder(folder: Path) -> None:
    """One error when a file of the folder does not match its manifest."""
    problem = manifest_problem(folder)
    if problem:
        raise InputError(f"{folder}: the model folder does not verify: {problem}")


def load_network(
    folder: Path, cfg: ExperimentConfig, stage: str, student: bool = False, verify: bool = True
) -> TIA2VNetwork:
    """A stage's network (or its few-step student) from a model folder, with one clear error
    for any mismatch; ``verify``: check the folder's manifest first."""
    if verify:
        verify_folder(folder)
    with no_random_init():  # every weight is about to come from the folder
        network = TIA2VNetwork(cfg, stage, student=student)
    unet = read_weights(folder / (STUDENT_FILE if student else weights_file(stage)))
    conditioner = read_weights(folder / encoders_file(stage))
    try:
        network.load_saved_state(join_state(unet, conditioner))
    except (KeyError, RuntimeError) as exc:
        raise InputError(
            f"{folder}: {'student' if student else stage} weights do not match config.yaml "
            f"({str(exc).splitlines()[0][:200]})"
        ) from exc
    return network


def save_network(
    folder: Path, network: TIA2VNetwork, state: dict[str, torch.Tensor] | None = None
) -> None:
    """Writes a network's UNet and trainable encoder parts (of ``state``, e.g. EMA weights,
    when given) under its stage's file names; a student's UNet alone (it shares the
    generator's encoders)."""
    parts = split_state(network.saved_state(state))
    if network.student:
        save_file({k: v.contiguous() for k, v in parts["unet"].items()}, str(folder / STUDENT_FILE))
        return
    for part, name in zip(
        PARTS, (weights_file(network.stage), encoders_file(network.stage)), strict=True
    ):
        save_file({k: v.contiguous() for k, v in parts[part].items()}, str(folder / name))


def save_model_folder(
    folder: Path,
    cfg: ExperimentConfig,
    networks: list[tuple[TIA2VNetwork, dict[str, torch.Tensor] | None]],
    card: str | None,
) -> Path:
    """Writes ``folder``: every network (with its state, or its own weights when None),
    config.yaml and the model card (when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # re-written last, over what is there now
    for network, state in networks:
        save_network(folder, network, state)
    save_config(cfg, folder / "config.yaml")
    if card is not None:
        (folder / "README.md").write_text(card)
    # The weights only: config.yaml's sample defaults are the user's to edit.
    write_manifest(folder, [p.name for p in folder.glob("*.safetensors")])
    return folder


def refiner_mismatch(model: ExperimentConfig, refiner: ExperimentConfig) -> str | None:
    """What keeps a refiner trained with config ``refiner`` from serving a model trained with
    ``model`` (frame size and range, prompt encoder, noise schedule), or None."""
    pairs = {
        "data.image_size": (model.data.image_size, refiner.data.image_size),
        "data.value_range": (model.data.value_range, refiner.data.value_range),
        "encoders.text": (model.encoders.text, refiner.encoders.text),
        "encoders.text_path": (model.encoders.text_path, refiner.encoders.text_path),
        "encoders.text_max_length": (
            model.encoders.text_max_length,
            refiner.encoders.text_max_length,
        ),
        "diffusion": (model.diffusion, refiner.diffusion),
    }
    for key, (ours, theirs) in pairs.items():
        if ours != theirs:
            return f"{key} differs (model: {ours}, refiner: {theirs})"
    return None


def attach_refiner(refiner_folder: Path, model_folder: Path) -> Path:
    """Copies the refiner of ``refiner_folder`` (its weights and its config's ``refiner``
    section) into ``model_folder``, so that the model's pipeline refines with it. The folder
    is rebuilt beside itself and swapped in: an interruption leaves the old one whole."""
    import dataclasses
    import shutil
    import time

    model_cfg, refiner_cfg = read_config(model_folder), read_config(refiner_folder)
    if generator_stage(model_folder) is None:
        raise InputError(f"{model_folder}: no motion or content model to attach a refiner to")
    if not has_refiner(refiner_folder):
        raise InputError(f"{refiner_folder}: holds no refiner ({weights_file('refiner')})")
    problem = refiner_mismatch(model_cfg, refiner_cfg)
    if problem:
        raise InputError(f"cannot attach {refiner_folder} to {model_folder}: {problem}")
    work = model_folder.with_name(f".{model_folder.name}.attach")
    old = model_folder.with_name(f".{model_folder.name}.old")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(model_folder, work)
    for name in (weights_file("refiner"), encoders_file("refiner")):
        shutil.copy2(refiner_folder / name, work / name)
    cfg = dataclasses.replace(model_cfg, refiner=refiner_cfg.refiner)
    save_config(cfg, work / "config.yaml")
    card = work / "README.md"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    note = f"\nRefiner attached {when} from `{refiner_folder}`.\n"
    card.write_text((card.read_text() if card.is_file() else "") + note)
    write_manifest(work, [p.name for p in work.glob("*.safetensors")])
    load_network(work, cfg, "refiner")  # it loads, or the old folder stays untouched
    shutil.rmtree(old, ignore_errors=True)
    model_folder.replace(old)
    work.replace(model_folder)
    shutil.rmtree(old)
    return model_folder
