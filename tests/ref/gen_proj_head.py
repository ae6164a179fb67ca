"""tests/ref/gen_proj_head.py — references for vision/proj_head.c (SimCLR/SogCLR projection MLP).

The head is built exactly as the SogCLR repo's builder (MoCo-v3 `_build_mlp`, last_bn=True):
nn.Sequential of Linear(bias=False) [+ BatchNorm1d + ReLU] per hidden layer, the last Linear
followed by BatchNorm1d(affine=False). State_dict keys are "0.weight", "1.weight", ...,
"4.running_var" (2 layers). Stored per case <p>: the state_dict before the step (random
non-default BN affine params and running stats) as "<p>.<key>", "<p>.inp", "<p>.wgt",
"<p>.out" (training-mode forward), "<p>.grad.<key>" for every parameter, "<p>.dinp" (gradients of
L = sum(out * wgt)), "<p>.after.<key>" for the running stats after the step, and an eval-mode
forward/backward with the updated running stats: "<p>.eval_out", "<p>.eval_dinp",
"<p>.eval_grad.<key>" (fresh grads).

Run: cd tests/ref && /usr/bin/python3 gen_proj_head.py
"""
import torch
import torch.nn as nn

import refutil


def build_mlp(num_layers, input_dim, mlp_dim, output_dim):
    """SogCLR / MoCo-v3 builder, last_bn=True."""
    mlp = []
    for l in range(num_layers):
        dim1 = input_dim if l == 0 else mlp_dim
        dim2 = output_dim if l == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if l < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        else:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


def case(p, L, B, din, dh, dout, seed, out):
    torch.manual_seed(seed)
    m = build_mlp(L, din, dh, dout)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                if mod.affine:
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    sd = {k: v.clone() for k, v in m.state_dict().items() if "num_batches_tracked" not in k}
    for k, v in sd.items():
        out[p + "." + k] = v
    x = refutil.rand(B, din, seed=seed + 1).requires_grad_(True)
    wgt = refutil.rand(B, dout, seed=seed + 2)
    m.train()
    y = m(x)
    (y * wgt).sum().backward()
    out[p + ".inp"] = x.detach().clone()
    out[p + ".wgt"] = wgt
    out[p + ".out"] = y.detach()
    out[p + ".dinp"] = x.grad.clone()
    for k, prm in m.named_parameters():
        out[p + ".grad." + k] = prm.grad.clone()
    for k, v in m.state_dict().items():
        if "running_" in k:
            out[p + ".after." + k] = v.clone()
    m.eval()
    m.zero_grad()
    x.grad = None
    y = m(x)
    (y * wgt).sum().backward()
    out[p + ".eval_out"] = y.detach()
    out[p + ".eval_dinp"] = x.grad
    for k, prm in m.named_parameters():
        out[p + ".eval_grad." + k] = prm.grad


def main():
    out = {}
    # SogCLR default structure (2 layers) at odd-ish small dims.
    case("odd", 2, 6, 12, 16, 8, 1, out)
    # MoCo-v3 style 3 layers at round dims.
    case("round", 3, 16, 64, 32, 16, 2, out)
    # 2 layers, odd batch and dims.
    case("two", 2, 5, 7, 9, 3, 3, out)
    refutil.save("proj_head", out)


if __name__ == "__main__":
    main()
