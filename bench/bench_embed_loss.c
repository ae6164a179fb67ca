/*
 * bench/bench_embed_loss.c — token embedding and cross-entropy forward+backward. PyTorch peers:
 * bench/torch_embed_loss.py (F.embedding, F.cross_entropy), same names, shapes and token ids.
 *
 * embedding: 32 CLIP text sequences of 77 tokens (SOT ... EOT, then padding id 0) into the
 *   (49408, 512) token table. Each run is forward + zeroing of the (49408,512) gradient + backward:
 *   torch's dense backward always builds a fresh zero-filled table gradient (100 MB), so the
 *   zeroing is timed on both sides (ours: an OpenMP-parallel memset, as torch's fill is parallel).
 * cross_entropy: ImageNet-classifier logits (256, 1000), with and without label smoothing, and a
 *   CLIP InfoNCE logit matrix for a 4096 batch (4096, 4096); forward (losses, probs) + backward.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/common.h"
#include "ops/embedding.h"
#include "ops/loss.h"

/* The CLIP-like token ids; bench/torch_embed_loss.py clip_ids() builds the same ones. */
static int32_t *clip_ids(int B, int T)
{
    int32_t *ids = sg_xcalloc((size_t)B * T, sizeof(int32_t));
    for (int b = 0; b < B; b++) {
        int32_t *s = ids + (size_t)b * T;
        int len = 8 + (b * 37) % (T - 7);
        s[0] = 49406;
        for (int i = 1; i < len - 1; i++)
            s[i] = 1 + (int32_t)(((int64_t)b * 7919 + i * 104729) % 49405);
        s[len - 1] = 49407;
    }
    return ids;
}

struct emb_case {
    struct sg_ctx *c;
    int N, V, C;
    int32_t *ids;          /* (N) */
    float *table, *dtable; /* (V,C) */
    float *out, *dout;     /* (N,C) */
};

static void zero_parallel(struct sg_ctx *c, float *x, size_t n)
{
    const size_t chunk = 1 << 16;
    int64_t nchunks = (int64_t)SG_CEIL_DIV(n, chunk);
#pragma omp parallel for num_threads(c->nthreads) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        size_t lo = (size_t)k * chunk, len = SG_MIN(chunk, n - lo);
        memset(x + lo, 0, len * sizeof(float));
    }
}

static void run_embedding(void *arg)
{
    struct emb_case *k = arg;
    op_embedding_forward(k->c, k->out, k->ids, k->table, k->N, k->V, k->C);
    zero_parallel(k->c, k->dtable, (size_t)k->V * k->C);
    op_embedding_backward(k->c, k->dtable, k->dout, k->ids, k->N, k->V, k->C);
}

static void bench_embedding(struct sg_ctx *c, const char *name, int B, int T, int V, int C)
{
    if (!bench_selected(name)) return;
    struct emb_case k = {c, B * T, V, C, clip_ids(B, T), NULL, NULL, NULL, NULL};
    k.table = bench_rand((size_t)V * C, 1), k.dtable = bench_rand((size_t)V * C, 2);
    k.out = bench_rand((size_t)k.N * C, 3), k.dout = bench_rand((size_t)k.N * C, 4);
    bench_time(name, run_embedding, &k);
    free(k.ids);
    sg_afree(k.table);
    sg_afree(k.dtable);
    sg_afree(k.out);
    sg_afree(k.dout);
}

struct ce_case {
    struct sg_ctx *c;
    int N, V;
    float ls;
    int32_t *targets;                /* (N) */
    float *logits, *probs, *dlogits; /* (N,V) */
    float *losses;                   /* (N) */
};

static void run_cross_entropy(void *arg)
{
    struct ce_case *k = arg;
    op_cross_entropy_forward(k->c, k->losses, k->probs, k->logits, k->targets, k->N, k->V, k->ls);
    op_cross_entropy_backward(k->c, k->dlogits, k->probs, k->targets, k->N, k->V, 1.0f, k->ls);
}

static void bench_cross_entropy(struct sg_ctx *c, const char *name, int N, int V, float ls)
{
    if (!bench_selected(name)) return;
    size_t nv = (size_t)N * V;
    struct ce_case k = {c,    N,    V,    ls,  sg_xmalloc(sizeof(int32_t) * (size_t)N),
                        NULL, NULL, NULL, NULL};
    for (int n = 0; n < N; n++) k.targets[n] = (int32_t)(((int64_t)n * 7) % V);
    k.logits = bench_rand(nv, 5), k.probs = bench_rand(nv, 6), k.dlogits = bench_rand(nv, 7);
    k.losses = bench_rand((size_t)N, 8);
    for (size_t i = 0; i < nv; i++) k.logits[i] *= 5.0f;
    bench_time(name, run_cross_entropy, &k);
    free(k.targets);
    sg_afree(k.logits);
    sg_afree(k.probs);
    sg_afree(k.dlogits);
    sg_afree(k.losses);
}

void bench_embed_loss(struct sg_ctx *c)
{
    bench_embedding(c, "embedding_fwd_bwd_32x77_49408x512", 32, 77, 49408, 512);
    bench_cross_entropy(c, "cross_entropy_256x1000", 256, 1000, 0.0f);
    bench_cross_entropy(c, "cross_entropy_ls0.1_256x1000", 256, 1000, 0.1f);
    bench_cross_entropy(c, "cross_entropy_4096x4096", 4096, 4096, 0.0f);
}
