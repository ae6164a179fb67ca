#!/usr/bin/env python3
"""bench/compare.py — run bench_ops (sogclip) and torch_peer.py (PyTorch CPU) with the same thread
count and print, per op, both medians and the ratio torch_ms / sogclip_ms (> 1: sogclip faster),
then the geometric mean of the ratios.

    python3 bench/compare.py [--build build] [--threads 2] [filter]

PyTorch runs as /usr/bin/python3 (Debian's python3-torch) with OPENBLAS_CORETYPE set so that its
OpenBLAS uses AVX2 kernels (Debian's 0.3.21 does not recognise this CPU and otherwise falls back
to generic kernels ~6x slower) — we compare against PyTorch at its best.
"""
import argparse
import math
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def parse(text):
    res = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0] == "BENCH":
            res[parts[1]] = float(parts[2])
    return res


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--coretype", default="Haswell", help="OPENBLAS_CORETYPE for the torch peer")
    ap.add_argument("filter", nargs="?", default="")
    a = ap.parse_args()
    ours_cmd = [os.path.join(a.build, "bench_ops"), "--threads", str(a.threads)]
    torch_cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_peer.py"), "--threads",
                 str(a.threads)]
    if a.filter:
        ours_cmd.append(a.filter)
        torch_cmd.append(a.filter)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    ours = parse(subprocess.run(ours_cmd, env=env, check=True, capture_output=True,
                                text=True).stdout)
    tenv = dict(env, OPENBLAS_CORETYPE=a.coretype)
    theirs = parse(subprocess.run(torch_cmd, env=tenv, check=True, capture_output=True,
                                  text=True).stdout)
    print(f"# machine: {cpu_name()}, {os.cpu_count()} cores; threads={a.threads}; "
          f"torch OPENBLAS_CORETYPE={a.coretype}")
    print(f"| op (forward+backward) | sogclip ms | PyTorch ms | ratio |")
    print(f"|---|---:|---:|---:|")
    logs = []
    for name, ms in ours.items():
        if name not in theirs:
            print(f"| {name} | {ms:.3f} | (no peer) | |")
            continue
        r = theirs[name] / ms
        logs.append(math.log(r))
        flag = " **<0.7**" if r < 0.7 else ""
        print(f"| {name} | {ms:.3f} | {theirs[name]:.3f} | {r:.2f}{flag} |")
    for name in theirs:
        if name not in ours:
            print(f"| {name} | (missing) | {theirs[name]:.3f} | |")
    if logs:
        print(f"\ngeometric mean ratio over {len(logs)} ops: {math.exp(sum(logs) / len(logs)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
