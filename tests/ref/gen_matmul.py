"""Reference for tests/test_matmul.c: F.linear and torch.matmul (3-D), forward and backward.
Run: cd tests/ref && /usr/bin/python3 gen_matmul.py  -> data/matmul.safetensors

For each case the loss is L = sum(out * wgt) with wgt a fixed random tensor (stored), so the
C test uses dout = wgt. Stored per linear case <p> = lin_<N>x<C>x<OC>[_nobias]:
  <p>.inp (N,C), <p>.w (OC,C), <p>.b (OC) [bias cases], <p>.out (N,OC), <p>.wgt (N,OC),
  <p>.dinp, <p>.dw, <p>.db [bias cases]
per matmul case <p> = mm_<batch>x<M>x<K>x<N>:
  <p>.a (batch,M,K), <p>.b (batch,K,N), <p>.out, <p>.wgt (batch,M,N), <p>.da, <p>.db
"""
import torch
import torch.nn.functional as F

from refutil import rand, save

LINEAR = [(7, 13, 5, True), (7, 13, 5, False), (32, 64, 48, True), (1, 3, 1, True),
          (19, 128, 33, True)]
MATMUL = [(3, 5, 7, 4), (2, 16, 32, 8), (1, 1, 9, 1), (4, 13, 6, 11)]

t = {}
seed = 1
for n, c, oc, bias in LINEAR:
    p = f"lin_{n}x{c}x{oc}" + ("" if bias else "_nobias")
    x = rand(n, c, seed=seed).requires_grad_()
    w = (rand(oc, c, seed=seed + 1) * c ** -0.5).requires_grad_()
    b = rand(oc, seed=seed + 2).requires_grad_() if bias else None
    wgt = rand(n, oc, seed=seed + 3)
    seed += 4
    out = F.linear(x, w, b)
    (out * wgt).sum().backward()
    t.update({f"{p}.inp": x, f"{p}.w": w, f"{p}.out": out, f"{p}.wgt": wgt,
              f"{p}.dinp": x.grad, f"{p}.dw": w.grad})
    if bias:
        t.update({f"{p}.b": b, f"{p}.db": b.grad})

for bt, m, k, n in MATMUL:
    p = f"mm_{bt}x{m}x{k}x{n}"
    a = rand(bt, m, k, seed=seed).requires_grad_()
    b = rand(bt, k, n, seed=seed + 1).requires_grad_()
    wgt = rand(bt, m, n, seed=seed + 2)
    seed += 3
    out = torch.matmul(a, b)
    (out * wgt).sum().backward()
    t.update({f"{p}.a": a, f"{p}.b": b, f"{p}.out": out, f"{p}.wgt": wgt, f"{p}.da": a.grad,
              f"{p}.db": b.grad})

save("matmul", t, {"generator": "tests/ref/gen_matmul.py", "torch": torch.__version__})
