#!/usr/bin/env bash
# scripts/gpu_check.sh — build sogclip with CUDA on a GPU machine with no network and run every
# test, the GPU-vs-CPU op test verbosely. Typically 2-4 minutes on a 16-core H200 machine; each
# step has a timeout so the whole script stays under ~9 minutes even when something hangs.
#
#   scripts/gpu_check.sh [DEB_DIR]      (default DEB_DIR: .debs)
#
# - Every *.deb in DEB_DIR (e.g. libdnnl-dev + libdnnl2, which CMake requires and the CUDA image
#   may lack) is unpacked with `dpkg -x` into /tmp/debroot and handed to CMake and the loader
#   (CMAKE_PREFIX_PATH / CMAKE_LIBRARY_PATH / CMAKE_INCLUDE_PATH / LD_LIBRARY_PATH). Nothing is
#   downloaded or installed system-wide.
# - Builds in build-gpu (Release, -DCMAKE_CUDA_ARCHITECTURES=90 for H100/H200; override with
#   SG_CUDA_ARCH=...), runs nvidia-smi, ctest for the CPU tests, then the GPU tests
#   (build-gpu/test_cuda_ops, build-gpu/test_cuda_losses).
# - SG_SANITIZE=1 additionally runs test_cuda_ops under compute-sanitizer memcheck (slow).
# - test_cuda_ops exits 77 (skip) without a GPU: here that counts as a failure (rc=77 in the
#   summary), since this script is meant for a GPU machine.
# - Logs go to $OUT when it is set (else build-gpu/logs): configure.log, build.log, env.txt,
#   ctest.log, test_cuda_ops.log, summary.txt. Exit status: 0 only if every step passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

DEB_DIR="${1:-.debs}"
BUILD=build-gpu
LOG="${OUT:-$BUILD/logs}"
ARCH="${SG_CUDA_ARCH:-90}"
JOBS="$(nproc)"
mkdir -p "$LOG" "$BUILD"
export PATH="/usr/local/cuda/bin:$PATH"
t_start=$SECONDS
status=0
summary() { echo "$*" | tee -a "$LOG/summary.txt"; }
step() { # step NAME TIMEOUT_S LOGFILE CMD...: run with a timeout, log, record pass/fail
    local name=$1 tmo=$2 logf=$3
    shift 3
    local t0=$SECONDS
    echo "=== $name: $*" | tee -a "$LOG/$logf"
    timeout --kill-after=10 "$tmo" "$@" 2>&1 | tee -a "$LOG/$logf"
    local rc=${PIPESTATUS[0]}
    summary "$name: rc=$rc ($((SECONDS - t0)) s)$([[ $rc == 124 ]] && echo ', TIMED OUT')"
    [[ $rc == 0 ]] || status=1
    return "$rc"
}
: >"$LOG/summary.txt"

# ---- 1. unpack carried .deb files ------------------------------------------------------------
DEBROOT=/tmp/debroot
CMAKE_EXTRA=()
shopt -s nullglob
debs=("$DEB_DIR"/*.deb)
if ((${#debs[@]})); then
    mkdir -p "$DEBROOT"
    for d in "${debs[@]}"; do
        if command -v dpkg >/dev/null; then
            dpkg -x "$d" "$DEBROOT"
        else # no dpkg: a .deb is an ar archive holding data.tar.*
            tmp=$(mktemp -d) abs=$(realpath "$d")
            (cd "$tmp" && ar x "$abs" && tar -xf data.tar.* -C "$DEBROOT")
            rm -rf "$tmp"
        fi
        echo "unpacked $d"
    done
    MULTI="$DEBROOT/usr/lib/x86_64-linux-gnu"
    export LD_LIBRARY_PATH="$MULTI:$DEBROOT/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    CMAKE_EXTRA+=(-DCMAKE_PREFIX_PATH="$DEBROOT/usr" -DCMAKE_LIBRARY_PATH="$MULTI"
                  -DCMAKE_INCLUDE_PATH="$DEBROOT/usr/include")
    if [[ -e "$MULTI/libdnnl.so" && -e "$DEBROOT/usr/include/dnnl.h" ]]; then
        CMAKE_EXTRA+=(-DDNNL_LIBRARY="$MULTI/libdnnl.so" -DDNNL_INCLUDE_DIR="$DEBROOT/usr/include")
    fi
else
    echo "no .deb files in '$DEB_DIR': using the system's libraries"
fi
# CMakeLists.txt requires pkg-config; if the image lacks it, give CMake a stub that only answers
# --version (no pkg_check_modules user exists yet; one that appears will fail loudly).
if ! command -v pkg-config >/dev/null; then
    mkdir -p /tmp/sgbin
    # shellcheck disable=SC2016 # the stub itself expands $1
    printf '#!/bin/sh\n[ "$1" = "--version" ] && { echo 0.29.2; exit 0; }\nexit 1\n' \
        >/tmp/sgbin/pkg-config
    chmod +x /tmp/sgbin/pkg-config
    CMAKE_EXTRA+=(-DPKG_CONFIG_EXECUTABLE=/tmp/sgbin/pkg-config)
    echo "pkg-config missing: using a stub"
fi

# ---- 2. environment --------------------------------------------------------------------------
{
    echo "date: $(date -u)"
    nvidia-smi || echo "nvidia-smi failed"
    nvcc --version || echo "nvcc missing"
    cc --version | head -1
    cmake --version | head -1
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
} 2>&1 | tee "$LOG/env.txt"

# ---- 3. configure and build -------------------------------------------------------------------
if step configure 120 configure.log cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DSOGCLIP_CUDA=ON -DSOGCLIP_WERROR=OFF -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${CMAKE_EXTRA[@]}" &&
    step build 300 build.log cmake --build "$BUILD" -j "$JOBS"; then
    # ---- 4. tests: CPU tests in parallel, then the GPU test alone (its timings are printed)
    step ctest-cpu 180 ctest.log ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" \
        -LE gpu --timeout 150
    step test_cuda_ops 180 test_cuda_ops.log "$BUILD/test_cuda_ops"
    step test_cuda_losses 180 test_cuda_losses.log "$BUILD/test_cuda_losses"
    if [[ "${SG_SANITIZE:-0}" == 1 ]]; then
        step sanitize 240 sanitize.log compute-sanitizer --tool memcheck --error-exitcode 1 \
            "$BUILD/test_cuda_ops"
    fi
else
    summary "build failed: see configure.log / build.log"
fi
summary "total: $((SECONDS - t_start)) s, status $status"
exit "$status"
