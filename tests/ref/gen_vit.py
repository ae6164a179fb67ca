"""tests/ref/gen_vit.py — references for vision/vit.c (open_clip's / OpenAI CLIP's
VisionTransformer: conv1 patch embedding (stride p, no bias), class token, positional embedding,
ln_pre, pre-LN non-causal transformer, ln_post on the class token, x @ proj).

The tower is torch_models.VisionTransformer (plain torch with open_clip's module names; open_clip
is not installed for Debian's python): conv1, class_embedding, positional_embedding, ln_pre,
transformer.resblocks.<i>.{ln_1,attn (nn.MultiheadAttention),ln_2,mlp.c_fc,mlp.c_proj},
ln_post, proj. Image B=2 x 3 x 16 x 16, width 32, 2 layers, E=16. Two cases <p>:
  "p4": patch 4 (16 patches, T=17), 2 heads, exact GELU;
  "p8": patch 8 (4 patches, T=5), 4 heads, QuickGELU.
Per case: "<p>.sd.<key>" (random state_dict, every parameter non-default), "<p>.img" (B,3,16,16),
"<p>.wgt" (B,E), "<p>.out" (B,E), "<p>.grad.<key>" for every parameter and "<p>.dimg", the
gradients of L = sum(out * wgt).

Run: cd tests/ref && /usr/bin/python3 gen_vit.py
"""
import torch

import refutil
import torch_models as tm

S, W, L, E, B = 16, 32, 2, 16, 2


def main():
    out = {}
    for p, patch, heads, quick, seed in [("p4", 4, 2, False, 100), ("p8", 8, 4, True, 300)]:
        m = tm.VisionTransformer(S, patch, W, L, heads, E, quick)
        with torch.no_grad():  # every parameter random and non-default (biases, LN affine)
            for i, (k, prm) in enumerate(m.named_parameters()):
                prm.copy_(refutil.rand(*prm.shape, seed=seed + i, lo=-0.3, hi=0.3))
                if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or k.startswith(
                        "ln_p") and k.endswith("weight"):
                    prm.add_(1.0)
        m.train()
        img = refutil.rand(B, 3, S, S, seed=seed + 90).requires_grad_(True)
        y = m(img)
        wgt = refutil.rand(*y.shape, seed=seed + 91)
        (y * wgt).sum().backward()
        for k, v in m.state_dict().items():
            out[p + ".sd." + k] = v.clone()
        out[p + ".img"] = img.detach()
        out[p + ".wgt"] = wgt
        out[p + ".out"] = y.detach()
        out[p + ".dimg"] = img.grad
        for k, prm in m.named_parameters():
            out[p + ".grad." + k] = prm.grad
    refutil.save("vit", out)


if __name__ == "__main__":
    main()
