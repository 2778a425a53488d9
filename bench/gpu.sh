#!/usr/bin/env bash
# The speed benchmark on a GPU, as one prepared script (about 10-15 minutes with the build).
#
#   bash bench/gpu.sh            # CUDA (NVIDIA); needs nvcc and a network for pip
#   BACKEND=metal bash bench/gpu.sh   # Apple silicon
#
# It builds llama-cpp-python with the GPU backend, installs emogram with the bench extra, checks that
# layers are offloaded (emogram doctor), and runs bench/speed.py with every layer on the GPU for both
# presets. Results land in bench/results/ (JSON, and a PNG chart).
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  echo "usage: [BACKEND=cuda|metal] [VENV=DIR] bash bench/gpu.sh"
  sed -n '2,9s/^# \{0,1\}//p' "$0"
  exit 0
fi
cd "$(dirname "$0")/.."
backend="${BACKEND:-cuda}"
venv="${VENV:-/tmp/emogram-gpu}"
python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install -q --upgrade pip
if [ "$backend" = metal ]; then
  export CMAKE_ARGS="-DGGML_METAL=on"
else
  export CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=native"
fi
export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || sysctl -n hw.ncpu)"
time pip install --no-cache-dir --force-reinstall --no-deps "llama-cpp-python>=0.3.36"
pip install -q ".[bench,smollm2]"
emogram doctor --model gemma3-270m
timeout 300 python bench/speed.py --device gpu --rounds 3 --flat-cap 30
timeout 240 python bench/speed.py --device gpu --rounds 3 --flat-cap 30 --model smollm2-135m
