#!/usr/bin/env bash
# scripts/install_deps.sh — install every Debian package sogclip needs (idempotent).
#   scripts/install_deps.sh            build + test dependencies
#   scripts/install_deps.sh --dev      also PyTorch (reference generators, benchmarks)
# Runs apt-get only when something is missing; uses sudo when not root.
set -euo pipefail

PKGS=(build-essential cmake pkg-config libdnnl-dev libyaml-dev libjpeg62-turbo-dev
      libturbojpeg0-dev libpng-dev libsentencepiece-dev libopenmpi-dev openmpi-bin)
if [[ "${1:-}" == "--dev" ]]; then
  # libopenblas0-openmp: without it Debian's torch runs matrix products on the netlib
  # reference BLAS (~1 GFLOP/s), which would make a meaningless benchmark peer.
  PKGS+=(python3-torch python3-torchvision python3-numpy python3-sentencepiece libopenblas0-openmp)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_deps: all packages present"
  exit 0
fi
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
