#!/usr/bin/env bash
# Reproduces checkpoints/demo: synthesise the toy set, cache its text embeddings, train the
# content stage, then the motion stage, then export. Safe to rerun: every stage resumes from
# its last checkpoint and a finished stage is skipped.
#
#   bash scripts/train_demo.sh     # CONTENT_STEPS=3000 MOTION_STEPS=20000 REFINER_STEPS=4000
set -euo pipefail
cd "$(dirname "$0")/.."
TIA2V=${TIA2V:-.venv/bin/tia2v}
DATA=${DATA:-data/toy-demo}
RUNS=${RUNS:-runs}
CONTENT_STEPS=${CONTENT_STEPS:-3000}
MOTION_STEPS=${MOTION_STEPS:-20000}
REFINER_STEPS=${REFINER_STEPS:-4000}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

if [ ! -f "$DATA/train/meta/train_01999.json" ]; then
  "$TIA2V" --quiet synth "$DATA" --train 2000 --test 64 --seed 0 --size 32 --frames 16 --fps 8
fi
"$TIA2V" --quiet prepare "$DATA" --config demo --set data.root="$DATA"

# stage RUN_DIR STEPS ARGS...: train, or resume, until STEPS.
stage() {
  local name=$1 run=$2 steps=$3
  shift 3
  if [ -f "$run/checkpoints/latest" ]; then
    "$TIA2V" --quiet train "$name" --resume "$run" --set train.max_steps="$steps"
  else
    "$TIA2V" --quiet train "$name" --config demo --set data.root="$DATA" --set train.run_dir="$run" \
      --set train.max_steps="$steps" "$@"
  fi
}
stage content "$RUNS/demo-content" "$CONTENT_STEPS"
stage motion "$RUNS/demo-motion" "$MOTION_STEPS" --set train.init_from="$RUNS/demo-content"
stage refiner "$RUNS/demo-refiner" "$REFINER_STEPS" --set train.batch_size=1
mkdir -p checkpoints
rm -rf checkpoints/demo
cp -r "$RUNS/demo-motion/model" checkpoints/demo
cp "$RUNS/demo-refiner/model/refiner.safetensors" "$RUNS/demo-refiner/model/refiner_encoders.safetensors" checkpoints/demo/
echo "exported checkpoints/demo"
