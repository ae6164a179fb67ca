"""tests/ref/gen_clip.py — whole-model references for model/clip.c: one CLIP training step
(training-mode forward, CLIP InfoNCE loss, backward, one AdamW step) and an eval-mode image
forward, for the three test configs, with open_clip state_dict names.

The model is tests/ref/torch_models.py's CLIP (open_clip's CLIP layout rebuilt in plain torch),
built by clip_from_yaml from tests/data/models/<config>.yaml. Cases <c> (config):
  "vit" (test-vit.yaml), "rn" (test-rn.yaml, ModifiedResNet), "resnet" (test-resnet.yaml).

Per case, in this order:
 1. torch.manual_seed(seed); build with open_clip's / torchvision's initialisation; perturb
    every parameter and BN buffer away from it (generator seed + 1): LayerNorm / BatchNorm
    weights uniform(0.5, 1.5), their biases uniform(-0.2, 0.2), BN running_mean
    uniform(-0.5, 0.5), running_var uniform(0.5, 2); every other parameter (logit_scale
    included) += normal * max(0.25 * std(p), 0.02).
 2. "<c>.sd.<key>"   the state_dict before the step (F32; num_batches_tracked skipped;
                     logit_scale is 0-dim).
    "<c>.img"        (B,3,S,S) F32 normal(0,1), B = 5.
    "<c>.ids"        (B,T) I32: tokens uniform in [1, V-2], the EOT token V-1 at positions
                     5, 3, 5, 0, 6 of rows 0..4, zeros after it (pooling at argmax).
 3. Training mode (BN batch statistics): zi = normalize(visual(img)), zt = normalize(text(ids)),
    logits = exp(logit_scale) * zi @ zt.T, loss = (CE(logits, arange) + CE(logits.T, arange)) / 2,
    loss.backward().
    "<c>.zi", "<c>.zt" (B,E), "<c>.loss" (1,),
    "<c>.grad.<key>"     every trainable parameter (logit_scale included, 0-dim),
    "<c>.bn_after.<key>" BN running_mean / running_var after the forward (momentum 0.1,
                         unbiased batch variance) — cases rn and resnet (ViT has no BN).
 4. One torch.optim.AdamW step (lr 1e-2, betas (0.9, 0.999), eps 1e-8) with open_clip's groups:
    weight_decay 0.1 except where torch_models.wd_exclude (open_clip training/main.py:
    p.ndim < 2 or "bn"/"ln"/"bias"/"logit_scale" in the name) -> 0. So token_embedding.weight,
    positional_embedding, visual.positional_embedding, visual.attnpool.positional_embedding,
    visual.proj, text_projection and every conv / linear weight are decayed.
    "<c>.after.<key>"    every trainable parameter after the step.
    (First step: update = lr * g / (|g| + eps), so elements with |g| near eps — e.g. the
    attention key biases, whose exact gradient is 0 — are ill-conditioned; see the printout.)
 5. "<c>.eval_zi" (B,E): a fresh model loaded with "sd" (the state BEFORE the step), model.eval()
    (BN running statistics), encode_image(img).
 6. Weight exchange sogclip -> torch: when data/clip_sogclip_<c>.safetensors exists (the
    state_dict that sogclip wrote with its own initialisation), it is loaded into a fresh model
    (every key must match; only num_batches_tracked may be missing) and the training-mode
    features for the same img/ids are stored as "<c>.sogclip_init.zi", "<c>.sogclip_init.zt".
    Absent: a note is printed and nothing is stored.

Metadata: B, lr, betas, eps, weight_decay and "<c>.config" (the config path per case).
The printout also gives each case's fp32-vs-fp64 error (same model in double) of zi, zt, loss,
the gradients and of the AdamW result, to size test tolerances.

Run: cd tests/ref && /usr/bin/python3 gen_clip.py
"""
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import refutil
import torch_models as tm

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(HERE, "..", "data", "models")
CASES = [("vit", "test-vit", 100), ("rn", "test-rn", 200), ("resnet", "test-resnet", 300)]
B = 5
EOT_POS = [5, 3, 5, 0, 6]  # all < T-1: the text tower runs only max+1 = 7 of T = 8 tokens
LR, BETAS, EPS, WD = 1e-2, (0.9, 0.999), 1e-8, 0.1


def perturb(m, g):
    norms = (nn.LayerNorm, nn.BatchNorm2d)
    done = set()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, norms):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=g) * 0.4 - 0.2)
                done.update((id(mod.weight), id(mod.bias)))
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
                    mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) * 1.5
                                          + 0.5)
        for _, p in m.named_parameters():
            if id(p) in done:
                continue
            s = float(p.std()) if p.numel() > 1 else 0.0
            p.add_(torch.randn(p.shape, generator=g) * max(0.25 * s, 0.02))


def make_ids(V, T, g):
    ids = torch.randint(1, V - 1, (B, T), generator=g)
    for b, pos in enumerate(EOT_POS):
        pos = pos % T
        ids[b, pos] = V - 1
        ids[b, pos + 1:] = 0
    return ids


def clip_loss(zi, zt, logit_scale):
    logits = logit_scale.exp() * zi @ zt.t()
    lab = torch.arange(zi.shape[0])
    return 0.5 * (F.cross_entropy(logits, lab) + F.cross_entropy(logits.t(), lab))


def train_forward(m, img, ids):
    m.train()
    zi, zt = m.encode_image(img), m.encode_text(ids)
    return zi, zt, clip_loss(zi, zt, m.logit_scale)


def load_sd(m, sd):
    missing, unexpected = m.load_state_dict(sd, strict=False)
    bad = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not bad and not unexpected, "missing %s, unexpected %s" % (bad, unexpected)


def adamw_step(m):
    opt = torch.optim.AdamW(tm.adamw_groups(m, WD), lr=LR, betas=BETAS, eps=EPS)
    opt.step()


def report_fp64(m32, sd, img, ids, zi, zt, loss):
    """The same step in float64; prints the max errors of the fp32 results. m32's parameters
    hold the fp32 'after' values and its .grad the fp32 gradients."""
    m64 = copy.deepcopy(m32).double()
    load_sd(m64, {k: v.double() for k, v in sd.items()})
    for p in m64.parameters():
        p.grad = None
    zi64, zt64, loss64 = train_forward(m64, img.double(), ids)
    loss64.backward()
    print("  fp32 vs fp64: zi %.1e  zt %.1e  loss %.1e" % (
        (zi - zi64).abs().max(), (zt - zt64).abs().max(), abs(loss - loss64.item())))
    worst, worst_k = 0.0, ""
    p32 = dict(m32.named_parameters())
    for k, p in m64.named_parameters():
        e = float((p32[k].grad.double() - p.grad).abs().max() / p.grad.abs().max().clamp_min(1e-30))
        if e > worst:
            worst, worst_k = e, k
    print("  grads: worst max|g32-g64| / max|g64| over tensors = %.1e (%s)" % (worst, worst_k))
    # AdamW from the fp64 gradients vs the stored fp32 result: where the update is unstable.
    adamw_step(m64)
    n_bad, n_all, keys = 0, 0, {}
    for k, p in m64.named_parameters():
        d = (p.detach() - p32[k].detach().double()).abs()
        n_all += d.numel()
        nb = int((d > 1e-5).sum())
        if nb:
            n_bad += nb
            keys[k] = "%d (max %.1e)" % (nb, d.max())
    print("  AdamW after: %d of %d elements differ by > 1e-5 (fp32 vs fp64 gradients): %s" % (
        n_bad, n_all, keys))


def run_case(c, cfg_name, seed, out):
    path = os.path.join(CONFIG_DIR, cfg_name + ".yaml")
    cfg = tm.load_yaml(path)
    torch.manual_seed(seed)
    m = tm.clip_from_cfg(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    perturb(m, g)
    sd = {k: v.clone() for k, v in m.state_dict().items() if "num_batches_tracked" not in k}
    S = cfg["vision_cfg"]["image_size"]
    V, T = cfg["text_cfg"]["vocab_size"], cfg["text_cfg"]["context_length"]
    img = torch.randn(B, 3, S, S, generator=g)
    ids = make_ids(V, T, g)
    print("case %s (%s): %d parameters" % (c, cfg_name, sum(v.numel() for v in sd.values())))

    zi, zt, loss = train_forward(m, img, ids)
    loss.backward()
    for k, v in sd.items():
        out[c + ".sd." + k] = v
    out[c + ".img"] = img
    out[c + ".ids"] = ids.to(torch.int32)
    out[c + ".zi"] = zi.detach()
    out[c + ".zt"] = zt.detach()
    out[c + ".loss"] = loss.detach().reshape(1)
    for k, p in m.named_parameters():
        out[c + ".grad." + k] = p.grad.clone()
    for k, v in m.state_dict().items():
        if "running_" in k:
            out[c + ".bn_after." + k] = v.clone()

    adamw_step(m)
    for k, p in m.named_parameters():
        out[c + ".after." + k] = p.detach().clone()

    report_fp64(m, sd, img, ids, zi.detach(), zt.detach(), loss.item())

    m_eval = tm.clip_from_cfg(cfg, init=False)
    load_sd(m_eval, sd)
    m_eval.eval()
    with torch.no_grad():
        out[c + ".eval_zi"] = m_eval.encode_image(img)

    sog = os.path.join(refutil.DATA_DIR, "clip_sogclip_%s.safetensors" % c)
    if os.path.exists(sog):
        sog_sd, _ = refutil.load("clip_sogclip_%s" % c)
        m_sog = tm.clip_from_cfg(cfg, init=False)
        load_sd(m_sog, sog_sd)
        with torch.no_grad():
            szi, szt, _ = train_forward(m_sog, img, ids)
        out[c + ".sogclip_init.zi"] = szi
        out[c + ".sogclip_init.zt"] = szt
        print("  sogclip_init: loaded %s" % sog)
    else:
        print("  note: %s absent, no %s.sogclip_init.* stored" % (sog, c))


def main():
    out, meta = {}, {"B": B, "lr": LR, "betas": BETAS, "eps": EPS, "weight_decay": WD}
    for c, cfg_name, seed in CASES:
        run_case(c, cfg_name, seed, out)
        meta[c + ".config"] = "tests/data/models/%s.yaml" % cfg_name
    refutil.save("clip", out, meta)


if __name__ == "__main__":
    main()
