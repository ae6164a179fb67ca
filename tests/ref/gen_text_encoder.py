"""tests/ref/gen_text_encoder.py — references for nn/transformer.c and text/text_encoder.c
(open_clip's text tower: TextTransformer with ResidualAttentionBlock, pre-LN, causal mask,
argmax (EOT) pooling, x @ text_projection).

The tower is torch_models.TextTransformer (plain torch with open_clip's module names; open_clip
is not installed for Debian's python): token_embedding, positional_embedding,
transformer.resblocks.<i>.{ln_1,attn (nn.MultiheadAttention),ln_2,mlp.c_fc,mlp.c_proj},
ln_final, text_projection. One random state_dict "sd.<key>" (V=64, T=8, C=32, 2 layers, E=16)
is shared by two cases that differ only in the head count and the MLP activation:
  "h2": 2 heads, exact GELU;   "h4": 4 heads, QuickGELU.
Per case <p>: "<p>.ids" (B=3, T) int64 with the EOT token (id 63, the highest) at positions
7, 3, 0 (zeros after it), "<p>.wgt" (B,E), "<p>.out" (B,E) and "<p>.grad.<key>" for every
parameter, gradients of L = sum(out * wgt).

Run: cd tests/ref && /usr/bin/python3 gen_text_encoder.py
"""
import torch

import refutil
import torch_models as tm

V, T, C, L, E, B = 64, 8, 32, 2, 16, 3


def main():
    torch.manual_seed(0)
    base = tm.TextTransformer(T, V, C, 2, L, E, False)
    with torch.no_grad():  # every parameter random and non-default (biases, LN affine)
        for i, (k, p) in enumerate(base.named_parameters()):
            p.copy_(refutil.rand(*p.shape, seed=100 + i, lo=-0.3, hi=0.3))
            if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or k == "ln_final.weight":
                p.add_(1.0)
    sd = {k: v.clone() for k, v in base.state_dict().items()}
    out = {"sd." + k: v for k, v in sd.items()}
    ids = torch.randint(1, V - 1, (B, T), generator=torch.Generator().manual_seed(5))
    for b, pos in enumerate([T - 1, 3, 0]):
        ids[b, pos] = V - 1
        ids[b, pos + 1:] = 0
    for p, heads, quick in [("h2", 2, False), ("h4", 4, True)]:
        m = tm.TextTransformer(T, V, C, heads, L, E, quick)
        m.load_state_dict(sd)
        m.train()
        y = m(ids)
        wgt = refutil.rand(*y.shape, seed=11 + heads)
        (y * wgt).sum().backward()
        out[p + ".ids"] = ids
        out[p + ".wgt"] = wgt
        out[p + ".out"] = y.detach()
        for k, prm in m.named_parameters():
            out[p + ".grad." + k] = prm.grad
    refutil.save("text_encoder", out)


if __name__ == "__main__":
    main()
