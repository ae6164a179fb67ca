"""Reference for tests/test_pool.c: max_pool2d (with indices), avg_pool2d, adaptive_avg_pool2d.
Run: cd tests/ref && /usr/bin/python3 gen_pool.py  (writes data/pool.safetensors)

Per case: {mp,ap,ad}{i}_x (B,C,H,W), _wgt (the loss weights: L = sum(out * wgt), so the C test
uses dout = wgt), _out, _dx (dL/dx) and for max pooling _idx (torch's indices, as int32).
The case tables must match tests/test_pool.c.
"""
import torch
import torch.nn.functional as F

from refutil import rand, save

# B, C, H, W, kernel, stride, pad, kind of input
MAX_CASES = [
    (2, 3, 9, 7, 3, 2, 1, "rand"),    # odd, ResNet-style 3x3/2 pad 1
    (2, 4, 8, 8, 2, 2, 0, "rand"),    # round 2x2/2
    (2, 3, 7, 9, 3, 1, 1, "rand"),    # stride 1: overlapping windows, gradients add up
    (1, 2, 10, 9, 3, 2, 0, "rand"),   # no padding, floored output
    (2, 2, 11, 11, 3, 2, 1, "neg"),   # all inputs < 0: padding must act as -inf, not 0
    (2, 2, 9, 8, 3, 2, 1, "ties"),    # few distinct values: first max in window order wins
]
AVG_CASES = [
    (2, 3, 9, 7, 3, 2, 1),
    (2, 4, 8, 8, 2, 2, 0),
    (2, 3, 7, 9, 3, 1, 1),
    (1, 2, 10, 9, 3, 2, 0),
]
# B, C, H, W, OH, OW
ADA_CASES = [
    (2, 3, 7, 7, 1, 1),     # global average pool
    (2, 3, 9, 7, 4, 3),     # non-divisible windows (overlapping)
    (2, 2, 5, 6, 7, 8),     # output larger than input
    (2, 4, 6, 6, 2, 3),     # divisible
]


def make_input(shape, kind, seed):
    if kind == "neg":
        return rand(*shape, seed=seed, lo=-2.0, hi=-1.0)
    if kind == "ties":
        return torch.floor(rand(*shape, seed=seed, lo=0.0, hi=3.0))
    return rand(*shape, seed=seed)


t = {}
for i, (B, C, H, W, k, s, p, kind) in enumerate(MAX_CASES):
    x = make_input((B, C, H, W), kind, 10 * i + 1).requires_grad_()
    out, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    wgt = rand(*out.shape, seed=10 * i + 2)
    (out * wgt).sum().backward()
    t.update({f"mp{i}_x": x, f"mp{i}_wgt": wgt, f"mp{i}_out": out, f"mp{i}_dx": x.grad,
              f"mp{i}_idx": idx.to(torch.int32)})
for i, (B, C, H, W, k, s, p) in enumerate(AVG_CASES):
    x = rand(B, C, H, W, seed=1000 + 10 * i + 1).requires_grad_()
    out = F.avg_pool2d(x, k, s, p)  # count_include_pad=True, ceil_mode=False
    wgt = rand(*out.shape, seed=1000 + 10 * i + 2)
    (out * wgt).sum().backward()
    t.update({f"ap{i}_x": x, f"ap{i}_wgt": wgt, f"ap{i}_out": out, f"ap{i}_dx": x.grad})
for i, (B, C, H, W, OH, OW) in enumerate(ADA_CASES):
    x = rand(B, C, H, W, seed=2000 + 10 * i + 1).requires_grad_()
    out = F.adaptive_avg_pool2d(x, (OH, OW))
    wgt = rand(*out.shape, seed=2000 + 10 * i + 2)
    (out * wgt).sum().backward()
    t.update({f"ad{i}_x": x, f"ad{i}_wgt": wgt, f"ad{i}_out": out, f"ad{i}_dx": x.grad})
save("pool", t, {"generator": "tests/ref/gen_pool.py", "torch": torch.__version__})
