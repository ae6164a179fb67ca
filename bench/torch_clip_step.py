"""bench/torch_clip_step.py — PyTorch CPU peer of sogclip's CLIP training-step benchmark: one
step of a CLIP model built from a model config (tests/ref/torch_models.py, open_clip's layout)
trained with the two-way SogCLR loss and AdamW, float32.

    OPENBLAS_CORETYPE=Zen /usr/bin/python3 bench/torch_clip_step.py \\
        --config bench/configs/clip-small.yaml [--batch 64] [--threads 2] [--steps 10] \\
        [--warmup 2] [--max-seconds 25] [--json]

Data (synthetic, fixed for the run): images (B,3,S,S) normal(0,1); ids (B,T) int64 with tokens
in [1, V-2], the EOT token V-1 at a per-row position (eot_position: caption-like lengths by
default, --text-len full spreads them over all T), zeros after it; sample ids idx = arange(B) (dataset size N = 100 B).
One step: model.train(); zi = encode_image(img), zt = encode_text(ids) (L2-normalised);
loss = two-way SogCLR (bench/torch_loss.py TwoWaySogCLR: docs/ALGORITHMS.md 2(b) with
losses/sogclr.h's semantics, vectorised; tau 0.01, gamma 0.9; a surrogate whose gradient is the
SogCLR feature gradient); loss.backward(); AdamW (lr 1e-4, betas (0.9, 0.999), eps 1e-8,
weight decay 0.1 except open_clip's exclusions: ndim < 2 or bn/ln/bias/logit_scale in the name);
optimizer.zero_grad(set_to_none=True). logit_scale is unused by SogCLR (no gradient, not stepped).

Timing: --warmup steps, then --steps timed steps (stopping early after --max-seconds once 3 are
timed); reports the median step time, pairs/s = B / median, and the process's peak RSS
(ru_maxrss: model, AdamW state, activations and torch's allocator caches).
--json prints one line {"config", "batch", "threads", "step_ms", "pairs_per_s", "peak_rss_mb",
"torch", "step_ms_min", "steps"} (the minimum is the steadier number on a shared machine).
Defaults keep one run under a minute on 2 cores (clip-mid: ~7 s per step).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
import torch_models as tm  # noqa: E402
from torch_loss import TwoWaySogCLR  # noqa: E402

TAU, GAMMA, LR, WD = 0.01, 0.9, 1e-4, 0.1


def eot_position(b, T, text_len):
    """Same rule as bench/bench_clip_step.c. captions: [8, 39] (Flickr8k captions: 11.7 words
    on average, the longest of a 64-caption batch 23 words on average); full: row 0 at T-1,
    the others spread over [1, T-2]."""
    if text_len == "captions":
        return min(T - 1, 8 + (b * 13) % 32)
    return T - 1 if b == 0 else 1 + (b * 37) % (T - 2)


def synthetic_batch(cfg, B, g, text_len):
    S = int(cfg["vision_cfg"]["image_size"])
    V, T = int(cfg["text_cfg"]["vocab_size"]), int(cfg["text_cfg"]["context_length"])
    img = torch.randn(B, 3, S, S, generator=g)
    ids = torch.randint(1, V - 1, (B, T), generator=g)
    for b in range(B):
        pos = eot_position(b, T, text_len)
        ids[b, pos] = V - 1
        ids[b, pos + 1:] = 0
    return img, ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="model config YAML")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=25.0,
                    help="stop timing after this long (at least 3 timed steps)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--text-len", choices=["captions", "full"], default="captions",
                    help="EOT positions: caption-like (8..39 tokens) or spread over all T")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: torch.autocast(bfloat16) around the towers (open_clip amp_bf16); "
                         "the loss runs in fp32 on float features")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as in sogclip
        torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)

    cfg = tm.load_yaml(a.config)
    model = tm.clip_from_cfg(cfg).to(dev)
    B = a.batch
    img, ids = synthetic_batch(cfg, B, torch.Generator().manual_seed(1), a.text_len)
    img, ids = img.to(dev), ids.to(dev)
    idx = torch.arange(B, device=dev)
    loss_fn = TwoWaySogCLR(100 * B, TAU, GAMMA, device=dev)
    opt = torch.optim.AdamW(tm.adamw_groups(model, WD), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    nparam = sum(p.numel() for p in model.parameters())
    if not a.json:
        print("# torch %s, %d threads, %s: %.1fM parameters, B = %d" % (
            torch.__version__, torch.get_num_threads(), a.config, nparam / 1e6, B), flush=True)

    amp = torch.autocast("cuda" if a.device == "cuda" else "cpu", dtype=torch.bfloat16,
                         enabled=a.precision == "bf16")

    def step():
        model.train()
        with amp:
            zi, zt = model.encode_image(img), model.encode_text(ids)
        loss = loss_fn(zi.float(), zt.float(), idx)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()  # synchronises on cuda

    for _ in range(a.warmup):
        step()
    ts, start = [], time.perf_counter()
    while len(ts) < a.steps and (len(ts) < 3 or time.perf_counter() - start < a.max_seconds):
        t0 = time.perf_counter()
        loss = step()
        ts.append(1e3 * (time.perf_counter() - t0))
    med = statistics.median(ts)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = {"config": os.path.splitext(os.path.basename(a.config))[0], "batch": B,
           "threads": torch.get_num_threads(), "step_ms": round(med, 2),
           "pairs_per_s": round(B / (med / 1e3), 2), "peak_rss_mb": round(rss_mb, 1),
           "torch": torch.__version__, "step_ms_min": round(min(ts), 2), "steps": len(ts),
           "text_len": a.text_len, "device": a.device, "precision": a.precision}
    if a.json:
        print(json.dumps(res), flush=True)
    else:
        print("%s B=%d threads=%d: median %.1f ms over %d steps (min %.1f), %.1f pairs/s, "
              "peak RSS %.0f MB, last loss %.4g" % (res["config"], B, res["threads"], med,
                                                    len(ts), min(ts), res["pairs_per_s"],
                                                    rss_mb, loss), flush=True)


if __name__ == "__main__":
    main()
