/*
 * tests/test_cuda_ops.c — CUDA ops against the CPU references (the ggml test-backend-ops layer):
 * linear / batched matmul, activations, LayerNorm, forward and backward, on odd and round shapes.
 * Inputs are random (sg_test_fill); each op runs through op_* on a CUDA context (inputs copied
 * host-to-device, results back) and is compared with the *_ref plain loops (double accumulation).
 * Also checks the gradient contract (parameter grads accumulate over two backward calls; activation
 * grads overwrite NaN-filled buffers), NULL-skips, in-place activations, and run-to-run bit
 * equality of the (atomic-free) reductions. Prints GEMM TFLOP/s as information only.
 * Exits 77 (ctest SKIP) when no CUDA GPU is visible.
 *
 * Tolerances (check_dev: atol = rel * rms(ref), plus rtol * |ref|):
 *  - GEMMs and column sums (linear, matmul, LayerNorm dw/db): cuBLAS fp32 with TF32 off against
 *    a double-accumulated reference. fp32 rounding error grows like eps * sqrt(K) * rms(out)
 *    (eps = 6e-8; K <= 6304 here: <= 5e-6 * rms), so rel = 1e-4 leaves a >= 20x margin for the
 *    worst of ~1e6 elements; rtol 1e-4. TF32 (unit roundoff 5e-4) fails this, on purpose.
 *  - LayerNorm out/dinp: per-row float sums of C terms (lane partials, then a warp tree) against
 *    double: ~1e-6 relative; rel 1e-5, rtol 1e-4. mean/rstd: rel 1e-6, rtol 1e-5 / 1e-4.
 *  - Activations: CUDA's erfcf/expf in float vs the double reference, a few ulp of the terms
 *    (the erfc / sigmoid forms do not cancel in the x << 0 tail); where f' = Phi + x phi nearly
 *    cancels (x ~ -0.75) the result is small, so an absolute floor: rel 1e-6 of rms (~1e-6),
 *    rtol 1e-5.
 *
 * bf16 mixed precision (ctx->precision = SG_PREC_BF16, open_clip's amp_bf16: bf16 operands,
 * fp32 accumulation and output), linear and matmul forward/backward:
 *  - Tight: against the double reference computed on the bf16-rounded operands (bias and db stay
 *    fp32). A product of two bf16 values (8-bit significands) is exact in fp32, so the only error
 *    left is the fp32 accumulation (and the fp32 bias add). Measured on an H200 the max error
 *    grows about linearly with the reduction length K (tensor-core accumulation truncates
 *    rather than rounds, so the errors do not cancel like a random walk): 5.3e-6 rms at
 *    K = 768, 1.9e-5 rms at K = 3072, i.e. ~0.1 K u32 (u32 = 2^-24). rel = K u32 / 2 = K * 2^-25
 *    of rms(ref) (2.3e-5 at K = 768, 9.2e-5 at K = 3072: a >= 4x margin), rtol 1e-5, floored at
 *    4e-6 for short K (the fp32 bias / beta = 1 adds and the x2 accumulation add a few ulp).
 *    Each check prints its max error in units of rms(ref) and its tolerance.
 *  - Loose: against the plain fp32 reference. Rounding each operand to bf16 (unit roundoff
 *    u = 2^-8 = 3.9e-3) perturbs each product by a relative error <= 2u with random sign, so the
 *    error of a K-term dot product is ~ sqrt(2/3) u * rms(out) (rms), about 4u at the extreme of
 *    ~1e6 elements: rel 8u = 2^-5 of rms(ref), rtol 2u.
 *  - Also: bit-identical reruns, dinp alone equals dinp of the full call, pointers offset by one
 *    float (4-byte alignment: cuBLASLt alignment preferences / GEMM fallback, scalar conversion),
 *    and the fp32 -> bf16 conversion bit for bit against a host round-to-nearest-even (ties, inf,
 *    overflow to inf, NaN, subnormals, tails of the 8-wide vector kernel, misaligned source).
 *  - Information: linear (N,C,OC) = (12800,768,3072) forward/backward TFLOP/s, fp32 vs bf16 (the
 *    bf16 timings include the operand conversions).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/activation.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "tests/testutil.h"

#define GEMM_REL 1e-4f
/* bf16 mode (see the header comment): tight = against the reference on bf16-rounded operands
 * (rel K * 2^-25 of rms for a K-term reduction), loose = against the fp32 reference (8u and 2u
 * of rms / |ref|, u = 2^-8). */
#define BF16_TIGHT_RTOL 1e-5f
#define BF16_LOOSE_REL  0.03125f
#define BF16_LOOSE_RTOL 0.0078125f

/* ---- helpers ------------------------------------------------------------------------------ */

static double rms(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* Compare a device buffer with a host reference; atol = rel * rms(ref) (floored at 1e-7). */
static int check_dev(struct sg_ctx *g, const char *label, const float *d, const float *ref,
                     int64_t n, float rel, float rtol)
{
    float *h = sg_test_from_dev(g, d, n);
    float atol = (float)SG_MAX(rel * rms(ref, n), 1e-7);
    int ok = sg_test_close(label, h, ref, n, atol, rtol);
    free(h);
    return ok;
}

/* A device buffer equals a host array bit for bit. */
static void check_dev_bits(struct sg_ctx *g, const char *label, const float *d, const float *h,
                           int64_t n)
{
    float *got = sg_test_from_dev(g, d, n);
    sg_test_true(label, memcmp(got, h, sizeof(float) * (size_t)n) == 0);
    free(got);
}

/* Device buffers equal bit for bit (determinism of the reductions). */
static void check_bitequal(struct sg_ctx *g, const char *label, const float *d1, const float *d2,
                           int64_t n)
{
    float *a = sg_test_from_dev(g, d1, n), *b = sg_test_from_dev(g, d2, n);
    sg_test_true(label, memcmp(a, b, sizeof(float) * (size_t)n) == 0);
    free(a);
    free(b);
}

/* ---- linear ------------------------------------------------------------------------------- */

static void test_linear(struct sg_ctx *g, int N, int C, int OC)
{
    char lab[128];
    int64_t ni = (int64_t)N * C, nw = (int64_t)OC * C, no = (int64_t)N * OC;
    float *inp = sg_test_rand(ni, 1, -1, 1), *w = sg_test_rand(nw, 2, -1, 1),
          *b = sg_test_rand(OC, 3, -1, 1);
    float *dout = sg_test_rand(no, 4, -1, 1);
    float *dw0 = sg_test_rand(nw, 5, -1, 1), *db0 = sg_test_rand(OC, 6, -1, 1); /* initial grads */
    float *out_ref = sg_xmalloc(sizeof(float) * no), *dinp_ref = sg_xmalloc(sizeof(float) * ni);
    float *dw_ref = sg_xcalloc(nw, sizeof(float)), *db_ref = sg_xcalloc(OC, sizeof(float));
    linear_forward_ref(out_ref, inp, w, b, N, C, OC);
    linear_backward_ref(dinp_ref, dw_ref, db_ref, dout, inp, w, N, C, OC);
    /* after two backward calls from dw0/db0: dw0 + 2*dw; dinp overwritten (same both times) */
    for (int64_t i = 0; i < nw; i++) dw_ref[i] = dw0[i] + 2.0f * dw_ref[i];
    for (int i = 0; i < OC; i++) db_ref[i] = db0[i] + 2.0f * db_ref[i];

    float *d_inp = sg_test_to_dev(g, inp, ni), *d_w = sg_test_to_dev(g, w, nw),
          *d_b = sg_test_to_dev(g, b, OC);
    float *d_dout = sg_test_to_dev(g, dout, no), *d_dw = sg_test_to_dev(g, dw0, nw),
          *d_db = sg_test_to_dev(g, db0, OC);
    float *nan_o = sg_test_nan(no), *nan_i = sg_test_nan(ni);
    float *d_out = sg_test_to_dev(g, nan_o, no), *d_dinp = sg_test_to_dev(g, nan_i, ni);

    op_linear_forward(g, d_out, d_inp, d_w, d_b, N, C, OC);
    snprintf(lab, sizeof lab, "linear_fwd N=%d C=%d OC=%d", N, C, OC);
    check_dev(g, lab, d_out, out_ref, no, GEMM_REL, 1e-4f);

    op_linear_backward(g, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, N, C, OC);
    op_linear_backward(g, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, N, C, OC);
    snprintf(lab, sizeof lab, "linear_bwd dinp (overwrite) N=%d C=%d OC=%d", N, C, OC);
    check_dev(g, lab, d_dinp, dinp_ref, ni, GEMM_REL, 1e-4f);
    snprintf(lab, sizeof lab, "linear_bwd dw (accumulate x2) N=%d C=%d OC=%d", N, C, OC);
    check_dev(g, lab, d_dw, dw_ref, nw, GEMM_REL, 1e-4f);
    snprintf(lab, sizeof lab, "linear_bwd db (accumulate x2) N=%d C=%d OC=%d", N, C, OC);
    check_dev(g, lab, d_db, db_ref, OC, GEMM_REL, 1e-4f);

    /* no bias; NULL grads skipped (dw untouched when only db is asked for) */
    linear_forward_ref(out_ref, inp, w, NULL, N, C, OC);
    op_linear_forward(g, d_out, d_inp, d_w, NULL, N, C, OC);
    snprintf(lab, sizeof lab, "linear_fwd no bias N=%d C=%d OC=%d", N, C, OC);
    check_dev(g, lab, d_out, out_ref, no, GEMM_REL, 1e-4f);
    float *dw_before = sg_test_from_dev(g, d_dw, nw);
    float *db_once = sg_xmalloc(sizeof(float) * OC);
    memcpy(db_once, db_ref, sizeof(float) * OC);
    linear_backward_ref(NULL, NULL, db_once, dout, inp, w, N, C, OC);
    op_linear_backward(g, NULL, NULL, d_db, d_dout, d_inp, d_w, N, C, OC);
    snprintf(lab, sizeof lab, "linear_bwd db only, dw untouched N=%d", N);
    check_dev_bits(g, lab, d_dw, dw_before, nw);
    snprintf(lab, sizeof lab, "linear_bwd db only N=%d", N);
    check_dev(g, lab, d_db, db_once, OC, GEMM_REL, 1e-4f);

    /* determinism: the same backward from the same start gives the same bits */
    float *d_db2 = sg_test_to_dev(g, db0, OC), *d_db3 = sg_test_to_dev(g, db0, OC);
    op_linear_backward(g, NULL, NULL, d_db2, d_dout, d_inp, d_w, N, C, OC);
    op_linear_backward(g, NULL, NULL, d_db3, d_dout, d_inp, d_w, N, C, OC);
    snprintf(lab, sizeof lab, "linear_bwd db bit-identical run to run N=%d", N);
    check_bitequal(g, lab, d_db2, d_db3, OC);

    float *dev[] = {d_inp, d_w, d_b, d_dout, d_dw, d_db, d_out, d_dinp, d_db2, d_db3};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    float *host[] = {inp,      w,      b,      dout,  dw0,   db0,       out_ref,
                     dinp_ref, dw_ref, db_ref, nan_o, nan_i, dw_before, db_once};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

/* ---- batched matmul ----------------------------------------------------------------------- */

static void test_matmul(struct sg_ctx *g, int batch, int M, int K, int N)
{
    char lab[128];
    int64_t na = (int64_t)batch * M * K, nb = (int64_t)batch * K * N, no = (int64_t)batch * M * N;
    float *a = sg_test_rand(na, 11, -1, 1), *b = sg_test_rand(nb, 12, -1, 1);
    float *dout = sg_test_rand(no, 13, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * no);
    float *da_ref = sg_xmalloc(sizeof(float) * na), *db_ref = sg_xmalloc(sizeof(float) * nb);
    matmul_forward_ref(out_ref, a, b, batch, M, K, N);
    matmul_backward_ref(da_ref, db_ref, dout, a, b, batch, M, K, N);

    float *nan_o = sg_test_nan(no), *nan_a = sg_test_nan(na), *nan_b = sg_test_nan(nb);
    float *d_a = sg_test_to_dev(g, a, na), *d_b = sg_test_to_dev(g, b, nb),
          *d_dout = sg_test_to_dev(g, dout, no);
    float *d_out = sg_test_to_dev(g, nan_o, no), *d_da = sg_test_to_dev(g, nan_a, na),
          *d_db = sg_test_to_dev(g, nan_b, nb);
    op_matmul_forward(g, d_out, d_a, d_b, batch, M, K, N);
    snprintf(lab, sizeof lab, "matmul_fwd batch=%d M=%d K=%d N=%d", batch, M, K, N);
    check_dev(g, lab, d_out, out_ref, no, GEMM_REL, 1e-4f);
    /* both grads overwrite: two calls give the reference once */
    op_matmul_backward(g, d_da, d_db, d_dout, d_a, d_b, batch, M, K, N);
    op_matmul_backward(g, d_da, d_db, d_dout, d_a, d_b, batch, M, K, N);
    snprintf(lab, sizeof lab, "matmul_bwd da (overwrite) batch=%d M=%d K=%d N=%d", batch, M, K, N);
    check_dev(g, lab, d_da, da_ref, na, GEMM_REL, 1e-4f);
    snprintf(lab, sizeof lab, "matmul_bwd db (overwrite) batch=%d M=%d K=%d N=%d", batch, M, K, N);
    check_dev(g, lab, d_db, db_ref, nb, GEMM_REL, 1e-4f);

    float *dev[] = {d_a, d_b, d_dout, d_out, d_da, d_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    float *host[] = {a, b, dout, out_ref, da_ref, db_ref, nan_o, nan_a, nan_b};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

/* ---- activations -------------------------------------------------------------------------- */

/* offset (in floats) shifts the device pointers off 16-byte alignment (scalar kernel path). */
static void test_act(struct sg_ctx *g, enum sg_act act, int64_t n, int offset)
{
    char lab[160];
    const char *name = sg_act_name(act);
    float *x = sg_test_rand(n, 21 + (uint64_t)act, -6, 6), *dout = sg_test_rand(n, 31, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * n), *dinp_ref = sg_xmalloc(sizeof(float) * n);
    act_forward_ref(act, out_ref, x, n);
    act_backward_ref(act, dinp_ref, dout, x, n);

    float *nan = sg_test_nan(n + offset);
    float *base_x = sg_test_to_dev(g, nan, n + offset),
          *base_g = sg_test_to_dev(g, nan, n + offset);
    float *base_o = sg_test_to_dev(g, nan, n + offset),
          *base_d = sg_test_to_dev(g, nan, n + offset);
    float *d_x = base_x + offset, *d_g = base_g + offset, *d_o = base_o + offset;
    float *d_d = base_d + offset;
    sg_memcpy_h2d(g, d_x, x, sizeof(float) * n);
    sg_memcpy_h2d(g, d_g, dout, sizeof(float) * n);

    op_act_forward(g, act, d_o, d_x, n);
    snprintf(lab, sizeof lab, "act_fwd %s n=%lld offset=%d", name, (long long)n, offset);
    check_dev(g, lab, d_o, out_ref, n, 1e-6f, 1e-5f);
    op_act_backward(g, act, d_d, d_g, d_x, n);
    snprintf(lab, sizeof lab, "act_bwd %s n=%lld offset=%d", name, (long long)n, offset);
    check_dev(g, lab, d_d, dinp_ref, n, 1e-6f, 1e-5f);

    /* in place: backward into dout's buffer, then forward over the input */
    op_act_backward(g, act, d_g, d_g, d_x, n);
    snprintf(lab, sizeof lab, "act_bwd in place %s n=%lld", name, (long long)n);
    check_dev(g, lab, d_g, dinp_ref, n, 1e-6f, 1e-5f);
    op_act_forward(g, act, d_x, d_x, n);
    snprintf(lab, sizeof lab, "act_fwd in place %s n=%lld", name, (long long)n);
    check_dev(g, lab, d_x, out_ref, n, 1e-6f, 1e-5f);

    float *dev[] = {base_x, base_g, base_o, base_d};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    float *host[] = {x, dout, out_ref, dinp_ref, nan};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

/* ---- layernorm ---------------------------------------------------------------------------- */

static void test_layernorm(struct sg_ctx *g, int N, int C, int affine)
{
    char lab[160];
    const float eps = 1e-5f;
    int64_t n = (int64_t)N * C;
    /* offset the inputs (mean ~3) so that the two-pass variance matters */
    float *x = sg_test_rand(n, 41, 2, 4), *dout = sg_test_rand(n, 42, -1, 1);
    float *w = affine ? sg_test_rand(C, 43, 0.5f, 1.5f) : NULL;
    float *b = affine ? sg_test_rand(C, 44, -1, 1) : NULL;
    float *dw0 = sg_test_rand(C, 45, -1, 1), *db0 = sg_test_rand(C, 46, -1, 1);
    float *out_ref = sg_xmalloc(sizeof(float) * n), *dinp_ref = sg_xmalloc(sizeof(float) * n);
    float *mean_ref = sg_xmalloc(sizeof(float) * N), *rstd_ref = sg_xmalloc(sizeof(float) * N);
    float *dw_ref = sg_xcalloc(C, sizeof(float)), *db_ref = sg_xcalloc(C, sizeof(float));
    layernorm_forward_ref(out_ref, mean_ref, rstd_ref, x, w, b, N, C, eps);
    layernorm_backward_ref(dinp_ref, affine ? dw_ref : NULL, affine ? db_ref : NULL, dout, x, w,
                           mean_ref, rstd_ref, N, C);
    for (int i = 0; i < C; i++) {
        dw_ref[i] = dw0[i] + 2.0f * dw_ref[i];
        db_ref[i] = db0[i] + 2.0f * db_ref[i];
    }

    float *nan = sg_test_nan(n);
    float *d_x = sg_test_to_dev(g, x, n), *d_dout = sg_test_to_dev(g, dout, n),
          *d_out = sg_test_to_dev(g, nan, n);
    float *d_dinp = sg_test_to_dev(g, nan, n), *d_mean = sg_test_to_dev(g, nan, N),
          *d_rstd = sg_test_to_dev(g, nan, N);
    float *d_w = affine ? sg_test_to_dev(g, w, C) : NULL,
          *d_b = affine ? sg_test_to_dev(g, b, C) : NULL;
    float *d_dw = sg_test_to_dev(g, dw0, C), *d_db = sg_test_to_dev(g, db0, C);

    op_layernorm_forward(g, d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C, eps);
    snprintf(lab, sizeof lab, "layernorm_fwd out N=%d C=%d affine=%d", N, C, affine);
    check_dev(g, lab, d_out, out_ref, n, 1e-5f, 1e-4f);
    snprintf(lab, sizeof lab, "layernorm_fwd mean N=%d C=%d", N, C);
    check_dev(g, lab, d_mean, mean_ref, N, 1e-6f, 1e-5f);
    snprintf(lab, sizeof lab, "layernorm_fwd rstd N=%d C=%d", N, C);
    check_dev(g, lab, d_rstd, rstd_ref, N, 1e-6f, 1e-4f);

    /* backward from the reference's mean/rstd so that only backward is under test */
    sg_memcpy_h2d(g, d_mean, mean_ref, sizeof(float) * N);
    sg_memcpy_h2d(g, d_rstd, rstd_ref, sizeof(float) * N);
    float *gw = affine ? d_dw : NULL, *gb = affine ? d_db : NULL;
    op_layernorm_backward(g, d_dinp, gw, gb, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    op_layernorm_backward(g, d_dinp, gw, gb, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    snprintf(lab, sizeof lab, "layernorm_bwd dinp (overwrite) N=%d C=%d affine=%d", N, C, affine);
    check_dev(g, lab, d_dinp, dinp_ref, n, 1e-5f, 1e-4f);
    if (affine) {
        snprintf(lab, sizeof lab, "layernorm_bwd dw (accumulate x2) N=%d C=%d", N, C);
        check_dev(g, lab, d_dw, dw_ref, C, GEMM_REL, 1e-4f);
        snprintf(lab, sizeof lab, "layernorm_bwd db (accumulate x2) N=%d C=%d", N, C);
        check_dev(g, lab, d_db, db_ref, C, GEMM_REL, 1e-4f);
        /* dinp aliasing dout (in place), params again from dw0: same bits as a fresh pair run */
        float *d_g2 = sg_test_to_dev(g, dout, n), *d_dw2 = sg_test_to_dev(g, dw0, C),
              *d_db2 = sg_test_to_dev(g, db0, C);
        sg_memcpy_h2d(g, d_dw, dw0, sizeof(float) * C);
        sg_memcpy_h2d(g, d_db, db0, sizeof(float) * C);
        op_layernorm_backward(g, d_dinp, d_dw, d_db, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
        op_layernorm_backward(g, d_g2, d_dw2, d_db2, d_g2, d_x, d_w, d_mean, d_rstd, N, C);
        snprintf(lab, sizeof lab, "layernorm_bwd in place dinp bit-identical N=%d C=%d", N, C);
        check_bitequal(g, lab, d_g2, d_dinp, n);
        snprintf(lab, sizeof lab, "layernorm_bwd dw bit-identical run to run N=%d C=%d", N, C);
        check_bitequal(g, lab, d_dw2, d_dw, C);
        snprintf(lab, sizeof lab, "layernorm_bwd db bit-identical run to run N=%d C=%d", N, C);
        check_bitequal(g, lab, d_db2, d_db, C);
        sg_dev_free(g, d_g2);
        sg_dev_free(g, d_dw2);
        sg_dev_free(g, d_db2);
    }

    float *dev[] = {d_x, d_dout, d_out, d_dinp, d_mean, d_rstd, d_w, d_b, d_dw, d_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    float *host[] = {x,        dout,     w,        b,      dw0,    db0, out_ref,
                     dinp_ref, mean_ref, rstd_ref, dw_ref, db_ref, nan};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

/* ---- bf16 mixed precision ----------------------------------------------------------------- */

/* bf16 bits of x, round to nearest even (what __float2bfloat16_rn does); NaN stays NaN. */
static uint16_t bf16_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float bf16_round(float x)
{
    uint32_t u = (uint32_t)bf16_bits(x) << 16;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* Malloc'd copy of x with every element rounded to bf16. */
/* Tight tolerance (in units of rms(ref)) for a K-term fp32 accumulation of exact products. */
static float bf16_tight_rel(int K)
{
    return (float)SG_MAX(4e-6, ldexp((double)K, -25));
}

static float *host_bf16(const float *x, int64_t n)
{
    float *r = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) r[i] = bf16_round(x[i]);
    return r;
}

/* A device buffer (offset `off` floats into a fresh allocation) holding h. */
static float *to_dev_off(struct sg_ctx *g, const float *h, int64_t n, int off, float **base)
{
    *base = sg_dev_alloc(g, sizeof(float) * (size_t)(n + off));
    sg_memcpy_h2d(g, *base + off, h, sizeof(float) * (size_t)n);
    return *base + off;
}

/* check_dev plus the max error in units of rms(ref), printed for the log (tolerance tuning). */
static int check_dev_rel(struct sg_ctx *g, const char *label, const float *d, const float *ref,
                         int64_t n, float rel, float rtol)
{
    float *h = sg_test_from_dev(g, d, n);
    double r = rms(ref, n), maxd = 0.0;
    for (int64_t i = 0; i < n; i++) maxd = SG_MAX(maxd, fabs((double)h[i] - (double)ref[i]));
    float atol = (float)SG_MAX(rel * r, 1e-7);
    char lab[224];
    snprintf(lab, sizeof lab, "%s [max err %.3g rms(ref), tol %.3g]", label, r > 0 ? maxd / r : 0,
             (double)rel);
    int ok = sg_test_close(lab, h, ref, n, atol, rtol);
    free(h);
    return ok;
}

/* Bit patterns of the GPU conversion against bf16_bits for special and random values, with
 * lengths that leave tails and a source offset that forces the scalar kernel. */
static void test_f32_to_bf16(struct sg_ctx *g, int64_t n, int off)
{
    char lab[128];
    float *x = sg_test_rand(n, 51, -3, 3);
    static const float special[] = {0.0f,
                                    -0.0f,
                                    1.0f,
                                    -1.0f,
                                    INFINITY,
                                    -INFINITY,
                                    NAN,
                                    1.00390625f /* 1 + 2^-8: tie, rounds to even (down) */,
                                    1.01171875f /* 1 + 3*2^-8: tie, rounds up */,
                                    3.4e38f /* rounds up to inf */,
                                    1e-40f /* subnormal */,
                                    -1.17549435e-38f,
                                    65504.0f};
    for (size_t i = 0; i < sizeof special / sizeof special[0] && (int64_t)i < n; i++)
        x[i] = special[i];
    float *base;
    float *d_x = to_dev_off(g, x, n, off, &base);
    uint16_t *d_y = sg_dev_alloc(g, sizeof(uint16_t) * (size_t)(n ? n : 1));
    uint16_t *y = sg_xmalloc(sizeof(uint16_t) * (size_t)(n ? n : 1));
    sg_cuda_f32_to_bf16(g, d_y, d_x, n);
    sg_memcpy_d2h(g, y, d_y, sizeof(uint16_t) * (size_t)n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t want = bf16_bits(x[i]);
        int both_nan = (want & 0x7fff) > 0x7f80 && (y[i] & 0x7fff) > 0x7f80;
        if (y[i] != want && !both_nan) {
            if (bad < 5)
                fprintf(stderr, "  f32_to_bf16[%lld]: x %.9g got 0x%04x want 0x%04x\n",
                        (long long)i, x[i], y[i], want);
            bad++;
        }
    }
    snprintf(lab, sizeof lab, "f32_to_bf16 bits n=%lld src offset=%d (%lld bad)", (long long)n, off,
             (long long)bad);
    sg_test_true(lab, bad == 0);
    sg_dev_free(g, base);
    sg_dev_free(g, d_y);
    free(x);
    free(y);
}

/* linear in bf16 mode. Tight: against the double reference on bf16-rounded GEMM operands (the
 * bias and db stay fp32). Loose: against the plain fp32 reference. `off` shifts every device
 * pointer by that many floats (alignment handling). */
static void test_linear_bf16(struct sg_ctx *g, int N, int C, int OC, int off)
{
    char lab[160];
    int64_t ni = (int64_t)N * C, nw = (int64_t)OC * C, no = (int64_t)N * OC;
    float *inp = sg_test_rand(ni, 61, -1, 1), *w = sg_test_rand(nw, 62, -1, 1);
    float *b = sg_test_rand(OC, 63, -1, 1), *dout = sg_test_rand(no, 64, -1, 1);
    float *dw0 = sg_test_rand(nw, 65, -1, 1), *db0 = sg_test_rand(OC, 66, -1, 1);
    float *inp_r = host_bf16(inp, ni), *w_r = host_bf16(w, nw), *dout_r = host_bf16(dout, no);
    /* tight references (t) on rounded operands, loose (f) on the fp32 ones */
    float *out_t = sg_xmalloc(sizeof(float) * no), *out_f = sg_xmalloc(sizeof(float) * no);
    float *out_tn = sg_xmalloc(sizeof(float) * no);
    float *dinp_t = sg_xmalloc(sizeof(float) * ni), *dinp_f = sg_xmalloc(sizeof(float) * ni);
    float *dw_t = sg_xcalloc(nw, sizeof(float)), *dw_f = sg_xcalloc(nw, sizeof(float));
    float *db_ref = sg_xcalloc(OC, sizeof(float));
    linear_forward_ref(out_t, inp_r, w_r, b, N, C, OC);
    linear_forward_ref(out_tn, inp_r, w_r, NULL, N, C, OC);
    linear_forward_ref(out_f, inp, w, b, N, C, OC);
    linear_backward_ref(dinp_t, dw_t, NULL, dout_r, inp_r, w_r, N, C, OC);
    linear_backward_ref(dinp_f, dw_f, db_ref, dout, inp, w, N, C, OC);
    for (int64_t i = 0; i < nw; i++) {
        dw_t[i] = dw0[i] + 2.0f * dw_t[i];
        dw_f[i] = dw0[i] + 2.0f * dw_f[i];
    }
    for (int i = 0; i < OC; i++) db_ref[i] = db0[i] + 2.0f * db_ref[i];

    float *nan_o = sg_test_nan(no), *nan_i = sg_test_nan(ni);
    float *bases[10];
    float *d_inp = to_dev_off(g, inp, ni, off, &bases[0]),
          *d_w = to_dev_off(g, w, nw, off, &bases[1]);
    float *d_b = to_dev_off(g, b, OC, off, &bases[2]);
    float *d_dout = to_dev_off(g, dout, no, off, &bases[3]);
    float *d_dw = to_dev_off(g, dw0, nw, off, &bases[4]);
    float *d_db = to_dev_off(g, db0, OC, off, &bases[5]);
    float *d_out = to_dev_off(g, nan_o, no, off, &bases[6]);
    float *d_dinp = to_dev_off(g, nan_i, ni, off, &bases[7]);
    float *d_out2 = to_dev_off(g, nan_o, no, off, &bases[8]);
    float *d_dinp2 = to_dev_off(g, nan_i, ni, off, &bases[9]);

    op_linear_forward(g, d_out, d_inp, d_w, d_b, N, C, OC);
    snprintf(lab, sizeof lab, "bf16 linear_fwd vs bf16-rounded ref N=%d C=%d OC=%d off=%d", N, C,
             OC, off);
    check_dev_rel(g, lab, d_out, out_t, no, bf16_tight_rel(C), BF16_TIGHT_RTOL);
    snprintf(lab, sizeof lab, "bf16 linear_fwd vs fp32 ref N=%d C=%d OC=%d off=%d", N, C, OC, off);
    check_dev_rel(g, lab, d_out, out_f, no, BF16_LOOSE_REL, BF16_LOOSE_RTOL);
    op_linear_forward(g, d_out2, d_inp, d_w, d_b, N, C, OC);
    snprintf(lab, sizeof lab, "bf16 linear_fwd bit-identical rerun N=%d off=%d", N, off);
    check_bitequal(g, lab, d_out, d_out2, no);
    op_linear_forward(g, d_out2, d_inp, d_w, NULL, N, C, OC);
    snprintf(lab, sizeof lab, "bf16 linear_fwd no bias N=%d C=%d OC=%d off=%d", N, C, OC, off);
    check_dev_rel(g, lab, d_out2, out_tn, no, bf16_tight_rel(C), BF16_TIGHT_RTOL);

    op_linear_backward(g, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, N, C, OC);
    op_linear_backward(g, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, N, C, OC);
    snprintf(lab, sizeof lab,
             "bf16 linear_bwd dinp (overwrite) vs bf16-rounded ref N=%d C=%d "
             "OC=%d",
             N, C, OC);
    check_dev_rel(g, lab, d_dinp, dinp_t, ni, bf16_tight_rel(OC), BF16_TIGHT_RTOL);
    snprintf(lab, sizeof lab, "bf16 linear_bwd dinp vs fp32 ref N=%d C=%d OC=%d", N, C, OC);
    check_dev_rel(g, lab, d_dinp, dinp_f, ni, BF16_LOOSE_REL, BF16_LOOSE_RTOL);
    snprintf(lab, sizeof lab,
             "bf16 linear_bwd dw (accumulate x2) vs bf16-rounded ref N=%d C=%d "
             "OC=%d",
             N, C, OC);
    check_dev_rel(g, lab, d_dw, dw_t, nw, bf16_tight_rel(N), BF16_TIGHT_RTOL);
    snprintf(lab, sizeof lab, "bf16 linear_bwd dw vs fp32 ref N=%d C=%d OC=%d", N, C, OC);
    check_dev_rel(g, lab, d_dw, dw_f, nw, BF16_LOOSE_REL, BF16_LOOSE_RTOL);
    snprintf(lab, sizeof lab, "bf16 linear_bwd db (fp32, accumulate x2) N=%d OC=%d", N, OC);
    check_dev_rel(g, lab, d_db, db_ref, OC, GEMM_REL, 1e-4f);
    /* dinp only (dw, db NULL) into a NaN buffer: same bits as the full call */
    op_linear_backward(g, d_dinp2, NULL, NULL, d_dout, d_inp, d_w, N, C, OC);
    snprintf(lab, sizeof lab, "bf16 linear_bwd dinp only, bit-identical N=%d off=%d", N, off);
    check_bitequal(g, lab, d_dinp, d_dinp2, ni);

    for (int i = 0; i < 10; i++) sg_dev_free(g, bases[i]);
    float *host[] = {inp,   w,      b,      dout,   dw0,  db0,  inp_r,  w_r,   dout_r, out_t,
                     out_f, out_tn, dinp_t, dinp_f, dw_t, dw_f, db_ref, nan_o, nan_i};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_matmul_bf16(struct sg_ctx *g, int batch, int M, int K, int N)
{
    char lab[160];
    int64_t na = (int64_t)batch * M * K, nb = (int64_t)batch * K * N, no = (int64_t)batch * M * N;
    float *a = sg_test_rand(na, 71, -1, 1), *b = sg_test_rand(nb, 72, -1, 1);
    float *dout = sg_test_rand(no, 73, -1, 1);
    float *a_r = host_bf16(a, na), *b_r = host_bf16(b, nb), *dout_r = host_bf16(dout, no);
    float *out_t = sg_xmalloc(sizeof(float) * no), *out_f = sg_xmalloc(sizeof(float) * no);
    float *da_t = sg_xmalloc(sizeof(float) * na), *da_f = sg_xmalloc(sizeof(float) * na);
    float *db_t = sg_xmalloc(sizeof(float) * nb), *db_f = sg_xmalloc(sizeof(float) * nb);
    matmul_forward_ref(out_t, a_r, b_r, batch, M, K, N);
    matmul_forward_ref(out_f, a, b, batch, M, K, N);
    matmul_backward_ref(da_t, db_t, dout_r, a_r, b_r, batch, M, K, N);
    matmul_backward_ref(da_f, db_f, dout, a, b, batch, M, K, N);

    float *nan_o = sg_test_nan(no), *nan_a = sg_test_nan(na), *nan_b = sg_test_nan(nb);
    float *d_a = sg_test_to_dev(g, a, na), *d_b = sg_test_to_dev(g, b, nb),
          *d_dout = sg_test_to_dev(g, dout, no);
    float *d_out = sg_test_to_dev(g, nan_o, no), *d_da = sg_test_to_dev(g, nan_a, na),
          *d_db = sg_test_to_dev(g, nan_b, nb);
    float *d_out2 = sg_test_to_dev(g, nan_o, no);
    op_matmul_forward(g, d_out, d_a, d_b, batch, M, K, N);
    snprintf(lab, sizeof lab, "bf16 matmul_fwd vs bf16-rounded ref batch=%d M=%d K=%d N=%d", batch,
             M, K, N);
    check_dev_rel(g, lab, d_out, out_t, no, bf16_tight_rel(K), BF16_TIGHT_RTOL);
    snprintf(lab, sizeof lab, "bf16 matmul_fwd vs fp32 ref batch=%d M=%d K=%d N=%d", batch, M, K,
             N);
    check_dev_rel(g, lab, d_out, out_f, no, BF16_LOOSE_REL, BF16_LOOSE_RTOL);
    op_matmul_forward(g, d_out2, d_a, d_b, batch, M, K, N);
    snprintf(lab, sizeof lab, "bf16 matmul_fwd bit-identical rerun batch=%d", batch);
    check_bitequal(g, lab, d_out, d_out2, no);
    op_matmul_backward(g, d_da, d_db, d_dout, d_a, d_b, batch, M, K, N);
    op_matmul_backward(g, d_da, d_db, d_dout, d_a, d_b, batch, M, K, N);
    snprintf(lab, sizeof lab,
             "bf16 matmul_bwd da (overwrite) vs bf16-rounded ref batch=%d M=%d "
             "K=%d N=%d",
             batch, M, K, N);
    check_dev_rel(g, lab, d_da, da_t, na, bf16_tight_rel(N), BF16_TIGHT_RTOL);
    snprintf(lab, sizeof lab, "bf16 matmul_bwd da vs fp32 ref batch=%d M=%d K=%d N=%d", batch, M, K,
             N);
    check_dev_rel(g, lab, d_da, da_f, na, BF16_LOOSE_REL, BF16_LOOSE_RTOL);
    snprintf(lab, sizeof lab,
             "bf16 matmul_bwd db (overwrite) vs bf16-rounded ref batch=%d M=%d "
             "K=%d N=%d",
             batch, M, K, N);
    check_dev_rel(g, lab, d_db, db_t, nb, bf16_tight_rel(M), BF16_TIGHT_RTOL);
    snprintf(lab, sizeof lab, "bf16 matmul_bwd db vs fp32 ref batch=%d M=%d K=%d N=%d", batch, M, K,
             N);
    check_dev_rel(g, lab, d_db, db_f, nb, BF16_LOOSE_REL, BF16_LOOSE_RTOL);

    float *dev[] = {d_a, d_b, d_dout, d_out, d_da, d_db, d_out2};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    float *host[] = {a,    b,    dout, a_r,  b_r,   dout_r, out_t, out_f,
                     da_t, da_f, db_t, db_f, nan_o, nan_a,  nan_b};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

/* ---- timing (information only) ------------------------------------------------------------ */

static void time_linear(struct sg_ctx *g, int N, int C, int OC, int iters)
{
    int64_t ni = (int64_t)N * C, nw = (int64_t)OC * C, no = (int64_t)N * OC;
    float *h_inp = sg_test_rand(ni, 81, -1, 1), *h_w = sg_test_rand(nw, 82, -1, 1);
    float *d_inp = sg_test_to_dev(g, h_inp, ni), *d_w = sg_test_to_dev(g, h_w, nw);
    float *d_b = sg_dev_alloc(g, sizeof(float) * OC), *d_out = sg_dev_alloc(g, sizeof(float) * no);
    float *d_dinp = sg_dev_alloc(g, sizeof(float) * ni),
          *d_dw = sg_dev_alloc(g, sizeof(float) * nw);
    float *d_db = sg_dev_alloc(g, sizeof(float) * OC);
    sg_memset_zero(g, d_b, sizeof(float) * OC);
    sg_memset_zero(g, d_dw, sizeof(float) * nw);
    sg_memset_zero(g, d_db, sizeof(float) * OC);
    double flop = 2.0 * N * C * OC;
    const char *prec = g->precision == SG_PREC_BF16 ? "bf16" : "fp32";
    for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up (cuBLAS heuristics, scratch) */
        int n_it = pass ? iters : 2;
        sg_ctx_sync(g);
        double t0 = sg_time_now();
        for (int i = 0; i < n_it; i++) op_linear_forward(g, d_out, d_inp, d_w, d_b, N, C, OC);
        sg_ctx_sync(g);
        double t1 = sg_time_now();
        for (int i = 0; i < n_it; i++)
            op_linear_backward(g, d_dinp, d_dw, d_db, d_out, d_inp, d_w, N, C, OC);
        sg_ctx_sync(g);
        double t2 = sg_time_now();
        if (pass)
            printf("info linear %s N=%d C=%d OC=%d: forward %.3f ms (%.1f TFLOP/s), backward "
                   "%.3f ms (%.1f TFLOP/s)\n",
                   prec, N, C, OC, 1e3 * (t1 - t0) / n_it, flop * n_it / (t1 - t0) * 1e-12,
                   1e3 * (t2 - t1) / n_it, 2.0 * flop * n_it / (t2 - t1) * 1e-12);
    }
    float *dev[] = {d_inp, d_w, d_b, d_out, d_dinp, d_dw, d_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) sg_dev_free(g, dev[i]);
    free(h_inp);
    free(h_w);
}

int main(void)
{
    if (!sg_cuda_available()) {
        printf("SKIP: no CUDA GPU\n");
        return SG_TEST_SKIP;
    }
    struct sg_ctx g;
    if (sg_ctx_init(&g, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: CUDA context: %s\n", sg_last_error());
        return 1;
    }
    test_linear(&g, 37, 19, 23);
    test_linear(&g, 1, 5, 3);
    test_linear(&g, 256, 768, 3072);
    test_linear(&g, 197, 768, 768);
    test_matmul(&g, 3, 37, 19, 23);
    test_matmul(&g, 3, 64, 128, 96);
    test_matmul(&g, 24, 197, 64, 197); /* ViT-B attention scores: (B*NH, T, hd) @ (B*NH, hd, T) */
    static const int64_t act_n[] = {1001, 1 << 20, 3};
    for (int a = 0; a < SG_ACT_COUNT; a++) {
        for (size_t k = 0; k < sizeof act_n / sizeof act_n[0]; k++)
            test_act(&g, (enum sg_act)a, act_n[k], 0);
        test_act(&g, (enum sg_act)a, 1001, 1); /* misaligned: scalar path */
    }
    test_layernorm(&g, 37, 19, 1);
    test_layernorm(&g, 512, 768, 1);
    test_layernorm(&g, 37, 19, 0);
    test_layernorm(&g, 5, 4099, 1);
    test_layernorm(&g, 6304, 768, 1); /* ViT-B/16 at batch 32: B*T rows, many column chunks */
    time_linear(&g, 256, 768, 3072, 20);
    time_linear(&g, 6304, 768, 3072, 10); /* ViT-B/16 MLP fc1 at batch 32 */

    /* bf16 mixed precision (open_clip amp_bf16) */
    static const int64_t cvt_n[] = {0, 1, 7, 8, 13, 1001, (1 << 20) + 5};
    for (size_t k = 0; k < sizeof cvt_n / sizeof cvt_n[0]; k++) {
        test_f32_to_bf16(&g, cvt_n[k], 0);
        test_f32_to_bf16(&g, cvt_n[k], 1); /* misaligned source: scalar path */
    }
    g.precision = SG_PREC_BF16;
    test_linear_bf16(&g, 37, 19, 23, 0);
    test_linear_bf16(&g, 1, 5, 3, 0);
    test_linear_bf16(&g, 256, 768, 3072, 0);
    test_linear_bf16(&g, 197, 768, 768, 0);
    test_linear_bf16(&g, 64, 768, 3072, 1); /* pointers 4-byte aligned only */
    test_linear_bf16(&g, 37, 19, 23, 1);
    test_matmul_bf16(&g, 3, 37, 19, 23);
    test_matmul_bf16(&g, 3, 64, 128, 96);
    test_matmul_bf16(&g, 24, 197, 64, 197);
    test_matmul_bf16(&g, 2, 50, 768, 64); /* long reduction for da (K) and out */
    g.precision = SG_PREC_FP32;
    time_linear(&g, 12800, 768, 3072, 20); /* fp32 vs bf16 GEMM throughput, information */
    g.precision = SG_PREC_BF16;
    time_linear(&g, 12800, 768, 3072, 20);
    g.precision = SG_PREC_FP32;
    sg_ctx_free(&g);
    return sg_test_summary("test_cuda_ops");
}
