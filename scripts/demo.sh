#!/usr/bin/env bash
# scripts/demo.sh — the README's first command: install what is missing, build, and run the
# embedded demo (synthetic captioned shapes -> two-way SogCLR CLIP training -> zero-shot and
# retrieval evaluation). Outputs go to runs/ (SOGCLIP_DEMO_OUT overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
BUILD="${SOGCLIP_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" -j "$(nproc)" --target sogclip_cli
"$BUILD/sogclip" demo --out "${SOGCLIP_DEMO_OUT:-runs}"
