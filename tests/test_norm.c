/*
 * tests/test_norm.c — LayerNorm and BatchNorm2d/1d: forward and backward of the reference
 * (_ref) and fast (op_, ctx on CPU) paths against PyTorch, plus finite differences.
 * References: tests/ref/gen_norm.py -> tests/ref/data/norm.safetensors (see its docstring for the
 * tensor names); dout = wgt, the stored weights of L = sum(out * wgt).
 *
 * Checked per case and path: out, mean, rstd; dinp (overwritten: the buffer starts as garbage);
 * dw/db or dgamma/dbeta ACCUMULATED onto a non-zero start value; NULL gradient pointers skipped.
 * LayerNorm: N=7,C=13 and N=16,C=64 (offset input, eps 1e-6), with and without affine.
 * BatchNorm: training with two successive forward calls (running_mean/var after both, momentum
 * 0.1 and 0.3), (4,3,5x7) and (8,16,4x4) (offset input), affine=False, HW=1 (BatchNorm1d, B=6,
 * C=10), eval mode forward/backward, track_running_stats=False (NULL running stats).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/norm.h"
#include "tests/testutil.h"

#define ATOL 1e-5f
#define RTOL 1e-4f
/* Finite differences of an fp32 forward: with eps 1e-2 the round-off of the loss (~1e-6)
 * contributes ~1e-4 and the truncation error O(eps^2) ~1e-4 for these smooth functions. */
#define FD_EPS  1e-2f
#define FD_ATOL 1e-3f
#define FD_RTOL 1e-2f

enum path { PATH_REF, PATH_OP };
static const char *path_name[] = {"ref", "op"};
static struct sg_ctx ctx;

static float *load(const struct sg_st_file *f, const char *c, const char *t, int64_t n)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, t);
    return sg_test_ref(f, name, n);
}

static void check(const char *c, enum path p, const char *what, const float *got, const float *want,
                  int64_t n)
{
    char label[160];
    snprintf(label, sizeof label, "%s %s %s", c, path_name[p], what);
    sg_test_close(label, got, want, n, ATOL, RTOL);
}

/* base(n) + ref(n): the expected value of an accumulated gradient. */
static float *plus(const float *base, const float *ref, int64_t n)
{
    float *r = sg_xmalloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) r[i] = base[i] + ref[i];
    return r;
}

static float *filled(int64_t n, uint64_t seed, float lo, float hi)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    sg_test_fill(x, n, seed, lo, hi);
    return x;
}

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm                                                                                  */
/* ------------------------------------------------------------------------------------------ */

struct ln_case {
    const char *name;
    int N, C, affine;
    float eps;
};

static void ln_fwd(enum path p, float *out, float *mean, float *rstd, const float *x,
                   const float *w, const float *b, const struct ln_case *k)
{
    if (p == PATH_REF)
        layernorm_forward_ref(out, mean, rstd, x, w, b, k->N, k->C, k->eps);
    else
        op_layernorm_forward(&ctx, out, mean, rstd, x, w, b, k->N, k->C, k->eps);
}

static void ln_bwd(enum path p, float *dx, float *dw, float *db, const float *dout, const float *x,
                   const float *w, const float *mean, const float *rstd, const struct ln_case *k)
{
    if (p == PATH_REF)
        layernorm_backward_ref(dx, dw, db, dout, x, w, mean, rstd, k->N, k->C);
    else
        op_layernorm_backward(&ctx, dx, dw, db, dout, x, w, mean, rstd, k->N, k->C);
}

/* Loss for finite differences: sum(layernorm(x; w, b) * wgt) through the fast path. */
struct ln_loss {
    const struct ln_case *k;
    const float *x, *w, *b, *wgt;
    float *out;
    int which; /* 0: x is perturbed, 1: w, 2: b */
};

static double ln_loss_fn(void *user, const float *v)
{
    struct ln_loss *L = user;
    const float *x = L->which == 0 ? v : L->x, *w = L->which == 1 ? v : L->w;
    const float *b = L->which == 2 ? v : L->b;
    ln_fwd(PATH_OP, L->out, NULL, NULL, x, w, b, L->k);
    return sg_test_dot(L->out, L->wgt, (int64_t)L->k->N * L->k->C);
}

static void ln_fd(const struct ln_case *k, float *x, float *w, float *b, const float *wgt,
                  const float *dx, const float *dw, const float *db)
{
    int64_t n = (int64_t)k->N * k->C;
    struct ln_loss L = {k, x, w, b, wgt, sg_xmalloc(sizeof(float) * (size_t)n), 0};
    char label[128];
    snprintf(label, sizeof label, "%s dx", k->name);
    sg_test_fd(label, ln_loss_fn, &L, x, n, dx, 40, FD_EPS, FD_ATOL, FD_RTOL);
    if (k->affine) {
        L.which = 1;
        snprintf(label, sizeof label, "%s dw", k->name);
        sg_test_fd(label, ln_loss_fn, &L, w, k->C, dw, 40, FD_EPS, FD_ATOL, FD_RTOL);
        L.which = 2;
        snprintf(label, sizeof label, "%s db", k->name);
        sg_test_fd(label, ln_loss_fn, &L, b, k->C, db, 40, FD_EPS, FD_ATOL, FD_RTOL);
    }
    free(L.out);
}

static void test_layernorm(const struct sg_st_file *f, const struct ln_case *k)
{
    int N = k->N, C = k->C;
    int64_t n = (int64_t)N * C;
    const char *c = k->name;
    float *x = load(f, c, "x", n), *wgt = load(f, c, "wgt", n);
    float *w = k->affine ? load(f, c, "w", C) : NULL, *b = k->affine ? load(f, c, "b", C) : NULL;
    float *out_r = load(f, c, "out", n), *mean_r = load(f, c, "mean", N);
    float *rstd_r = load(f, c, "rstd", N), *dx_r = load(f, c, "dx", n);
    float *dw_r = k->affine ? load(f, c, "dw", C) : NULL;
    float *db_r = k->affine ? load(f, c, "db", C) : NULL;
    float *out = filled(n, 1, 0, 1), *mean = filled(N, 2, 0, 1), *rstd = filled(N, 3, 0, 1);
    float *dx = filled(n, 4, 100, 200), *dw0 = filled(C, 5, -1, 1), *db0 = filled(C, 6, -1, 1);
    float *dw = filled(C, 5, -1, 1), *db = filled(C, 6, -1, 1);
    for (int p = PATH_REF; p <= PATH_OP; p++) {
        ln_fwd(p, out, mean, rstd, x, w, b, k);
        check(c, p, "out", out, out_r, n);
        check(c, p, "mean", mean, mean_r, N);
        check(c, p, "rstd", rstd, rstd_r, N);
        sg_test_fill(dx, n, 4, 100, 200);
        memcpy(dw, dw0, sizeof(float) * (size_t)C);
        memcpy(db, db0, sizeof(float) * (size_t)C);
        ln_bwd(p, dx, k->affine ? dw : NULL, k->affine ? db : NULL, wgt, x, w, mean, rstd, k);
        check(c, p, "dx", dx, dx_r, n);
        if (k->affine) {
            float *ew = plus(dw0, dw_r, C), *eb = plus(db0, db_r, C);
            check(c, p, "dw (accumulated)", dw, ew, C);
            check(c, p, "db (accumulated)", db, eb, C);
            /* dinp NULL: only the parameter grads, accumulated a second time */
            ln_bwd(p, NULL, dw, db, wgt, x, w, mean, rstd, k);
            float *ew2 = plus(ew, dw_r, C), *eb2 = plus(eb, db_r, C);
            check(c, p, "dw (dinp NULL, accumulated twice)", dw, ew2, C);
            check(c, p, "db (dinp NULL, accumulated twice)", db, eb2, C);
            free(ew);
            free(eb);
            free(ew2);
            free(eb2);
        }
    }
    if (k->affine) {
        /* the gradients of the op path: zero start, as the finite differences see them */
        memset(dw, 0, sizeof(float) * (size_t)C);
        memset(db, 0, sizeof(float) * (size_t)C);
        ln_bwd(PATH_OP, dx, dw, db, wgt, x, w, mean, rstd, k);
    }
    ln_fd(k, x, w, b, wgt, dx, dw, db);
    float *bufs[] = {x, wgt, w, b, out_r, mean_r, rstd_r, dx_r, dw_r, db_r};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
    float *mine[] = {out, mean, rstd, dx, dw0, db0, dw, db};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) free(mine[i]);
}

/* ------------------------------------------------------------------------------------------ */
/* BatchNorm                                                                                  */
/* ------------------------------------------------------------------------------------------ */

struct bn_case {
    const char *name;
    int B, C, HW, affine;
    float momentum;
    int training;
};

#define BN_EPS 1e-5f

static void bn_fwd(enum path p, float *out, float *mean, float *rstd, float *rm, float *rv,
                   const float *x, const float *g, const float *b, const struct bn_case *k)
{
    if (p == PATH_REF)
        batchnorm2d_forward_ref(out, mean, rstd, rm, rv, x, g, b, k->B, k->C, k->HW, k->momentum,
                                BN_EPS, k->training);
    else
        op_batchnorm2d_forward(&ctx, out, mean, rstd, rm, rv, x, g, b, k->B, k->C, k->HW,
                               k->momentum, BN_EPS, k->training);
}

static void bn_bwd(enum path p, float *dx, float *dg, float *db, const float *dout, const float *x,
                   const float *g, const float *mean, const float *rstd, const struct bn_case *k)
{
    if (p == PATH_REF)
        batchnorm2d_backward_ref(dx, dg, db, dout, x, g, mean, rstd, k->B, k->C, k->HW,
                                 k->training);
    else
        op_batchnorm2d_backward(&ctx, dx, dg, db, dout, x, g, mean, rstd, k->B, k->C, k->HW,
                                k->training);
}

/* Loss for finite differences through the fast path. Training: batch statistics, running
 * stats not tracked (NULL); eval: the (unchanged) running stats. */
struct bn_loss {
    const struct bn_case *k;
    const float *x, *g, *b, *wgt;
    float *rm, *rv, *out;
    int which; /* 0: x, 1: gamma, 2: beta */
};

static double bn_loss_fn(void *user, const float *v)
{
    struct bn_loss *L = user;
    const struct bn_case *k = L->k;
    const float *x = L->which == 0 ? v : L->x, *g = L->which == 1 ? v : L->g;
    const float *b = L->which == 2 ? v : L->b;
    bn_fwd(PATH_OP, L->out, NULL, NULL, k->training ? NULL : L->rm, k->training ? NULL : L->rv, x,
           g, b, k);
    return sg_test_dot(L->out, L->wgt, (int64_t)k->B * k->C * k->HW);
}

static void bn_fd(const struct bn_case *k, float *x, float *g, float *b, const float *wgt,
                  float *rm, float *rv, const float *dx, const float *dg, const float *db)
{
    int64_t n = (int64_t)k->B * k->C * k->HW;
    struct bn_loss L = {k, x, g, b, wgt, rm, rv, sg_xmalloc(sizeof(float) * (size_t)n), 0};
    char label[128];
    snprintf(label, sizeof label, "%s dx", k->name);
    sg_test_fd(label, bn_loss_fn, &L, x, n, dx, 40, FD_EPS, FD_ATOL, FD_RTOL);
    if (k->affine) {
        L.which = 1;
        snprintf(label, sizeof label, "%s dgamma", k->name);
        sg_test_fd(label, bn_loss_fn, &L, g, k->C, dg, 40, FD_EPS, FD_ATOL, FD_RTOL);
        L.which = 2;
        snprintf(label, sizeof label, "%s dbeta", k->name);
        sg_test_fd(label, bn_loss_fn, &L, b, k->C, db, 40, FD_EPS, FD_ATOL, FD_RTOL);
    }
    free(L.out);
}

/* The parameter-gradient checks (accumulate, dinp NULL) for one path. */
static void bn_check_param_grads(const struct sg_st_file *f, const struct bn_case *k, enum path p,
                                 const float *x, const float *g, const float *wgt,
                                 const float *mean, const float *rstd, float *dg, float *db)
{
    int C = k->C;
    float *dg_r = load(f, k->name, "dgamma", C), *db_r = load(f, k->name, "dbeta", C);
    float *g0 = filled(C, 7, -1, 1), *b0 = filled(C, 8, -1, 1);
    float *eg = plus(g0, dg_r, C), *eb = plus(b0, db_r, C);
    check(k->name, p, "dgamma (accumulated)", dg, eg, C);
    check(k->name, p, "dbeta (accumulated)", db, eb, C);
    bn_bwd(p, NULL, dg, db, wgt, x, g, mean, rstd, k);
    float *eg2 = plus(eg, dg_r, C), *eb2 = plus(eb, db_r, C);
    check(k->name, p, "dgamma (dinp NULL, accumulated twice)", dg, eg2, C);
    check(k->name, p, "dbeta (dinp NULL, accumulated twice)", db, eb2, C);
    float *bufs[] = {g0, b0, eg, eb, eg2, eb2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    sg_afree(dg_r);
    sg_afree(db_r);
}

static void test_batchnorm(const struct sg_st_file *f, const struct bn_case *k)
{
    int C = k->C;
    int64_t n = (int64_t)k->B * C * k->HW;
    const char *c = k->name;
    float *x = load(f, c, "x", n), *wgt = load(f, c, "wgt", n);
    float *x0 = k->training ? load(f, c, "x0", n) : NULL;
    float *g = k->affine ? load(f, c, "gamma", C) : NULL;
    float *b = k->affine ? load(f, c, "beta", C) : NULL;
    float *rm0 = load(f, c, "rm0", C), *rv0 = load(f, c, "rv0", C);
    float *out_r = load(f, c, "out", n), *mean_r = load(f, c, "mean", C);
    float *rstd_r = load(f, c, "rstd", C), *dx_r = load(f, c, "dx", n);
    float *rm_r = load(f, c, "rm", C), *rv_r = load(f, c, "rv", C);
    float *out = filled(n, 1, 0, 1), *mean = filled(C, 2, 0, 1), *rstd = filled(C, 3, 0, 1);
    float *rm = filled(C, 0, 0, 1), *rv = filled(C, 0, 0, 1), *dx = filled(n, 4, 100, 200);
    float *dg = filled(C, 7, -1, 1), *db = filled(C, 8, -1, 1);
    for (int p = PATH_REF; p <= PATH_OP; p++) {
        memcpy(rm, rm0, sizeof(float) * (size_t)C);
        memcpy(rv, rv0, sizeof(float) * (size_t)C);
        if (k->training) bn_fwd(p, out, mean, rstd, rm, rv, x0, g, b, k);
        bn_fwd(p, out, mean, rstd, rm, rv, x, g, b, k);
        check(c, p, "out", out, out_r, n);
        check(c, p, "mean", mean, mean_r, C);
        check(c, p, "rstd", rstd, rstd_r, C);
        check(c, p, k->training ? "running_mean after 2 calls" : "running_mean (unchanged)", rm,
              rm_r, C);
        check(c, p, k->training ? "running_var after 2 calls" : "running_var (unchanged)", rv, rv_r,
              C);
        sg_test_fill(dx, n, 4, 100, 200);
        sg_test_fill(dg, C, 7, -1, 1);
        sg_test_fill(db, C, 8, -1, 1);
        bn_bwd(p, dx, k->affine ? dg : NULL, k->affine ? db : NULL, wgt, x, g, mean, rstd, k);
        check(c, p, "dx", dx, dx_r, n);
        if (k->affine) bn_check_param_grads(f, k, p, x, g, wgt, mean, rstd, dg, db);
        if (k->training) { /* track_running_stats=False: same output, nothing to update */
            float *out2 = filled(n, 9, 0, 1);
            bn_fwd(p, out2, NULL, NULL, NULL, NULL, x, g, b, k);
            check(c, p, "out (no running stats, mean/rstd NULL)", out2, out_r, n);
            free(out2);
        }
    }
    if (k->affine) {
        memset(dg, 0, sizeof(float) * (size_t)C);
        memset(db, 0, sizeof(float) * (size_t)C);
    }
    bn_fwd(PATH_OP, out, mean, rstd, k->training ? NULL : rm, k->training ? NULL : rv, x, g, b, k);
    bn_bwd(PATH_OP, dx, k->affine ? dg : NULL, k->affine ? db : NULL, wgt, x, g, mean, rstd, k);
    bn_fd(k, x, g, b, wgt, rm, rv, dx, dg, db);
    float *bufs[] = {x, wgt, x0, g, b, rm0, rv0, out_r, mean_r, rstd_r, dx_r, rm_r, rv_r};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
    float *mine[] = {out, mean, rstd, rm, rv, dx, dg, db};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) free(mine[i]);
}

/* Compares the fast path (op_) to the reference path (_ref) on random data in [lo, hi). Shapes
 * big enough for several threads, and outputs over 16 MiB (ops/norm.c NORM_STREAM_BYTES: written
 * through streaming stores) with odd row/chunk lengths over the 1024-float block of that path.
 * With an offset input (|mean| ~ 100, std ~ 0.29) out = (x - mean) * rstd carries the rounding
 * of mean to fp32 (ulp(100)/2 * rstd ~ 1.3e-5; torch's fp32 kernels do the same), which the
 * reference, normalising with its double mean, does not: out gets atol 3e-5 there. */
static float out_atol(float hi)
{
    return hi > 50 ? 3e-5f : ATOL;
}

static void ln_op_vs_ref(int N, int C, float lo, float hi)
{
    struct ln_case k = {"ln", N, C, 1, 1e-5f};
    int64_t n = (int64_t)N * C;
    float *x = filled(n, 11, lo, hi), *dy = filled(n, 12, -1, 1), *w = filled(C, 13, 0.5f, 1.5f);
    float *b = filled(C, 14, -1, 1), *got[2][6];
    int64_t len[6] = {n, N, N, n, C, C};
    for (int p = PATH_REF; p <= PATH_OP; p++) {
        for (int i = 0; i < 6; i++) got[p][i] = filled(len[i], 15 + (uint64_t)i, -1, 1);
        ln_fwd(p, got[p][0], got[p][1], got[p][2], x, w, b, &k);
        ln_bwd(p, got[p][3], got[p][4], got[p][5], dy, x, w, got[p][1], got[p][2], &k);
    }
    static const char *what[] = {"out", "mean", "rstd", "dx", "dw", "db"};
    char label[128];
    for (int i = 0; i < 6; i++) {
        snprintf(label, sizeof label, "ln (%d,%d) x in [%g,%g) op vs ref: %s", N, C, lo, hi,
                 what[i]);
        sg_test_close(label, got[1][i], got[0][i], len[i], i == 0 ? out_atol(hi) : ATOL, RTOL);
        free(got[0][i]);
        free(got[1][i]);
    }
    free(x), free(dy), free(w), free(b);
}

static void bn_op_vs_ref(int B, int C, int HW, int training, float lo, float hi)
{
    struct bn_case k = {"bn", B, C, HW, 1, 0.1f, training};
    int64_t n = (int64_t)B * C * HW;
    float *x = filled(n, 21, lo, hi), *dy = filled(n, 22, -1, 1), *w = filled(C, 23, 0.5f, 1.5f);
    float *b = filled(C, 24, -1, 1), *rm = filled(C, 25, lo, hi), *rv = filled(C, 26, 0.5f, 1);
    float *got[2][6];
    int64_t len[6] = {n, C, C, n, C, C};
    for (int p = PATH_REF; p <= PATH_OP; p++) {
        for (int i = 0; i < 6; i++) got[p][i] = filled(len[i], 27 + (uint64_t)i, -1, 1);
        bn_fwd(p, got[p][0], got[p][1], got[p][2], training ? NULL : rm, training ? NULL : rv, x, w,
               b, &k);
        bn_bwd(p, got[p][3], got[p][4], got[p][5], dy, x, w, got[p][1], got[p][2], &k);
    }
    static const char *what[] = {"out", "mean", "rstd", "dx", "dgamma", "dbeta"};
    char label[128];
    for (int i = 0; i < 6; i++) {
        snprintf(label, sizeof label, "bn %s (%d,%d,%d) x in [%g,%g) op vs ref: %s",
                 training ? "train" : "eval", B, C, HW, lo, hi, what[i]);
        sg_test_close(label, got[1][i], got[0][i], len[i], i == 0 ? out_atol(hi) : ATOL, RTOL);
        free(got[0][i]);
        free(got[1][i]);
    }
    free(x), free(dy), free(w), free(b), free(rm), free(rv);
}

static void test_op_vs_ref(void)
{
    ln_op_vs_ref(300, 200, -2, 3);
    ln_op_vs_ref(300, 200, 100, 101); /* |mean| / std ~ 350: the variance must not cancel */
    ln_op_vs_ref(4100, 1030, -2, 3);  /* 16.9 MB outputs: streaming stores, C > 1024 */
    bn_op_vs_ref(16, 32, 99, 1, 4, 6);
    bn_op_vs_ref(16, 32, 99, 1, 100, 101);
    bn_op_vs_ref(512, 96, 1, 1, 4, 6);
    bn_op_vs_ref(512, 96, 1, 1, 100, 101);
    bn_op_vs_ref(3, 7, 200001, 1, 4, 6); /* 16.8 MB: streaming stores, HW > 1024 */
    bn_op_vs_ref(3, 7, 200001, 0, 4, 6);
}

int main(void)
{
    if (sg_ctx_init(&ctx, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "FAIL: ctx: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file f;
    sg_test_ref_open(&f, "norm.safetensors");
    static const struct ln_case ln[] = {{"ln_odd", 7, 13, 1, 1e-5f},
                                        {"ln_odd_noaff", 7, 13, 0, 1e-5f},
                                        {"ln_round", 16, 64, 1, 1e-6f},
                                        {"ln_round_noaff", 16, 64, 0, 1e-5f}};
    for (size_t i = 0; i < sizeof ln / sizeof ln[0]; i++) test_layernorm(&f, &ln[i]);
    static const struct bn_case bn[] = {
        {"bn_odd", 4, 3, 35, 1, 0.1f, 1},         {"bn_round", 8, 16, 16, 1, 0.3f, 1},
        {"bn_noaff", 4, 3, 35, 0, 0.3f, 1},       {"bn1d", 6, 10, 1, 1, 0.1f, 1},
        {"bn1d_noaff", 6, 10, 1, 0, 0.3f, 1},     {"bn_eval_odd", 4, 3, 35, 1, 0.1f, 0},
        {"bn_eval_round", 8, 16, 16, 0, 0.1f, 0}, {"bn1d_eval", 6, 10, 1, 1, 0.1f, 0}};
    for (size_t i = 0; i < sizeof bn / sizeof bn[0]; i++) test_batchnorm(&f, &bn[i]);
    test_op_vs_ref();
    sg_st_close(&f);
    sg_ctx_free(&ctx);
    return sg_test_summary("test_norm");
}
