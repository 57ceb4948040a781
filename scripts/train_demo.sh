#!/usr/bin/env bash
# Reproduces checkpoints/demo: synthesise the toy set (at 32 px for the content and motion
# stages, the same clips at 64 px for the 32 -> 64 refiner), cache its text embeddings, train
# the content stage, then the motion stage, then fine-tune that with the pooled-text path and
# training timesteps drawn toward high noise (train.timestep_shift=4), then again with the
# per-frame prompt path (model.frame_text), timesteps drawn further up (train.timestep_shift=8)
# and the image dropped from half the clips (train.drop_image=0.5), then a last fine-tune with
# timesteps drawn uniformly again (train.timestep_shift=1: the low and middle noise levels
# that draw the edges had been starved), then the refiner (on
# every noise level, then on the lower half only: train.max_noise=0.5, as it is used at
# strength <= 0.5), then export, then distil the few-step student from the exported folder
# (guided consistency distillation) and add it. Safe to rerun: every stage resumes from its last checkpoint
# and a finished stage is skipped.
#
#   bash scripts/train_demo.sh     # step counts below; each can be set in the environment
set -euo pipefail
cd "$(dirname "$0")/.."
TIA2V=${TIA2V:-.venv/bin/tia2v}
DATA=${DATA:-data/toy-demo}
DATA64=${DATA64:-data/toy-demo-64}
RUNS=${RUNS:-runs}
CONTENT_STEPS=${CONTENT_STEPS:-3000}
MOTION_STEPS=${MOTION_STEPS:-6000}
FINETUNE_STEPS=${FINETUNE_STEPS:-7019}
FRAME_TEXT_STEPS=${FRAME_TEXT_STEPS:-11250}
UNIFORM_STEPS=${UNIFORM_STEPS:-3500}
REFINER_FULL_STEPS=${REFINER_FULL_STEPS:-1349}
REFINER_STEPS=${REFINER_STEPS:-5800}
DISTILL_STEPS=${DISTILL_STEPS:-300}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# synth DIR SIZE: the demo's clips (seed 0) rendered at SIZE pixels.
synth() {
  if [ ! -f "$1/train/meta/train_01999.json" ]; then
    "$TIA2V" --quiet synth "$1" --train 2000 --test 64 --seed 0 --size "$2" --frames 16 --fps 8
  fi
}
synth "$DATA" 32
synth "$DATA64" 64
"$TIA2V" --quiet prepare "$DATA" --config demo --set data.root="$DATA"

# stage NAME RUN_DIR DATA STEPS ARGS...: train, or resume, until STEPS (ARGS apply to both).
stage() {
  local name=$1 run=$2 data=$3 steps=$4
  shift 4
  if [ -f "$run/checkpoints/latest" ]; then
    "$TIA2V" --quiet train "$name" --resume "$run" --set train.max_steps="$steps" "$@"
  else
    "$TIA2V" --quiet train "$name" --config demo --set data.root="$data" --set train.run_dir="$run" \
      --set train.max_steps="$steps" "$@"
  fi
}
stage content "$RUNS/demo-content" "$DATA" "$CONTENT_STEPS"
stage motion "$RUNS/demo-motion" "$DATA" "$MOTION_STEPS" --set train.init_from="$RUNS/demo-content"
stage motion "$RUNS/demo-motion-ts" "$DATA" "$FINETUNE_STEPS" --set train.init_from="$RUNS/demo-motion/model" \
  --set model.pooled_text=true --set train.timestep_shift=4
stage motion "$RUNS/demo-motion-ft2" "$DATA" "$FRAME_TEXT_STEPS" --set train.init_from="$RUNS/demo-motion-ts/model" \
  --set model.pooled_text=true --set model.frame_text=true --set train.timestep_shift=8 --set train.drop_image=0.5
stage motion "$RUNS/demo-motion-mid" "$DATA" "$UNIFORM_STEPS" --set train.init_from="$RUNS/demo-motion-ft2/model" \
  --set model.pooled_text=true --set model.frame_text=true --set train.timestep_shift=1 --set train.drop_image=0.5
stage refiner "$RUNS/demo-refiner" "$DATA64" "$REFINER_FULL_STEPS" --set train.batch_size=1
stage refiner "$RUNS/demo-refiner" "$DATA64" "$REFINER_STEPS" --set train.max_noise=0.5
mkdir -p checkpoints/demo  # its README.md (the model card) is kept
cp "$RUNS/demo-motion-mid/model/"*.safetensors "$RUNS/demo-motion-mid/model/config.yaml" checkpoints/demo/
cp "$RUNS/demo-refiner/model/refiner.safetensors" "$RUNS/demo-refiner/model/refiner_encoders.safetensors" checkpoints/demo/

# The student: the run's model folder is the teacher's with student.safetensors added and
# the lcm sampler as the default.
student="$RUNS/demo-student"
if [ -f "$student/checkpoints/latest" ]; then
  "$TIA2V" --quiet train distill --resume "$student" --set train.max_steps="$DISTILL_STEPS"
elif [ ! -d "$student/model" ]; then
  "$TIA2V" --quiet train distill --config checkpoints/demo/config.yaml \
    --set distill.teacher=checkpoints/demo --set train.run_dir="$student" \
    --set train.max_steps="$DISTILL_STEPS" --set train.lr=1e-4 --set train.warmup_steps=100 \
    --set train.ema_decay=0.95 --set train.save_every=100 --set train.log_every=25 \
    --set distill.teacher_steps=20 --set train.drop_image=0.25 --set sample.sampler=lcm
fi
cp "$student/model/student.safetensors" "$student/model/config.yaml" "$student/model/README.md" \
  "$student/model/manifest.json" checkpoints/demo/
echo "exported checkpoints/demo"
