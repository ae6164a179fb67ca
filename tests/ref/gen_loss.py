"""Reference for tests/test_loss.c: torch.nn.functional.cross_entropy (mean reduction,
label_smoothing) forward, per-row losses (reduction='none'), softmax probabilities, and the
gradient of L = dloss * loss with respect to the logits.
Run: cd tests/ref && /usr/bin/python3 gen_loss.py  -> data/loss.safetensors

Per case <k>: <k>_logits (N,V), <k>_targets int32 (N), <k>_ls and <k>_dloss (scalars),
<k>_loss (scalar), <k>_losses (N), <k>_probs (N,V), <k>_dlogits (N,V).
The references are computed by torch in float64 from the fp32 inputs (so they carry no fp32
rounding of their own), after checking that torch's fp32 result agrees.
"""
import torch
import torch.nn.functional as F

from refutil import rand, save

t = {}
g = torch.Generator().manual_seed(3)


def case(key, logits, targets, ls, dloss):
    x = logits.double().requires_grad_(True)
    tl = targets.long()
    loss = F.cross_entropy(x, tl, label_smoothing=ls)
    (loss * dloss).backward()
    loss32 = F.cross_entropy(logits, tl, label_smoothing=ls)
    assert abs(loss32.item() - loss.item()) <= 1e-5 * max(1.0, abs(loss.item())), key
    t[f"{key}_logits"] = logits
    t[f"{key}_targets"] = targets.to(torch.int32)
    t[f"{key}_ls"] = torch.tensor([ls])
    t[f"{key}_dloss"] = torch.tensor([dloss])
    t[f"{key}_loss"] = loss.detach().reshape(1)
    t[f"{key}_losses"] = F.cross_entropy(x.detach(), tl, label_smoothing=ls, reduction="none")
    t[f"{key}_probs"] = torch.softmax(x.detach(), dim=1)
    t[f"{key}_dlogits"] = x.grad


def targets(n, v):
    return torch.randint(0, v, (n,), generator=g, dtype=torch.int32)


# Odd shape, moderate logits; with and without label smoothing.
odd = rand(7, 13, seed=1, lo=-4.0, hi=4.0)
odd_t = targets(7, 13)
case("odd", odd, odd_t, 0.0, 0.73)
case("odd_ls", odd, odd_t, 0.1, 0.73)

# Large logits (+-80): a naive exp overflows/underflows; targets both at and away from the max.
big = rand(7, 13, seed=2, lo=-80.0, hi=80.0)
big_t = targets(7, 13)
big_t[0] = int(big[0].argmax())
big_t[1] = int(big[1].argmin())
case("large", big, big_t, 0.0, 1.0)
case("large_ls", big, big_t, 0.1, 1.0)

# CLIP InfoNCE image->text: logits = 100 * cos-sim(img, txt) of B = 16, targets = arange.
img = F.normalize(rand(16, 8, seed=3), dim=1)
txt = F.normalize(img + 0.5 * rand(16, 8, seed=4), dim=1)
clip = (100.0 * img.double() @ txt.double().t()).float()  # float64 product: BLAS-independent
case("clip", clip, torch.arange(16, dtype=torch.int32), 0.0, 0.5)

# Round shape with smoothing.
case("round", rand(32, 100, seed=5, lo=-3.0, hi=3.0), targets(32, 100), 0.1, 1.0)

save("loss", t, {"generator": "tests/ref/gen_loss.py", "torch": torch.__version__})
