"""Reference for tests/test_core.c: torch RNG streams and f16/bf16 rounding.
Run: /usr/bin/python3 tests/ref/gen_core.py"""
import torch

from refutil import save

t = {}
for n in [1, 7, 15, 16, 17, 100, 1000]:
    torch.manual_seed(42)
    t[f"normal_{n}"] = torch.empty(n).normal_(0.5, 2.0)
    torch.manual_seed(7)
    t[f"uniform_{n}"] = torch.empty(n).uniform_(-3.0, 1.0)
torch.manual_seed(123)
a = torch.empty(3).normal_()
b = torch.empty(5).normal_()
c = torch.empty(20).uniform_()
d = torch.empty(1).normal_()
t["sequence"] = torch.cat([a, b, c, d])
src = torch.cat([torch.randn(2000) * 10, torch.randn(500) * 1e-6, torch.randn(500) * 1e5,
                 torch.tensor([0.0, -0.0, 65504.0, 65520.0, 1e-8, 5.96e-8, 3e-8, 1.0 + 2**-11,
                               1.0 + 3 * 2**-11, float("inf"), -float("inf")])])
t["half_src"] = src
t["half_f16"] = src.half()
t["half_bf16"] = src.bfloat16()
save("core", t, {"generator": "tests/ref/gen_core.py", "torch": torch.__version__})
