#!/usr/bin/env bash
# scripts/gpu_session.sh — everything a GPU lease should run, as ONE device command (~6 min on
# an H200; fits the 10-minute limit with margin): build + every GPU test (scripts/gpu_check.sh),
# then the benchmark with its PyTorch peer (bench/gpu.sh). Writes at most 3 files to $OUT (the
# device tool returns at most 8): check.log, bench.log, bench_gpu.jsonl; prints the test summary
# and the benchmark table. Use:  run(command="scripts/gpu_session.sh", carry=[".debs"])
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-build-gpu/session}"
mkdir -p "$OUT" /tmp/gl
SG_LOG_DIR=/tmp/gl SG_TEST_TIMEOUT="${SG_TEST_TIMEOUT:-60}" timeout 330 scripts/gpu_check.sh .debs \
    >"$OUT/check.log" 2>&1
check=$?
SG_BENCH_STEPS="${SG_BENCH_STEPS:-8}" timeout 240 bench/gpu.sh .debs >"$OUT/bench.log" 2>&1
bench=$?
cp build-gpu/bench_gpu.jsonl "$OUT/" 2>/dev/null
cat /tmp/gl/summary.txt
for f in /tmp/gl/test_cuda_*.log; do grep -E "FAIL" "$f" | head -3; done
tail -16 "$OUT/bench.log"
echo "gpu_check: $check, bench: $bench"
[[ $check == 0 && $bench == 0 ]]
