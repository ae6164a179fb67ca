"""Reference for tests/test_conv.c: torch.nn.functional.conv2d forward and gradients.
Run: cd tests/ref && /usr/bin/python3 gen_conv.py  (writes data/conv.safetensors)

Each case i stores c{i}_x (B,C,H,W), c{i}_w (OC,C/g,KH,KW), c{i}_b (OC; only when the case has a
bias), c{i}_wgt (B,OC,OH,OW: the fixed random weights of the loss L = sum(out * wgt), so the
C test uses dout = wgt), c{i}_out, and the gradients of L: c{i}_dx, c{i}_dw, c{i}_db.
The case table must match CASES in tests/test_conv.c.
"""
import torch
import torch.nn.functional as F

from refutil import rand, save

# B, C, H, W, OC, KH, KW, stride, pad, groups, bias
CASES = [
    (2, 3, 9, 7, 5, 3, 3, 2, 1, 1, 1),     # odd everything, stride 2
    (2, 3, 10, 8, 5, 3, 3, 2, 1, 1, 0),    # stride 2 with a floored output (right pad unused)
    (2, 4, 6, 6, 6, 3, 3, 1, 1, 2, 0),     # groups = 2
    (2, 4, 5, 8, 4, 3, 3, 1, 1, 4, 1),     # depthwise
    (2, 8, 5, 5, 16, 1, 1, 1, 0, 1, 0),    # 1x1 (pointwise)
    (2, 6, 7, 7, 4, 1, 1, 2, 0, 1, 1),     # 1x1 stride 2 (ResNet downsample)
    (1, 3, 24, 24, 8, 7, 7, 2, 3, 1, 0),   # 7x7/2 stem, floored output
    (4, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1),   # round 3x3 (oneDNN's blocked path)
    (2, 4, 5, 6, 3, 1, 3, 1, 1, 1, 1),     # non-square kernel 1x3
    (3, 8, 12, 12, 8, 3, 3, 1, 1, 8, 0),   # depthwise with 8 channels (blocked path)
    (1, 4, 28, 28, 3, 1, 1, 1, 0, 1, 1),   # 1x1 with 28x28 outputs: op_ takes the GEMM path
    (1, 2, 56, 56, 3, 1, 1, 2, 0, 1, 0),   # 1x1/2 with 28x28 outputs: GEMM path, strided im2col
    (2, 128, 4, 5, 3, 3, 3, 1, 1, 1, 1),   # C*9 >= 1024: op_ computes dw by im2col, dinp by oneDNN
]

t = {}
for i, (B, C, H, W, OC, KH, KW, s, p, g, bias) in enumerate(CASES):
    x = rand(B, C, H, W, seed=100 * i + 1).requires_grad_()
    w = (rand(OC, C // g, KH, KW, seed=100 * i + 2) * 0.5).requires_grad_()
    b = rand(OC, seed=100 * i + 3).requires_grad_() if bias else None
    out = F.conv2d(x, w, b, stride=s, padding=p, groups=g)
    wgt = rand(*out.shape, seed=100 * i + 4)
    (out * wgt).sum().backward()
    t[f"c{i}_x"], t[f"c{i}_w"], t[f"c{i}_wgt"], t[f"c{i}_out"] = x, w, wgt, out
    t[f"c{i}_dx"], t[f"c{i}_dw"] = x.grad, w.grad
    if bias:
        t[f"c{i}_b"], t[f"c{i}_db"] = b, b.grad
save("conv", t, {"generator": "tests/ref/gen_conv.py", "torch": torch.__version__})
