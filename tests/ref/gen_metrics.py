"""Reference for tests/test_metrics.c (eval/metrics.c): retrieval ranks and recalls, zero-shot
classification and linear-probe SGD, computed with torch the way CLIP_benchmark (recall_at_k,
accuracy: torch.topk), open_clip (mean/median rank) and SogCLR lincls (SGD + momentum, cosine
lr per epoch) do, plus the stable lower-index-first ranks that eval/metrics.h defines.
Run: cd tests/ref && /usr/bin/python3 gen_metrics.py"""
import math
import random

import numpy as np
import torch
import torch.nn.functional as F

from refutil import save

t = {}
KS = (1, 5, 10)


def exact_set():
    """Unit vectors of R^4 whose dot products are multiples of 0.25: exact in fp32 in any
    summation order, so equal scores are real ties for torch and for sg_gemm alike."""
    vs = [[0.5 if (m >> k) & 1 else -0.5 for k in range(4)] for m in range(16)]
    for k in range(4):
        for s in (1.0, -1.0):
            v = [0.0] * 4
            v[k] = s
            vs.append(v)
    return torch.tensor(vs)


def stable_rank0(row, p):
    """0-based position of column p in torch.sort(row, descending, stable)."""
    order = torch.sort(row, descending=True, stable=True)[1]
    return int((order == p).nonzero()[0, 0])


def clipbench_recall(scores, positive_pairs, k):
    """CLIP_benchmark metrics/zeroshot_retrieval.py recall_at_k, then (> 0) per query."""
    nb_texts, nb_images = scores.shape
    topk_indices = torch.topk(scores, k, dim=1)[1]
    nb_positive = positive_pairs.sum(dim=1)
    onehot = F.one_hot(topk_indices, num_classes=nb_images)
    nb_true_positive = (onehot * positive_pairs.view(nb_texts, 1, nb_images)).sum(dim=(1, 2))
    return (nb_true_positive / nb_positive) > 0


def retrieval_refs(prefix, zi, zt, t2i):
    Ni, Nt = zi.shape[0], zt.shape[0]
    S = zt @ zi.t()  # (Nt, Ni), CLIP_benchmark's scores
    pos = torch.zeros(Nt, Ni, dtype=torch.bool)
    pos[torch.arange(Nt), t2i.long()] = True
    # text -> image
    r_t2i = torch.tensor([stable_rank0(S[t], int(t2i[t])) + 1 for t in range(Nt)])
    sp = S[torch.arange(Nt), t2i.long()]
    opt_t2i = 1 + (S > sp[:, None]).sum(1)
    pes_t2i = (S >= sp[:, None]).sum(1)
    ties_t2i = int(((S == sp[:, None]).sum(1) > 1).sum())
    # image -> text: best rank over the image's captions (0 = no caption)
    ST, posT = S.t(), pos.t()
    r_i2t, opt_i2t, pes_i2t, ties_i2t = [], [], [], 0
    for i in range(Ni):
        caps = posT[i].nonzero()[:, 0]
        if len(caps) == 0:
            r_i2t.append(0), opt_i2t.append(0), pes_i2t.append(0)
            continue
        r_i2t.append(min(stable_rank0(ST[i], int(c)) for c in caps) + 1)
        smax = ST[i][caps].max()
        opt_i2t.append(1 + int((ST[i] > smax).sum()))
        pes_i2t.append(1 + int(((ST[i] >= smax) & ~posT[i]).sum()))
        ties_i2t += int(((ST[i] == smax) & ~posT[i]).sum()) > 0
    r_i2t, opt_i2t, pes_i2t = map(torch.tensor, (r_i2t, opt_i2t, pes_i2t))
    t.update({f"{prefix}.zi": zi, f"{prefix}.zt": zt, f"{prefix}.t2i": t2i.int(),
              f"{prefix}.t2i_rank": r_t2i.int(), f"{prefix}.i2t_rank": r_i2t.int(),
              f"{prefix}.t2i_rank_opt": opt_t2i.int(), f"{prefix}.t2i_rank_pes": pes_t2i.int(),
              f"{prefix}.i2t_rank_opt": opt_i2t.int(), f"{prefix}.i2t_rank_pes": pes_i2t.int(),
              f"{prefix}.ties": torch.tensor([ties_t2i, ties_i2t], dtype=torch.int64)})
    # CLIP_benchmark hit counts (topk), per K: [image_retrieval, text_retrieval]; its text
    # retrieval divides by Ni (images without captions count as misses).
    cb = [[int(clipbench_recall(S, pos, k).sum()), int(clipbench_recall(ST, posT, k).sum())]
          for k in KS]
    t[f"{prefix}.clipbench_hits"] = torch.tensor(cb, dtype=torch.int64)
    # open_clip mean / median rank: mean(rank0) + 1, floor(median(rank0)) + 1
    q = r_i2t[r_i2t > 0]
    ranks = [float((r_t2i - 1).double().mean() + 1), math.floor(np.median((r_t2i - 1).numpy())) + 1,
             float((q - 1).double().mean() + 1), math.floor(np.median((q - 1).numpy())) + 1]
    t[f"{prefix}.mean_median"] = torch.tensor(ranks, dtype=torch.float64).float()
    return S


# ---- retrieval with ties: 12 images (3, 5, 1, 0, ... captions), exact scores ---------------
g = torch.Generator().manual_seed(0)
V = exact_set()
caps_per_image = [3, 5, 1, 0, 2, 3, 1, 1, 0, 4, 2, 1]
Ni = len(caps_per_image)
zi = V[torch.randint(0, len(V), (Ni,), generator=g)]
zi[6] = zi[2]  # duplicate images: every caption ties on them
zi[10] = zi[0]
t2i = torch.tensor([i for i, n in enumerate(caps_per_image) for _ in range(n)])
t2i = t2i[torch.randperm(len(t2i), generator=g)]
zt = V[torch.randint(0, len(V), (len(t2i),), generator=g)]
half = torch.rand(len(t2i), generator=g) < 0.5  # half the captions equal their image
zt[half] = zi[t2i[half]]
retrieval_refs("ties", zi, zt, t2i)

# ---- retrieval on random embeddings (no ties; margins checked) ------------------------------
for seed in range(1, 50):
    g = torch.Generator().manual_seed(seed)
    Ni, E = 97, 24
    ncap = torch.randint(1, 6, (Ni,), generator=g)
    t2i = torch.repeat_interleave(torch.arange(Ni), ncap)
    t2i = t2i[torch.randperm(len(t2i), generator=g)]
    zi = F.normalize(torch.randn(Ni, E, generator=g), dim=-1)
    # captions correlated with their image so ranks spread over 1..Ni
    zt = F.normalize(zi[t2i] + 1.2 * torch.randn(len(t2i), E, generator=g), dim=-1)
    S = zt @ zi.t()
    sp = S[torch.arange(len(t2i)), t2i]
    d = (S - sp[:, None]).abs()
    d[torch.arange(len(t2i)), t2i] = 1.0
    ok = bool(d.min() > 1e-5)
    ST = S.t()
    for i in range(Ni):
        row = ST[i]
        caps = (t2i == i).nonzero()[:, 0]
        best = caps[row[caps].argmax()]
        dd = (row - row[best]).abs()
        dd[best] = 1.0
        ok &= bool(dd.min() > 1e-5)
    if ok:
        break
assert ok
t["random.seed"] = torch.tensor([seed])
S = retrieval_refs("random", zi, zt, t2i)
# open_clip get_clip_metrics style (argsort, not stable: no ties here) must agree
order = torch.argsort(S, dim=1, descending=True)
assert torch.equal((order == t2i[:, None]).nonzero()[:, 1] + 1, t["random.t2i_rank"].long())


# ---- zero-shot classification ------------------------------------------------------------------
def clipbench_accuracy(output, target, topk=(1,)):
    """CLIP_benchmark zeroshot_classification.accuracy (counts instead of fractions)."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return [int(correct[:k].reshape(-1).float().sum(0)) for k in topk]


def cls_refs(prefix, scores, labels, C):
    N = scores.shape[0]
    r = torch.tensor([stable_rank0(scores[i], int(labels[i])) + 1 for i in range(N)])
    sy = scores[torch.arange(N), labels.long()]
    opt = 1 + (scores > sy[:, None]).sum(1)
    pes = (scores >= sy[:, None]).sum(1)
    ties = int(((scores == sy[:, None]).sum(1) > 1).sum())
    logits = 100.0 * scores  # CLIP_benchmark's logits
    pred = logits.argmax(axis=1)
    per_class = torch.full((C,), float("nan"), dtype=torch.float64)
    for c in range(C):
        m = labels == c
        if m.any():
            per_class[c] = (pred[m] == c).double().mean()
    # sklearn balanced_accuracy_score(target, pred): mean recall over classes present in target
    bal = float(per_class[~per_class.isnan()].mean())
    cb1, cb5 = clipbench_accuracy(logits, labels.long(), topk=(1, 5))
    t.update({f"{prefix}.labels": labels.int(), f"{prefix}.rank": r.int(),
              f"{prefix}.rank_opt": opt.int(), f"{prefix}.rank_pes": pes.int(),
              f"{prefix}.counts": torch.tensor([int((r == 1).sum()), int((r <= 5).sum()), ties,
                                                cb1, cb5], dtype=torch.int64),
              f"{prefix}.per_class_recall": (100.0 * per_class).float(),
              f"{prefix}.balanced_accuracy": torch.tensor([bal], dtype=torch.float64).float()})
    return bal


# ties: 12 classes (3 and 7 without samples, 2 and 5 identical), exact scores
g = torch.Generator().manual_seed(10)
C, N = 12, 40
W = V[torch.randint(0, len(V), (C,), generator=g)]
W[5] = W[2]
img = V[torch.randint(0, len(V), (N,), generator=g)]
present = torch.tensor([c for c in range(C) if c not in (3, 7)])
labels = present[torch.randint(0, len(present), (N,), generator=g)]
t["zs_ties.img"], t["zs_ties.W"] = img, W
cls_refs("zs_ties", img @ W.t(), labels, C)

# random prompts -> classifier (CLIP_benchmark zero_shot_classifier), 10 classes, class 4 empty
for seed in range(20, 80):
    g = torch.Generator().manual_seed(seed)
    C, P, E, N = 10, 7, 16, 200
    prompts = torch.randn(C, P, E, generator=g)
    Wz = torch.stack([F.normalize(prompts[c], dim=-1).mean(dim=0) for c in range(C)])
    Wz = Wz / Wz.norm(dim=-1, keepdim=True)
    present = torch.tensor([c for c in range(C) if c != 4])
    labels = present[torch.randint(0, len(present), (N,), generator=g)]
    img = F.normalize(Wz[labels] + 0.9 * torch.randn(N, E, generator=g), dim=-1)
    scores = img @ Wz.t()
    sy = scores[torch.arange(N), labels]
    d = (scores - sy[:, None]).abs()
    d[torch.arange(N), labels] = 1.0
    if d.min() > 1e-5:
        break
assert d.min() > 1e-5
t.update({"zs.prompts": prompts, "zs.W": Wz, "zs.img": img})
cls_refs("zs", scores, labels, C)


# ---- linear probe: the same SGD in torch ---------------------------------------------------------
class TorchMT:
    """core/rng.c's mt19937 (torch seeding) through Python's own mt19937 state."""

    def __init__(self, seed):
        st = [seed & 0xFFFFFFFF]
        for j in range(1, 624):
            st.append((1812433253 * (st[-1] ^ (st[-1] >> 30)) + j) & 0xFFFFFFFF)
        self.r = random.Random()
        self.r.setstate((3, tuple(st) + (624,), None))

    def u64(self):
        hi = self.r.getrandbits(32)
        return (hi << 32) | self.r.getrandbits(32)


def sg_shuffle(rng, idx):
    """core/rng.c sg_rng_shuffle: Fisher-Yates, j = u64 % (i + 1)."""
    for i in range(len(idx) - 1, 0, -1):
        j = rng.u64() % (i + 1)
        idx[i], idx[j] = idx[j], idx[i]


# the mt19937 stream equals torch's: torch.rand = (u32 & (2^24-1)) / 2^24
_m = TorchMT(1234)
_u = torch.rand(8, generator=torch.Generator().manual_seed(1234))
assert all(float(_u[k]) == (_m.r.getrandbits(32) & 0xFFFFFF) / 2.0**24 for k in range(8))


def torch_probe(X, y, C, epochs, bs, lr, mom, wd, init_std, seed, shuffle):
    N, D = X.shape
    if init_std > 0:
        torch.manual_seed(seed)
        W = torch.empty(C, D).normal_(0, init_std)
    else:
        W = torch.zeros(C, D)
    b = torch.zeros(C)
    W.requires_grad_()
    b.requires_grad_()
    opt = torch.optim.SGD([{"params": [W], "weight_decay": wd},
                           {"params": [b], "weight_decay": 0.0}], lr=lr, momentum=mom)
    B = N if bs <= 0 or bs >= N else bs
    rng = TorchMT(seed + 1)
    last = 0.0
    for e in range(epochs):
        cur = lr * 0.5 * (1.0 + math.cos(math.pi * e / epochs))  # lincls adjust_learning_rate
        for grp in opt.param_groups:
            grp["lr"] = cur
        idx = list(range(N))
        if shuffle and B < N:
            sg_shuffle(rng, idx)
        tot = 0.0
        for s in range(0, N, B):
            ii = torch.tensor(idx[s:s + B])
            loss = F.cross_entropy(X[ii] @ W.t() + b, y[ii].long())
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss) * len(ii)
        last = tot / N
    return W.detach(), b.detach(), last


g = torch.Generator().manual_seed(5)
Nlp, D, C = 60, 8, 5
X = torch.randn(Nlp, D, generator=g)
y = torch.randint(0, C, (Nlp,), generator=g)
X = X + 0.8 * torch.randn(C, D, generator=g)[y]  # learnable signal
t["lp.X"], t["lp.y"] = X, y.int()
# name: epochs, batch, lr, momentum, wd, init_std, seed, shuffle
cases = {"full": (6, 0, 0.5, 0.9, 1e-3, 0.0, 0, 1),
         "mini": (4, 16, 0.2, 0.9, 5e-3, 0.01, 3, 1),
         "ordered": (3, 25, 0.3, 0.5, 0.0, 0.01, 7, 0)}
for name, (ep, bs, lr, mom, wd, std, seed, sh) in cases.items():
    W, b, last = torch_probe(X, y, C, ep, bs, lr, mom, wd, std, seed, sh)
    t[f"lp.{name}.cfg"] = torch.tensor([ep, bs, lr, mom, wd, std, seed, sh], dtype=torch.float64)
    t[f"lp.{name}.W"], t[f"lp.{name}.b"] = W, b
    t[f"lp.{name}.loss"] = torch.tensor([last])

save("metrics", t, {"generator": "tests/ref/gen_metrics.py", "torch": torch.__version__})
