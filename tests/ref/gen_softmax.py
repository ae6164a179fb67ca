"""Reference for tests/test_softmax.c: torch.softmax(x, dim=-1) forward and backward on (N, C).
Run: cd tests/ref && /usr/bin/python3 gen_softmax.py

For each case S: x_S (N, C), wgt_S (the loss weight: L = sum(out * wgt), so dout = wgt),
out_S (torch float32), dinp_S = dL/dx (float32), out64_S / dinp64_S (the same in float64).
Cases: odd 7x13, round 16x64, attention-like 12x197, large logits (+-50, one-hot-ish rows and a
constant row) 5x33, and a single wide row 1x1000.
"""
import torch

from refutil import save


def cases():
    g = torch.Generator().manual_seed(99)
    big = torch.randn(5, 33, generator=g) * 50.0
    big[1] = 0.0
    big[1, 7] = 50.0   # nearly one-hot
    big[2] = 3.25      # constant row: uniform output
    big[3, :16] = -50.0
    big[3, 16:] = 50.0
    return {
        "odd": torch.randn(7, 13, generator=g) * 3.0,
        "round": torch.randn(16, 64, generator=g) * 2.0,
        "att": torch.randn(12, 197, generator=g) * 4.0,
        "big": big,
        "wide": torch.randn(1, 1000, generator=g) * 5.0,
    }, g


def fwd_bwd(x, wgt):
    x = x.clone().requires_grad_()
    out = torch.softmax(x, dim=-1)
    (out * wgt).sum().backward()
    return out.detach(), x.grad


def main():
    t = {}
    xs, g = cases()
    for s, x in xs.items():
        wgt = torch.rand(x.shape, generator=g) * 2 - 1
        t[f"x_{s}"], t[f"wgt_{s}"] = x, wgt
        t[f"out_{s}"], t[f"dinp_{s}"] = fwd_bwd(x, wgt)
        o64, d64 = fwd_bwd(x.double(), wgt.double())
        t[f"out64_{s}"], t[f"dinp64_{s}"] = o64.float(), d64.float()
    save("softmax", t, {"generator": "tests/ref/gen_softmax.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
