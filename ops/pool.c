/*
 * ops/pool.c — max/avg/adaptive-avg pooling, forward and backward (see pool.h for shapes).
 * Torch references: F.max_pool2d(return_indices=True), F.avg_pool2d (count_include_pad=True),
 * F.adaptive_avg_pool2d; the tie and NaN rules follow ATen's cpu_max_pool kernel.
 *
 * The fast paths parallelise over the B*C planes (each plane is independent in both
 * directions, so backward needs no atomics) and walk each output row as (ih, kw, ow) so the
 * innermost loop runs over output columns (vectorisable for avg; branch-free select for max).
 * oneDNN pooling was measured as the alternative (forward_training + backward, 1 thread, ms,
 * min of 8, B32):                   oneDNN on nchw     oneDNN nChw8c + reorders   these loops
 *   maxpool 3x3/2 pad 1, 64x112x112  242 (simple_nchw)  97 (jit:avx2)              29
 *   avgpool 2x2/2, 256x56x56         148 (simple_nchw)  37 (jit:avx2)              30
 * and oneDNN's max-pool workspace is not torch's argmax, so the loops are the fast path.
 */
#include "ops/pool.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

/* ---- shapes --------------------------------------------------------------------------------- */

void sg_pool2d_shape_finish(struct sg_pool2d_shape *s)
{
    SG_CHECK(s->B > 0 && s->C > 0 && s->H > 0 && s->W > 0 && s->KH > 0 && s->KW > 0,
             "pool2d: dims must be positive");
    SG_CHECK(s->stride_h > 0 && s->stride_w > 0, "pool2d: stride must be >= 1");
    SG_CHECK(s->pad_h >= 0 && s->pad_w >= 0 && 2 * s->pad_h <= s->KH && 2 * s->pad_w <= s->KW,
             "pool2d: padding (%d,%d) must be in [0, kernel/2] for kernel (%d,%d)", s->pad_h,
             s->pad_w, s->KH, s->KW);
    SG_CHECK(s->H + 2 * s->pad_h >= s->KH && s->W + 2 * s->pad_w >= s->KW,
             "pool2d: window larger than the padded input");
    SG_CHECK(s->KW <= SG_POOL_MAX_KW, "pool2d: window width %d > %d (use adaptive_avgpool2d)",
             s->KW, SG_POOL_MAX_KW);
    s->OH = (s->H + 2 * s->pad_h - s->KH) / s->stride_h + 1;
    s->OW = (s->W + 2 * s->pad_w - s->KW) / s->stride_w + 1;
}

void sg_pool2d_shape_init(struct sg_pool2d_shape *s, int B, int C, int H, int W, int kernel,
                          int stride, int pad)
{
    *s = (struct sg_pool2d_shape){B, C, H, W, kernel, kernel, stride, stride, pad, pad, 0, 0};
    sg_pool2d_shape_finish(s);
}

static void check_shape(const struct sg_pool2d_shape *s)
{
    struct sg_pool2d_shape t = *s;
    sg_pool2d_shape_finish(&t);
    SG_CHECK(t.OH == s->OH && t.OW == s->OW, "pool2d: OH/OW (%d,%d) inconsistent, expected (%d,%d)",
             s->OH, s->OW, t.OH, t.OW);
}

static void check_adaptive(int B, int C, int H, int W, int OH, int OW)
{
    SG_CHECK(B > 0 && C > 0 && H > 0 && W > 0 && OH > 0 && OW > 0,
             "adaptive_avgpool2d: dims must be positive");
}

/* torch's adaptive window: [floor(o*I/O), ceil((o+1)*I/O)). */
static int ada_start(int o, int O, int I)
{
    return (int)(((int64_t)o * I) / O);
}
static int ada_end(int o, int O, int I)
{
    return (int)((((int64_t)o + 1) * I + O - 1) / O);
}

/* ---- reference ------------------------------------------------------------------------------- */

/* Window rows/cols of output (oh, ow) clipped to the input: [*h0, *h1) x [*w0, *w1). */
static void window(const struct sg_pool2d_shape *s, int oh, int ow, int *h0, int *h1, int *w0,
                   int *w1)
{
    int hs = oh * s->stride_h - s->pad_h, ws = ow * s->stride_w - s->pad_w;
    *h0 = SG_MAX(hs, 0);
    *h1 = SG_MIN(hs + s->KH, s->H);
    *w0 = SG_MAX(ws, 0);
    *w1 = SG_MIN(ws + s->KW, s->W);
}

void maxpool2d_forward_ref(const struct sg_pool2d_shape *s, float *out, int32_t *argmax,
                           const float *inp)
{
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW;
    for (int64_t p = 0; p < (int64_t)s->B * s->C; p++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++) {
                int h0, h1, w0, w1;
                window(s, oh, ow, &h0, &h1, &w0, &w1);
                float best = -INFINITY;
                int32_t idx = h0 * s->W + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float v = inp[p * HW + ih * s->W + iw];
                        if (v > best || isnan(v)) {
                            best = v;
                            idx = ih * s->W + iw;
                        }
                    }
                out[p * L + oh * s->OW + ow] = best;
                argmax[p * L + oh * s->OW + ow] = idx;
            }
}

void maxpool2d_backward_ref(const struct sg_pool2d_shape *s, float *dinp, const float *dout,
                            const int32_t *argmax)
{
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW, P = (int64_t)s->B * s->C;
    memset(dinp, 0, sizeof(float) * (size_t)(P * HW));
    for (int64_t p = 0; p < P; p++)
        for (int64_t i = 0; i < L; i++) dinp[p * HW + argmax[p * L + i]] += dout[p * L + i];
}

void avgpool2d_forward_ref(const struct sg_pool2d_shape *s, float *out, const float *inp)
{
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW;
    for (int64_t p = 0; p < (int64_t)s->B * s->C; p++)
        for (int oh = 0; oh < s->OH; oh++)
            for (int ow = 0; ow < s->OW; ow++) {
                int h0, h1, w0, w1;
                window(s, oh, ow, &h0, &h1, &w0, &w1);
                double acc = 0.0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) acc += inp[p * HW + ih * s->W + iw];
                out[p * L + oh * s->OW + ow] = (float)(acc / (s->KH * s->KW));
            }
}

void avgpool2d_backward_ref(const struct sg_pool2d_shape *s, float *dinp, const float *dout)
{
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW;
    for (int64_t p = 0; p < (int64_t)s->B * s->C; p++)
        for (int ih = 0; ih < s->H; ih++)
            for (int iw = 0; iw < s->W; iw++) {
                double acc = 0.0; /* gather: every output whose window holds (ih, iw) */
                for (int oh = 0; oh < s->OH; oh++)
                    for (int ow = 0; ow < s->OW; ow++) {
                        int h0, h1, w0, w1;
                        window(s, oh, ow, &h0, &h1, &w0, &w1);
                        if (ih >= h0 && ih < h1 && iw >= w0 && iw < w1)
                            acc += dout[p * L + oh * s->OW + ow];
                    }
                dinp[p * HW + ih * s->W + iw] = (float)(acc / (s->KH * s->KW));
            }
}

void adaptive_avgpool2d_forward_ref(float *out, const float *inp, int B, int C, int H, int W,
                                    int OH, int OW)
{
    check_adaptive(B, C, H, W, OH, OW);
    int64_t HW = (int64_t)H * W, L = (int64_t)OH * OW;
    for (int64_t p = 0; p < (int64_t)B * C; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0 = ada_start(oh, OH, H), h1 = ada_end(oh, OH, H);
                int w0 = ada_start(ow, OW, W), w1 = ada_end(ow, OW, W);
                double acc = 0.0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) acc += inp[p * HW + ih * W + iw];
                out[p * L + oh * OW + ow] = (float)(acc / ((h1 - h0) * (w1 - w0)));
            }
}

void adaptive_avgpool2d_backward_ref(float *dinp, const float *dout, int B, int C, int H, int W,
                                     int OH, int OW)
{
    check_adaptive(B, C, H, W, OH, OW);
    int64_t HW = (int64_t)H * W, L = (int64_t)OH * OW;
    for (int64_t p = 0; p < (int64_t)B * C; p++)
        for (int ih = 0; ih < H; ih++)
            for (int iw = 0; iw < W; iw++) {
                double acc = 0.0;
                for (int oh = 0; oh < OH; oh++)
                    for (int ow = 0; ow < OW; ow++) {
                        int h0 = ada_start(oh, OH, H), h1 = ada_end(oh, OH, H);
                        int w0 = ada_start(ow, OW, W), w1 = ada_end(ow, OW, W);
                        if (ih >= h0 && ih < h1 && iw >= w0 && iw < w1)
                            acc += dout[p * L + oh * OW + ow] / (double)((h1 - h0) * (w1 - w0));
                    }
                dinp[p * HW + ih * W + iw] = (float)acc;
            }
}

/* ---- fast CPU paths ------------------------------------------------------------------------- */

/* For each kernel column kw: the output columns [lo, hi) whose input column ow*stride - pad + kw
 * lies inside [0, W). Computed once per call (the divisions cost more than the pooling itself
 * for small windows). */
struct col_ranges {
    int lo[SG_POOL_MAX_KW], hi[SG_POOL_MAX_KW];
};

static void col_ranges_init(const struct sg_pool2d_shape *s, struct col_ranges *r)
{
    for (int kw = 0; kw < s->KW; kw++) {
        int a = s->pad_w - kw, b = s->W - 1 + s->pad_w - kw;
        int l = a <= 0 ? 0 : (a + s->stride_w - 1) / s->stride_w;
        int h = b < 0 ? 0 : b / s->stride_w + 1;
        r->lo[kw] = SG_MIN(l, s->OW);
        r->hi[kw] = SG_MAX(SG_MIN(h, s->OW), r->lo[kw]);
    }
}

/* One output row of one plane: y(OW), a(OW) from x(H,W). Visits each window in row-major
 * order (ih outer, kw inner), so ties and NaNs resolve exactly as in the reference. */
static void maxpool_row(const struct sg_pool2d_shape *s, const struct col_ranges *r, float *y,
                        int32_t *a, const float *x, int oh)
{
    int hs = oh * s->stride_h - s->pad_h;
    int h0 = SG_MAX(hs, 0), h1 = SG_MIN(hs + s->KH, s->H);
    for (int ow = 0; ow < s->OW; ow++) {
        y[ow] = -INFINITY;
        a[ow] = h0 * s->W + SG_MAX(ow * s->stride_w - s->pad_w, 0);
    }
    for (int ih = h0; ih < h1; ih++)
        for (int kw = 0; kw < s->KW; kw++) {
            int lo = r->lo[kw], hi = r->hi[kw], sw = s->stride_w, off = ih * s->W - s->pad_w + kw;
            for (int ow = lo; ow < hi; ow++) {
                float v = x[off + ow * sw];
                int take = v > y[ow] || v != v;
                y[ow] = take ? v : y[ow];
                a[ow] = take ? off + ow * sw : a[ow];
            }
        }
}

void maxpool2d_forward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                           int32_t *argmax, const float *inp)
{
    SG_UNUSED(c);
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW, P = (int64_t)s->B * s->C;
    struct col_ranges r;
    col_ranges_init(s, &r);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++)
        for (int oh = 0; oh < s->OH; oh++)
            maxpool_row(s, &r, out + p * L + (int64_t)oh * s->OW,
                        argmax + p * L + (int64_t)oh * s->OW, inp + p * HW, oh);
}

void maxpool2d_backward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                            const float *dout, const int32_t *argmax)
{
    SG_UNUSED(c);
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW, P = (int64_t)s->B * s->C;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        float *dx = dinp + p * HW;
        const float *dy = dout + p * L;
        const int32_t *a = argmax + p * L;
        memset(dx, 0, sizeof(float) * (size_t)HW);
        for (int64_t i = 0; i < L; i++) dx[a[i]] += dy[i];
    }
}

/* One output row of one plane: y(OW) = window sums / (KH*KW). */
static void avgpool_row(const struct sg_pool2d_shape *s, const struct col_ranges *r, float *y,
                        const float *x, int oh)
{
    int hs = oh * s->stride_h - s->pad_h;
    int h0 = SG_MAX(hs, 0), h1 = SG_MIN(hs + s->KH, s->H);
    float inv = 1.0f / (float)(s->KH * s->KW);
    for (int ow = 0; ow < s->OW; ow++) y[ow] = 0.0f;
    for (int ih = h0; ih < h1; ih++)
        for (int kw = 0; kw < s->KW; kw++) {
            int lo = r->lo[kw], hi = r->hi[kw], sw = s->stride_w;
            const float *row = x + ih * s->W - s->pad_w + kw;
            for (int ow = lo; ow < hi; ow++) y[ow] += row[ow * sw];
        }
    for (int ow = 0; ow < s->OW; ow++) y[ow] *= inv;
}

void avgpool2d_forward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                           const float *inp)
{
    SG_UNUSED(c);
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW, P = (int64_t)s->B * s->C;
    struct col_ranges r;
    col_ranges_init(s, &r);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++)
        for (int oh = 0; oh < s->OH; oh++)
            avgpool_row(s, &r, out + p * L + (int64_t)oh * s->OW, inp + p * HW, oh);
}

/* dx(H,W) += dy row oh spread over its windows, scaled by 1/(KH*KW). */
static void avgpool_row_backward(const struct sg_pool2d_shape *s, const struct col_ranges *r,
                                 float *dx, const float *dy, int oh)
{
    int hs = oh * s->stride_h - s->pad_h;
    int h0 = SG_MAX(hs, 0), h1 = SG_MIN(hs + s->KH, s->H);
    float inv = 1.0f / (float)(s->KH * s->KW);
    for (int ih = h0; ih < h1; ih++)
        for (int kw = 0; kw < s->KW; kw++) {
            int lo = r->lo[kw], hi = r->hi[kw], sw = s->stride_w;
            float *row = dx + ih * s->W - s->pad_w + kw;
            for (int ow = lo; ow < hi; ow++) row[ow * sw] += dy[ow] * inv;
        }
}

void avgpool2d_backward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                            const float *dout)
{
    SG_UNUSED(c);
    check_shape(s);
    int64_t HW = (int64_t)s->H * s->W, L = (int64_t)s->OH * s->OW, P = (int64_t)s->B * s->C;
    struct col_ranges r;
    col_ranges_init(s, &r);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        memset(dinp + p * HW, 0, sizeof(float) * (size_t)HW);
        for (int oh = 0; oh < s->OH; oh++)
            avgpool_row_backward(s, &r, dinp + p * HW, dout + p * L + (int64_t)oh * s->OW, oh);
    }
}

/* Global average pool (OH = OW = 1): one sum per plane. */
static float plane_mean(const float *x, int64_t HW)
{
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < HW; i++) acc += x[i];
    return acc / (float)HW;
}

void adaptive_avgpool2d_forward_cpu(struct sg_ctx *c, float *out, const float *inp, int B, int C,
                                    int H, int W, int OH, int OW)
{
    SG_UNUSED(c);
    check_adaptive(B, C, H, W, OH, OW);
    int64_t HW = (int64_t)H * W, L = (int64_t)OH * OW, P = (int64_t)B * C;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        const float *x = inp + p * HW;
        if (L == 1) {
            out[p] = plane_mean(x, HW);
            continue;
        }
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0 = ada_start(oh, OH, H), h1 = ada_end(oh, OH, H);
                int w0 = ada_start(ow, OW, W), w1 = ada_end(ow, OW, W);
                float acc = 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) acc += x[ih * W + iw];
                out[p * L + oh * OW + ow] = acc / (float)((h1 - h0) * (w1 - w0));
            }
    }
}

void adaptive_avgpool2d_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, int B, int C,
                                     int H, int W, int OH, int OW)
{
    SG_UNUSED(c);
    check_adaptive(B, C, H, W, OH, OW);
    int64_t HW = (int64_t)H * W, L = (int64_t)OH * OW, P = (int64_t)B * C;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < P; p++) {
        float *dx = dinp + p * HW;
        if (L == 1) {
            float g = dout[p] / (float)HW;
            for (int64_t i = 0; i < HW; i++) dx[i] = g;
            continue;
        }
        memset(dx, 0, sizeof(float) * (size_t)HW);
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0 = ada_start(oh, OH, H), h1 = ada_end(oh, OH, H);
                int w0 = ada_start(ow, OW, W), w1 = ada_end(ow, OW, W);
                float g = dout[p * L + oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) dx[ih * W + iw] += g;
            }
    }
}

/* ---- dispatch -------------------------------------------------------------------------------- */

#ifdef SG_CUDA
#define POOL_CUDA(name, call) call
#else
#define POOL_CUDA(name, call) SG_PANIC(name ": built without CUDA")
#endif

#define POOL_DISPATCH(name, cpu_call, cuda_call)                                                   \
    do {                                                                                           \
        switch (c->dev) {                                                                          \
        case SG_DEVICE_CPU:                                                                        \
            cpu_call;                                                                              \
            break;                                                                                 \
        case SG_DEVICE_CUDA:                                                                       \
            POOL_CUDA(name, cuda_call);                                                            \
            break;                                                                                 \
        default:                                                                                   \
            SG_PANIC(name ": unknown device %d", (int)c->dev);                                     \
        }                                                                                          \
    } while (0)

void op_maxpool2d_forward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                          int32_t *argmax, const float *inp)
{
    POOL_DISPATCH("maxpool2d forward", maxpool2d_forward_cpu(c, s, out, argmax, inp),
                  maxpool2d_forward_cuda(c, s, out, argmax, inp));
}

void op_maxpool2d_backward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                           const float *dout, const int32_t *argmax)
{
    POOL_DISPATCH("maxpool2d backward", maxpool2d_backward_cpu(c, s, dinp, dout, argmax),
                  maxpool2d_backward_cuda(c, s, dinp, dout, argmax));
}

void op_avgpool2d_forward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                          const float *inp)
{
    POOL_DISPATCH("avgpool2d forward", avgpool2d_forward_cpu(c, s, out, inp),
                  avgpool2d_forward_cuda(c, s, out, inp));
}

void op_avgpool2d_backward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                           const float *dout)
{
    POOL_DISPATCH("avgpool2d backward", avgpool2d_backward_cpu(c, s, dinp, dout),
                  avgpool2d_backward_cuda(c, s, dinp, dout));
}

void op_adaptive_avgpool2d_forward(struct sg_ctx *c, float *out, const float *inp, int B, int C,
                                   int H, int W, int OH, int OW)
{
    POOL_DISPATCH("adaptive_avgpool2d forward",
                  adaptive_avgpool2d_forward_cpu(c, out, inp, B, C, H, W, OH, OW),
                  adaptive_avgpool2d_forward_cuda(c, out, inp, B, C, H, W, OH, OW));
}

void op_adaptive_avgpool2d_backward(struct sg_ctx *c, float *dinp, const float *dout, int B, int C,
                                    int H, int W, int OH, int OW)
{
    POOL_DISPATCH("adaptive_avgpool2d backward",
                  adaptive_avgpool2d_backward_cpu(c, dinp, dout, B, C, H, W, OH, OW),
                  adaptive_avgpool2d_backward_cuda(c, dinp, dout, B, C, H, W, OH, OW));
}
