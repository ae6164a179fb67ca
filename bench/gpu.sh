#!/usr/bin/env bash
# bench/gpu.sh — the GPU benchmark (README Performance): builds (if needed) and reports, on one
# GPU, for CLIP ViT-B/32 and RN50 at batch 256 with synthetic data and full 77-token text:
# pairs/s, the step breakdown (forward, loss, backward, optimizer; each phase synchronised) and
# MFU (model FLOPs, bench/flops.h, against 989 TFLOP/s dense bf16 and the ~790 TFLOP/s a large
# bf16 GEMM reaches on an H200), in fp32 and bf16; the two-way SogCLR loss alone at B = 4096;
# and the PyTorch peer (bench/torch_clip_step.py: the same model, loss and optimizer, eager,
# torch.autocast bf16) in the same run, with the ratios. Under 8 minutes on one H200.
#
#   bench/gpu.sh [DEB_DIR]        (libraries the image lacks: see scripts/gpu_env.sh)
# Env: SG_BUILD (default build-gpu), SG_BENCH_STEPS (default 10), SG_BENCH_OUT (JSON lines file,
# default $SG_BUILD/bench_gpu.jsonl), SG_BENCH_TORCH=0 skips the PyTorch peer.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD="${SG_BUILD:-build-gpu}"
STEPS="${SG_BENCH_STEPS:-10}"
RES="${SG_BENCH_OUT:-$BUILD/bench_gpu.jsonl}"
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh "${1:-.debs}"
if [[ ! -x "$BUILD/bench_clip_step" ]]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSOGCLIP_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="${SG_CUDA_ARCH:-90}" "${CMAKE_EXTRA[@]}" >/dev/null &&
        cmake --build "$BUILD" -j "$(nproc)" --target bench_clip_step >/dev/null || exit 1
fi
: >"$RES"
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader || true
run() { # run LABEL TIMEOUT CMD... : one JSON line into $RES (or a failure note)
    local label=$1 tmo=$2
    shift 2
    echo "=== $label"
    local out
    out=$(timeout --kill-after=5 "$tmo" "$@" 2>&1 | tail -1)
    echo "$out"
    if [[ "$out" == "{"* ]]; then echo "$out" >>"$RES"; else echo "{\"failed\": \"$label\"}" >>"$RES"; fi
}
for model in ViT-B-32 RN50; do
    for prec in bf16 fp32; do
        run "sogclip $model B=256 $prec" 150 "$BUILD/bench_clip_step" --config \
            "configs/models/$model.yaml" --batch 256 --device cuda --precision "$prec" \
            --text-len full --steps "$STEPS" --warmup 3 --json
    done
    [[ "${SG_BENCH_TORCH:-1}" == 1 ]] && run "torch $model B=256 bf16" 150 python3 bench/torch_clip_step.py --config \
        "configs/models/$model.yaml" --batch 256 --device cuda --precision bf16 --text-len full \
        --steps "$STEPS" --warmup 3 --json
done
run "sogclip loss B=4096 d=512" 60 "$BUILD/bench_clip_step" --loss-only 4096 --dim 512 \
    --device cuda --steps 20 --warmup 3
python3 - "$RES" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
torch = {(r["config"]): r for r in rows if "torch" in r}
print("\n%-9s %-5s %-8s %9s %9s %8s %8s %8s %8s %7s %7s %9s" % (
    "model", "prec", "impl", "step ms", "pairs/s", "fwd", "loss", "bwd", "opt", "MFU989",
    "MFU790", "vs torch"))
for r in rows:
    if "failed" in r:
        print("FAILED:", r["failed"]); continue
    if "bench" in r:
        print("\nSogCLR loss alone B=%d d=%d: %.3f ms per step (%.1f TFLOP/s in its 3 GEMMs)" % (
            r["batch"], r["dim"], r["step_ms"], r["gemm_tflops"])); continue
    name = r["config"].split("/")[-1].replace(".yaml", "")
    if "torch" in r:
        print("%-9s %-5s %-8s %9.1f %9.1f" % (name, r["precision"], "torch", r["step_ms"],
                                               r["pairs_per_s"])); continue
    t = torch.get(name)
    ratio = "%.2fx" % (r["pairs_per_s"] / t["pairs_per_s"]) if t and r["precision"] == "bf16" else ""
    print("%-9s %-5s %-8s %9.1f %9.1f %8.1f %8.1f %8.1f %8.1f %6.1f%% %6.1f%% %9s" % (
        name, r["precision"], "sogclip", r["step_ms"], r["pairs_per_s"], r["forward_ms"],
        r["loss_ms"], r["backward_ms"], r["optimizer_ms"], 100 * r["mfu_989"],
        100 * r["mfu_790"], ratio))
PY
