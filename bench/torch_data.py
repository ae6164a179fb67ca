"""bench/torch_data.py — the PIL + torchvision peer of bench/bench_data.c: decode +
RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize(ImageNet) through a torch
DataLoader, with 1 thread (num_workers=0, in the main process) and 2 threads (num_workers=2),
torch.set_num_threads(1) in every process.

Pipeline (torchvision 0.14 on PIL images, what a usual training script runs):
  Image.open(BytesIO(jpeg)).convert("RGB")        PIL's libjpeg-turbo decode, full size
  RandomResizedCrop(224, scale=(0.08, 1.0), ratio=(3/4, 4/3), interpolation=BILINEAR)
                                                  (antialias: PIL's resample always is)
  RandomHorizontalFlip(), ToTensor(), Normalize(ImageNet mean/std)
collated into (32, 3, 224, 224) batches, shuffled. Files: every *.jpg below the DIRs (two
levels deep at most), sorted by path, N taken evenly spaced (file i * total // N) — the same
files bench_data takes; read into memory first (the workers inherit them by fork). Each
measurement is the best of R epochs after a warm-up epoch (persistent workers, so worker start-up
is not timed).
Run: /usr/bin/python3 bench/torch_data.py [--data DIR[,DIR...]] [--limit 600] [--reps 3]
                                          [--threads 1,2] [--batch 32]
Prints human-readable lines and "RESULT<TAB>what<TAB>threads<TAB>images/s" lines.
"""
import argparse
import io
import os
import time

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")
IMNET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def list_jpegs(d, depth=0):
    out = []
    for name in os.listdir(d):
        if name.startswith("."):
            continue
        p = d + "/" + name
        if os.path.isdir(p):
            if depth < 2:
                out += list_jpegs(p, depth + 1)
        elif len(name) > 4 and name.endswith(".jpg"):
            out.append(p)
    return out


def load_files(dirs, limit):
    paths = sorted(p for d in dirs.split(",") for p in list_jpegs(d))
    n = min(limit, len(paths)) if limit > 0 else len(paths)
    chosen = [paths[i * len(paths) // n] for i in range(n)]
    return [open(p, "rb").read() for p in chosen], len(paths)


def pipeline(size):
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                            interpolation=T.InterpolationMode.BILINEAR),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(*IMNET),
    ])


class Blobs(torch.utils.data.Dataset):
    def __init__(self, blobs, tf):
        self.blobs, self.tf = blobs, tf

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, i):
        return self.tf(Image.open(io.BytesIO(self.blobs[i])).convert("RGB"))


def one_thread(_):
    torch.set_num_threads(1)


def report(what, threads, best, n, note=""):
    ips = n / best
    print("%-9s %d thread%s %8.0f images/s  (%.3f ms/image/thread)%s"
          % (what, threads, "s" if threads > 1 else " ", ips, 1e3 * threads / ips, note))
    print("RESULT\t%s\t%d\t%.1f" % (what, threads, ips), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=SHARED + "/imagenette/train," + SHARED + "/imagenette/val")
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    blobs, total = load_files(a.data, a.limit)
    n = len(blobs)
    print("torch_data: %d of %d JPEGs from %s; RandomResizedCrop(%d) + flip + normalize; batch %d;"
          " best of %d epochs (torch %s, torchvision %s, PIL %s)"
          % (n, total, a.data, a.size, a.batch, a.reps, torch.__version__,
             torchvision.__version__, Image.__version__))

    best = float("inf")  # PIL decode alone, for reference
    for r in range(a.reps + 1):
        t0 = time.perf_counter()
        for b in blobs:
            Image.open(io.BytesIO(b)).convert("RGB")
        if r > 0:
            best = min(best, time.perf_counter() - t0)
    report("pil_decode", 1, best, n)

    ds = Blobs(blobs, pipeline(a.size))
    for threads in [int(t) for t in a.threads.split(",")]:
        workers = 0 if threads == 1 else threads
        dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0,
                                         worker_init_fn=one_thread if workers else None)
        best, sink = float("inf"), 0.0
        for r in range(a.reps + 1):  # r = 0: warm-up (starts the workers)
            t0 = time.perf_counter()
            seen = 0
            for x in dl:
                seen += x.shape[0]
                sink += float(x[0, 0, 0, 0])
            assert seen == n
            if r > 0:
                best = min(best, time.perf_counter() - t0)
        report("pipeline", threads, best, n,
               "  (DataLoader, num_workers=%d)" % workers)
        del dl
    print("(checksum %g)" % sink)


if __name__ == "__main__":
    main()
