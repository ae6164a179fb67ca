"""Reference for tests/test_elementwise.c: residual add, F.normalize and F.dropout, forward and
backward. Run: cd tests/ref && /usr/bin/python3 gen_elementwise.py

The loss is always L = sum(out * wgt), so dout = wgt.
add_S:      a, b, wgt, out = a + b; ga0/gb0 are gradients already present before backward, and
            da/db = ga0 + dL/da, gb0 + dL/db (backward accumulates into both branches).
l2norm_S:   x, wgt, eps, out = F.normalize(x, dim=-1, eps=eps), norm = ||x||, dinp; plus
            out64/dinp64 in float64. Sets: odd 7x13, round 16x64 (eps 1e-12), clamp 6x10
            (eps 1.0, some row norms below it), tiny 3x8 (a zero row and a 1e-14 row).
dropout_S:  x, wgt, p, out = F.dropout(x, p, training=True) with torch's own RNG, mask =
            (out != 0) as uint8 (x has no zeros), dinp = dL/dx.
"""
import torch
import torch.nn.functional as F

from refutil import save


def main():
    g = torch.Generator().manual_seed(2024)
    t = {}

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    def uni(*shape):
        return torch.rand(*shape, generator=g) * 2 - 1

    for s, shape in {"odd": (7, 13), "round": (16, 64)}.items():
        a = rnd(*shape).requires_grad_()
        b = rnd(*shape).requires_grad_()
        wgt, ga0, gb0 = uni(*shape), uni(*shape), uni(*shape)
        a.grad, b.grad = ga0.clone(), gb0.clone()
        out = a + b
        (out * wgt).sum().backward()
        p = f"add_{s}_"
        t.update({p + "a": a, p + "b": b, p + "wgt": wgt, p + "out": out, p + "ga0": ga0,
                  p + "gb0": gb0, p + "da": a.grad, p + "db": b.grad})

    clamp = rnd(6, 10, scale=0.5)
    clamp[0] *= 0.1   # norm ~0.15 < eps = 1
    clamp[3] *= 0.05
    clamp[4] *= 4.0   # norm ~6 > eps
    tiny = rnd(3, 8)
    tiny[0] = 0.0
    tiny[1] *= 1e-14  # norm ~3e-14, below eps = 1e-12
    l2 = {"odd": (rnd(7, 13, scale=2.0), 1e-12), "round": (rnd(16, 64), 1e-12),
          "clamp": (clamp, 1.0), "tiny": (tiny, 1e-12)}
    for s, (x, eps) in l2.items():
        wgt = uni(*x.shape)
        p = f"l2norm_{s}_"
        t.update({p + "x": x, p + "wgt": wgt, p + "eps": torch.tensor([eps]),
                  p + "norm": x.norm(dim=-1)})
        for dt, suffix in ((torch.float32, ""), (torch.float64, "64")):
            xx = x.detach().to(dt).clone().requires_grad_()
            out = F.normalize(xx, dim=-1, eps=eps)
            (out * wgt.to(dt)).sum().backward()
            t[p + "out" + suffix], t[p + "dinp" + suffix] = out.detach().float(), xx.grad.float()

    for s, shape, prob in (("odd", (7, 13), 0.1), ("round", (16, 64), 0.5),
                           ("p0", (5, 9), 0.0), ("p1", (5, 9), 1.0)):
        x = rnd(*shape)
        x[x == 0] = 0.5
        x.requires_grad_()
        wgt = uni(*shape)
        torch.manual_seed(7)
        out = F.dropout(x, prob, training=True)
        (out * wgt).sum().backward()
        p = f"dropout_{s}_"
        t.update({p + "x": x, p + "wgt": wgt, p + "p": torch.tensor([prob]), p + "out": out,
                  p + "mask": (out != 0).to(torch.uint8), p + "dinp": x.grad})
    save("elementwise", t, {"generator": "tests/ref/gen_elementwise.py",
                            "torch": torch.__version__})


if __name__ == "__main__":
    main()
