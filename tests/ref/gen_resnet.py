"""tests/ref/gen_resnet.py — references for vision/resnet.c (torchvision ResNet: BasicBlock and
Bottleneck).

torchvision is not installed for Debian's python, so the ResNet is torch_models.ResNet, rebuilt in
plain torch with torchvision's module names and structure (BasicBlock, Bottleneck, downsample =
Sequential(conv1x1, bn)), so the state_dict keys equal torchvision's. Training-mode forward,
loss L = sum(out * wgt), backward. Stored per config <p>: every state_dict entry "<p>.<key>"
before the step (random non-default BN affine params and running stats), "<p>.inp", "<p>.wgt",
"<p>.out", "<p>.grad.<key>" for every trainable parameter, "<p>.dinp", and "<p>.after.<key>"
for the running stats after the step.

Run: cd tests/ref && /usr/bin/python3 gen_resnet.py
"""
import torch
import torch.nn as nn

import refutil
from torch_models import ResNet


def case(p, layers, width, ncls, cifar, B, H, W, seed, out, bottleneck=False):
    torch.manual_seed(seed)
    m = ResNet(layers, width, ncls, cifar, bottleneck)
    with torch.no_grad():  # non-default BN state so the test sees every term
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    m.train()
    sd = {k: v.clone() for k, v in m.state_dict().items() if "num_batches_tracked" not in k}
    x = refutil.rand(B, 3, H, W, seed=seed + 1).requires_grad_(True)
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
    # CIFAR stem, one block per stage, fc head; odd spatial size 15x13 exercises floor divisions.
    case("cifar", [1, 1, 1, 1], 4, 10, True, 2, 15, 13, 1, out)
    # ImageNet stem (7x7/2 + maxpool) at 48x40 (layer4 still 2x2: BN over 1 value per sample is
    # ill-conditioned), two blocks in stage 1, features out (no fc).
    case("imnet", [2, 1, 1, 1], 4, 0, False, 2, 48, 40, 2, out)
    # Bottleneck (ResNet-50 structure), ImageNet stem at 40x36, fc head with 6 classes.
    case("bneck", [1, 2, 1, 1], 4, 6, False, 2, 40, 36, 3, out, bottleneck=True)
    refutil.save("resnet", out)


if __name__ == "__main__":
    main()
