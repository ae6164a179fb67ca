"""bench/clip_step_compare.py — sogclip vs PyTorch CPU on one CLIP training step (forward, two-way
SogCLR loss, backward, AdamW step), same model config, batch, threads and synthetic data.

    python3 bench/clip_step_compare.py [--build build] [--threads 2] [--batch 64] [--rounds 2]
                                       [--configs clip-small,clip-mid] [--text-len captions]

Runs bench/bench_clip_step (ours) and bench/torch_clip_step.py (Debian's torch under
/usr/bin/python3, OPENBLAS_CORETYPE=Zen so OpenBLAS uses its tuned kernels) alternately
--rounds times per config and keeps each side's fastest median (the machine may be shared).
Prints pairs/s, step ms, peak RSS and the ratios speed = ours/torch (> 1: faster) and
memory = ours/torch peak RSS (< 1: smaller).
"""
import argparse
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--configs", default="clip-small,clip-mid")
    ap.add_argument("--text-len", default="captions", choices=["captions", "full"])
    a = ap.parse_args()
    env = dict(os.environ, OPENBLAS_CORETYPE="Zen", OMP_NUM_THREADS=str(a.threads))
    print("%-11s %-9s %10s %10s %10s %8s %8s" % ("config", "side", "pairs/s", "step ms",
                                                 "RSS MiB", "speed", "memory"))
    for name in a.configs.split(","):
        cfg = os.path.join(HERE, "configs", name + ".yaml")
        common = ["--config", cfg, "--batch", str(a.batch), "--threads", str(a.threads),
                  "--text-len", a.text_len, "--json"]
        ours, torch = None, None
        for _ in range(a.rounds):
            o = run([os.path.join(a.build, "bench_clip_step")] + common, env)
            t = run(["/usr/bin/python3", os.path.join(HERE, "torch_clip_step.py")] + common, env)
            ours = o if ours is None or o["step_ms"] < ours["step_ms"] else ours
            torch = t if torch is None or t["step_ms"] < torch["step_ms"] else torch
        speed = torch["step_ms"] / ours["step_ms"]
        mem = ours["peak_rss_mb"] / torch["peak_rss_mb"]
        print("%-11s %-9s %10.1f %10.0f %10.0f" % (name, "torch", torch["pairs_per_s"],
                                                   torch["step_ms"], torch["peak_rss_mb"]))
        print("%-11s %-9s %10.1f %10.0f %10.0f %7.2fx %7.2fx" % (
            name, "sogclip", ours["pairs_per_s"], ours["step_ms"], ours["peak_rss_mb"], speed,
            mem))
        print("%-11s sogclip phases: forward %.0f, loss %.1f, backward %.0f, optimizer %.0f ms"
              % (name, ours["forward_ms"], ours["loss_ms"], ours["backward_ms"],
                 ours["optimizer_ms"]), flush=True)


if __name__ == "__main__":
    main()
