/*
 * tests/test_simclr.c — SimCLR NT-Xent loss (losses/simclr.h) against PyTorch float64 autograd
 * of the usual implementation (cross-entropy over z z^T / tau with the diagonal masked;
 * tests/ref/gen_simclr.py -> tests/ref/data/simclr.safetensors), for both sg_simclr_loss_ref and
 * sg_simclr_loss_compute: odd (B = 3, 7; d = 5, 13, 8, 3) and round (B = 16, d = 32) shapes, B = 2,
 * tau 0.5 / 0.2 / 0.1, small tau 0.05 and 0.01 (logits up to 100). Also: the loss equals ops/loss.h
 * cross-entropy over the masked logits with targets pos(a); gradients are overwritten; NULL
 * gradient outputs; finite differences of the loss in za and zb; a B = 200 problem (parallel path)
 * at 1/2/3 threads against the reference, bit-identical repeats and workspace reuse after
 * shrinking B and changing d; bad inputs (NaN/Inf feature, B < 2, d < 1) return -1 with a message
 * and leave every output untouched; invalid tau is rejected at init; NULL arguments abort.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "losses/simclr.h"
#include "ops/gemm.h"
#include "ops/loss.h"
#include "tests/testutil.h"

/* fp32 against float64 references: logits up to 1/tau = 100 carry ~1e-5 absolute rounding from
 * the fp32 GEMM; torch's own fp32 result is within 5e-7 relative (stored as <case>_t32err). */
#define LOSS_ATOL 1e-5f
#define LOSS_RTOL 1e-5f
#define GRAD_ATOL 1e-5f
#define GRAD_RTOL 1e-4f
/* The large problems' gradients scale as 1/B (max |grad| ~ 1e-2 at B = 200..300): an absolute
 * tolerance of 1e-7 keeps them as tight as the small cases relative to their size. */
#define LARGE_ATOL 1e-7f

struct simclr_case {
    const char *key;
    int B, d;
    float *za, *zb, *dza, *dzb; /* (B, d) */
    float tau, loss;
};

static const struct simclr_case CASES[] = {
    {.key = "b3", .B = 3, .d = 5},    {.key = "b7", .B = 7, .d = 13},
    {.key = "b16", .B = 16, .d = 32}, {.key = "t005", .B = 16, .d = 32},
    {.key = "t001", .B = 7, .d = 8},  {.key = "b2", .B = 2, .d = 3},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

static void load_case(struct simclr_case *r, const struct sg_st_file *ref)
{
    char name[128];
    int64_t n = (int64_t)r->B * r->d;
#define NAME(suffix) (snprintf(name, sizeof name, "%s_" suffix, r->key), name)
    r->za = sg_test_ref(ref, NAME("za"), n);
    r->zb = sg_test_ref(ref, NAME("zb"), n);
    r->dza = sg_test_ref(ref, NAME("dza"), n);
    r->dzb = sg_test_ref(ref, NAME("dzb"), n);
    r->tau = sg_test_ref_scalar(ref, NAME("tau"));
    r->loss = sg_test_ref_scalar(ref, NAME("loss"));
#undef NAME
}

static void free_case(struct simclr_case *r)
{
    sg_afree(r->za);
    sg_afree(r->zb);
    sg_afree(r->dza);
    sg_afree(r->dzb);
}

static float *filled(int64_t n, float v)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = v;
    return x;
}

/* Both paths against the torch reference; gradient buffers pre-filled with NaN (overwrite). */
static void check_case(struct sg_simclr_loss *l, struct sg_ctx *c, const struct simclr_case *r)
{
    char label[128];
    int64_t n = (int64_t)r->B * r->d;
    float *dza = filled(n, NAN), *dzb = filled(n, NAN), loss = NAN;
    double dloss = NAN;
    for (int path = 0; path < 2; path++) {
        const char *pn = path ? "fast" : "ref";
        int rc = path ? sg_simclr_loss_compute(l, c, r->za, r->zb, r->B, r->d, &loss, dza, dzb)
                      : sg_simclr_loss_ref(r->za, r->zb, r->B, r->d, r->tau, &dloss, dza, dzb);
        if (!path) loss = (float)dloss;
        snprintf(label, sizeof label, "%s %s returns 0", r->key, pn);
        sg_test_true(label, rc == 0);
        snprintf(label, sizeof label, "%s %s loss", r->key, pn);
        sg_test_close(label, &loss, &r->loss, 1, LOSS_ATOL, LOSS_RTOL);
        snprintf(label, sizeof label, "%s %s dza", r->key, pn);
        sg_test_close(label, dza, r->dza, n, GRAD_ATOL, GRAD_RTOL);
        snprintf(label, sizeof label, "%s %s dzb", r->key, pn);
        sg_test_close(label, dzb, r->dzb, n, GRAD_ATOL, GRAD_RTOL);
        for (int64_t i = 0; i < n; i++) dza[i] = dzb[i] = NAN;
    }
    free(dza);
    free(dzb);
}

static int pos_of(int a, int B)
{
    return a < B ? a + B : a - B;
}

/* The loss is the cross-entropy op over Z Z^T / tau with -inf on the diagonal, targets pos(a). */
static void check_vs_cross_entropy(struct sg_simclr_loss *l, struct sg_ctx *c,
                                   const struct simclr_case *r)
{
    int B = r->B, d = r->d, n = 2 * B;
    float *z = sg_xmalloc(sizeof(float) * (size_t)n * d), *lg = sg_xmalloc(sizeof(float) * n * n);
    int32_t *targets = sg_xmalloc(sizeof(int32_t) * (size_t)n);
    memcpy(z, r->za, sizeof(float) * (size_t)B * d);
    memcpy(z + (size_t)B * d, r->zb, sizeof(float) * (size_t)B * d);
    sg_gemm_ref(0, 1, n, n, d, 1.0f / r->tau, z, d, z, d, 0.0f, lg, n);
    for (int a = 0; a < n; a++) {
        lg[(size_t)a * n + a] = -1e9f; /* not -inf: the op computes 0 * sum(logits) */
        targets[a] = pos_of(a, B);
    }
    float want = cross_entropy_forward_ref(NULL, NULL, lg, targets, n, n, 0.0f), got = NAN;
    sg_simclr_loss_compute(l, c, r->za, r->zb, B, d, &got, NULL, NULL);
    char label[128];
    snprintf(label, sizeof label, "%s loss = ops/loss cross-entropy over masked logits", r->key);
    sg_test_close(label, &got, &want, 1, LOSS_ATOL, LOSS_RTOL);
    free(z);
    free(lg);
    free(targets);
}

static void check_outputs_contract(struct sg_simclr_loss *l, struct sg_ctx *c,
                                   const struct simclr_case *r)
{
    int64_t n = (int64_t)r->B * r->d;
    float *dza = filled(n, NAN), *dzb = filled(n, NAN), loss = NAN;
    sg_simclr_loss_compute(l, c, r->za, r->zb, r->B, r->d, &loss, dza, NULL);
    sg_test_close("dza alone (dzb NULL)", dza, r->dza, n, GRAD_ATOL, GRAD_RTOL);
    sg_simclr_loss_compute(l, c, r->za, r->zb, r->B, r->d, &loss, NULL, dzb);
    sg_test_close("dzb alone (dza NULL)", dzb, r->dzb, n, GRAD_ATOL, GRAD_RTOL);
    loss = NAN;
    sg_simclr_loss_compute(l, c, r->za, r->zb, r->B, r->d, &loss, NULL, NULL);
    sg_test_close("loss only (gradients NULL)", &loss, &r->loss, 1, LOSS_ATOL, LOSS_RTOL);
    free(dza);
    free(dzb);
}

/* ---- finite differences of the double-precision loss ----------------------------------------- */

struct fd_simclr {
    float *za, *zb;
    int B, d;
    float tau;
};

static double fd_loss_za(void *user, const float *x)
{
    struct fd_simclr *a = user;
    double loss = NAN;
    sg_simclr_loss_ref(x, a->zb, a->B, a->d, a->tau, &loss, NULL, NULL);
    return loss;
}

static double fd_loss_zb(void *user, const float *x)
{
    struct fd_simclr *a = user;
    double loss = NAN;
    sg_simclr_loss_ref(a->za, x, a->B, a->d, a->tau, &loss, NULL, NULL);
    return loss;
}

static void check_fd(struct sg_simclr_loss *l, struct sg_ctx *c, const struct simclr_case *r,
                     float eps)
{
    int64_t n = (int64_t)r->B * r->d;
    float *dza = filled(n, 0.0f), *dzb = filled(n, 0.0f), loss;
    sg_simclr_loss_compute(l, c, r->za, r->zb, r->B, r->d, &loss, dza, dzb);
    struct fd_simclr a = {r->za, r->zb, r->B, r->d, r->tau};
    char label[128];
    /* fp32 perturbations: the actual step differs from eps by <= 6e-8 relative to the value
     * (~1e-4 of the step at eps 1e-3), plus O(eps^2) curvature. */
    snprintf(label, sizeof label, "%s dza", r->key);
    sg_test_fd(label, fd_loss_za, &a, r->za, n, dza, 64, eps, 2e-4f, 2e-3f);
    snprintf(label, sizeof label, "%s dzb", r->key);
    sg_test_fd(label, fd_loss_zb, &a, r->zb, n, dzb, 64, eps, 2e-4f, 2e-3f);
    free(dza);
    free(dzb);
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

static void check_large(struct sg_simclr_loss *l)
{
    const int B = 200, d = 64;
    const int64_t n = (int64_t)B * d;
    float *x = filled(n, 0), *za = filled(n, 0), *zb = filled(n, 0), *noise = filled(n, 0);
    sg_test_fill(x, n, 201, -1.0f, 1.0f);
    sg_test_fill(noise, n, 202, -1.0f, 1.0f);
    for (int64_t k = 0; k < n; k++) za[k] = x[k] + 0.8f * noise[k];
    sg_test_fill(noise, n, 203, -1.0f, 1.0f);
    for (int64_t k = 0; k < n; k++) zb[k] = x[k] + 0.8f * noise[k];
    normalise_rows(za, B, d);
    normalise_rows(zb, B, d);
    float *rdza = filled(n, 0), *rdzb = filled(n, 0);
    double rloss;
    sg_simclr_loss_ref(za, zb, B, d, l->tau, &rloss, rdza, rdzb);
    float rl = (float)rloss;
    float *dza = filled(n, NAN), *dzb = filled(n, NAN), *dza2 = filled(n, 0), *dzb2 = filled(n, 0);
    char label[128];
    for (int nt = 1; nt <= 3; nt++) {
        struct sg_ctx c;
        SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, nt) == 0, "ctx");
        float loss, loss2;
        sg_simclr_loss_compute(l, &c, za, zb, B, d, &loss, dza, dzb);
        snprintf(label, sizeof label, "B=200 d=64 threads=%d loss", nt);
        sg_test_close(label, &loss, &rl, 1, LOSS_ATOL, LOSS_RTOL);
        snprintf(label, sizeof label, "B=200 d=64 threads=%d dza", nt);
        sg_test_close(label, dza, rdza, n, LARGE_ATOL, GRAD_RTOL);
        snprintf(label, sizeof label, "B=200 d=64 threads=%d dzb", nt);
        sg_test_close(label, dzb, rdzb, n, LARGE_ATOL, GRAD_RTOL);
        sg_simclr_loss_compute(l, &c, za, zb, B, d, &loss2, dza2, dzb2);
        snprintf(label, sizeof label, "B=200 threads=%d: repeated call is bit-identical", nt);
        sg_test_true(label, memcmp(&loss, &loss2, sizeof loss) == 0 &&
                                memcmp(dza, dza2, sizeof(float) * n) == 0 &&
                                memcmp(dzb, dzb2, sizeof(float) * n) == 0);
        sg_ctx_free(&c);
    }
    free(x);
    free(za);
    free(zb);
    free(noise);
    free(rdza);
    free(rdzb);
    free(dza);
    free(dzb);
    free(dza2);
    free(dzb2);
}

/* ---- bad input ------------------------------------------------------------------------------- */

static void expect_reject(struct sg_simclr_loss *l, struct sg_ctx *c, const char *what,
                          const float *za, const float *zb, int B, int d, const char *want)
{
    const int64_t cap = 16 * 32;
    float *dza = filled(cap, 7.0f), *dzb = filled(cap, 8.0f), loss = 9.0f;
    double dloss = 11.0;
    char label[256];
    sg_clear_error();
    int rc = sg_simclr_loss_compute(l, c, za, zb, B, d, &loss, dza, dzb);
    int untouched = loss == 9.0f;
    for (int64_t i = 0; i < cap; i++) untouched &= dza[i] == 7.0f && dzb[i] == 8.0f;
    snprintf(label, sizeof label, "%s: fast returns -1, outputs untouched, error \"%s\"", what,
             sg_last_error());
    sg_test_true(label, rc == -1 && untouched && strstr(sg_last_error(), want) != NULL);
    sg_clear_error();
    rc = sg_simclr_loss_ref(za, zb, B, d, l->tau, &dloss, dza, dzb);
    untouched = dloss == 11.0;
    for (int64_t i = 0; i < cap; i++) untouched &= dza[i] == 7.0f && dzb[i] == 8.0f;
    snprintf(label, sizeof label, "%s: ref returns -1, outputs untouched", what);
    sg_test_true(label, rc == -1 && untouched && strstr(sg_last_error(), want) != NULL);
    free(dza);
    free(dzb);
}

static void check_bad_input(struct sg_simclr_loss *l, struct sg_ctx *c, const struct simclr_case *r)
{
    int64_t n = (int64_t)r->B * r->d;
    float *bad = filled(n, 0.0f);
    memcpy(bad, r->za, sizeof(float) * n);
    bad[1 * r->d + 2] = NAN;
    expect_reject(l, c, "NaN in za", bad, r->zb, r->B, r->d, "za[1, 2]");
    memcpy(bad, r->zb, sizeof(float) * n);
    bad[n - 1] = INFINITY;
    expect_reject(l, c, "+Inf in zb", r->za, bad, r->B, r->d, "zb[15, 31]");
    expect_reject(l, c, "B = 1", r->za, r->zb, 1, r->d, "B >= 2");
    expect_reject(l, c, "B = -3", r->za, r->zb, -3, r->d, "B >= 2");
    expect_reject(l, c, "d = 0", r->za, r->zb, r->B, 0, "d = 0");
    free(bad);
}

static void check_bad_tau(const struct simclr_case *r)
{
    float taus[] = {0.0f, -0.1f, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        struct sg_simclr_loss l;
        char label[128];
        sg_clear_error();
        int rc = sg_simclr_loss_init(&l, taus[i]);
        snprintf(label, sizeof label, "init tau = %g returns -1 (\"%s\")", (double)taus[i],
                 sg_last_error());
        sg_test_true(label, rc == -1 && strstr(sg_last_error(), "tau") != NULL);
        double loss = 5.0;
        rc = sg_simclr_loss_ref(r->za, r->zb, r->B, r->d, taus[i], &loss, NULL, NULL);
        snprintf(label, sizeof label, "ref tau = %g returns -1, loss untouched", (double)taus[i]);
        sg_test_true(label, rc == -1 && loss == 5.0);
        sg_simclr_loss_free(&l);
    }
}

static void uninitialised(void)
{
    struct sg_simclr_loss l;
    struct sg_ctx c;
    float loss, z[4] = {1, 0, 0, 1};
    sg_simclr_loss_init(&l, 0.0f); /* fails: the object stays unusable */
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 1);
    sg_simclr_loss_compute(&l, &c, z, z, 2, 2, &loss, NULL, NULL);
}

static void null_features(void)
{
    struct sg_simclr_loss l;
    struct sg_ctx c;
    float loss, z[4] = {1, 0, 0, 1};
    sg_simclr_loss_init(&l, 0.1f);
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 1);
    sg_simclr_loss_compute(&l, &c, NULL, z, 2, 2, &loss, NULL, NULL);
}

int main(void)
{
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "simclr.safetensors");
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, 2) == 0, "ctx: %s", sg_last_error());

    struct simclr_case cases[NCASES];
    struct sg_simclr_loss l;
    for (int k = 0; k < NCASES; k++) {
        cases[k] = CASES[k];
        load_case(&cases[k], &ref);
        SG_CHECK(sg_simclr_loss_init(&l, cases[k].tau) == 0, "init: %s", sg_last_error());
        check_case(&l, &c, &cases[k]);
        check_vs_cross_entropy(&l, &c, &cases[k]);
        if (k == 1 || k == 3 || k == 5) check_fd(&l, &c, &cases[k], 1e-3f);
        sg_simclr_loss_free(&l);
    }
    const struct simclr_case *b16 = &cases[2], *b7 = &cases[1];

    /* One object through a large problem, then smaller B and different d: workspace reuse. */
    SG_CHECK(sg_simclr_loss_init(&l, b16->tau) == 0, "init");
    check_large(&l);
    check_case(&l, &c, b16);
    check_outputs_contract(&l, &c, b16);
    check_bad_input(&l, &c, b16);
    sg_simclr_loss_free(&l);
    SG_CHECK(sg_simclr_loss_init(&l, b7->tau) == 0, "init");
    check_case(&l, &c, b7);
    sg_simclr_loss_free(&l);
    sg_simclr_loss_free(&l); /* idempotent */

    check_bad_tau(b16);
    sg_test_expect_abort("compute on an object whose init failed aborts", uninitialised,
                         "not initialised");
    sg_test_expect_abort("NULL feature pointer aborts", null_features,
                         "sg_simclr_loss_compute: NULL argument");

    for (int k = 0; k < NCASES; k++) free_case(&cases[k]);
    sg_ctx_free(&c);
    sg_st_close(&ref);
    return sg_test_summary("test_simclr");
}
