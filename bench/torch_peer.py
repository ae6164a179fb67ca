"""bench/torch_peer.py — times the PyTorch CPU equivalent of every bench_ops case.

Each bench/torch_<family>.py defines cases() -> list of (name, fn) where fn() runs one
forward+backward exactly like the C case of the same name (same shapes, fp32). Timing mirrors
bench_time in bench/bench_ops.c: 2 warm-ups, then up to 30 runs / 0.5 s, median.
Usage: /usr/bin/python3 bench/torch_peer.py [--threads N] [filter]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ["matmul", "conv", "norm", "pointwise", "embed_loss"]


def time_case(fn):
    fn()
    fn()
    ts, start = [], time.perf_counter()
    while len(ts) < 30 and (len(ts) < 3 or time.perf_counter() - start < 0.5):
        t0 = time.perf_counter()
        fn()
        ts.append(1e3 * (time.perf_counter() - t0))
    ts.sort()
    return ts[len(ts) // 2], ts[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("filter", nargs="?", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# torch {torch.__version__}: {torch.get_num_threads()} threads", flush=True)
    for fam in FAMILIES:
        mod = __import__(f"torch_{fam}")
        for name, fn in mod.cases():
            if a.filter and a.filter not in name:
                continue
            med, mn = time_case(fn)
            print(f"BENCH\t{name}\t{med:.4f}\t{mn:.4f}", flush=True)


if __name__ == "__main__":
    main()
