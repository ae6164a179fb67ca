/*
 * tests/test_softmax.c — softmax over the last dim, forward and backward, _ref and op_ (CPU fast)
 * paths:
 *  - against torch.softmax float32 and the same computed in float64, on 7x13, 16x64, 12x197,
 *    large logits (+-50, a near one-hot row, a constant row) 5x33 and one 1x1000 row;
 *  - op_ vs. _ref on 1000x197 (so the OpenMP path runs), in-place use, and central finite
 *    differences of the backward.
 * References: tests/ref/gen_softmax.py -> tests/ref/data/softmax.safetensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/softmax.h"
#include "tests/testutil.h"

/* Outputs are in [0, 1]. torch (Sleef exp) and our fast path (1-ulp exp, float row sums) are a
 * few ulp from the float64 truth; _ref (double, rounded once) within 1 ulp. Backward gets the
 * float32 forward output y, whose rounding (0.5 ulp) passes through y (dy - <dy, y>) with
 * |dy - <dy, y>| <= 2: absolute error up to ~1e-7 y, unbounded relative error where dy ~ <dy, y>;
 * hence the backward atol. */
#define TORCH_ATOL         1e-7f
#define TORCH_RTOL         1e-5f
#define EXACT_ATOL_REF     1e-12f
#define EXACT_ATOL_REF_BWD 3e-8f
#define EXACT_RTOL_REF     2.5e-7f /* 2 ulp */
#define EXACT_ATOL_FAST    1e-7f
#define EXACT_RTOL_FAST    1e-6f /* 8 ulp */

static void check_case(struct sg_ctx *c, const struct sg_st_file *ref, const char *set, int N,
                       int C)
{
    char name[64], label[128];
    int64_t n = (int64_t)N * C;
    snprintf(name, sizeof name, "x_%s", set);
    float *x = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "wgt_%s", set);
    float *wgt = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "out_%s", set);
    float *out_t = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "dinp_%s", set);
    float *dinp_t = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "out64_%s", set);
    float *out_x = sg_test_ref(ref, name, n);
    snprintf(name, sizeof name, "dinp64_%s", set);
    float *dinp_x = sg_test_ref(ref, name, n);
    float *out = sg_xmalloc(sizeof(float) * (size_t)n);
    float *dinp = sg_xmalloc(sizeof(float) * (size_t)n);

    for (int path = 0; path < 2; path++) {
        const char *pn = path ? "op" : "ref";
        if (path) {
            op_softmax_forward(c, out, x, N, C);
            op_softmax_backward(c, dinp, wgt, out, N, C);
        } else {
            softmax_forward_ref(out, x, N, C);
            softmax_backward_ref(dinp, wgt, out, N, C);
        }
        float ea = path ? EXACT_ATOL_FAST : EXACT_ATOL_REF;
        float er = path ? EXACT_RTOL_FAST : EXACT_RTOL_REF;
        snprintf(label, sizeof label, "%s softmax fwd %s %dx%d vs torch f32", pn, set, N, C);
        sg_test_close(label, out, out_t, n, TORCH_ATOL, TORCH_RTOL);
        snprintf(label, sizeof label, "%s softmax bwd %s %dx%d vs torch f32", pn, set, N, C);
        sg_test_close(label, dinp, dinp_t, n, TORCH_ATOL, TORCH_RTOL);
        snprintf(label, sizeof label, "%s softmax fwd %s %dx%d vs float64", pn, set, N, C);
        sg_test_close(label, out, out_x, n, ea, er);
        snprintf(label, sizeof label, "%s softmax bwd %s %dx%d vs float64", pn, set, N, C);
        sg_test_close(label, dinp, dinp_x, n, path ? ea : EXACT_ATOL_REF_BWD, er);
    }

    /* In place: out == inp, dinp == dout. */
    float *want = sg_xmalloc(sizeof(float) * (size_t)n);
    op_softmax_forward(c, want, x, N, C);
    memcpy(out, x, sizeof(float) * (size_t)n);
    op_softmax_forward(c, out, out, N, C);
    snprintf(label, sizeof label, "op softmax fwd %s in place", set);
    sg_test_close(label, out, want, n, 0.0f, 0.0f);
    op_softmax_backward(c, want, wgt, out, N, C);
    memcpy(dinp, wgt, sizeof(float) * (size_t)n);
    op_softmax_backward(c, dinp, dinp, out, N, C);
    snprintf(label, sizeof label, "op softmax bwd %s in place", set);
    sg_test_close(label, dinp, want, n, 0.0f, 0.0f);

    free(want);
    free(out);
    free(dinp);
    sg_afree(x);
    sg_afree(wgt);
    sg_afree(out_t);
    sg_afree(dinp_t);
    sg_afree(out_x);
    sg_afree(dinp_x);
}

static void test_torch(struct sg_ctx *c)
{
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "softmax.safetensors");
    check_case(c, &ref, "odd", 7, 13);
    check_case(c, &ref, "round", 16, 64);
    check_case(c, &ref, "att", 12, 197);
    check_case(c, &ref, "big", 5, 33);
    check_case(c, &ref, "wide", 1, 1000);
    sg_st_close(&ref);
}

/* Fast path vs. _ref on a shape large enough for the OpenMP path. */
static void test_parallel(struct sg_ctx *c)
{
    const int N = 1000, C = 197;
    const int64_t n = (int64_t)N * C;
    float *x = sg_xmalloc(sizeof(float) * n), *w = sg_xmalloc(sizeof(float) * n);
    float *o1 = sg_xmalloc(sizeof(float) * n), *o2 = sg_xmalloc(sizeof(float) * n);
    float *d1 = sg_xmalloc(sizeof(float) * n), *d2 = sg_xmalloc(sizeof(float) * n);
    sg_test_fill(x, n, 5, -20.0f, 20.0f);
    sg_test_fill(w, n, 6, -1.0f, 1.0f);
    op_softmax_forward(c, o1, x, N, C);
    softmax_forward_ref(o2, x, N, C);
    sg_test_close("op softmax fwd 1000x197 vs ref", o1, o2, n, EXACT_ATOL_FAST, EXACT_RTOL_FAST);
    op_softmax_backward(c, d1, w, o2, N, C);
    softmax_backward_ref(d2, w, o2, N, C);
    sg_test_close("op softmax bwd 1000x197 vs ref", d1, d2, n, EXACT_ATOL_FAST, EXACT_RTOL_FAST);
    free(x);
    free(w);
    free(o1);
    free(o2);
    free(d1);
    free(d2);
}

struct fd_user {
    struct sg_ctx *c;
    int use_ref, N, C;
    const float *w;
    float *out;
};

static double fd_loss(void *user, const float *x)
{
    struct fd_user *u = user;
    if (u->use_ref)
        softmax_forward_ref(u->out, x, u->N, u->C);
    else
        op_softmax_forward(u->c, u->out, x, u->N, u->C);
    return sg_test_dot(u->out, u->w, (int64_t)u->N * u->C);
}

static void test_fd(struct sg_ctx *c)
{
    const int N = 7, C = 13;
    const int64_t n = N * C;
    float *x = sg_xmalloc(sizeof(float) * n), *w = sg_xmalloc(sizeof(float) * n);
    float *out = sg_xmalloc(sizeof(float) * n), *grad = sg_xmalloc(sizeof(float) * n);
    sg_test_fill(x, n, 21, -3.0f, 3.0f);
    sg_test_fill(w, n, 22, -1.0f, 1.0f);
    for (int use_ref = 0; use_ref < 2; use_ref++) {
        struct fd_user u = {c, use_ref, N, C, w, out};
        fd_loss(&u, x);
        if (use_ref)
            softmax_backward_ref(grad, w, out, N, C);
        else
            op_softmax_backward(c, grad, w, out, N, C);
        /* eps 1e-2: truncation ~1e-5; float rounding of the 13 outputs of a row / eps ~1e-5 */
        sg_test_fd(use_ref ? "ref softmax bwd" : "op softmax bwd", fd_loss, &u, x, n, grad, (int)n,
                   1e-2f, 1e-4f, 1e-3f);
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
        fprintf(stderr, "test_softmax: %s\n", sg_last_error());
        return 1;
    }
    test_torch(&c);
    test_parallel(&c);
    test_fd(&c);
    sg_ctx_free(&c);
    return sg_test_summary("test_softmax");
}
