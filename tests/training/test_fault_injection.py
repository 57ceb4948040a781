"""SIGKILL at random moments of a training run, resumed each time: nothing is lost or changed."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

KILLS = 20


def command(tiny_toy, run_dir, resume):
    base = [sys.executable, "-m", "tia2v", "--quiet", "train", "content"]
    common = ["--set", "train.max_steps=12", "--set", "train.save_every=2"]
    if resume:
        return [*base, "--resume", str(run_dir), *common]
    sets = [
        "--config",
        "tiny",
        "--set",
        f"data.root={tiny_toy}",
        "--set",
        f"train.run_dir={run_dir}",
    ]
    return [*base, *sets, *common]


def log_rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in ("step", "loss", "mse", "vb", "grad_norm", "lr")} for r in rows]


@pytest.mark.slow
def test_twenty_kills_end_as_the_uninterrupted_run(tiny_toy, tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(command(tiny_toy, reference, resume=False), check=True, capture_output=True)

    run_dir, rng, kills = tmp_path / "killed", random.Random(0), 0
    while True:
        has_checkpoint = (run_dir / "checkpoints").is_dir() and any(
            (run_dir / "checkpoints").glob("step_*")
        )
        if run_dir.exists() and not has_checkpoint:
            shutil.rmtree(run_dir)  # killed before its first checkpoint: nothing to keep
        resume = run_dir.exists()
        process = subprocess.Popen(
            command(tiny_toy, run_dir, resume), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        if kills < KILLS:
            try:
                process.wait(timeout=rng.uniform(2.0, 9.0))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                kills += 1
                continue
        else:
            process.wait(timeout=300)
        assert process.returncode == 0, process.stderr.read().decode()[-2000:]
        if (run_dir / "model" / "content.safetensors").is_file() and kills >= KILLS:
            break
        time.sleep(0.1)

    assert kills == KILLS
    assert log_rows(run_dir) == log_rows(reference)
    ours = load_file(run_dir / "model" / "content.safetensors")
    theirs = load_file(reference / "model" / "content.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert (ours[key] - theirs[key]).abs().max() <= 1e-6, key
