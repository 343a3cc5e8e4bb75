#!/usr/bin/env bash
# The kernel checks CI runs, without a GPU:
#   opencl  every kernel on OpenCL (PoCL on the CPU) against the CPU backend, plus a 100-step run
#   nvrtc   every kernel compiled by NVRTC for sm_90 with ptxas' report; fails on any spill
# Usage: Scripts/kernels/check.sh [opencl|nvrtc|all]   (default all)
# Environment: SCRATCH (build folder, default .build), MLPKIT_NVRTC (libnvrtc.so.13 or its folder),
# MLPKIT_OPENCL (an OpenCL loader library). A missing PoCL or NVRTC fails here (CI=1), never skips:
#   apt-get install -y pocl-opencl-icd ocl-icd-libopencl1
#   pip install nvidia-cuda-nvrtc==13.0.88
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${1:-all}" in
    opencl) filter='MLPKitOpenCLTests\.(Product|Elementwise|Adam|TrainingRun|Device)Tests' ;;
    nvrtc) filter='MLPKitOpenCLTests\.NVRTCCompileTests' ;;
    all) filter='MLPKitOpenCLTests' ;;
    *) echo "usage: $0 [opencl|nvrtc|all]" >&2; exit 2 ;;
esac

CI="${CI:-1}" exec swift test --scratch-path "${SCRATCH:-.build}" --filter "$filter"
