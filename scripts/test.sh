#!/usr/bin/env bash
# scripts/test.sh — install what is missing, build (CUDA objects too when nvcc is present) and
# run the whole test suite. This is the README's test command and what CI runs.
#   SOGCLIP_BUILD_DIR (default build), CI=true turns warnings into errors.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
BUILD="${SOGCLIP_BUILD_DIR:-build}"
WERROR=OFF
[[ "${CI:-}" == "true" ]] && WERROR=ON
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSOGCLIP_WERROR=$WERROR
cmake --build "$BUILD" -j "$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)"
