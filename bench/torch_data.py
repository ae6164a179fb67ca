"""bench/torch_data.py — the torchvision/PIL peer of bench/bench_data.c: decode + augment the
Imagenette train JPEGs on one thread (files read into memory first).

Pipelines (torchvision 0.14, the presets of data/transforms.h):
  PIL:    Image.open(BytesIO).convert("RGB") + transforms on the PIL image + ToTensor + Normalize
          (what a usual training script runs; PIL resamples with its own integer code)
  tensor: the same decode, then PILToTensor and the transforms on the uint8 tensor
          (the semantics sg_augment reproduces exactly)
Run: /usr/bin/python3 bench/torch_data.py [--dir DIR] [--limit N]
"""
import argparse
import glob
import io
import os
import time

import torch
import torchvision.transforms as T
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
IMNET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
BIL, BIC = T.InterpolationMode.BILINEAR, T.InterpolationMode.BICUBIC


def presets(size, tensor):
    aa = {"antialias": True}
    k = int(0.1 * size)
    k += 1 - k % 2
    to = [T.PILToTensor()] if tensor else []
    fin = ([T.ConvertImageDtype(torch.float32)] if tensor else [T.ToTensor()])
    simclr = T.Compose(to + [T.RandomResizedCrop(size, (0.08, 1.0), interpolation=BIL, **aa),
                             T.RandomHorizontalFlip(),
                             T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                             T.RandomGrayscale(0.2),
                             T.RandomApply([T.GaussianBlur(k, (0.1, 2.0))], p=0.5)]
                       + fin + [T.Normalize(*IMNET)])
    clip = T.Compose(to + [T.RandomResizedCrop(size, (0.9, 1.0), interpolation=BIC, **aa)]
                     + fin + [T.Normalize(*CLIP)])
    ev = T.Compose(to + [T.Resize(int(size / 0.875), BIL, **aa), T.CenterCrop(size)]
                   + fin + [T.Normalize(*IMNET)])
    return {"SIMCLR": simclr, "CLIP": clip, "EVAL": ev}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(HERE, "..", "..", "shared", "data",
                                                  "imagenette", "train"))
    ap.add_argument("--limit", type=int, default=3000)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    torch.set_num_threads(1)
    paths = sorted(glob.glob(os.path.join(a.dir, "*", "*.jpg")))[:a.limit]
    blobs = [open(p, "rb").read() for p in paths]
    print("torch_data: %d JPEGs from %s, output %dpx, 1 thread (torch %s)"
          % (len(blobs), a.dir, a.size, torch.__version__))

    def decode(b):
        return Image.open(io.BytesIO(b)).convert("RGB")

    t0 = time.perf_counter()
    for b in blobs:
        decode(b).load()
    dt = time.perf_counter() - t0
    print("decode (PIL)                  %8.0f images/s  (%.3f ms/image)"
          % (len(blobs) / dt, 1e3 * dt / len(blobs)))
    torch.manual_seed(0)
    for backend in ("PIL", "tensor"):
        for name, pipe in presets(a.size, backend == "tensor").items():
            t0 = time.perf_counter()
            for b in blobs:
                pipe(decode(b))
            dt = time.perf_counter() - t0
            print("decode + %-6s (%-6s)       %8.0f images/s  (%.3f ms/image)"
                  % (name, backend, len(blobs) / dt, 1e3 * dt / len(blobs)))


if __name__ == "__main__":
    main()
