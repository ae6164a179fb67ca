"""bench/torch_embed_loss.py — PyTorch peers of bench/bench_embed_loss.c (same names, shapes and
token ids): F.embedding forward + dense backward into the (49408, 512) table (the grad is reset
to None each run, so torch allocates and zero-fills a fresh 100 MB gradient, as the C case zeroes
its gradient inside the timing), and F.cross_entropy forward + backward of the logits."""
import torch
import torch.nn.functional as F


def clip_ids(B, T):
    """Same ids as clip_ids() in bench/bench_embed_loss.c."""
    ids = torch.zeros(B, T, dtype=torch.int64)
    for b in range(B):
        n = 8 + (b * 37) % (T - 7)
        ids[b, 0] = 49406
        for i in range(1, n - 1):
            ids[b, i] = 1 + (b * 7919 + i * 104729) % 49405
        ids[b, n - 1] = 49407
    return ids.reshape(-1)


def embedding(B, T, V, C):
    ids = clip_ids(B, T)
    table = (torch.rand(V, C) * 2 - 1).requires_grad_(True)
    g = torch.rand(B * T, C) * 2 - 1

    def fn():
        table.grad = None
        F.embedding(ids, table).backward(g)
    return fn


def cross_entropy(N, V, ls):
    logits = ((torch.rand(N, V) * 2 - 1) * 5).requires_grad_(True)
    targets = (torch.arange(N) * 7) % V  # int64: F.cross_entropy needs Long targets

    def fn():
        logits.grad = None
        F.cross_entropy(logits, targets, label_smoothing=ls).backward()
    return fn


def cases():
    return [
        ("embedding_fwd_bwd_32x77_49408x512", embedding(32, 77, 49408, 512)),
        ("cross_entropy_256x1000", cross_entropy(256, 1000, 0.0)),
        ("cross_entropy_ls0.1_256x1000", cross_entropy(256, 1000, 0.1)),
        ("cross_entropy_4096x4096", cross_entropy(4096, 4096, 0.0)),
    ]
