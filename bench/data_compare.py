#!/usr/bin/env python3
"""bench/data_compare.py — data pipeline throughput, sogclip vs PIL + torchvision.

    python3 bench/data_compare.py [--build build] [--shared ../shared/data] [--limit 600]
                                  [--reps 3] [--rounds 3] [--threads 1,2]

Work per image (both sides): JPEG decode (full size) + RandomResizedCrop(224, scale (0.08, 1),
ratio (3/4, 4/3), bilinear, antialias) + RandomHorizontalFlip + ToTensor + Normalize (ImageNet
mean/std), batched by 32, on `limit` JPEGs of each dataset held in memory:
  imagenette  ../shared/data/imagenette/{train,val}/<wnid>/*.jpg (224x224, ~10 KB)
  flickr8k    ../shared/data/flickr8k/images/*.jpg               (224x224, ~27 KB)
  ours    build/bench_data: the real loader (data/loader.h) with T worker threads; also
          "raw": TurboJPEG full-size decode alone on T threads, the ceiling of a
          full-resolution pipeline (the table gives ours as a percentage of it)
  torch   /usr/bin/python3 bench/torch_data.py (Debian torch 1.13, torchvision 0.14, PIL 9.4):
          torch DataLoader, num_workers 0 for 1 thread, num_workers T for T threads,
          torch.set_num_threads(1) in every process
Each process reports the best of `reps` epochs (after a warm-up epoch); ours and torch
alternate, `rounds` times per dataset, and the table keeps the best of each (other processes on
a shared machine only ever slow a run down). The load average is printed before and after.
Needs the shared data folder; without it this prints a message and exits 0.
"""
import argparse
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATASETS = [("imagenette", ("imagenette/train", "imagenette/val")),
            ("flickr8k", ("flickr8k/images",))]


def parse(text):
    r = {}
    for line in text.splitlines():
        p = line.split("\t")
        if len(p) == 4 and p[0] == "RESULT":
            r[(p[1], int(p[2]))] = float(p[3])
    return r


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average %.2f %.2f %.2f" % os.getloadavg()


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    shared = os.path.normpath(a.shared)
    missing = [d for _, ds in DATASETS for d in ds if not os.path.isdir(os.path.join(shared, d))]
    if missing:
        print("data_compare: skipped: %s not found (needs the shared data folder)"
              % os.path.join(shared, missing[0]))
        return
    exe = os.path.join(a.build, "bench_data")
    if not os.path.exists(exe):
        sys.exit("data_compare: %s missing: cmake --build %s --target bench_data" % (exe, a.build))
    threads = [int(t) for t in a.threads.split(",")]
    print("machine: %s, %d CPUs; %s" % (cpu_name(), os.cpu_count(), uptime()))
    best = {}
    for _ in range(a.rounds):
        for name, dirs in DATASETS:
            data = ",".join(os.path.join(shared, d) for d in dirs)
            common = ["--data", data, "--limit", str(a.limit), "--reps", str(a.reps),
                      "--threads", a.threads]
            for side, cmd in (("ours", [exe] + common),
                              ("torch", ["/usr/bin/python3", os.path.join(HERE, "torch_data.py")]
                               + common)):
                for (what, t), v in parse(run(cmd)).items():
                    k = (name, side, what, t)
                    best[k] = max(best.get(k, 0.0), v)
    print("after: %s" % uptime())
    print()
    print("%d JPEGs per dataset in memory; decode + RandomResizedCrop(224) + flip + normalize, "
          "batches of 32; best of %d rounds x %d epochs" % (a.limit, a.rounds, a.reps))
    print()
    print("| dataset | threads | ours img/s | torch img/s | ratio | raw decode img/s "
          "| ours % of raw |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    worst = None
    for name, _ in DATASETS:
        for t in threads:
            o = best[(name, "ours", "pipeline", t)]
            th = best[(name, "torch", "pipeline", t)]
            raw = best[(name, "ours", "raw", t)]
            ratio = o / th
            worst = ratio if worst is None else min(worst, ratio)
            print("| %s | %d | %.0f | %.0f | %.2fx | %.0f | %.0f%% |"
                  % (name, t, o, th, ratio, raw, 100.0 * o / raw))
    print()
    print("ours = the sogclip loader (data/loader.h) with T worker threads; torch = DataLoader "
          "(num_workers 0 / T); raw = TurboJPEG full-size decode alone on T threads.")
    for name, _ in DATASETS:
        direct = ", ".join("%d thread%s %.0f" % (t, "s" if t > 1 else "",
                                                 best[(name, "ours", "direct", t)])
                           for t in threads)
        pil = best.get((name, "torch", "pil_decode", 1), 0.0)
        print("%s: plain per-thread loop without the loader: %s img/s; PIL decode alone, "
              "1 thread: %.0f img/s" % (name, direct, pil))
    print("lowest ratio: %.2fx (target >= 3x)" % worst)


if __name__ == "__main__":
    main()
