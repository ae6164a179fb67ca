"""Reference for tests/test_simclr.c: the SimCLR NT-Xent loss, written from the spec: 2B anchors
z = cat([za, zb]); the positive of anchor a is the other view of the same sample; the anchor
itself is excluded from the denominator, the positive is in it:
    sim = z @ z.T / tau;  sim.fill_diagonal_(-inf)
    L = F.cross_entropy(sim, cat([arange(B) + B, arange(B)]))      (mean over the 2B anchors)
computed by torch autograd in float64 from the stored fp32 inputs. Each case is also checked here
against (a) the literal formula mean_a -log(exp(s_pos/tau) / sum_{k != a} exp(s_ak/tau)) with
explicit loops in float64 and (b) torch float32 autograd of the same F.cross_entropy form; the
float32 discrepancies (max abs error / max(max |ref|, 1e-3)) are printed and stored
(<k>_t32err: loss, dza, dzb).
Run: cd tests/ref && /usr/bin/python3 gen_simclr.py  -> data/simclr.safetensors

Per case <k>: <k>_za, <k>_zb (B,d) fp32 L2-normalised, <k>_tau (1), <k>_loss (1), <k>_dza,
<k>_dzb (B,d).
"""
import math

import torch
import torch.nn.functional as F

from refutil import save

t = {}
g = torch.Generator().manual_seed(23)


def views(B, d, noise):
    x = torch.randn(B, d, generator=g)
    za = x + noise * torch.randn(B, d, generator=g)
    zb = x + noise * torch.randn(B, d, generator=g)
    return F.normalize(za, dim=1), F.normalize(zb, dim=1)


def nt_xent(za, zb, tau):
    B = za.shape[0]
    z = torch.cat([za, zb])
    sim = z @ z.t() / tau
    eye = torch.eye(2 * B, dtype=torch.bool)
    sim = sim.masked_fill(eye, float("-inf"))
    targets = torch.cat([torch.arange(B) + B, torch.arange(B)])
    return F.cross_entropy(sim, targets)


def literal(za, zb, tau):
    z = torch.cat([za, zb]).tolist()
    n, B = len(z), len(z) // 2
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    total = 0.0
    for a in range(n):
        pos = a + B if a < B else a - B
        den = sum(math.exp(dot(z[a], z[k]) / tau) for k in range(n) if k != a)
        total += -math.log(math.exp(dot(z[a], z[pos]) / tau) / den)
    return total / n


def grads(za, zb, tau, dtype):
    xa = za.to(dtype).requires_grad_(True)
    xb = zb.to(dtype).requires_grad_(True)
    loss = nt_xent(xa, xb, tau)
    loss.backward()
    return loss.detach(), xa.grad, xb.grad


def relerr(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-3))


def case(key, za, zb, tau):
    tau = float(torch.tensor(tau, dtype=torch.float32))  # the fp32 value the C test uses
    loss, dza, dzb = grads(za, zb, tau, torch.float64)
    lit = literal(za.double(), zb.double(), tau)
    assert abs(lit - float(loss)) <= 1e-12 * max(1.0, abs(lit)), (key, lit, float(loss))
    l32, dza32, dzb32 = grads(za, zb, tau, torch.float32)
    errs = [relerr(l32, loss), relerr(dza32, dza), relerr(dzb32, dzb)]
    assert max(errs) < 1e-3, (key, errs)
    print(f"{key}: B={za.shape[0]} d={za.shape[1]} tau={tau:.6g} loss={float(loss):.6g}; "
          f"torch fp32 rel. err loss {errs[0]:.2g} dza {errs[1]:.2g} dzb {errs[2]:.2g}")
    t[f"{key}_za"] = za
    t[f"{key}_zb"] = zb
    t[f"{key}_tau"] = torch.tensor([tau])
    t[f"{key}_loss"] = loss.reshape(1)
    t[f"{key}_dza"] = dza
    t[f"{key}_dzb"] = dzb
    t[f"{key}_t32err"] = torch.tensor(errs)


case("b3", *views(3, 5, 1.0), 0.5)
case("b7", *views(7, 13, 0.5), 0.1)
case("b16", *views(16, 32, 0.6), 0.2)
# Small temperature: logits up to 1/0.05 = 20 (the excluded self-similarity would dominate).
case("t005", *views(16, 32, 1.2), 0.05)
# Very small temperature: logits up to 100, needs the max shift.
case("t001", *views(7, 8, 1.0), 0.01)
# Smallest batch: 4 anchors, 2 negatives each.
case("b2", *views(2, 3, 1.5), 0.2)

save("simclr", t, {"generator": "tests/ref/gen_simclr.py", "torch": torch.__version__})
