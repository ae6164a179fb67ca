#!/usr/bin/env bash
# scripts/gpu_check.sh — build sogclip with CUDA on a GPU machine with no network and run every
# test, the GPU-vs-CPU op test verbosely. Typically 2-4 minutes on a 16-core H200 machine; each
# step has a timeout so the whole script stays under ~9 minutes even when something hangs.
#
#   scripts/gpu_check.sh [DEB_DIR]      (default DEB_DIR: .debs)
#
# - The libraries the CUDA image lacks travel as .deb files in DEB_DIR (scripts/gpu_env.sh unpacks
#   them into /tmp/debroot; nothing is installed system-wide; cuDNN may come from PyTorch's wheel).
# - Builds in build-gpu (Release, -DCMAKE_CUDA_ARCHITECTURES=90 for H100/H200; override with
#   SG_CUDA_ARCH=...), runs nvidia-smi, ctest for the CPU tests, then every GPU test
#   (test_cuda_*: ops, losses, conv, pointwise, attention, optim, contrastive, model, train;
#   test_dist_nccl: the NCCL backend on one GPU; test_dist_train alone: data-parallel training
#   through the nccl backend with one rank on CUDA against one CUDA process; where mpirun exists,
#   also under mpirun -np 1 and -np 2: GPU ranks over MPI sharing the GPU).
# - SG_SANITIZE=1 additionally runs test_cuda_ops under compute-sanitizer memcheck (slow).
# - A GPU test exits 77 (skip) without a GPU: here that counts as a failure (rc=77 in the
#   summary), since this script is meant for a GPU machine.
# - Logs go to SG_LOG_DIR (default build-gpu/logs): configure.log, build.log, env.txt, ctest.log,
#   one log per GPU test, summary.txt. Exit status: 0 only if every step passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

DEB_DIR="${1:-.debs}"
BUILD=build-gpu
LOG="${SG_LOG_DIR:-$BUILD/logs}"
ARCH="${SG_CUDA_ARCH:-90}"
JOBS="$(nproc)"
mkdir -p "$LOG" "$BUILD"
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

# ---- 1. carried libraries (scripts/gpu_env.sh) -------------------------------------------------
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh "$DEB_DIR"

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
GPU_TESTS=(test_cuda_ops test_cuda_losses test_cuda_conv test_cuda_pointwise test_cuda_attention
           test_cuda_optim test_cuda_contrastive test_cuda_model test_cuda_train test_dist_nccl
           test_dist_train)
if step configure 120 configure.log cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DSOGCLIP_CUDA=ON -DSOGCLIP_WERROR=OFF -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${CMAKE_EXTRA[@]}" &&
    { step build 300 build.log cmake --build "$BUILD" -j "$JOBS" --target "${GPU_TESTS[@]}" \
        bench_clip_step sogclip_cli -- -k || [[ -x "$BUILD/bench_clip_step" ]]; }; then
    # (-k: one target that fails to build does not stop the others from being tested)
    # ---- 4. tests: the CPU suite only when asked (SG_CPU_TESTS=1; CI runs it anyway), then
    # each GPU test alone (their timings are printed)
    if [[ "${SG_CPU_TESTS:-0}" == 1 ]]; then
        step build-all 300 build.log cmake --build "$BUILD" -j "$JOBS"
        step ctest-cpu 180 ctest.log ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" \
            -LE 'gpu|long' --timeout 150
    fi
    for t in "${GPU_TESTS[@]}"; do
        [[ -x "$BUILD/$t" ]] || { summary "$t: NOT BUILT"; status=1; continue; }
        tmo="${SG_TEST_TIMEOUT:-60}"
        [[ $t == test_dist_train ]] && tmo=$((tmo * 2)) # 8 short CUDA trainings, NCCL setups
        step "$t" "$tmo" "$t.log" "$BUILD/$t"
    done
    # GPU ranks over MPI (sharing the GPU), when the machine has Open MPI: the build found it
    if command -v mpirun >/dev/null && [[ -x "$BUILD/test_dist_train" ]]; then
        for np in 1 2; do
            step "test_dist_train_mpi$np" 120 test_dist_train.log env OMP_NUM_THREADS=4 \
                OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
                mpirun -np "$np" --oversubscribe "$BUILD/test_dist_train"
        done
    else
        summary "test_dist_train under mpirun: skipped (no mpirun on this machine)"
    fi
    if [[ "${SG_SANITIZE:-0}" == 1 ]]; then
        step sanitize 240 sanitize.log compute-sanitizer --tool memcheck --error-exitcode 1 \
            "$BUILD/test_cuda_ops"
    fi
else
    summary "build failed: see configure.log / build.log"
fi
summary "total: $((SECONDS - t_start)) s, status $status"
exit "$status"
