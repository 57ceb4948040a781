"""A finished run → a model folder that ``TIA2VPipeline.from_pretrained`` loads."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tia2v.config import ExperimentConfig
from tia2v.model_folder import save_model_folder


def _last_log(run_dir: Path) -> dict:
    path = run_dir / "log.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else {}


def model_card(cfg: ExperimentConfig, stage: str, step: int, run_dir: Path, extra: str = "") -> str:
    commands = (
        (run_dir / "commands.txt").read_text().strip()
        if (run_dir / "commands.txt").is_file()
        else "n/a"
    )
    last = _last_log(run_dir)
    losses = ", ".join(f"{k} {last[k]:.4f}" for k in ("loss", "mse", "vb") if k in last) or "n/a"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    data, enc, dif = cfg.data, cfg.encoders, cfg.diffusion
    return f"""# tia2v {stage} model

Exported {when} from `{run_dir}` at step {step} (EMA weights).

| | |
|---|---|
| stage | {stage} |
| steps | {step} |
| data | `{data.root}` ({data.num_frames} frames, {data.image_size}×{data.image_size}) |
| encoders | text `{enc.text}`, image `{enc.image}`, audio `{enc.audio}` |
| diffusion | {dif.schedule}, T = {dif.num_timesteps}, {dif.prediction}-prediction |
| final log line | {losses} |

Commands that produced it:

```
{commands}
```
{extra}"""


def export_run(
    run_dir: Path, out_dir: Path, network, ema, cfg: ExperimentConfig, stage: str, step: int
) -> Path:
    """Writes the model folder ``out_dir`` atomically, with the EMA weights and a model card."""
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    card = model_card(cfg, stage, step, run_dir)
    save_model_folder(tmp, cfg, [(network, ema.averaged_state(network))], card)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    return out_dir
