"""Reference for tests/test_norm.c: LayerNorm and BatchNorm2d/1d forward and backward.

Run: cd tests/ref && /usr/bin/python3 gen_norm.py  ->  data/norm.safetensors

Every case stores inputs, parameters, outputs (with torch's saved mean / rstd) and the gradients
of L = sum(out * wgt), wgt a stored fixed random tensor (so the C test uses dout = wgt).

LayerNorm cases <name>.*: x(N,C), w(C), b(C) [affine only], out, mean(N), rstd(N), wgt, dx,
dw, db [affine only]. Computed with torch.native_layer_norm and autograd.

BatchNorm cases <name>.*: x(B,C,H,W) (HW = 1: x(B,C), BatchNorm1d), gamma/beta [affine only],
rm0/rv0 (initial running stats), out, mean/rstd (C) and the running stats after the calls,
wgt, dx, dgamma, dbeta. Training cases call the module twice (x0 then x, both stored) to check
the running-stat update chain; the gradient is of the second call. Eval cases call it once with
the module in eval() mode (normalised with the running stats).
"""
import torch
import torch.nn.functional as F

from refutil import rand, save

t = {}


def layernorm_case(name, N, C, affine, seed, offset=0.0, eps=1e-5):
    x = (rand(N, C, seed=seed) * 1.5 + offset).requires_grad_(True)
    w = (rand(C, seed=seed + 1, lo=0.5, hi=1.5)).requires_grad_(True) if affine else None
    b = (rand(C, seed=seed + 2, lo=-0.5, hi=0.5)).requires_grad_(True) if affine else None
    out, mean, rstd = torch.native_layer_norm(x, [C], w, b, eps)
    ref = F.layer_norm(x, (C,), w, b, eps)
    assert torch.allclose(out, ref)
    wgt = rand(N, C, seed=seed + 3)
    (out * wgt).sum().backward()
    t[f"{name}.x"] = x
    t[f"{name}.out"] = out
    t[f"{name}.mean"] = mean.reshape(N)
    t[f"{name}.rstd"] = rstd.reshape(N)
    t[f"{name}.wgt"] = wgt
    t[f"{name}.dx"] = x.grad
    if affine:
        t[f"{name}.w"], t[f"{name}.b"] = w, b
        t[f"{name}.dw"], t[f"{name}.db"] = w.grad, b.grad


def batchnorm_case(name, B, C, H, W, affine, momentum, training, seed, offset=0.0, eps=1e-5):
    shape = (B, C, H, W) if H * W > 1 else (B, C)
    bn = (torch.nn.BatchNorm2d if H * W > 1 else torch.nn.BatchNorm1d)(
        C, eps=eps, momentum=momentum, affine=affine)
    with torch.no_grad():
        bn.running_mean.copy_(rand(C, seed=seed + 4, lo=-0.5, hi=0.5))
        bn.running_var.copy_(rand(C, seed=seed + 5, lo=0.5, hi=2.0))
        if affine:
            bn.weight.copy_(rand(C, seed=seed + 1, lo=0.5, hi=1.5))
            bn.bias.copy_(rand(C, seed=seed + 2, lo=-0.5, hi=0.5))
    t[f"{name}.rm0"] = bn.running_mean.clone()
    t[f"{name}.rv0"] = bn.running_var.clone()
    x = (rand(*shape, seed=seed) * 1.5 + offset).requires_grad_(True)
    bn.train(training)
    if training:
        x0 = rand(*shape, seed=seed + 6) * 2.0 + 0.3
        with torch.no_grad():
            bn(x0)
        t[f"{name}.x0"] = x0
        _, mean, rstd = torch.native_batch_norm(x.detach(), bn.weight, bn.bias, None, None,
                                                True, momentum, eps)
    else:
        mean = bn.running_mean.clone()
        rstd = 1.0 / torch.sqrt(bn.running_var + eps)
    out = bn(x)
    wgt = rand(*shape, seed=seed + 3)
    (out * wgt).sum().backward()
    t[f"{name}.x"] = x
    t[f"{name}.out"] = out
    t[f"{name}.mean"] = mean
    t[f"{name}.rstd"] = rstd
    t[f"{name}.rm"] = bn.running_mean
    t[f"{name}.rv"] = bn.running_var
    t[f"{name}.wgt"] = wgt
    t[f"{name}.dx"] = x.grad
    if affine:
        t[f"{name}.gamma"], t[f"{name}.beta"] = bn.weight, bn.bias
        t[f"{name}.dgamma"], t[f"{name}.dbeta"] = bn.weight.grad, bn.bias.grad


layernorm_case("ln_odd", 7, 13, True, seed=10)
layernorm_case("ln_odd_noaff", 7, 13, False, seed=20)
layernorm_case("ln_round", 16, 64, True, seed=30, offset=2.0, eps=1e-6)
layernorm_case("ln_round_noaff", 16, 64, False, seed=40)

batchnorm_case("bn_odd", 4, 3, 5, 7, True, 0.1, True, seed=100)
batchnorm_case("bn_round", 8, 16, 4, 4, True, 0.3, True, seed=110, offset=3.0)
batchnorm_case("bn_noaff", 4, 3, 5, 7, False, 0.3, True, seed=120)
batchnorm_case("bn1d", 6, 10, 1, 1, True, 0.1, True, seed=130)
batchnorm_case("bn1d_noaff", 6, 10, 1, 1, False, 0.3, True, seed=140)
batchnorm_case("bn_eval_odd", 4, 3, 5, 7, True, 0.1, False, seed=150)
batchnorm_case("bn_eval_round", 8, 16, 4, 4, False, 0.1, False, seed=160)
batchnorm_case("bn1d_eval", 6, 10, 1, 1, True, 0.1, False, seed=170)

save("norm", t, {"generator": "tests/ref/gen_norm.py", "torch": torch.__version__})
