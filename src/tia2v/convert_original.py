"""``tia2v convert-original``: an original TIA2V content checkpoint → a tia2v model folder.

The original content UNet (``diffusion/tacm_unet.py::UNetModel`` with the spatial blocks of
``diffusion/attention_ti.py``) has the guided-diffusion layout; this module maps every one
of its tensors onto tia2v's content UNet by name:

| original                               | tia2v                                       |
|----------------------------------------|---------------------------------------------|
| ``input_blocks.0.0``                   | ``conv_in``                                 |
| ``input_blocks.k.j`` (k ≥ 1)           | ``input_blocks.{k-1}.{res,attn,resample}``  |
| ``middle_block.0 / 1 / 2``             | ``middle_blocks.0.res / 0.attn / 1.res``    |
| ``output_blocks.k.j``                  | ``output_blocks.k.{res,attn,resample}``     |
| ResBlock ``out_layers.0 / 3``          | ``out_norm``, ``out_layers.2``              |
| ResBlock ``skip_connection``           | ``skip``                                    |
| Downsample ``op``                      | ``resample.conv``                           |
| ``transformer_blocks.d.attn1 / attn2`` | ``blocks.d.self_attn / cross_attn``         |
| ``attn*.to_out.0``                     | ``to_out``                                  |
| ``ff.net.0.proj``, ``ff.net.2``        | ``ff.proj_in``, ``ff.proj_out``             |

The converted model runs the original's computation with ``model.cross_attention: separate``
and ``data.value_range: 0.5`` (the original trains on [−0.5, 0.5]). It has no learned null
embeddings (the original has no classifier-free guidance): they are set to zero and the
guidance scales to 1.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import torch

from tia2v.config import ExperimentConfig
from tia2v.errors import InputError
from tia2v.manifest import file_sha256
from tia2v.model_folder import save_model_folder
from tia2v.models.network import TIA2VNetwork

RESBLOCK = {
    "in_layers.0": "in_layers.0",
    "in_layers.2": "in_layers.2",
    "emb_layers.1": "emb_layers.1",
    "out_layers.0": "out_norm",
    "out_layers.3": "out_layers.2",
    "skip_connection": "skip",
}
TRANSFORMER = {
    "attn1.to_out.0": "self_attn.to_out",
    "attn2.to_out.0": "cross_attn.to_out",
    "attn1": "self_attn",
    "attn2": "cross_attn",
    "ff.net.0.proj": "ff.proj_in",
    "ff.net.2": "ff.proj_out",
}
# Keys an original checkpoint may hold beside the UNet, left out on purpose.
DROPPED = ("discriminator.", "disc.", "optimizer.", "opt.", "ema.")


def _module(rest: str, in_output_blocks: bool) -> str:
    """tia2v's name for the submodule ``rest`` of an original block (``rest`` without the
    block's own index)."""
    head = rest.split(".")[0]
    for original, ours in RESBLOCK.items():
        if rest.startswith(original + "."):
            return "res." + ours + rest[len(original) :]
    if head == "op":  # Downsample
        return "resample.conv" + rest[2:]
    if head == "conv" and in_output_blocks:  # Upsample
        return "resample." + rest
    if head in ("norm", "proj_in", "proj_out"):
        return "attn." + rest
    match = re.match(r"transformer_blocks\.(\d+)\.(.+)", rest)
    if match:
        depth, inner = match.groups()
        for original, ours in TRANSFORMER.items():
            if inner.startswith(original + "."):
                inner = ours + inner[len(original) :]
                break
        return f"attn.blocks.{depth}.{inner}"
    raise KeyError(rest)


def map_key(key: str) -> str:
    """An original content-UNet key → tia2v's; KeyError for a key with no place."""
    if key.startswith(("time_embed.", "out.")):
        return key
    if key.startswith("input_blocks.0.0."):
        return "conv_in." + key[len("input_blocks.0.0.") :]
    match = re.match(r"input_blocks\.(\d+)\.\d+\.(.+)", key)
    if match:
        return f"input_blocks.{int(match[1]) - 1}.{_module(match[2], False)}"
    match = re.match(r"middle_block\.(\d)\.(.+)", key)
    if match:
        block, slot = {"0": ("0", "res"), "1": ("0", "attn"), "2": ("1", "res")}[match[1]]
        inner = _module(match[2], False).split(".", 1)[1]
        return f"middle_blocks.{block}.{slot}.{inner}"
    match = re.match(r"output_blocks\.(\d+)\.\d+\.(.+)", key)
    if match:
        return f"output_blocks.{match[1]}.{_module(match[2], True)}"
    raise KeyError(key)


@dataclasses.dataclass
class Conversion:
    """The converted UNet state and the table of what happened to each original key."""

    state: dict[str, torch.Tensor]
    mapped: list[tuple[str, str]]
    dropped: list[str]
    filled: list[str]

    def table(self) -> str:
        rows = [f"  {a}  ->  {b}" for a, b in self.mapped]
        rows += [f"  {key}  dropped (not part of the UNet)" for key in self.dropped]
        rows += [f"  {key}  set to zero (the original has none)" for key in self.filled]
        return "\n".join(rows)


def convert_content_state(
    original: dict[str, torch.Tensor], unet: torch.nn.Module, source: str
) -> Conversion:
    """Maps an original content-UNet state dict onto ``unet``'s, strictly: an original key
    with no place, a shape that differs, or a tia2v tensor left without a value is an error
    naming it."""
    own = unet.state_dict()
    state, mapped, dropped = {}, [], []
    for key, tensor in original.items():
        if key.startswith(DROPPED):
            dropped.append(key)
            continue
        try:
            ours = map_key(key)
        except KeyError:
            raise InputError(f"{source}: unknown key {key!r} (not a content-UNet tensor)") from None
        if ours not in own:
            raise InputError(f"{source}: {key!r} maps to {ours!r}, which this config lacks")
        if own[ours].shape != tensor.shape:
            raise InputError(
                f"{source}: {key!r} has shape {tuple(tensor.shape)}, the config's {ours!r} "
                f"{tuple(own[ours].shape)} (choose the config the checkpoint was trained with)"
            )
        state[ours] = tensor
        mapped.append((key, ours))
    filled = [name for name in own if name.startswith("null_") and name not in state]
    missing = [name for name in own if name not in state and name not in filled]
    if missing:
        raise InputError(
            f"{source}: {len(missing)} tensors of the content UNet have no value, e.g. "
            f"{missing[0]!r} (is this a content checkpoint for this config?)"
        )
    for name in filled:
        state[name] = torch.zeros_like(own[name])
    return Conversion(state, mapped, dropped, filled)


def load_original(path: Path) -> dict[str, torch.Tensor]:
    """A ``.pt`` state dict, read with ``weights_only=True`` (no pickled code)."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same input error
        reason = str(exc).splitlines()[0][:160]
        raise InputError(f"{path}: not a weights-only PyTorch state dict ({reason})") from exc
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise InputError(f"{path}: expected a state dict of tensors")
    return loaded


def converted_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config a converted model runs with: the original's attention form and data range,
    no guidance (scales 1)."""
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, cross_attention="separate"),
        data=dataclasses.replace(cfg.data, value_range=0.5),
        sample=dataclasses.replace(
            cfg.sample, guidance_text=1.0, guidance_image=1.0, guidance_audio=1.0
        ),
    )


def refuse_motion(path: Path) -> None:
    """The original's motion model cannot be reproduced exactly: one clear error, always."""
    state = load_original(path)
    dual = sorted({k.split(".temporal")[0] for k in state if "temporal" in k})
    raise InputError(
        f"{path}: the original motion model has two temporal transformers per attention site "
        f"(DualTemporalTransformer, {len(dual)} sites) mixed 0.7 / 0.3; tia2v's has one, so it "
        "cannot be converted exactly. Convert the content model and train the motion stage."
    )


def convert(content: Path, cfg: ExperimentConfig, out_dir: Path, motion: Path | None = None) -> str:
    """Writes the model folder ``out_dir`` (atomically) from the original content checkpoint
    ``content`` under ``cfg`` (its architecture must be the checkpoint's); returns the key
    table. ``motion`` is refused with one line saying why."""
    if motion is not None:
        refuse_motion(motion)
    if out_dir.exists():
        raise InputError(f"{out_dir}: already exists; choose another -o")
    original = load_original(content)
    cfg = converted_config(cfg)
    network = TIA2VNetwork(cfg, "content")
    trainable = network.conditioner.trainable_state_dict()
    if trainable:
        raise InputError(
            f"encoders: this config gives the encoders trainable parts ({sorted(trainable)[0]}, "
            "…) that the original does not have; use frozen 768-d encoders (CLIP ViT-L/14 text "
            "and image, as paper-urmp) with model.context_dim 768"
        )
    conversion = convert_content_state(original, network.unet, str(content))
    network.unet.load_state_dict(conversion.state)
    digest = file_sha256(content)
    card = f"""# tia2v content model converted from the original TIA2V code

Source: `{content.name}` (sha256 `{digest}`), converted by `tia2v convert-original`:
{len(conversion.mapped)} tensors mapped by name, {len(conversion.dropped)} dropped (not part of
the UNet). It computes what the original computes: separate text and image cross-attention
(`model.cross_attention: separate`) on data in [-0.5, 0.5] (`data.value_range: 0.5`). The
original has no classifier-free guidance, so this model has no learned null embeddings
({", ".join(conversion.filled)} are zero) and its guidance scales are 1: leaving a condition
out does not give a meaningful unconditional prediction.
"""
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model_folder(tmp, cfg, [(network, None)], card)
    tmp.replace(out_dir)
    return conversion.table()
