/*
 * tests/test_cuda_conv.c — CUDA conv2d (cuDNN) and BatchNorm2d against the same ops on a CPU
 * context (op_* on SG_DEVICE_CPU is the reference; test_conv / test_norm tie that to PyTorch).
 *
 * conv2d: ResNet-50 / CLIP ModifiedResNet shapes (7x7/2 stem, the 3x3/2 + 3x3 + 3x3 CLIP stem,
 * 3x3 s1/s2, 1x1 s1/s2, 512@7x7), grouped (ResNeXt 32 groups, odd groups), depthwise/2, odd
 * shapes (B=3, C=5, 11x11; non-square 3x5 kernel with stride (2,1), pad (1,2); a kernel as large
 * as the input), a 16x16/16 patch embedding; bias and no bias. Per precision (FP32, BF16):
 * forward; backward twice from random dw0/db0 into a NaN-filled dinp (dinp overwritten: equals
 * one gradient; dw/db accumulated: dw0 + 2 grad); reruns bit-identical (forward and backward).
 * FP32 also: NULL skips (db only / dw only / dinp only: the others keep their bits).
 * BatchNorm2d: training and eval forward (out, mean, rstd, running stats with momentum and the
 * unbiased variance), backward (dinp; dgamma/dbeta accumulated twice), affine and not, running
 * stats tracked and not, large-mean inputs (U(2,4): the two-pass variance matters), multi-chunk
 * channels (n > 16384, chunks crossing image rows), HW = 1 (BatchNorm1d), odd HW and a
 * misaligned pointer (scalar path), in-place forward (out = inp) and backward (dinp = dout), NULL
 * skips, bit-identical reruns. BatchNorm ignores the precision (own fp32 kernels); it runs under
 * both to show that.
 * Exits 77 (ctest SKIP) when no CUDA GPU is visible. Timings printed as information only.
 *
 * Tolerances: |got - ref| <= rel * rms(ref) + rtol * |ref| (check_dev). Inputs U(-1,1).
 *  - conv FP32 (CUDNN_FMA_MATH, no TF32, no Winograd) vs the fp32 CPU (oneDNN / GEMM): both
 *    round fp32 partial sums of K = C/g*KH*KW (up to 4608) or B*OH*OW (dw: up to 25088)
 *    products; a sequential sum's error is ~ u*sqrt(K/2) * rms (u = 6e-8: <= 7e-6 rms at one
 *    sigma, ~3e-5 at the max of 1e5 elements), blocked sums less: rel 5e-5, rtol 5e-5. Measured
 *    on the H200 (heuristic and cudnnFind choices): max 1.4e-5 of rms (dw, K = 6272); Winograd
 *    algorithms gave 1e-4 (8e-5 against a double reference) and are excluded in fp32.
 *  - conv BF16 (tensor cores, TF32 operands: 10-bit mantissa, u = 2^-11 = 4.9e-4, or 2u when the
 *    conversion truncates): each product carries <= 2-4u relative error, independent over the K
 *    terms, so the sum's error is ~ 2-4u * rms(out) = 1-2e-3 rms at 1 sigma, ~5-9e-3 at the max
 *    of 1e5 elements: rel 2e-2 and rtol 1e-2 (measured max: 2.5e-3 of rms). Any indexing /
 *    accumulation bug is O(1) rms.
 *  - BatchNorm out/dinp: float chunk sums finished in double vs the CPU's double sums: ~1e-6
 *    relative; rel 1e-5, rtol 1e-4. mean, running stats: rel 1e-6, rtol 1e-5. rstd: rel 1e-5,
 *    rtol 1e-4. dgamma/dbeta (sums over n up to 200704): rel 1e-4, rtol 1e-4.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/conv.h"
#include "ops/norm.h"
#include "tests/testutil.h"

#define CONV_REL_FP32  5e-5f
#define CONV_RTOL_FP32 5e-5f
#define CONV_REL_BF16  2e-2f
#define CONV_RTOL_BF16 1e-2f

/* ---- helpers ------------------------------------------------------------------------------ */

static float *host_zero(int64_t n)
{
    return sg_xcalloc((size_t)(n ? n : 1), sizeof(float));
}

static void upload(struct sg_ctx *g, float *d, const float *h, int64_t n)
{
    sg_memcpy_h2d(g, d, h, sizeof(float) * (size_t)n);
}

static double rms(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* Compare a device buffer with a host reference; atol = rel * rms(ref) (floored at 1e-7). Prints
 * the max abs error and the max relative-to-rms error of every check (passing ones too). */
static int check_dev(struct sg_ctx *g, const char *label, const float *d, const float *ref,
                     int64_t n, float rel, float rtol)
{
    float *h = sg_test_from_dev(g, d, n);
    double r = rms(ref, n), maxd = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)h[i] - ref[i]);
        if (isnan(e)) {
            maxd = NAN;
            break;
        }
        if (e > maxd) maxd = e;
    }
    float atol = (float)SG_MAX(rel * r, 1e-7);
    int ok = sg_test_close(label, h, ref, n, atol, rtol);
    printf("  %-4s %s: max|err| %.3g = %.3g rms (rms %.3g, n %lld)\n", ok ? "ok" : "FAIL", label,
           maxd, r > 0 ? maxd / r : maxd, r, (long long)n);
    free(h);
    return ok;
}

/* A device buffer equals a host array bit for bit. */
static void check_dev_bits(struct sg_ctx *g, const char *label, const float *d, const float *h,
                           int64_t n)
{
    float *got = sg_test_from_dev(g, d, n);
    int same = memcmp(got, h, sizeof(float) * (size_t)n) == 0;
    if (!same)
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&got[i], &h[i], sizeof(float)) != 0) {
                printf("  %s: first differing index %lld: got %.9g want %.9g\n", label,
                       (long long)i, got[i], h[i]);
                break;
            }
    sg_test_true(label, same);
    free(got);
}

/* Device buffers equal bit for bit. */
static void check_bitequal(struct sg_ctx *g, const char *label, const float *d1, const float *d2,
                           int64_t n)
{
    float *b = sg_test_from_dev(g, d2, n);
    check_dev_bits(g, label, d1, b, n);
    free(b);
}

static void dev_free_all(struct sg_ctx *g, float **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) sg_dev_free(g, p[i]);
}

static void host_free_all(float **p, size_t n)
{
    for (size_t i = 0; i < n; i++) free(p[i]);
}

static const char *prec_name(enum sg_precision p)
{
    return p == SG_PREC_BF16 ? "bf16" : "fp32";
}

/* ---- conv2d ------------------------------------------------------------------------------- */

/* Host inputs, CPU references (one backward from zero grads) and device copies of one case. */
struct conv_case {
    struct sg_conv2d_shape s;
    char name[160];
    int64_t ni, nw, no, nb;
    float *inp, *w, *b, *dout, *dw0, *db0;   /* host inputs (b NULL: no bias) */
    float *out_ref, *gdinp, *gdw, *gdb;      /* CPU forward, one backward from zero grads */
    float *d_inp, *d_w, *d_b, *d_dout;       /* device inputs */
    float *d_out, *d_dinp, *d_dw, *d_db;     /* device results */
    float *d_out2, *d_dinp2, *d_dw2, *d_db2; /* device results of reruns */
};

static void conv_case_init(struct conv_case *t, struct sg_ctx *cpu, struct sg_ctx *g,
                           const struct sg_conv2d_shape *s, int bias, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->s = *s;
    snprintf(t->name, sizeof t->name, "B=%d C=%d %dx%d OC=%d k=%dx%d s=%d,%d p=%d,%d g=%d bias=%d",
             s->B, s->C, s->H, s->W, s->OC, s->KH, s->KW, s->stride_h, s->stride_w, s->pad_h,
             s->pad_w, s->groups, bias);
    t->ni = (int64_t)s->B * s->C * s->H * s->W;
    t->nw = (int64_t)s->OC * (s->C / s->groups) * s->KH * s->KW;
    t->no = (int64_t)s->B * s->OC * s->OH * s->OW;
    t->nb = s->OC;
    t->inp = sg_test_rand(t->ni, seed + 1, -1, 1);
    t->w = sg_test_rand(t->nw, seed + 2, -1, 1);
    t->b = bias ? sg_test_rand(t->nb, seed + 3, -1, 1) : NULL;
    t->dout = sg_test_rand(t->no, seed + 4, -1, 1);
    t->dw0 = sg_test_rand(t->nw, seed + 5, -1, 1);
    t->db0 = sg_test_rand(t->nb, seed + 6, -1, 1);
    t->out_ref = sg_test_nan(t->no);
    t->gdinp = sg_test_nan(t->ni);
    t->gdw = host_zero(t->nw);
    t->gdb = host_zero(t->nb);
    op_conv2d_forward(cpu, s, t->out_ref, t->inp, t->w, t->b);
    op_conv2d_backward(cpu, s, t->gdinp, t->gdw, t->gdb, t->dout, t->inp, t->w);
    t->d_inp = sg_test_to_dev(g, t->inp, t->ni);
    t->d_w = sg_test_to_dev(g, t->w, t->nw);
    t->d_b = sg_test_to_dev(g, t->b, t->nb);
    t->d_dout = sg_test_to_dev(g, t->dout, t->no);
    t->d_out = sg_dev_alloc(g, sizeof(float) * t->no);
    t->d_out2 = sg_dev_alloc(g, sizeof(float) * t->no);
    t->d_dinp = sg_dev_alloc(g, sizeof(float) * t->ni);
    t->d_dinp2 = sg_dev_alloc(g, sizeof(float) * t->ni);
    t->d_dw = sg_dev_alloc(g, sizeof(float) * t->nw);
    t->d_dw2 = sg_dev_alloc(g, sizeof(float) * t->nw);
    t->d_db = sg_dev_alloc(g, sizeof(float) * t->nb);
    t->d_db2 = sg_dev_alloc(g, sizeof(float) * t->nb);
}

static void conv_case_free(struct conv_case *t, struct sg_ctx *g)
{
    float *dev[] = {t->d_inp, t->d_w,  t->d_b,    t->d_dout,  t->d_out, t->d_dinp,
                    t->d_dw,  t->d_db, t->d_out2, t->d_dinp2, t->d_dw2, t->d_db2};
    dev_free_all(g, dev, sizeof dev / sizeof dev[0]);
    float *host[] = {t->inp, t->w,       t->b,     t->dout, t->dw0,
                     t->db0, t->out_ref, t->gdinp, t->gdw,  t->gdb};
    host_free_all(host, sizeof host / sizeof host[0]);
}

/* y = x0 + k * g elementwise, accumulated one g at a time in float (as the op does). */
static float *accum(const float *x0, const float *gr, int64_t n, int k)
{
    float *y = sg_test_host_copy(x0, n);
    for (int r = 0; r < k; r++)
        for (int64_t i = 0; i < n; i++) y[i] += gr[i];
    return y;
}

/* NaN-fill dinp, dw = dw0, db = db0 on the device. */
static void conv_reset_grads(struct sg_ctx *g, const struct conv_case *t, float *d_dinp,
                             float *d_dw, float *d_db)
{
    float *nan = sg_test_nan(t->ni);
    upload(g, d_dinp, nan, t->ni);
    upload(g, d_dw, t->dw0, t->nw);
    upload(g, d_db, t->db0, t->nb);
    free(nan);
}

/* db only, dw only, dinp only: each fills its own gradient and leaves the others' bits alone. */
static void conv_null_skips(struct sg_ctx *g, struct conv_case *t, float rel, float rtol)
{
    char lab[320];
    const struct sg_conv2d_shape *s = &t->s;
    conv_reset_grads(g, t, t->d_dinp, t->d_dw, t->d_db);
    float *dinp_nan = sg_test_from_dev(g, t->d_dinp, t->ni);
    float *db1 = accum(t->db0, t->gdb, t->nb, 1), *dw1 = accum(t->dw0, t->gdw, t->nw, 1);

    op_conv2d_backward(g, s, NULL, NULL, t->d_db, t->d_dout, t->d_inp, t->d_w);
    snprintf(lab, sizeof lab, "conv null-skip db only: db %s", t->name);
    check_dev(g, lab, t->d_db, db1, t->nb, rel, rtol);
    snprintf(lab, sizeof lab, "conv null-skip db only: dw untouched %s", t->name);
    check_dev_bits(g, lab, t->d_dw, t->dw0, t->nw);
    snprintf(lab, sizeof lab, "conv null-skip db only: dinp untouched %s", t->name);
    check_dev_bits(g, lab, t->d_dinp, dinp_nan, t->ni);

    float *db_now = sg_test_from_dev(g, t->d_db, t->nb);
    op_conv2d_backward(g, s, NULL, t->d_dw, NULL, t->d_dout, t->d_inp, t->d_w);
    snprintf(lab, sizeof lab, "conv null-skip dw only: dw %s", t->name);
    check_dev(g, lab, t->d_dw, dw1, t->nw, rel, rtol);
    snprintf(lab, sizeof lab, "conv null-skip dw only: db untouched %s", t->name);
    check_dev_bits(g, lab, t->d_db, db_now, t->nb);
    snprintf(lab, sizeof lab, "conv null-skip dw only: dinp untouched %s", t->name);
    check_dev_bits(g, lab, t->d_dinp, dinp_nan, t->ni);

    float *dw_now = sg_test_from_dev(g, t->d_dw, t->nw);
    op_conv2d_backward(g, s, t->d_dinp, NULL, NULL, t->d_dout, t->d_inp, t->d_w);
    snprintf(lab, sizeof lab, "conv null-skip dinp only: dinp %s", t->name);
    check_dev(g, lab, t->d_dinp, t->gdinp, t->ni, rel, rtol);
    snprintf(lab, sizeof lab, "conv null-skip dinp only: dw untouched %s", t->name);
    check_dev_bits(g, lab, t->d_dw, dw_now, t->nw);
    snprintf(lab, sizeof lab, "conv null-skip dinp only: db untouched %s", t->name);
    check_dev_bits(g, lab, t->d_db, db_now, t->nb);
    float *host[] = {dinp_nan, db1, dw1, db_now, dw_now};
    host_free_all(host, sizeof host / sizeof host[0]);
}

static void conv_run_precision(struct sg_ctx *g, struct conv_case *t, enum sg_precision prec)
{
    char lab[320];
    const struct sg_conv2d_shape *s = &t->s;
    const char *pn = prec_name(prec);
    float rel = prec == SG_PREC_BF16 ? CONV_REL_BF16 : CONV_REL_FP32;
    float rtol = prec == SG_PREC_BF16 ? CONV_RTOL_BF16 : CONV_RTOL_FP32;
    g->precision = prec;

    float *nan_o = sg_test_nan(t->no);
    upload(g, t->d_out, nan_o, t->no);
    upload(g, t->d_out2, nan_o, t->no);
    op_conv2d_forward(g, s, t->d_out, t->d_inp, t->d_w, t->d_b);
    snprintf(lab, sizeof lab, "conv fwd %s %s", pn, t->name);
    check_dev(g, lab, t->d_out, t->out_ref, t->no, rel, rtol);
    op_conv2d_forward(g, s, t->d_out2, t->d_inp, t->d_w, t->d_b);
    snprintf(lab, sizeof lab, "conv fwd bit-identical rerun %s %s", pn, t->name);
    check_bitequal(g, lab, t->d_out2, t->d_out, t->no);

    /* two backward calls: dinp overwritten (one gradient), dw/db accumulated (dw0 + 2 grad) */
    float *dw2 = accum(t->dw0, t->gdw, t->nw, 2), *db2 = accum(t->db0, t->gdb, t->nb, 2);
    conv_reset_grads(g, t, t->d_dinp, t->d_dw, t->d_db);
    for (int r = 0; r < 2; r++)
        op_conv2d_backward(g, s, t->d_dinp, t->d_dw, t->d_db, t->d_dout, t->d_inp, t->d_w);
    snprintf(lab, sizeof lab, "conv bwd dinp (overwrite) %s %s", pn, t->name);
    check_dev(g, lab, t->d_dinp, t->gdinp, t->ni, rel, rtol);
    snprintf(lab, sizeof lab, "conv bwd dw (accumulate x2) %s %s", pn, t->name);
    check_dev(g, lab, t->d_dw, dw2, t->nw, rel, rtol);
    snprintf(lab, sizeof lab, "conv bwd db (accumulate x2) %s %s", pn, t->name);
    check_dev(g, lab, t->d_db, db2, t->nb, rel, rtol);

    /* the same two calls again from the same start: the same bits */
    conv_reset_grads(g, t, t->d_dinp2, t->d_dw2, t->d_db2);
    for (int r = 0; r < 2; r++)
        op_conv2d_backward(g, s, t->d_dinp2, t->d_dw2, t->d_db2, t->d_dout, t->d_inp, t->d_w);
    snprintf(lab, sizeof lab, "conv bwd dinp bit-identical rerun %s %s", pn, t->name);
    check_bitequal(g, lab, t->d_dinp2, t->d_dinp, t->ni);
    snprintf(lab, sizeof lab, "conv bwd dw bit-identical rerun %s %s", pn, t->name);
    check_bitequal(g, lab, t->d_dw2, t->d_dw, t->nw);
    snprintf(lab, sizeof lab, "conv bwd db bit-identical rerun %s %s", pn, t->name);
    check_bitequal(g, lab, t->d_db2, t->d_db, t->nb);

    if (prec == SG_PREC_FP32) conv_null_skips(g, t, rel, rtol);
    g->precision = SG_PREC_FP32;
    free(nan_o);
    free(dw2);
    free(db2);
}

static void test_conv(struct sg_ctx *cpu, struct sg_ctx *g, const struct sg_conv2d_shape *s,
                      int bias, uint64_t seed)
{
    struct conv_case t;
    conv_case_init(&t, cpu, g, s, bias, seed);
    printf("conv %s\n", t.name);
    conv_run_precision(g, &t, SG_PREC_FP32);
    conv_run_precision(g, &t, SG_PREC_BF16);
    conv_case_free(&t, g);
}

static void test_conv_sq(struct sg_ctx *cpu, struct sg_ctx *g, int B, int C, int H, int W, int OC,
                         int K, int stride, int pad, int groups, int bias)
{
    struct sg_conv2d_shape s;
    sg_conv2d_shape_init(&s, B, C, H, W, OC, K, K, stride, pad, groups);
    test_conv(cpu, g, &s, bias, (uint64_t)(B * 131 + C * 17 + H * 7 + OC * 3 + K + groups));
}

/* ---- batchnorm ---------------------------------------------------------------------------- */

struct bn_case {
    int B, C, HW, affine, track, offset; /* offset: floats added to the data pointers */
    float lo, hi;                        /* input range */
};

/* Device buffer of n floats starting `off` floats into a fresh allocation (misalignment). */
struct dbuf {
    float *base, *p;
};

static struct dbuf dbuf_new(struct sg_ctx *g, const float *h, int64_t n, int off)
{
    struct dbuf d;
    d.base = sg_dev_alloc(g, sizeof(float) * (size_t)(n + off));
    d.p = d.base + off;
    if (h) upload(g, d.p, h, n);
    return d;
}

static void test_bn(struct sg_ctx *cpu, struct sg_ctx *g, const struct bn_case *k,
                    enum sg_precision prec)
{
    char lab[256], nm[128];
    const float momentum = 0.1f, eps = 1e-5f;
    int B = k->B, C = k->C, HW = k->HW;
    int64_t n = (int64_t)B * C * HW;
    g->precision = prec;
    snprintf(nm, sizeof nm, "B=%d C=%d HW=%d affine=%d track=%d off=%d x~U(%g,%g) %s", B, C, HW,
             k->affine, k->track, k->offset, k->lo, k->hi, prec_name(prec));
    printf("batchnorm %s\n", nm);
    uint64_t sd = (uint64_t)(B * 7 + C * 13 + HW);
    float *x = sg_test_rand(n, sd + 1, k->lo, k->hi), *dout = sg_test_rand(n, sd + 2, -1, 1);
    float *gamma = k->affine ? sg_test_rand(C, sd + 3, 0.5f, 1.5f) : NULL;
    float *beta = k->affine ? sg_test_rand(C, sd + 4, -1, 1) : NULL;
    float *rm0 = sg_test_rand(C, sd + 5, -1, 1), *rv0 = sg_test_rand(C, sd + 6, 0.5f, 1.5f);
    float *dg0 = sg_test_rand(C, sd + 7, -1, 1), *db0 = sg_test_rand(C, sd + 8, -1, 1);

    /* CPU references: training forward/backward, eval forward/backward */
    float *out_t = sg_test_nan(n), *mean_t = sg_test_nan(C), *rstd_t = sg_test_nan(C);
    float *rm_t = sg_test_host_copy(rm0, C), *rv_t = sg_test_host_copy(rv0, C);
    float *gdinp_t = sg_test_nan(n), *gdg_t = host_zero(C), *gdb_t = host_zero(C);
    op_batchnorm2d_forward(cpu, out_t, mean_t, rstd_t, k->track ? rm_t : NULL,
                           k->track ? rv_t : NULL, x, gamma, beta, B, C, HW, momentum, eps, 1);
    op_batchnorm2d_backward(cpu, gdinp_t, gdg_t, gdb_t, dout, x, gamma, mean_t, rstd_t, B, C, HW,
                            1);
    float *out_e = sg_test_nan(n), *mean_e = sg_test_nan(C), *rstd_e = sg_test_nan(C);
    float *gdinp_e = sg_test_nan(n), *gdg_e = host_zero(C), *gdb_e = host_zero(C);
    op_batchnorm2d_forward(cpu, out_e, mean_e, rstd_e, rm0, rv0, x, gamma, beta, B, C, HW, momentum,
                           eps, 0);
    op_batchnorm2d_backward(cpu, gdinp_e, gdg_e, gdb_e, dout, x, gamma, mean_e, rstd_e, B, C, HW,
                            0);

    int off = k->offset;
    float *nan_n = sg_test_nan(n), *nan_c = sg_test_nan(C);
    struct dbuf x_d = dbuf_new(g, x, n, off), dout_d = dbuf_new(g, dout, n, off);
    struct dbuf out_d = dbuf_new(g, nan_n, n, off), out2_d = dbuf_new(g, nan_n, n, off);
    struct dbuf dinp_d = dbuf_new(g, nan_n, n, off), dinp2_d = dbuf_new(g, nan_n, n, off);
    float *d_gamma = sg_test_to_dev(g, gamma, C), *d_beta = sg_test_to_dev(g, beta, C);
    float *d_mean = sg_test_to_dev(g, nan_c, C), *d_rstd = sg_test_to_dev(g, nan_c, C);
    float *d_rm = sg_test_to_dev(g, rm0, C), *d_rv = sg_test_to_dev(g, rv0, C);
    float *d_rm2 = sg_test_to_dev(g, rm0, C), *d_rv2 = sg_test_to_dev(g, rv0, C);
    float *d_dg = sg_test_to_dev(g, dg0, C), *d_db = sg_test_to_dev(g, db0, C);
    float *d_dg2 = sg_test_to_dev(g, dg0, C), *d_db2 = sg_test_to_dev(g, db0, C);
    float *rmp = k->track ? d_rm : NULL, *rvp = k->track ? d_rv : NULL;

    /* training forward */
    op_batchnorm2d_forward(g, out_d.p, d_mean, d_rstd, rmp, rvp, x_d.p, d_gamma, d_beta, B, C, HW,
                           momentum, eps, 1);
    snprintf(lab, sizeof lab, "bn train fwd out %s", nm);
    check_dev(g, lab, out_d.p, out_t, n, 1e-5f, 1e-4f);
    snprintf(lab, sizeof lab, "bn train fwd mean %s", nm);
    check_dev(g, lab, d_mean, mean_t, C, 1e-6f, 1e-5f);
    snprintf(lab, sizeof lab, "bn train fwd rstd %s", nm);
    check_dev(g, lab, d_rstd, rstd_t, C, 1e-5f, 1e-4f);
    if (k->track) {
        snprintf(lab, sizeof lab, "bn train fwd run_mean %s", nm);
        check_dev(g, lab, d_rm, rm_t, C, 1e-6f, 1e-5f);
        snprintf(lab, sizeof lab, "bn train fwd run_var (unbiased) %s", nm);
        check_dev(g, lab, d_rv, rv_t, C, 1e-6f, 1e-5f);
    }
    /* rerun from the same running stats, mean/rstd not requested: same bits */
    op_batchnorm2d_forward(g, out2_d.p, NULL, NULL, k->track ? d_rm2 : NULL,
                           k->track ? d_rv2 : NULL, x_d.p, d_gamma, d_beta, B, C, HW, momentum, eps,
                           1);
    snprintf(lab, sizeof lab, "bn train fwd bit-identical rerun %s", nm);
    check_bitequal(g, lab, out2_d.p, out_d.p, n);
    if (k->track) {
        snprintf(lab, sizeof lab, "bn train fwd run_var bit-identical rerun %s", nm);
        check_bitequal(g, lab, d_rv2, d_rv, C);
    }
    /* in place: out = inp */
    upload(g, out2_d.p, x, n);
    op_batchnorm2d_forward(g, out2_d.p, NULL, NULL, NULL, NULL, out2_d.p, d_gamma, d_beta, B, C, HW,
                           momentum, eps, 1);
    snprintf(lab, sizeof lab, "bn train fwd in place bit-identical %s", nm);
    check_bitequal(g, lab, out2_d.p, out_d.p, n);

    /* training backward, twice, from the CPU's mean/rstd (only backward under test) */
    upload(g, d_mean, mean_t, C);
    upload(g, d_rstd, rstd_t, C);
    float *pg = k->affine ? d_dg : NULL, *pb = k->affine ? d_db : NULL;
    for (int r = 0; r < 2; r++)
        op_batchnorm2d_backward(g, dinp_d.p, pg, pb, dout_d.p, x_d.p, d_gamma, d_mean, d_rstd, B, C,
                                HW, 1);
    snprintf(lab, sizeof lab, "bn train bwd dinp (overwrite) %s", nm);
    check_dev(g, lab, dinp_d.p, gdinp_t, n, 1e-5f, 1e-4f);
    if (k->affine) {
        float *dg2 = accum(dg0, gdg_t, C, 2), *db2 = accum(db0, gdb_t, C, 2);
        snprintf(lab, sizeof lab, "bn train bwd dgamma (accumulate x2) %s", nm);
        check_dev(g, lab, d_dg, dg2, C, 1e-4f, 1e-4f);
        snprintf(lab, sizeof lab, "bn train bwd dbeta (accumulate x2) %s", nm);
        check_dev(g, lab, d_db, db2, C, 1e-4f, 1e-4f);
        free(dg2);
        free(db2);
        /* parameter grads rerun (dinp not requested) from dg0/db0, twice: same bits */
        for (int r = 0; r < 2; r++)
            op_batchnorm2d_backward(g, NULL, d_dg2, d_db2, dout_d.p, x_d.p, d_gamma, d_mean, d_rstd,
                                    B, C, HW, 1);
        snprintf(lab, sizeof lab, "bn train bwd dgamma bit-identical rerun %s", nm);
        check_bitequal(g, lab, d_dg2, d_dg, C);
        snprintf(lab, sizeof lab, "bn train bwd dbeta bit-identical rerun %s", nm);
        check_bitequal(g, lab, d_db2, d_db, C);
        /* in place: dinp = dout */
        upload(g, dinp2_d.p, dout, n);
        op_batchnorm2d_backward(g, dinp2_d.p, NULL, NULL, dinp2_d.p, x_d.p, d_gamma, d_mean, d_rstd,
                                B, C, HW, 1);
        snprintf(lab, sizeof lab, "bn train bwd in place dinp bit-identical %s", nm);
        check_bitequal(g, lab, dinp2_d.p, dinp_d.p, n);
        /* NULL skips: dgamma only, then dinp only */
        float *dg_before = sg_test_from_dev(g, d_dg, C), *db_before = sg_test_from_dev(g, d_db, C);
        float *dinp_before = sg_test_from_dev(g, dinp_d.p, n);
        float *dg3 = accum(dg_before, gdg_t, C, 1);
        op_batchnorm2d_backward(g, NULL, d_dg, NULL, dout_d.p, x_d.p, d_gamma, d_mean, d_rstd, B, C,
                                HW, 1);
        snprintf(lab, sizeof lab, "bn null-skip dgamma only: dgamma %s", nm);
        check_dev(g, lab, d_dg, dg3, C, 1e-4f, 1e-4f);
        snprintf(lab, sizeof lab, "bn null-skip dgamma only: dbeta untouched %s", nm);
        check_dev_bits(g, lab, d_db, db_before, C);
        snprintf(lab, sizeof lab, "bn null-skip dgamma only: dinp untouched %s", nm);
        check_dev_bits(g, lab, dinp_d.p, dinp_before, n);
        float *dg_now = sg_test_from_dev(g, d_dg, C);
        upload(g, dinp2_d.p, nan_n, n);
        op_batchnorm2d_backward(g, dinp2_d.p, NULL, NULL, dout_d.p, x_d.p, d_gamma, d_mean, d_rstd,
                                B, C, HW, 1);
        snprintf(lab, sizeof lab, "bn null-skip dinp only: dinp bit-identical %s", nm);
        check_bitequal(g, lab, dinp2_d.p, dinp_d.p, n);
        snprintf(lab, sizeof lab, "bn null-skip dinp only: dgamma untouched %s", nm);
        check_dev_bits(g, lab, d_dg, dg_now, C);
        float *host[] = {dg_before, db_before, dinp_before, dg3, dg_now};
        host_free_all(host, sizeof host / sizeof host[0]);
    }

    /* eval forward: running stats used, not changed; mean/rstd filled from them */
    upload(g, d_rm, rm0, C);
    upload(g, d_rv, rv0, C);
    upload(g, out_d.p, nan_n, n);
    upload(g, d_mean, nan_c, C);
    upload(g, d_rstd, nan_c, C);
    op_batchnorm2d_forward(g, out_d.p, d_mean, d_rstd, d_rm, d_rv, x_d.p, d_gamma, d_beta, B, C, HW,
                           momentum, eps, 0);
    snprintf(lab, sizeof lab, "bn eval fwd out %s", nm);
    check_dev(g, lab, out_d.p, out_e, n, 1e-5f, 1e-4f);
    snprintf(lab, sizeof lab, "bn eval fwd mean %s", nm);
    check_dev(g, lab, d_mean, mean_e, C, 1e-6f, 1e-5f);
    snprintf(lab, sizeof lab, "bn eval fwd rstd %s", nm);
    check_dev(g, lab, d_rstd, rstd_e, C, 1e-5f, 1e-4f);
    snprintf(lab, sizeof lab, "bn eval fwd run_mean untouched %s", nm);
    check_dev_bits(g, lab, d_rm, rm0, C);
    snprintf(lab, sizeof lab, "bn eval fwd run_var untouched %s", nm);
    check_dev_bits(g, lab, d_rv, rv0, C);

    /* eval backward (statistics constant), params accumulate once from dg0/db0 */
    upload(g, d_mean, mean_e, C);
    upload(g, d_rstd, rstd_e, C);
    upload(g, d_dg, dg0, C);
    upload(g, d_db, db0, C);
    upload(g, dinp_d.p, nan_n, n);
    op_batchnorm2d_backward(g, dinp_d.p, pg, pb, dout_d.p, x_d.p, d_gamma, d_mean, d_rstd, B, C, HW,
                            0);
    snprintf(lab, sizeof lab, "bn eval bwd dinp %s", nm);
    check_dev(g, lab, dinp_d.p, gdinp_e, n, 1e-5f, 1e-4f);
    if (k->affine) {
        float *dg1 = accum(dg0, gdg_e, C, 1), *db1 = accum(db0, gdb_e, C, 1);
        snprintf(lab, sizeof lab, "bn eval bwd dgamma (accumulate) %s", nm);
        check_dev(g, lab, d_dg, dg1, C, 1e-4f, 1e-4f);
        snprintf(lab, sizeof lab, "bn eval bwd dbeta (accumulate) %s", nm);
        check_dev(g, lab, d_db, db1, C, 1e-4f, 1e-4f);
        free(dg1);
        free(db1);
    }

    g->precision = SG_PREC_FP32;
    float *dev[] = {x_d.base, dout_d.base, out_d.base, out2_d.base, dinp_d.base, dinp2_d.base,
                    d_gamma,  d_beta,      d_mean,     d_rstd,      d_rm,        d_rv,
                    d_rm2,    d_rv2,       d_dg,       d_db,        d_dg2,       d_db2};
    dev_free_all(g, dev, sizeof dev / sizeof dev[0]);
    float *host[] = {x,     dout,   gamma,  beta,    rm0,   rv0,     dg0,   db0,
                     out_t, mean_t, rstd_t, rm_t,    rv_t,  gdinp_t, gdg_t, gdb_t,
                     out_e, mean_e, rstd_e, gdinp_e, gdg_e, gdb_e,   nan_n, nan_c};
    host_free_all(host, sizeof host / sizeof host[0]);
}

/* ---- timing (information only) ------------------------------------------------------------ */

static void time_conv(struct sg_ctx *g, int B, int C, int H, int OC, int K, int stride, int pad,
                      enum sg_precision prec, int iters)
{
    struct sg_conv2d_shape s;
    sg_conv2d_shape_init(&s, B, C, H, H, OC, K, K, stride, pad, 1);
    int64_t ni = (int64_t)B * C * H * H, nw = (int64_t)OC * C * K * K;
    int64_t no = (int64_t)B * OC * s.OH * s.OW;
    float *d_inp = sg_dev_alloc(g, sizeof(float) * ni), *d_w = sg_dev_alloc(g, sizeof(float) * nw);
    float *d_out = sg_dev_alloc(g, sizeof(float) * no), *d_b = sg_dev_alloc(g, sizeof(float) * OC);
    float *d_dinp = sg_dev_alloc(g, sizeof(float) * ni),
          *d_dw = sg_dev_alloc(g, sizeof(float) * nw);
    float *d_db = sg_dev_alloc(g, sizeof(float) * OC);
    float *bufs[] = {d_inp, d_w, d_out, d_b, d_dinp, d_dw, d_db};
    sg_memset_zero(g, d_inp, sizeof(float) * ni);
    sg_memset_zero(g, d_w, sizeof(float) * nw);
    sg_memset_zero(g, d_out, sizeof(float) * no);
    sg_memset_zero(g, d_b, sizeof(float) * OC);
    sg_memset_zero(g, d_dw, sizeof(float) * nw);
    sg_memset_zero(g, d_db, sizeof(float) * OC);
    g->precision = prec;
    double flop = 2.0 * (double)no * C * K * K;
    for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up (algorithm choice, scratch) */
        int n_it = pass ? iters : 1;
        sg_ctx_sync(g);
        double t0 = sg_time_now();
        for (int i = 0; i < n_it; i++) op_conv2d_forward(g, &s, d_out, d_inp, d_w, d_b);
        sg_ctx_sync(g);
        double t1 = sg_time_now();
        for (int i = 0; i < n_it; i++)
            op_conv2d_backward(g, &s, d_dinp, d_dw, d_db, d_out, d_inp, d_w);
        sg_ctx_sync(g);
        double t2 = sg_time_now();
        if (pass)
            printf("info conv B=%d C=%d %dx%d OC=%d k=%d s=%d %s: forward %.3f ms (%.1f TFLOP/s), "
                   "backward %.3f ms (%.1f TFLOP/s)\n",
                   B, C, H, H, OC, K, stride, prec_name(prec), 1e3 * (t1 - t0) / n_it,
                   flop * n_it / (t1 - t0) * 1e-12, 1e3 * (t2 - t1) / n_it,
                   2.0 * flop * n_it / (t2 - t1) * 1e-12);
    }
    g->precision = SG_PREC_FP32;
    dev_free_all(g, bufs, sizeof bufs / sizeof bufs[0]);
}

static void time_bn(struct sg_ctx *g, int B, int C, int HW, int iters)
{
    int64_t n = (int64_t)B * C * HW;
    float *d_x = sg_dev_alloc(g, sizeof(float) * n), *d_y = sg_dev_alloc(g, sizeof(float) * n);
    float *d_c = sg_dev_alloc(g, sizeof(float) * 6 * C);
    sg_memset_zero(g, d_x, sizeof(float) * n);
    sg_memset_zero(g, d_c, sizeof(float) * 6 * C);
    float *gm = d_c, *bt = d_c + C, *mean = d_c + 2 * C, *rstd = d_c + 3 * C;
    float *dg = d_c + 4 * C, *db = d_c + 5 * C;
    for (int pass = 0; pass < 2; pass++) {
        int n_it = pass ? iters : 1;
        sg_ctx_sync(g);
        double t0 = sg_time_now();
        for (int i = 0; i < n_it; i++)
            op_batchnorm2d_forward(g, d_y, mean, rstd, NULL, NULL, d_x, gm, bt, B, C, HW, 0.1f,
                                   1e-5f, 1);
        sg_ctx_sync(g);
        double t1 = sg_time_now();
        for (int i = 0; i < n_it; i++)
            op_batchnorm2d_backward(g, d_y, dg, db, d_x, d_x, gm, mean, rstd, B, C, HW, 1);
        sg_ctx_sync(g);
        double t2 = sg_time_now();
        double gb = 4.0 * (double)n * 1e-9; /* GB of one tensor */
        if (pass)
            printf("info batchnorm B=%d C=%d HW=%d: forward %.3f ms (%.0f GB/s at 3 tensor "
                   "passes), backward %.3f ms (%.0f GB/s at 4)\n",
                   B, C, HW, 1e3 * (t1 - t0) / n_it, 3 * gb * n_it / (t1 - t0),
                   1e3 * (t2 - t1) / n_it, 4 * gb * n_it / (t2 - t1));
    }
    sg_dev_free(g, d_x);
    sg_dev_free(g, d_y);
    sg_dev_free(g, d_c);
}

int main(void)
{
    if (!sg_cuda_available()) {
        printf("SKIP: no CUDA GPU\n");
        return SG_TEST_SKIP;
    }
    struct sg_ctx cpu, g;
    if (sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 0) != 0 || sg_ctx_init(&g, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: context: %s\n", sg_last_error());
        return 1;
    }
    /* ResNet-50 (torchvision, stride in the 3x3) and CLIP ModifiedResNet shapes, small batch */
    test_conv_sq(&cpu, &g, 2, 3, 224, 224, 64, 7, 2, 3, 1, 0);   /* RN50 stem 7x7/2 */
    test_conv_sq(&cpu, &g, 2, 3, 224, 224, 32, 3, 2, 1, 1, 0);   /* CLIP stem conv1 3x3/2 */
    test_conv_sq(&cpu, &g, 2, 32, 112, 112, 32, 3, 1, 1, 1, 0);  /* CLIP stem conv2 */
    test_conv_sq(&cpu, &g, 2, 32, 112, 112, 64, 3, 1, 1, 1, 1);  /* CLIP stem conv3 (+ bias) */
    test_conv_sq(&cpu, &g, 2, 64, 56, 56, 64, 3, 1, 1, 1, 1);    /* layer1 3x3 */
    test_conv_sq(&cpu, &g, 2, 256, 56, 56, 64, 1, 1, 0, 1, 0);   /* layer1 1x1 reduce */
    test_conv_sq(&cpu, &g, 2, 256, 56, 56, 512, 1, 2, 0, 1, 0);  /* layer2 downsample 1x1/2 */
    test_conv_sq(&cpu, &g, 2, 128, 56, 56, 128, 3, 2, 1, 1, 0);  /* layer2 3x3/2 */
    test_conv_sq(&cpu, &g, 4, 1024, 14, 14, 256, 1, 1, 0, 1, 1); /* layer4 reduce */
    test_conv_sq(&cpu, &g, 4, 512, 7, 7, 512, 3, 1, 1, 1, 0);    /* layer4 3x3 (K = 4608) */
    test_conv_sq(&cpu, &g, 4, 2048, 7, 7, 512, 1, 1, 0, 1, 1);   /* 1x1 2048 -> 512 */
    test_conv_sq(&cpu, &g, 2, 128, 14, 14, 128, 3, 1, 1, 32, 1); /* ResNeXt grouped */
    test_conv_sq(&cpu, &g, 2, 32, 15, 15, 32, 3, 2, 1, 32, 0);   /* depthwise 3x3/2 */
    test_conv_sq(&cpu, &g, 2, 3, 64, 64, 96, 16, 16, 0, 1, 1);   /* 16x16/16 patch embedding */
    /* odd shapes */
    test_conv_sq(&cpu, &g, 3, 5, 11, 11, 7, 3, 2, 1, 1, 1);
    test_conv_sq(&cpu, &g, 3, 5, 11, 11, 7, 3, 1, 1, 1, 0);
    test_conv_sq(&cpu, &g, 3, 5, 11, 11, 6, 1, 1, 0, 1, 0);
    test_conv_sq(&cpu, &g, 3, 6, 11, 11, 9, 3, 1, 1, 3, 1); /* groups 3, odd */
    test_conv_sq(&cpu, &g, 3, 4, 5, 5, 8, 5, 1, 0, 1, 1);   /* kernel = input: 1x1 output */
    struct sg_conv2d_shape ns = {3, 5, 11, 13, 7, 3, 5, 2, 1, 1, 2, 1, 0, 0};
    sg_conv2d_shape_finish(&ns); /* non-square kernel, stride (2,1), pad (1,2) */
    test_conv(&cpu, &g, &ns, 1, 99);

    static const struct bn_case bn[] = {
        {4, 64, 3136, 1, 1, 0, 2, 4},   /* 56x56, large mean, 1 chunk of 12544 */
        {3, 5, 121, 1, 1, 0, -1, 1},    /* odd */
        {3, 5, 121, 0, 0, 0, 2, 4},     /* affine=False, no running stats */
        {256, 2048, 1, 1, 1, 0, -1, 1}, /* BatchNorm1d (SogCLR head) */
        {256, 64, 1, 0, 1, 0, 2, 4},    /* BatchNorm1d, affine=False */
        {8, 256, 49, 1, 1, 0, 2, 4},    /* 7x7: HW odd, scalar apply */
        {2, 3, 7, 1, 1, 1, -1, 1},      /* misaligned pointers */
        {32, 16, 784, 1, 1, 0, 2, 4},   /* n = 25088: 2 chunks */
        {5, 4, 7001, 1, 1, 0, -1, 1},   /* 3 chunks crossing image rows */
        {64, 8, 3136, 1, 1, 0, 2, 4},   /* n = 200704: 13 chunks */
    };
    for (size_t i = 0; i < sizeof bn / sizeof bn[0]; i++) {
        test_bn(&cpu, &g, &bn[i], SG_PREC_FP32);
        test_bn(&cpu, &g, &bn[i], SG_PREC_BF16);
    }

    /* ResNet-50 at batch 64 (information only) */
    for (int p = 0; p < 2; p++) {
        enum sg_precision prec = p ? SG_PREC_BF16 : SG_PREC_FP32;
        time_conv(&g, 64, 3, 224, 64, 7, 2, 3, prec, 10);
        time_conv(&g, 64, 64, 56, 64, 3, 1, 1, prec, 10);
        time_conv(&g, 64, 256, 56, 64, 1, 1, 0, prec, 10);
        time_conv(&g, 64, 512, 7, 512, 3, 1, 1, prec, 10);
    }
    time_bn(&g, 64, 256, 3136, 10);
    time_bn(&g, 256, 2048, 1, 10);
    sg_ctx_free(&g);
    sg_ctx_free(&cpu);
    return sg_test_summary("test_cuda_conv");
}
