/*
 * ops/cuda/patch.cu — the layout ops of ops/patch.h on the GPU: patchify, token assembly with
 * class token and positional embedding, token gather/scatter, NCHW -> tokens with a mean token.
 * Semantics and summation orders are those of ops/patch.c (batch sums in b = 0..B-1 order per
 * element, the mean token in double over i = 0..HW-1), so results equal the CPU bit for bit.
 * Memory-bound copies: one thread per output element, consecutive threads on consecutive
 * addresses of the written tensor.
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/patch.h"
}

static int grid_for(int64_t n, int threads)
{
    int64_t g = CEIL_DIV(n, (int64_t)threads);
    return (int)(g < 65535 * 32 ? g : 65535 * 32);
}

/* patches (B*P, K) <-> img (B,Cin,S,S); one thread per patch element, grid-stride. */
__global__ void patchify_kernel(float *__restrict__ patches, float *__restrict__ img, int B,
                                int Cin, int S, int p, int to_patches)
{
    int G = S / p, P = G * G, K = Cin * p * p;
    int64_t n = (int64_t)B * P * K;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / K;
        int k = (int)(e % K), kx = k % p, ky = (k / p) % p, ch = k / (p * p);
        int64_t b = r / P;
        int gy = (int)(r % P) / G, gx = (int)(r % P) % G;
        int64_t pix = ((b * Cin + ch) * S + (int64_t)gy * p + ky) * S + (int64_t)gx * p + kx;
        if (to_patches)
            patches[e] = img[pix];
        else
            img[pix] = patches[e];
    }
}

__global__ void tokens_forward_kernel(float *x, const float *__restrict__ cls, const float *emb,
                                      const float *__restrict__ pos, int B, int T, int C)
{
    int ncls = cls ? 1 : 0;
    int64_t n = (int64_t)B * T * C;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int i = (int)(e % C);
        int64_t r = e / C;
        int t = (int)(r % T);
        float v = (ncls && t == 0) ? cls[i] : emb[((r / T) * (T - ncls) + t - ncls) * C + i];
        x[e] = pos ? v + pos[(int64_t)t * C + i] : v;
    }
}

/* dacc[i] += sum_b dx[b*stride + i] for i < n (b in order). */
__global__ void batch_sum_kernel(float *dacc, const float *__restrict__ dx, int B, int64_t n,
                                 int64_t stride)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float s = dacc[i];
        for (int b = 0; b < B; b++) s += dx[b * stride + i];
        dacc[i] = s;
    }
}

/* demb (B,T-1,C) = dx[:,1:,:] */
__global__ void drop_first_token_kernel(float *__restrict__ demb, const float *__restrict__ dx,
                                        int B, int T, int C)
{
    int64_t ec = (int64_t)(T - 1) * C, n = (int64_t)B * ec;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x)
        demb[e] = dx[(e / ec) * T * C + C + e % ec];
}

__global__ void gather_kernel(float *__restrict__ out, const float *__restrict__ x,
                              const int32_t *__restrict__ idx, int B, int T, int C)
{
    int64_t n = (int64_t)B * C;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = e / C;
        int t = idx ? idx[b] : 0;
        out[e] = x[(b * T + t) * C + e % C];
    }
}

__global__ void scatter_kernel(float *__restrict__ dx, const float *__restrict__ dout,
                               const int32_t *__restrict__ idx, int B, int T, int C)
{
    int64_t n = (int64_t)B * T * C;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = e / C, b = r / T;
        int t = (int)(r % T), tb = idx ? idx[b] : 0;
        dx[e] = t == tb ? dout[b * C + e % C] : 0.0f;
    }
}

/* one thread per (b, ch): the mean token in double over i in order, then the HW copies
 * (tok rows are C apart: the writes of a warp over consecutive ch are coalesced). */
__global__ void nchw_tokens_forward_kernel(float *__restrict__ tok, const float *__restrict__ x,
                                           int B, int C, int HW)
{
    int64_t n = (int64_t)B * C;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = e / C;
        int ch = (int)(e % C);
        const float *xp = x + e * HW;
        float *tk = tok + b * (HW + 1) * C;
        double s = 0;
        for (int i = 0; i < HW; i++) {
            float v = xp[i];
            tk[(int64_t)(i + 1) * C + ch] = v;
            s += v;
        }
        tk[ch] = (float)(s / HW);
    }
}

__global__ void nchw_tokens_backward_kernel(float *__restrict__ dx, const float *__restrict__ dtok,
                                            int B, int C, int HW)
{
    int64_t n = (int64_t)B * C * HW;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        int i = (int)(e % HW);
        int64_t bc = e / HW, b = bc / C;
        int ch = (int)(bc % C);
        const float *dt = dtok + b * (HW + 1) * C;
        dx[e] = dt[(int64_t)(i + 1) * C + ch] + dt[ch] / (float)HW;
    }
}

/* ---- launchers ---------------------------------------------------------------------------- */

#define LAUNCH(kernel, n, ...)                                                                     \
    do {                                                                                           \
        if ((n) > 0) {                                                                             \
            kernel<<<grid_for((n), 256), 256, 0, sg_cuda_get(c)->stream>>>(__VA_ARGS__);           \
            CUDA_CHECK(cudaGetLastError());                                                        \
        }                                                                                          \
    } while (0)

extern "C" void patchify_forward_cuda(struct sg_ctx *c, float *patches, const float *img, int B,
                                      int Cin, int S, int p)
{
    int64_t n = (int64_t)B * Cin * S * S;
    LAUNCH(patchify_kernel, n, patches, (float *)img, B, Cin, S, p, 1);
}

extern "C" void patchify_backward_cuda(struct sg_ctx *c, float *dimg, const float *dpatches, int B,
                                       int Cin, int S, int p)
{
    int64_t n = (int64_t)B * Cin * S * S;
    LAUNCH(patchify_kernel, n, (float *)dpatches, dimg, B, Cin, S, p, 0);
}

extern "C" void tokens_forward_cuda(struct sg_ctx *c, float *x, const float *cls, const float *emb,
                                    const float *pos, int B, int T, int C)
{
    int64_t n = (int64_t)B * T * C;
    LAUNCH(tokens_forward_kernel, n, x, cls, emb, pos, B, T, C);
}

extern "C" void tokens_backward_cuda(struct sg_ctx *c, float *demb, float *dcls, float *dpos,
                                     const float *dx, int has_cls, int B, int T, int C)
{
    int64_t tc = (int64_t)T * C;
    if (dpos) LAUNCH(batch_sum_kernel, tc, dpos, dx, B, tc, tc);
    if (dcls && has_cls) LAUNCH(batch_sum_kernel, (int64_t)C, dcls, dx, B, (int64_t)C, tc);
    if (!demb || (demb == dx && !has_cls)) return;
    if (has_cls) {
        LAUNCH(drop_first_token_kernel, (int64_t)B * (T - 1) * C, demb, dx, B, T, C);
    } else {
        CUDA_CHECK(cudaMemcpyAsync(demb, dx, (size_t)B * tc * sizeof(float),
                                   cudaMemcpyDeviceToDevice, sg_cuda_get(c)->stream));
    }
}

extern "C" void gather_tokens_forward_cuda(struct sg_ctx *c, float *out, const float *x,
                                           const int32_t *idx, int B, int T, int C)
{
    LAUNCH(gather_kernel, (int64_t)B * C, out, x, idx, B, T, C);
}

extern "C" void gather_tokens_backward_cuda(struct sg_ctx *c, float *dx, const float *dout,
                                            const int32_t *idx, int B, int T, int C)
{
    LAUNCH(scatter_kernel, (int64_t)B * T * C, dx, dout, idx, B, T, C);
}

extern "C" void nchw_tokens_forward_cuda(struct sg_ctx *c, float *tok, const float *x, int B, int C,
                                         int HW)
{
    LAUNCH(nchw_tokens_forward_kernel, (int64_t)B * C, tok, x, B, C, HW);
}

extern "C" void nchw_tokens_backward_cuda(struct sg_ctx *c, float *dx, const float *dtok, int B,
                                          int C, int HW)
{
    LAUNCH(nchw_tokens_backward_kernel, (int64_t)B * C * HW, dx, dtok, B, C, HW);
}
