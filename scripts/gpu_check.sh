#!/usr/bin/env bash
# The GPU checks, in one go: the toy benchmark and the long/refine benchmark of the demo
# model on the GPU, CPU/GPU parity of its videos, and a tiny real training job on the GPU
# (content in bf16, then motion, then generate). Each step runs even if an earlier one
# failed; its log goes to OUT_DIR/<step>.log and its exit status and time are printed.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        # PYTHON=python3 by default
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-out/gpu-check}
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
mkdir -p "$OUT_DIR"

step() {
  local name=$1 start=$SECONDS
  shift
  "$@" >"$OUT_DIR/$name.log" 2>&1
  echo "== $name: exit $? in $((SECONDS - start)) s"
  grep -v "Loading weights" "$OUT_DIR/$name.log" | tail -4
}

tiny_job() {
  local set="--set data.root=$TMP/toy --set train.max_steps=20 --set train.sample_every=0"
  $PY -m tia2v --quiet synth "$TMP/toy" --train 8 --test 2 --size 16 --frames 4 &&
    $PY -m tia2v --quiet train content --config tiny $set --set train.run_dir="$TMP/content" \
      --set train.mixed_precision=bf16 &&
    $PY -m tia2v --quiet train motion --config tiny $set --set train.run_dir="$TMP/motion" \
      --set train.init_from="$TMP/content" &&
    $PY -m tia2v --quiet generate --model "$TMP/motion/model" --device cuda \
      --text "a circle in blue" --image examples/first.png --audio examples/beats.wav \
      -o "$OUT_DIR/tiny_cuda.mp4" &&
    tail -1 "$TMP/motion/log.jsonl"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, transformers, accelerate; print(torch.__version__, transformers.__version__, accelerate.__version__, torch.cuda.is_available())"
step toy_eval $PY benchmarks/toy_eval.py --device cuda --out "$OUT_DIR/toy_eval.md"
step long_refine $PY benchmarks/long_refine.py --device cuda --out "$OUT_DIR/long_refine.md"
step parity $PY benchmarks/device_parity.py --device cuda --runs 1
step tiny_train tiny_job
rm -rf "$TMP"
