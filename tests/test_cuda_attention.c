/*
 * tests/test_cuda_attention.c — the CUDA attention core (ops/cuda/attention.cu) against the CPU:
 * op_attention_forward (out and the saved softmax att) and op_attention_backward (dqkv) on a CUDA
 * context vs the same ops on a CPU context (the OpenMP/GEMM fast path, itself checked against
 * PyTorch in test_attention) and vs the double-accumulating attention_*_ref loops.
 * Shapes (B,T,C,NH): (2,5,8,2) both masks, (3,77,512,8) causal (text), (4,50,768,12) full
 * (ViT-B/32), (2,197,768,12) full (ViT-B/16), odd T / odd head size (3,33,96,3) causal,
 * (2,13,15,3) full (hs = 5: scalar permute path), (1,1,4,1) causal, and (2,31,64,2) with every
 * device pointer 4 bytes off 16-byte alignment (scalar path). qkv ~ U(-2,2) (scores with std
 * ~1.3: peaked rows), dout ~ U(-1,1).
 * Also: outputs, att and the backward scratch prefilled with NaN (everything overwritten);
 * causal att exactly 0 above the diagonal; backward leaves qkv/att/dout untouched; a second
 * forward+backward gives bit-identical out/att/dqkv (no atomics; cuBLAS deterministic).
 * Exits 77 (ctest SKIP) when no CUDA GPU is visible.
 *
 * Tolerances (elementwise |got-want| <= rel*rms(want) + rtol*|want|, plus a bound on the
 * rms-relative error ||got-want|| / ||want||), the same against the CPU op and the reference:
 *  - fp32 (CUBLAS_COMPUTE_32F, TF32 off): GEMM rounding ~ eps*sqrt(K)*rms with K <= 197
 *    (eps = 6e-8: ~1e-6 relative), softmax in fp32 with expf (a few ulp), so out/att/dqkv are
 *    within ~1e-6 relative of double; the CPU op adds its own ~1e-6. rel 1e-4 and rtol 1e-4
 *    (test_cuda_ops's GEMM_REL) leave a >= 20x margin on the worst element; rms-rel <= 2e-5.
 *  - bf16 (CUBLAS_COMPUTE_32F_FAST_16BF: operands rounded to bf16, unit roundoff 2^-9 = 2e-3,
 *    fp32 accumulation). Each GEMM output gets ~2^-9*sqrt(2) relative noise per term, averaged
 *    over K terms; the scores' error feeds the softmax, and backward chains three such GEMMs.
 *    A C emulation of this pipeline (operands rounded to bf16, double math, these shapes and
 *    input ranges) gives rms-rel errors of 2-4e-3 for out/att/dqkv and worst elements within
 *    0.025*rms + 0.05*|want|; with truncating (not rounding) conversion 1.6e-2 and 0.05*rms.
 *    Bounds: rel 0.1, rtol 0.05, rms-rel 3e-2 (a wrong index or mask gives O(1) errors).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/attention.h"
#include "tests/testutil.h"

struct tol {
    float rel, rtol, rmsrel;
};
static const struct tol TOL_FP32 = {1e-4f, 1e-4f, 2e-5f};
static const struct tol TOL_BF16 = {0.1f, 0.05f, 3e-2f};

static struct sg_ctx cpu, gpu;

/* ---- helpers ------------------------------------------------------------------------------ */

static float *host_rand(int64_t n, uint64_t seed, float lo, float hi)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)n);
    sg_test_fill(x, n, seed, lo, hi);
    return x;
}

static float *host_nan(int64_t n)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* Device buffer of n floats starting `off` floats into a fresh allocation (off = 1 breaks the
 * 16-byte alignment), prefilled from h (or NaN when h is NULL). Free with dev_free(p - off). */
static float *dev_buf(const float *h, int64_t n, int off)
{
    float *base = sg_dev_alloc(&gpu, sizeof(float) * (size_t)(n + off));
    float *fill = h ? NULL : host_nan(n);
    sg_memcpy_h2d(&gpu, base + off, h ? h : fill, sizeof(float) * (size_t)n);
    free(fill);
    return base + off;
}

static float *from_dev(const float *d, int64_t n)
{
    float *h = sg_xmalloc(sizeof(float) * (size_t)n);
    sg_memcpy_d2h(&gpu, h, d, sizeof(float) * (size_t)n);
    return h;
}

/* Elementwise closeness (printing the first mismatches with index, got, want) and the
 * rms-relative error, reported with the worst element. */
static void check(const char *label, const float *got, const float *want, int64_t n, struct tol t)
{
    double s2 = 0.0, d2 = 0.0, maxd = 0.0;
    int64_t imax = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (isnan(got[i])) d = INFINITY;
        s2 += (double)want[i] * want[i];
        d2 += d * d;
        if (d > maxd) maxd = d, imax = i;
    }
    double rmsw = sqrt(s2 / (double)n), rmsrel = s2 > 0 ? sqrt(d2 / s2) : sqrt(d2);
    printf("     %s: rms(want) %.3g, max abs err %.3g at [%lld] (got %.9g want %.9g), rms-rel err "
           "%.3g\n",
           label, rmsw, maxd, (long long)imax, got[imax], want[imax], rmsrel);
    sg_test_close(label, got, want, n, (float)SG_MAX(t.rel * rmsw, 1e-7), t.rtol);
    char lab[256];
    snprintf(lab, sizeof lab, "%s rms-rel err %.3g <= %g", label, rmsrel, t.rmsrel);
    sg_test_true(lab, rmsrel <= t.rmsrel);
}

static void check_bits(const char *label, const float *d, const float *h, int64_t n)
{
    float *got = from_dev(d, n);
    int64_t first = -1;
    for (int64_t i = 0; i < n && first < 0; i++)
        if (memcmp(&got[i], &h[i], sizeof(float)) != 0) first = i;
    if (first >= 0)
        fprintf(stderr, "  %s: first differing element [%lld]: %.9g vs %.9g\n", label,
                (long long)first, got[first], h[first]);
    sg_test_true(label, first < 0);
    free(got);
}

/* ---- one case ----------------------------------------------------------------------------- */

static void test_case(int B, int T, int C, int NH, int causal, enum sg_precision prec, int off)
{
    char p[128], lab[256];
    snprintf(p, sizeof p, "B%d T%d C%d NH%d %s %s%s", B, T, C, NH, causal ? "causal" : "full",
             prec == SG_PREC_BF16 ? "bf16" : "fp32", off ? " misaligned" : "");
    struct tol t = prec == SG_PREC_BF16 ? TOL_BF16 : TOL_FP32;
    int64_t nq = (int64_t)B * T * 3 * C, no = (int64_t)B * T * C, na = (int64_t)B * NH * T * T;
    float *qkv = host_rand(nq, 100 + (uint64_t)T, -2.0f, 2.0f);
    float *dout = host_rand(no, 200 + (uint64_t)C, -1.0f, 1.0f);

    /* references: double loops, and the CPU op (its att feeds its own backward) */
    float *r_out = sg_xmalloc(sizeof(float) * no), *r_att = sg_xmalloc(sizeof(float) * na);
    float *r_dqkv = sg_xmalloc(sizeof(float) * nq);
    attention_forward_ref(r_out, r_att, qkv, B, T, C, NH, causal);
    attention_backward_ref(r_dqkv, dout, qkv, r_att, B, T, C, NH, causal);
    float *c_out = sg_xmalloc(sizeof(float) * no), *c_att = sg_xmalloc(sizeof(float) * na);
    float *c_dqkv = sg_xmalloc(sizeof(float) * nq), *c_scr = sg_xmalloc(sizeof(float) * na);
    op_attention_forward(&cpu, c_out, c_att, qkv, B, T, C, NH, causal);
    op_attention_backward(&cpu, c_dqkv, c_scr, dout, qkv, c_att, B, T, C, NH, causal);

    /* GPU: outputs and scratch NaN-prefilled */
    gpu.precision = prec;
    float *d_qkv = dev_buf(qkv, nq, off), *d_dout = dev_buf(dout, no, off);
    float *d_out = dev_buf(NULL, no, off), *d_att = dev_buf(NULL, na, off);
    float *d_dqkv = dev_buf(NULL, nq, off), *d_scr = dev_buf(NULL, na, off);
    op_attention_forward(&gpu, d_out, d_att, d_qkv, B, T, C, NH, causal);
    float *g_out = from_dev(d_out, no), *g_att = from_dev(d_att, na); /* before backward */
    op_attention_backward(&gpu, d_dqkv, d_scr, d_dout, d_qkv, d_att, B, T, C, NH, causal);
    float *g_dqkv = from_dev(d_dqkv, nq);

    const char *what[3] = {"out", "att", "dqkv"};
    const float *got[3] = {g_out, g_att, g_dqkv}, *ref[3] = {r_out, r_att, r_dqkv};
    const float *cpuv[3] = {c_out, c_att, c_dqkv};
    int64_t cnt[3] = {no, na, nq};
    for (int i = 0; i < 3; i++) {
        snprintf(lab, sizeof lab, "%s %s vs cpu op", p, what[i]);
        check(lab, got[i], cpuv[i], cnt[i], t);
        snprintf(lab, sizeof lab, "%s %s vs ref", p, what[i]);
        check(lab, got[i], ref[i], cnt[i], t);
    }
    if (causal) { /* masked probabilities are exactly 0 (not tiny) */
        int64_t bad = 0;
        for (int64_t r = 0; r < (int64_t)B * NH * T; r++)
            for (int j = (int)(r % T) + 1; j < T; j++) bad += g_att[r * T + j] != 0.0f;
        snprintf(lab, sizeof lab, "%s att masked entries exactly 0 (%lld not)", p, (long long)bad);
        sg_test_true(lab, bad == 0);
    }
    snprintf(lab, sizeof lab, "%s backward leaves qkv untouched", p);
    check_bits(lab, d_qkv, qkv, nq);
    snprintf(lab, sizeof lab, "%s backward leaves dout untouched", p);
    check_bits(lab, d_dout, dout, no);
    snprintf(lab, sizeof lab, "%s backward leaves att untouched", p);
    check_bits(lab, d_att, g_att, na);

    /* rerun into fresh NaN buffers: bit-identical */
    float *d_out2 = dev_buf(NULL, no, off), *d_att2 = dev_buf(NULL, na, off);
    float *d_dqkv2 = dev_buf(NULL, nq, off);
    op_attention_forward(&gpu, d_out2, d_att2, d_qkv, B, T, C, NH, causal);
    op_attention_backward(&gpu, d_dqkv2, d_scr, d_dout, d_qkv, d_att2, B, T, C, NH, causal);
    for (int i = 0; i < 3; i++) {
        const float *d2[3] = {d_out2, d_att2, d_dqkv2};
        snprintf(lab, sizeof lab, "%s %s bit-identical rerun", p, what[i]);
        check_bits(lab, d2[i], got[i], cnt[i]);
    }

    float *dev[] = {d_qkv, d_dout, d_out, d_att, d_dqkv, d_scr, d_out2, d_att2, d_dqkv2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(&gpu, dev[i] - off);
    float *host[] = {qkv,   dout,   r_out, r_att, r_dqkv, c_out,
                     c_att, c_dqkv, c_scr, g_out, g_att,  g_dqkv};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    gpu.precision = SG_PREC_FP32;
}

int main(void)
{
    if (!sg_cuda_available()) {
        printf("SKIP test_cuda_attention: no CUDA GPU visible\n");
        return SG_TEST_SKIP;
    }
    if (sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 2) != 0 ||
        sg_ctx_init(&gpu, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: ctx init: %s\n", sg_last_error());
        return 1;
    }
    const enum sg_precision F = SG_PREC_FP32, H = SG_PREC_BF16;
    test_case(2, 5, 8, 2, 1, F, 0);
    test_case(2, 5, 8, 2, 0, F, 0);
    test_case(3, 77, 512, 8, 1, F, 0);
    test_case(4, 50, 768, 12, 0, F, 0);
    test_case(2, 197, 768, 12, 0, F, 0);
    test_case(3, 33, 96, 3, 1, F, 0);
    test_case(2, 13, 15, 3, 0, F, 0);
    test_case(1, 1, 4, 1, 1, F, 0);
    test_case(2, 31, 64, 2, 1, F, 1);
    test_case(2, 5, 8, 2, 1, H, 0);
    test_case(3, 77, 512, 8, 1, H, 0);
    test_case(4, 50, 768, 12, 0, H, 0);
    test_case(2, 197, 768, 12, 0, H, 0);
    sg_ctx_free(&gpu);
    sg_ctx_free(&cpu);
    return sg_test_summary("test_cuda_attention");
}
