"""tests/ref/gen_modified_resnet.py — references for vision/modified_resnet.c (OpenAI CLIP's
ModifiedResNet, open_clip module names).

torch_models.ModifiedResNet: a plain-torch copy of CLIP model.py's Bottleneck / AttentionPool2d /
ModifiedResNet (same module names, so the state_dict keys equal CLIP's / open_clip's).
Training-mode forward, loss L = sum(out * wgt), backward. Stored per case <p>: every state_dict
entry "<p>.<key>" before the step (non-default BN state), "<p>.inp", "<p>.wgt", "<p>.out",
"<p>.grad.<key>" for every parameter, "<p>.dinp", "<p>.after.<key>" for the running stats after
the step.

Run: cd tests/ref && /usr/bin/python3 gen_modified_resnet.py
"""
import torch
import torch.nn as nn

import refutil
from torch_models import ModifiedResNet


def case(p, layers, width, heads, out_dim, B, S, seed, out):
    torch.manual_seed(seed)
    m = ModifiedResNet(layers, out_dim, heads, S, width)
    with torch.no_grad():  # non-default BN state so the test sees every term
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    m.train()
    sd = {k: v.clone() for k, v in m.state_dict().items() if "num_batches_tracked" not in k}
    x = refutil.rand(B, 3, S, S, seed=seed + 1).requires_grad_(True)
    y = m(x)
    wgt = refutil.rand(*y.shape, seed=seed + 2)
    (y * wgt).sum().backward()
    for k, v in sd.items():
        out[p + "." + k] = v
    out[p + ".inp"] = x.detach()
    out[p + ".wgt"] = wgt
    out[p + ".out"] = y.detach()
    out[p + ".dinp"] = x.grad
    for k, prm in m.named_parameters():
        out[p + ".grad." + k] = prm.grad
    for k, v in m.state_dict().items():
        if "running_" in k:
            out[p + ".after." + k] = v


def main():
    out = {}
    # Width 2 (stem 1,1,2; embed 64): width 8 would make the file 5.6 MB (attnpool alone is
    # 4 x 256^2 floats, stored as values and grads), width 4 still 1.6 MB.
    # 32x32 -> final 1x1 (HW = 1: two tokens), 2 heads (head dim 32), output 16. Batch 4: with
    # B = 2 layer4's BN normalises over 2 values and torch's own fp32 grads differ from fp64 by
    # 3.5e-3 on conv1.weight (1.4e-4 at B = 4).
    case("s32", [1, 1, 1, 1], 2, 2, 16, 4, 32, 1, out)
    # 64x64 -> final 2x2 (HW = 4: five tokens), 4 heads (head dim 16), output 12.
    case("s64", [1, 1, 1, 1], 2, 4, 12, 2, 64, 2, out)
    refutil.save("modified_resnet", out)


if __name__ == "__main__":
    main()
