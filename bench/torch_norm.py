"""bench/torch_norm.py — PyTorch peers of bench/bench_norm.c (same names and shapes): one
F.layer_norm / F.batch_norm(training=True) forward + backward, grads of input, weight, bias."""
import torch
import torch.nn.functional as F


def _tensors(shape, C):
    x = (torch.rand(shape) * 2 - 1).requires_grad_(True)
    w = (torch.rand(C) * 2 - 1).requires_grad_(True)
    b = (torch.rand(C) * 2 - 1).requires_grad_(True)
    g = torch.rand(shape) * 2 - 1
    return x, w, b, g


def _clear(*ts):
    for t in ts:
        t.grad = None


def layernorm(N, C):
    x, w, b, g = _tensors((N, C), C)

    def fn():
        _clear(x, w, b)
        F.layer_norm(x, (C,), w, b, 1e-5).backward(g)
    return fn


def batchnorm(B, C, H, W):
    x, w, b, g = _tensors((B, C, H, W) if H * W > 1 else (B, C), C)
    rm, rv = torch.zeros(C), torch.ones(C)

    def fn():
        _clear(x, w, b)
        F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5).backward(g)
    return fn


def cases():
    return [
        ("layernorm_6304x768", layernorm(32 * 197, 768)),
        ("layernorm_2464x512", layernorm(32 * 77, 512)),
        ("batchnorm2d_train_32x64x56x56", batchnorm(32, 64, 56, 56)),
        ("batchnorm2d_train_32x256x56x56", batchnorm(32, 256, 56, 56)),
        ("batchnorm2d_train_32x512x28x28", batchnorm(32, 512, 28, 28)),
        ("batchnorm2d_train_32x2048x7x7", batchnorm(32, 2048, 7, 7)),
        ("batchnorm1d_train_256x2048", batchnorm(256, 2048, 1, 1)),
    ]
