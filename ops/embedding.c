/*
 * ops/embedding.c — token embedding lookup, forward and backward (see ops/embedding.h).
 *   table(V,C), ids int32 (N), out/dout (N,C). Reference: torch.nn.functional.embedding.
 *
 * The backward is a scatter-add with repeated ids (CLIP's padding id 0 fills most of each
 * 77-token sequence). Instead of atomics, the fast path splits the work so that every dtable
 * element is owned by one thread, which adds its contributions in increasing n:
 *  - column split (C >= 16 * threads): thread t owns a range of 16-float column blocks of every
 *    row (whole 64-byte lines when C is a multiple of 16, so no false sharing) and walks
 *    n = 0..N-1. Balanced whatever the id distribution.
 *  - vocabulary split (narrow rows): thread t owns the rows [V*t/T, V*(t+1)/T) and scans all
 *    N ids, skipping ids it does not own (torch's CPU dense backward does the same).
 * Both give the reference loop's exact result (same additions in the same order).
 */
#include "ops/embedding.h"

#include <omp.h>
#include <string.h>

#include "core/common.h"

#define EMB_COL_BLOCK    16    /* floats: one 64-byte cache line */
#define EMB_PARALLEL_MIN 32768 /* N*C below which one thread is faster than a fork */

static void check_ids(const int32_t *ids, int N, int V)
{
    for (int n = 0; n < N; n++)
        SG_CHECK(ids[n] >= 0 && ids[n] < V, "embedding: ids[%d] = %d is outside [0, V=%d)", n,
                 (int)ids[n], V);
}

/* ---- reference ------------------------------------------------------------------------------ */

void embedding_forward_ref(float *out, const int32_t *ids, const float *table, int N, int V, int C)
{
    check_ids(ids, N, V);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = table[(size_t)ids[n] * C + c];
}

void embedding_backward_ref(float *dtable, const float *dout, const int32_t *ids, int N, int V,
                            int C)
{
    if (!dtable) return;
    check_ids(ids, N, V);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dtable[(size_t)ids[n] * C + c] += dout[(size_t)n * C + c];
}

/* ---- fast CPU path --------------------------------------------------------------------------- */

void embedding_forward_cpu(struct sg_ctx *c, float *out, const int32_t *ids, const float *table,
                           int N, int V, int C)
{
    check_ids(ids, N, V);
    int nt = (int64_t)N * C < EMB_PARALLEL_MIN ? 1 : c->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, sizeof(float) * (size_t)C);
}

/* dtable[ids[n], c0:c1] += dout[n, c0:c1] for all n, in increasing n. */
static void scatter_cols(float *dtable, const float *dout, const int32_t *ids, int N, int C, int c0,
                         int c1)
{
    for (int n = 0; n < N; n++) {
        float *dst = dtable + (size_t)ids[n] * C;
        const float *src = dout + (size_t)n * C;
#pragma omp simd
        for (int j = c0; j < c1; j++) dst[j] += src[j];
    }
}

/* Same for the rows v0 <= ids[n] < v1 only, whole rows. */
static void scatter_rows(float *dtable, const float *dout, const int32_t *ids, int N, int C, int v0,
                         int v1)
{
    for (int n = 0; n < N; n++) {
        if (ids[n] < v0 || ids[n] >= v1) continue;
        float *dst = dtable + (size_t)ids[n] * C;
        const float *src = dout + (size_t)n * C;
#pragma omp simd
        for (int j = 0; j < C; j++) dst[j] += src[j];
    }
}

void embedding_backward_cpu(struct sg_ctx *c, float *dtable, const float *dout, const int32_t *ids,
                            int N, int V, int C)
{
    if (!dtable) return;
    check_ids(ids, N, V);
    int nt = (int64_t)N * C < EMB_PARALLEL_MIN ? 1 : c->nthreads;
    if (nt <= 1) {
        scatter_cols(dtable, dout, ids, N, C, 0, C);
        return;
    }
    int nblk = SG_CEIL_DIV(C, EMB_COL_BLOCK);
    int by_cols = nblk >= nt;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        if (by_cols) {
            int c0 = (int)((int64_t)nblk * t / T) * EMB_COL_BLOCK;
            int c1 = SG_MIN((int)((int64_t)nblk * (t + 1) / T) * EMB_COL_BLOCK, C);
            scatter_cols(dtable, dout, ids, N, C, c0, c1);
        } else {
            int v0 = (int)((int64_t)V * t / T), v1 = (int)((int64_t)V * (t + 1) / T);
            scatter_rows(dtable, dout, ids, N, C, v0, v1);
        }
    }
}

/* ---- dispatch -------------------------------------------------------------------------------- */

void op_embedding_forward(struct sg_ctx *c, float *out, const int32_t *ids, const float *table,
                          int N, int V, int C)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        embedding_forward_cpu(c, out, ids, table, N, V, C);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        embedding_forward_cuda(c, out, ids, table, N, V, C);
        return;
#else
        SG_PANIC("embedding_forward: built without CUDA");
#endif
    }
    SG_PANIC("embedding_forward: unknown device %d", (int)c->dev);
}

void op_embedding_backward(struct sg_ctx *c, float *dtable, const float *dout, const int32_t *ids,
                           int N, int V, int C)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        embedding_backward_cpu(c, dtable, dout, ids, N, V, C);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        embedding_backward_cuda(c, dtable, dout, ids, N, V, C);
        return;
#else
        SG_PANIC("embedding_backward: built without CUDA");
#endif
    }
    SG_PANIC("embedding_backward: unknown device %d", (int)c->dev);
}
