"""Training of every stage (content, motion, refiner, and the few-step student: distill) on
Hugging Face Accelerate.

One CPU process needs no launcher; ``torchrun`` / ``accelerate launch --multi_gpu`` give DDP.
Every step's randomness (timesteps, noise, dropped conditions, dropout, data crops, order)
derives from (seed, step, rank), so a resumed run continues exactly as if never stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from tia2v.conditions import STAGE_MODALITIES
from tia2v.config import ExperimentConfig, save_config
from tia2v.data.cache import find_cache
from tia2v.data.vat import VATDataset, collate
from tia2v.diffusion.losses import sample_timesteps, training_losses
from tia2v.diffusion.schedule import Diffusion
from tia2v.errors import InputError, TrainingError
from tia2v.io import load_audio
from tia2v.model_folder import (
    attach_refiner,
    generator_stage,
    read_config,
    read_stage_weights,
    refiner_mismatch,
    split_state,
)
from tia2v.models.network import TIA2VNetwork, stage_model
from tia2v.models.unet import load_content_weights
from tia2v.pipeline.pipeline import TIA2VPipeline
from tia2v.training.checkpoint import (
    averaged_weights,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from tia2v.training.distill import (
    ConsistencyDistillation,
    copy_into,
    export_student,
    teacher_and_student,
)
from tia2v.training.ema import EMA
from tia2v.training.export import export_run
from tia2v.training.signals import Stopped, StopRequest

logger = logging.getLogger(__name__)


class StepBatches(Sampler):
    """Batches of (epoch, index) for steps ``start``, ``start + 1``, …: each rank reads its
    share of a seeded permutation per epoch, so the order depends on the step only."""

    def __init__(self, size: int, batch: int, seed: int, rank: int, world: int, start: int):
        self.per_rank = max(1, size // world)
        self.size, self.batch, self.seed, self.rank, self.world = size, batch, seed, rank, world
        self.position = start * batch

    def __iter__(self):
        while True:
            items = []
            for k in range(self.position, self.position + self.batch):
                epoch, i = divmod(k, self.per_rank)
                order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
                items.append((epoch, int(order[(i * self.world + self.rank) % self.size])))
            self.position += self.batch
            yield items


def forget_rows_after(log_path: Path, step: int) -> None:
    """Drops the log rows of steps after ``step`` (written by a run killed after its last
    checkpoint, the last one perhaps cut off mid-line), so that a resumed run's log reads as
    one uninterrupted run. Atomic."""
    if not log_path.is_file():
        return
    lines = log_path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n") and json.loads(line)["step"] <= step]
    if len(kept) < len(lines):
        partial = log_path.with_suffix(".jsonl.tmp")
        partial.write_text("".join(kept))
        partial.replace(log_path)


def _init_from(network: TIA2VNetwork, source: str) -> None:
    """Motion stage: weights (EMA) and encoders from a content run, or from an exported content
    or motion model folder (a motion model, e.g. ``checkpoints/demo``, is fine-tuned whole)."""
    folder = Path(source)
    stage = generator_stage(folder)
    if stage is not None:
        parts = read_stage_weights(folder, stage)
    else:
        parts = split_state(averaged_weights(find_checkpoint(folder)))
    try:
        report = load_content_weights(network.unet, parts["unet"])
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"train.init_from {source}: its weights do not fit this config's model "
            f"({str(exc).strip(chr(39))}); give a run or model folder of the same config"
        ) from exc
    unexpected = network.conditioner.load_state_dict(parts["conditioner"], strict=False)
    unexpected = unexpected.unexpected_keys
    if unexpected:
        raise InputError(
            f"{source}: encoder weights that this config has no place for: {unexpected[:3]}"
        )
    logger.info("initialised from %s: %s", source, report)


def _check_attachable(cfg: ExperimentConfig, stage: str, folder: Path) -> None:
    """``train.attach_to``, checked before training rather than after it."""
    if stage != "refiner":
        raise InputError("train.attach_to: only a refiner is attached to a model folder")
    if generator_stage(folder) is None:
        raise InputError(f"train.attach_to {folder}: not a model folder with a motion model")
    problem = refiner_mismatch(read_config(folder), cfg)
    if problem:
        raise InputError(f"train.attach_to {folder}: {problem}")


def sample_video(
    network: TIA2VNetwork, ema: EMA, cfg: ExperimentConfig, dataset: VATDataset, path: Path
) -> None:
    """A progress video from the EMA weights, with the first training clip's conditions."""
    if network.stage == "refiner" or network.student:
        return  # the refiner only re-renders; a student is shown by the benchmark
    trained = {k: v.detach().clone() for k, v in network.state_dict().items()}
    network.load_state_dict(ema.averaged_state(network))
    try:
        item, clip = dataset[0], dataset.clips[0]
        hears = "audio" in STAGE_MODALITIES[network.stage]
        audio = load_audio(clip.audio, cfg.data.audio_rate) if hears else None
        pipe = TIA2VPipeline(cfg, network, f"training step {path.stem}")
        out = pipe(
            text=item["caption"],
            image=item["first_frame"],
            audio=audio,
            audio_rate=cfg.data.audio_rate,
            fps=item["fps"],
        )
        out.save(path)
    finally:
        network.load_state_dict(trained)
        network.train()


def train(
    cfg: ExperimentConfig, stage: str, resume: str | None = None, progress: bool = True
) -> Path:
    """Trains ``stage`` ("content", "motion", "refiner" or "distill") and exports the model;
    returns the run folder."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from tqdm import tqdm

    tc = cfg.train
    use_cuda = torch.cuda.is_available()
    if use_cuda and tc.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    accelerator = Accelerator(
        cpu=not use_cuda,
        mixed_precision=tc.mixed_precision
        if use_cuda
        else "no",  # bf16 on these CPUs is 20-55x slower
        # a dropped condition is swapped for its null with torch.where, so every trainable
        # parameter takes part in every step and DDP needs no unused-parameter search
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    run_dir = Path(tc.run_dir)

    # -- Model, optimiser, schedule ----------------------------------------------------------
    torch.manual_seed(tc.seed)  # the same initial weights on every rank and every run
    distillation = None
    if stage == "distill":
        teacher, network = teacher_and_student(cfg)
        target = copy.deepcopy(network).eval().requires_grad_(False)  # the EMA weights
    else:
        network = TIA2VNetwork(cfg, stage)
    checkpoint = load_checkpoint(find_checkpoint(resume)) if resume else None
    if checkpoint is None and (
        (run_dir / "checkpoints").is_dir() or (run_dir / "log.jsonl").is_file()
    ):
        raise InputError(
            f"train.run_dir {run_dir}: already holds a run; continue it with --resume {run_dir} "
            "or choose another train.run_dir"
        )
    if checkpoint is None and stage == "motion":
        if not tc.init_from:
            raise InputError(
                "train.init_from: the motion stage starts from a content run or model folder"
            )
        _init_from(network, tc.init_from)
    if tc.attach_to:
        _check_attachable(cfg, stage, Path(tc.attach_to))
    if stage == "motion" and tc.freeze_spatial:
        network.freeze_spatial()
    parameters = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, tc.warmup_steps))
    )
    ema = EMA(network, tc.ema_decay, tc.ema_warmup)
    step = 0
    if checkpoint is not None:
        network.load_saved_state(checkpoint["model"])
        ema.load_state_dict(checkpoint["ema"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        step = checkpoint["state"]["step"]
    model, optimizer = accelerator.prepare(network, optimizer)
    if tc.compile and use_cuda:
        network.unet.compile()  # in place: the DDP wrapper and the EMA see the same parameters
    ema.to(accelerator.device)
    diffusion = Diffusion.from_config(cfg.diffusion)
    if stage == "distill":
        teacher.to(accelerator.device)
        target.to(accelerator.device)
        copy_into(target, ema.shadow)
        distillation = ConsistencyDistillation(cfg, teacher, target, diffusion)
    highest_t = max(1, round(tc.max_noise * diffusion.num_timesteps))  # t < highest_t

    # -- Data ----------------------------------------------------------------------------------
    data_cfg = dataclasses.replace(cfg.data, image_size=stage_model(cfg, stage)[1])
    data_view = dataclasses.replace(cfg, data=data_cfg)  # the refiner reads frames at its size
    dataset = VATDataset(data_cfg, "train", cache=find_cache(cfg.data.root, data_view))
    batches = StepBatches(len(dataset), tc.batch_size * tc.grad_accum, tc.seed, rank, world, step)
    loader = iter(
        DataLoader(
            dataset,
            batch_sampler=batches,
            collate_fn=collate,
            num_workers=cfg.data.num_workers,
            pin_memory=use_cuda,
        )
    )
    drop = {"text": tc.drop_text, "image": tc.drop_image, "audio": tc.drop_audio}
    modalities = STAGE_MODALITIES[network.stage]

    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        with (run_dir / "commands.txt").open("a") as commands:
            commands.write(shlex.join(["tia2v", *sys.argv[1:]]) + "\n")
        if checkpoint is not None:
            forget_rows_after(run_dir / "log.jsonl", step)
    log = (run_dir / "log.jsonl").open("a") if accelerator.is_main_process else None

    def save() -> Path | None:
        nonlocal saved_step
        check_finite()  # never a checkpoint of weights that met a non-finite loss
        saved_step = step
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            return None
        return save_checkpoint(
            run_dir,
            step,
            cfg,
            network.saved_state(),
            ema.state_dict(),
            optimizer,
            scheduler,
            {"stage": stage, "world": world},
        )

    # -- Loop ----------------------------------------------------------------------------------
    bar = tqdm(
        total=tc.max_steps,
        initial=step,
        desc=f"train {stage}",
        unit="step",
        disable=not (progress and accelerator.is_main_process),
    )
    last_time, last_saved, saved_step = time.perf_counter(), None, -1
    finite = torch.ones((), dtype=torch.bool, device=accelerator.device)
    stop = StopRequest()

    def check_finite() -> None:
        """Stops on a non-finite loss since the last check, before the weights are saved."""
        if not finite:
            raise TrainingError(
                f"non-finite loss by step {step}; stopped without saving. Last good checkpoint: "
                f"{last_saved or 'none'}. Lower train.lr or raise train.warmup_steps."
            )

    try:
        stop.install()
        while step < tc.max_steps:
            batch = next(loader)
            generator = torch.Generator().manual_seed(
                int(np.random.SeedSequence([tc.seed, step, rank]).generate_state(1)[0])
            )
            torch.manual_seed(int(generator.initial_seed()) + 1)  # dropout masks
            # summed on the device; read (one host sync) only when a log row is written
            terms = {k: torch.zeros((), device=accelerator.device) for k in ("loss", "mse", "vb")}
            for micro in range(tc.grad_accum):
                part = {
                    k: v[micro * tc.batch_size : (micro + 1) * tc.batch_size]
                    for k, v in batch.items()
                }
                part = {
                    k: v.to(accelerator.device, non_blocking=True)
                    if isinstance(v, torch.Tensor)
                    else v
                    for k, v in part.items()
                }
                x0 = part["video"]
                size = x0.shape[0]
                keep = {
                    m: (torch.rand(size, generator=generator) >= drop[m]).to(x0.device)
                    for m in modalities
                }
                t = sample_timesteps(size, highest_t, tc.timestep_shift, generator).to(x0.device)
                noise = torch.randn(x0.shape, generator=generator).to(x0.device)
                known = None
                if "image" in keep and cfg.model.first_frame == "clean":  # image includes frame 0
                    known = torch.zeros(size, x0.shape[2], dtype=torch.bool, device=x0.device)
                    known[:, 0] = keep["image"]
                with accelerator.accumulate(model):
                    if distillation is not None:
                        present = [m for m in modalities if bool(keep[m][0])]
                        losses = distillation.losses(model, part, present, generator)
                        losses["vb"] = torch.zeros_like(losses["loss"])
                    else:
                        losses = training_losses(
                            diffusion,
                            cfg.diffusion,
                            lambda x, s: model(x, diffusion.model_timesteps(s), part, keep),  # noqa: B023
                            x0,
                            t,
                            noise,
                            known,
                        )
                    loss = losses["loss"].mean() / tc.grad_accum
                    accelerator.backward(loss)
                for key in terms:
                    terms[key] += losses[key].detach().mean() / tc.grad_accum
            finite &= torch.isfinite(terms["loss"])
            grad_norm = accelerator.clip_grad_norm_(parameters, tc.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            ema.update(network, step)
            if distillation is not None:
                copy_into(target, ema.shadow)
            bar.update(1)
            if step % tc.log_every == 0 or step == tc.max_steps:
                check_finite()
            if log is not None and (step % tc.log_every == 0 or step == tc.max_steps):
                terms = {k: v.item() for k, v in terms.items()}
                now = time.perf_counter()
                rate = (
                    tc.log_every / (now - last_time) if step % tc.log_every == 0 else float("nan")
                )
                last_time = now
                record = {
                    "step": step,
                    **{k: round(v, 6) for k, v in terms.items()},
                    "grad_norm": round(float(grad_norm), 6),
                    "lr": scheduler.get_last_lr()[0],
                    "steps_per_s": round(rate, 4),
                    "samples_per_s": round(rate * tc.batch_size * tc.grad_accum * world, 4),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{terms['loss']:.4f}")
            if step % tc.save_every == 0 or step == tc.max_steps:
                last_saved = save()
            if tc.sample_every and step % tc.sample_every == 0 and accelerator.is_main_process:
                sample_video(
                    network, ema, cfg, dataset, run_dir / "samples" / f"step_{step:08d}.mp4"
                )
            if stop.requested(accelerator):
                if saved_step != step:
                    save()
                logger.warning(
                    "%s: stopped after step %d with a checkpoint; continue with --resume %s",
                    stop.signal_name or "stop requested on another rank",
                    step,
                    run_dir,
                )
                raise Stopped
    except KeyboardInterrupt as interrupt:
        if not isinstance(interrupt, Stopped):
            logger.warning("interrupted within step %d: the last checkpoint is kept", step + 1)
        raise
    finally:
        stop.restore()
        bar.close()
        if log is not None:
            log.close()
    # Every rank must end with the same weights (DDP keeps them in sync); record the proof.
    checksum = torch.stack([p.detach().double().sum() for p in parameters]).sum().reshape(1)
    checksums = accelerator.gather(checksum.to(accelerator.device)).cpu().tolist()
    if accelerator.is_main_process:
        sync = {
            "world": world,
            "global_batch": tc.batch_size * tc.grad_accum * world,
            "checksums": checksums,
        }
        (run_dir / "sync.json").write_text(json.dumps(sync))

        # The model folder generates at the rate it was trained at (generate's default fps).
        fps = dataset.example_fps()
        exported = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, fps=fps))
        if stage == "distill":
            export_student(run_dir, network, ema, cfg, step)
        else:
            export_run(run_dir, run_dir / "model", network, ema, exported, stage, step)
        if tc.attach_to:
            attach_refiner(run_dir / "model", Path(tc.attach_to))
            logger.info("refiner attached to %s (generate --refine uses it)", tc.attach_to)
    accelerator.wait_for_everyone()
    return run_dir
