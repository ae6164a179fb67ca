#!/usr/bin/env python3
"""bench/loss_compare.py — two-way SogCLR step: sogclip (bench_loss) vs its GEMM floor vs PyTorch.

    python3 bench/loss_compare.py [--build build] [--threads 2] [--coretype Zen] [--repeat 3]
                                  [filter]

For each case (B in {256, 1024, 4096}, d in {256, 512}) it runs, each in a fresh process:
  bench_loss _B<B>_d<d>       -> our step and the floor (the three B x B x d sg_gemm calls alone,
                                 same process, same run), our workspace bytes, our peak-RSS delta
  torch_loss.py sogclr_B<B>_d<d> -> /usr/bin/python3 (Debian's torch; libopenblas0-openmp makes
                                 it use OpenBLAS) with OPENBLAS_CORETYPE (default Zen) and
                                 torch.set_num_threads(threads); its peak-RSS delta
and prints a markdown table: ours ms, floor ms, ours/floor, torch ms, torch/ours, and memory.
Memory columns: "ws" = the B x B (+ O(B)) workspace our loss object reports; "RSS" = growth of
the process's peak resident set from just before the first step to the end of the timing (for
torch this includes its allocator's caching and thread pools: an upper bound on the step's
temporaries; for ours it is about the workspace, touched on the first step).
Times: each process reports the median of its runs (bench_time protocol); the pair of processes
is repeated --repeat times, alternating ours and torch, and the table shows the smallest median of
each column (other processes on a shared machine only ever add time). The 1-minute load average
before and after is printed.
"""
import argparse
import os
import platform
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [(B, d) for B in (256, 1024, 4096) for d in (256, 512)]


def parse(text):
    t, m = {}, {}
    for line in text.splitlines():
        p = line.split("\t")
        if len(p) >= 3 and p[0] == "BENCH":
            t[p[1]] = float(p[2])
        elif len(p) >= 4 and p[0] == "MEM":
            m[p[1]] = (int(p[2]), int(p[3]))
    return t, m


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
    ap.add_argument("--coretype", default="Zen", help="OPENBLAS_CORETYPE for the torch peer")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("filter", nargs="?", default="")
    a = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    tenv = dict(env, OPENBLAS_CORETYPE=a.coretype)
    rows = []
    load0 = os.getloadavg()[0]
    for B, d in CASES:
        tag = f"_B{B}_d{d}"
        if a.filter and a.filter not in tag:
            continue
        name, floor = "sogclr" + tag, "floor" + tag
        best = {}
        for _ in range(a.repeat):
            ours = subprocess.run([os.path.join(a.build, "bench_loss"), "--threads",
                                   str(a.threads), tag], env=env, check=True, capture_output=True,
                                  text=True).stdout
            theirs = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_loss.py"),
                                     "--threads", str(a.threads), name], env=tenv, check=True,
                                    capture_output=True, text=True).stdout
            ot, om = parse(ours)
            tt, tm = parse(theirs)
            for key, v in (("o", ot[name]), ("f", ot[floor]), ("t", tt[name])):
                best[key] = min(best.get(key, v), v)
        rows.append((B, d, best["o"], best["f"], best["t"], om[name], tm[name]))
    load1 = os.getloadavg()[0]
    print(f"# machine: {cpu_name()}, {os.cpu_count()} cores; threads={a.threads}; torch "
          f"OPENBLAS_CORETYPE={a.coretype}; best of {a.repeat} process pairs; load average "
          f"{load0:.2f} before, {load1:.2f} after")
    print("| B | d | ours ms | floor ms | ours/floor | torch ms | torch/ours "
          "| ours ws MB | ours RSS MB | torch RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for B, d, o, f, t, om, tm in rows:
        print(f"| {B} | {d} | {o:.2f} | {f:.2f} | {o / f:.2f} | {t:.2f} | {t / o:.2f} "
              f"| {om[0] / 2**20:.1f} | {om[1] / 1024:.1f} | {tm[1] / 1024:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
