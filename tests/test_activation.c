/*
 * tests/test_activation.c — ReLU, GELU (erf / tanh) and QuickGELU, forward and backward, _ref and
 * op_ (CPU fast) paths:
 *  - against torch float32 (F.relu, F.gelu(approximate='none'|'tanh'), x*sigmoid(1.702x)) and
 *    against the same computed in float64, on a 7x13 and a 16x64 input (dense grid over [-6, 6],
 *    random values, |x| up to 20);
 *  - a dense sweep over [-20, 20] (4M points, so the OpenMP path runs) of the fast path vs. the
 *    double-precision _ref, and of sg_expf_fast vs. libm's double exp; huge |x| (no NaN/inf);
 *  - in-place use (out == inp, dinp == dout), and central finite differences of the backward.
 * References: tests/ref/gen_activation.py -> tests/ref/data/activation.safetensors.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "tests/testutil.h"

static const enum sg_act ACTS[] = {SG_ACT_RELU, SG_ACT_GELU, SG_ACT_GELU_TANH, SG_ACT_QUICKGELU};
#define NACTS 4

/*
 * Tolerances. Torch's own float32 results are not correctly rounded: its AVX2 erf is
 * Abramowitz-Stegun 7.1.26 (abs error 1.5e-7), so gen_activation's float32 outputs differ from
 * float64 by up to ~4e-7 (forward) and ~1e-6 (gelu_tanh backward). Against torch float32 we
 * therefore allow atol 1e-6 / 2e-6 (rtol 1e-5); the tight check is against float64:
 * _ref (double math rounded once) within ~1 ulp, the fast float path within a few ulp.
 */
#define TORCH_ATOL_FWD  1e-6f
#define TORCH_ATOL_BWD  2e-6f
#define TORCH_RTOL      1e-5f
#define EXACT_ATOL_REF  1e-12f
#define EXACT_RTOL_REF  2.5e-7f /* 2 ulp */
#define EXACT_ATOL_FAST 1e-7f   /* f' = sum of terms ~0.3 that cancel near x = -0.75: ~3 ulp(0.3) */
#define EXACT_RTOL_FAST 6e-7f   /* 5 ulp */

struct act_case {
    const char *set;
    int64_t n;
    float *x, *wgt;
};

static void check_one(struct sg_ctx *c, const struct sg_st_file *ref, const struct act_case *k,
                      enum sg_act a)
{
    char name[128], label[160];
    int64_t n = k->n;
    float *out = sg_xmalloc(sizeof(float) * (size_t)n);
    float *dinp = sg_xmalloc(sizeof(float) * (size_t)n);
    const char *an = sg_act_name(a);
    snprintf(name, sizeof name, "out_%s_%s", an, k->set);
    float *out_t = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "dinp_%s_%s", an, k->set);
    float *dinp_t = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "out64_%s_%s", an, k->set);
    float *out_x = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "dinp64_%s_%s", an, k->set);
    float *dinp_x = sg_test_ref(ref, name, n);

    for (int path = 0; path < 2; path++) {
        const char *pn = path ? "op" : "ref";
        if (path) {
            op_act_forward(c, a, out, k->x, n);
            op_act_backward(c, a, dinp, k->wgt, k->x, n);
        } else {
            act_forward_ref(a, out, k->x, n);
            act_backward_ref(a, dinp, k->wgt, k->x, n);
        }
        float ea = path ? EXACT_ATOL_FAST : EXACT_ATOL_REF;
        float er = path ? EXACT_RTOL_FAST : EXACT_RTOL_REF;
        snprintf(label, sizeof label, "%s %s fwd %s vs torch f32", pn, an, k->set);
        sg_test_close(label, out, out_t, n, TORCH_ATOL_FWD, TORCH_RTOL);
        snprintf(label, sizeof label, "%s %s bwd %s vs torch f32", pn, an, k->set);
        sg_test_close(label, dinp, dinp_t, n, TORCH_ATOL_BWD, TORCH_RTOL);
        snprintf(label, sizeof label, "%s %s fwd %s vs float64", pn, an, k->set);
        sg_test_close(label, out, out_x, n, ea, er);
        snprintf(label, sizeof label, "%s %s bwd %s vs float64", pn, an, k->set);
        sg_test_close(label, dinp, dinp_x, n, ea, er);
    }

    /* In place: out == inp and dinp == dout give the same numbers. */
    memcpy(out, k->x, sizeof(float) * (size_t)n);
    op_act_forward(c, a, out, out, n);
    float *want = sg_xmalloc(sizeof(float) * (size_t)n);
    op_act_forward(c, a, want, k->x, n);
    snprintf(label, sizeof label, "op %s fwd %s in place", an, k->set);
    sg_test_close(label, out, want, n, 0.0f, 0.0f);
    memcpy(dinp, k->wgt, sizeof(float) * (size_t)n);
    op_act_backward(c, a, dinp, dinp, k->x, n);
    op_act_backward(c, a, want, k->wgt, k->x, n);
    snprintf(label, sizeof label, "op %s bwd %s in place", an, k->set);
    sg_test_close(label, dinp, want, n, 0.0f, 0.0f);

    free(want);
    free(out);
    free(dinp);
    sg_afree(out_t);
    sg_afree(dinp_t);
    sg_afree(out_x);
    sg_afree(dinp_x);
}

static void test_torch(struct sg_ctx *c)
{
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "activation.safetensors");
    struct act_case cases[2] = {{"odd", 7 * 13, NULL, NULL}, {"round", 16 * 64, NULL, NULL}};
    for (int s = 0; s < 2; s++) {
        char name[64];
        snprintf(name, sizeof name, "x_%s", cases[s].set);
        cases[s].x = sg_test_ref(&ref, name, cases[s].n);
        snprintf(name, sizeof name, "wgt_%s", cases[s].set);
        cases[s].wgt = sg_test_ref(&ref, name, cases[s].n);
        for (int a = 0; a < NACTS; a++) check_one(c, &ref, &cases[s], ACTS[a]);
        sg_afree(cases[s].x);
        sg_afree(cases[s].wgt);
    }
    sg_st_close(&ref);
}

/* Largest |got - want| / (atol + rtol |want|) over a sweep, with the worst x; <= 1 passes. */
static void sweep_check(const char *label, const float *x, const float *got, const float *want,
                        int64_t n, double atol, double rtol)
{
    double worst = 0.0, wx = 0.0, maxrel = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double r = d / (atol + rtol * fabs((double)want[i]));
        if (!(r <= worst)) worst = r, wx = x[i];
        if (fabs(want[i]) > 0.1 && d / fabs(want[i]) > maxrel) maxrel = d / fabs(want[i]);
    }
    printf("     %s: max rel err %.3g (%.2f ulp) where |y| > 0.1; worst/tol %.3g at x = %.7g\n",
           label, maxrel, maxrel * 8388608.0, worst, wx);
    char buf[160];
    snprintf(buf, sizeof buf, "%s within atol %g + rtol %g of the double _ref", label, atol, rtol);
    sg_test_true(buf, worst <= 1.0);
}

static void test_sweep(struct sg_ctx *c)
{
    const int64_t n = 4000000;
    float *x = sg_xmalloc(sizeof(float) * (size_t)n);
    float *ones = sg_xmalloc(sizeof(float) * (size_t)n);
    float *got = sg_xmalloc(sizeof(float) * (size_t)n);
    float *want = sg_xmalloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        x[i] = -20.0f + 40.0f * (float)((double)i / (double)(n - 1));
        ones[i] = 1.0f;
    }
    for (int a = 0; a < NACTS; a++) {
        char label[96];
        op_act_forward(c, ACTS[a], got, x, n);
        act_forward_ref(ACTS[a], want, x, n);
        snprintf(label, sizeof label, "sweep %s fwd", sg_act_name(ACTS[a]));
        sweep_check(label, x, got, want, n, EXACT_ATOL_FAST, EXACT_RTOL_FAST);
        op_act_backward(c, ACTS[a], got, ones, x, n);
        act_backward_ref(ACTS[a], want, ones, x, n);
        snprintf(label, sizeof label, "sweep %s bwd", sg_act_name(ACTS[a]));
        sweep_check(label, x, got, want, n, EXACT_ATOL_FAST, EXACT_RTOL_FAST);
    }
    /* sg_expf_fast over its whole range (1 ulp), and its overflow / flush behaviour. */
    for (int64_t i = 0; i < n; i++) {
        x[i] = -86.9f + 175.6f * (float)((double)i / (double)(n - 1));
        got[i] = sg_expf_fast(x[i]);
        want[i] = (float)exp((double)x[i]);
    }
    sweep_check("sweep sg_expf_fast", x, got, want, n, 0.0, 1.5 / 8388608.0);
    sg_test_true("sg_expf_fast: exp(0) == 1, exp(88.72) finite, exp(88.73) == exp(inf) == inf",
                 sg_expf_fast(0.0f) == 1.0f && isfinite(sg_expf_fast(88.72f)) &&
                     isinf(sg_expf_fast(88.73f)) && isinf(sg_expf_fast(INFINITY)));
    sg_test_true("sg_expf_fast: exp(-86.9) > 0, exp(-87.4) == exp(-inf) == 0, exp(nan) nan",
                 sg_expf_fast(-86.9f) > 0.0f && sg_expf_fast(-87.4f) == 0.0f &&
                     sg_expf_fast(-INFINITY) == 0.0f && isnan(sg_expf_fast(NAN)));
    free(x);
    free(ones);
    free(got);
    free(want);
}

/* Huge and saturating inputs: no inf/NaN, and the double _ref (0, x or 1 there; the far tails
 * are ~1e-14 with a few 1e-6 relative error from the rounding of the exp argument). */
static void test_extremes(struct sg_ctx *c)
{
    static const float xs[] = {-FLT_MAX, -1e30f, -1e10f, -100.0f, -88.8f, -50.0f,
                               -14.6f,   -9.5f,  -7.0f,  7.0f,    9.5f,   14.6f,
                               50.0f,    88.8f,  100.0f, 1e10f,   1e30f,  FLT_MAX};
    enum { NX = sizeof xs / sizeof xs[0] };
    float ones[NX], got[NX], want[NX];
    for (int i = 0; i < NX; i++) ones[i] = 1.0f;
    for (int a = 0; a < NACTS; a++) {
        char label[96];
        op_act_forward(c, ACTS[a], got, xs, NX);
        act_forward_ref(ACTS[a], want, xs, NX);
        snprintf(label, sizeof label, "op %s fwd at huge |x|", sg_act_name(ACTS[a]));
        sg_test_close(label, got, want, NX, 1e-12f, 1e-5f);
        op_act_backward(c, ACTS[a], got, ones, xs, NX);
        act_backward_ref(ACTS[a], want, ones, xs, NX);
        snprintf(label, sizeof label, "op %s bwd at huge |x|", sg_act_name(ACTS[a]));
        sg_test_close(label, got, want, NX, 1e-12f, 1e-5f);
    }
}

struct fd_user {
    struct sg_ctx *c;
    enum sg_act a;
    int use_ref;
    const float *w;
    float *out;
    int64_t n;
};

static double fd_loss(void *user, const float *x)
{
    struct fd_user *u = user;
    if (u->use_ref)
        act_forward_ref(u->a, u->out, x, u->n);
    else
        op_act_forward(u->c, u->a, u->out, x, u->n);
    return sg_test_dot(u->out, u->w, u->n);
}

static void test_fd(struct sg_ctx *c)
{
    const int64_t n = 301;
    float *x = sg_xmalloc(sizeof(float) * n), *w = sg_xmalloc(sizeof(float) * n);
    float *out = sg_xmalloc(sizeof(float) * n), *grad = sg_xmalloc(sizeof(float) * n);
    sg_test_fill(x, n, 11, -5.0f, 5.0f);
    sg_test_fill(w, n, 12, -1.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) /* keep ReLU's kink out of the +-eps probes */
        if (fabsf(x[i]) < 0.05f) x[i] = x[i] < 0 ? -0.05f : 0.05f;
    for (int a = 0; a < NACTS; a++) {
        for (int use_ref = 0; use_ref < 2; use_ref++) {
            struct fd_user u = {c, ACTS[a], use_ref, w, out, n};
            if (use_ref)
                act_backward_ref(ACTS[a], grad, w, x, n);
            else
                op_act_backward(c, ACTS[a], grad, w, x, n);
            char label[96];
            snprintf(label, sizeof label, "%s %s bwd", use_ref ? "ref" : "op",
                     sg_act_name(ACTS[a]));
            /* eps 1e-2: truncation ~f'''eps^2/6 < 1e-5; float rounding of out / eps ~ 1e-5 */
            sg_test_fd(label, fd_loss, &u, x, n, grad, (int)n, 1e-2f, 1e-4f, 1e-3f);
        }
    }
    free(x);
    free(w);
    free(out);
    free(grad);
}

int main(void)
{
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "test_activation: %s\n", sg_last_error());
        return 1;
    }
    test_torch(&c);
    test_sweep(&c);
    test_extremes(&c);
    test_fd(&c);
    sg_test_true("act names", strcmp(sg_act_name(SG_ACT_GELU_TANH), "gelu_tanh") == 0);
    sg_ctx_free(&c);
    return sg_test_summary("test_activation");
}
