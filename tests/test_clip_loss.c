/*
 * tests/test_clip_loss.c — CLIP InfoNCE loss with learnable logit scale (losses/clip.h) against
 * PyTorch float64 autograd of open_clip's ClipLoss (tests/ref/gen_clip_loss.py ->
 * tests/ref/data/clip_loss.safetensors), for both sg_clip_loss_ref and sg_clip_loss_compute:
 * odd (B = 3, 7; d = 5, 13, 8) and round (B = 16, d = 32) shapes, B = 2 with d = 1, unit scale,
 * OpenCLIP's initial 1/0.07, the clamp's maximum 100 (hard and confident positives) and e^6 = 403
 * beyond it. Also: the loss equals the mean of ops/loss.h cross-entropy over logits and logits^T;
 * dzi/dzt are overwritten and dp accumulates; NULL gradient outputs; finite differences of the
 * loss in zi, zt and p; a B = 300 problem (parallel path) at 1/2/3 threads against the reference,
 * bit-identical repeats and workspace reuse after shrinking B; bad inputs (NaN/Inf feature, B < 2,
 * d < 1, non-finite p) return -1 with a message and leave every output untouched; the logit-scale
 * clamp; NULL arguments abort.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "losses/clip.h"
#include "ops/gemm.h"
#include "ops/loss.h"
#include "tests/testutil.h"

/* fp32 against float64 references. The logits carry the fp32 rounding of s * <zi, zt> (s up to
 * 403 in the "huge" case: ~1e-5 absolute), which the loss inherits relative to its size and the
 * gradients relative to their largest entries; torch's own fp32 result sits at <= 1e-6 relative
 * (stored as <case>_t32err), ours at the same level. */
#define LOSS_ATOL 1e-5f
#define LOSS_RTOL 1e-5f
#define GRAD_ATOL 1e-5f
#define GRAD_RTOL 1e-4f
/* The large problems' gradients scale as 1/B (max |grad| ~ 1e-2 at B = 200..300): an absolute
 * tolerance of 1e-7 keeps them as tight as the small cases relative to their size. */
#define LARGE_ATOL 1e-7f

struct clip_case {
    const char *key;
    int B, d;
    float *zi, *zt, *dzi, *dzt; /* (B, d) */
    float p, loss, dp;
};

static const struct clip_case CASES[] = {
    {.key = "b3", .B = 3, .d = 5},         {.key = "b7", .B = 7, .d = 13},
    {.key = "b16", .B = 16, .d = 32},      {.key = "s100", .B = 16, .d = 32},
    {.key = "s100easy", .B = 16, .d = 32}, {.key = "huge", .B = 7, .d = 8},
    {.key = "b2", .B = 2, .d = 1},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

static void load_case(struct clip_case *r, const struct sg_st_file *ref)
{
    char name[128];
    int64_t n = (int64_t)r->B * r->d;
#define NAME(suffix) (snprintf(name, sizeof name, "%s_" suffix, r->key), name)
    r->zi = sg_test_ref(ref, NAME("zi"), n);
    r->zt = sg_test_ref(ref, NAME("zt"), n);
    r->dzi = sg_test_ref(ref, NAME("dzi"), n);
    r->dzt = sg_test_ref(ref, NAME("dzt"), n);
    r->p = sg_test_ref_scalar(ref, NAME("p"));
    r->loss = sg_test_ref_scalar(ref, NAME("loss"));
    r->dp = sg_test_ref_scalar(ref, NAME("dp"));
#undef NAME
}

static void free_case(struct clip_case *r)
{
    sg_afree(r->zi);
    sg_afree(r->zt);
    sg_afree(r->dzi);
    sg_afree(r->dzt);
}

static float *filled(int64_t n, float v)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = v;
    return x;
}

/* Both paths against the torch reference; gradient buffers pre-filled with NaN (overwrite). */
static void check_case(struct sg_clip_loss *l, struct sg_ctx *c, const struct clip_case *r)
{
    char label[128];
    int64_t n = (int64_t)r->B * r->d;
    float *dzi = filled(n, NAN), *dzt = filled(n, NAN), dp = 0.0f, loss = NAN;
    double dloss = NAN;
    for (int path = 0; path < 2; path++) {
        const char *pn = path ? "fast" : "ref";
        int rc =
            path ? sg_clip_loss_compute(l, c, r->zi, r->zt, r->B, r->d, r->p, &loss, dzi, dzt, &dp)
                 : sg_clip_loss_ref(r->zi, r->zt, r->B, r->d, r->p, &dloss, dzi, dzt, &dp);
        if (!path) loss = (float)dloss;
        snprintf(label, sizeof label, "%s %s returns 0", r->key, pn);
        sg_test_true(label, rc == 0);
        snprintf(label, sizeof label, "%s %s loss", r->key, pn);
        sg_test_close(label, &loss, &r->loss, 1, LOSS_ATOL, LOSS_RTOL);
        snprintf(label, sizeof label, "%s %s dzi", r->key, pn);
        sg_test_close(label, dzi, r->dzi, n, GRAD_ATOL, GRAD_RTOL);
        snprintf(label, sizeof label, "%s %s dzt", r->key, pn);
        sg_test_close(label, dzt, r->dzt, n, GRAD_ATOL, GRAD_RTOL);
        snprintf(label, sizeof label, "%s %s dp", r->key, pn);
        sg_test_close(label, &dp, &r->dp, 1, GRAD_ATOL, GRAD_RTOL);
        for (int64_t i = 0; i < n; i++) dzi[i] = dzt[i] = NAN;
        dp = 0.0f;
    }
    free(dzi);
    free(dzt);
}

/* The loss is CE(logits, arange) / 2 + CE(logits^T, arange) / 2 with the cross-entropy op. */
static void check_vs_cross_entropy(struct sg_clip_loss *l, struct sg_ctx *c,
                                   const struct clip_case *r)
{
    int B = r->B;
    float *lg = sg_xmalloc(sizeof(float) * (size_t)B * B), *lgt = sg_xmalloc(sizeof(float) * B * B);
    sg_gemm_ref(0, 1, B, B, r->d, expf(r->p), r->zi, r->d, r->zt, r->d, 0.0f, lg, B);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) lgt[(size_t)j * B + i] = lg[(size_t)i * B + j];
    float want = 0.5f * (cross_entropy_forward_ref(NULL, NULL, lg, NULL, B, B, 0.0f) +
                         cross_entropy_forward_ref(NULL, NULL, lgt, NULL, B, B, 0.0f));
    float got = NAN;
    sg_clip_loss_compute(l, c, r->zi, r->zt, B, r->d, r->p, &got, NULL, NULL, NULL);
    char label[128];
    snprintf(label, sizeof label, "%s loss = mean of ops/loss cross-entropy both ways", r->key);
    sg_test_close(label, &got, &want, 1, LOSS_ATOL, LOSS_RTOL);
    free(lg);
    free(lgt);
}

/* dp accumulates; NULL gradients are skipped and do not change the others. */
static void check_outputs_contract(struct sg_clip_loss *l, struct sg_ctx *c,
                                   const struct clip_case *r)
{
    int64_t n = (int64_t)r->B * r->d;
    float *dzi = filled(n, NAN), *dzt = filled(n, NAN), loss = NAN, dp = 0.25f;
    float want_dp = 0.25f + r->dp;
    sg_clip_loss_compute(l, c, r->zi, r->zt, r->B, r->d, r->p, &loss, NULL, NULL, &dp);
    sg_test_close("dp accumulates (+=) onto 0.25", &dp, &want_dp, 1, GRAD_ATOL, GRAD_RTOL);
    sg_clip_loss_compute(l, c, r->zi, r->zt, r->B, r->d, r->p, &loss, dzi, NULL, NULL);
    sg_test_close("dzi alone (dzt, dp NULL)", dzi, r->dzi, n, GRAD_ATOL, GRAD_RTOL);
    sg_clip_loss_compute(l, c, r->zi, r->zt, r->B, r->d, r->p, &loss, NULL, dzt, NULL);
    sg_test_close("dzt alone (dzi, dp NULL)", dzt, r->dzt, n, GRAD_ATOL, GRAD_RTOL);
    loss = NAN;
    sg_clip_loss_compute(l, c, r->zi, r->zt, r->B, r->d, r->p, &loss, NULL, NULL, NULL);
    sg_test_close("loss only (all gradients NULL)", &loss, &r->loss, 1, LOSS_ATOL, LOSS_RTOL);
    free(dzi);
    free(dzt);
}

/* ---- finite differences of the double-precision loss ----------------------------------------- */

struct fd_clip {
    float *zi, *zt;
    int B, d;
    float p;
};

static double fd_loss_zi(void *user, const float *x)
{
    struct fd_clip *a = user;
    double loss = NAN;
    sg_clip_loss_ref(x, a->zt, a->B, a->d, a->p, &loss, NULL, NULL, NULL);
    return loss;
}

static double fd_loss_zt(void *user, const float *x)
{
    struct fd_clip *a = user;
    double loss = NAN;
    sg_clip_loss_ref(a->zi, x, a->B, a->d, a->p, &loss, NULL, NULL, NULL);
    return loss;
}

static void check_fd(struct sg_clip_loss *l, struct sg_ctx *c, const struct clip_case *r, float eps)
{
    int64_t n = (int64_t)r->B * r->d;
    float *dzi = filled(n, 0.0f), *dzt = filled(n, 0.0f), loss, dp = 0.0f;
    sg_clip_loss_compute(l, c, r->zi, r->zt, r->B, r->d, r->p, &loss, dzi, dzt, &dp);
    struct fd_clip a = {r->zi, r->zt, r->B, r->d, r->p};
    char label[128];
    /* fp32 perturbations of size eps around values <= 1: the actual step differs from eps by
     * <= 6e-8 relative to the value (~1e-4 of the step), plus O(eps^2) curvature. */
    snprintf(label, sizeof label, "%s dzi", r->key);
    sg_test_fd(label, fd_loss_zi, &a, r->zi, n, dzi, 64, eps, 2e-4f, 2e-3f);
    snprintf(label, sizeof label, "%s dzt", r->key);
    sg_test_fd(label, fd_loss_zt, &a, r->zt, n, dzt, 64, eps, 2e-4f, 2e-3f);
    /* dp: perturb p in double through the float argument (p values are exact in float here). */
    double lp, lm, h = (double)eps;
    sg_clip_loss_ref(r->zi, r->zt, r->B, r->d, (float)(r->p + h), &lp, NULL, NULL, NULL);
    sg_clip_loss_ref(r->zi, r->zt, r->B, r->d, (float)(r->p - h), &lm, NULL, NULL, NULL);
    double step = (double)(float)(r->p + h) - (double)(float)(r->p - h);
    double num = (lp - lm) / step;
    snprintf(label, sizeof label, "%s dp (finite differences: analytic %.7g, numeric %.7g)", r->key,
             (double)dp, num);
    sg_test_true(label, fabs(num - dp) <= 2e-4 + 2e-3 * fabs(num));
    free(dzi);
    free(dzt);
}

/* ---- a larger problem through the parallel path ------------------------------------------------
 */

static void normalise_rows(float *z, int B, int d)
{
    for (int i = 0; i < B; i++) {
        double ss = 0.0;
        for (int k = 0; k < d; k++) ss += (double)z[(size_t)i * d + k] * z[(size_t)i * d + k];
        float inv = (float)(1.0 / sqrt(ss));
        for (int k = 0; k < d; k++) z[(size_t)i * d + k] *= inv;
    }
}

static void check_large(struct sg_clip_loss *l)
{
    const int B = 300, d = 64;
    const int64_t n = (int64_t)B * d;
    const float p = logf(1.0f / 0.07f);
    float *zi = filled(n, 0), *zt = filled(n, 0), *noise = filled(n, 0);
    sg_test_fill(zi, n, 101, -1.0f, 1.0f);
    sg_test_fill(noise, n, 102, -1.0f, 1.0f);
    for (int64_t k = 0; k < n; k++) zt[k] = zi[k] + 1.5f * noise[k];
    normalise_rows(zi, B, d);
    normalise_rows(zt, B, d);
    float *rdzi = filled(n, 0), *rdzt = filled(n, 0), rdp = 0.0f;
    double rloss;
    sg_clip_loss_ref(zi, zt, B, d, p, &rloss, rdzi, rdzt, &rdp);
    float rl = (float)rloss;
    float *dzi = filled(n, NAN), *dzt = filled(n, NAN), *dzi2 = filled(n, 0), *dzt2 = filled(n, 0);
    char label[128];
    for (int nt = 1; nt <= 3; nt++) {
        struct sg_ctx c;
        SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, nt) == 0, "ctx");
        float loss, dp = 0.0f, loss2, dp2 = 0.0f;
        sg_clip_loss_compute(l, &c, zi, zt, B, d, p, &loss, dzi, dzt, &dp);
        snprintf(label, sizeof label, "B=300 d=64 threads=%d loss", nt);
        sg_test_close(label, &loss, &rl, 1, LOSS_ATOL, LOSS_RTOL);
        snprintf(label, sizeof label, "B=300 d=64 threads=%d dzi", nt);
        sg_test_close(label, dzi, rdzi, n, LARGE_ATOL, GRAD_RTOL);
        snprintf(label, sizeof label, "B=300 d=64 threads=%d dzt", nt);
        sg_test_close(label, dzt, rdzt, n, LARGE_ATOL, GRAD_RTOL);
        snprintf(label, sizeof label, "B=300 d=64 threads=%d dp", nt);
        sg_test_close(label, &dp, &rdp, 1, LARGE_ATOL, GRAD_RTOL);
        sg_clip_loss_compute(l, &c, zi, zt, B, d, p, &loss2, dzi2, dzt2, &dp2);
        snprintf(label, sizeof label, "B=300 threads=%d: repeated call is bit-identical", nt);
        sg_test_true(label, memcmp(&loss, &loss2, sizeof loss) == 0 && memcmp(&dp, &dp2, 4) == 0 &&
                                memcmp(dzi, dzi2, sizeof(float) * n) == 0 &&
                                memcmp(dzt, dzt2, sizeof(float) * n) == 0);
        sg_ctx_free(&c);
    }
    free(zi);
    free(zt);
    free(noise);
    free(rdzi);
    free(rdzt);
    free(dzi);
    free(dzt);
    free(dzi2);
    free(dzt2);
}

/* ---- bad input ------------------------------------------------------------------------------- */

static void expect_reject(struct sg_clip_loss *l, struct sg_ctx *c, const char *what,
                          const float *zi, const float *zt, int B, int d, float p, const char *want)
{
    const int64_t cap = 16 * 32;
    float *dzi = filled(cap, 7.0f), *dzt = filled(cap, 8.0f), loss = 9.0f, dp = 10.0f;
    double dloss = 11.0;
    char label[256];
    sg_clear_error();
    int rc = sg_clip_loss_compute(l, c, zi, zt, B, d, p, &loss, dzi, dzt, &dp);
    int untouched = loss == 9.0f && dp == 10.0f;
    for (int64_t i = 0; i < cap; i++) untouched &= dzi[i] == 7.0f && dzt[i] == 8.0f;
    snprintf(label, sizeof label, "%s: fast returns -1, outputs untouched, error \"%s\"", what,
             sg_last_error());
    sg_test_true(label, rc == -1 && untouched && strstr(sg_last_error(), want) != NULL);
    sg_clear_error();
    rc = sg_clip_loss_ref(zi, zt, B, d, p, &dloss, dzi, dzt, &dp);
    untouched = dloss == 11.0 && dp == 10.0f;
    for (int64_t i = 0; i < cap; i++) untouched &= dzi[i] == 7.0f && dzt[i] == 8.0f;
    snprintf(label, sizeof label, "%s: ref returns -1, outputs untouched", what);
    sg_test_true(label, rc == -1 && untouched && strstr(sg_last_error(), want) != NULL);
    free(dzi);
    free(dzt);
}

static void check_bad_input(struct sg_clip_loss *l, struct sg_ctx *c, const struct clip_case *r)
{
    int64_t n = (int64_t)r->B * r->d;
    float *bad = filled(n, 0.0f);
    memcpy(bad, r->zi, sizeof(float) * n);
    bad[1 * r->d + 2] = NAN;
    expect_reject(l, c, "NaN in zi", bad, r->zt, r->B, r->d, r->p, "zi[1, 2]");
    memcpy(bad, r->zt, sizeof(float) * n);
    bad[n - 1] = -INFINITY;
    expect_reject(l, c, "-Inf in zt", r->zi, bad, r->B, r->d, r->p, "zt[15, 31]");
    expect_reject(l, c, "B = 1", r->zi, r->zt, 1, r->d, r->p, "B >= 2");
    expect_reject(l, c, "B = 0", r->zi, r->zt, 0, r->d, r->p, "B >= 2");
    expect_reject(l, c, "d = 0", r->zi, r->zt, r->B, 0, r->p, "d = 0");
    expect_reject(l, c, "p = NaN", r->zi, r->zt, r->B, r->d, NAN, "not finite");
    expect_reject(l, c, "p = +Inf", r->zi, r->zt, r->B, r->d, INFINITY, "not finite");
    free(bad);
}

static void check_clamp(void)
{
    const float hi = logf(100.0f);
    float v[] = {-1.0f, 0.0f, 2.0f, hi, 5.0f, INFINITY, -INFINITY};
    float want[] = {0.0f, 0.0f, 2.0f, hi, hi, hi, 0.0f};
    for (int i = 0; i < 7; i++) sg_clip_clamp_logit_scale(&v[i]);
    sg_test_true("sg_clip_clamp_logit_scale clamps to [0, ln 100]", memcmp(v, want, sizeof v) == 0);
    float p = NAN;
    sg_clip_clamp_logit_scale(&p);
    sg_test_true("sg_clip_clamp_logit_scale keeps NaN (compute rejects it)", isnan(p));
}

static void null_features(void)
{
    struct sg_clip_loss l;
    struct sg_ctx c;
    float loss, z[4] = {1, 0, 0, 1};
    sg_clip_loss_init(&l);
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 1);
    sg_clip_loss_compute(&l, &c, z, NULL, 2, 2, 0.0f, &loss, NULL, NULL, NULL);
}

int main(void)
{
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "clip_loss.safetensors");
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, 2) == 0, "ctx: %s", sg_last_error());
    struct sg_clip_loss l;
    sg_clip_loss_init(&l);

    struct clip_case cases[NCASES];
    for (int k = 0; k < NCASES; k++) {
        cases[k] = CASES[k];
        load_case(&cases[k], &ref);
        check_case(&l, &c, &cases[k]);
    }
    const struct clip_case *b16 = &cases[2], *b7 = &cases[1];
    for (int k = 0; k < NCASES; k++) check_vs_cross_entropy(&l, &c, &cases[k]);
    check_outputs_contract(&l, &c, b16);
    check_fd(&l, &c, b7, 1e-3f);
    check_fd(&l, &c, &cases[3], 1e-4f); /* s100: logits move 100x faster, smaller step */
    check_fd(&l, &c, &cases[6], 1e-3f); /* B = 2, d = 1 */

    check_large(&l);
    /* Workspace sized for B = 300 now: the small cases reuse it and still match. */
    check_case(&l, &c, b7);
    check_case(&l, &c, b16);

    check_bad_input(&l, &c, b16);
    check_clamp();
    sg_test_expect_abort("NULL feature pointer aborts", null_features,
                         "sg_clip_loss_compute: NULL argument");

    sg_clip_loss_free(&l);
    sg_clip_loss_free(&l); /* idempotent */
    for (int k = 0; k < NCASES; k++) free_case(&cases[k]);
    sg_ctx_free(&c);
    sg_st_close(&ref);
    return sg_test_summary("test_clip_loss");
}
