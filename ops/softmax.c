/*
 * ops/softmax.c — softmax over the last dim of inp(N,C), forward and backward; see
 * ops/softmax.h. Torch reference: torch.softmax(x, dim=-1) and its autograd backward.
 *
 *  _ref  per row in double: max, sum of exp(x - max), then exp(x - max) / sum.
 *  _cpu  OpenMP over rows; per row three vectorised passes over the (L1-resident) row: max,
 *        e = sg_expf_fast(x - max) stored into out with the sum, out *= 1/sum. Backward: one
 *        dot product and one fused pass per row. Row sums accumulate in double (vectorised too),
 *        so the result does not depend on how the compiler splits the reduction.
 */
#include "ops/softmax.h"

#include <math.h>
#include <stdint.h>

#include "core/common.h"
#include "ops/vmath.h"

/* ---- reference ------------------------------------------------------------------------------- */

void softmax_forward_ref(float *out, const float *inp, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *x = inp + (int64_t)i * C;
        float *y = out + (int64_t)i * C;
        double m = -INFINITY, sum = 0.0;
        for (int j = 0; j < C; j++) m = x[j] > m ? x[j] : m;
        for (int j = 0; j < C; j++) sum += exp((double)x[j] - m);
        for (int j = 0; j < C; j++) y[j] = (float)(exp((double)x[j] - m) / sum);
    }
}

void softmax_backward_ref(float *dinp, const float *dout, const float *out, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *dy = dout + (int64_t)i * C, *y = out + (int64_t)i * C;
        float *dx = dinp + (int64_t)i * C;
        double dot = 0.0;
        for (int j = 0; j < C; j++) dot += (double)dy[j] * y[j];
        for (int j = 0; j < C; j++) dx[j] = (float)(y[j] * ((double)dy[j] - dot));
    }
}

/* ---- fast path ------------------------------------------------------------------------------- */

/* y may alias x (every pass reads and writes the same index). */
static void softmax_row(float *y, const float *x, int C)
{
    float m = -INFINITY;
    double sum = 0.0;
#pragma omp simd reduction(max : m)
    for (int j = 0; j < C; j++) m = x[j] > m ? x[j] : m;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < C; j++) {
        float e = sg_expf_fast(x[j] - m);
        y[j] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int j = 0; j < C; j++) y[j] *= inv;
}

void softmax_forward_cpu(struct sg_ctx *c, float *out, const float *inp, int N, int C)
{
    int nt = sg_pointwise_threads(c, (int64_t)N * C);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int i = 0; i < N; i++) softmax_row(out + (int64_t)i * C, inp + (int64_t)i * C, C);
}

/* dx may alias dy. */
static void softmax_row_backward(float *dx, const float *dy, const float *y, int C)
{
    double dot = 0.0;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < C; j++) dot += (double)dy[j] * y[j];
    float d = (float)dot;
#pragma omp simd
    for (int j = 0; j < C; j++) dx[j] = y[j] * (dy[j] - d);
}

void softmax_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, const float *out, int N,
                          int C)
{
    int nt = sg_pointwise_threads(c, (int64_t)N * C);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int i = 0; i < N; i++) {
        int64_t o = (int64_t)i * C;
        softmax_row_backward(dinp + o, dout + o, out + o, C);
    }
}

/* ---- dispatch -------------------------------------------------------------------------------- */

void op_softmax_forward(struct sg_ctx *c, float *out, const float *inp, int N, int C)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        softmax_forward_cpu(c, out, inp, N, C);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        softmax_forward_cuda(c, out, inp, N, C);
        return;
#else
        SG_PANIC("op_softmax_forward: built without CUDA");
#endif
    }
    SG_PANIC("op_softmax_forward: unknown device %d", (int)c->dev);
}

void op_softmax_backward(struct sg_ctx *c, float *dinp, const float *dout, const float *out, int N,
                         int C)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        softmax_backward_cpu(c, dinp, dout, out, N, C);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        softmax_backward_cuda(c, dinp, dout, out, N, C);
        return;
#else
        SG_PANIC("op_softmax_backward: built without CUDA");
#endif
    }
    SG_PANIC("op_softmax_backward: unknown device %d", (int)c->dev);
}
