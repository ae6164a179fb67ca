/*
 * ops/cuda/pool.cu — 2-D max / average / adaptive-average pooling on NCHW images on the GPU
 * (ops/pool.h). PyTorch: F.max_pool2d(return_indices=True), F.avg_pool2d(count_include_pad=True),
 * F.adaptive_avg_pool2d.
 *
 *   window of output (oh, ow): rows [oh*sh - ph, +KH) x cols [ow*sw - pw, +KW), clipped to the
 * input maxpool:  out = max over the clipped window (row-major scan, first max wins, NaN
 * propagates: `v > best || isnan(v)`, ATen's rule), argmax = ih*W + iw inside the (H,W) plane
 *             backward: dinp[plane][argmax[o]] += dout[o]            (dinp OVERWRITE)
 *   avgpool:  out = (sum of the in-bounds window) / (KH*KW)
 *             backward: dinp = sum over windows holding the pixel of dout / (KH*KW)   (OVERWRITE)
 *   adaptive: rows [floor(oh*H/OH), ceil((oh+1)*H/OH)), same for columns; out = window mean
 *             backward: dinp = sum over windows holding the pixel of dout / count    (OVERWRITE)
 *
 * Forward: one thread per output element. Backward is a GATHER (one thread per input element
 * visits the few windows that contain it), so there are no atomics and the result is
 * deterministic; the contributions are added in the CPU path's order, from 0:
 *  - maxpool: output index ascending, so dinp is bit-identical to maxpool2d_backward_cpu
 *    (argmax must come from forward: it is always inside its own window);
 *  - avgpool: oh ascending, ow descending (the CPU row loop's order; CPU may contract to FMA);
 *  - adaptive: (oh, ow) ascending, dout/count each (bit-identical to the CPU for OH*OW > 1).
 * maxpool and avgpool forward scan the window in the CPU's order (bit-identical); the global
 * pool (OH = OW = 1) is one warp per plane (lane partials + warp tree: ~1 ulp of the CPU's sum).
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/pool.h"
}

/* ---- kernels ------------------------------------------------------------------------------ */

#define POOL_THREADS 256

/* Pooling geometry by value (kernel argument). */
struct pool_geom {
    int H, W, KH, KW, sh, sw, ph, pw, OH, OW;
};

/* Outputs o (0 <= o < O) whose window [o*s - pad, o*s - pad + k) contains input index i:
 * o in [*lo, *hi] (empty when *lo > *hi). i + pad >= 0 always. */
__device__ __forceinline__ void pool_cover(int i, int pad, int k, int s, int O, int *lo, int *hi)
{
    int num = i + pad - k + 1;
    *lo = num <= 0 ? 0 : (num + s - 1) / s;
    *hi = min(O - 1, (i + pad) / s);
}

/* torch's adaptive window [floor(o*I/O), ceil((o+1)*I/O)). */
__device__ __forceinline__ int ada_lo(int o, int O, int I)
{
    return (int)(((int64_t)o * I) / O);
}
__device__ __forceinline__ int ada_hi(int o, int O, int I)
{
    return (int)((((int64_t)o + 1) * I + O - 1) / O);
}

/* out, argmax (P,OH,OW) from inp (P,H,W); total = P*OH*OW. */
__global__ void pool_max_fwd_kernel(float *__restrict__ out, int32_t *__restrict__ argmax,
                                    const float *__restrict__ inp, struct pool_geom g,
                                    int64_t total)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int ow = (int)(i % g.OW);
        int64_t t = i / g.OW;
        int oh = (int)(t % g.OH);
        const float *x = inp + (t / g.OH) * g.H * g.W;
        int hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
        int h0 = max(hs, 0), h1 = min(hs + g.KH, g.H), w0 = max(ws, 0), w1 = min(ws + g.KW, g.W);
        float best = -INFINITY;
        int32_t idx = h0 * g.W + w0;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) {
                float v = x[ih * g.W + iw];
                if (v > best || isnan(v)) {
                    best = v;
                    idx = ih * g.W + iw;
                }
            }
        out[i] = best;
        argmax[i] = idx;
    }
}

/* dinp (P,H,W) gathered from dout, argmax (P,OH,OW); total = P*H*W. */
__global__ void pool_max_bwd_kernel(float *__restrict__ dinp, const float *__restrict__ dout,
                                    const int32_t *__restrict__ argmax, struct pool_geom g,
                                    int64_t total)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t L = (int64_t)g.OH * g.OW;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int iw = (int)(i % g.W);
        int64_t t = i / g.W;
        int ih = (int)(t % g.H);
        int64_t base = (t / g.H) * L;
        int oh0, oh1, ow0, ow1;
        pool_cover(ih, g.ph, g.KH, g.sh, g.OH, &oh0, &oh1);
        pool_cover(iw, g.pw, g.KW, g.sw, g.OW, &ow0, &ow1);
        int32_t self = ih * g.W + iw;
        float acc = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) {
                int64_t o = base + (int64_t)oh * g.OW + ow;
                if (argmax[o] == self) acc += dout[o];
            }
        dinp[i] = acc;
    }
}

/* out (P,OH,OW) = window sums * inv from inp (P,H,W); total = P*OH*OW. */
__global__ void pool_avg_fwd_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                    struct pool_geom g, float inv, int64_t total)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int ow = (int)(i % g.OW);
        int64_t t = i / g.OW;
        int oh = (int)(t % g.OH);
        const float *x = inp + (t / g.OH) * g.H * g.W;
        int hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
        int h0 = max(hs, 0), h1 = min(hs + g.KH, g.H), w0 = max(ws, 0), w1 = min(ws + g.KW, g.W);
        float acc = 0.0f;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) acc += x[ih * g.W + iw];
        out[i] = acc * inv;
    }
}

/* dinp (P,H,W) = sum of dout * inv over the windows holding each pixel; total = P*H*W. */
__global__ void pool_avg_bwd_kernel(float *__restrict__ dinp, const float *__restrict__ dout,
                                    struct pool_geom g, float inv, int64_t total)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t L = (int64_t)g.OH * g.OW;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int iw = (int)(i % g.W);
        int64_t t = i / g.W;
        int ih = (int)(t % g.H);
        const float *dy = dout + (t / g.H) * L;
        int oh0, oh1, ow0, ow1;
        pool_cover(ih, g.ph, g.KH, g.sh, g.OH, &oh0, &oh1);
        pool_cover(iw, g.pw, g.KW, g.sw, g.OW, &ow0, &ow1);
        float acc = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow1; ow >= ow0; ow--) acc += dy[(int64_t)oh * g.OW + ow] * inv;
        dinp[i] = acc;
    }
}

/* Global average pool: out(P) = mean of each (HW) plane; one warp per plane. */
__global__ void pool_global_avg_fwd_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                           int64_t P, int64_t HW)
{
    int lane = threadIdx.x & 31;
    int64_t p = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (p >= P) return;
    const float *x = inp + p * HW;
    float acc = 0.0f;
    for (int64_t i = lane; i < HW; i += 32) acc += x[i];
    acc = warp_sum(acc);
    if (lane == 0) out[p] = acc / (float)HW;
}

/* General adaptive average pool: out (P,OH,OW) from inp (P,H,W); total = P*OH*OW. */
__global__ void pool_ada_fwd_kernel(float *__restrict__ out, const float *__restrict__ inp, int H,
                                    int W, int OH, int OW, int64_t total)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int ow = (int)(i % OW);
        int64_t t = i / OW;
        int oh = (int)(t % OH);
        const float *x = inp + (t / OH) * H * W;
        int h0 = ada_lo(oh, OH, H), h1 = ada_hi(oh, OH, H);
        int w0 = ada_lo(ow, OW, W), w1 = ada_hi(ow, OW, W);
        float acc = 0.0f;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) acc += x[ih * W + iw];
        out[i] = acc / (float)((h1 - h0) * (w1 - w0));
    }
}

/* Adaptive backward, gather: dinp (P,H,W) from dout (P,OH,OW); total = P*H*W. Outputs whose
 * window holds row ih: oh in [floor(ih*OH/H), ceil((ih+1)*OH/H) - 1] (membership re-checked). */
__global__ void pool_ada_bwd_kernel(float *__restrict__ dinp, const float *__restrict__ dout, int H,
                                    int W, int OH, int OW, int64_t total)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t L = (int64_t)OH * OW;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int iw = (int)(i % W);
        int64_t t = i / W;
        int ih = (int)(t % H);
        const float *dy = dout + (t / H) * L;
        int oh0 = (int)(((int64_t)ih * OH) / H);
        int oh1 = min(OH - 1, (int)((((int64_t)ih + 1) * OH + H - 1) / H) - 1);
        int ow0 = (int)(((int64_t)iw * OW) / W);
        int ow1 = min(OW - 1, (int)((((int64_t)iw + 1) * OW + W - 1) / W) - 1);
        float acc = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++) {
            int h0 = ada_lo(oh, OH, H), h1 = ada_hi(oh, OH, H);
            if (ih < h0 || ih >= h1) continue;
            for (int ow = ow0; ow <= ow1; ow++) {
                int w0 = ada_lo(ow, OW, W), w1 = ada_hi(ow, OW, W);
                if (iw < w0 || iw >= w1) continue;
                acc += dy[(int64_t)oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));
            }
        }
        dinp[i] = acc;
    }
}

/* Global average pool backward: dinp (P,HW) = dout[p] / HW; total = P*HW. */
__global__ void pool_global_avg_bwd_kernel(float *__restrict__ dinp, const float *__restrict__ dout,
                                           int64_t HW, int64_t total)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride)
        dinp[i] = dout[i / HW] / (float)HW;
}

/* ---- launchers ---------------------------------------------------------------------------- */

/* Blocks for `work` threads, capped at 32 per SM (grid-stride beyond). */
static int pool_grid(const struct sg_cuda *s, int64_t work)
{
    int64_t blocks = CEIL_DIV(work, (int64_t)POOL_THREADS);
    return (int)SG_MAX((int64_t)1, SG_MIN(blocks, (int64_t)s->num_sms * 32));
}

/* Validates s (as the CPU path does) and returns its geometry. */
static struct pool_geom pool_geom_of(const struct sg_pool2d_shape *s)
{
    struct sg_pool2d_shape t = *s;
    sg_pool2d_shape_finish(&t);
    SG_CHECK(t.OH == s->OH && t.OW == s->OW, "pool2d: OH/OW (%d,%d) inconsistent, expected (%d,%d)",
             s->OH, s->OW, t.OH, t.OW);
    struct pool_geom g = {s->H,        s->W,     s->KH,    s->KW, s->stride_h,
                          s->stride_w, s->pad_h, s->pad_w, s->OH, s->OW};
    return g;
}

static void check_adaptive(int B, int C, int H, int W, int OH, int OW)
{
    SG_CHECK(B > 0 && C > 0 && H > 0 && W > 0 && OH > 0 && OW > 0,
             "adaptive_avgpool2d: dims must be positive");
}

extern "C" void maxpool2d_forward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s,
                                       float *out, int32_t *argmax, const float *inp)
{
    struct sg_cuda *cs = sg_cuda_get(c);
    struct pool_geom g = pool_geom_of(s);
    SG_CHECK(out && argmax && inp, "maxpool2d forward: NULL out/argmax/inp");
    int64_t total = (int64_t)s->B * s->C * s->OH * s->OW;
    pool_max_fwd_kernel<<<pool_grid(cs, total), POOL_THREADS, 0, cs->stream>>>(out, argmax, inp, g,
                                                                               total);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void maxpool2d_backward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s,
                                        float *dinp, const float *dout, const int32_t *argmax)
{
    struct sg_cuda *cs = sg_cuda_get(c);
    struct pool_geom g = pool_geom_of(s);
    SG_CHECK(dinp && dout && argmax, "maxpool2d backward: NULL dinp/dout/argmax");
    int64_t total = (int64_t)s->B * s->C * s->H * s->W;
    pool_max_bwd_kernel<<<pool_grid(cs, total), POOL_THREADS, 0, cs->stream>>>(dinp, dout, argmax,
                                                                               g, total);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void avgpool2d_forward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s,
                                       float *out, const float *inp)
{
    struct sg_cuda *cs = sg_cuda_get(c);
    struct pool_geom g = pool_geom_of(s);
    SG_CHECK(out && inp, "avgpool2d forward: NULL out/inp");
    int64_t total = (int64_t)s->B * s->C * s->OH * s->OW;
    float inv = 1.0f / (float)(s->KH * s->KW);
    pool_avg_fwd_kernel<<<pool_grid(cs, total), POOL_THREADS, 0, cs->stream>>>(out, inp, g, inv,
                                                                               total);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void avgpool2d_backward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s,
                                        float *dinp, const float *dout)
{
    struct sg_cuda *cs = sg_cuda_get(c);
    struct pool_geom g = pool_geom_of(s);
    SG_CHECK(dinp && dout, "avgpool2d backward: NULL dinp/dout");
    int64_t total = (int64_t)s->B * s->C * s->H * s->W;
    float inv = 1.0f / (float)(s->KH * s->KW);
    pool_avg_bwd_kernel<<<pool_grid(cs, total), POOL_THREADS, 0, cs->stream>>>(dinp, dout, g, inv,
                                                                               total);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void adaptive_avgpool2d_forward_cuda(struct sg_ctx *c, float *out, const float *inp,
                                                int B, int C, int H, int W, int OH, int OW)
{
    struct sg_cuda *cs = sg_cuda_get(c);
    check_adaptive(B, C, H, W, OH, OW);
    SG_CHECK(out && inp, "adaptive_avgpool2d forward: NULL out/inp");
    int64_t P = (int64_t)B * C;
    if (OH == 1 && OW == 1) {
        int64_t blocks = CEIL_DIV(P, (int64_t)(POOL_THREADS / 32));
        SG_CHECK(blocks <= INT32_MAX, "adaptive_avgpool2d: too many planes (%lld)", (long long)P);
        pool_global_avg_fwd_kernel<<<(int)blocks, POOL_THREADS, 0, cs->stream>>>(out, inp, P,
                                                                                 (int64_t)H * W);
    } else {
        int64_t total = P * OH * OW;
        pool_ada_fwd_kernel<<<pool_grid(cs, total), POOL_THREADS, 0, cs->stream>>>(out, inp, H, W,
                                                                                   OH, OW, total);
    }
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void adaptive_avgpool2d_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout,
                                                 int B, int C, int H, int W, int OH, int OW)
{
    struct sg_cuda *cs = sg_cuda_get(c);
    check_adaptive(B, C, H, W, OH, OW);
    SG_CHECK(dinp && dout, "adaptive_avgpool2d backward: NULL dinp/dout");
    int64_t total = (int64_t)B * C * H * W;
    if (OH == 1 && OW == 1)
        pool_global_avg_bwd_kernel<<<pool_grid(cs, total), POOL_THREADS, 0, cs->stream>>>(
            dinp, dout, (int64_t)H * W, total);
    else
        pool_ada_bwd_kernel<<<pool_grid(cs, total), POOL_THREADS, 0, cs->stream>>>(dinp, dout, H, W,
                                                                                   OH, OW, total);
    CUDA_CHECK(cudaGetLastError());
}
