"""Reference for tests/test_activation.c: ReLU, GELU (erf / tanh) and QuickGELU, forward and
backward, from torch.nn.functional (float32, what torch users get) and the same in float64
(the exact function, rounded once to float32).
Run: cd tests/ref && /usr/bin/python3 gen_activation.py

For each input set S (odd: 7x13, round: 16x64) and activation A:
  x_S, wgt_S                 input and the fixed loss weight (L = sum(out * wgt), dout = wgt)
  out_A_S, dinp_A_S          torch float32 forward and dL/dx
  out64_A_S, dinp64_A_S      the same computed in float64
"""
import torch
import torch.nn.functional as F

from refutil import save

ACTS = {
    "relu": F.relu,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quickgelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def inputs():
    g = torch.Generator().manual_seed(1234)
    odd = torch.randn(7, 13, generator=g) * 3.0
    odd.view(-1)[:8] = torch.tensor([-20.0, -10.0, -5.0, -1e-3, 1e-3, 5.0, 10.0, 20.0])
    # round: a dense grid over [-6, 6] (the curved part), random values and large |x|
    grid = torch.linspace(-6.0, 6.0, 768)
    grid = grid[grid != 0]  # ReLU's kink: keep exact zeros out of the reference
    extra = torch.tensor([-20.0, -15.0, -10.0, -8.0, 8.0, 10.0, 15.0, 20.0, -1e-6, 1e-6])
    rnd = torch.randn(1024 - grid.numel() - extra.numel(), generator=g) * 4.0
    rnd[rnd.abs() < 1e-6] = 0.5
    round_ = torch.cat([grid, extra, rnd]).reshape(16, 64)
    wgt_odd = torch.rand(7, 13, generator=g) * 2 - 1
    wgt_round = torch.rand(16, 64, generator=g) * 2 - 1
    return {"odd": (odd, wgt_odd), "round": (round_, wgt_round)}


def fwd_bwd(fn, x, wgt):
    x = x.clone().requires_grad_()
    out = fn(x)
    (out * wgt).sum().backward()
    return out.detach(), x.grad


def main():
    t = {}
    for s, (x, wgt) in inputs().items():
        t[f"x_{s}"] = x
        t[f"wgt_{s}"] = wgt
        for a, fn in ACTS.items():
            t[f"out_{a}_{s}"], t[f"dinp_{a}_{s}"] = fwd_bwd(fn, x, wgt)
            o64, d64 = fwd_bwd(fn, x.double(), wgt.double())
            t[f"out64_{a}_{s}"], t[f"dinp64_{a}_{s}"] = o64.float(), d64.float()
    save("activation", t, {"generator": "tests/ref/gen_activation.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
