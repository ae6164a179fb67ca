"""Reference for tests/test_embedding.c: torch.nn.functional.embedding forward and the gradient of
L = sum(out * wgt) with respect to the table (dense backward).
Run: cd tests/ref && /usr/bin/python3 gen_embedding.py  -> data/embedding.safetensors

Per case <k>: <k>_ids int32 (N), <k>_wgt (N,C) and <k>_out (N,C); the small cases also store
<k>_table and <k>_dtable (V,C). The CLIP-sized vocabulary case (V = 49408) would not fit the size
budget, so its table is a formula the C test recomputes exactly (integers / 256) and only the
gradient rows of the ids that occur are stored: bigv_uniq int32 (U), bigv_drows (U,C); every other
row of the gradient must stay zero.
"""
import torch
import torch.nn.functional as F

from refutil import rand, save


def case(t, key, ids, table, seed):
    n, c = ids.shape[0], table.shape[1]
    table = table.clone().requires_grad_(True)
    wgt = rand(n, c, seed=seed)
    out = F.embedding(ids.long(), table)
    (out * wgt).sum().backward()
    t[f"{key}_ids"] = ids.to(torch.int32)
    t[f"{key}_wgt"] = wgt
    t[f"{key}_out"] = out
    return table.grad


def bigv_table(v, c):
    """Exactly representable in fp32; recomputed by the C test (bigv_value)."""
    vv = torch.arange(v, dtype=torch.int64)[:, None]
    cc = torch.arange(c, dtype=torch.int64)[None, :]
    return (((vv * 37 + cc * 11) % 2001) - 1000).float() / 256.0


t = {}
g = torch.Generator().manual_seed(1)

# Odd sizes with repeated ids, including both ends of the vocabulary.
ids = torch.tensor([3, 0, 6, 3, 3, 1, 6, 2, 0, 3, 5], dtype=torch.int32)
table = rand(7, 5, seed=10)
t["small_table"] = table
t["small_dtable"] = case(t, "small", ids, table, seed=11)

# Round sizes, many repeats (64 ids drawn from 32 rows).
ids = torch.randint(0, 32, (64,), generator=g, dtype=torch.int32)
table = rand(32, 48, seed=20)
t["round_table"] = table
t["round_dtable"] = case(t, "round", ids, table, seed=21)

# CLIP-like: 2 sequences of 77 tokens, SOT 49406 ... EOT 49407, then padding id 0 (many repeats).
V, C, T = 49408, 4, 77
seqs = []
for length in (9, 23):
    s = torch.zeros(T, dtype=torch.int32)
    s[0] = 49406
    s[1:length - 1] = torch.randint(1, 49406, (length - 2,), generator=g, dtype=torch.int32)
    s[length - 1] = 49407
    seqs.append(s)
ids = torch.cat(seqs)
dtable = case(t, "bigv", ids, bigv_table(V, C), seed=31)
uniq = torch.unique(ids.long())
t["bigv_uniq"] = uniq.to(torch.int32)
t["bigv_drows"] = dtable[uniq]
assert dtable.abs().sum(1).nonzero().numel() <= uniq.numel()

save("embedding", t, {"generator": "tests/ref/gen_embedding.py", "torch": torch.__version__})
