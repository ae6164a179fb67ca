/*
 * tests/test_attention.c — multi-head attention core (ops/attention.h), forward (out and the
 * saved softmax att) and backward (dqkv), for both the _ref loops and the op_ fast path (CPU
 * ctx), against PyTorch autograd (tests/ref/gen_attention.py, itself cross-checked against
 * F.multi_head_attention_forward) on causal and full masks, odd and text-like shapes
 * (T = 77), plus finite differences of the backward, the overwrite contract (outputs, att and
 * scratch prefilled with NaN) and op_ vs _ref on a ViT-like head size (hs = 64).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/attention.h"
#include "tests/testutil.h"

/* fp32 GEMMs + the vectorised exp (a few ulp) vs torch fp32; all values are O(1). */
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

struct att_case {
    int B, T, C, NH, causal;
    float *qkv, *wgt; /* wgt = dout */
};

static int64_t n_qkv(const struct att_case *k)
{
    return (int64_t)k->B * k->T * 3 * k->C;
}
static int64_t n_out(const struct att_case *k)
{
    return (int64_t)k->B * k->T * k->C;
}
static int64_t n_att(const struct att_case *k)
{
    return (int64_t)k->B * k->NH * k->T * k->T;
}

/* Finite-difference loss L = sum(out * wgt) (double-accumulating reference forward). */
static double att_loss(void *user, const float *x)
{
    SG_UNUSED(x); /* x aliases k->qkv, perturbed in place */
    const struct att_case *k = user;
    float *out = falloc(n_out(k)), *att = falloc(n_att(k));
    attention_forward_ref(out, att, k->qkv, k->B, k->T, k->C, k->NH, k->causal);
    double l = sg_test_dot(out, k->wgt, n_out(k));
    sg_afree(out);
    sg_afree(att);
    return l;
}

static void run_path(int fast, const struct att_case *k, float *out, float *att, float *dqkv)
{
    fill_nan(out, n_out(k));
    fill_nan(att, n_att(k));
    fill_nan(dqkv, n_qkv(k));
    if (fast) {
        float *scratch = falloc(n_att(k));
        fill_nan(scratch, n_att(k));
        op_attention_forward(&ctx, out, att, k->qkv, k->B, k->T, k->C, k->NH, k->causal);
        op_attention_backward(&ctx, dqkv, scratch, k->wgt, k->qkv, att, k->B, k->T, k->C, k->NH,
                              k->causal);
        sg_afree(scratch);
    } else {
        attention_forward_ref(out, att, k->qkv, k->B, k->T, k->C, k->NH, k->causal);
        attention_backward_ref(dqkv, k->wgt, k->qkv, att, k->B, k->T, k->C, k->NH, k->causal);
    }
}

static void test_case(const struct sg_st_file *ref, int B, int T, int C, int NH, int causal)
{
    char p[96], nm[160], lab[200];
    snprintf(p, sizeof p, "att_B%d_T%d_C%d_NH%d_%s", B, T, C, NH, causal ? "causal" : "full");
    struct att_case k = {B, T, C, NH, causal, NULL, NULL};
    snprintf(nm, sizeof nm, "%s.qkv", p);
    k.qkv = sg_test_ref(ref, nm, n_qkv(&k));
    snprintf(nm, sizeof nm, "%s.wgt", p);
    k.wgt = sg_test_ref(ref, nm, n_out(&k));
    snprintf(nm, sizeof nm, "%s.out", p);
    float *want_out = sg_test_ref(ref, nm, n_out(&k));
    snprintf(nm, sizeof nm, "%s.att", p);
    float *want_att = sg_test_ref(ref, nm, n_att(&k));
    snprintf(nm, sizeof nm, "%s.dqkv", p);
    float *want_dqkv = sg_test_ref(ref, nm, n_qkv(&k));
    float *out = falloc(n_out(&k)), *att = falloc(n_att(&k)), *dqkv = falloc(n_qkv(&k));
    for (int fast = 0; fast < 2; fast++) {
        const char *path = fast ? "op" : "ref";
        run_path(fast, &k, out, att, dqkv);
        snprintf(lab, sizeof lab, "%s attention_forward %s out", path, p);
        sg_test_close(lab, out, want_out, n_out(&k), ATOL, RTOL);
        snprintf(lab, sizeof lab, "%s attention_forward %s att", path, p);
        sg_test_close(lab, att, want_att, n_att(&k), ATOL, RTOL);
        snprintf(lab, sizeof lab, "%s attention_backward %s dqkv", path, p);
        sg_test_close(lab, dqkv, want_dqkv, n_qkv(&k), ATOL, RTOL);
    }
    /* dqkv from the fast path (last in dqkv) vs central differences. eps 1e-2 keeps the fp32
     * rounding of out (~1e-7 relative, divided by 2*eps) small; the truncation error is
     * O(eps^2) times third derivatives of the softmax (peaked rows: qkv scaled up to 4). */
    snprintf(lab, sizeof lab, "op attention %s dqkv", p);
    sg_test_fd(lab, att_loss, &k, k.qkv, n_qkv(&k), dqkv, 60, 1e-2f, 2e-3f, 1e-2f);
    float *bufs[] = {k.qkv, k.wgt, want_out, want_att, want_dqkv, out, att, dqkv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

/* op_ vs _ref on a random ViT-like head size (hs = 64) and a T that is not a multiple of 8. */
static void test_random(int B, int T, int C, int NH, int causal)
{
    struct att_case k = {B, T, C, NH, causal, NULL, NULL};
    k.qkv = falloc(n_qkv(&k));
    k.wgt = falloc(n_out(&k));
    sg_test_fill(k.qkv, n_qkv(&k), 31, -1.5f, 1.5f);
    sg_test_fill(k.wgt, n_out(&k), 32, -1, 1);
    float *o1 = falloc(n_out(&k)), *a1 = falloc(n_att(&k)), *d1 = falloc(n_qkv(&k));
    float *o2 = falloc(n_out(&k)), *a2 = falloc(n_att(&k)), *d2 = falloc(n_qkv(&k));
    run_path(1, &k, o1, a1, d1);
    run_path(0, &k, o2, a2, d2);
    char lab[160];
    snprintf(lab, sizeof lab, "op vs ref attention B%d T%d C%d NH%d %s", B, T, C, NH,
             causal ? "causal" : "full");
    char l2[200];
    snprintf(l2, sizeof l2, "%s out", lab);
    sg_test_close(l2, o1, o2, n_out(&k), ATOL, RTOL);
    snprintf(l2, sizeof l2, "%s att", lab);
    sg_test_close(l2, a1, a2, n_att(&k), ATOL, RTOL);
    snprintf(l2, sizeof l2, "%s dqkv", lab);
    sg_test_close(l2, d1, d2, n_qkv(&k), ATOL, RTOL);
    float *bufs[] = {k.qkv, k.wgt, o1, a1, d1, o2, a2, d2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

int main(void)
{
    if (sg_ctx_init(&ctx, SG_DEVICE_CPU, 0, 2) != 0) {
        fprintf(stderr, "FAIL: ctx init: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "attention.safetensors");
    test_case(&ref, 2, 5, 12, 3, 1);
    test_case(&ref, 2, 5, 12, 3, 0);
    test_case(&ref, 3, 8, 16, 2, 0);
    test_case(&ref, 3, 8, 16, 2, 1);
    test_case(&ref, 2, 77, 32, 4, 1);
    test_case(&ref, 1, 17, 64, 2, 0);
    test_case(&ref, 1, 1, 4, 1, 1);
    test_case(&ref, 2, 9, 8, 8, 0);
    sg_st_close(&ref);
    test_random(2, 100, 128, 2, 0);
    test_random(2, 77, 128, 2, 1);
    sg_ctx_free(&ctx);
    return sg_test_summary("test_attention");
}
