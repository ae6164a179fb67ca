"""tests/ref/gen_vit.py — references for vision/vit.c (open_clip's / OpenAI CLIP's
VisionTransformer: conv1 patch embedding (stride p, no bias), class token, positional embedding,
ln_pre, pre-LN non-causal transformer, ln_post on the class token, x @ proj).

The tower is rebuilt here in plain torch with open_clip's module names (open_clip is not
installed for Debian's python): conv1, class_embedding, positional_embedding, ln_pre,
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
import torch.nn as nn

import refutil

S, W, L, E, B = 16, 32, 2, 16, 2


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Module):
    def __init__(self, quick):
        super().__init__()
        self.c_fc = nn.Linear(W, 4 * W)
        self.gelu = QuickGELU() if quick else nn.GELU()
        self.c_proj = nn.Linear(4 * W, W)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, heads, quick):
        super().__init__()
        self.ln_1 = nn.LayerNorm(W)
        self.attn = nn.MultiheadAttention(W, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(W)
        self.mlp = Mlp(quick)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, heads, quick):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(heads, quick) for _ in range(L)])

    def forward(self, x):
        for r in self.resblocks:
            x = r(x)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, patch, heads, quick):
        super().__init__()
        g = S // patch
        self.conv1 = nn.Conv2d(3, W, patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(W))
        self.positional_embedding = nn.Parameter(torch.empty(g * g + 1, W))
        self.ln_pre = nn.LayerNorm(W)
        self.transformer = Transformer(heads, quick)
        self.ln_post = nn.LayerNorm(W)
        self.proj = nn.Parameter(torch.empty(W, E))

    def forward(self, img):  # open_clip: final_ln_after_pool=False, pool_type "tok"
        x = self.conv1(img)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        x = self.ln_post(x)
        return x[:, 0] @ self.proj


def main():
    out = {}
    for p, patch, heads, quick, seed in [("p4", 4, 2, False, 100), ("p8", 8, 4, True, 300)]:
        m = VisionTransformer(patch, heads, quick)
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
