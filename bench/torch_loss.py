"""bench/torch_loss.py — PyTorch peer of bench/bench_loss.c: one two-way SogCLR step
(docs/ALGORITHMS.md 2(b), the semantics of losses/sogclr.h) written as straightforward vectorised
PyTorch, float32, autograd for the feature gradients, LibAUC-v2 style (b-shifted u, overflow
guard b, per-sample first touch u == 0 -> fresh estimate, surrogate scaled by 1/(2B(B-1))).

    OPENBLAS_CORETYPE=Zen /usr/bin/python3 bench/torch_loss.py [--threads 2] [filter]

Cases sogclr_B<B>_d<d> (same names, shapes, N = 4B and index pattern as bench_loss.c); timing as
bench_time: 2 warm-ups, then up to 30 runs / 0.5 s (at least 3), median and min. After the
timing, "MEM<TAB>name<TAB>0<TAB>maxrss_delta_kB": growth of the process's peak RSS from just
before the first step (inputs and states allocated) to the end — meaningful when one case runs
per process (bench/loss_compare.py does that). It includes whatever torch's allocator and thread
pools keep, so it is an upper bound on the step's own temporaries.
"""
import argparse
import resource
import time

import torch
import torch.nn.functional as F


class TwoWaySogCLR:
    def __init__(self, N, tau, gamma, device="cpu"):
        self.tau, self.gamma = tau, gamma
        self.u_img, self.u_txt = torch.zeros(N, device=device), torch.zeros(N, device=device)
        self.b_img, self.b_txt = torch.zeros(N, device=device), torch.zeros(N, device=device)

    def _side(self, D, u, b, idx, off):
        B = D.shape[0]
        A = (D / self.tau).detach()
        b_old = b[idx]
        b_new = torch.maximum(b_old, A.max(dim=1).values)
        E = torch.exp(A - b_new[:, None]) * off
        g = E.sum(dim=1) / (B - 1)
        u_old = u[idx]
        u_new = torch.where(u_old == 0, g,
                            (1 - self.gamma) * u_old * torch.exp(b_old - b_new) + self.gamma * g)
        u_new = u_new.clamp_min(1e-20)
        u[idx] = u_new
        b[idx] = b_new
        return E / u_new[:, None]

    def __call__(self, zi, zt, idx):
        B = zi.shape[0]
        off = 1.0 - torch.eye(B, device=zi.device)
        S = zi @ zt.t()
        diag = S.diagonal()
        DI = S - diag[:, None]
        DT = S.t() - diag[:, None]
        pI = self._side(DI, self.u_img, self.b_img, idx, off)
        pT = self._side(DT, self.u_txt, self.b_txt, idx, off)
        return ((pI * DI).sum() + (pT * DT).sum()) / (2 * B * (B - 1))


def unit(B, d, g, base=None, noise=0.6):
    z = torch.randn(B, d, generator=g)
    if base is not None:
        z = base + noise * z
    return F.normalize(z, dim=1)


def case(B, d):
    g = torch.Generator().manual_seed(B * 10 + d)
    zi = unit(B, d, g).requires_grad_(True)
    zt = unit(B, d, g, zi.detach()).requires_grad_(True)
    N = 4 * B
    loss = TwoWaySogCLR(N, 0.05, 1.0)  # epoch 0 of a cosine schedule: gamma = 1
    state = {"step": 0}

    def fn():
        idx = (state["step"] * B + torch.arange(B)) % N
        state["step"] += 1
        zi.grad = None
        zt.grad = None
        L = loss(zi, zt, idx)
        L.backward()
    return fn


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
    for B in (256, 1024, 4096):
        for d in (256, 512):
            name = f"sogclr_B{B}_d{d}"
            if a.filter and a.filter not in name:
                continue
            fn = case(B, d)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            med, mn = time_case(fn)
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(f"BENCH\t{name}\t{med:.4f}\t{mn:.4f}", flush=True)
            print(f"MEM\t{name}\t0\t{rss1 - rss0}", flush=True)


if __name__ == "__main__":
    main()
