#!/usr/bin/env bash
# The GPU benchmark (about 5 minutes on one GPU): for efficientnet_b1 and convnext_tiny at 224 px,
# images/s of the engine (bf16, channels_last, pinned uint8 batches) vs the teaching baseline's plain
# loop vs the model alone on a batch already on the GPU, and GPU utilisation while the engine trains.
#   bench/gpu.sh            (after `make setup`; PYTHON=... to use another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
command -v nvidia-smi >/dev/null && nvidia-smi -L || { echo "no NVIDIA GPU here: nothing to measure"; exit 1; }
WORKERS=$(( $(nproc) > 16 ? 16 : $(nproc) ))
for spec in "efficientnet_b1 224 128" "convnext_tiny 224 128"; do
  set -- $spec
  "$PY" bench/bench_engine.py --model "$1" --img-size "$2" --batch-size "$3" --workers "$WORKERS" \
      --train-images 3072 --val-images 1536 --json ".bench/gpu-$1.json"
done
