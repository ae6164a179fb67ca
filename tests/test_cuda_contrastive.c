/*
 * tests/test_cuda_contrastive.c — the CUDA paths of the CLIP loss (losses/clip.h), SimCLR
 * (losses/simclr.h) and unimodal SogCLR / iSogCLR (losses/sogclr_uni.h) against the same calls
 * on a CPU context. Exits 77 (ctest SKIP) without a CUDA GPU.
 *
 * For every B in {1, 7, 64, 256} and d in {3, 128, 512}, with L2-normalised random features
 * (second view / text = the first plus noise, per-row correlation in [0, 2)):
 *  - clip: p cycling over ln(1/0.07), ln 100, 0.5; loss, dzi, dzt and dp (accumulated onto 0.25);
 *    then dzi = NULL (dzt must equal the full call's bit for bit, dp NULL), all NULL (loss equal
 *    bit for bit) and a rerun (all outputs bit-identical);
 *  - simclr: tau cycling over 0.1, 0.5, 0.05; loss, dza, dzb; dza = NULL (dzb bit-identical),
 *    rerun bit-identical;
 *  - sogclr_uni, without and with isogclr (eta 0.05: the temperatures move): 3 steps over
 *    overlapping id sets (N = 2B + 1: unseen -> seen samples), cosine gamma with the epoch set per
 *    step; after every step loss, dza, dzb and the saved state (u, and tau, tau_m) compared;
 *    then the state round trip: a hand-made state (u, tau, tau_m all non-trivial) loaded into
 *    the GPU object (upload) and saved again must come back bit for bit, and one more step from
 *    it on all paths must agree (a missed upload would use the old state: caught, the values
 *    differ by far more than the tolerance); then determinism: the same step from the same
 *    loaded state twice, and once without gradients, gives bit-identical loss, gradients and
 *    state;
 *  - B = 1: every path returns -1 with the same message, nothing written;
 *  - bad inputs (clip/simclr: NaN and Inf features; sogclr_uni: id -1, id N, duplicate id, NaN
 *    row, non-normalised row): -1 with exactly the CPU's message, outputs and state untouched.
 *  - timing (information; skipped with SG_TEST_NO_TIMING): B = 1024, 4096 at d = 512.
 *
 * Tolerances. GPU and CPU both compute in fp32 with the same formulas; they differ in GEMM
 * summation order (cuBLAS vs oneDNN; ~sqrt(d) ulp in a similarity, times the scale s <= 100 or
 * 1/tau <= 20 in the exponents) and expf (CUDA <= 2 ulp, CPU sg_expf_fast <= 1 ulp). Rather than
 * guess that per case, every comparison runs the float64 reference (_ref) on the same inputs
 * and state and measures the CPU fast path's own error e = max |cpu - ref|; the GPU must then
 * satisfy |gpu - cpu| <= 4 e + floor, i.e. be about as accurate as the CPU (within 3x of its
 * error). Floors (for lucky tiny CPU errors): 2e-6 rms(ref) for gradients, 1e-6 (1 + |ref|) for
 * the loss and dp, 1e-6 for tau and tau_m. u is compared relatively (u spans decades): rtol =
 * 4 e_rel + 1e-6 with e_rel = max |cpu - ref| / |ref|. Each comparison prints e and the bound.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "tests/testutil.h"

#ifdef SG_CUDA
#include "core/safetensors.h"
#include "losses/clip.h"
#include "losses/simclr.h"
#include "losses/sogclr_uni.h"

static const int BS[] = {1, 7, 64, 256};
static const int DS[] = {3, 128, 512};
#define NB ((int)(sizeof BS / sizeof BS[0]))
#define ND ((int)(sizeof DS / sizeof DS[0]))

/* ---- helpers ------------------------------------------------------------------------------ */

static double rms(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

static void *to_dev(struct sg_ctx *g, const void *h, size_t bytes)
{
    void *d = sg_dev_alloc(g, bytes ? bytes : 4);
    if (bytes) sg_memcpy_h2d(g, d, h, bytes);
    return d;
}

static float *from_dev(struct sg_ctx *g, const float *d, int64_t n)
{
    float *h = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    if (n) sg_memcpy_d2h(g, h, d, sizeof(float) * (size_t)n);
    return h;
}

static float *host_nan(int64_t n)
{
    float *h = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) h[i] = NAN;
    return h;
}

/* Device buffer of n floats, all NaN (an output that must be overwritten or left alone). */
static float *dev_nan(struct sg_ctx *g, int64_t n)
{
    float *h = host_nan(n);
    float *d = to_dev(g, h, sizeof(float) * (size_t)n);
    free(h);
    return d;
}

static int all_nan_dev(struct sg_ctx *g, const float *d, int64_t n)
{
    float *h = from_dev(g, d, n);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= isnan(h[i]) != 0;
    free(h);
    return ok;
}

static int same_bits_dev(struct sg_ctx *g, const float *x, const float *y, int64_t n)
{
    float *a = from_dev(g, x, n), *b = from_dev(g, y, n);
    int eq = memcmp(a, b, sizeof(float) * (size_t)n) == 0;
    free(a);
    free(b);
    return eq;
}

static void normalise_rows(float *z, int B, int d)
{
    for (int i = 0; i < B; i++) {
        double s = 0.0;
        for (int k = 0; k < d; k++) s += (double)z[(int64_t)i * d + k] * z[(int64_t)i * d + k];
        double r = 1.0 / sqrt(s);
        for (int k = 0; k < d; k++) z[(int64_t)i * d + k] = (float)(z[(int64_t)i * d + k] * r);
    }
}

/* a, b (B, d): unit rows; b_i = normalise(noise_i + c_i a_i), c_i in [0, 2). */
static void make_views(float *a, float *b, int B, int d, uint64_t seed)
{
    int64_t n = (int64_t)B * d;
    float *c = sg_xmalloc(sizeof(float) * (size_t)(B ? B : 1));
    sg_test_fill(a, n, seed, -1.0f, 1.0f);
    sg_test_fill(b, n, seed + 1, -1.0f, 1.0f);
    sg_test_fill(c, B, seed + 2, 0.0f, 2.0f);
    normalise_rows(a, B, d);
    normalise_rows(b, B, d);
    for (int i = 0; i < B; i++)
        for (int k = 0; k < d; k++) b[(int64_t)i * d + k] += c[i] * a[(int64_t)i * d + k];
    normalise_rows(b, B, d);
    free(c);
}

/* GPU vs CPU, tolerance from the CPU's error against the float64 reference (header comment).
 * relative: u-like arrays (rtol from the relative error, entries with ref == 0 must match). */
static void check_vs_cpu(const char *label, const float *gpu, const float *cpu, const float *ref,
                         int64_t n, int relative, double floor)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)cpu[i] - (double)ref[i]);
        if (relative) diff = ref[i] != 0.0f ? diff / fabs((double)ref[i]) : 0.0;
        if (diff > e || isnan(diff)) e = isnan(diff) ? INFINITY : diff;
    }
    double tol = 4.0 * e + floor;
    printf("info %s: cpu vs float64 ref max %s error %.3g -> bound %.3g\n", label,
           relative ? "relative" : "abs", e, tol);
    if (relative)
        sg_test_close(label, gpu, cpu, n, 1e-30f, (float)tol);
    else
        sg_test_close(label, gpu, cpu, n, (float)tol, 0.0f);
}

static void check_grad(const char *label, const float *gpu, const float *cpu, const float *ref,
                       int64_t n)
{
    check_vs_cpu(label, gpu, cpu, ref, n, 0, 2e-6 * rms(ref, n) + 1e-12);
}

static void check_scalar(const char *label, float gpu, float cpu, double ref)
{
    float r = (float)ref;
    check_vs_cpu(label, &gpu, &cpu, &r, 1, 0, 1e-6 * (1.0 + fabs(ref)));
}

/* Saved copy of sg_last_error() (the next failing call overwrites it). */
static char *last_error_copy(void)
{
    const char *e = sg_last_error();
    size_t n = strlen(e) + 1;
    char *c = sg_xmalloc(n);
    memcpy(c, e, n);
    return c;
}

static void check_same_error(const char *tag, int rc_cpu, const char *msg_cpu, int rc_gpu)
{
    char lab[200];
    snprintf(lab, sizeof lab, "%s: CPU and GPU return -1", tag);
    sg_test_true(lab, rc_cpu == -1 && rc_gpu == -1);
    snprintf(lab, sizeof lab, "%s: same message", tag);
    if (!sg_test_true(lab, strcmp(msg_cpu, sg_last_error()) == 0))
        fprintf(stderr, "  cpu: %s\n  gpu: %s\n", msg_cpu, sg_last_error());
    else
        printf("     message: %s\n", msg_cpu);
}

/* ---- CLIP ------------------------------------------------------------------------------------ */

struct clip_in {
    int B, d;
    float p;
    float *zi, *zt;   /* host */
    float *dzi, *dzt; /* device copies of zi, zt */
};

static void clip_in_make(struct sg_ctx *g, struct clip_in *c, int B, int d, float p, uint64_t seed)
{
    int64_t n = (int64_t)B * d;
    c->B = B;
    c->d = d;
    c->p = p;
    c->zi = sg_xmalloc(sizeof(float) * (size_t)n);
    c->zt = sg_xmalloc(sizeof(float) * (size_t)n);
    make_views(c->zi, c->zt, B, d, seed);
    c->dzi = to_dev(g, c->zi, sizeof(float) * (size_t)n);
    c->dzt = to_dev(g, c->zt, sizeof(float) * (size_t)n);
}

static void clip_in_free(struct sg_ctx *g, struct clip_in *c)
{
    free(c->zi);
    free(c->zt);
    sg_dev_free(g, c->dzi);
    sg_dev_free(g, c->dzt);
}

/* NULL-gradient variants and a rerun against the full GPU call (gi, gt device, loss, dp). */
static void clip_contract(struct sg_ctx *g, struct sg_clip_loss *l, const struct clip_in *c,
                          const char *tag, const float *gi, const float *gt, float loss, float dp)
{
    int64_t n = (int64_t)c->B * c->d;
    float *xi = dev_nan(g, n), *xt = dev_nan(g, n);
    float l2 = -7.0f, l3 = -7.0f, l4 = -7.0f, dp4 = 0.25f;
    char lab[200];
    int rc = sg_clip_loss_compute(l, g, c->dzi, c->dzt, c->B, c->d, c->p, &l2, NULL, xt, NULL);
    snprintf(lab, sizeof lab, "%s: dzi = NULL, dp = NULL: dzt and loss bit-identical", tag);
    sg_test_true(lab, rc == 0 && same_bits_dev(g, xt, gt, n) && memcmp(&l2, &loss, 4) == 0);
    rc = sg_clip_loss_compute(l, g, c->dzi, c->dzt, c->B, c->d, c->p, &l3, NULL, NULL, NULL);
    snprintf(lab, sizeof lab, "%s: loss only: loss bit-identical", tag);
    sg_test_true(lab, rc == 0 && memcmp(&l3, &loss, 4) == 0);
    sg_dev_free(g, xt);
    xt = dev_nan(g, n);
    rc = sg_clip_loss_compute(l, g, c->dzi, c->dzt, c->B, c->d, c->p, &l4, xi, xt, &dp4);
    snprintf(lab, sizeof lab, "%s: rerun bit-identical (loss, dzi, dzt, dp)", tag);
    sg_test_true(lab, rc == 0 && same_bits_dev(g, xi, gi, n) && same_bits_dev(g, xt, gt, n) &&
                          memcmp(&l4, &loss, 4) == 0 && memcmp(&dp4, &dp, 4) == 0);
    sg_dev_free(g, xi);
    sg_dev_free(g, xt);
}

static void clip_case(struct sg_ctx *g, struct sg_ctx *cpu, int B, int d, float p, uint64_t seed)
{
    char tag[96], lab[200];
    snprintf(tag, sizeof tag, "clip B=%d d=%d p=%.4g", B, d, (double)p);
    struct clip_in c;
    clip_in_make(g, &c, B, d, p, seed);
    int64_t n = (int64_t)B * d;
    struct sg_clip_loss lc, lg;
    sg_clip_loss_init(&lc);
    sg_clip_loss_init(&lg);
    float *ci = host_nan(n), *ct = host_nan(n), *ri = host_nan(n), *rt = host_nan(n);
    float *gi = dev_nan(g, n), *gt = dev_nan(g, n);
    float loss_c = -7.0f, loss_g = -7.0f, dp_c = 0.25f, dp_g = 0.25f, dp_r = 0.25f;
    double loss_r = 0.0;
    int rc_c = sg_clip_loss_compute(&lc, cpu, c.zi, c.zt, B, d, p, &loss_c, ci, ct, &dp_c);
    char *msg = last_error_copy();
    int rc_r = sg_clip_loss_ref(c.zi, c.zt, B, d, p, &loss_r, ri, rt, &dp_r);
    int rc_g = sg_clip_loss_compute(&lg, g, c.dzi, c.dzt, B, d, p, &loss_g, gi, gt, &dp_g);
    if (B < 2) {
        check_same_error(tag, rc_c, msg, rc_g);
        snprintf(lab, sizeof lab, "%s: nothing written", tag);
        sg_test_true(lab, loss_g == -7.0f && dp_g == 0.25f && all_nan_dev(g, gi, n) &&
                              all_nan_dev(g, gt, n));
    } else {
        snprintf(lab, sizeof lab, "%s: ref, CPU and GPU succeed", tag);
        if (sg_test_true(lab, rc_c == 0 && rc_r == 0 && rc_g == 0)) {
            float *hi = from_dev(g, gi, n), *ht = from_dev(g, gt, n);
            snprintf(lab, sizeof lab, "%s loss", tag);
            check_scalar(lab, loss_g, loss_c, loss_r);
            snprintf(lab, sizeof lab, "%s dp", tag);
            check_scalar(lab, dp_g, dp_c, dp_r);
            snprintf(lab, sizeof lab, "%s dzi", tag);
            check_grad(lab, hi, ci, ri, n);
            snprintf(lab, sizeof lab, "%s dzt", tag);
            check_grad(lab, ht, ct, rt, n);
            free(hi);
            free(ht);
            clip_contract(g, &lg, &c, tag, gi, gt, loss_g, dp_g);
        } else {
            fprintf(stderr, "  error: %s\n", sg_last_error());
        }
    }
    free(msg);
    free(ci);
    free(ct);
    free(ri);
    free(rt);
    sg_dev_free(g, gi);
    sg_dev_free(g, gt);
    sg_clip_loss_free(&lc);
    sg_clip_loss_free(&lg);
    clip_in_free(g, &c);
}

/* A NaN (image) or -Inf (text) feature: -1 with the CPU's message, nothing written. */
static void clip_bad(struct sg_ctx *g, struct sg_ctx *cpu, int which)
{
    const int B = 64, d = 128;
    struct clip_in c;
    clip_in_make(g, &c, B, d, 2.0f, 555 + (uint64_t)which);
    int64_t n = (int64_t)B * d;
    float *z = which ? c.zt : c.zi, *dz = which ? c.dzt : c.dzi;
    z[37 * d + 5] = which ? -INFINITY : NAN;
    z[50 * d + 1] = NAN;
    sg_memcpy_h2d(g, dz, z, sizeof(float) * (size_t)n);
    struct sg_clip_loss l;
    sg_clip_loss_init(&l);
    float *ci = host_nan(n), *ct = host_nan(n), *gi = dev_nan(g, n), *gt = dev_nan(g, n);
    float loss_c = -7.0f, loss_g = -7.0f, dp_c = 0.25f, dp_g = 0.25f;
    int rc_c = sg_clip_loss_compute(&l, cpu, c.zi, c.zt, B, d, 2.0f, &loss_c, ci, ct, &dp_c);
    char *msg = last_error_copy();
    int rc_g = sg_clip_loss_compute(&l, g, c.dzi, c.dzt, B, d, 2.0f, &loss_g, gi, gt, &dp_g);
    char tag[96], lab[200];
    snprintf(tag, sizeof tag, "clip bad input (%s)", which ? "-Inf in zt" : "NaN in zi");
    check_same_error(tag, rc_c, msg, rc_g);
    snprintf(lab, sizeof lab, "%s: loss, dp, dzi, dzt not written", tag);
    sg_test_true(lab, loss_g == -7.0f && dp_g == 0.25f && all_nan_dev(g, gi, n) &&
                          all_nan_dev(g, gt, n));
    free(msg);
    free(ci);
    free(ct);
    sg_dev_free(g, gi);
    sg_dev_free(g, gt);
    sg_clip_loss_free(&l);
    clip_in_free(g, &c);
}

/* ---- SimCLR ---------------------------------------------------------------------------------- */

static void simclr_case(struct sg_ctx *g, struct sg_ctx *cpu, int B, int d, float tau,
                        uint64_t seed)
{
    char tag[96], lab[200];
    snprintf(tag, sizeof tag, "simclr B=%d d=%d tau=%.3g", B, d, (double)tau);
    struct clip_in c; /* zi = view a, zt = view b */
    clip_in_make(g, &c, B, d, 0.0f, seed);
    int64_t n = (int64_t)B * d;
    struct sg_simclr_loss lc, lg;
    SG_CHECK(sg_simclr_loss_init(&lc, tau) == 0 && sg_simclr_loss_init(&lg, tau) == 0, "init");
    float *ca = host_nan(n), *cb = host_nan(n), *ra = host_nan(n), *rb = host_nan(n);
    float *ga = dev_nan(g, n), *gb = dev_nan(g, n);
    float loss_c = -7.0f, loss_g = -7.0f;
    double loss_r = 0.0;
    int rc_c = sg_simclr_loss_compute(&lc, cpu, c.zi, c.zt, B, d, &loss_c, ca, cb);
    char *msg = last_error_copy();
    int rc_r = sg_simclr_loss_ref(c.zi, c.zt, B, d, tau, &loss_r, ra, rb);
    int rc_g = sg_simclr_loss_compute(&lg, g, c.dzi, c.dzt, B, d, &loss_g, ga, gb);
    if (B < 2) {
        check_same_error(tag, rc_c, msg, rc_g);
        snprintf(lab, sizeof lab, "%s: nothing written", tag);
        sg_test_true(lab, loss_g == -7.0f && all_nan_dev(g, ga, n) && all_nan_dev(g, gb, n));
    } else {
        snprintf(lab, sizeof lab, "%s: ref, CPU and GPU succeed", tag);
        if (sg_test_true(lab, rc_c == 0 && rc_r == 0 && rc_g == 0)) {
            float *ha = from_dev(g, ga, n), *hb = from_dev(g, gb, n);
            snprintf(lab, sizeof lab, "%s loss", tag);
            check_scalar(lab, loss_g, loss_c, loss_r);
            snprintf(lab, sizeof lab, "%s dza", tag);
            check_grad(lab, ha, ca, ra, n);
            snprintf(lab, sizeof lab, "%s dzb", tag);
            check_grad(lab, hb, cb, rb, n);
            free(ha);
            free(hb);
            /* dza = NULL: dzb bit-identical; rerun: everything bit-identical */
            float *xa = dev_nan(g, n), *xb = dev_nan(g, n), l2 = -7.0f, l3 = -7.0f;
            int rc = sg_simclr_loss_compute(&lg, g, c.dzi, c.dzt, B, d, &l2, NULL, xb);
            snprintf(lab, sizeof lab, "%s: dza = NULL: dzb and loss bit-identical", tag);
            sg_test_true(lab, rc == 0 && same_bits_dev(g, xb, gb, n) && !memcmp(&l2, &loss_g, 4));
            rc = sg_simclr_loss_compute(&lg, g, c.dzi, c.dzt, B, d, &l3, xa, xb);
            snprintf(lab, sizeof lab, "%s: rerun bit-identical (loss, dza, dzb)", tag);
            sg_test_true(lab, rc == 0 && same_bits_dev(g, xa, ga, n) &&
                                  same_bits_dev(g, xb, gb, n) && !memcmp(&l3, &loss_g, 4));
            sg_dev_free(g, xa);
            sg_dev_free(g, xb);
        } else {
            fprintf(stderr, "  error: %s\n", sg_last_error());
        }
    }
    free(msg);
    free(ca);
    free(cb);
    free(ra);
    free(rb);
    sg_dev_free(g, ga);
    sg_dev_free(g, gb);
    sg_simclr_loss_free(&lc);
    sg_simclr_loss_free(&lg);
    clip_in_free(g, &c);
}

static void simclr_bad(struct sg_ctx *g, struct sg_ctx *cpu, int which)
{
    const int B = 64, d = 128;
    struct clip_in c;
    clip_in_make(g, &c, B, d, 0.0f, 777 + (uint64_t)which);
    int64_t n = (int64_t)B * d;
    float *z = which ? c.zt : c.zi, *dz = which ? c.dzt : c.dzi;
    z[63 * d + 127] = which ? INFINITY : NAN;
    sg_memcpy_h2d(g, dz, z, sizeof(float) * (size_t)n);
    struct sg_simclr_loss l;
    SG_CHECK(sg_simclr_loss_init(&l, 0.1f) == 0, "init");
    float *ca = host_nan(n), *cb = host_nan(n), *ga = dev_nan(g, n), *gb = dev_nan(g, n);
    float loss_c = -7.0f, loss_g = -7.0f;
    int rc_c = sg_simclr_loss_compute(&l, cpu, c.zi, c.zt, B, d, &loss_c, ca, cb);
    char *msg = last_error_copy();
    int rc_g = sg_simclr_loss_compute(&l, g, c.dzi, c.dzt, B, d, &loss_g, ga, gb);
    char tag[96], lab[200];
    snprintf(tag, sizeof tag, "simclr bad input (%s)", which ? "Inf in zb" : "NaN in za");
    check_same_error(tag, rc_c, msg, rc_g);
    snprintf(lab, sizeof lab, "%s: loss, dza, dzb not written", tag);
    sg_test_true(lab, loss_g == -7.0f && all_nan_dev(g, ga, n) && all_nan_dev(g, gb, n));
    free(msg);
    free(ca);
    free(cb);
    sg_dev_free(g, ga);
    sg_dev_free(g, gb);
    sg_simclr_loss_free(&l);
    clip_in_free(g, &c);
}

/* ---- unimodal SogCLR / iSogCLR --------------------------------------------------------------- */

#define UNI_STEPS 3

/* A unimodal batch: views (host + device), ids (host + device). */
struct uni_batch {
    int B, d;
    float *za, *zb, *dza_in, *dzb_in;
    int64_t *idx, *didx;
};

/* Step k's batch: ids (k B/2 + 5 i mod B) mod N: distinct, half overlapping the previous step. */
static void uni_batch_make(struct sg_ctx *g, struct uni_batch *b, int B, int d, int64_t N, int k,
                           uint64_t seed)
{
    int64_t n = (int64_t)B * d;
    b->B = B;
    b->d = d;
    b->za = sg_xmalloc(sizeof(float) * (size_t)n);
    b->zb = sg_xmalloc(sizeof(float) * (size_t)n);
    make_views(b->za, b->zb, B, d, seed);
    b->idx = sg_xmalloc(sizeof(int64_t) * (size_t)(B ? B : 1));
    for (int i = 0; i < B; i++)
        b->idx[i] = ((int64_t)k * (B / 2) + (int64_t)((5 * (int64_t)i) % B)) % N;
    b->dza_in = to_dev(g, b->za, sizeof(float) * (size_t)n);
    b->dzb_in = to_dev(g, b->zb, sizeof(float) * (size_t)n);
    b->didx = to_dev(g, b->idx, sizeof(int64_t) * (size_t)B);
}

static void uni_batch_upload(struct sg_ctx *g, struct uni_batch *b)
{
    size_t n = sizeof(float) * (size_t)b->B * (size_t)b->d;
    sg_memcpy_h2d(g, b->dza_in, b->za, n);
    sg_memcpy_h2d(g, b->dzb_in, b->zb, n);
    sg_memcpy_h2d(g, b->didx, b->idx, sizeof(int64_t) * (size_t)b->B);
}

static void uni_batch_free(struct sg_ctx *g, struct uni_batch *b)
{
    free(b->za);
    free(b->zb);
    free(b->idx);
    sg_dev_free(g, b->dza_in);
    sg_dev_free(g, b->dzb_in);
    sg_dev_free(g, b->didx);
}

/* The saved state of l, serialised and reopened (the caller closes f). */
static void uni_saved(const struct sogclr_uni *l, struct sg_st_file *f)
{
    struct sg_st_writer w;
    uint8_t *buf;
    size_t len;
    sg_stw_init(&w);
    SG_CHECK(sogclr_uni_state_save(l, &w, "s.") == 0, "%s", sg_last_error());
    sg_stw_serialize(&w, &buf, &len);
    sg_stw_free(&w);
    SG_CHECK(sg_st_open_buffer(f, buf, len, "state") == 0, "%s", sg_last_error());
}

/* Saved state arrays of l: (3, N) u, tau, tau_m (tau rows 0 without isogclr). */
static float *uni_state(const struct sogclr_uni *l)
{
    int64_t N = l->cfg.N;
    float *s = sg_xcalloc(3 * (size_t)N, sizeof(float));
    struct sg_st_file f;
    uni_saved(l, &f);
    SG_CHECK(sg_st_read_f32(&f, "s.u", s, N) == 0, "%s", sg_last_error());
    if (l->cfg.isogclr) {
        SG_CHECK(sg_st_read_f32(&f, "s.tau", s + N, N) == 0 &&
                     sg_st_read_f32(&f, "s.tau_m", s + 2 * N, N) == 0,
                 "%s", sg_last_error());
    }
    sg_st_close(&f);
    return s;
}

static void uni_compare_state(const char *tag, const struct sogclr_uni *lg,
                              const struct sogclr_uni *lc, const struct sogclr_uni *lr)
{
    int64_t N = lg->cfg.N;
    float *sg = uni_state(lg), *sc = uni_state(lc), *sr = uni_state(lr);
    char lab[200];
    snprintf(lab, sizeof lab, "%s state u", tag);
    check_vs_cpu(lab, sg, sc, sr, N, 1, 1e-6);
    if (lg->cfg.isogclr) {
        snprintf(lab, sizeof lab, "%s state tau", tag);
        check_vs_cpu(lab, sg + N, sc + N, sr + N, N, 0, 1e-6);
        snprintf(lab, sizeof lab, "%s state tau_m", tag);
        check_vs_cpu(lab, sg + 2 * N, sc + 2 * N, sr + 2 * N, N, 0, 1e-6);
    }
    free(sg);
    free(sc);
    free(sr);
}

/* One step of batch b on the three objects (ref, CPU, GPU), everything compared. */
static void uni_step3(struct sg_ctx *g, struct sg_ctx *cpu, struct sogclr_uni *lr,
                      struct sogclr_uni *lc, struct sogclr_uni *lg, const struct uni_batch *b,
                      const char *tag)
{
    int B = b->B, d = b->d;
    int64_t n = (int64_t)B * d;
    char lab[200];
    float *ra = host_nan(n), *rb = host_nan(n), *ca = host_nan(n), *cb = host_nan(n);
    float *ga = dev_nan(g, n), *gb = dev_nan(g, n);
    float loss_r = -7.0f, loss_c = -7.0f, loss_g = -7.0f;
    float *before = uni_state(lg);
    int rc_c = sogclr_uni_forward_backward(lc, cpu, b->za, b->zb, b->idx, B, d, &loss_c, ca, cb);
    char *msg = last_error_copy();
    int rc_r = sogclr_uni_forward_backward_ref(lr, b->za, b->zb, b->idx, B, d, &loss_r, ra, rb);
    int rc_g =
        sogclr_uni_forward_backward(lg, g, b->dza_in, b->dzb_in, b->didx, B, d, &loss_g, ga, gb);
    if (B < 2) {
        check_same_error(tag, rc_c, msg, rc_g);
        float *after = uni_state(lg);
        snprintf(lab, sizeof lab, "%s: nothing written, state bit-identical", tag);
        sg_test_true(lab, loss_g == -7.0f && all_nan_dev(g, ga, n) && all_nan_dev(g, gb, n) &&
                              !memcmp(before, after, sizeof(float) * 3 * (size_t)lg->cfg.N));
        free(after);
    } else {
        snprintf(lab, sizeof lab, "%s: ref, CPU and GPU succeed", tag);
        if (sg_test_true(lab, rc_c == 0 && rc_r == 0 && rc_g == 0)) {
            float *ha = from_dev(g, ga, n), *hb = from_dev(g, gb, n);
            snprintf(lab, sizeof lab, "%s loss", tag);
            check_scalar(lab, loss_g, loss_c, loss_r);
            snprintf(lab, sizeof lab, "%s dza", tag);
            check_grad(lab, ha, ca, ra, n);
            snprintf(lab, sizeof lab, "%s dzb", tag);
            check_grad(lab, hb, cb, rb, n);
            free(ha);
            free(hb);
            uni_compare_state(tag, lg, lc, lr);
        } else {
            fprintf(stderr, "  error: %s\n", sg_last_error());
        }
    }
    free(before);
    free(msg);
    free(ra);
    free(rb);
    free(ca);
    free(cb);
    sg_dev_free(g, ga);
    sg_dev_free(g, gb);
}

static void uni_config(struct sogclr_uni_config *cfg, int64_t N, int iso)
{
    sogclr_uni_config_default(cfg, N);
    cfg->tau = 0.1f;
    cfg->gamma = 0.5f;
    cfg->schedule = SOGCLR_UNI_GAMMA_COSINE;
    cfg->gamma_decay_epochs = 2;
    cfg->isogclr = iso;
    cfg->eta = 0.05f;
}

/* A hand-made state (u, tau, tau_m non-trivial; gamma, epoch as in `like`), serialised. */
static void uni_custom_state(const struct sogclr_uni *like, struct sg_st_file *f)
{
    struct sogclr_uni z;
    SG_CHECK(sogclr_uni_init(&z, &like->cfg) == 0, "%s", sg_last_error());
    for (int64_t k = 0; k < z.cfg.N; k++) {
        z.u[k] = k % 3 == 0 ? 0.0f : 0.5f + 0.37f * (float)(k % 11); /* some unseen */
        if (z.tau) {
            z.tau[k] = 0.06f + 0.01f * (float)(k % 7);
            z.tau_m[k] = 0.2f - 0.05f * (float)(k % 5);
        }
    }
    z.gamma = like->gamma;
    z.epoch = like->epoch;
    uni_saved(&z, f);
    sogclr_uni_free(&z);
}

/* Loads f into the three objects; the GPU object saved again must give back f's arrays bit for
 * bit (upload + download round trip). */
static void uni_load_all(struct sogclr_uni *lr, struct sogclr_uni *lc, struct sogclr_uni *lg,
                         const struct sg_st_file *f, const char *tag)
{
    char lab[200];
    snprintf(lab, sizeof lab, "%s: state loads into ref, CPU and GPU objects", tag);
    sg_test_true(lab, sogclr_uni_state_load(lr, f, "s.") == 0 &&
                          sogclr_uni_state_load(lc, f, "s.") == 0 &&
                          sogclr_uni_state_load(lg, f, "s.") == 0);
    int64_t N = lg->cfg.N;
    float *want = sg_xcalloc(3 * (size_t)N, sizeof(float));
    SG_CHECK(sg_st_read_f32(f, "s.u", want, N) == 0, "%s", sg_last_error());
    if (lg->cfg.isogclr)
        SG_CHECK(sg_st_read_f32(f, "s.tau", want + N, N) == 0 &&
                     sg_st_read_f32(f, "s.tau_m", want + 2 * N, N) == 0,
                 "%s", sg_last_error());
    float *got = uni_state(lg);
    snprintf(lab, sizeof lab, "%s: GPU load + save round trip bit-identical", tag);
    sg_test_true(lab, !memcmp(want, got, sizeof(float) * 3 * (size_t)N));
    free(want);
    free(got);
}

/* The same step from the same loaded state: with gradients twice and once without; loss,
 * gradients and the state after must be bit-identical. */
static void uni_determinism(struct sg_ctx *g, struct sogclr_uni *lg, const struct sg_st_file *f,
                            const struct uni_batch *b, const char *tag)
{
    int64_t n = (int64_t)b->B * b->d;
    float *a1 = dev_nan(g, n), *b1 = dev_nan(g, n), *a2 = dev_nan(g, n), *b2 = dev_nan(g, n);
    float l1 = -7.0f, l2 = -7.0f, l3 = -7.0f;
    int rc = sogclr_uni_state_load(lg, f, "s.");
    rc |=
        sogclr_uni_forward_backward(lg, g, b->dza_in, b->dzb_in, b->didx, b->B, b->d, &l1, a1, b1);
    float *s1 = uni_state(lg);
    rc |= sogclr_uni_state_load(lg, f, "s.");
    rc |= sogclr_uni_forward_backward(lg, g, b->dza_in, b->dzb_in, b->didx, b->B, b->d, &l2, NULL,
                                      NULL);
    float *s2 = uni_state(lg);
    rc |= sogclr_uni_state_load(lg, f, "s.");
    rc |=
        sogclr_uni_forward_backward(lg, g, b->dza_in, b->dzb_in, b->didx, b->B, b->d, &l3, a2, b2);
    float *s3 = uni_state(lg);
    size_t sb = sizeof(float) * 3 * (size_t)lg->cfg.N;
    char lab[200];
    snprintf(lab, sizeof lab, "%s: determinism steps succeed", tag);
    sg_test_true(lab, rc == 0);
    snprintf(lab, sizeof lab, "%s: rerun bit-identical (loss, dza, dzb, state)", tag);
    sg_test_true(lab, !memcmp(&l1, &l3, 4) && same_bits_dev(g, a1, a2, n) &&
                          same_bits_dev(g, b1, b2, n) && !memcmp(s1, s3, sb));
    snprintf(lab, sizeof lab, "%s: without gradients: loss and state bit-identical", tag);
    sg_test_true(lab, !memcmp(&l1, &l2, 4) && !memcmp(s1, s2, sb));
    free(s1);
    free(s2);
    free(s3);
    sg_dev_free(g, a1);
    sg_dev_free(g, b1);
    sg_dev_free(g, a2);
    sg_dev_free(g, b2);
}

static void uni_case(struct sg_ctx *g, struct sg_ctx *cpu, int B, int d, int iso)
{
    const int64_t N = 2 * (int64_t)B + 1;
    struct sogclr_uni_config cfg;
    uni_config(&cfg, N, iso);
    struct sogclr_uni lr, lc, lg;
    SG_CHECK(sogclr_uni_init(&lr, &cfg) == 0 && sogclr_uni_init(&lc, &cfg) == 0 &&
                 sogclr_uni_init(&lg, &cfg) == 0,
             "%s", sg_last_error());
    char tag[128];
    struct uni_batch b;
    for (int k = 0; k < UNI_STEPS; k++) {
        sogclr_uni_set_epoch(&lr, k);
        sogclr_uni_set_epoch(&lc, k);
        sogclr_uni_set_epoch(&lg, k);
        uni_batch_make(g, &b, B, d, N, k, 9000 + 31 * (uint64_t)k + (uint64_t)B * 7 + (uint64_t)d);
        snprintf(tag, sizeof tag, "%s B=%d d=%d step %d (gamma %.3g)",
                 iso ? "isogclr_uni" : "sogclr_uni", B, d, k, (double)lg.gamma);
        uni_step3(g, cpu, &lr, &lc, &lg, &b, tag);
        uni_batch_free(g, &b);
    }
    if (B >= 2) {
        struct sg_st_file f;
        uni_custom_state(&lg, &f);
        snprintf(tag, sizeof tag, "%s B=%d d=%d loaded state", iso ? "isogclr_uni" : "sogclr_uni",
                 B, d);
        uni_load_all(&lr, &lc, &lg, &f, tag);
        uni_batch_make(g, &b, B, d, N, UNI_STEPS, 4242 + (uint64_t)B + (uint64_t)d);
        uni_step3(g, cpu, &lr, &lc, &lg, &b, tag);
        uni_determinism(g, &lg, &f, &b, tag);
        uni_batch_free(g, &b);
        sg_st_close(&f);
    }
    sogclr_uni_free(&lr);
    sogclr_uni_free(&lc);
    sogclr_uni_free(&lg);
}

enum uni_bad { UB_ID_NEG, UB_ID_N, UB_DUP, UB_NAN, UB_NORM, UB_COUNT };
static const char *uni_bad_names[UB_COUNT] = {"id -1", "id N", "duplicate id", "NaN in za row",
                                              "zb row not normalised"};

/* Bad input on an object whose state is already on the GPU: -1 with the CPU's message, state,
 * loss and gradients untouched. */
static void uni_bad(struct sg_ctx *g, struct sg_ctx *cpu, int iso)
{
    const int B = 64, d = 128;
    const int64_t N = 2 * B + 1;
    struct sogclr_uni_config cfg;
    uni_config(&cfg, N, iso);
    struct sogclr_uni lc, lg;
    SG_CHECK(sogclr_uni_init(&lc, &cfg) == 0 && sogclr_uni_init(&lg, &cfg) == 0, "init");
    struct uni_batch b;
    uni_batch_make(g, &b, B, d, N, 0, 31337);
    int64_t n = (int64_t)B * d;
    float *ca = host_nan(n), *cb = host_nan(n), *ga = dev_nan(g, n), *gb = dev_nan(g, n);
    float lossc, lossg;
    SG_CHECK(sogclr_uni_forward_backward(&lc, cpu, b.za, b.zb, b.idx, B, d, &lossc, ca, cb) == 0 &&
                 sogclr_uni_forward_backward(&lg, g, b.dza_in, b.dzb_in, b.didx, B, d, &lossg, ga,
                                             gb) == 0,
             "%s", sg_last_error());
    sg_dev_free(g, ga);
    sg_dev_free(g, gb);
    for (int kind = 0; kind < UB_COUNT; kind++) {
        struct uni_batch x;
        uni_batch_make(g, &x, B, d, N, 1, 4000 + (uint64_t)kind);
        switch (kind) {
        case UB_ID_NEG:
            x.idx[9] = -1;
            break;
        case UB_ID_N:
            x.idx[B - 1] = N;
            break;
        case UB_DUP:
            x.idx[40] = x.idx[3];
            break;
        case UB_NAN:
            x.za[17 * d + 2] = NAN;
            break;
        default:
            for (int k = 0; k < d; k++) x.zb[30 * d + k] *= 1.1f;
            break;
        }
        uni_batch_upload(g, &x);
        ga = dev_nan(g, n);
        gb = dev_nan(g, n);
        float *before = uni_state(&lg);
        float lc2 = -7.0f, lg2 = -7.0f;
        int rc_c = sogclr_uni_forward_backward(&lc, cpu, x.za, x.zb, x.idx, B, d, &lc2, ca, cb);
        char *msg = last_error_copy();
        int rc_g =
            sogclr_uni_forward_backward(&lg, g, x.dza_in, x.dzb_in, x.didx, B, d, &lg2, ga, gb);
        char tag[128], lab[200];
        snprintf(tag, sizeof tag, "%s bad input (%s)", iso ? "isogclr_uni" : "sogclr_uni",
                 uni_bad_names[kind]);
        check_same_error(tag, rc_c, msg, rc_g);
        float *after = uni_state(&lg);
        snprintf(lab, sizeof lab, "%s: state bit-identical, loss, dza, dzb not written", tag);
        sg_test_true(lab, !memcmp(before, after, sizeof(float) * 3 * (size_t)N) && lg2 == -7.0f &&
                              all_nan_dev(g, ga, n) && all_nan_dev(g, gb, n));
        free(before);
        free(after);
        free(msg);
        sg_dev_free(g, ga);
        sg_dev_free(g, gb);
        uni_batch_free(g, &x);
    }
    free(ca);
    free(cb);
    uni_batch_free(g, &b);
    sogclr_uni_free(&lc);
    sogclr_uni_free(&lg);
}

/* ---- timing (information only) --------------------------------------------------------------- */

static void time_losses(struct sg_ctx *g, int B, int d, int iters)
{
    struct clip_in c;
    clip_in_make(g, &c, B, d, 2.659f, 99);
    int64_t n = (int64_t)B * d;
    float *o1 = dev_nan(g, n), *o2 = dev_nan(g, n), loss, dp = 0.0f;
    struct sg_clip_loss lclip;
    struct sg_simclr_loss lsim;
    struct sogclr_uni luni;
    struct sogclr_uni_config cfg;
    uni_config(&cfg, 2 * (int64_t)B + 1, 0);
    sg_clip_loss_init(&lclip);
    SG_CHECK(sg_simclr_loss_init(&lsim, 0.1f) == 0 && sogclr_uni_init(&luni, &cfg) == 0, "init");
    struct uni_batch b;
    uni_batch_make(g, &b, B, d, cfg.N, 0, 98);
    double ms[3];
    for (int which = 0; which < 3; which++) {
        double t0 = 0.0;
        for (int it = -2; it < iters; it++) { /* two warm-up calls */
            if (it == 0) t0 = sg_time_now();
            int rc = which == 0 ? sg_clip_loss_compute(&lclip, g, c.dzi, c.dzt, B, d, 2.659f, &loss,
                                                       o1, o2, &dp)
                     : which == 1
                         ? sg_simclr_loss_compute(&lsim, g, b.dza_in, b.dzb_in, B, d, &loss, o1, o2)
                         : sogclr_uni_forward_backward(&luni, g, b.dza_in, b.dzb_in, b.didx, B, d,
                                                       &loss, o1, o2);
            SG_CHECK(rc == 0, "%s", sg_last_error());
        }
        ms[which] = 1e3 * (sg_time_now() - t0) / iters; /* each call ends with its sync */
    }
    printf("info timing B=%d d=%d (fp32, per call incl. its one sync): clip %.3f ms, simclr "
           "%.3f ms, sogclr_uni %.3f ms\n",
           B, d, ms[0], ms[1], ms[2]);
    uni_batch_free(g, &b);
    sogclr_uni_free(&luni);
    sg_simclr_loss_free(&lsim);
    sg_clip_loss_free(&lclip);
    sg_dev_free(g, o1);
    sg_dev_free(g, o2);
    clip_in_free(g, &c);
}

int main(void)
{
    if (!sg_cuda_available()) {
        printf("SKIP: no CUDA GPU\n");
        return SG_TEST_SKIP;
    }
    struct sg_ctx g, cpu;
    if (sg_ctx_init(&g, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: CUDA context: %s\n", sg_last_error());
        return 1;
    }
    SG_CHECK(sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 0) == 0, "%s", sg_last_error());
    static const float clip_p[3] = {2.6592600f, 4.6051702f, 0.5f}; /* ln(1/0.07), ln 100 */
    static const float simclr_tau[3] = {0.1f, 0.5f, 0.05f};
    int ci = 0;
    for (int bi = 0; bi < NB; bi++)
        for (int di = 0; di < ND; di++, ci++) {
            clip_case(&g, &cpu, BS[bi], DS[di], clip_p[ci % 3], 100 + 7 * (uint64_t)ci);
            simclr_case(&g, &cpu, BS[bi], DS[di], simclr_tau[ci % 3], 200 + 7 * (uint64_t)ci);
        }
    for (int w = 0; w < 2; w++) {
        clip_bad(&g, &cpu, w);
        simclr_bad(&g, &cpu, w);
    }
    for (int iso = 0; iso < 2; iso++) {
        for (int bi = 0; bi < NB; bi++)
            for (int di = 0; di < ND; di++) uni_case(&g, &cpu, BS[bi], DS[di], iso);
        uni_bad(&g, &cpu, iso);
    }
    if (!getenv("SG_TEST_NO_TIMING")) { /* e.g. under compute-sanitizer */
        time_losses(&g, 1024, 512, 20);
        time_losses(&g, 4096, 512, 10);
    }
    sg_ctx_free(&cpu);
    sg_ctx_free(&g);
    return sg_test_summary("test_cuda_contrastive");
}

#else /* no CUDA backend in this build */

int main(void)
{
    printf("SKIP: no CUDA GPU (built without the CUDA backend)\n");
    return SG_TEST_SKIP;
}

#endif
