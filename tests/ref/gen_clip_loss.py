"""Reference for tests/test_clip_loss.c: the CLIP InfoNCE loss with learnable logit scale
(open_clip ClipLoss, ALGORITHMS.md 2(c) "OpenCLIP baseline"), written from the spec:
    logits = exp(p) * zi @ zt.T
    L = (F.cross_entropy(logits, arange(B)) + F.cross_entropy(logits.T, arange(B))) / 2
computed by torch autograd in float64 from the stored fp32 inputs (so the reference carries no
fp32 rounding of its own). Each case is also checked here against (a) an explicit log-sum-exp
form of the same formula in float64 and (b) torch float32 F.cross_entropy with autograd; the
float32 discrepancies (max abs error / max(max |ref|, 1e-3)) are printed and stored (<k>_t32err:
 loss, dzi, dzt, dp) to show what fp32 can achieve.
Run: cd tests/ref && /usr/bin/python3 gen_clip_loss.py  -> data/clip_loss.safetensors

Per case <k>: <k>_zi, <k>_zt (B,d) fp32 L2-normalised, <k>_p (1), <k>_loss (1), <k>_dzi,
<k>_dzt (B,d), <k>_dp (1) = dL/dp.
"""
import math

import torch
import torch.nn.functional as F

from refutil import save

t = {}
g = torch.Generator().manual_seed(11)


def features(B, d, noise):
    """zi, zt fp32 L2-normalised (F.normalize in fp32); zt correlated with zi when noise < inf."""
    zi = torch.randn(B, d, generator=g)
    zt = zi + noise * torch.randn(B, d, generator=g)
    return F.normalize(zi, dim=1), F.normalize(zt, dim=1)


def clip_loss(zi, zt, p):
    logits = p.exp() * zi @ zt.t()
    labels = torch.arange(zi.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def explicit(zi, zt, p):
    lg = math.exp(p) * zi @ zt.t()
    diag = lg.diagonal()
    return (0.5 * (torch.logsumexp(lg, 1) - diag).mean()
            + 0.5 * (torch.logsumexp(lg, 0) - diag).mean())


def grads(zi, zt, p, dtype):
    xi = zi.to(dtype).requires_grad_(True)
    xt = zt.to(dtype).requires_grad_(True)
    xp = torch.tensor(p, dtype=dtype, requires_grad=True)
    loss = clip_loss(xi, xt, xp)
    loss.backward()
    return loss.detach(), xi.grad, xt.grad, xp.grad


def relerr(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-3))


def case(key, zi, zt, p):
    p = float(torch.tensor(p, dtype=torch.float32))  # the fp32 value the C test uses
    loss, dzi, dzt, dp = grads(zi, zt, p, torch.float64)
    ex = explicit(zi.double(), zt.double(), p)
    assert abs(ex - loss) <= 1e-12 * max(1.0, abs(float(loss))), key
    l32, dzi32, dzt32, dp32 = grads(zi, zt, p, torch.float32)
    errs = [relerr(l32, loss), relerr(dzi32, dzi), relerr(dzt32, dzt), relerr(dp32, dp)]
    assert max(errs) < 1e-3, (key, errs)
    print(f"{key}: B={zi.shape[0]} d={zi.shape[1]} p={p:.6g} loss={float(loss):.6g} "
          f"dp={float(dp):.6g}; torch fp32 rel. err loss {errs[0]:.2g} dzi {errs[1]:.2g} "
          f"dzt {errs[2]:.2g} dp {errs[3]:.2g}")
    t[f"{key}_zi"] = zi
    t[f"{key}_zt"] = zt
    t[f"{key}_p"] = torch.tensor([p])
    t[f"{key}_loss"] = loss.reshape(1)
    t[f"{key}_dzi"] = dzi
    t[f"{key}_dzt"] = dzt
    t[f"{key}_dp"] = dp.reshape(1)
    t[f"{key}_t32err"] = torch.tensor(errs)


# Odd shapes, OpenCLIP's initial scale 1/0.07; unit scale; round shape.
case("b3", *features(3, 5, 10.0), math.log(1 / 0.07))
case("b7", *features(7, 13, 0.5), 0.0)
case("b16", *features(16, 32, 2.0), math.log(1 / 0.07))
# Largest scale allowed by the clamp (logit_scale 100): logits in [-100, 100].
case("s100", *features(16, 32, 3.0), math.log(100.0))
# Same scale, confident positives (loss ~ 1e-8: P_ii ~ 1, G_ii is a cancellation).
case("s100easy", *features(16, 32, 1.5), math.log(100.0))
# Beyond the clamp (scale e^6 = 403): max-shifted softmaxes must not overflow.
case("huge", *features(7, 8, 1.0), 6.0)
# Smallest batch, d = 1 (features are +-1).
case("b2", *features(2, 1, 1.0), 1.0)

save("clip_loss", t, {"generator": "tests/ref/gen_clip_loss.py", "torch": torch.__version__})
