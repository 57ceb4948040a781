"""Training checkpoints: written atomically, complete enough to resume exactly.

``RUN_DIR/checkpoints/step_00000100/`` holds ``model.safetensors`` and ``ema.safetensors``
(weights), ``optimizer.pt`` and ``scheduler.pt`` (plain state dicts, loaded with
``weights_only=True``), ``rng.safetensors`` (torch RNG state), ``state.json`` (step, numpy and
Python RNG states) and ``config.yaml``. A checkpoint is built in a temporary folder and
renamed into place, then ``RUN_DIR/checkpoints/latest`` is rewritten (temp + rename): a crash
at any moment leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from tia2v.config import ExperimentConfig, load_config, save_config
from tia2v.errors import InputError
from tia2v.manifest import MANIFEST, file_sha256, manifest_problem, write_manifest
from tia2v.model_folder import read_weights

logger = logging.getLogger(__name__)

KEEP = 2  # checkpoints kept per run


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def save_checkpoint(
    run_dir: Path,
    step: int,
    cfg: ExperimentConfig,
    model_state: dict[str, torch.Tensor],
    ema_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    extra: dict | None = None,
) -> Path:
    """Writes checkpoint ``step`` and points ``latest`` at it; returns its folder."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in model_state.items()},
        str(tmp / "model.safetensors"),
    )
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in ema_state.items()},
        str(tmp / "ema.safetensors"),
    )
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    _, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "step": step,
        "numpy_rng": [keys.tolist(), int(position), int(has_gauss), float(gauss)],
        "python_rng": list(random.getstate()[1]),
        **(extra or {}),
    }
    (tmp / "state.json").write_text(json.dumps(state))
    save_config(cfg, tmp / "config.yaml")
    names = [p.name for p in tmp.iterdir()]
    config_sha256 = file_sha256(tmp / "config.yaml")
    write_manifest(tmp, names, step=step, config_sha256=config_sha256)  # last: marks it whole
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    _atomic_write_text(root / "latest", final.name)
    for old in sorted(root.glob("step_*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint to resume from: the newest ``step_*`` folder of a run (or checkpoints)
    folder whose manifest verifies, each one skipped said why; or ``path`` itself when it is
    a checkpoint folder. ``latest`` is a convenience for people, not read here."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such run or checkpoint folder")
    if (path / "model.safetensors").is_file():
        problem = manifest_problem(path)
        if problem:
            raise InputError(f"{path}: not a usable checkpoint: {problem}")
        return path
    for root in (path / "checkpoints", path):
        folders = sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True)
        for folder in folders:
            problem = manifest_problem(folder)
            if problem:
                logger.warning("skipping checkpoint %s: %s", folder.name, problem)
                continue
            if not (folder / MANIFEST).is_file():
                logger.warning("%s has no manifest (an older tia2v): not verified", folder)
            return folder
        if folders:
            raise InputError(f"{root}: no checkpoint verifies (each one skipped above)")
    raise InputError(
        f"{path}: no checkpoint found (expected checkpoints/latest or model.safetensors)"
    )


def averaged_weights(folder: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's weights with the EMA averages in place of the trained ones (buffers and
    frozen parameters, which the EMA does not hold, come from the model): what a run exports."""
    weights = read_weights(folder / "model.safetensors")
    weights.update(read_weights(folder / "ema.safetensors"))
    return weights


def load_checkpoint(folder: Path) -> dict:
    """Everything ``save_checkpoint`` wrote, with RNG states restored into this process."""
    try:
        state = json.loads((folder / "state.json").read_text())
        optimizer = torch.load(folder / "optimizer.pt", weights_only=True)
        scheduler = torch.load(folder / "scheduler.pt", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable part is the same input error
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{folder}: incomplete or corrupt checkpoint, or one holding more than plain "
            f"tensors ({reason})"
        ) from exc
    torch.set_rng_state(read_weights(folder / "rng.safetensors")["torch"])
    keys, position, has_gauss, gauss = state["numpy_rng"]
    np.random.set_state(("MT19937", np.asarray(keys, np.uint32), position, has_gauss, gauss))
    random.setstate((3, tuple(state["python_rng"]), None))
    return {
        "config": load_config(folder / "config.yaml"),
        "model": read_weights(folder / "model.safetensors"),
        "ema": read_weights(folder / "ema.safetensors"),
        "optimizer": optimizer,
        "scheduler": scheduler,
        "state": state,
    }
