"""bench/torch_matmul.py — PyTorch peers of bench/bench_matmul.c (same case names and shapes).

Each fn runs one forward and one backward: F.linear (with bias), torch.bmm, and the attention
core as nn.MultiheadAttention computes it on CPU in torch 1.13 (no fused CPU SDPA there): heads
split from qkv, q @ k^T * scale, masked_fill(-inf) for the causal text tower, softmax, @ v,
heads merged. The in/out projections are not part of the attention case (they are linear cases).
"""
import torch
import torch.nn.functional as F


def _leaf(*shape):
    return torch.empty(*shape).uniform_(-1, 1).requires_grad_()


def _linear(n, c, oc):
    x, w, b, g = _leaf(n, c), _leaf(oc, c), _leaf(oc), torch.empty(n, oc).uniform_(-1, 1)

    def fn():
        F.linear(x, w, b).backward(g)
        x.grad = w.grad = b.grad = None
    return fn


def _bmm(batch, m, k, n):
    a, b, g = _leaf(batch, m, k), _leaf(batch, k, n), torch.empty(batch, m, n).uniform_(-1, 1)

    def fn():
        torch.bmm(a, b).backward(g)
        a.grad = b.grad = None
    return fn


def _attention(bsz, t, c, nh, causal):
    qkv, g = _leaf(bsz, t, 3 * c), torch.empty(bsz, t, c).uniform_(-1, 1)
    hs = c // nh
    mask = torch.ones(t, t, dtype=torch.bool).triu(1) if causal else None

    def fn():
        q, k, v = (x.view(bsz, t, nh, hs).transpose(1, 2) for x in qkv.split(c, dim=-1))
        s = q @ k.transpose(-2, -1) * hs ** -0.5
        if mask is not None:
            s = s.masked_fill(mask, float("-inf"))
        y = (s.softmax(-1) @ v).transpose(1, 2).reshape(bsz, t, c)
        y.backward(g)
        qkv.grad = None
    return fn


def cases():
    return [
        ("linear_vit_qkv_6304x768x2304", _linear(32 * 197, 768, 2304)),
        ("linear_vit_fc1_6304x768x3072", _linear(32 * 197, 768, 3072)),
        ("linear_vit_fc2_6304x3072x768", _linear(32 * 197, 3072, 768)),
        ("linear_text_fc1_2464x512x2048", _linear(32 * 77, 512, 2048)),
        ("bmm_vit_scores_384x197x64x197", _bmm(32 * 12, 197, 64, 197)),
        ("bmm_vit_attv_384x197x197x64", _bmm(32 * 12, 197, 197, 64)),
        ("attention_vit_B32_T197_C768_NH12", _attention(32, 197, 768, 12, False)),
        ("attention_text_B32_T77_C512_NH8_causal", _attention(32, 77, 512, 8, True)),
    ]
