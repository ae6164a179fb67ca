#!/usr/bin/env bash
# scripts/gpu_fetch_debs.sh [DIR] — run on a Debian 12 development machine (with network) before a
# GPU lease: downloads the Debian libraries the GPU image lacks into DIR (default .debs, ignored by
# git: add `/.debs/` to .git/info/exclude) and copies the cuDNN and NCCL headers next to them, for
# scripts/gpu_env.sh on the GPU machine (which has no network). ~10 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.debs}"
mkdir -p "$DIR/cudnn-include" "$DIR/nccl-include"
grep -qxF "/$DIR/" .git/info/exclude 2>/dev/null || echo "/$DIR/" >>.git/info/exclude
(cd "$DIR" && apt-get download libdnnl2 libdnnl-dev ocl-icd-libopencl1 libsentencepiece0 \
    libsentencepiece-dev libprotobuf-lite32 libyaml-0-2 libyaml-dev libturbojpeg0 \
    libturbojpeg0-dev libpng16-16 libpng-dev zlib1g-dev pkgconf pkgconf-bin libpkgconf3)
for f in "$DIR"/*%3a*; do [[ -e "$f" ]] && mv "$f" "${f//%3a/_}"; done # epochs: plain names
cp /usr/local/cuda/include/cudnn*.h "$DIR/cudnn-include/"
cp /usr/local/cuda/include/nccl*.h "$DIR/nccl-include/" 2>/dev/null || true
du -sh "$DIR"
