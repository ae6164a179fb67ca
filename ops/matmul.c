/*
 * ops/matmul.c — linear layers and batched matrix products (see matmul.h for the math).
 *
 * Shapes (row-major, PyTorch layouts):
 *   linear: inp(N,C), w(OC,C), b(OC), out(N,OC)      torch.nn.functional.linear
 *   matmul: a(batch,M,K), b(batch,K,N), out(batch,M,N) torch.matmul / torch.bmm
 * Reference: tests/ref/gen_matmul.py (torch autograd) -> tests/ref/data/matmul.safetensors.
 *
 * Fast CPU path: every product is one sg_gemm (oneDNN sgemm, threaded over ctx->nthreads).
 * The bias is broadcast into `out` before a beta=1 GEMM (one pass instead of a GEMM plus an add
 * pass); db is a column-blocked OpenMP reduction over rows (deterministic: the summation order
 * does not depend on the thread count). Batched products of small matrices run one
 * single-threaded GEMM per batch item under OpenMP (oneDNN runs sequentially inside a parallel
 * region); large ones run their GEMMs one after another, each threaded.
 */
#include "ops/matmul.h"

#include <string.h>

#include <stdlib.h>

#include "core/common.h"
#include "ops/dnnl_util.h"
#include "ops/gemm.h"

/* ---- reference (plain loops, double accumulation) ---------------------------------------- */

void linear_forward_ref(float *out, const float *inp, const float *w, const float *b, int N, int C,
                        int OC)
{
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OC; o++) {
            double acc = b ? (double)b[o] : 0.0;
            for (int i = 0; i < C; i++)
                acc += (double)inp[(int64_t)n * C + i] * w[(int64_t)o * C + i];
            out[(int64_t)n * OC + o] = (float)acc;
        }
    }
}

void linear_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                         const float *w, int N, int C, int OC)
{
    if (dinp) {
        for (int n = 0; n < N; n++) {
            for (int i = 0; i < C; i++) {
                double acc = 0.0;
                for (int o = 0; o < OC; o++)
                    acc += (double)dout[(int64_t)n * OC + o] * w[(int64_t)o * C + i];
                dinp[(int64_t)n * C + i] = (float)acc;
            }
        }
    }
    if (dw) {
        for (int o = 0; o < OC; o++) {
            for (int i = 0; i < C; i++) {
                double acc = 0.0;
                for (int n = 0; n < N; n++)
                    acc += (double)dout[(int64_t)n * OC + o] * inp[(int64_t)n * C + i];
                dw[(int64_t)o * C + i] += (float)acc;
            }
        }
    }
    if (db) {
        for (int o = 0; o < OC; o++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) acc += dout[(int64_t)n * OC + o];
            db[o] += (float)acc;
        }
    }
}

void matmul_forward_ref(float *out, const float *a, const float *b, int batch, int M, int K, int N)
{
    for (int64_t p = 0; p < batch; p++) {
        const float *ap = a + p * M * K, *bp = b + p * K * N;
        float *op = out + p * M * N;
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double acc = 0.0;
                for (int k = 0; k < K; k++) acc += (double)ap[i * K + k] * bp[k * N + j];
                op[i * N + j] = (float)acc;
            }
        }
    }
}

/* da(M,K) = dout(M,N) @ b(K,N)^T for one batch item. */
static void matmul_da_ref(float *da, const float *dout, const float *b, int M, int K, int N)
{
    for (int i = 0; i < M; i++) {
        for (int k = 0; k < K; k++) {
            double acc = 0.0;
            for (int j = 0; j < N; j++) acc += (double)dout[i * N + j] * b[k * N + j];
            da[i * K + k] = (float)acc;
        }
    }
}

/* db(K,N) = a(M,K)^T @ dout(M,N) for one batch item. */
static void matmul_db_ref(float *db, const float *dout, const float *a, int M, int K, int N)
{
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int i = 0; i < M; i++) acc += (double)a[i * K + k] * dout[i * N + j];
            db[k * N + j] = (float)acc;
        }
    }
}

void matmul_backward_ref(float *da, float *db, const float *dout, const float *a, const float *b,
                         int batch, int M, int K, int N)
{
    for (int64_t p = 0; p < batch; p++) {
        const float *dp = dout + p * M * N;
        if (da) matmul_da_ref(da + p * M * K, dp, b + p * K * N, M, K, N);
        if (db) matmul_db_ref(db + p * K * N, dp, a + p * M * K, M, K, N);
    }
}

/* ---- fast CPU path ------------------------------------------------------------------------ */

/* out(N,OC) = b broadcast over rows. */
static void broadcast_bias(float *out, const float *b, int N, int OC)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) memcpy(out + (int64_t)n * OC, b, sizeof(float) * (size_t)OC);
}

/* db(OC) += sum over rows of dout(N,OC). Column blocks of BIAS_BLOCK floats go to threads;
 * each block sums its rows in order, so the result is the same for any thread count. */
#define BIAS_BLOCK 64
static void bias_backward(float *db, const float *dout, int N, int OC)
{
    int nblocks = SG_CEIL_DIV(OC, BIAS_BLOCK);
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblocks; blk++) {
        int o0 = blk * BIAS_BLOCK, len = SG_MIN(BIAS_BLOCK, OC - o0);
        float acc[BIAS_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = dout + (int64_t)n * OC + o0;
            for (int o = 0; o < len; o++) acc[o] += row[o];
        }
        for (int o = 0; o < len; o++) db[o0 + o] += acc[o];
    }
}

void linear_forward_cpu(struct sg_ctx *c, float *out, const float *inp, const float *w,
                        const float *b, int N, int C, int OC)
{
    SG_UNUSED(c);
    if (b) broadcast_bias(out, b, N, OC);
    sg_gemm(0, 1, N, OC, C, 1.0f, inp, C, w, C, b ? 1.0f : 0.0f, out, OC);
}

/* Scratch for dW^T, one per context, grown to the largest request and reused. */
struct dwt_scratch {
    float *p;
    size_t n;
};

static void dwt_scratch_free(void *p)
{
    struct dwt_scratch *s = p;
    sg_afree(s->p);
    free(s);
}

static float *dwt_scratch(struct sg_ctx *c, size_t n)
{
    struct dwt_scratch *s = sg_dnnl_cache_find(c, "linear_dwt_scratch");
    if (!s) {
        s = sg_xcalloc(1, sizeof *s);
        sg_dnnl_cache_put(c, "linear_dwt_scratch", s, dwt_scratch_free);
    }
    if (s->n < n) {
        sg_afree(s->p);
        s->p = sg_xmalloc_aligned(n * sizeof(float));
        s->n = n;
    }
    return s->p;
}

/* dw(OC,C) += t^T, t (C,OC); 32x32 tiles. */
static void add_transposed(float *dw, const float *t, int C, int OC)
{
#pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < OC; o0 += 32)
        for (int c0 = 0; c0 < C; c0 += 32)
            for (int o = o0; o < o0 + 32 && o < OC; o++)
                for (int k = c0; k < c0 + 32 && k < C; k++)
                    dw[(int64_t)o * C + k] += t[(int64_t)k * OC + o];
}

/* The weight gradient GEMM runs in the orientation whose output has fewer rows than columns:
 * dnnl_sgemm with a long inner dimension (K = N tokens) and transA was measured at 53-59
 * GFLOP/s for dW (1024,256) = dout^T inp (N = 4928, 2 threads), against 91-119 for
 * dW^T (256,1024) = inp^T dout plus a transposed add; OC <= C keeps the direct form (1024 -> 256:
 * 26 ms direct vs 46 ms transposed). */
void linear_backward_cpu(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC)
{
    if (dinp) sg_gemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
    if (dw && OC > C) {
        float *t = dwt_scratch(c, (size_t)C * OC);
        sg_gemm(1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 0.0f, t, OC);
        add_transposed(dw, t, C, OC);
    } else if (dw) {
        sg_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    }
    if (db) bias_backward(db, dout, N, OC);
}

/* One single-threaded GEMM per batch item under OpenMP when the items are small or many
 * enough to balance; otherwise threaded GEMMs in sequence. */
static int batch_parallel(const struct sg_ctx *c, int batch, int64_t macs_per_item)
{
    if (c->nthreads <= 1 || batch <= 1) return 0;
    if (batch % c->nthreads == 0 || batch >= 4 * c->nthreads) return 1;
    return macs_per_item < ((int64_t)1 << 22);
}

/* out_p = op(A_p) @ op(B_p) for p < batch, with per-item strides sa, sb, so. */
static void gemm_batched(const struct sg_ctx *c, int ta, int tb, int M, int N, int K,
                         const float *A, int lda, int64_t sa, const float *B, int ldb, int64_t sb,
                         float *out, int64_t so, int batch)
{
    if (batch_parallel(c, batch, (int64_t)M * N * K)) {
#pragma omp parallel for schedule(static)
        for (int p = 0; p < batch; p++)
            sg_gemm(ta, tb, M, N, K, 1.0f, A + p * sa, lda, B + p * sb, ldb, 0.0f, out + p * so, N);
    } else {
        for (int p = 0; p < batch; p++)
            sg_gemm(ta, tb, M, N, K, 1.0f, A + p * sa, lda, B + p * sb, ldb, 0.0f, out + p * so, N);
    }
}

void matmul_forward_cpu(struct sg_ctx *c, float *out, const float *a, const float *b, int batch,
                        int M, int K, int N)
{
    gemm_batched(c, 0, 0, M, N, K, a, K, (int64_t)M * K, b, N, (int64_t)K * N, out, (int64_t)M * N,
                 batch);
}

void matmul_backward_cpu(struct sg_ctx *c, float *da, float *db, const float *dout, const float *a,
                         const float *b, int batch, int M, int K, int N)
{
    /* da(M,K) = dout(M,N) @ b(K,N)^T;  db(K,N) = a(M,K)^T @ dout(M,N) */
    if (da)
        gemm_batched(c, 0, 1, M, K, N, dout, N, (int64_t)M * N, b, N, (int64_t)K * N, da,
                     (int64_t)M * K, batch);
    if (db)
        gemm_batched(c, 1, 0, K, N, M, a, K, (int64_t)M * K, dout, N, (int64_t)M * N, db,
                     (int64_t)K * N, batch);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

void op_linear_forward(struct sg_ctx *c, float *out, const float *inp, const float *w,
                       const float *b, int N, int C, int OC)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        linear_forward_cpu(c, out, inp, w, b, N, C, OC);
        return;
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        linear_forward_cuda(c, out, inp, w, b, N, C, OC);
        return;
#endif
    default:
        SG_PANIC("linear_forward: device %s not supported", sg_device_name(c->dev));
    }
}

void op_linear_backward(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        linear_backward_cpu(c, dinp, dw, db, dout, inp, w, N, C, OC);
        return;
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        linear_backward_cuda(c, dinp, dw, db, dout, inp, w, N, C, OC);
        return;
#endif
    default:
        SG_PANIC("linear_backward: device %s not supported", sg_device_name(c->dev));
    }
}

void op_matmul_forward(struct sg_ctx *c, float *out, const float *a, const float *b, int batch,
                       int M, int K, int N)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        matmul_forward_cpu(c, out, a, b, batch, M, K, N);
        return;
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        matmul_forward_cuda(c, out, a, b, batch, M, K, N);
        return;
#endif
    default:
        SG_PANIC("matmul_forward: device %s not supported", sg_device_name(c->dev));
    }
}

void op_matmul_backward(struct sg_ctx *c, float *da, float *db, const float *dout, const float *a,
                        const float *b, int batch, int M, int K, int N)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        matmul_backward_cpu(c, da, db, dout, a, b, batch, M, K, N);
        return;
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        matmul_backward_cuda(c, da, db, dout, a, b, batch, M, K, N);
        return;
#endif
    default:
        SG_PANIC("matmul_backward: device %s not supported", sg_device_name(c->dev));
    }
}
