/*
 * tests/test_elementwise.c — residual add / accumulate, row L2 normalisation and dropout, _ref and
 * op_ (CPU fast) paths:
 *  - add: forward, and backward accumulating into pre-existing grads of both branches (and NULL
 *    skipping one), against torch a + b, on 7x13 and 16x64; op_ vs _ref on 100003 elements;
 *  - l2norm: against F.normalize float32 and float64 on 7x13, 16x64, eps = 1 with row norms on
 *    both sides of it, and a zero row and a 1e-14 row under eps = 1e-12; op_ vs _ref on 3000x512;
 *  - dropout: torch's own F.dropout output replayed through op_dropout_apply / _backward with
 *    its mask (p = 0.1, 0.5, 0, 1); our mask stream (ref == op == sg_rng_float < 1 - p), keep
 *    rate within 4 sigma on 1e5 elements, p = 0 / 1 semantics;
 *  - central finite differences of every backward; in-place use.
 * References: tests/ref/gen_elementwise.py -> tests/ref/data/elementwise.safetensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "ops/elementwise.h"
#include "tests/testutil.h"

static float *ref_get(const struct sg_st_file *f, const char *prefix, const char *name, int64_t n)
{
    char full[128];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return sg_test_ref(f, full, n);
}

static float *copy_of(const float *x, int64_t n)
{
    float *y = sg_xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    memcpy(y, x, sizeof(float) * (size_t)n);
    return y;
}

/* ---- add ------------------------------------------------------------------------------------- */

static void check_add(struct sg_ctx *c, const struct sg_st_file *ref, const char *set, int64_t n)
{
    char pre[64], label[128];
    snprintf(pre, sizeof pre, "add_%s_", set);
    float *a = ref_get(ref, pre, "a", n), *b = ref_get(ref, pre, "b", n);
    float *wgt = ref_get(ref, pre, "wgt", n), *out_t = ref_get(ref, pre, "out", n);
    float *ga0 = ref_get(ref, pre, "ga0", n), *gb0 = ref_get(ref, pre, "gb0", n);
    float *da_t = ref_get(ref, pre, "da", n), *db_t = ref_get(ref, pre, "db", n);
    float *out = sg_xmalloc(sizeof(float) * (size_t)n);
    for (int path = 0; path < 2; path++) {
        const char *pn = path ? "op" : "ref";
        float *da = copy_of(ga0, n), *db = copy_of(gb0, n);
        if (path) {
            op_add_forward(c, out, a, b, n);
            op_add_backward(c, da, db, wgt, n);
        } else {
            add_forward_ref(out, a, b, n);
            add_backward_ref(da, db, wgt, n);
        }
        /* a + b and g0 + dout are single float additions in torch too: bit-exact */
        snprintf(label, sizeof label, "%s add fwd %s", pn, set);
        sg_test_close(label, out, out_t, n, 0.0f, 0.0f);
        snprintf(label, sizeof label, "%s add bwd %s: da += dout", pn, set);
        sg_test_close(label, da, da_t, n, 0.0f, 0.0f);
        snprintf(label, sizeof label, "%s add bwd %s: db += dout", pn, set);
        sg_test_close(label, db, db_t, n, 0.0f, 0.0f);
        /* NULL skips a branch; accumulate is the single-branch form */
        memcpy(da, ga0, sizeof(float) * (size_t)n);
        if (path)
            op_add_backward(c, da, NULL, wgt, n);
        else
            add_backward_ref(da, NULL, wgt, n);
        memcpy(db, gb0, sizeof(float) * (size_t)n);
        if (path)
            op_accumulate(c, db, wgt, n);
        else
            accumulate_ref(db, wgt, n);
        snprintf(label, sizeof label, "%s add bwd %s: db NULL, accumulate", pn, set);
        sg_test_true(label, memcmp(da, da_t, sizeof(float) * (size_t)n) == 0 &&
                                memcmp(db, db_t, sizeof(float) * (size_t)n) == 0);
        free(da);
        free(db);
    }
    /* in place: out == a */
    float *inpl = copy_of(a, n);
    op_add_forward(c, inpl, inpl, b, n);
    snprintf(label, sizeof label, "op add fwd %s in place", set);
    sg_test_close(label, inpl, out_t, n, 0.0f, 0.0f);
    free(inpl);
    free(out);
    float *bufs[] = {a, b, wgt, out_t, ga0, gb0, da_t, db_t};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

/* op_ vs _ref above the OpenMP threshold (odd n): bit-exact, as both do single float adds. */
static void test_add_parallel(struct sg_ctx *c)
{
    const int64_t n = 100003;
    float *a = sg_xmalloc(sizeof(float) * n), *b = sg_xmalloc(sizeof(float) * n);
    float *o1 = sg_xmalloc(sizeof(float) * n), *o2 = sg_xmalloc(sizeof(float) * n);
    float *g1 = sg_xmalloc(sizeof(float) * n), *g2 = sg_xmalloc(sizeof(float) * n);
    sg_test_fill(a, n, 61, -1.0f, 1.0f);
    sg_test_fill(b, n, 62, -1.0f, 1.0f);
    op_add_forward(c, o1, a, b, n);
    add_forward_ref(o2, a, b, n);
    sg_test_close("op add fwd 100003 vs ref", o1, o2, n, 0.0f, 0.0f);
    memcpy(g1, a, sizeof(float) * n);
    memcpy(g2, a, sizeof(float) * n);
    op_add_backward(c, o1, g1, b, n);
    add_backward_ref(o2, g2, b, n);
    sg_test_close("op add bwd 100003 vs ref: da", o1, o2, n, 0.0f, 0.0f);
    sg_test_close("op add bwd 100003 vs ref: db", g1, g2, n, 0.0f, 0.0f);
    op_accumulate(c, g1, a, n);
    accumulate_ref(g2, a, n);
    sg_test_close("op accumulate 100003 vs ref", g1, g2, n, 0.0f, 0.0f);
    float *bufs[] = {a, b, o1, o2, g1, g2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

/* ---- l2norm ---------------------------------------------------------------------------------- */

/* Torch's float32 norm and division are a few ulp from the float64 truth, as are ours (float
 * row sums, x * (1/norm)); _ref (double) is within an ulp. Backward (dout - y <dout, y>) / norm
 * cancels where dout ~ y <dout, y>: atol ~ an ulp of the O(1) terms over the norm. */
#define L2_TORCH_ATOL 1e-6f
#define L2_TORCH_RTOL 1e-5f
#define L2_EXACT_RTOL 1e-6f

static void check_l2norm(struct sg_ctx *c, const struct sg_st_file *ref, const char *set, int N,
                         int D)
{
    char pre[64], label[128];
    int64_t n = (int64_t)N * D;
    snprintf(pre, sizeof pre, "l2norm_%s_", set);
    float *x = ref_get(ref, pre, "x", n), *wgt = ref_get(ref, pre, "wgt", n);
    float *eps_t = ref_get(ref, pre, "eps", 1), *norm_t = ref_get(ref, pre, "norm", N);
    float *out_t = ref_get(ref, pre, "out", n), *dinp_t = ref_get(ref, pre, "dinp", n);
    float *out_x = ref_get(ref, pre, "out64", n), *dinp_x = ref_get(ref, pre, "dinp64", n);
    float eps = eps_t[0];
    float *out = sg_xmalloc(sizeof(float) * (size_t)n), *dinp = sg_xmalloc(sizeof(float) * n);
    float *norm = sg_xmalloc(sizeof(float) * (size_t)N);
    /* backward of a row under eps is dout / eps: 1e12 * dout for the tiny set; rtol governs */
    for (int path = 0; path < 2; path++) {
        const char *pn = path ? "op" : "ref";
        if (path) {
            op_l2norm_forward(c, out, norm, x, N, D, eps);
            op_l2norm_backward(c, dinp, wgt, out, norm, N, D, eps);
        } else {
            l2norm_forward_ref(out, norm, x, N, D, eps);
            l2norm_backward_ref(dinp, wgt, out, norm, N, D, eps);
        }
        snprintf(label, sizeof label, "%s l2norm norm %s %dx%d vs torch f32", pn, set, N, D);
        sg_test_close(label, norm, norm_t, N, 0.0f, L2_TORCH_RTOL);
        snprintf(label, sizeof label, "%s l2norm fwd %s %dx%d vs torch f32", pn, set, N, D);
        sg_test_close(label, out, out_t, n, L2_TORCH_ATOL, L2_TORCH_RTOL);
        snprintf(label, sizeof label, "%s l2norm bwd %s %dx%d vs torch f32", pn, set, N, D);
        sg_test_close(label, dinp, dinp_t, n, L2_TORCH_ATOL, L2_TORCH_RTOL);
        snprintf(label, sizeof label, "%s l2norm fwd %s %dx%d vs float64", pn, set, N, D);
        sg_test_close(label, out, out_x, n, 1e-8f, L2_EXACT_RTOL);
        snprintf(label, sizeof label, "%s l2norm bwd %s %dx%d vs float64", pn, set, N, D);
        sg_test_close(label, dinp, dinp_x, n, 1e-7f, L2_EXACT_RTOL);
    }
    /* in place: dinp == dout */
    float *inpl = copy_of(wgt, n);
    op_l2norm_backward(c, inpl, inpl, out, norm, N, D, eps);
    op_l2norm_backward(c, dinp, wgt, out, norm, N, D, eps);
    snprintf(label, sizeof label, "op l2norm bwd %s in place", set);
    sg_test_close(label, inpl, dinp, n, 0.0f, 0.0f);
    free(inpl);
    free(out);
    free(dinp);
    free(norm);
    float *bufs[] = {x, wgt, eps_t, norm_t, out_t, dinp_t, out_x, dinp_x};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

static void test_l2norm_parallel(struct sg_ctx *c)
{
    const int N = 3000, D = 512;
    const int64_t n = (int64_t)N * D;
    float *x = sg_xmalloc(sizeof(float) * n), *w = sg_xmalloc(sizeof(float) * n);
    float *o1 = sg_xmalloc(sizeof(float) * n), *o2 = sg_xmalloc(sizeof(float) * n);
    float *d1 = sg_xmalloc(sizeof(float) * n), *d2 = sg_xmalloc(sizeof(float) * n);
    float *n1 = sg_xmalloc(sizeof(float) * N), *n2 = sg_xmalloc(sizeof(float) * N);
    sg_test_fill(x, n, 31, -2.0f, 2.0f);
    sg_test_fill(w, n, 32, -1.0f, 1.0f);
    op_l2norm_forward(c, o1, n1, x, N, D, 1e-12f);
    l2norm_forward_ref(o2, n2, x, N, D, 1e-12f);
    sg_test_close("op l2norm norm 3000x512 vs ref", n1, n2, N, 0.0f, L2_EXACT_RTOL);
    sg_test_close("op l2norm fwd 3000x512 vs ref", o1, o2, n, 1e-8f, L2_EXACT_RTOL);
    op_l2norm_backward(c, d1, w, o2, n2, N, D, 1e-12f);
    l2norm_backward_ref(d2, w, o2, n2, N, D, 1e-12f);
    sg_test_close("op l2norm bwd 3000x512 vs ref", d1, d2, n, 1e-7f, L2_EXACT_RTOL);
    float *bufs[] = {x, w, o1, o2, d1, d2, n1, n2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

/* ---- dropout --------------------------------------------------------------------------------- */

static void check_dropout(struct sg_ctx *c, const struct sg_st_file *ref, const char *set,
                          int64_t n)
{
    char pre[64], label[128];
    snprintf(pre, sizeof pre, "dropout_%s_", set);
    float *x = ref_get(ref, pre, "x", n), *wgt = ref_get(ref, pre, "wgt", n);
    float *p_t = ref_get(ref, pre, "p", 1), *out_t = ref_get(ref, pre, "out", n);
    float *dinp_t = ref_get(ref, pre, "dinp", n);
    snprintf(label, sizeof label, "%smask", pre);
    int64_t *mask64 = sg_test_ref_i64(ref, label, n);
    uint8_t *mask = sg_xmalloc((size_t)n);
    for (int64_t i = 0; i < n; i++) mask[i] = (uint8_t)mask64[i];
    float p = p_t[0];
    float *out = sg_xmalloc(sizeof(float) * (size_t)n), *dinp = sg_xmalloc(sizeof(float) * n);
    for (int path = 0; path < 2; path++) {
        const char *pn = path ? "op" : "ref";
        if (path) {
            op_dropout_apply(c, out, mask, x, n, p);
            op_dropout_backward(c, dinp, wgt, mask, n, p);
        } else {
            dropout_apply_ref(out, mask, x, n, p);
            dropout_backward_ref(dinp, wgt, mask, n, p);
        }
        /* x * (1/(1-p)): torch rounds 1/(1-p) once as we do, up to the float rounding of p */
        snprintf(label, sizeof label, "%s dropout fwd %s (p=%g, torch's mask)", pn, set, p);
        sg_test_close(label, out, out_t, n, 0.0f, 3e-7f);
        snprintf(label, sizeof label, "%s dropout bwd %s (p=%g, torch's mask)", pn, set, p);
        sg_test_close(label, dinp, dinp_t, n, 0.0f, 3e-7f);
    }
    free(mask64);
    free(mask);
    free(out);
    free(dinp);
    float *bufs[] = {x, wgt, p_t, out_t, dinp_t};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

/* Our mask stream: ref and op draw the same mask (= sg_rng_float < 1 - p), at the keep rate. */
static void test_dropout_stream(struct sg_ctx *c)
{
    const int64_t n = 100000;
    static const float ps[] = {0.1f, 0.5f, 0.9f, 1e-4f};
    float *x = sg_xmalloc(sizeof(float) * n), *o1 = sg_xmalloc(sizeof(float) * n);
    float *o2 = sg_xmalloc(sizeof(float) * n);
    uint8_t *m1 = sg_xmalloc(n), *m2 = sg_xmalloc(n);
    sg_test_fill(x, n, 41, 0.5f, 1.5f);
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        float p = ps[k];
        char label[128];
        struct sg_rng r1, r2, r3;
        sg_rng_seed(&r1, 1000 + k);
        sg_rng_seed(&r2, 1000 + k);
        sg_rng_seed(&r3, 1000 + k);
        op_dropout_forward(c, o1, m1, x, n, p, &r1);
        dropout_forward_ref(o2, m2, x, n, p, &r2);
        int64_t kept = 0, same = 1, spec = 1, consistent = 1;
        for (int64_t i = 0; i < n; i++) {
            kept += m1[i];
            same &= m1[i] == m2[i];
            spec &= m1[i] == (sg_rng_float(&r3) < 1.0f - p);
            consistent &= o1[i] == (m1[i] ? x[i] * (1.0f / (1.0f - p)) : 0.0f);
        }
        snprintf(label, sizeof label, "dropout p=%g: op mask == ref mask == (rng float < 1-p)", p);
        sg_test_true(label, same && spec && sg_rng_u32(&r1) == sg_rng_u32(&r2));
        snprintf(label, sizeof label, "dropout p=%g: out = x * mask / (1-p)", p);
        sg_test_true(label, consistent);
        sg_test_close("  (ref path gives the same out)", o2, o1, n, 0.0f, 0.0f);
        double mean = (double)n * (1.0 - p), sd = sqrt((double)n * p * (1.0 - p));
        snprintf(label, sizeof label, "dropout p=%g: kept %lld of %lld, expected %.0f +- 4*%.1f", p,
                 (long long)kept, (long long)n, mean, sd);
        sg_test_true(label, fabs((double)kept - mean) <= 4.0 * sd + 0.5);
    }
    /* p = 0: identity, all kept, no draws; p = 1: zeros, none kept, no draws. */
    for (int k = 0; k < 2; k++) {
        float p = (float)k;
        struct sg_rng r, fresh;
        sg_rng_seed(&r, 5);
        sg_rng_seed(&fresh, 5);
        op_dropout_forward(c, o1, m1, x, n, p, &r);
        int ok = sg_rng_u32(&r) == sg_rng_u32(&fresh);
        for (int64_t i = 0; i < n; i++) ok &= m1[i] == (k == 0) && o1[i] == (k == 0 ? x[i] : 0.0f);
        sg_test_true(k == 0 ? "dropout p=0: identity, mask all 1, no rng draws"
                            : "dropout p=1: all zeros, mask all 0, no rng draws",
                     ok);
    }
    free(x);
    free(o1);
    free(o2);
    free(m1);
    free(m2);
}

/* ---- finite differences ---------------------------------------------------------------------- */

enum fd_op { FD_ADD, FD_L2NORM, FD_DROPOUT };

struct fd_user {
    struct sg_ctx *c;
    enum fd_op op;
    int N, D;
    float eps, p;
    const float *other, *w; /* add: the other operand */
    const uint8_t *mask;
    float *out, *norm;
};

static double fd_loss(void *user, const float *x)
{
    struct fd_user *u = user;
    int64_t n = (int64_t)u->N * u->D;
    switch (u->op) {
    case FD_ADD:
        op_add_forward(u->c, u->out, x, u->other, n);
        break;
    case FD_L2NORM:
        op_l2norm_forward(u->c, u->out, u->norm, x, u->N, u->D, u->eps);
        break;
    case FD_DROPOUT:
        op_dropout_apply(u->c, u->out, u->mask, x, n, u->p);
        break;
    }
    return sg_test_dot(u->out, u->w, n);
}

static void test_fd(struct sg_ctx *c)
{
    const int N = 6, D = 11;
    const int64_t n = N * D;
    float *x = sg_xmalloc(sizeof(float) * n), *w = sg_xmalloc(sizeof(float) * n);
    float *other = sg_xmalloc(sizeof(float) * n), *out = sg_xmalloc(sizeof(float) * n);
    float *grad = sg_xmalloc(sizeof(float) * n), *norm = sg_xmalloc(sizeof(float) * N);
    uint8_t *mask = sg_xmalloc(n);
    sg_test_fill(x, n, 51, -1.0f, 1.0f);
    sg_test_fill(w, n, 52, -1.0f, 1.0f);
    sg_test_fill(other, n, 53, -1.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) mask[i] = (i * 7) % 10 != 0;

    struct fd_user u = {c, FD_ADD, N, D, 0.0f, 0.0f, other, w, mask, out, norm};
    memset(grad, 0, sizeof(float) * n);
    op_add_backward(c, grad, NULL, w, n);
    sg_test_fd("op add bwd", fd_loss, &u, x, n, grad, (int)n, 1e-2f, 1e-4f, 1e-3f);

    /* eps = 1: rows 0..2 scaled under it (clamped branch), rows 3..5 above */
    for (int64_t i = 0; i < n; i++) x[i] *= i < 3 * D ? 0.2f : 1.5f;
    for (int k = 0; k < 2; k++) {
        u.op = FD_L2NORM;
        u.eps = k ? 1.0f : 1e-12f;
        fd_loss(&u, x);
        op_l2norm_backward(c, grad, w, out, norm, N, D, u.eps);
        /* eps 1e-3 keeps the probes on one side of the clamp; rounding / eps ~ 1e-4 */
        sg_test_fd(k ? "op l2norm bwd (eps = 1, both branches)" : "op l2norm bwd", fd_loss, &u, x,
                   n, grad, (int)n, 1e-3f, 5e-4f, 1e-3f);
        fd_loss(&u, x); /* out and norm at the unperturbed x again */
        l2norm_backward_ref(grad, w, out, norm, N, D, u.eps);
        sg_test_fd(k ? "ref l2norm bwd (eps = 1, both branches)" : "ref l2norm bwd", fd_loss, &u, x,
                   n, grad, (int)n, 1e-3f, 5e-4f, 1e-3f);
    }

    u.op = FD_DROPOUT;
    u.p = 0.3f;
    op_dropout_backward(c, grad, w, mask, n, u.p);
    sg_test_fd("op dropout bwd", fd_loss, &u, x, n, grad, (int)n, 1e-2f, 1e-4f, 1e-3f);
    dropout_backward_ref(grad, w, mask, n, u.p);
    sg_test_fd("ref dropout bwd", fd_loss, &u, x, n, grad, (int)n, 1e-2f, 1e-4f, 1e-3f);

    free(x);
    free(w);
    free(other);
    free(out);
    free(grad);
    free(norm);
    free(mask);
}

int main(void)
{
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "test_elementwise: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "elementwise.safetensors");
    check_add(&c, &ref, "odd", 7 * 13);
    check_add(&c, &ref, "round", 16 * 64);
    check_l2norm(&c, &ref, "odd", 7, 13);
    check_l2norm(&c, &ref, "round", 16, 64);
    check_l2norm(&c, &ref, "clamp", 6, 10);
    check_l2norm(&c, &ref, "tiny", 3, 8);
    check_dropout(&c, &ref, "odd", 7 * 13);
    check_dropout(&c, &ref, "round", 16 * 64);
    check_dropout(&c, &ref, "p0", 5 * 9);
    check_dropout(&c, &ref, "p1", 5 * 9);
    sg_st_close(&ref);
    test_add_parallel(&c);
    test_l2norm_parallel(&c);
    test_dropout_stream(&c);
    test_fd(&c);
    sg_ctx_free(&c);
    return sg_test_summary("test_elementwise");
}
