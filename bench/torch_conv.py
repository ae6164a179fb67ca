"""PyTorch peer of bench/bench_conv.c: conv2d and pooling forward+backward, same case names and
shapes (see bench/torch_peer.py). Inputs and weights require grad; each fn runs forward, then
backward with a fixed upstream gradient, like the C case."""
import torch
import torch.nn.functional as F


def _conv(B, C, H, OC, K, stride, pad):
    x = torch.rand(B, C, H, H).mul_(2).sub_(1).requires_grad_()
    w = torch.rand(OC, C, K, K).mul_(2).sub_(1).requires_grad_()
    OH = (H + 2 * pad - K) // stride + 1
    g = torch.rand(B, OC, OH, OH).mul_(2).sub_(1)

    def fn():
        x.grad = None
        w.grad = None
        F.conv2d(x, w, None, stride, pad).backward(g)
    return fn


def _pool(op, B, C, H, OH):
    x = torch.rand(B, C, H, H).mul_(2).sub_(1).requires_grad_()
    g = torch.rand(B, C, OH, OH).mul_(2).sub_(1)

    def fn():
        x.grad = None
        op(x).backward(g)
    return fn


def cases():
    return [
        ("conv3x3_64x56_b16", _conv(16, 64, 56, 64, 3, 1, 1)),
        ("conv3x3_128x28_b32", _conv(32, 128, 28, 128, 3, 1, 1)),
        ("conv3x3_256x14_b32", _conv(32, 256, 14, 256, 3, 1, 1)),
        ("conv1x1_256to64x56_b16", _conv(16, 256, 56, 64, 1, 1, 0)),
        ("conv7x7s2_3to64x224_b8", _conv(8, 3, 224, 64, 7, 2, 3)),
        ("conv16x16s16_3to768x224_b16", _conv(16, 3, 224, 768, 16, 16, 0)),
        ("maxpool3x3s2_64x112_b32",
         _pool(lambda x: F.max_pool2d(x, 3, 2, 1), 32, 64, 112, 56)),
        ("avgpool2x2s2_256x56_b32", _pool(lambda x: F.avg_pool2d(x, 2, 2), 32, 256, 56, 28)),
        ("adaptive_avgpool_2048x7_b32",
         _pool(lambda x: F.adaptive_avg_pool2d(x, 1), 32, 2048, 7, 1)),
    ]
