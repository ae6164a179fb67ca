"""bench/torch_pointwise.py — PyTorch peers of bench/bench_pointwise.c (same names and shapes).

Each fn runs one forward and one backward. Inputs are built once with requires_grad; activation
grads are cleared (x.grad = None) so torch hands its fresh gradient buffer over instead of adding
into an old one (our ops overwrite). The residual add keeps its grads: its backward accumulates
into both branches in torch and in sogclip alike.
"""
import torch
import torch.nn.functional as F

VIT_TOKENS = 32 * 197


def _unary(fn, shape):
    x = torch.rand(*shape).mul_(8.0).sub_(4.0).requires_grad_()
    g = torch.rand(*shape).sub_(0.5)

    def run():
        x.grad = None
        out = fn(x)
        out.backward(g)

    return run


def _quickgelu(x):
    return x * torch.sigmoid(1.702 * x)


def _add(n):
    a = torch.rand(n).requires_grad_()
    b = torch.rand(n).requires_grad_()
    g = torch.rand(n)

    def run():
        out = a + b
        out.backward(g)

    return run


def _dropout(n, p):
    x = torch.rand(n).requires_grad_()
    g = torch.rand(n)

    def run():
        x.grad = None
        out = F.dropout(x, p, training=True)
        out.backward(g)

    return run


def cases():
    mlp = (VIT_TOKENS, 3072)
    return [
        ("act_relu_32x64x112x112", _unary(F.relu, (32, 64, 112, 112))),
        ("act_gelu_32x197x3072", _unary(F.gelu, mlp)),
        ("act_gelu_tanh_32x197x3072", _unary(lambda x: F.gelu(x, approximate="tanh"), mlp)),
        ("act_quickgelu_32x197x3072", _unary(_quickgelu, mlp)),
        ("softmax_75648x197", _unary(lambda x: torch.softmax(x, dim=-1), (32 * 12 * 197, 197))),
        ("add_32x197x768", _add(VIT_TOKENS * 768)),
        ("l2norm_4096x512", _unary(lambda x: F.normalize(x, dim=-1, eps=1e-12), (4096, 512))),
        ("dropout_p0.1_32x197x768", _dropout(VIT_TOKENS * 768, 0.1)),
    ]
