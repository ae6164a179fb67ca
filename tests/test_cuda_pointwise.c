/*
 * tests/test_cuda_pointwise.c — CUDA vs CPU for the small op families: pooling (max, avg,
 * adaptive avg), softmax, embedding, elementwise (add, accumulate, l2norm, dropout) and
 * cross-entropy, forward and backward, on odd and round shapes (N=1, 37x19, 4096x512,
 * 256x2048x7x7, CLIP's 256x77 tokens over a 49408 vocabulary). The reference is the CPU path
 * (op_* on a CPU context, itself verified against PyTorch by the CPU tests); inputs are random
 * (sg_test_fill). Also: the gradient contract (parameter grads — embedding table, add/accumulate —
 * ACCUMULATE over two calls from a random start; activation grads OVERWRITE NaN-filled buffers,
 * called twice), NULL skips, in-place aliasing where documented, run-to-run bit equality of every
 * reduction, dropout mask statistics. Exits 77 (ctest SKIP) when no CUDA GPU is visible.
 *
 * Tolerances (check_dev: |got - ref| <= rel * rms(ref) + rtol * |ref|):
 *  - exact (atol = rtol = 0; the same IEEE operations in the same order): maxpool out/argmax/dinp,
 *    avgpool out, adaptive avgpool for OH*OW > 1, embedding forward, add/accumulate,
 *    dropout apply/backward, cross-entropy backward (pointwise from the same probs; 1e-6 rtol
 *    margin), and the embedding backward on DYADIC data (multiples of 1/64 whose sums are exact in
 *    float, so any summation order must give the CPU's bits).
 *  - avgpool backward: FMA vs separate multiply-add, up to 25 terms: rel 1e-5, rtol 1e-5. Global
 *    average pool: float plane sums (49..703 terms) in another order: rel 1e-5, rtol 1e-5.
 *  - softmax / cross-entropy / l2norm: float row sums (lane partials + tree) and CUDA expf/logf vs
 *    the CPU's double sums and polynomial exp (8.5e-8): ~C * 6e-8 worst case, ~1e-6 typical;
 *    rel 1e-5 of rms, rtol 1e-5 (1e-4 for backward, where y * (dy - dot) cancels).
 *  - embedding backward on random (non-dyadic) data: sums of a few terms in tile order: rel 1e-5.
 *  - dropout mask: keep fraction within 6 sigma of ceil((1-p) 2^24) / 2^24, adjacent-pair keep
 *    fraction within 6 sigma of keep^2 (catches a correlated hash).
 * Failures print the first mismatches (index, got, ref) and the max difference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/rng.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/loss.h"
#include "ops/pool.h"
#include "ops/softmax.h"
#include "tests/testutil.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Multiples of 1/64 in [-1, 1]: sums of up to 2^17 of them are exact in float. */
static float *host_dyadic(int64_t n, uint64_t seed)
{
    float *x = sg_test_rand(n, seed, -1, 1);
    for (int64_t i = 0; i < n; i++) x[i] = roundf(x[i] * 64.0f) / 64.0f;
    return x;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *to_dev_bytes(struct sg_ctx *g, const void *h, size_t bytes)
{
    void *d = sg_dev_alloc(g, bytes ? bytes : 1);
    if (bytes) sg_memcpy_h2d(g, d, h, bytes);
    return d;
}

/* Device float buffer of n NaNs (an overwrite must replace every one). */
static float *dev_nan(struct sg_ctx *g, int64_t n)
{
    float *h = sg_test_nan(n), *d = sg_test_to_dev(g, h, n);
    free(h);
    return d;
}

static double rms(const float *x, int64_t n)
{
    double s = 0.0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += (double)x[i] * x[i];
            m++;
        }
    return m ? sqrt(s / (double)m) : 0.0;
}

/* Device buffer vs host reference; atol = rel * rms(ref) (floored at 1e-7, or 0 when rel == 0). */
static int check_dev(struct sg_ctx *g, const char *label, const float *d, const float *ref,
                     int64_t n, float rel, float rtol)
{
    float *h = sg_test_from_dev(g, d, n);
    float atol = rel == 0.0f ? 0.0f : (float)SG_MAX(rel * rms(ref, n), 1e-7);
    int ok = sg_test_close(label, h, ref, n, atol, rtol);
    free(h);
    return ok;
}

/* Bytes equal; prints the first differing index and values (as float when esize == 4). */
static int check_bytes(const char *label, const void *got, const void *want, int64_t n, int esize)
{
    const unsigned char *a = got, *b = want;
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(a + i * esize, b + i * esize, (size_t)esize) == 0) continue;
        if (esize == 4) {
            float x, y;
            memcpy(&x, a + i * esize, 4);
            memcpy(&y, b + i * esize, 4);
            fprintf(stderr, "  %s: first difference at [%lld]: got %.9g, want %.9g\n", label,
                    (long long)i, x, y);
        } else {
            fprintf(stderr, "  %s: first difference at [%lld]: got %d, want %d\n", label,
                    (long long)i, a[i * esize], b[i * esize]);
        }
        return sg_test_true(label, 0);
    }
    return sg_test_true(label, 1);
}

/* Two device float buffers equal bit for bit. */
static void check_bitequal(struct sg_ctx *g, const char *label, const float *d1, const float *d2,
                           int64_t n)
{
    float *a = sg_test_from_dev(g, d1, n), *b = sg_test_from_dev(g, d2, n);
    check_bytes(label, a, b, n, 4);
    free(a);
    free(b);
}

/* Device int32 buffer equals a host one; prints the first 5 mismatches. */
static void check_i32(struct sg_ctx *g, const char *label, const int32_t *d, const int32_t *ref,
                      int64_t n)
{
    int32_t *h = sg_xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    sg_memcpy_d2h(g, h, d, sizeof(int32_t) * (size_t)n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (h[i] != ref[i] && bad++ < 5)
            fprintf(stderr, "  %s[%lld]: got %d, ref %d\n", label, (long long)i, (int)h[i],
                    (int)ref[i]);
    if (bad) fprintf(stderr, "  %s: %lld of %lld differ\n", label, (long long)bad, (long long)n);
    sg_test_true(label, bad == 0);
    free(h);
}

/* ---- pooling ------------------------------------------------------------------------------ */

/* Inputs rounded to quarters (many ties: the first max must win), NaNs every 997th when nan. */
static float *pool_input(int64_t n, uint64_t seed, int nan)
{
    float *x = sg_test_rand(n, seed, -2, 2);
    for (int64_t i = 0; i < n; i++) {
        x[i] = roundf(x[i] * 4.0f) / 4.0f;
        if (nan && i % 997 == 5) x[i] = NAN;
    }
    return x;
}

static void pool_label(char *lab, size_t sz, const char *what, const struct sg_pool2d_shape *s)
{
    snprintf(lab, sz, "%s B=%d C=%d H=%d W=%d k=%dx%d s=%d,%d p=%d,%d", what, s->B, s->C, s->H,
             s->W, s->KH, s->KW, s->stride_h, s->stride_w, s->pad_h, s->pad_w);
}

static void test_maxpool(struct sg_ctx *g, struct sg_ctx *h, const struct sg_pool2d_shape *s,
                         int nan)
{
    char lab[200];
    int64_t ni = (int64_t)s->B * s->C * s->H * s->W, no = (int64_t)s->B * s->C * s->OH * s->OW;
    float *x = pool_input(ni, 101, nan), *dout = sg_test_rand(no, 102, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * no), *dinp_ref = sg_xmalloc(sizeof(float) * ni);
    int32_t *am_ref = sg_xmalloc(sizeof(int32_t) * no);
    op_maxpool2d_forward(h, s, out_ref, am_ref, x);
    op_maxpool2d_backward(h, s, dinp_ref, dout, am_ref);

    float *d_x = sg_test_to_dev(g, x, ni), *d_dout = sg_test_to_dev(g, dout, no),
          *d_out = dev_nan(g, no);
    float *d_dinp = dev_nan(g, ni), *d_dinp2 = dev_nan(g, ni);
    int32_t *d_am = sg_dev_alloc(g, sizeof(int32_t) * no);
    sg_memset_zero(g, d_am, sizeof(int32_t) * no);
    op_maxpool2d_forward(g, s, d_out, d_am, d_x);
    pool_label(lab, sizeof lab, "maxpool_fwd out (exact)", s);
    check_dev(g, lab, d_out, out_ref, no, 0.0f, 0.0f);
    pool_label(lab, sizeof lab, "maxpool_fwd argmax (exact)", s);
    check_i32(g, lab, d_am, am_ref, no);
    /* backward from the CPU's argmax, twice into NaNs (overwrite) */
    sg_memcpy_h2d(g, d_am, am_ref, sizeof(int32_t) * no);
    op_maxpool2d_backward(g, s, d_dinp, d_dout, d_am);
    op_maxpool2d_backward(g, s, d_dinp, d_dout, d_am);
    pool_label(lab, sizeof lab, "maxpool_bwd dinp (overwrite, exact)", s);
    check_dev(g, lab, d_dinp, dinp_ref, ni, 0.0f, 0.0f);
    op_maxpool2d_backward(g, s, d_dinp2, d_dout, d_am);
    pool_label(lab, sizeof lab, "maxpool_bwd bit-identical rerun", s);
    check_bitequal(g, lab, d_dinp2, d_dinp, ni);

    void *dev[] = {d_x, d_dout, d_out, d_dinp, d_dinp2, d_am};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {x, dout, out_ref, dinp_ref, am_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_avgpool(struct sg_ctx *g, struct sg_ctx *h, const struct sg_pool2d_shape *s)
{
    char lab[200];
    int64_t ni = (int64_t)s->B * s->C * s->H * s->W, no = (int64_t)s->B * s->C * s->OH * s->OW;
    float *x = sg_test_rand(ni, 111, -2, 2), *dout = sg_test_rand(no, 112, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * no), *dinp_ref = sg_xmalloc(sizeof(float) * ni);
    op_avgpool2d_forward(h, s, out_ref, x);
    op_avgpool2d_backward(h, s, dinp_ref, dout);

    float *d_x = sg_test_to_dev(g, x, ni), *d_dout = sg_test_to_dev(g, dout, no),
          *d_out = dev_nan(g, no);
    float *d_dinp = dev_nan(g, ni), *d_dinp2 = dev_nan(g, ni);
    op_avgpool2d_forward(g, s, d_out, d_x);
    pool_label(lab, sizeof lab, "avgpool_fwd out (exact)", s);
    check_dev(g, lab, d_out, out_ref, no, 0.0f, 0.0f);
    op_avgpool2d_backward(g, s, d_dinp, d_dout);
    op_avgpool2d_backward(g, s, d_dinp, d_dout);
    pool_label(lab, sizeof lab, "avgpool_bwd dinp (overwrite)", s);
    check_dev(g, lab, d_dinp, dinp_ref, ni, 1e-5f, 1e-5f);
    op_avgpool2d_backward(g, s, d_dinp2, d_dout);
    pool_label(lab, sizeof lab, "avgpool_bwd bit-identical rerun", s);
    check_bitequal(g, lab, d_dinp2, d_dinp, ni);

    void *dev[] = {d_x, d_dout, d_out, d_dinp, d_dinp2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {x, dout, out_ref, dinp_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_adaptive(struct sg_ctx *g, struct sg_ctx *h, int B, int C, int H, int W, int OH,
                          int OW)
{
    char lab[200];
    int64_t ni = (int64_t)B * C * H * W, no = (int64_t)B * C * OH * OW;
    int global = OH == 1 && OW == 1;
    float *x = sg_test_rand(ni, 121, -2, 2), *dout = sg_test_rand(no, 122, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * no), *dinp_ref = sg_xmalloc(sizeof(float) * ni);
    op_adaptive_avgpool2d_forward(h, out_ref, x, B, C, H, W, OH, OW);
    op_adaptive_avgpool2d_backward(h, dinp_ref, dout, B, C, H, W, OH, OW);

    float *d_x = sg_test_to_dev(g, x, ni), *d_dout = sg_test_to_dev(g, dout, no),
          *d_out = dev_nan(g, no);
    float *d_out2 = dev_nan(g, no), *d_dinp = dev_nan(g, ni);
    op_adaptive_avgpool2d_forward(g, d_out, d_x, B, C, H, W, OH, OW);
    snprintf(lab, sizeof lab, "adaptive_avgpool_fwd B=%d C=%d %dx%d -> %dx%d", B, C, H, W, OH, OW);
    check_dev(g, lab, d_out, out_ref, no, global ? 1e-5f : 0.0f, global ? 1e-5f : 0.0f);
    op_adaptive_avgpool2d_forward(g, d_out2, d_x, B, C, H, W, OH, OW);
    snprintf(lab, sizeof lab, "adaptive_avgpool_fwd bit-identical rerun B=%d C=%d %dx%d", B, C, H,
             W);
    check_bitequal(g, lab, d_out2, d_out, no);
    op_adaptive_avgpool2d_backward(g, d_dinp, d_dout, B, C, H, W, OH, OW);
    op_adaptive_avgpool2d_backward(g, d_dinp, d_dout, B, C, H, W, OH, OW);
    snprintf(lab, sizeof lab, "adaptive_avgpool_bwd (overwrite, exact) B=%d C=%d %dx%d -> %dx%d", B,
             C, H, W, OH, OW);
    check_dev(g, lab, d_dinp, dinp_ref, ni, 0.0f, 0.0f);

    void *dev[] = {d_x, d_dout, d_out, d_out2, d_dinp};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {x, dout, out_ref, dinp_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_pools(struct sg_ctx *g, struct sg_ctx *h)
{
    struct sg_pool2d_shape s;
    sg_pool2d_shape_init(&s, 1, 1, 1, 1, 1, 1, 0);
    test_maxpool(g, h, &s, 0);
    test_avgpool(g, h, &s);
    sg_pool2d_shape_init(&s, 2, 3, 37, 19, 3, 2, 1);
    test_maxpool(g, h, &s, 0);
    test_maxpool(g, h, &s, 1); /* NaN propagation and its argmax */
    test_avgpool(g, h, &s);
    sg_pool2d_shape_init(&s, 4, 64, 56, 56, 3, 2, 1); /* ResNet stem (smaller batch) */
    test_maxpool(g, h, &s, 0);
    sg_pool2d_shape_init(&s, 256, 2048, 7, 7, 3, 2, 1);
    test_maxpool(g, h, &s, 0);
    sg_pool2d_shape_init(&s, 8, 256, 56, 56, 2, 2, 0); /* CLIP ModifiedResNet anti-alias pool */
    test_avgpool(g, h, &s);
    sg_pool2d_shape_init(&s, 3, 5, 13, 11, 5, 1, 2); /* overlapping windows, stride 1 */
    test_maxpool(g, h, &s, 0);
    test_avgpool(g, h, &s);
    /* non-square window / stride / padding */
    s = (struct sg_pool2d_shape){2, 5, 9, 11, 2, 3, 1, 2, 1, 1, 0, 0};
    sg_pool2d_shape_finish(&s);
    test_maxpool(g, h, &s, 1);
    test_avgpool(g, h, &s);

    test_adaptive(g, h, 256, 2048, 7, 7, 1, 1); /* ResNet-50 global pool */
    test_adaptive(g, h, 1, 1, 1, 1, 1, 1);
    test_adaptive(g, h, 2, 3, 37, 19, 1, 1);
    test_adaptive(g, h, 2, 3, 37, 19, 5, 7); /* overlapping adaptive windows */
    test_adaptive(g, h, 2, 4, 7, 7, 7, 7);   /* identity */
    test_adaptive(g, h, 2, 3, 3, 4, 5, 6);   /* upsampling: windows shared between outputs */
}

/* ---- softmax ------------------------------------------------------------------------------ */

static void test_softmax(struct sg_ctx *g, struct sg_ctx *h, int N, int C)
{
    char lab[160];
    int64_t n = (int64_t)N * C;
    float *x = sg_test_rand(n, 201, -8, 8), *dout = sg_test_rand(n, 202, -1, 1);
    float *y_ref = sg_xmalloc(sizeof(float) * n), *dx_ref = sg_xmalloc(sizeof(float) * n);
    op_softmax_forward(h, y_ref, x, N, C);
    op_softmax_backward(h, dx_ref, dout, y_ref, N, C);

    float *d_x = sg_test_to_dev(g, x, n), *d_dout = sg_test_to_dev(g, dout, n),
          *d_yref = sg_test_to_dev(g, y_ref, n);
    float *d_y = dev_nan(g, n), *d_y2 = dev_nan(g, n), *d_dx = dev_nan(g, n);
    op_softmax_forward(g, d_y, d_x, N, C);
    snprintf(lab, sizeof lab, "softmax_fwd N=%d C=%d", N, C);
    check_dev(g, lab, d_y, y_ref, n, 1e-5f, 1e-5f);
    op_softmax_forward(g, d_y2, d_x, N, C);
    snprintf(lab, sizeof lab, "softmax_fwd bit-identical rerun N=%d C=%d", N, C);
    check_bitequal(g, lab, d_y2, d_y, n);
    sg_memcpy_h2d(g, d_y2, x, sizeof(float) * n); /* in place: out == inp */
    op_softmax_forward(g, d_y2, d_y2, N, C);
    snprintf(lab, sizeof lab, "softmax_fwd in place bit-identical N=%d C=%d", N, C);
    check_bitequal(g, lab, d_y2, d_y, n);

    /* backward from the CPU's probabilities (only backward under test), twice (overwrite) */
    op_softmax_backward(g, d_dx, d_dout, d_yref, N, C);
    op_softmax_backward(g, d_dx, d_dout, d_yref, N, C);
    snprintf(lab, sizeof lab, "softmax_bwd dinp (overwrite) N=%d C=%d", N, C);
    check_dev(g, lab, d_dx, dx_ref, n, 1e-5f, 1e-4f);
    op_softmax_backward(g, d_dout, d_dout, d_yref, N, C); /* in place: dinp == dout */
    snprintf(lab, sizeof lab, "softmax_bwd in place bit-identical N=%d C=%d", N, C);
    check_bitequal(g, lab, d_dout, d_dx, n);

    void *dev[] = {d_x, d_dout, d_yref, d_y, d_y2, d_dx};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {x, dout, y_ref, dx_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

/* ---- embedding ---------------------------------------------------------------------------- */

enum ids_kind { IDS_RANDOM, IDS_CLIP, IDS_SAME, IDS_RUNS };
static const char *const ids_name[] = {"random", "clip", "same", "runs"};

/* ids (N) in [0, V): uniform; CLIP-like 77-token rows (SOT = V-2, 3..40 words, EOT = V-1, then
 * padding 0: id 0 holds most tokens); all V/2; or sorted runs n*V/N (segments across tiles). */
static int32_t *make_ids(enum ids_kind kind, int N, int V, uint64_t seed)
{
    int32_t *ids = sg_xmalloc(sizeof(int32_t) * (size_t)N);
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;
    int len = 0;
    for (int n = 0; n < N; n++) {
        int pos = n % 77;
        switch (kind) {
        case IDS_RANDOM:
            ids[n] = (int32_t)(rng_next(&s) % (uint64_t)V);
            break;
        case IDS_CLIP:
            if (pos == 0) len = 3 + (int)(rng_next(&s) % 38);
            ids[n] = pos == 0         ? V - 2
                     : pos <= len     ? (int32_t)(1 + rng_next(&s) % (uint64_t)(V - 3))
                     : pos == len + 1 ? V - 1
                                      : 0;
            break;
        case IDS_SAME:
            ids[n] = V / 2;
            break;
        case IDS_RUNS:
            ids[n] = (int32_t)((int64_t)n * V / N);
            break;
        }
    }
    return ids;
}

/* dtable after `calls` backward calls from dt0, on data that is not exact: any summation order
 * of k terms errs by <= k * u * sum|terms| (u = 2^-24), so GPU and CPU differ by at most twice
 * that per element (a rigorous bound; the dyadic cases check the sums exactly). */
static void check_embedding_bound(struct sg_ctx *g, const char *label, const float *d_dt,
                                  const float *dt_ref, const float *dt0, const float *dout,
                                  const int32_t *ids, int N, int V, int C, int calls)
{
    int64_t nt = (int64_t)V * C;
    double *sabs = sg_xcalloc((size_t)nt, sizeof(double));
    int64_t *cnt = sg_xcalloc((size_t)V, sizeof(int64_t));
    for (int n = 0; n < N; n++) {
        cnt[ids[n]] += calls;
        for (int c = 0; c < C; c++)
            sabs[(int64_t)ids[n] * C + c] += calls * fabs(dout[(int64_t)n * C + c]);
    }
    float *got = sg_test_from_dev(g, d_dt, nt);
    int64_t bad = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < nt; i++) {
        double b = 2.0 * (double)(cnt[i / C] + 1) * 0x1p-24 * (sabs[i] + fabs(dt0[i]));
        double d = fabs((double)got[i] - (double)dt_ref[i]);
        if (d > 0.0 && b > 0.0 && d / b > worst) worst = d / b;
        if (d <= b && !isnan(got[i])) continue;
        if (bad++ < 5)
            fprintf(stderr, "  %s[%lld] (row %lld): got %.9g, ref %.9g (diff %.3g > bound %.3g)\n",
                    label, (long long)i, (long long)(i / C), got[i], dt_ref[i], d, b);
    }
    if (bad)
        fprintf(stderr, "  %s: %lld of %lld beyond the bound\n", label, (long long)bad,
                (long long)nt);
    char lab[240];
    snprintf(lab, sizeof lab, "%s (max diff / bound %.3g)", label, worst);
    sg_test_true(lab, bad == 0);
    free(got);
    free(sabs);
    free(cnt);
}

static void test_embedding(struct sg_ctx *g, struct sg_ctx *h, int N, int V, int C,
                           enum ids_kind kind, int dyadic)
{
    char lab[200];
    int64_t nt = (int64_t)V * C, no = (int64_t)N * C;
    int32_t *ids = make_ids(kind, N, V, 301);
    float *table = sg_test_rand(nt, 302, -1, 1);
    float *dout = dyadic ? host_dyadic(no, 303) : sg_test_rand(no, 303, -1, 1);
    float *dt0 = dyadic ? host_dyadic(nt, 304) : sg_test_rand(nt, 304, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * no), *dt_ref = sg_test_host_copy(dt0, nt);
    op_embedding_forward(h, out_ref, ids, table, N, V, C);
    op_embedding_backward(h, dt_ref, dout, ids, N, V, C);
    op_embedding_backward(h, dt_ref, dout, ids, N, V, C);

    int32_t *d_ids = to_dev_bytes(g, ids, sizeof(int32_t) * (size_t)N);
    float *d_table = sg_test_to_dev(g, table, nt), *d_dout = sg_test_to_dev(g, dout, no),
          *d_out = dev_nan(g, no);
    float *d_dt = sg_test_to_dev(g, dt0, nt), *d_dt2 = sg_test_to_dev(g, dt0, nt);
    op_embedding_forward(g, d_out, d_ids, d_table, N, V, C);
    snprintf(lab, sizeof lab, "embedding_fwd (exact) N=%d V=%d C=%d ids=%s", N, V, C,
             ids_name[kind]);
    check_dev(g, lab, d_out, out_ref, no, 0.0f, 0.0f);

    op_embedding_backward(g, d_dt, d_dout, d_ids, N, V, C);
    op_embedding_backward(g, d_dt, d_dout, d_ids, N, V, C);
    snprintf(lab, sizeof lab, "embedding_bwd dtable (accumulate x2%s) N=%d V=%d C=%d ids=%s",
             dyadic ? ", dyadic: exact" : ", rounding bound", N, V, C, ids_name[kind]);
    if (dyadic)
        check_dev(g, lab, d_dt, dt_ref, nt, 0.0f, 0.0f);
    else
        check_embedding_bound(g, lab, d_dt, dt_ref, dt0, dout, ids, N, V, C, 2);
    op_embedding_backward(g, d_dt2, d_dout, d_ids, N, V, C);
    op_embedding_backward(g, d_dt2, d_dout, d_ids, N, V, C);
    snprintf(lab, sizeof lab, "embedding_bwd bit-identical rerun N=%d V=%d C=%d ids=%s", N, V, C,
             ids_name[kind]);
    check_bitequal(g, lab, d_dt2, d_dt, nt);
    op_embedding_backward(g, NULL, d_dout, d_ids, N, V, C); /* NULL dtable: skipped */
    sg_ctx_sync(g);

    void *dev[] = {d_ids, d_table, d_dout, d_out, d_dt, d_dt2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {ids, table, dout, dt0, out_ref, dt_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_embeddings(struct sg_ctx *g, struct sg_ctx *h)
{
    test_embedding(g, h, 1, 1, 1, IDS_RANDOM, 0);
    test_embedding(g, h, 37, 19, 23, IDS_RANDOM, 0); /* C % 4 != 0: scalar copies */
    test_embedding(g, h, 37, 19, 23, IDS_RANDOM, 1);
    test_embedding(g, h, 1000, 7, 64, IDS_SAME, 1);   /* one segment over 16 tiles */
    test_embedding(g, h, 1000, 7, 64, IDS_SAME, 0);   /* ... rounding differs: tolerance */
    test_embedding(g, h, 5000, 50, 130, IDS_RUNS, 1); /* runs of 100 across tile edges */
    test_embedding(g, h, 4096, 1000, 512, IDS_RANDOM, 1);
    test_embedding(g, h, 77 * 8, 49408, 512, IDS_CLIP, 0);
    test_embedding(g, h, 77 * 256, 49408, 512, IDS_CLIP, 1); /* CLIP text: batch 256 */
}

/* ---- elementwise -------------------------------------------------------------------------- */

/* offset (floats) moves the device pointers off 16-byte alignment (scalar path). */
static void test_add(struct sg_ctx *g, struct sg_ctx *h, int64_t n, int offset)
{
    char lab[160];
    int64_t m = n + offset;
    float *a = sg_test_rand(m, 401, -1, 1), *b = sg_test_rand(m, 402, -1, 1),
          *dout = sg_test_rand(m, 403, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * m), *da_ref = sg_test_host_copy(a, m),
          *db_ref = sg_test_host_copy(b, m);
    op_add_forward(h, out_ref + offset, a + offset, b + offset, n);
    op_add_backward(h, da_ref + offset, db_ref + offset, dout + offset, n);
    op_add_backward(h, da_ref + offset, db_ref + offset, dout + offset, n);

    float *d_a = sg_test_to_dev(g, a, m), *d_b = sg_test_to_dev(g, b, m),
          *d_g = sg_test_to_dev(g, dout, m);
    float *d_out = dev_nan(g, m);
    op_add_forward(g, d_out + offset, d_a + offset, d_b + offset, n);
    snprintf(lab, sizeof lab, "add_fwd (exact) n=%lld offset=%d", (long long)n, offset);
    check_dev(g, lab, d_out + offset, out_ref + offset, n, 0.0f, 0.0f);
    float *d_t = sg_test_to_dev(g, a, m); /* in place: out == a */
    op_add_forward(g, d_t + offset, d_t + offset, d_b + offset, n);
    snprintf(lab, sizeof lab, "add_fwd in place (exact) n=%lld offset=%d", (long long)n, offset);
    check_dev(g, lab, d_t + offset, out_ref + offset, n, 0.0f, 0.0f);

    /* backward: both branches accumulate, twice */
    op_add_backward(g, d_a + offset, d_b + offset, d_g + offset, n);
    op_add_backward(g, d_a + offset, d_b + offset, d_g + offset, n);
    snprintf(lab, sizeof lab, "add_bwd da (accumulate x2, exact) n=%lld offset=%d", (long long)n,
             offset);
    check_dev(g, lab, d_a + offset, da_ref + offset, n, 0.0f, 0.0f);
    snprintf(lab, sizeof lab, "add_bwd db (accumulate x2, exact) n=%lld offset=%d", (long long)n,
             offset);
    check_dev(g, lab, d_b + offset, db_ref + offset, n, 0.0f, 0.0f);
    /* NULL da: db only (da untouched); then op_accumulate, the same += */
    float *da_before = sg_test_from_dev(g, d_a, m), *db_ref2 = sg_test_host_copy(db_ref, m);
    op_add_backward(h, NULL, db_ref2 + offset, dout + offset, n);
    op_add_backward(g, NULL, d_b + offset, d_g + offset, n);
    snprintf(lab, sizeof lab, "add_bwd NULL da: da untouched n=%lld", (long long)n);
    check_dev(g, lab, d_a, da_before, m, 0.0f, 0.0f);
    snprintf(lab, sizeof lab, "add_bwd NULL da: db (exact) n=%lld offset=%d", (long long)n, offset);
    check_dev(g, lab, d_b + offset, db_ref2 + offset, n, 0.0f, 0.0f);
    op_add_backward(g, d_a + offset, NULL, d_g + offset, n);
    op_add_backward(h, da_ref + offset, NULL, dout + offset, n);
    op_accumulate(g, d_a + offset, d_b + offset, n);
    op_accumulate(h, da_ref + offset, db_ref2 + offset, n);
    snprintf(lab, sizeof lab, "add_bwd NULL db + accumulate (exact) n=%lld offset=%d", (long long)n,
             offset);
    check_dev(g, lab, d_a + offset, da_ref + offset, n, 0.0f, 0.0f);
    op_add_backward(g, NULL, NULL, d_g, n); /* both NULL: nothing */
    sg_ctx_sync(g);

    void *dev[] = {d_a, d_b, d_g, d_out, d_t};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {a, b, dout, out_ref, da_ref, db_ref, da_before, db_ref2};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_l2norm(struct sg_ctx *g, struct sg_ctx *h, int N, int D)
{
    char lab[160];
    const float eps = 1e-12f;
    int64_t n = (int64_t)N * D;
    float *x = sg_test_rand(n, 411, -1, 1), *dout = sg_test_rand(n, 412, -1, 1);
    if (N > 1) /* row 1 below eps: out = x / eps, the clamped-norm gradient branch; its dout is
                * scaled by eps too so that dinp = dout / eps stays O(1) (rms-based atol) */
        for (int j = 0; j < D; j++) {
            x[D + j] *= 1e-15f;
            dout[D + j] *= eps;
        }
    float *y_ref = sg_xmalloc(sizeof(float) * n), *nrm_ref = sg_xmalloc(sizeof(float) * N);
    float *dx_ref = sg_xmalloc(sizeof(float) * n);
    op_l2norm_forward(h, y_ref, nrm_ref, x, N, D, eps);
    op_l2norm_backward(h, dx_ref, dout, y_ref, nrm_ref, N, D, eps);

    float *d_x = sg_test_to_dev(g, x, n), *d_dout = sg_test_to_dev(g, dout, n),
          *d_y = dev_nan(g, n);
    float *d_nrm = dev_nan(g, N), *d_y2 = dev_nan(g, n), *d_nrm2 = dev_nan(g, N);
    float *d_yref = sg_test_to_dev(g, y_ref, n), *d_nref = sg_test_to_dev(g, nrm_ref, N),
          *d_dx = dev_nan(g, n);
    op_l2norm_forward(g, d_y, d_nrm, d_x, N, D, eps);
    snprintf(lab, sizeof lab, "l2norm_fwd out N=%d D=%d", N, D);
    check_dev(g, lab, d_y, y_ref, n, 1e-5f, 1e-5f);
    snprintf(lab, sizeof lab, "l2norm_fwd norm N=%d D=%d", N, D);
    check_dev(g, lab, d_nrm, nrm_ref, N, 1e-6f, 1e-5f);
    op_l2norm_forward(g, d_y2, d_nrm2, d_x, N, D, eps);
    snprintf(lab, sizeof lab, "l2norm_fwd bit-identical rerun N=%d D=%d", N, D);
    check_bitequal(g, lab, d_y2, d_y, n);

    /* backward from the CPU's out/norm, twice (overwrite), then in place */
    op_l2norm_backward(g, d_dx, d_dout, d_yref, d_nref, N, D, eps);
    op_l2norm_backward(g, d_dx, d_dout, d_yref, d_nref, N, D, eps);
    snprintf(lab, sizeof lab, "l2norm_bwd dinp (overwrite) N=%d D=%d", N, D);
    check_dev(g, lab, d_dx, dx_ref, n, 1e-5f, 1e-4f);
    op_l2norm_backward(g, d_dout, d_dout, d_yref, d_nref, N, D, eps);
    snprintf(lab, sizeof lab, "l2norm_bwd in place bit-identical N=%d D=%d", N, D);
    check_bitequal(g, lab, d_dout, d_dx, n);

    void *dev[] = {d_x, d_dout, d_y, d_nrm, d_y2, d_nrm2, d_yref, d_nref, d_dx};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {x, dout, y_ref, nrm_ref, dx_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static uint8_t *mask_from_dev(struct sg_ctx *g, const uint8_t *d, int64_t n)
{
    uint8_t *m = sg_xmalloc((size_t)(n ? n : 1));
    sg_memcpy_d2h(g, m, d, (size_t)n);
    return m;
}

/* Forward on the GPU: mask statistics, out == inp * mask * scale exactly, rng use, determinism. */
static void test_dropout_forward(struct sg_ctx *g, int64_t n, float p)
{
    char lab[200];
    float *x = sg_test_rand(n, 421, -1, 1);
    float *d_x = sg_test_to_dev(g, x, n), *d_out = dev_nan(g, n), *d_out2 = dev_nan(g, n);
    uint8_t *d_m = sg_dev_alloc(g, (size_t)n), *d_m2 = sg_dev_alloc(g, (size_t)n);
    struct sg_rng r1, r2, r3;
    sg_rng_seed(&r1, 1234);
    r2 = r1;
    r3 = r1;
    op_dropout_forward(g, d_out, d_m, d_x, n, p, &r1);
    op_dropout_forward(g, d_out2, d_m2, d_x, n, p, &r2); /* same rng state: same mask */
    uint8_t *m = mask_from_dev(g, d_m, n), *m2 = mask_from_dev(g, d_m2, n);
    snprintf(lab, sizeof lab, "dropout_fwd same rng state -> same mask n=%lld p=%g", (long long)n,
             (double)p);
    check_bytes(lab, m, m2, n, 1);
    /* rng use: one u64 draw for 0 < p < 1, none for p in {0, 1} */
    if (p > 0.0f && p < 1.0f) (void)sg_rng_u64(&r3);
    snprintf(lab, sizeof lab, "dropout_fwd rng advanced by %s n=%lld p=%g",
             p > 0.0f && p < 1.0f ? "one u64" : "nothing", (long long)n, (double)p);
    sg_test_true(lab, sg_rng_u32(&r1) == sg_rng_u32(&r3));

    /* statistics: P(keep) = ceil((1-p) 2^24) / 2^24 */
    double keep = ceil((1.0 - p) * 16777216.0) / 16777216.0, sig1 = sqrt(keep * (1 - keep) / n);
    double sig2 = n > 1 ? sqrt(keep * keep * (1 - keep * keep) / (double)(n - 1)) : 0.0;
    int64_t k = 0, kk = 0, nonbin = 0;
    for (int64_t i = 0; i < n; i++) {
        k += m[i] == 1;
        nonbin += m[i] > 1;
        if (i > 0) kk += m[i] && m[i - 1];
    }
    double f = (double)k / n, f2 = n > 1 ? (double)kk / (n - 1) : keep * keep;
    printf("info dropout n=%lld p=%g: keep %.6f (expected %.6f, sigma %.2g), pairs %.6f "
           "(expected %.6f)\n",
           (long long)n, (double)p, f, keep, sig1, f2, keep * keep);
    snprintf(lab, sizeof lab, "dropout_fwd mask is 0/1 n=%lld p=%g", (long long)n, (double)p);
    sg_test_true(lab, nonbin == 0);
    snprintf(lab, sizeof lab, "dropout_fwd keep fraction %.6f vs %.6f (6 sigma) n=%lld p=%g", f,
             keep, (long long)n, (double)p);
    sg_test_true(lab, fabs(f - keep) <= 6 * sig1 + 1e-12);
    snprintf(lab, sizeof lab, "dropout_fwd adjacent pairs %.6f vs %.6f (6 sigma) n=%lld p=%g", f2,
             keep * keep, (long long)n, (double)p);
    sg_test_true(lab, n < 2 || fabs(f2 - keep * keep) <= 6 * sig2 + 1e-12);

    /* out = inp * mask * scale, exactly the CPU formula with this mask */
    float *out_ref = sg_xmalloc(sizeof(float) * (size_t)n);
    dropout_apply_ref(out_ref, m, x, n, p);
    snprintf(lab, sizeof lab, "dropout_fwd out = inp * mask / (1-p) (exact) n=%lld p=%g",
             (long long)n, (double)p);
    check_dev(g, lab, d_out, out_ref, n, 0.0f, 0.0f);
    /* next call (rng advanced): a different mask (unless p in {0, 1}); in place out == inp */
    if (p > 0.0f && p < 1.0f && n >= 1000) {
        op_dropout_forward(g, d_x, d_m2, d_x, n, p, &r1);
        uint8_t *m3 = mask_from_dev(g, d_m2, n);
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++) same += m3[i] == m[i];
        double want = keep * keep + (1 - keep) * (1 - keep);
        snprintf(lab, sizeof lab,
                 "dropout_fwd next call: masks agree on %.4f (expected %.4f) n=%lld",
                 (double)same / n, want, (long long)n);
        sg_test_true(lab, fabs((double)same / n - want) < 0.01);
        dropout_apply_ref(out_ref, m3, x, n, p);
        snprintf(lab, sizeof lab, "dropout_fwd in place (exact) n=%lld p=%g", (long long)n,
                 (double)p);
        check_dev(g, lab, d_x, out_ref, n, 0.0f, 0.0f);
        free(m3);
    }

    void *dev[] = {d_x, d_out, d_out2, d_m, d_m2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {x, m, m2, out_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

/* apply / backward with a given mask vs the CPU path (exact); offset: unaligned pointers. */
static void test_dropout_apply(struct sg_ctx *g, struct sg_ctx *h, int64_t n, float p, int offset)
{
    char lab[160];
    int64_t m = n + offset;
    float *x = sg_test_rand(m, 431, -1, 1), *dout = sg_test_rand(m, 432, -1, 1);
    uint8_t *mask = sg_xmalloc((size_t)m);
    uint64_t s = 99;
    for (int64_t i = 0; i < m; i++) mask[i] = (rng_next(&s) >> 20) % 1000 >= (uint64_t)(p * 1000);
    float *out_ref = sg_xmalloc(sizeof(float) * m), *dx_ref = sg_xmalloc(sizeof(float) * m);
    op_dropout_apply(h, out_ref + offset, mask + offset, x + offset, n, p);
    op_dropout_backward(h, dx_ref + offset, dout + offset, mask + offset, n, p);

    float *d_x = sg_test_to_dev(g, x, m), *d_g = sg_test_to_dev(g, dout, m), *d_out = dev_nan(g, m);
    float *d_dx = dev_nan(g, m);
    uint8_t *d_m = to_dev_bytes(g, mask, (size_t)m);
    op_dropout_apply(g, d_out + offset, d_m + offset, d_x + offset, n, p);
    snprintf(lab, sizeof lab, "dropout_apply (exact) n=%lld p=%g offset=%d", (long long)n,
             (double)p, offset);
    check_dev(g, lab, d_out + offset, out_ref + offset, n, 0.0f, 0.0f);
    op_dropout_backward(g, d_dx + offset, d_g + offset, d_m + offset, n, p);
    op_dropout_backward(g, d_dx + offset, d_g + offset, d_m + offset, n, p);
    snprintf(lab, sizeof lab, "dropout_bwd (overwrite, exact) n=%lld p=%g offset=%d", (long long)n,
             (double)p, offset);
    check_dev(g, lab, d_dx + offset, dx_ref + offset, n, 0.0f, 0.0f);
    op_dropout_backward(g, d_g + offset, d_g + offset, d_m + offset, n, p); /* in place */
    snprintf(lab, sizeof lab, "dropout_bwd in place (exact) n=%lld p=%g offset=%d", (long long)n,
             (double)p, offset);
    check_dev(g, lab, d_g + offset, dx_ref + offset, n, 0.0f, 0.0f);

    void *dev[] = {d_x, d_g, d_out, d_dx, d_m};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    void *host[] = {x, dout, mask, out_ref, dx_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_elementwise(struct sg_ctx *g, struct sg_ctx *h)
{
    static const int64_t add_n[] = {1, 3, 1001, 1 << 20};
    for (size_t i = 0; i < sizeof add_n / sizeof add_n[0]; i++) test_add(g, h, add_n[i], 0);
    test_add(g, h, 1001, 1);
    test_l2norm(g, h, 1, 1);
    test_l2norm(g, h, 37, 19);
    test_l2norm(g, h, 4096, 512);
    test_l2norm(g, h, 3, 5000);  /* block per row */
    test_l2norm(g, h, 2, 20000); /* block per row, 1024 threads */
    static const float ps[] = {0.1f, 0.5f, 0.9f, 0.0f, 1.0f};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        test_dropout_forward(g, (1 << 20) + 3, ps[i]);
        test_dropout_apply(g, h, (1 << 20) + 3, ps[i], 0);
    }
    test_dropout_forward(g, 1, 0.5f);
    test_dropout_forward(g, 37, 0.3f);
    test_dropout_apply(g, h, 1001, 0.3f, 1);
    test_dropout_apply(g, h, 1001, 0.3f, 3);
}

/* ---- cross-entropy ------------------------------------------------------------------------ */

static void test_ce(struct sg_ctx *g, struct sg_ctx *h, int N, int V, float ls, int null_targets)
{
    char lab[200];
    int64_t n = (int64_t)N * V;
    float *x = sg_test_rand(n, 501, -6, 6);
    int32_t *t = NULL;
    if (!null_targets) {
        t = sg_xmalloc(sizeof(int32_t) * (size_t)N);
        uint64_t s = 5;
        for (int i = 0; i < N; i++) t[i] = (int32_t)(rng_next(&s) % (uint64_t)V);
    }
    float *loss_ref = sg_xmalloc(sizeof(float) * N), *p_ref = sg_xmalloc(sizeof(float) * n);
    float *dl_ref = sg_xmalloc(sizeof(float) * n);
    float mean_ref = op_cross_entropy_forward(h, loss_ref, p_ref, x, t, N, V, ls);
    op_cross_entropy_backward(h, dl_ref, p_ref, t, N, V, 0.5f, ls);

    float *d_x = sg_test_to_dev(g, x, n), *d_p = dev_nan(g, n), *d_loss = dev_nan(g, N);
    float *d_pref = sg_test_to_dev(g, p_ref, n), *d_dl = dev_nan(g, n), *d_loss2 = dev_nan(g, N);
    int32_t *d_t = t ? to_dev_bytes(g, t, sizeof(int32_t) * (size_t)N) : NULL;
    float mean = op_cross_entropy_forward(g, d_loss, d_p, d_x, d_t, N, V, ls);
    snprintf(lab, sizeof lab, "cross_entropy_fwd mean N=%d V=%d ls=%g targets=%s", N, V, (double)ls,
             t ? "given" : "NULL");
    sg_test_close(lab, &mean, &mean_ref, 1, 1e-7f, 1e-5f);
    snprintf(lab, sizeof lab, "cross_entropy_fwd losses N=%d V=%d ls=%g", N, V, (double)ls);
    check_dev(g, lab, d_loss, loss_ref, N, 1e-6f, 1e-5f);
    snprintf(lab, sizeof lab, "cross_entropy_fwd probs N=%d V=%d ls=%g", N, V, (double)ls);
    check_dev(g, lab, d_p, p_ref, n, 1e-5f, 1e-5f);
    /* evaluation only (no buffers), and a rerun: the same mean and losses bit for bit */
    float mean2 = op_cross_entropy_forward(g, NULL, NULL, d_x, d_t, N, V, ls);
    float mean3 = op_cross_entropy_forward(g, d_loss2, NULL, d_x, d_t, N, V, ls);
    snprintf(lab, sizeof lab,
             "cross_entropy_fwd bit-identical mean (NULL buffers, rerun): %.9g "
             "%.9g %.9g N=%d V=%d",
             (double)mean, (double)mean2, (double)mean3, N, V);
    sg_test_true(lab, memcmp(&mean, &mean2, 4) == 0 && memcmp(&mean, &mean3, 4) == 0);
    snprintf(lab, sizeof lab, "cross_entropy_fwd bit-identical losses rerun N=%d V=%d", N, V);
    check_bitequal(g, lab, d_loss2, d_loss, N);

    /* backward from the CPU's probs (pointwise: the CPU's formula), twice (overwrite) */
    op_cross_entropy_backward(g, d_dl, d_pref, d_t, N, V, 0.5f, ls);
    op_cross_entropy_backward(g, d_dl, d_pref, d_t, N, V, 0.5f, ls);
    snprintf(lab, sizeof lab, "cross_entropy_bwd dlogits (overwrite) N=%d V=%d ls=%g", N, V,
             (double)ls);
    {
        float *got = sg_test_from_dev(g, d_dl, n);
        sg_test_close(lab, got, dl_ref, n, 1e-12f, 1e-6f);
        free(got);
    }
    op_cross_entropy_backward(g, NULL, d_pref, d_t, N, V, 0.5f, ls); /* NULL: skipped */
    sg_ctx_sync(g);

    void *dev[] = {d_x, d_p, d_loss, d_pref, d_dl, d_loss2, d_t};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) sg_dev_free(g, dev[i]);
    void *host[] = {x, t, loss_ref, p_ref, dl_ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_losses(struct sg_ctx *g, struct sg_ctx *h)
{
    test_ce(g, h, 1, 1, 0.0f, 0);
    test_ce(g, h, 1, 1, 0.0f, 1);
    test_ce(g, h, 37, 19, 0.1f, 0);
    test_ce(g, h, 19, 37, 0.0f, 1);   /* targets NULL needs N <= V */
    test_ce(g, h, 256, 256, 0.0f, 1); /* CLIP InfoNCE: targets[n] = n */
    test_ce(g, h, 4096, 512, 0.0f, 0);
    test_ce(g, h, 64, 5000, 0.1f, 0);  /* block per row */
    test_ce(g, h, 8, 20000, 0.2f, 0);  /* block per row, 1024 threads */
    test_ce(g, h, 300, 1000, 1.0f, 0); /* full smoothing */
}

/* ---- timing (information only) ------------------------------------------------------------ */

static void time_ops(struct sg_ctx *g)
{
    const int N = 256 * 77, V = 49408, C = 512, iters = 10;
    int32_t *ids = make_ids(IDS_CLIP, N, V, 9);
    int32_t *d_ids = to_dev_bytes(g, ids, sizeof(int32_t) * (size_t)N);
    float *d_dout = sg_dev_alloc(g, sizeof(float) * (size_t)N * C);
    float *d_dt = sg_dev_alloc(g, sizeof(float) * (size_t)V * C);
    sg_memset_zero(g, d_dout, sizeof(float) * (size_t)N * C);
    sg_memset_zero(g, d_dt, sizeof(float) * (size_t)V * C);
    op_embedding_backward(g, d_dt, d_dout, d_ids, N, V, C); /* warm-up (scratch) */
    sg_ctx_sync(g);
    double t0 = sg_time_now();
    for (int i = 0; i < iters; i++) op_embedding_backward(g, d_dt, d_dout, d_ids, N, V, C);
    sg_ctx_sync(g);
    double t1 = sg_time_now();
    for (int i = 0; i < iters; i++) op_embedding_forward(g, d_dout, d_ids, d_dt, N, V, C);
    sg_ctx_sync(g);
    double t2 = sg_time_now();
    printf("info embedding N=%d V=%d C=%d: backward %.3f ms, forward %.3f ms\n", N, V, C,
           1e3 * (t1 - t0) / iters, 1e3 * (t2 - t1) / iters);

    struct sg_pool2d_shape s;
    sg_pool2d_shape_init(&s, 32, 64, 112, 112, 3, 2, 1);
    int64_t ni = (int64_t)s.B * s.C * s.H * s.W, no = (int64_t)s.B * s.C * s.OH * s.OW;
    float *d_x = sg_dev_alloc(g, sizeof(float) * ni), *d_y = sg_dev_alloc(g, sizeof(float) * no);
    int32_t *d_am = sg_dev_alloc(g, sizeof(int32_t) * no);
    sg_memset_zero(g, d_x, sizeof(float) * ni);
    op_maxpool2d_forward(g, &s, d_y, d_am, d_x);
    sg_ctx_sync(g);
    t0 = sg_time_now();
    for (int i = 0; i < iters; i++) op_maxpool2d_forward(g, &s, d_y, d_am, d_x);
    sg_ctx_sync(g);
    t1 = sg_time_now();
    for (int i = 0; i < iters; i++) op_maxpool2d_backward(g, &s, d_x, d_y, d_am);
    sg_ctx_sync(g);
    t2 = sg_time_now();
    printf("info maxpool 3x3/2 32x64x112x112: forward %.3f ms, backward %.3f ms\n",
           1e3 * (t1 - t0) / iters, 1e3 * (t2 - t1) / iters);

    const int B = 4096;
    float *d_l = sg_dev_alloc(g, sizeof(float) * (size_t)B * B);
    float *d_p = sg_dev_alloc(g, sizeof(float) * (size_t)B * B);
    sg_memset_zero(g, d_l, sizeof(float) * (size_t)B * B);
    (void)op_cross_entropy_forward(g, NULL, d_p, d_l, NULL, B, B, 0.0f);
    t0 = sg_time_now();
    for (int i = 0; i < iters; i++)
        (void)op_cross_entropy_forward(g, NULL, d_p, d_l, NULL, B, B, 0.0f);
    t1 = sg_time_now();
    for (int i = 0; i < iters; i++) op_softmax_forward(g, d_p, d_l, B, B);
    sg_ctx_sync(g);
    t2 = sg_time_now();
    printf("info cross_entropy fwd %dx%d (incl. sync): %.3f ms; softmax fwd %.3f ms\n", B, B,
           1e3 * (t1 - t0) / iters, 1e3 * (t2 - t1) / iters);

    void *dev[] = {d_ids, d_dout, d_dt, d_x, d_y, d_am, d_l, d_p};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    free(ids);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the log complete up to an abort */
    if (!sg_cuda_available()) {
        printf("SKIP: no CUDA GPU\n");
        return SG_TEST_SKIP;
    }
    struct sg_ctx g, h;
    if (sg_ctx_init(&g, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: CUDA context: %s\n", sg_last_error());
        return 1;
    }
    if (sg_ctx_init(&h, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "FAIL: CPU context: %s\n", sg_last_error());
        return 1;
    }
    test_pools(&g, &h);
    for (int i = 0; i < 5; i++) {
        static const int sm[][2] = {{1, 1}, {37, 19}, {4096, 512}, {3, 5000}, {2, 20000}};
        test_softmax(&g, &h, sm[i][0], sm[i][1]);
    }
    test_embeddings(&g, &h);
    test_elementwise(&g, &h);
    test_losses(&g, &h);
    time_ops(&g);
    sg_ctx_free(&h);
    sg_ctx_free(&g);
    return sg_test_summary("test_cuda_pointwise");
}
