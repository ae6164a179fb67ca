/*
 * ops/attention.c — multi-head attention core, forward and backward (math and layouts in
 * attention.h). Reference: tests/ref/gen_attention.py (torch autograd, cross-checked against
 * F.multi_head_attention_forward) -> tests/ref/data/attention.safetensors.
 *
 * Fast CPU path: OpenMP over the B*NH (batch, head) pairs; each pair runs single-threaded
 * sg_gemm calls directly on the strided q/k/v slices of qkv (lda = 3C, no permute copies) and a
 * fused row softmax on its (T,T) tile while it is still in cache. Per pair:
 *   forward:  att = (q @ k^T) * scale; softmax rows (masked keys -> 0); out_h = att @ v
 *   backward: datt = dout_h @ v^T; dv = att^T @ dout_h;
 *             ds = att * (datt - rowsum(att * datt));  dq = scale * ds @ k;  dk = scale * ds^T @ q
 * The exponential is a vectorisable Cephes-style expf (a few ulp; build has no -ffast-math, so
 * libm's expf would stay scalar and dominate the softmax).
 * CUDA path: ops/cuda/attention.cu (dispatched below when built with CUDA).
 */
#include "ops/attention.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/gemm.h"
#include "ops/vmath.h"

static void check_dims(int B, int T, int C, int NH)
{
    SG_CHECK(B >= 1 && T >= 1 && NH >= 1 && C >= NH && C == C / NH * NH,
             "attention: bad dims B=%d T=%d C=%d NH=%d (C must be a multiple of NH)", B, T, C, NH);
}

/* ---- reference (plain loops, double accumulation) ---------------------------------------- */

void attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                           int causal)
{
    check_dims(B, T, C, NH);
    int hs = C / NH;
    int64_t C3 = 3 * (int64_t)C;
    double scale = 1.0 / sqrt((double)hs);
    double *p = sg_xmalloc(sizeof(double) * (size_t)T); /* one row of probabilities */
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((int64_t)b * T + i) * C3 + h * hs;
                int len = causal ? i + 1 : T; /* keys j < len are visible */
                double maxv = -INFINITY, sum = 0.0;
                for (int j = 0; j < len; j++) {
                    const float *k = qkv + ((int64_t)b * T + j) * C3 + C + h * hs;
                    double s = 0.0;
                    for (int d = 0; d < hs; d++) s += (double)q[d] * k[d];
                    p[j] = s * scale;
                    if (p[j] > maxv) maxv = p[j];
                }
                for (int j = 0; j < len; j++) {
                    p[j] = exp(p[j] - maxv);
                    sum += p[j];
                }
                float *arow = att + (((int64_t)b * NH + h) * T + i) * T;
                for (int j = 0; j < T; j++) arow[j] = j < len ? (float)(p[j] / sum) : 0.0f;
                for (int d = 0; d < hs; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < len; j++)
                        acc += p[j] / sum * qkv[((int64_t)b * T + j) * C3 + 2 * C + h * hs + d];
                    out[((int64_t)b * T + i) * C + h * hs + d] = (float)acc;
                }
            }
        }
    }
    free(p);
}

void attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                            int B, int T, int C, int NH, int causal)
{
    check_dims(B, T, C, NH);
    int hs = C / NH;
    int64_t C3 = 3 * (int64_t)C, n = (int64_t)B * T * C3;
    double scale = 1.0 / sqrt((double)hs);
    double *g = sg_xcalloc((size_t)n, sizeof(double)); /* d(qkv) accumulated in double */
    double *ds = sg_xmalloc(sizeof(double) * (size_t)T);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int i = 0; i < T; i++) {
                int64_t qi = ((int64_t)b * T + i) * C3 + h * hs;
                const float *dy = dout + ((int64_t)b * T + i) * C + h * hs;
                const float *arow = att + (((int64_t)b * NH + h) * T + i) * T;
                int len = causal ? i + 1 : T;
                double dot = 0.0;
                for (int j = 0; j < len; j++) {
                    int64_t kj = ((int64_t)b * T + j) * C3 + C + h * hs, vj = kj + C;
                    double da = 0.0; /* dL/datt[i][j] = dy . v_j */
                    for (int d = 0; d < hs; d++) {
                        da += (double)dy[d] * qkv[vj + d];
                        g[vj + d] += (double)arow[j] * dy[d];
                    }
                    ds[j] = da;
                    dot += arow[j] * da;
                }
                for (int j = 0; j < len; j++) {
                    int64_t kj = ((int64_t)b * T + j) * C3 + C + h * hs;
                    double s = arow[j] * (ds[j] - dot) * scale; /* softmax backward, then scale */
                    for (int d = 0; d < hs; d++) {
                        g[qi + d] += s * qkv[kj + d];
                        g[kj + d] += s * qkv[qi + d];
                    }
                }
            }
        }
    }
    for (int64_t e = 0; e < n; e++) dqkv[e] = (float)g[e];
    free(ds);
    free(g);
}

/* ---- fast CPU path ------------------------------------------------------------------------ */

/* The row helpers keep 8 partial sums so that gcc vectorises them without -ffast-math. */
static float row_max(const float *x, int n)
{
    int32_t m = sg_float_key(x[0]);
    for (int j = 1; j < n; j++) {
        int32_t k = sg_float_key(x[j]);
        m = k > m ? k : m;
    }
    return sg_key_float(m);
}

/* x[j] = exp(x[j] - m); returns the sum. */
static float row_exp_sum(float *x, int n, float m)
{
    float s8[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int l = 0; l < 8; l++) {
            x[j + l] = sg_expf_fast(x[j + l] - m);
            s8[l] += x[j + l];
        }
    }
    float s = 0.0f;
    for (; j < n; j++) {
        x[j] = sg_expf_fast(x[j] - m);
        s += x[j];
    }
    for (int l = 0; l < 8; l++) s += s8[l];
    return s;
}

static float row_dot(const float *a, const float *b, int n)
{
    float s8[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) s8[l] += a[j + l] * b[j + l];
    float s = 0.0f;
    for (; j < n; j++) s += a[j] * b[j];
    for (int l = 0; l < 8; l++) s += s8[l];
    return s;
}

/* In place: a (T,T) tile of scaled scores -> softmax probabilities, masked keys -> 0. */
static void softmax_tile(float *s, int T, int causal)
{
    for (int i = 0; i < T; i++) {
        float *row = s + (int64_t)i * T;
        int len = causal ? i + 1 : T;
        float m = row_max(row, len);
        float inv = 1.0f / row_exp_sum(row, len, m);
        for (int j = 0; j < len; j++) row[j] *= inv;
        for (int j = len; j < T; j++) row[j] = 0.0f;
    }
}

/* In place: datt tile -> ds = att * (datt - rowsum(att * datt)); masked keys -> 0. */
static void softmax_backward_tile(float *ds, const float *att, int T, int causal)
{
    for (int i = 0; i < T; i++) {
        float *row = ds + (int64_t)i * T;
        const float *a = att + (int64_t)i * T;
        int len = causal ? i + 1 : T;
        float dot = row_dot(a, row, len);
        for (int j = 0; j < len; j++) row[j] = a[j] * (row[j] - dot);
        for (int j = len; j < T; j++) row[j] = 0.0f;
    }
}

void attention_forward_cpu(struct sg_ctx *c, float *out, float *att, const float *qkv, int B, int T,
                           int C, int NH, int causal)
{
    SG_UNUSED(c);
    check_dims(B, T, C, NH);
    int hs = C / NH;
    int64_t C3 = 3 * (int64_t)C;
    float scale = (float)(1.0 / sqrt((double)hs));
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (int64_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
        float *a = att + (int64_t)bh * T * T;         /* (T,T) */
        float *y = out + (int64_t)b * T * C + h * hs; /* (T,hs), row stride C */
        sg_gemm(0, 1, T, T, hs, scale, q, C3, k, C3, 0.0f, a, T);
        softmax_tile(a, T, causal);
        sg_gemm(0, 0, T, hs, T, 1.0f, a, T, v, C3, 0.0f, y, C);
    }
}

void attention_backward_cpu(struct sg_ctx *c, float *dqkv, float *scratch, const float *dout,
                            const float *qkv, const float *att, int B, int T, int C, int NH,
                            int causal)
{
    SG_UNUSED(c);
    check_dims(B, T, C, NH);
    int hs = C / NH;
    int64_t C3 = 3 * (int64_t)C;
    float scale = (float)(1.0 / sqrt((double)hs));
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        int64_t qoff = (int64_t)b * T * C3 + h * hs;
        const float *q = qkv + qoff, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + qoff, *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + (int64_t)bh * T * T;
        const float *dy = dout + (int64_t)b * T * C + h * hs; /* (T,hs), row stride C */
        float *ds = scratch + (int64_t)bh * T * T;
        sg_gemm(0, 1, T, T, hs, 1.0f, dy, C, v, C3, 0.0f, ds, T); /* datt = dy @ v^T */
        sg_gemm(1, 0, T, hs, T, 1.0f, a, T, dy, C, 0.0f, dv, C3); /* dv = att^T @ dy */
        softmax_backward_tile(ds, a, T, causal);
        sg_gemm(0, 0, T, hs, T, scale, ds, T, k, C3, 0.0f, dq, C3); /* dq = ds @ k */
        sg_gemm(1, 0, T, hs, T, scale, ds, T, q, C3, 0.0f, dk, C3); /* dk = ds^T @ q */
    }
}

/* ---- dispatch ----------------------------------------------------------------------------- */

void op_attention_forward(struct sg_ctx *c, float *out, float *att, const float *qkv, int B, int T,
                          int C, int NH, int causal)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        attention_forward_cpu(c, out, att, qkv, B, T, C, NH, causal);
        return;
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        attention_forward_cuda(c, out, att, qkv, B, T, C, NH, causal);
        return;
#endif
    default:
        SG_PANIC("attention_forward: device %s not supported (built without CUDA?)",
                 sg_device_name(c->dev));
    }
}

void op_attention_backward(struct sg_ctx *c, float *dqkv, float *scratch, const float *dout,
                           const float *qkv, const float *att, int B, int T, int C, int NH,
                           int causal)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        attention_backward_cpu(c, dqkv, scratch, dout, qkv, att, B, T, C, NH, causal);
        return;
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        attention_backward_cuda(c, dqkv, scratch, dout, qkv, att, B, T, C, NH, causal);
        return;
#endif
    default:
        SG_PANIC("attention_backward: device %s not supported (built without CUDA?)",
                 sg_device_name(c->dev));
    }
}
