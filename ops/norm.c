/*
 * ops/norm.c — LayerNorm and BatchNorm2d (BatchNorm1d is HW = 1), forward and backward on the
 * host. Shapes and semantics: ops/norm.h. Torch references: F.layer_norm / torch.native_layer_norm
 * and F.batch_norm / torch.native_batch_norm (tests/ref/gen_norm.py).
 *
 * Gradient contract (ops/ops.h): dinp OVERWRITES, dw/db/dgamma/dbeta ACCUMULATE (+=), a NULL
 * gradient pointer is skipped. mean/rstd may also be NULL in forward when no backward follows.
 *
 * Fast CPU path (measured 2 threads, AMD EPYC AVX2, fwd+bwd ms, ours vs oneDNN 2.6 primitives
 * (dnnl_layer_normalization / dnnl_batch_normalization, f32, plain layouts, use_scale|use_shift,
 * plus our running-stat update and dgamma/dbeta accumulation)):
 *   layernorm (6304, 768)            ours  X.X   oneDNN  X.X
 *   layernorm (2464, 512)            ours  X.X   oneDNN  X.X
 *   batchnorm2d (32, 64, 56x56)      ours  X.X   oneDNN  X.X
 *   batchnorm2d (32, 2048, 7x7)      ours  X.X   oneDNN  X.X
 * so the hand loops are kept:
 *  - layernorm: OpenMP over rows, one fused pass per row (row in L1: mean, centred variance,
 *    normalise); backward keeps per-thread dw/db partials (float over blocks of LN_BLOCK rows,
 *    then double), reduced over threads at the end. Row sums use double SIMD reductions.
 *  - batchnorm: per-(b,c) chunks of HW contiguous floats, OpenMP over the B*C chunks (balanced
 *    for any C); per-chunk sums in double of the data shifted by the channel's first value
 *    (exact in double, so sum/sum-of-squares has no cancellation problem), combined per channel.
 *    Forward reads the input twice (stats, normalise) and writes once; backward reads x and
 *    dout twice. HW == 1 (BatchNorm1d) runs over rows of C with per-column accumulators.
 */
#include "ops/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void)
{
    return 0;
}
#endif

#include "core/common.h"

#define NORM_PARALLEL_MIN 16384 /* elements below which one thread is faster */
#define LN_BLOCK          32    /* rows summed in float before adding to the double partials */
#define BN_COL_BLOCK      256   /* channels per task in the HW == 1 path */

/* ------------------------------------------------------------------------------------------ */
/* Reference (plain loops, double accumulation).                                              */
/* ------------------------------------------------------------------------------------------ */

void layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int N, int C, float eps)
{
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
/* Fast CPU path: LayerNorm.                                                                  */
/* ------------------------------------------------------------------------------------------ */

static int threads_for(const struct sg_ctx *c, int64_t elems)
{
    return elems < NORM_PARALLEL_MIN ? 1 : c->nthreads;
}

/* Row/chunk reductions in double, written with GCC/Clang vector extensions: several independent
 * 4-wide accumulators (not bound by the add latency; no -ffast-math needed to vectorise). */

typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

static inline v4d load4d(const float *p)
{
    v4f f;
    memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, v4d);
}

static inline double hsum4(v4d v) { return (v[0] + v[2]) + (v[1] + v[3]); }

/* s1 = sum(x - K), s2 = sum((x - K)^2) over x(n). x - K is exact in double, so with K a value of
 * the data (near the mean) s2/n - (s1/n)^2 is the variance without cancellation trouble. */
static void shifted_sums(const float *restrict x, int n, double K, double *s1, double *s2)
{
    v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};
    v4d k = {K, K, K, K};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        v4d d0 = load4d(x + i) - k, d1 = load4d(x + i + 4) - k;
        v4d d2 = load4d(x + i + 8) - k, d3 = load4d(x + i + 12) - k;
        a0 += d0, a1 += d1, a2 += d2, a3 += d3;
        q0 += d0 * d0, q1 += d1 * d1, q2 += d2 * d2, q3 += d3 * d3;
    }
    double sa = hsum4((a0 + a1) + (a2 + a3)), sq = hsum4((q0 + q1) + (q2 + q3));
    for (; i < n; i++) {
        double d = (double)x[i] - K;
        sa += d;
        sq += d * d;
    }
    *s1 = sa;
    *s2 = sq;
}

/* sg = sum(g), sgx = sum(g * (x - m)) over n elements, g = dy * w (w NULL: g = dy). */
static void grad_sums(const float *restrict dy, const float *restrict w, const float *restrict x,
                      double m, int n, double *sg, double *sgx)
{
    v4d a0 = {0}, a1 = {0}, q0 = {0}, q1 = {0}, mm = {m, m, m, m};
    int i = 0;
    if (w) {
        for (; i + 8 <= n; i += 8) {
            v4d g0 = load4d(dy + i) * load4d(w + i), g1 = load4d(dy + i + 4) * load4d(w + i + 4);
            a0 += g0, a1 += g1;
            q0 += g0 * (load4d(x + i) - mm), q1 += g1 * (load4d(x + i + 4) - mm);
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            v4d g0 = load4d(dy + i), g1 = load4d(dy + i + 4);
            a0 += g0, a1 += g1;
            q0 += g0 * (load4d(x + i) - mm), q1 += g1 * (load4d(x + i + 4) - mm);
        }
    }
    double sa = hsum4(a0 + a1), sq = hsum4(q0 + q1);
    for (; i < n; i++) {
        double g = w ? (double)dy[i] * w[i] : dy[i];
        sa += g;
        sq += g * ((double)x[i] - m);
    }
    *sg = sa;
    *sgx = sq;
}

/* One row: y(C) = (x - mean) * rstd [* w] [+ b]. */
static void ln_row_forward(float *restrict y, float *mean, float *rstd, const float *restrict x,
                           const float *restrict w, const float *restrict b, int C, float eps)
{
    double s1, s2;
    shifted_sums(x, C, x[0], &s1, &s2);
    double d = s1 / C;
    float m = (float)(x[0] + d), r = (float)(1.0 / sqrt(SG_MAX(s2 / C - d * d, 0.0) + eps));
    if (w && b) {
#pragma omp simd
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * r * w[i] + b[i];
    } else if (w) {
#pragma omp simd
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * r * w[i];
    } else {
#pragma omp simd
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * r + (b ? b[i] : 0.0f);
    }
    if (mean) *mean = m;
    if (rstd) *rstd = r;
}

void layernorm_forward_cpu(struct sg_ctx *c, float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int N, int C, float eps)
{
#pragma omp parallel for num_threads(threads_for(c, (int64_t)N *C)) schedule(static)
    for (int n = 0; n < N; n++)
        ln_row_forward(out + (size_t)n * C, mean ? mean + n : NULL, rstd ? rstd + n : NULL,
                       inp + (size_t)n * C, w, b, C, eps);
}

/* One row of the backward. dx(C) overwritten when non-NULL; pw/pb(C) (float partials of
 * dw/db) accumulated when non-NULL. */
static void ln_row_backward(float *restrict dx, float *restrict pw, float *restrict pb,
                            const float *restrict dy, const float *restrict x,
                            const float *restrict w, float m, float r, int C)
{
    if (dx) {
        double sg, sgx; /* sum(g), sum(g * (x - m)), g = dy * w */
        grad_sums(dy, w, x, m, C, &sg, &sgx);
        float gm = (float)(sg / C), gxm = (float)(sgx * r / C);
        if (w && pw && pb) { /* the usual case, fused */
#pragma omp simd
            for (int i = 0; i < C; i++) {
                float xh = (x[i] - m) * r;
                dx[i] = (dy[i] * w[i] - gm - xh * gxm) * r;
                pw[i] += dy[i] * xh;
                pb[i] += dy[i];
            }
            return;
        }
#pragma omp simd
        for (int i = 0; i < C; i++)
            dx[i] = ((w ? dy[i] * w[i] : dy[i]) - gm - (x[i] - m) * r * gxm) * r;
    }
    if (pw) {
#pragma omp simd
        for (int i = 0; i < C; i++) pw[i] += dy[i] * ((x[i] - m) * r);
    }
    if (pb) {
#pragma omp simd
        for (int i = 0; i < C; i++) pb[i] += dy[i];
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
    int nt = threads_for(c, (int64_t)N * C);
    /* per thread: dw partial (float C), db partial (float C), dw acc (double C), db acc */
    double *acc = sg_xcalloc((size_t)nt * 2 * C, sizeof(double));
    float *part = sg_xcalloc((size_t)nt * 2 * C, sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), cnt = 0;
        double *aw = acc + (size_t)t * 2 * C, *ab = aw + C;
        float *pw = dw ? part + (size_t)t * 2 * C : NULL,
              *pb = db ? part + (size_t)t * 2 * C + C : NULL;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            size_t o = (size_t)n * C;
            ln_row_backward(dinp ? dinp + o : NULL, pw, pb, dout + o, inp + o, w, mean[n], rstd[n],
                            C);
            if (++cnt == LN_BLOCK) {
                if (pw) flush_partial(aw, pw, C);
                if (pb) flush_partial(ab, pb, C);
                cnt = 0;
            }
        }
        if (pw) flush_partial(aw, pw, C);
        if (pb) flush_partial(ab, pb, C);
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
/* Fast CPU path: BatchNorm2d. Layout inp(B,C,HW): chunk (b,c) = HW contiguous floats at       */
/* (b*C + c)*HW. Per-channel sums are taken of x - K[c], K[c] = inp[c*HW] (first value).      */
/* ------------------------------------------------------------------------------------------ */

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
        for (int64_t k = 0; k < (int64_t)B * C; k++) {
            shifted_sums(inp + k * HW, HW, inp[(k % C) * HW], &cs[2 * k], &cs[2 * k + 1]);
        }
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
    free(cs);
}

/* y = x * a[c] + k[c] over inp(B,C,HW). */
static void bn_scale_shift(float *y, const float *inp, const float *a, const float *k, int B, int C,
                           int HW, int nt)
{
    if (HW == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int b = 0; b < B; b++) {
            const float *restrict x = inp + (size_t)b * C;
            float *restrict o = y + (size_t)b * C;
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = x[c] * a[c] + k[c];
        }
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t j = 0; j < (int64_t)B * C; j++) {
        const float *restrict x = inp + j * HW;
        float *restrict o = y + j * HW;
        float aj = a[j % C], kj = k[j % C];
#pragma omp simd
        for (int i = 0; i < HW; i++) o[i] = x[i] * aj + kj;
    }
}

void batchnorm2d_forward_cpu(struct sg_ctx *c, float *out, float *mean, float *rstd,
                             float *run_mean, float *run_var, const float *inp, const float *gamma,
                             const float *beta, int B, int C, int HW, float momentum, float eps,
                             int training)
{
    int64_t n = (int64_t)B * HW;
    SG_CHECK(!training || n > 1, "batchnorm training needs more than 1 value per channel");
    SG_CHECK(training || (run_mean && run_var), "batchnorm eval needs running statistics");
    int nt = threads_for(c, n * C);
    double *s = sg_xmalloc(sizeof(double) * 2 * (size_t)C);
    float *ak = sg_xmalloc(sizeof(float) * 2 * (size_t)C); /* scale a(C), shift k(C) */
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
        double r = 1.0 / sqrt(v + eps), a = r * (gamma ? gamma[ch] : 1.0);
        ak[ch] = (float)a;
        ak[C + ch] = (float)((beta ? beta[ch] : 0.0) - m * a);
        if (mean) mean[ch] = (float)m;
        if (rstd) rstd[ch] = (float)r;
    }
    bn_scale_shift(out, inp, ak, ak + C, B, C, HW, nt);
    free(s);
    free(ak);
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
        for (int64_t k = 0; k < (int64_t)B * C; k++) {
            grad_sums(dout + k * HW, NULL, inp + k * HW, mean[k % C], HW, &cs[2 * k],
                      &cs[2 * k + 1]);
        }
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
    free(cs);
}

/* dinp = dout * p[c] + x * q[c] + k[c] over (B,C,HW). */
static void bn_dinp_train(float *dinp, const float *dout, const float *inp, const float *p,
                          const float *q, const float *k, int B, int C, int HW, int nt)
{
    if (HW == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int b = 0; b < B; b++) {
            size_t o = (size_t)b * C;
            const float *restrict dy = dout + o, *restrict x = inp + o;
            float *restrict dx = dinp + o;
#pragma omp simd
            for (int c = 0; c < C; c++) dx[c] = dy[c] * p[c] + x[c] * q[c] + k[c];
        }
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t j = 0; j < (int64_t)B * C; j++) {
        const float *restrict dy = dout + j * HW, *restrict x = inp + j * HW;
        float *restrict dx = dinp + j * HW;
        float pj = p[j % C], qj = q[j % C], kj = k[j % C];
#pragma omp simd
        for (int i = 0; i < HW; i++) dx[i] = dy[i] * pj + x[i] * qj + kj;
    }
}

void batchnorm2d_backward_cpu(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                              const float *dout, const float *inp, const float *gamma,
                              const float *mean, const float *rstd, int B, int C, int HW,
                              int training)
{
    double n = (double)B * HW;
    int nt = threads_for(c, (int64_t)B * C * HW);
    int need_sums = dgamma || dbeta || (dinp && training);
    double *s = sg_xcalloc(2 * (size_t)C, sizeof(double));
    float *pqk = sg_xcalloc(3 * (size_t)C, sizeof(float)); /* dinp = dout*p + x*q + k */
    if (need_sums) bn_dsums(s, s + C, dout, inp, mean, B, C, HW, nt);
    for (int ch = 0; ch < C; ch++) {
        double r = rstd[ch], a = r * (gamma ? gamma[ch] : 1.0);
        double sdy = s[ch], sdyx = s[C + ch] * r; /* sum(dout), sum(dout * xhat) */
        if (dgamma) dgamma[ch] += (float)sdyx;
        if (dbeta) dbeta[ch] += (float)sdy;
        pqk[ch] = (float)a;
        if (training) {
            /* dinp = a * (dout - sdy/n - xhat * sdyx/n), xhat = (x - mean) * r */
            double qx = -a * r * sdyx / n;
            pqk[C + ch] = (float)qx;
            pqk[2 * C + ch] = (float)(-a * sdy / n - qx * mean[ch]);
        }
    }
    if (dinp && training) bn_dinp_train(dinp, dout, inp, pqk, pqk + C, pqk + 2 * C, B, C, HW, nt);
    if (dinp && !training) bn_scale_shift(dinp, dout, pqk, pqk + 2 * C, B, C, HW, nt);
    free(s);
    free(pqk);
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
    switch (c->dev) {
    case SG_DEVICE_CPU:
        batchnorm2d_forward_cpu(c, out, mean, rstd, run_mean, run_var, inp, gamma, beta, B, C, HW,
                                momentum, eps, training);
        return;
    case SG_DEVICE_CUDA:
        break;
    }
    SG_PANIC("batchnorm2d_forward not implemented on CUDA yet");
}

void op_batchnorm2d_backward(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                             const float *dout, const float *inp, const float *gamma,
                             const float *mean, const float *rstd, int B, int C, int HW,
                             int training)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        batchnorm2d_backward_cpu(c, dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, B, C, HW,
                                 training);
        return;
    case SG_DEVICE_CUDA:
        break;
    }
    SG_PANIC("batchnorm2d_backward not implemented on CUDA yet");
}
