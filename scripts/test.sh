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

# Bad-data tests (decoders, tar reader, datasets, loader) again under ASan/UBSan: hostile
# inputs must never read out of bounds or hit undefined behaviour (a report fails the run).
ASAN_BUILD="${BUILD}-asan"
cmake -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOGCLIP_SANITIZE=ON \
      -DSOGCLIP_CUDA=OFF -DSOGCLIP_WERROR=$WERROR > /dev/null
cmake --build "$ASAN_BUILD" -j "$(nproc)" --target test_decode test_tar test_dataset test_loader
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  ctest --test-dir "$ASAN_BUILD" --output-on-failure -j "$(nproc)" \
        -R '^(test_decode|test_tar|test_dataset|test_loader)$'
