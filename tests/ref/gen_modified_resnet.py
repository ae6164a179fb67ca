"""tests/ref/gen_modified_resnet.py — references for vision/modified_resnet.c (OpenAI CLIP's
ModifiedResNet, open_clip module names).

Plain-torch copy of CLIP model.py's Bottleneck / AttentionPool2d / ModifiedResNet (same module
names, so the state_dict keys equal CLIP's / open_clip's). Training-mode forward, loss
L = sum(out * wgt), backward. Stored per case <p>: every state_dict entry "<p>.<key>" before the
step (non-default BN state), "<p>.inp", "<p>.wgt", "<p>.out", "<p>.grad.<key>" for every
parameter, "<p>.dinp", "<p>.after.<key>" for the running stats after the step.

Run: cd tests/ref && /usr/bin/python3 gen_modified_resnet.py
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

import refutil


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = None
        self.stride = stride
        if stride > 1 or inplanes != planes * Bottleneck.expansion:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, stride=1, bias=False)),
                ("1", nn.BatchNorm2d(planes * self.expansion))]))

    def forward(self, x):
        identity = x
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.avgpool(out)
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.act3(out)


class AttentionPool2d(nn.Module):
    def __init__(self, spacial_dim, embed_dim, num_heads, output_dim=None):
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(spacial_dim ** 2 + 1, embed_dim) / embed_dim ** 0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads

    def forward(self, x):
        x = x.flatten(start_dim=2).permute(2, 0, 1)  # NCHW -> (HW)NC
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # (HW+1)NC
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        x, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1],
            num_heads=self.num_heads, q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=self.training, need_weights=False)
        return x.squeeze(0)


class ModifiedResNet(nn.Module):
    def __init__(self, layers, output_dim, heads, image_size=224, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.act3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        embed_dim = width * 32
        self.attnpool = AttentionPool2d(image_size // 32, embed_dim, heads, output_dim)

    def _make_layer(self, planes, blocks, stride=1):
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        for _ in range(1, blocks):
            layers.append(Bottleneck(self._inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.act3(self.bn3(self.conv3(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


def case(p, layers, width, heads, out_dim, B, S, seed, out):
    torch.manual_seed(seed)
    m = ModifiedResNet(layers, out_dim, heads, S, width)
    with torch.no_grad():  # non-default BN state so the test sees every term
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    m.train()
    sd = {k: v.clone() for k, v in m.state_dict().items() if "num_batches_tracked" not in k}
    x = refutil.rand(B, 3, S, S, seed=seed + 1).requires_grad_(True)
    y = m(x)
    wgt = refutil.rand(*y.shape, seed=seed + 2)
    (y * wgt).sum().backward()
    for k, v in sd.items():
        out[p + "." + k] = v
    out[p + ".inp"] = x.detach()
    out[p + ".wgt"] = wgt
    out[p + ".out"] = y.detach()
    out[p + ".dinp"] = x.grad
    for k, prm in m.named_parameters():
        out[p + ".grad." + k] = prm.grad
    for k, v in m.state_dict().items():
        if "running_" in k:
            out[p + ".after." + k] = v


def main():
    out = {}
    # Width 2 (stem 1,1,2; embed 64): width 8 would make the file 5.6 MB (attnpool alone is
    # 4 x 256^2 floats, stored as values and grads), width 4 still 1.6 MB.
    # 32x32 -> final 1x1 (HW = 1: two tokens), 2 heads (head dim 32), output 16. Batch 4: with
    # B = 2 layer4's BN normalises over 2 values and torch's own fp32 grads differ from fp64 by
    # 3.5e-3 on conv1.weight (1.4e-4 at B = 4).
    case("s32", [1, 1, 1, 1], 2, 2, 16, 4, 32, 1, out)
    # 64x64 -> final 2x2 (HW = 4: five tokens), 4 heads (head dim 16), output 12.
    case("s64", [1, 1, 1, 1], 2, 4, 12, 2, 64, 2, out)
    refutil.save("modified_resnet", out)


if __name__ == "__main__":
    main()
