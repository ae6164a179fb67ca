"""Reference for tests/test_attention.c: the multi-head attention core (ops/attention.h).
Run: cd tests/ref && /usr/bin/python3 gen_attention.py  -> data/attention.safetensors

From qkv(B,T,3C) = [q | k | v]: heads (B,NH,T,hs), att = softmax(q k^T / sqrt(hs), causal mask
-inf above the diagonal), y = att @ v, out = y.transpose(1,2).reshape(B,T,C). Gradients by
autograd of L = sum(out * wgt). Every case is cross-checked here against
F.multi_head_attention_forward with identity in/out projections (what nn.MultiheadAttention
computes between its projections). Stored per case <p> = att_B<B>_T<T>_C<C>_NH<NH>_<causal|full>:
  <p>.qkv (B,T,3C), <p>.out (B,T,C), <p>.att (B,NH,T,T), <p>.wgt (B,T,C), <p>.dqkv (B,T,3C)
"""
import torch
import torch.nn.functional as F

from refutil import rand, save

# (B, T, C, NH, causal, qkv scale): the large scales give peaked softmax rows.
CASES = [(2, 5, 12, 3, True, 1.0), (2, 5, 12, 3, False, 1.0), (3, 8, 16, 2, False, 1.0),
         (3, 8, 16, 2, True, 2.0), (2, 77, 32, 4, True, 1.5), (1, 17, 64, 2, False, 4.0),
         (1, 1, 4, 1, True, 1.0), (2, 9, 8, 8, False, 3.0)]


def attention(qkv, nh, causal):
    b, t, c3 = qkv.shape
    c = c3 // 3
    q, k, v = (x.view(b, t, nh, c // nh).transpose(1, 2) for x in qkv.split(c, dim=-1))
    s = q @ k.transpose(-2, -1) * (c // nh) ** -0.5
    if causal:
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    att = s.softmax(-1)
    return (att @ v).transpose(1, 2).reshape(b, t, c), att


def mha_check(qkv, nh, causal, out, att, dqkv, wgt):
    """Same thing through F.multi_head_attention_forward (T,B,E layout, identity projections)."""
    b, t, c3 = qkv.shape
    c = c3 // 3
    x = qkv.detach().clone().requires_grad_()
    q, k, v = (y.transpose(0, 1) for y in x.split(c, dim=-1))
    eye = torch.eye(c)
    mask = torch.full((t, t), float("-inf")).triu(1) if causal else None
    o, w = F.multi_head_attention_forward(
        q, k, v, c, nh, None, None, None, None, False, 0.0, eye, None, training=False,
        need_weights=True, attn_mask=mask, use_separate_proj_weight=True, q_proj_weight=eye,
        k_proj_weight=eye, v_proj_weight=eye, average_attn_weights=False)
    o = o.transpose(0, 1)
    (o * wgt).sum().backward()
    torch.testing.assert_close(o, out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w, att, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(x.grad, dqkv, atol=1e-5, rtol=1e-4)


t = {}
seed = 100
for b, tt, c, nh, causal, scale in CASES:
    p = f"att_B{b}_T{tt}_C{c}_NH{nh}_{'causal' if causal else 'full'}"
    qkv = (rand(b, tt, 3 * c, seed=seed) * scale).requires_grad_()
    wgt = rand(b, tt, c, seed=seed + 1)
    seed += 2
    out, att = attention(qkv, nh, causal)
    (out * wgt).sum().backward()
    mha_check(qkv, nh, causal, out, att, qkv.grad, wgt)
    t.update({f"{p}.qkv": qkv, f"{p}.out": out, f"{p}.att": att, f"{p}.wgt": wgt,
              f"{p}.dqkv": qkv.grad})

save("attention", t, {"generator": "tests/ref/gen_attention.py", "torch": torch.__version__})
