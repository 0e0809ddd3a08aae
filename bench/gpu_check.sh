#!/usr/bin/env bash
# GPU validation of the deployment targets in one go (< 8 minutes on one data-centre GPU), ending in a table:
# accuracy, latency, speedup vs onnx-fp32 on the same GPU and vs PyTorch on the same GPU, per variant and target.
#
#   bench/gpu_check.sh                       # demo MiniLM fine-tuned on the intent set (cached), targets cuda,tensorrt,cpu
#   MODEL=./my-classifier EVAL=eval.csv bench/gpu_check.sh
#
# Needs: an NVIDIA GPU and driver, onnxruntime-gpu instead of onnxruntime, a CUDA build of torch (README,
# "Deployment targets"); TensorRT is measured when its libraries load and reported as unavailable otherwise.
# Env: OUT (default runs/gpu-check), TARGETS (default cuda,tensorrt,cpu), LIMIT_S (default 470).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
TARGETS=${TARGETS:-cuda,tensorrt,cpu}
LIMIT_S=${LIMIT_S:-470}

fail() { echo "gpu_check: $1" >&2; echo "fix: $2" >&2; exit 2; }

command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: no NVIDIA driver on this machine" \
    "run this on a machine with an NVIDIA GPU (nothing was measured)"
nvidia-smi -L 2>/dev/null | grep -q "GPU " || fail "nvidia-smi lists no GPU" "check the driver and CUDA_VISIBLE_DEVICES"
python - <<'PY' || fail "onnxruntime cannot run on the GPU (see the line above)" \
    "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu==1.31.1"
from export.targets import TARGETS, unavailable_reason
reason = unavailable_reason(TARGETS["cuda"])
if reason:
    print(f"gpu_check: {reason}")
    raise SystemExit(1)
PY
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || fail \
    "PyTorch does not see the GPU (a CPU build of torch?): the PyTorch-on-GPU baseline cannot be measured" \
    "install torch==2.13.0 from PyTorch's CUDA index (README, Set-up)"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=INT "$LIMIT_S" python bench/gpu_check.py --out "$OUT" --targets "$TARGETS" \
    ${MODEL:+--model "$MODEL"} ${EVAL:+--eval-data "$EVAL"}
