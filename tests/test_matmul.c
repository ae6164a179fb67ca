/*
 * tests/test_matmul.c — linear (F.linear) and batched matmul (torch.matmul on 3-D tensors),
 * forward and backward, for both the _ref loops and the op_ fast path (CPU ctx), against
 * PyTorch references (tests/ref/gen_matmul.py -> tests/ref/data/matmul.safetensors), plus
 * finite differences, the gradient contract (dw/db accumulate: two backward calls give 2x;
 * dinp/da/db overwrite: outputs prefilled with NaN; NULL gradients skipped), and op_ vs _ref on
 * larger random shapes that take the other code paths (several bias blocks, threaded GEMMs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/matmul.h"
#include "tests/testutil.h"

/* fp32 GEMM vs torch's fp32 GEMM: different summation orders, K <= 128, |values| <= ~2. */
#define ATOL 1e-5f
#define RTOL 1e-4f

static struct sg_ctx ctx;

static float *falloc(int64_t n)
{
    return sg_xmalloc_aligned(sizeof(float) * (size_t)(n ? n : 1));
}

static void fill_nan(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
}

static void scaled(float *dst, const float *src, int64_t n, float s)
{
    for (int64_t i = 0; i < n; i++) dst[i] = s * src[i];
}

/* ---- linear ------------------------------------------------------------------------------- */

struct lin_case {
    int N, C, OC, bias;
    float *inp, *w, *b, *wgt; /* inputs; wgt = dout */
};

static void lin_forward(int fast, float *out, const struct lin_case *k)
{
    if (fast)
        op_linear_forward(&ctx, out, k->inp, k->w, k->b, k->N, k->C, k->OC);
    else
        linear_forward_ref(out, k->inp, k->w, k->b, k->N, k->C, k->OC);
}

static void lin_backward(int fast, float *dinp, float *dw, float *db, const struct lin_case *k)
{
    if (fast)
        op_linear_backward(&ctx, dinp, dw, db, k->wgt, k->inp, k->w, k->N, k->C, k->OC);
    else
        linear_backward_ref(dinp, dw, db, k->wgt, k->inp, k->w, k->N, k->C, k->OC);
}

/* Finite-difference loss: L = sum(linear(inp, w, b) * wgt) in double; x is inp or w. */
static double lin_loss(void *user, const float *x)
{
    SG_UNUSED(x); /* x aliases k->inp or k->w, perturbed in place */
    const struct lin_case *k = user;
    float *out = falloc((int64_t)k->N * k->OC);
    lin_forward(1, out, k);
    double l = sg_test_dot(out, k->wgt, (int64_t)k->N * k->OC);
    sg_afree(out);
    return l;
}

/* Forward, backward twice (accumulation), NULL skipping, for one path. */
static void lin_check_path(int fast, const struct lin_case *k, const char *p,
                           const struct sg_st_file *ref)
{
    const char *path = fast ? "op" : "ref";
    char lab[160], nm[128];
    int64_t nout = (int64_t)k->N * k->OC, ninp = (int64_t)k->N * k->C, nw = (int64_t)k->OC * k->C;
    snprintf(nm, sizeof nm, "%s.out", p);
    float *want_out = sg_test_ref(ref, nm, nout);
    snprintf(nm, sizeof nm, "%s.dinp", p);
    float *want_dinp = sg_test_ref(ref, nm, ninp);
    snprintf(nm, sizeof nm, "%s.dw", p);
    float *want_dw = sg_test_ref(ref, nm, nw);
    float *want_db = NULL;
    if (k->bias) {
        snprintf(nm, sizeof nm, "%s.db", p);
        want_db = sg_test_ref(ref, nm, k->OC);
    }
    float *out = falloc(nout), *dinp = falloc(ninp), *dw = falloc(nw), *db = falloc(k->OC);
    float *twice = falloc(nw > k->OC ? nw : k->OC);

    fill_nan(out, nout);
    lin_forward(fast, out, k);
    snprintf(lab, sizeof lab, "%s linear_forward %s", path, p);
    sg_test_close(lab, out, want_out, nout, ATOL, RTOL);

    fill_nan(dinp, ninp);
    memset(dw, 0, sizeof(float) * (size_t)nw);
    memset(db, 0, sizeof(float) * (size_t)k->OC);
    lin_backward(fast, dinp, dw, k->bias ? db : NULL, k);
    snprintf(lab, sizeof lab, "%s linear_backward %s dinp", path, p);
    sg_test_close(lab, dinp, want_dinp, ninp, ATOL, RTOL);
    snprintf(lab, sizeof lab, "%s linear_backward %s dw", path, p);
    sg_test_close(lab, dw, want_dw, nw, ATOL, RTOL);
    if (k->bias) {
        snprintf(lab, sizeof lab, "%s linear_backward %s db", path, p);
        sg_test_close(lab, db, want_db, k->OC, ATOL, RTOL);
    }
    /* Second call: dinp overwritten (unchanged), dw/db accumulate to 2x. */
    lin_backward(fast, dinp, dw, k->bias ? db : NULL, k);
    snprintf(lab, sizeof lab, "%s linear_backward %s dinp overwritten on 2nd call", path, p);
    sg_test_close(lab, dinp, want_dinp, ninp, ATOL, RTOL);
    scaled(twice, want_dw, nw, 2.0f);
    snprintf(lab, sizeof lab, "%s linear_backward %s dw accumulates (2 calls = 2x)", path, p);
    sg_test_close(lab, dw, twice, nw, 2 * ATOL, RTOL);
    if (k->bias) {
        scaled(twice, want_db, k->OC, 2.0f);
        snprintf(lab, sizeof lab, "%s linear_backward %s db accumulates (2 calls = 2x)", path, p);
        sg_test_close(lab, db, twice, k->OC, 2 * ATOL, RTOL);
        /* NULL dinp and dw: only db is touched. */
        memset(db, 0, sizeof(float) * (size_t)k->OC);
        lin_backward(fast, NULL, NULL, db, k);
        snprintf(lab, sizeof lab, "%s linear_backward %s db alone (dinp=dw=NULL)", path, p);
        sg_test_close(lab, db, want_db, k->OC, ATOL, RTOL);
    }
    fill_nan(dinp, ninp);
    lin_backward(fast, dinp, NULL, NULL, k);
    snprintf(lab, sizeof lab, "%s linear_backward %s dinp alone (dw=db=NULL)", path, p);
    sg_test_close(lab, dinp, want_dinp, ninp, ATOL, RTOL);

    sg_afree(want_out);
    sg_afree(want_dinp);
    sg_afree(want_dw);
    if (want_db) sg_afree(want_db);
    sg_afree(out);
    sg_afree(dinp);
    sg_afree(dw);
    sg_afree(db);
    sg_afree(twice);
}

static void lin_fd(struct lin_case *k, const char *p)
{
    int64_t ninp = (int64_t)k->N * k->C, nw = (int64_t)k->OC * k->C;
    float *dinp = falloc(ninp), *dw = falloc(nw);
    memset(dw, 0, sizeof(float) * (size_t)nw);
    lin_backward(1, dinp, dw, NULL, k);
    char lab[160];
    /* L is linear in inp and w: central differences are exact up to fp32 rounding of out. */
    snprintf(lab, sizeof lab, "op linear %s dinp", p);
    sg_test_fd(lab, lin_loss, k, k->inp, ninp, dinp, 40, 1e-2f, 1e-3f, 1e-3f);
    snprintf(lab, sizeof lab, "op linear %s dw", p);
    sg_test_fd(lab, lin_loss, k, k->w, nw, dw, 40, 1e-2f, 1e-3f, 1e-3f);
    sg_afree(dinp);
    sg_afree(dw);
}

static void test_linear_case(const struct sg_st_file *ref, int N, int C, int OC, int bias)
{
    char p[64], nm[128];
    snprintf(p, sizeof p, "lin_%dx%dx%d%s", N, C, OC, bias ? "" : "_nobias");
    struct lin_case k = {N, C, OC, bias, NULL, NULL, NULL, NULL};
    snprintf(nm, sizeof nm, "%s.inp", p);
    k.inp = sg_test_ref(ref, nm, (int64_t)N * C);
    snprintf(nm, sizeof nm, "%s.w", p);
    k.w = sg_test_ref(ref, nm, (int64_t)OC * C);
    snprintf(nm, sizeof nm, "%s.wgt", p);
    k.wgt = sg_test_ref(ref, nm, (int64_t)N * OC);
    if (bias) {
        snprintf(nm, sizeof nm, "%s.b", p);
        k.b = sg_test_ref(ref, nm, OC);
    }
    lin_check_path(0, &k, p, ref);
    lin_check_path(1, &k, p, ref);
    lin_fd(&k, p);
    sg_afree(k.inp);
    sg_afree(k.w);
    sg_afree(k.wgt);
    if (k.b) sg_afree(k.b);
}

/* op_ vs _ref on a random shape with several bias column blocks and a tail. */
static void test_linear_random(int N, int C, int OC)
{
    int64_t nout = (int64_t)N * OC, ninp = (int64_t)N * C, nw = (int64_t)OC * C;
    float *inp = falloc(ninp), *w = falloc(nw), *b = falloc(OC), *dout = falloc(nout);
    sg_test_fill(inp, ninp, 11, -1, 1);
    sg_test_fill(w, nw, 12, -0.1f, 0.1f);
    sg_test_fill(b, OC, 13, -1, 1);
    sg_test_fill(dout, nout, 14, -1, 1);
    float *o1 = falloc(nout), *o2 = falloc(nout), *di1 = falloc(ninp), *di2 = falloc(ninp);
    float *dw1 = falloc(nw), *dw2 = falloc(nw), *db1 = falloc(OC), *db2 = falloc(OC);
    sg_test_fill(dw1, nw, 15, -1, 1); /* nonzero start: accumulation onto existing grads */
    memcpy(dw2, dw1, sizeof(float) * (size_t)nw);
    sg_test_fill(db1, OC, 16, -1, 1);
    memcpy(db2, db1, sizeof(float) * (size_t)OC);
    op_linear_forward(&ctx, o1, inp, w, b, N, C, OC);
    linear_forward_ref(o2, inp, w, b, N, C, OC);
    op_linear_backward(&ctx, di1, dw1, db1, dout, inp, w, N, C, OC);
    linear_backward_ref(di2, dw2, db2, dout, inp, w, N, C, OC);
    char lab[128];
    snprintf(lab, sizeof lab, "op vs ref linear %dx%dx%d out", N, C, OC);
    sg_test_close(lab, o1, o2, nout, 1e-4f, RTOL);
    snprintf(lab, sizeof lab, "op vs ref linear %dx%dx%d dinp", N, C, OC);
    sg_test_close(lab, di1, di2, ninp, 1e-4f, RTOL);
    /* dw, db sum N = 300 products/terms of magnitude <= 1 in fp32. */
    snprintf(lab, sizeof lab, "op vs ref linear %dx%dx%d dw (+= onto nonzero)", N, C, OC);
    sg_test_close(lab, dw1, dw2, nw, 1e-4f, RTOL);
    snprintf(lab, sizeof lab, "op vs ref linear %dx%dx%d db (+= onto nonzero)", N, C, OC);
    sg_test_close(lab, db1, db2, OC, 1e-4f, RTOL);
    float *bufs[] = {inp, w, b, dout, o1, o2, di1, di2, dw1, dw2, db1, db2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

/* ---- matmul ------------------------------------------------------------------------------- */

struct mm_case {
    int batch, M, K, N;
    float *a, *b, *wgt;
};

static double mm_loss(void *user, const float *x)
{
    SG_UNUSED(x);
    const struct mm_case *k = user;
    int64_t nout = (int64_t)k->batch * k->M * k->N;
    float *out = falloc(nout);
    op_matmul_forward(&ctx, out, k->a, k->b, k->batch, k->M, k->K, k->N);
    double l = sg_test_dot(out, k->wgt, nout);
    sg_afree(out);
    return l;
}

static void mm_check_path(int fast, const struct mm_case *k, const char *p,
                          const struct sg_st_file *ref)
{
    const char *path = fast ? "op" : "ref";
    char lab[160], nm[128];
    int64_t nout = (int64_t)k->batch * k->M * k->N, na = (int64_t)k->batch * k->M * k->K;
    int64_t nb = (int64_t)k->batch * k->K * k->N;
    snprintf(nm, sizeof nm, "%s.out", p);
    float *want_out = sg_test_ref(ref, nm, nout);
    snprintf(nm, sizeof nm, "%s.da", p);
    float *want_da = sg_test_ref(ref, nm, na);
    snprintf(nm, sizeof nm, "%s.db", p);
    float *want_db = sg_test_ref(ref, nm, nb);
    float *out = falloc(nout), *da = falloc(na), *db = falloc(nb);
    fill_nan(out, nout);
    fill_nan(da, na);
    fill_nan(db, nb);
    if (fast) {
        op_matmul_forward(&ctx, out, k->a, k->b, k->batch, k->M, k->K, k->N);
        op_matmul_backward(&ctx, da, db, k->wgt, k->a, k->b, k->batch, k->M, k->K, k->N);
    } else {
        matmul_forward_ref(out, k->a, k->b, k->batch, k->M, k->K, k->N);
        matmul_backward_ref(da, db, k->wgt, k->a, k->b, k->batch, k->M, k->K, k->N);
    }
    snprintf(lab, sizeof lab, "%s matmul_forward %s", path, p);
    sg_test_close(lab, out, want_out, nout, ATOL, RTOL);
    snprintf(lab, sizeof lab, "%s matmul_backward %s da", path, p);
    sg_test_close(lab, da, want_da, na, ATOL, RTOL);
    snprintf(lab, sizeof lab, "%s matmul_backward %s db", path, p);
    sg_test_close(lab, db, want_db, nb, ATOL, RTOL);
    /* NULL skipping, and overwrite (not accumulate) on a second call. */
    fill_nan(db, nb);
    if (fast)
        op_matmul_backward(&ctx, da, NULL, k->wgt, k->a, k->b, k->batch, k->M, k->K, k->N);
    else
        matmul_backward_ref(da, NULL, k->wgt, k->a, k->b, k->batch, k->M, k->K, k->N);
    snprintf(lab, sizeof lab, "%s matmul_backward %s da overwritten, db=NULL untouched", path, p);
    sg_test_close(lab, da, want_da, na, ATOL, RTOL);
    int untouched = 1;
    for (int64_t i = 0; i < nb; i++) untouched &= isnan(db[i]);
    sg_test_true(lab, untouched);
    if (fast)
        op_matmul_backward(&ctx, NULL, db, k->wgt, k->a, k->b, k->batch, k->M, k->K, k->N);
    else
        matmul_backward_ref(NULL, db, k->wgt, k->a, k->b, k->batch, k->M, k->K, k->N);
    snprintf(lab, sizeof lab, "%s matmul_backward %s db alone (da=NULL)", path, p);
    sg_test_close(lab, db, want_db, nb, ATOL, RTOL);
    sg_afree(want_out);
    sg_afree(want_da);
    sg_afree(want_db);
    sg_afree(out);
    sg_afree(da);
    sg_afree(db);
}

static void test_matmul_case(const struct sg_st_file *ref, int batch, int M, int K, int N)
{
    char p[64], nm[128], lab[160];
    snprintf(p, sizeof p, "mm_%dx%dx%dx%d", batch, M, K, N);
    struct mm_case k = {batch, M, K, N, NULL, NULL, NULL};
    int64_t na = (int64_t)batch * M * K, nb = (int64_t)batch * K * N;
    snprintf(nm, sizeof nm, "%s.a", p);
    k.a = sg_test_ref(ref, nm, na);
    snprintf(nm, sizeof nm, "%s.b", p);
    k.b = sg_test_ref(ref, nm, nb);
    snprintf(nm, sizeof nm, "%s.wgt", p);
    k.wgt = sg_test_ref(ref, nm, (int64_t)batch * M * N);
    mm_check_path(0, &k, p, ref);
    mm_check_path(1, &k, p, ref);
    float *da = falloc(na), *db = falloc(nb);
    op_matmul_backward(&ctx, da, db, k.wgt, k.a, k.b, batch, M, K, N);
    snprintf(lab, sizeof lab, "op matmul %s da", p);
    sg_test_fd(lab, mm_loss, &k, k.a, na, da, 40, 1e-2f, 1e-3f, 1e-3f);
    snprintf(lab, sizeof lab, "op matmul %s db", p);
    sg_test_fd(lab, mm_loss, &k, k.b, nb, db, 40, 1e-2f, 1e-3f, 1e-3f);
    sg_afree(da);
    sg_afree(db);
    sg_afree(k.a);
    sg_afree(k.b);
    sg_afree(k.wgt);
}

/* op_ vs _ref on random shapes: batch-parallel and sequential-threaded GEMM paths. */
static void test_matmul_random(int batch, int M, int K, int N)
{
    int64_t na = (int64_t)batch * M * K, nb = (int64_t)batch * K * N, no = (int64_t)batch * M * N;
    float *a = falloc(na), *b = falloc(nb), *dout = falloc(no);
    sg_test_fill(a, na, 21, -1, 1);
    sg_test_fill(b, nb, 22, -1, 1);
    sg_test_fill(dout, no, 23, -1, 1);
    float *o1 = falloc(no), *o2 = falloc(no), *da1 = falloc(na), *da2 = falloc(na);
    float *db1 = falloc(nb), *db2 = falloc(nb);
    op_matmul_forward(&ctx, o1, a, b, batch, M, K, N);
    matmul_forward_ref(o2, a, b, batch, M, K, N);
    op_matmul_backward(&ctx, da1, db1, dout, a, b, batch, M, K, N);
    matmul_backward_ref(da2, db2, dout, a, b, batch, M, K, N);
    char lab[128];
    /* sums of up to 200 products of magnitude <= 1: fp32 vs double accumulation. */
    snprintf(lab, sizeof lab, "op vs ref matmul %dx%dx%dx%d out", batch, M, K, N);
    sg_test_close(lab, o1, o2, no, 1e-4f, RTOL);
    snprintf(lab, sizeof lab, "op vs ref matmul %dx%dx%dx%d da", batch, M, K, N);
    sg_test_close(lab, da1, da2, na, 1e-4f, RTOL);
    snprintf(lab, sizeof lab, "op vs ref matmul %dx%dx%dx%d db", batch, M, K, N);
    sg_test_close(lab, db1, db2, nb, 1e-4f, RTOL);
    float *bufs[] = {a, b, dout, o1, o2, da1, da2, db1, db2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

int main(void)
{
    if (sg_ctx_init(&ctx, SG_DEVICE_CPU, 0, 2) != 0) {
        fprintf(stderr, "FAIL: ctx init: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "matmul.safetensors");
    test_linear_case(&ref, 7, 13, 5, 1);
    test_linear_case(&ref, 7, 13, 5, 0);
    test_linear_case(&ref, 32, 64, 48, 1);
    test_linear_case(&ref, 1, 3, 1, 1);
    test_linear_case(&ref, 19, 128, 33, 1);
    test_matmul_case(&ref, 3, 5, 7, 4);
    test_matmul_case(&ref, 2, 16, 32, 8);
    test_matmul_case(&ref, 1, 1, 9, 1);
    test_matmul_case(&ref, 4, 13, 6, 11);
    sg_st_close(&ref);
    test_linear_random(300, 200, 130);
    test_matmul_random(5, 17, 40, 23);    /* many small items: OpenMP over the batch */
    test_matmul_random(3, 200, 120, 190); /* few large items: threaded GEMMs in sequence */
    sg_ctx_free(&ctx);
    return sg_test_summary("test_matmul");
}
