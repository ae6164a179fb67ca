/*
 * ops/norm.c — LayerNorm and BatchNorm2d (BatchNorm1d is HW = 1), forward and backward on the
 * host. Shapes and semantics: ops/norm.h. Torch references: F.layer_norm / torch.native_layer_norm
 * and F.batch_norm / torch.native_batch_norm (tests/ref/gen_norm.py).
 *
 * Gradient contract (ops/ops.h): dinp OVERWRITES, dw/db/dgamma/dbeta ACCUMULATE (+=), a NULL
 * gradient pointer is skipped. mean/rstd may also be NULL in forward when no backward follows.
 *
 * Fast CPU path. Measured against oneDNN 2.6's primitives (dnnl_layer_normalization /
 * dnnl_batch_normalization, f32, plain ab / nchw layouts, use_scale|use_shift, plus the running
 * stats update, variance -> rstd and dgamma/dbeta accumulation they lack), fwd+bwd, 1 thread,
 * best of 3x15 runs in thread CPU time (the 2-core test machine was shared and noisy), ms:
 *   layernorm   (6304, 768)           ours   7.8   oneDNN   9.8
 *   layernorm   (2464, 512)           ours   1.7   oneDNN   1.6  (in cache; medians 2.5 / 2.3)
 *   batchnorm2d (32, 64, 56x56)       ours  14.9   oneDNN  41.9
 *   batchnorm2d (32, 256, 56x56)      ours  58.9   oneDNN 166.3
 *   batchnorm2d (32, 512, 28x28)      ours  27.5   oneDNN  86.5
 *   batchnorm2d (32, 2048, 7x7)       ours   9.6   oneDNN  24.7
 *   batchnorm1d (256, 2048)           ours   0.7   oneDNN  20.7
 * oneDNN's batch norm on plain NCHW runs its generic ncsp_bnorm kernel, and its layer norm is no
 * faster than the loops below, so the hand loops are kept:
 *  - layernorm: OpenMP over rows; per row one reduction pass (float SIMD lanes combined in
 *    double, of the row shifted by its first value) and one output pass, the row staying in L1.
 *    Backward: one reduction pass and one fused pass writing dinp and accumulating per-thread
 *    dw/db partials (float over LN_BLOCK rows, then double), reduced over threads at the end.
 *  - batchnorm: per-(b,c) chunks of HW contiguous floats, OpenMP over the B*C chunks (balanced
 *    for any C); per-chunk sums in double of the data shifted by the channel's first value
 *    (exact in double, so sum/sum-of-squares has no cancellation problem), then summed per
 *    channel in double. The output passes use the centred form (x - mean) * scale + shift.
 *    Forward reads x twice and writes out once; backward reads x and dout twice. HW == 1
 *    (BatchNorm1d) runs over rows of C with per-column double accumulators.
 *  - outputs of 16 MiB and more are written with streaming (non-temporal) stores: measured
 *    -12% on layernorm (6304, 768) and up to -8% on the batchnorm cases above.
 *
 * SyncBN (c->bn_sync set, training mode; semantics in ops/norm.h, reference
 * torch.nn.SyncBatchNorm / torch.batch_norm_gather_stats_with_counts): the forward computes each
 * rank's per-channel (count, mean, M2) with the shifted sums above, all-gathers them and combines
 * them in rank order in double (Chan et al.'s pairwise update, no sum-of-squares cancellation):
 *   n = sum n_r,  mean = sum n_r mean_r / n,  M2 = sum (M2_r + n_r (mean_r - mean)^2),
 *   var = M2 / n (biased, normalisation), M2 / (n - 1) (unbiased, running_var).
 * The backward all-reduces (sum dout, sum dout * (x - mean), count) per channel, then
 *   dinp = gamma rstd (dout - sum(dout)/n - xhat sum(dout xhat)/n)
 * with the global sums; dgamma/dbeta take the local sums (the trainer sums the gradients).
 * c->bn_sync == NULL runs the local code unchanged.
 */
#include "ops/norm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void)
{
    return 0;
}
#endif

#include "core/common.h"
#include "core/dist.h"

#define NORM_PARALLEL_MIN 16384      /* elements below which one thread is faster */
#define LN_BLOCK          32         /* rows summed in float before adding to the double partials */
#define BN_COL_BLOCK      256        /* channels per task in the HW == 1 path */
#define NORM_BLOCK        1024       /* floats computed in L1 before a streaming copy */
#define NORM_STREAM_BYTES (16 << 20) /* outputs at least this big bypass the cache */

/* ------------------------------------------------------------------------------------------ */
/* Reference (plain loops, double accumulation).                                              */
/* ------------------------------------------------------------------------------------------ */

void layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int N, int C, float eps)
{
    SG_CHECK(N >= 0 && C > 0, "layernorm: N=%d, C=%d", N, C);
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double m = 0.0, v = 0.0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= C;
        double s = 1.0 / sqrt(v + eps);
        for (int i = 0; i < C; i++) {
            double xhat = (x[i] - m) * s;
            y[i] = (float)(xhat * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f));
        }
        if (mean) mean[n] = (float)m;
        if (rstd) rstd[n] = (float)s;
    }
}

void layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, int N, int C)
{
    double *dwa = sg_xcalloc((size_t)C, sizeof(double));
    double *dba = sg_xcalloc((size_t)C, sizeof(double));
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double m = mean[n], s = rstd[n], g_mean = 0.0, gx_mean = 0.0;
        for (int i = 0; i < C; i++) {
            double xhat = (x[i] - m) * s, g = dy[i] * (w ? w[i] : 1.0f);
            g_mean += g;
            gx_mean += g * xhat;
            dwa[i] += dy[i] * xhat;
            dba[i] += dy[i];
        }
        g_mean /= C;
        gx_mean /= C;
        for (int i = 0; dinp && i < C; i++) {
            double xhat = (x[i] - m) * s, g = dy[i] * (w ? w[i] : 1.0f);
            dinp[(size_t)n * C + i] = (float)((g - g_mean - xhat * gx_mean) * s);
        }
    }
    for (int i = 0; i < C; i++) {
        if (dw) dw[i] += (float)dwa[i];
        if (db) db[i] += (float)dba[i];
    }
    free(dwa);
    free(dba);
}

void batchnorm2d_forward_ref(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                             const float *inp, const float *gamma, const float *beta, int B, int C,
                             int HW, float momentum, float eps, int training)
{
    int64_t n = (int64_t)B * HW;
    SG_CHECK(!training || n > 1, "batchnorm training needs more than 1 value per channel");
    SG_CHECK(training || (run_mean && run_var), "batchnorm eval needs running statistics");
    for (int c = 0; c < C; c++) {
        double m = 0.0, v = 0.0;
        if (training) {
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) m += inp[((size_t)b * C + c) * HW + i];
            m /= (double)n;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    double d = inp[((size_t)b * C + c) * HW + i] - m;
                    v += d * d;
                }
            v /= (double)n;
            if (run_mean) run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * m);
            if (run_var)
                run_var[c] = (float)((1.0 - momentum) * run_var[c] +
                                     momentum * v * (double)n / (double)(n - 1));
        } else {
            m = run_mean[c];
            v = run_var[c];
        }
        double s = 1.0 / sqrt(v + eps);
        double g = gamma ? gamma[c] : 1.0, bb = beta ? beta[c] : 0.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)b * C + c) * HW + i;
                out[k] = (float)((inp[k] - m) * s * g + bb);
            }
        if (mean) mean[c] = (float)m;
        if (rstd) rstd[c] = (float)s;
    }
}

void batchnorm2d_backward_ref(float *dinp, float *dgamma, float *dbeta, const float *dout,
                              const float *inp, const float *gamma, const float *mean,
                              const float *rstd, int B, int C, int HW, int training)
{
    double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double m = mean[c], s = rstd[c], g = gamma ? gamma[c] : 1.0;
        double sdy = 0.0, sdyx = 0.0; /* sum(dout), sum(dout * xhat) */
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)b * C + c) * HW + i;
                sdy += dout[k];
                sdyx += dout[k] * (inp[k] - m) * s;
            }
        if (dgamma) dgamma[c] += (float)sdyx;
        if (dbeta) dbeta[c] += (float)sdy;
        for (int b = 0; dinp && b < B; b++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)b * C + c) * HW + i;
                double xhat = (inp[k] - m) * s;
                double d = training ? dout[k] - sdy / n - xhat * sdyx / n : dout[k];
                dinp[k] = (float)(g * s * d);
            }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Fast CPU path: shared helpers.                                                             */
/* ------------------------------------------------------------------------------------------ */

static int threads_for(const struct sg_ctx *c, int64_t elems)
{
    return elems < NORM_PARALLEL_MIN ? 1 : c->nthreads;
}

/* Outputs of at least NORM_STREAM_BYTES are written with non-temporal stores: they do not fit
 * in the last-level cache anyway, and a streaming store skips the read-for-ownership of the
 * destination line (the forward then moves 3 instead of 4 tensors' worth of bytes). */
static int use_stream(int64_t n_out)
{
    return n_out * (int64_t)sizeof(float) >= NORM_STREAM_BYTES;
}

/* dst(n) = src(n) with non-temporal stores where the ISA has them. A thread that used it calls
 * stream_fence() once at the end of its share of the work (not per call: sfence waits for the
 * write-combining buffers to drain). */
static void stream_copy(float *restrict dst, const float *restrict src, int n)
{
#ifdef __AVX__
    int i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 31) != 0; i++) dst[i] = src[i];
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; i++) dst[i] = src[i];
#else
    memcpy(dst, src, sizeof(float) * (size_t)n);
#endif
}

static void stream_fence(void)
{
#ifdef __AVX__
    _mm_sfence();
#endif
}

/* BatchNorm chunk reductions in double, written with GCC/Clang vector extensions: NACC
 * independent 4-wide accumulators (not bound by the add latency; no -ffast-math needed). A
 * channel's sum is then the double sum of its B chunk sums (blocked, pairwise-like). Vectors
 * never cross a function boundary (their calling convention depends on -march). */
typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));
#define NACC 4

/* sum of the lanes of acc[NACC] */
static double hsum4d(const v4d *acc)
{
    double s = 0.0;
    for (int j = 0; j < 4; j++) s += ((acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]));
    return s;
}

static double hsum8f(const v8f *acc)
{
    double s = 0.0;
    for (int j = 0; j < 8; j++)
        s += ((double)acc[0][j] + acc[1][j]) + ((double)acc[2][j] + acc[3][j]);
    return s;
}

/* s1 = sum(x - K), s2 = sum((x - K)^2) over x(n). x - K is exact in double, so with K a value of
 * the data (near the mean) s2/n - (s1/n)^2 is the variance without cancellation trouble. */
static void shifted_sums(const float *restrict x, int n, double K, double *s1, double *s2)
{
    v4d a[NACC] = {{0}}, q[NACC] = {{0}}, k = {K, K, K, K};
    int i = 0;
    for (; i + 4 * NACC <= n; i += 4 * NACC)
        for (int u = 0; u < NACC; u++) {
            v4f f;
            memcpy(&f, x + i + 4 * u, sizeof f);
            v4d d = __builtin_convertvector(f, v4d) - k;
            a[u] += d;
            q[u] += d * d;
        }
    double sa = hsum4d(a), sq = hsum4d(q);
    for (; i < n; i++) {
        double d = (double)x[i] - K;
        sa += d;
        sq += d * d;
    }
    *s1 = sa;
    *s2 = sq;
}

/* s1 = sum(dy), s2 = sum(dy * (x - m)) over n elements, in double. */
static void grad_sums(const float *restrict dy, const float *restrict x, double m, int n,
                      double *s1, double *s2)
{
    v4d a[NACC] = {{0}}, q[NACC] = {{0}}, mm = {m, m, m, m};
    int i = 0;
    for (; i + 4 * NACC <= n; i += 4 * NACC)
        for (int u = 0; u < NACC; u++) {
            v4f fg, fx;
            memcpy(&fg, dy + i + 4 * u, sizeof fg);
            memcpy(&fx, x + i + 4 * u, sizeof fx);
            v4d g = __builtin_convertvector(fg, v4d);
            a[u] += g;
            q[u] += g * (__builtin_convertvector(fx, v4d) - mm);
        }
    double sa = hsum4d(a), sq = hsum4d(q);
    for (; i < n; i++) {
        sa += dy[i];
        sq += (double)dy[i] * ((double)x[i] - m);
    }
    *s1 = sa;
    *s2 = sq;
}

/* LayerNorm rows are short (C/32 values per lane), so their sums use float lanes (4x cheaper
 * than double when the row is in L1), combined in double at the end. */

/* shifted_sums for a row, float lanes. */
static void row_shifted_sums(const float *restrict x, int n, float K, double *s1, double *s2)
{
    v8f a[NACC] = {{0}}, q[NACC] = {{0}}, k = (v8f){0} + K;
    int i = 0;
    for (; i + 8 * NACC <= n; i += 8 * NACC)
        for (int u = 0; u < NACC; u++) {
            v8f d;
            memcpy(&d, x + i + 8 * u, sizeof d);
            d -= k;
            a[u] += d;
            q[u] += d * d;
        }
    double sa = hsum8f(a), sq = hsum8f(q);
    for (; i < n; i++) {
        double d = (double)x[i] - K;
        sa += d;
        sq += d * d;
    }
    *s1 = sa;
    *s2 = sq;
}

/* sg = sum(g), sgx = sum(g * (x - m)) for a row, g = dy * w (w NULL: g = dy), float lanes. */
static void row_grad_sums(const float *restrict dy, const float *restrict w,
                          const float *restrict x, float m, int n, double *sg, double *sgx)
{
    v8f a[NACC] = {{0}}, q[NACC] = {{0}}, mm = (v8f){0} + m;
    int i = 0;
    for (; i + 8 * NACC <= n; i += 8 * NACC)
        for (int u = 0; u < NACC; u++) {
            v8f g, xv, wv = (v8f){0} + 1.0f;
            memcpy(&g, dy + i + 8 * u, sizeof g);
            memcpy(&xv, x + i + 8 * u, sizeof xv);
            if (w) memcpy(&wv, w + i + 8 * u, sizeof wv);
            g *= wv;
            a[u] += g;
            q[u] += g * (xv - mm);
        }
    double sa = hsum8f(a), sq = hsum8f(q);
    for (; i < n; i++) {
        double g = w ? (double)dy[i] * w[i] : dy[i];
        sa += g;
        sq += g * ((double)x[i] - m);
    }
    *sg = sa;
    *sgx = sq;
}

/* p + i, NULL stays NULL (optional buffers). */
static const float *off(const float *p, size_t i)
{
    return p ? p + i : NULL;
}

static float *offm(float *p, size_t i)
{
    return p ? p + i : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Fast CPU path: LayerNorm.                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* y(n) = (x - m) * r [* w] [+ b] */
static void ln_span(float *restrict y, const float *restrict x, const float *restrict w,
                    const float *restrict b, float m, float r, int n)
{
    if (w && b) {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i] + b[i];
    } else if (w) {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i];
    } else if (b) {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = (x[i] - m) * r + b[i];
    } else {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = (x[i] - m) * r;
    }
}

/* One row of C: statistics, then y(C) (through an L1 block and streaming stores if stream). */
static void ln_row_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, int C, float eps, int stream)
{
    double s1, s2;
    row_shifted_sums(x, C, x[0], &s1, &s2);
    double d = s1 / C;
    float m = (float)(x[0] + d), r = (float)(1.0 / sqrt(SG_MAX(s2 / C - d * d, 0.0) + eps));
    if (mean) *mean = m;
    if (rstd) *rstd = r;
    if (!stream) {
        ln_span(y, x, w, b, m, r, C);
        return;
    }
    float tmp[NORM_BLOCK];
    for (int i = 0; i < C; i += NORM_BLOCK) {
        int n = SG_MIN(NORM_BLOCK, C - i);
        ln_span(tmp, x + i, off(w, i), off(b, i), m, r, n);
        stream_copy(y + i, tmp, n);
    }
}

void layernorm_forward_cpu(struct sg_ctx *c, float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int N, int C, float eps)
{
    SG_CHECK(N >= 0 && C > 0, "layernorm: N=%d, C=%d", N, C);
    int64_t n = (int64_t)N * C;
    int stream = use_stream(n);
#pragma omp parallel num_threads(threads_for(c, n))
    {
#pragma omp for schedule(static) nowait
        for (int r = 0; r < N; r++)
            ln_row_forward(out + (size_t)r * C, offm(mean, r), offm(rstd, r), inp + (size_t)r * C,
                           w, b, C, eps, stream);
        if (stream) stream_fence();
    }
}

/* dx(n) = (g - gm - xhat * gxm) * r with g = dy [* w], xhat = (x - m) * r; pw(n) += dy * xhat,
 * pb(n) += dy. Each output only when non-NULL. */
static void ln_bwd_span(float *restrict dx, float *restrict pw, float *restrict pb,
                        const float *restrict dy, const float *restrict x, const float *restrict w,
                        float m, float r, float gm, float gxm, int n)
{
    if (dx && w && pw && pb) { /* the usual case, fused */
#pragma omp simd
        for (int i = 0; i < n; i++) {
            float xh = (x[i] - m) * r;
            dx[i] = (dy[i] * w[i] - gm - xh * gxm) * r;
            pw[i] += dy[i] * xh;
            pb[i] += dy[i];
        }
        return;
    }
    if (dx && w) {
#pragma omp simd
        for (int i = 0; i < n; i++) dx[i] = (dy[i] * w[i] - gm - (x[i] - m) * r * gxm) * r;
    } else if (dx) {
#pragma omp simd
        for (int i = 0; i < n; i++) dx[i] = (dy[i] - gm - (x[i] - m) * r * gxm) * r;
    }
    if (pw) {
#pragma omp simd
        for (int i = 0; i < n; i++) pw[i] += dy[i] * ((x[i] - m) * r);
    }
    if (pb) {
#pragma omp simd
        for (int i = 0; i < n; i++) pb[i] += dy[i];
    }
}

/* One row of the backward: dx(C) overwritten, pw/pb(C) (float partials of dw/db) accumulated;
 * each only when non-NULL. */
static void ln_row_backward(float *dx, float *pw, float *pb, const float *dy, const float *x,
                            const float *w, float m, float r, int C, int stream)
{
    float gm = 0.0f, gxm = 0.0f; /* mean(g), mean(g * xhat) */
    if (dx) {
        double sg, sgx;
        row_grad_sums(dy, w, x, m, C, &sg, &sgx);
        gm = (float)(sg / C);
        gxm = (float)(sgx * r / C);
    }
    if (!stream || !dx) {
        ln_bwd_span(dx, pw, pb, dy, x, w, m, r, gm, gxm, C);
        return;
    }
    float tmp[NORM_BLOCK];
    for (int i = 0; i < C; i += NORM_BLOCK) {
        int n = SG_MIN(NORM_BLOCK, C - i);
        ln_bwd_span(tmp, offm(pw, i), offm(pb, i), dy + i, x + i, off(w, i), m, r, gm, gxm, n);
        stream_copy(dx + i, tmp, n);
    }
}

/* acc(C) += part(C) in double, part zeroed. */
static void flush_partial(double *restrict acc, float *restrict part, int C)
{
#pragma omp simd
    for (int i = 0; i < C; i++) {
        acc[i] += part[i];
        part[i] = 0.0f;
    }
}

void layernorm_backward_cpu(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd,
                            int N, int C)
{
    int nt = threads_for(c, (int64_t)N * C), stream = use_stream((int64_t)N * C);
    /* per thread t: dw, db partials in float (blocks of LN_BLOCK rows) and double (all rows) */
    double *acc = sg_xcalloc((size_t)nt * 2 * C, sizeof(double));
    float *part = sg_xcalloc((size_t)nt * 2 * C, sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), cnt = 0;
        double *aw = acc + (size_t)t * 2 * C, *ab = aw + C;
        float *pw = dw ? part + (size_t)t * 2 * C : NULL;
        float *pb = db ? part + (size_t)t * 2 * C + C : NULL;
#pragma omp for schedule(static) nowait
        for (int r = 0; r < N; r++) {
            size_t o = (size_t)r * C;
            ln_row_backward(offm(dinp, o), pw, pb, dout + o, inp + o, w, mean[r], rstd[r], C,
                            stream);
            if (++cnt == LN_BLOCK) {
                if (pw) flush_partial(aw, pw, C);
                if (pb) flush_partial(ab, pb, C);
                cnt = 0;
            }
        }
        if (pw) flush_partial(aw, pw, C);
        if (pb) flush_partial(ab, pb, C);
        if (stream) stream_fence();
#pragma omp barrier
#pragma omp for schedule(static)
        for (int i = 0; i < C; i++) {
            double sw = 0.0, sb = 0.0;
            for (int k = 0; k < nt; k++) {
                sw += acc[(size_t)k * 2 * C + i];
                sb += acc[(size_t)k * 2 * C + C + i];
            }
            if (dw) dw[i] += (float)sw;
            if (db) db[i] += (float)sb;
        }
    }
    free(acc);
    free(part);
}

/* ------------------------------------------------------------------------------------------ */
/* Fast CPU path: BatchNorm2d. Layout inp(B,C,HW): chunk j = (b,c) is HW contiguous floats at  */
/* j*HW, channel j % C. Per-channel sums are taken of x - K[c], K[c] = inp[c*HW] (a value of   */
/* the channel). HW == 1 (BatchNorm1d) runs over rows of C instead (per-column accumulators).  */
/* ------------------------------------------------------------------------------------------ */

/* s1(c), s2(c) = sums over b of the per-chunk pairs cs(B,C,2). Called inside a parallel
 * region (the loop is shared among its threads). */
static void combine_chunks(double *s1, double *s2, const double *cs, int B, int C)
{
#pragma omp for schedule(static)
    for (int c = 0; c < C; c++) {
        double a = 0.0, q = 0.0;
        for (int b = 0; b < B; b++) {
            a += cs[2 * ((size_t)b * C + c)];
            q += cs[2 * ((size_t)b * C + c) + 1];
        }
        s1[c] = a;
        s2[c] = q;
    }
}

/* s1(C) = sum(x - K), s2(C) = sum((x - K)^2) per channel over (B,HW), in double. */
static void bn_sums(double *s1, double *s2, const float *inp, int B, int C, int HW, int nt)
{
    if (HW == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int c0 = 0; c0 < C; c0 += BN_COL_BLOCK) {
            int c1 = SG_MIN(C, c0 + BN_COL_BLOCK);
            for (int c = c0; c < c1; c++) s1[c] = s2[c] = 0.0;
            for (int b = 0; b < B; b++) {
                const float *x = inp + (size_t)b * C;
#pragma omp simd
                for (int c = c0; c < c1; c++) {
                    double d = (double)x[c] - inp[c];
                    s1[c] += d;
                    s2[c] += d * d;
                }
            }
        }
        return;
    }
    double *cs = sg_xmalloc(sizeof(double) * 2 * (size_t)B * C); /* per chunk (s1, s2) */
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int64_t j = 0; j < (int64_t)B * C; j++)
            shifted_sums(inp + j * HW, HW, inp[(j % C) * HW], &cs[2 * j], &cs[2 * j + 1]);
        combine_chunks(s1, s2, cs, B, C);
    }
    free(cs);
}

/* s1(C) = sum(dout), s2(C) = sum(dout * (x - mean)) per channel, in double. */
static void bn_dsums(double *s1, double *s2, const float *dout, const float *inp, const float *mean,
                     int B, int C, int HW, int nt)
{
    if (HW == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int c0 = 0; c0 < C; c0 += BN_COL_BLOCK) {
            int c1 = SG_MIN(C, c0 + BN_COL_BLOCK);
            for (int c = c0; c < c1; c++) s1[c] = s2[c] = 0.0;
            for (int b = 0; b < B; b++) {
                const float *x = inp + (size_t)b * C, *dy = dout + (size_t)b * C;
#pragma omp simd
                for (int c = c0; c < c1; c++) {
                    s1[c] += dy[c];
                    s2[c] += (double)dy[c] * ((double)x[c] - mean[c]);
                }
            }
        }
        return;
    }
    double *cs = sg_xmalloc(sizeof(double) * 2 * (size_t)B * C);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int64_t j = 0; j < (int64_t)B * C; j++)
            grad_sums(dout + j * HW, inp + j * HW, mean[j % C], HW, &cs[2 * j], &cs[2 * j + 1]);
        combine_chunks(s1, s2, cs, B, C);
    }
    free(cs);
}

/* Per-channel coefficients of y = u * p + (v - m) * q + k, arrays of C each. The centred form
 * (v - m) keeps the result accurate when |mean| >> std. */
struct bn_coef {
    float *p, *q, *m, *k;
};

static struct bn_coef bn_coef_alloc(int C)
{
    float *all = sg_xcalloc(4 * (size_t)C, sizeof(float));
    return (struct bn_coef){all, all + C, all + 2 * (size_t)C, all + 3 * (size_t)C};
}

/* y(n) = u * p + (v - m) * q + k; u NULL: no u term, v NULL: no v term. */
static void bn_span(float *restrict y, const float *restrict u, const float *restrict v, float p,
                    float q, float m, float k, int n)
{
    if (u && v) {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = u[i] * p + (v[i] - m) * q + k;
    } else if (v) {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = (v[i] - m) * q + k;
    } else {
#pragma omp simd
        for (int i = 0; i < n; i++) y[i] = u[i] * p + k;
    }
}

/* One chunk j of channel c: bn_span, through an L1 block and streaming stores if stream. */
static void bn_chunk(float *y, const float *u, const float *v, const struct bn_coef *f, int c,
                     int HW, int stream)
{
    if (!stream) {
        bn_span(y, u, v, f->p[c], f->q[c], f->m[c], f->k[c], HW);
        return;
    }
    float tmp[NORM_BLOCK];
    for (int i = 0; i < HW; i += NORM_BLOCK) {
        int n = SG_MIN(NORM_BLOCK, HW - i);
        bn_span(tmp, off(u, i), off(v, i), f->p[c], f->q[c], f->m[c], f->k[c], n);
        stream_copy(y + i, tmp, n);
    }
}

/* One row b of the HW == 1 layout: y(C) = u * p + (v - m) * q + k per column. */
static void bn_row(float *restrict y, const float *restrict u, const float *restrict v,
                   const struct bn_coef *f, int C)
{
    const float *restrict p = f->p, *restrict q = f->q, *restrict m = f->m, *restrict k = f->k;
    if (u && v) {
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = u[c] * p[c] + (v[c] - m[c]) * q[c] + k[c];
    } else if (v) {
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (v[c] - m[c]) * q[c] + k[c];
    } else {
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = u[c] * p[c] + k[c];
    }
}

/* y = u * p[c] + (v - m[c]) * q[c] + k[c] over (B,C,HW). Forward: v = x (u NULL); backward:
 * u = dout, v = x (training) or NULL (eval). */
static void bn_apply(float *y, const float *u, const float *v, const struct bn_coef *f, int B,
                     int C, int HW, int nt)
{
    if (HW == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int b = 0; b < B; b++)
            bn_row(y + (size_t)b * C, off(u, (size_t)b * C), off(v, (size_t)b * C), f, C);
        return;
    }
    int stream = use_stream((int64_t)B * C * HW);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static) nowait
        for (int64_t j = 0; j < (int64_t)B * C; j++) {
            size_t o = (size_t)j * HW;
            bn_chunk(y + o, off(u, o), off(v, o), f, (int)(j % C), HW, stream);
        }
        if (stream) stream_fence();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* SyncBN: BatchNorm statistics over the ranks of c->bn_sync (training mode).                  */
/* ------------------------------------------------------------------------------------------ */

/* A failed collective (time-out, dead rank, library error) cannot be returned through the void
 * ops: the rank cannot continue without the others' statistics, so it stops here with the dist
 * error (the launcher then tears the job down). */
static void bn_sync_ok(int rc, const struct sg_dist *d, const char *what)
{
    if (rc)
        SG_PANIC("SyncBN %s failed on rank %d of %d: %s", what, d->rank, d->world, sg_last_error());
}

static struct sg_dist *bn_sync_dist(const struct sg_ctx *c)
{
    struct sg_dist *d = c->bn_sync;
    SG_CHECK(d->backend != SG_DIST_NCCL,
             "SyncBN on the CPU needs a host-memory dist backend (single or mpi), not nccl");
    return d;
}

/* This rank's row(1 + 2C) = (count, mean(C), M2(C)) of inp(B,C,HW), M2 = sum (x - mean)^2. */
static void bn_local_moments(double *row, const float *inp, int B, int C, int HW, int nt)
{
    int64_t n = (int64_t)B * HW;
    row[0] = (double)n;
    if (n == 0) return;                                     /* row zeroed by the caller */
    double *s = sg_xmalloc(sizeof(double) * 2 * (size_t)C); /* shifted s1(C), s2(C) */
    bn_sums(s, s + C, inp, B, C, HW, nt);
    for (int ch = 0; ch < C; ch++) {
        double d = s[ch] / (double)n;
        row[1 + ch] = inp[(size_t)ch * HW] + d;
        row[1 + C + ch] = SG_MAX(s[C + ch] - s[ch] * d, 0.0);
    }
    free(s);
}

/* Global mean m(C) and biased variance v(C) over every rank's batch; returns the global count.
 * Every rank combines the gathered rows in rank order: the same bits everywhere. */
static double bn_sync_moments(struct sg_ctx *c, double *m, double *v, const float *inp, int B,
                              int C, int HW, int nt)
{
    struct sg_dist *d = bn_sync_dist(c);
    size_t per = 1 + 2 * (size_t)C;
    double *all = sg_xcalloc(per * (size_t)d->world, sizeof(double)); /* (W, 1 + 2C) */
    double *mine = all + per * (size_t)d->rank;
    bn_local_moments(mine, inp, B, C, HW, nt);
    bn_sync_ok(sg_dist_allgather(d, all, mine, per * sizeof(double)), d, "allgather of moments");
    double n = 0.0;
    for (int r = 0; r < d->world; r++) n += all[per * (size_t)r];
    SG_CHECK(n > 1, "batchnorm training needs more than 1 value per channel (all ranks: %.0f)", n);
    for (int ch = 0; ch < C; ch++) {
        double sm = 0.0, m2 = 0.0;
        for (int r = 0; r < d->world; r++) sm += all[per * r] * all[per * r + 1 + ch];
        double mu = sm / n;
        for (int r = 0; r < d->world; r++) {
            double dm = all[per * r + 1 + ch] - mu;
            m2 += all[per * r + 1 + C + ch] + all[per * r] * dm * dm;
        }
        m[ch] = mu;
        v[ch] = m2 / n;
    }
    free(all);
    return n;
}

static void bn_forward_sync(struct sg_ctx *c, float *out, float *mean, float *rstd, float *run_mean,
                            float *run_var, const float *inp, const float *gamma, const float *beta,
                            int B, int C, int HW, float momentum, float eps)
{
    int nt = threads_for(c, (int64_t)B * C * HW);
    double *st = sg_xmalloc(sizeof(double) * 2 * (size_t)C); /* mean(C), var(C): global */
    double n = bn_sync_moments(c, st, st + C, inp, B, C, HW, nt);
    struct bn_coef f = bn_coef_alloc(C); /* out = (x - m) * q + k */
    for (int ch = 0; ch < C; ch++) {
        double m = st[ch], v = st[C + ch], r = 1.0 / sqrt(v + eps);
        if (run_mean) run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * m);
        if (run_var)
            run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + momentum * v * n / (n - 1.0));
        f.m[ch] = (float)m;
        f.q[ch] = (float)(r * (gamma ? gamma[ch] : 1.0));
        f.k[ch] = beta ? beta[ch] : 0.0f;
        if (mean) mean[ch] = (float)m;
        if (rstd) rstd[ch] = (float)r;
    }
    bn_apply(out, NULL, inp, &f, B, C, HW, nt);
    free(st);
    free(f.p);
}

static void bn_backward_sync(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                             const float *dout, const float *inp, const float *gamma,
                             const float *mean, const float *rstd, int B, int C, int HW)
{
    struct sg_dist *d = bn_sync_dist(c);
    int64_t nl = (int64_t)B * HW;
    int nt = threads_for(c, nl * C);
    /* sum(dout)(C), sum(dout * (x - mean))(C), count: this rank's, then all ranks' */
    double *s = sg_xcalloc(2 * (size_t)C + 1, sizeof(double));
    if (nl > 0 && (dgamma || dbeta || dinp)) bn_dsums(s, s + C, dout, inp, mean, B, C, HW, nt);
    for (int ch = 0; ch < C; ch++) { /* local sums: the caller sums them over the ranks */
        if (dgamma) dgamma[ch] += (float)(s[C + ch] * rstd[ch]);
        if (dbeta) dbeta[ch] += (float)s[ch];
    }
    if (dinp) {
        s[2 * C] = (double)nl;
        bn_sync_ok(sg_dist_allreduce_sum_f64(d, s, 2 * (int64_t)C + 1), d, "allreduce of sums");
        double n = s[2 * C];
        struct bn_coef f = bn_coef_alloc(C); /* dinp = dout * p + (x - m) * q + k */
        for (int ch = 0; ch < C; ch++) {
            double r = rstd[ch], a = r * (gamma ? gamma[ch] : 1.0);
            double sdy = s[ch], sdyx = s[C + ch] * r; /* global sum(dout), sum(dout * xhat) */
            f.p[ch] = (float)a;
            f.m[ch] = mean[ch];
            f.q[ch] = (float)(-a * r * sdyx / n);
            f.k[ch] = (float)(-a * sdy / n);
        }
        bn_apply(dinp, dout, inp, &f, B, C, HW, nt);
        free(f.p);
    }
    free(s);
}

void batchnorm2d_forward_cpu(struct sg_ctx *c, float *out, float *mean, float *rstd,
                             float *run_mean, float *run_var, const float *inp, const float *gamma,
                             const float *beta, int B, int C, int HW, float momentum, float eps,
                             int training)
{
    if (training && c->bn_sync) {
        bn_forward_sync(c, out, mean, rstd, run_mean, run_var, inp, gamma, beta, B, C, HW, momentum,
                        eps);
        return;
    }
    int64_t n = (int64_t)B * HW;
    SG_CHECK(!training || n > 1, "batchnorm training needs more than 1 value per channel");
    SG_CHECK(training || (run_mean && run_var), "batchnorm eval needs running statistics");
    int nt = threads_for(c, n * C);
    double *s = sg_xmalloc(sizeof(double) * 2 * (size_t)C);
    struct bn_coef f = bn_coef_alloc(C); /* out = (x - m) * q + k */
    if (training) bn_sums(s, s + C, inp, B, C, HW, nt);
    for (int ch = 0; ch < C; ch++) {
        double m, v;
        if (training) {
            double d = s[ch] / (double)n;
            m = inp[(size_t)ch * HW] + d;
            v = SG_MAX(s[C + ch] / (double)n - d * d, 0.0);
            if (run_mean) run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * m);
            if (run_var)
                run_var[ch] = (float)((1.0 - momentum) * run_var[ch] +
                                      momentum * v * (double)n / (double)(n - 1));
        } else {
            m = run_mean[ch];
            v = run_var[ch];
        }
        double r = 1.0 / sqrt(v + eps);
        f.m[ch] = (float)m;
        f.q[ch] = (float)(r * (gamma ? gamma[ch] : 1.0));
        f.k[ch] = beta ? beta[ch] : 0.0f;
        if (mean) mean[ch] = (float)m;
        if (rstd) rstd[ch] = (float)r;
    }
    bn_apply(out, NULL, inp, &f, B, C, HW, nt);
    free(s);
    free(f.p);
}

void batchnorm2d_backward_cpu(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                              const float *dout, const float *inp, const float *gamma,
                              const float *mean, const float *rstd, int B, int C, int HW,
                              int training)
{
    if (training && c->bn_sync) {
        bn_backward_sync(c, dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, B, C, HW);
        return;
    }
    double n = (double)B * HW;
    int nt = threads_for(c, (int64_t)B * C * HW);
    int need_sums = dgamma || dbeta || (dinp && training);
    double *s = sg_xcalloc(2 * (size_t)C, sizeof(double));
    struct bn_coef f = bn_coef_alloc(C); /* dinp = dout * p + (x - m) * q + k */
    if (need_sums) bn_dsums(s, s + C, dout, inp, mean, B, C, HW, nt);
    for (int ch = 0; ch < C; ch++) {
        double r = rstd[ch], a = r * (gamma ? gamma[ch] : 1.0);
        double sdy = s[ch], sdyx = s[C + ch] * r; /* sum(dout), sum(dout * xhat) */
        if (dgamma) dgamma[ch] += (float)sdyx;
        if (dbeta) dbeta[ch] += (float)sdy;
        /* training: dinp = a * (dout - sdy/n - xhat * sdyx/n), xhat = (x - mean) * r;
         * eval: dinp = a * dout (the statistics are constants) */
        f.p[ch] = (float)a;
        if (training) {
            f.m[ch] = mean[ch];
            f.q[ch] = (float)(-a * r * sdyx / n);
            f.k[ch] = (float)(-a * sdy / n);
        }
    }
    if (dinp) bn_apply(dinp, dout, training ? inp : NULL, &f, B, C, HW, nt);
    free(s);
    free(f.p);
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatchers.                                                                               */
/* ------------------------------------------------------------------------------------------ */

void op_layernorm_forward(struct sg_ctx *c, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        layernorm_forward_cpu(c, out, mean, rstd, inp, w, b, N, C, eps);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        layernorm_forward_cuda(c, out, mean, rstd, inp, w, b, N, C, eps);
        return;
#else
        break;
#endif
    }
    SG_PANIC("layernorm_forward: device %s not supported by this build", sg_device_name(c->dev));
}

void op_layernorm_backward(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        layernorm_backward_cpu(c, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        layernorm_backward_cuda(c, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
        return;
#else
        break;
#endif
    }
    SG_PANIC("layernorm_backward: device %s not supported by this build", sg_device_name(c->dev));
}

void op_batchnorm2d_forward(struct sg_ctx *c, float *out, float *mean, float *rstd, float *run_mean,
                            float *run_var, const float *inp, const float *gamma, const float *beta,
                            int B, int C, int HW, float momentum, float eps, int training)
{
    SG_CHECK(!training || !c->bn_sync || c->dev == SG_DEVICE_CPU,
             "batchnorm2d_forward: SyncBN (ctx bn_sync) runs on the CPU only");
    switch (c->dev) {
    case SG_DEVICE_CPU:
        batchnorm2d_forward_cpu(c, out, mean, rstd, run_mean, run_var, inp, gamma, beta, B, C, HW,
                                momentum, eps, training);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        batchnorm2d_forward_cuda(c, out, mean, rstd, run_mean, run_var, inp, gamma, beta, B, C, HW,
                                 momentum, eps, training);
        return;
#else
        SG_PANIC("batchnorm2d_forward: built without CUDA");
#endif
    }
    SG_PANIC("batchnorm2d_forward: device %s not supported", sg_device_name(c->dev));
}

void op_batchnorm2d_backward(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                             const float *dout, const float *inp, const float *gamma,
                             const float *mean, const float *rstd, int B, int C, int HW,
                             int training)
{
    SG_CHECK(!training || !c->bn_sync || c->dev == SG_DEVICE_CPU,
             "batchnorm2d_backward: SyncBN (ctx bn_sync) runs on the CPU only");
    switch (c->dev) {
    case SG_DEVICE_CPU:
        batchnorm2d_backward_cpu(c, dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, B, C, HW,
                                 training);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        batchnorm2d_backward_cuda(c, dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, B, C, HW,
                                  training);
        return;
#else
        SG_PANIC("batchnorm2d_backward: built without CUDA");
#endif
    }
    SG_PANIC("batchnorm2d_backward: device %s not supported", sg_device_name(c->dev));
}
