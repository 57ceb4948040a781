"""Guided consistency distillation (LCM, Luo et al. 2023) with per-modality guidance.

One training example: a clean clip x_0, a timestep t and the skip k = T / teacher_steps.

1. Draw which modalities are present (condition dropout, as in training) and a scale for each
   from its range; the student sees them as ``w`` (0 for an absent modality).
2. x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε, the first frame held as sampling holds it.
3. The teacher's guided prediction (``guided_model_fn``: per-modality guidance exactly as the
   guided samplers use it) takes one DDIM step from x_t to x_s, s = t − k (to x̂_0 when s < 0),
   and the first frame is put back at level s.
4. The student's consistency output f_θ(x_t, t, w) is pulled towards the target network's
   f_θ⁻(x_s, s, w) (the EMA of the student; x_s itself when s < 0) with iCT's pseudo-Huber
   distance √(‖Δ‖² + c²) − c, c = 0.00054·√d, over the frames that are not given.

A modality absent from a request is absent in the student's input too, and a scale of 0 means
absent at sampling time: the teacher's guidance never lets it reach the prediction either.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tia2v.conditions import MODALITIES
from tia2v.config import DistillConfig, ExperimentConfig
from tia2v.diffusion.guidance import guidance_vector, guided_model_fn, without_absent
from tia2v.diffusion.losses import mean_flat
from tia2v.diffusion.schedule import Diffusion
from tia2v.errors import InputError
from tia2v.model_folder import (
    STUDENT_FILE,
    generator_stage,
    load_network,
    read_config,
    save_model_folder,
)
from tia2v.models.network import TIA2VNetwork
from tia2v.models.unet import load_content_weights
from tia2v.pipeline.first_frame_lock import first_frame_lock, locks_first_frame
from tia2v.sampling.lcm import consistency_output

HUBER_C = 0.00054  # iCT's constant, times √(dimensions per video)


def draw_scales(
    cfg: DistillConfig, present: list[str], generator: torch.Generator
) -> dict[str, float]:
    """A guidance scale per modality: uniform in its range when present, else 0 (absent)."""
    scales = {}
    for name in MODALITIES:
        low, high = getattr(cfg, f"guidance_{name}")
        draw = float(torch.rand((), generator=generator))
        scales[name] = low + (high - low) * draw if name in present else 0.0
    return scales


@dataclass
class ConsistencyDistillation:
    """The objective; ``teacher`` is frozen, ``target`` holds the student's EMA weights."""

    cfg: ExperimentConfig
    teacher: TIA2VNetwork
    target: TIA2VNetwork
    diffusion: Diffusion

    @property
    def skip(self) -> int:
        return max(1, self.diffusion.num_timesteps // self.cfg.distill.teacher_steps)

    def losses(
        self,
        student: torch.nn.Module,
        batch: dict,
        present: list[str],
        generator: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """Per-video "loss" (pseudo-Huber) and "mse" of one micro-batch; ``student`` is the
        (possibly DDP-wrapped) student network."""
        cfg, diffusion = self.cfg, self.diffusion
        x0 = batch["video"]  # (B, C, F, H, W)
        size, num_frames, device = x0.shape[0], x0.shape[2], x0.device
        with torch.no_grad():
            full = self.teacher.conditioner.conditions(batch)
        scales = draw_scales(cfg.distill, present, generator)
        cond = without_absent(full, scales)
        w = guidance_vector(cond, scales, size, device)

        # One timestep for the micro-batch: the teacher guides it, or not, as a whole.
        t = int(torch.randint(0, diffusion.num_timesteps, (), generator=generator))
        s = t - self.skip
        t_batch = torch.full((size,), t, dtype=torch.long, device=device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        x_t = diffusion.q_sample(x0, t_batch, noise)
        lock, weight = None, None
        if cond.image is not None and locks_first_frame(cfg):
            seeds = torch.randint(0, 2**31 - 1, (size,), generator=generator).tolist()
            lock = first_frame_lock(cond.first_frame, num_frames, cfg, diffusion, seeds)
            x_t = lock.known.replace(x_t, diffusion, t, generator)
            weight = (~lock.known.frames).to(x0.dtype).view(1, 1, -1, 1, 1)

        with torch.no_grad():
            guided = guided_model_fn(
                self.teacher.unet,
                cond,
                scales,
                diffusion.model_timesteps,
                cfg.diffusion.learn_sigma,
                None if lock is None else lock.without_image,
                round(cfg.sample.guidance_min_noise * diffusion.num_timesteps),
            )
            prediction, _ = diffusion.split_output(guided(x_t, t_batch))
            eps, x0_teacher = diffusion.eps_and_x0(prediction, x_t, t_batch, clip=False)
            if s < 0:
                target = x0_teacher
            else:
                s_batch = torch.full_like(t_batch, s)
                alpha_s, sigma_s = diffusion.alpha_sigma(s_batch, x0.dim())
                x_s = alpha_s * x0_teacher + sigma_s * eps
                if lock is not None:
                    x_s = lock.known.replace(x_s, diffusion, s, generator)
                output = self.target(x_s, diffusion.model_timesteps(s_batch), cond, None, w)
                target = consistency_output(output, diffusion, x_s, s_batch)

        output = student(x_t, diffusion.model_timesteps(t_batch), cond, None, w)
        estimate = consistency_output(output, diffusion, x_t, t_batch)
        squared = (estimate - target) ** 2
        dims = squared[0].numel() if weight is None else squared[0].numel() * float(weight.mean())
        c = HUBER_C * math.sqrt(dims)
        distance = (mean_flat(squared, weight) * dims + c**2).sqrt() - c
        return {"loss": distance, "mse": mean_flat(squared, weight)}


def copy_into(target: TIA2VNetwork, shadow: dict[str, torch.Tensor]) -> None:
    """Loads the EMA's shadow weights into the target network (in place, no allocation)."""
    parameters = dict(target.named_parameters())
    with torch.no_grad():
        torch._foreach_copy_([parameters[name] for name in shadow], list(shadow.values()))


def teacher_and_student(cfg: ExperimentConfig) -> tuple[TIA2VNetwork, TIA2VNetwork]:
    """The frozen teacher of ``distill.teacher`` and a student that starts as it (its weights,
    the guidance input zero-initialised, the condition encoders frozen and shared)."""
    source = cfg.distill.teacher
    if not source:
        raise InputError("distill.teacher: give the model folder to distil (e.g. checkpoints/demo)")
    folder = Path(source)
    teacher_cfg = read_config(folder)
    stage = generator_stage(folder)
    if stage is None:
        raise InputError(f"distill.teacher {folder}: no motion or content model to distil")
    for key in ("model", "diffusion", "encoders"):
        if getattr(teacher_cfg, key) != getattr(cfg, key):
            raise InputError(
                f"distill.teacher {folder}: its {key} config differs from this run's; "
                f"start from its config (--config {folder / 'config.yaml'})"
            )
    teacher = load_network(folder, teacher_cfg, stage).eval().requires_grad_(False)
    student = TIA2VNetwork(cfg, stage, student=True)
    load_content_weights(student.unet, teacher.unet.state_dict())
    student.conditioner.load_state_dict(teacher.conditioner.state_dict())
    student.conditioner.requires_grad_(False)
    return teacher, student


def export_student(run_dir: Path, network: TIA2VNetwork, ema, cfg: ExperimentConfig, step: int):
    """``run_dir/model``: the teacher's folder with the student (EMA weights) beside its
    generator, this run's config and a model card section on the distillation. Atomic."""
    out_dir = run_dir / "model"
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(cfg.distill.teacher, tmp)  # save_model_folder rewrites its manifest
    card = tmp / "README.md"
    text = card.read_text() if card.is_file() else "# tia2v model\n"
    card.write_text(text.rstrip("\n") + "\n\n" + student_card(run_dir, cfg, step))
    save_model_folder(tmp, cfg, [(network, ema.averaged_state(network))], None)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    return out_dir


def student_card(run_dir: Path, cfg: ExperimentConfig, step: int) -> str:
    """The model card's section on the student."""
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    seconds, last = 0.0, 0
    for row in rows:
        if row.get("steps_per_s") and math.isfinite(row["steps_per_s"]):
            seconds += (row["step"] - last) / row["steps_per_s"]
        last = row["step"]
    d, tc = cfg.distill, cfg.train
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    ranges = ", ".join(f"{m} {list(getattr(d, f'guidance_{m}'))}" for m in MODALITIES)
    return f"""## Few-step student (`{STUDENT_FILE}`)

Distilled {when} from `{d.teacher}` by guided consistency distillation (`tia2v train distill`,
run `{run_dir}`): {step} steps, batch {tc.batch_size}, lr {tc.lr}, EMA target {tc.ema_decay};
the teacher's DDIM step spans T/{d.teacher_steps} schedule steps; guidance scales drawn from
{ranges}; about {seconds / 3600:.2f} h of training. Sample with `--sampler lcm` ({d.steps}
steps by default); the `--guidance-*` flags set its scale inputs.
"""
