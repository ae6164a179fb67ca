"""tests/ref/torch_models.py — plain-torch rebuilds of the CLIP towers and of open_clip's CLIP
model, with open_clip / torchvision state_dict names (open_clip and torchvision are not
installed for Debian's python). Shared by the reference generators (gen_vit.py,
gen_text_encoder.py, gen_resnet.py, gen_modified_resnet.py, gen_clip.py) and by
bench/torch_clip_step.py.

Modules (names as in open_clip src/open_clip/{transformer,modified_resnet,model}.py and
torchvision/models/resnet.py):
  ResidualAttentionBlock / Transformer  pre-LN blocks: ln_1, attn (nn.MultiheadAttention,
        batch_first), ln_2, mlp.{c_fc, gelu, c_proj}; exact GELU or QuickGELU; optional
        additive attention mask (the causal mask of the text tower)
  VisionTransformer   conv1 (no bias), class_embedding, positional_embedding, ln_pre,
        transformer, ln_post (on the class token), proj
  TextTransformer     token_embedding, positional_embedding, transformer (causal), ln_final,
        pooling at ids.argmax(-1) (the EOT token has the highest id), text_projection
  ResNet              torchvision ResNet (BasicBlock / Bottleneck v1.5), optional CIFAR stem
        (3x3/1 conv, no maxpool), fc (the projection in a CLIP image tower)
  ModifiedResNet      OpenAI CLIP RN: 3-conv stem, anti-aliased Bottleneck, AttentionPool2d
  CLIP                open_clip's CLIP layout: `visual` (image tower) and the text tower's parts
        at top level (transformer, token_embedding, positional_embedding, ln_final,
        text_projection) plus logit_scale (0-dim); encode_image / encode_text L2-normalise.

Constructors consume the global RNG only through torch's default module initialisers (the
generators that seed before building rely on that order); the open_clip / torchvision
initialisations are separate `init_parameters()` methods, which CLIP calls.

clip_from_yaml(path) / clip_from_cfg(dict) build a CLIP from our model config format
(configs/models/*.yaml, keys as model/clip_config.c); unknown keys raise ValueError.
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------
# Transformer (open_clip transformer.py)

class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Module):
    def __init__(self, width, quick, mlp_ratio=4):
        super().__init__()
        self.c_fc = nn.Linear(width, mlp_ratio * width)
        self.gelu = QuickGELU() if quick else nn.GELU()
        self.c_proj = nn.Linear(mlp_ratio * width, width)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, quick):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, quick)

    def forward(self, x, mask=None):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, quick):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, quick) for _ in range(layers)])

    def forward(self, x, mask=None):
        for r in self.resblocks:
            x = r(x, mask)
        return x

    def init_parameters(self):
        """open_clip TextTransformer.init_parameters' block part (std by width and depth)."""
        proj_std = (self.width ** -0.5) * ((2 * self.layers) ** -0.5)
        attn_std = self.width ** -0.5
        fc_std = (2 * self.width) ** -0.5
        for b in self.resblocks:
            nn.init.normal_(b.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(b.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(b.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(b.mlp.c_proj.weight, std=proj_std)


class VisionTransformer(nn.Module):
    """open_clip VisionTransformer (pool_type "tok", final_ln_after_pool False: ln_post is per
    token, so pooling first or last gives the same class-token feature)."""

    def __init__(self, image_size, patch_size, width, layers, heads, output_dim, quick):
        super().__init__()
        g = image_size // patch_size
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(g * g + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, quick)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, output_dim))

    def init_parameters(self):
        """open_clip: scale * randn for class/positional embedding and proj (scale = width^-0.5);
        conv1, attention and MLP keep torch's default initialisation."""
        scale = self.class_embedding.shape[0] ** -0.5
        with torch.no_grad():
            for p in (self.class_embedding, self.positional_embedding, self.proj):
                p.normal_(0.0, scale)

    def forward(self, img):
        x = self.conv1(img)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        x = self.ln_post(x)
        return x[:, 0] @ self.proj


class TextTransformer(nn.Module):
    def __init__(self, context_length, vocab_size, width, heads, layers, output_dim, quick):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.zeros(context_length, width))
        self.transformer = Transformer(width, layers, heads, quick)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.zeros(width, output_dim))
        self.register_buffer("attn_mask", causal_mask(context_length), persistent=False)

    def init_parameters(self):
        """open_clip TextTransformer.init_parameters."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        self.transformer.init_parameters()
        nn.init.normal_(self.text_projection, std=self.transformer.width ** -0.5)

    def forward(self, ids):
        return encode_text_parts(self, ids)


def causal_mask(T):
    """open_clip build_causal_mask: additive float mask, -inf above the diagonal."""
    return torch.full((T, T), float("-inf")).triu_(1)


def encode_text_parts(m, ids):
    """The text tower on any module holding token_embedding, positional_embedding, transformer,
    ln_final, text_projection, attn_mask (TextTransformer, or CLIP where they are top level)."""
    x = m.token_embedding(ids) + m.positional_embedding
    x = m.ln_final(m.transformer(x, m.attn_mask))
    pooled = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]  # open_clip: EOT = max id
    return pooled @ m.text_projection


# ------------------------------------------------------------------------------------------------
# torchvision ResNet (torchvision/models/resnet.py)

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    """torchvision Bottleneck (v1.5: stride on the 3x3), groups 1, width_per_group 64."""
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + idt)


class ResNet(nn.Module):
    """num_classes 0: no fc, the output is the pooled features."""

    def __init__(self, layers, width, num_classes, cifar, bottleneck=False):
        super().__init__()
        if cifar:
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if cifar else nn.MaxPool2d(3, 2, 1)
        cin = width
        for li, n in enumerate(layers):
            planes = width << li
            blocks = []
            for i in range(n):
                stride = 2 if (i == 0 and li > 0) else 1
                if bottleneck:
                    blocks.append(Bottleneck(cin, planes, stride))
                    cin = planes * 4
                else:
                    blocks.append(BasicBlock(cin, planes, stride))
                    cin = planes
            setattr(self, "layer%d" % (li + 1), nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes) if num_classes > 0 else None

    def init_parameters(self):
        """torchvision ResNet.__init__: kaiming_normal_(fan_out, relu) convs, BN 1/0 (fc keeps
        nn.Linear's default)."""
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.constant_(mod.weight, 1)
                nn.init.constant_(mod.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x) if self.fc is not None else x


# ------------------------------------------------------------------------------------------------
# OpenAI CLIP ModifiedResNet (open_clip modified_resnet.py)

class ModifiedBottleneck(nn.Module):
    """CLIP's Bottleneck: all convs stride 1, avgpool after conv2 when stride > 1, downsample =
    AvgPool2d + conv1x1 + BN (module names "-1", "0", "1")."""
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
        if stride > 1 or inplanes != planes * ModifiedBottleneck.expansion:
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
        layers = [ModifiedBottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * ModifiedBottleneck.expansion
        for _ in range(1, blocks):
            layers.append(ModifiedBottleneck(self._inplanes, planes))
        return nn.Sequential(*layers)

    def init_parameters(self):
        """open_clip ModifiedResNet.init_parameters: attnpool projections normal(in^-0.5),
        every block's bn3.weight zero."""
        a = self.attnpool
        std = a.c_proj.in_features ** -0.5
        for lin in (a.q_proj, a.k_proj, a.v_proj, a.c_proj):
            nn.init.normal_(lin.weight, std=std)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for name, p in stage.named_parameters():
                if name.endswith("bn3.weight"):
                    nn.init.zeros_(p)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.act3(self.bn3(self.conv3(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


# ------------------------------------------------------------------------------------------------
# CLIP (open_clip model.py CLIP: text tower parts at top level)

class CLIP(nn.Module):
    def __init__(self, visual, text, init_logit_scale=math.log(1 / 0.07)):
        super().__init__()
        self.visual = visual
        self.transformer = text.transformer
        self.context_length = text.positional_embedding.shape[0]
        self.vocab_size = text.token_embedding.num_embeddings
        self.token_embedding = text.token_embedding
        self.positional_embedding = text.positional_embedding
        self.ln_final = text.ln_final
        self.text_projection = text.text_projection
        self.register_buffer("attn_mask", text.attn_mask, persistent=False)
        self.logit_scale = nn.Parameter(torch.ones([]) * init_logit_scale)

    def encode_image(self, img):
        return F.normalize(self.visual(img), dim=-1)

    def encode_text(self, ids):
        return F.normalize(encode_text_parts(self, ids), dim=-1)

    def forward(self, img, ids):
        return self.encode_image(img), self.encode_text(ids), self.logit_scale.exp()


def wd_exclude(name, p):
    """Parameters without weight decay: open_clip's rule (training/main.py: ndim < 2, bn, ln,
    bias, logit_scale) plus embeddings (token, positional, class), which sogclip never decays
    (model/clip.h; open_clip decays the 2-D embedding tables)."""
    return (p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
            or "embedding" in name)


def adamw_groups(model, weight_decay):
    """open_clip's two AdamW parameter groups (decay / no decay) over trainable parameters."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if wd_exclude(n, p)], "weight_decay": 0.0},
            {"params": [p for n, p in named if not wd_exclude(n, p)],
             "weight_decay": weight_decay}]


# grad_checkpointing (sogclip: recompute transformer blocks in backward) does not change the
# numbers and is accepted and ignored here.
_TOP_KEYS = {"embed_dim", "quick_gelu", "init_logit_scale", "grad_checkpointing", "vision_cfg",
             "text_cfg"}
_VISION_KEYS = {"arch", "image_size", "patch_size", "width", "layers", "head_width",
                "cifar_stem", "bottleneck"}
_TEXT_KEYS = {"context_length", "vocab_size", "width", "heads", "layers"}


def _check_keys(d, allowed, where):
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError("%s: unknown key(s) %s (allowed: %s)" % (where, unknown, sorted(allowed)))


def clip_from_cfg(cfg, init=True):
    """cfg: the parsed model YAML. init: apply the open_clip / torchvision initialisations
    (torch's default module initialisation otherwise)."""
    _check_keys(cfg, _TOP_KEYS, "model config")
    vc, tc = dict(cfg["vision_cfg"]), dict(cfg["text_cfg"])
    _check_keys(vc, _VISION_KEYS, "vision_cfg")
    _check_keys(tc, _TEXT_KEYS, "text_cfg")
    E = int(cfg["embed_dim"])
    quick = bool(cfg.get("quick_gelu", False))
    arch = vc["arch"]
    head_width = int(vc.get("head_width", 64))
    if arch == "vit":
        W = int(vc["width"])
        visual = VisionTransformer(int(vc["image_size"]), int(vc["patch_size"]), W,
                                   int(vc["layers"]), W // head_width, E, quick)
    elif arch == "modified_resnet":
        W = int(vc["width"])
        visual = ModifiedResNet([int(n) for n in vc["layers"]], E, W * 32 // head_width,
                                int(vc["image_size"]), W)
    elif arch == "resnet":  # fc = nn.Linear(features, embed_dim) is the projection
        visual = ResNet([int(n) for n in vc["layers"]], int(vc["width"]), E,
                        bool(vc.get("cifar_stem", False)), bool(vc.get("bottleneck", False)))
    else:
        raise ValueError("vision_cfg.arch: %r (vit | modified_resnet | resnet)" % arch)
    text = TextTransformer(int(tc["context_length"]), int(tc["vocab_size"]), int(tc["width"]),
                           int(tc["heads"]), int(tc["layers"]), E, quick)
    if init:
        visual.init_parameters()
        text.init_parameters()
    return CLIP(visual, text, float(cfg.get("init_logit_scale", math.log(1 / 0.07))))


def load_yaml(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def clip_from_yaml(path, init=True):
    return clip_from_cfg(load_yaml(path), init)
