/*
 * ops/cuda/softmax.cu — softmax over the last dim of inp(N,C) on the GPU (ops/softmax.h).
 * PyTorch: torch.softmax(x, dim=-1) and its autograd backward.
 *
 *   forward:  m = max_c x,  s = sum_c exp(x - m),  out = exp(x - m) / s
 *   backward: dinp = out * (dout - sum_c dout * out)        (overwrite; from forward's out)
 * out may alias inp and dinp may alias dout: every element is read and written by one thread.
 *
 * One warp per row when C <= 1024 (8 rows per 256-thread block), else one block per row; float
 * lane partials reduced by a fixed shuffle / shared-memory tree (deterministic), accurate expf
 * (no fast math). Three passes over the row for forward (max, sum, write), two for backward;
 * rows are re-read from L1/L2. Differs from the CPU (double row sums, polynomial exp) by ~1e-6
 * relative.
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/softmax.h"
}

/* ---- row helpers: a row is handled by a warp (WARP) or by the whole block ------------------- */

#define SMX_THREADS     256
#define SMX_WARP_MAX_C  1024 /* rows up to this length: one warp per row */
#define SMX_BIG_THREADS 1024 /* block-per-row threads for very long rows (C >= 8192) */

__device__ __forceinline__ float smx_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Max over the block (as block_sum in common.cuh); `sh` holds 32 floats. */
__device__ __forceinline__ float smx_block_max(float v, float *sh)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    v = smx_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nwarp ? sh[lane] : -INFINITY;
    return smx_warp_max(v);
}

template <bool WARP> __device__ __forceinline__ int64_t smx_row()
{
    return WARP ? (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : blockIdx.x;
}
template <bool WARP> __device__ __forceinline__ int smx_tid()
{
    return WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
}
template <bool WARP> __device__ __forceinline__ int smx_nthr()
{
    return WARP ? 32 : (int)blockDim.x;
}
template <bool WARP> __device__ __forceinline__ float smx_sum(float v, float *sh)
{
    return WARP ? warp_sum(v) : block_sum(v, sh);
}
template <bool WARP> __device__ __forceinline__ float smx_max(float v, float *sh)
{
    return WARP ? smx_warp_max(v) : smx_block_max(v, sh);
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* out (N,C) = softmax of the rows of inp (N,C). No __restrict__: out may alias inp. In block mode
 * the grid is exactly N blocks, so the early return never splits a block. */
template <bool WARP> __global__ void smx_forward_kernel(float *out, const float *inp, int N, int C)
{
    __shared__ float sh[32];
    int64_t row = smx_row<WARP>();
    if (row >= N) return;
    int tid = smx_tid<WARP>(), nt = smx_nthr<WARP>();
    const float *x = inp + row * C;
    float *y = out + row * C;
    float m = -INFINITY;
    for (int j = tid; j < C; j += nt) m = fmaxf(m, x[j]);
    m = smx_max<WARP>(m, sh);
    float s = 0.0f;
    for (int j = tid; j < C; j += nt) s += expf(x[j] - m);
    float inv = 1.0f / smx_sum<WARP>(s, sh);
    for (int j = tid; j < C; j += nt) y[j] = expf(x[j] - m) * inv;
}

/* dinp (N,C) = out * (dout - <dout, out>) per row. dinp may alias dout. */
template <bool WARP>
__global__ void smx_backward_kernel(float *dinp, const float *dout, const float *out, int N, int C)
{
    __shared__ float sh[32];
    int64_t row = smx_row<WARP>();
    if (row >= N) return;
    int tid = smx_tid<WARP>(), nt = smx_nthr<WARP>();
    const float *dy = dout + row * C, *y = out + row * C;
    float *dx = dinp + row * C;
    float dot = 0.0f;
    for (int j = tid; j < C; j += nt) dot += dy[j] * y[j];
    dot = smx_sum<WARP>(dot, sh);
    for (int j = tid; j < C; j += nt) dx[j] = y[j] * (dy[j] - dot);
}

/* ---- launchers ---------------------------------------------------------------------------- */

extern "C" void softmax_forward_cuda(struct sg_ctx *c, float *out, const float *inp, int N, int C)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && C > 0, "softmax: bad dims N=%d C=%d", N, C);
    if (N == 0) return;
    SG_CHECK(out && inp, "softmax forward: NULL out/inp");
    if (C <= SMX_WARP_MAX_C) {
        int grid = CEIL_DIV(N, SMX_THREADS / 32);
        smx_forward_kernel<true><<<grid, SMX_THREADS, 0, s->stream>>>(out, inp, N, C);
    } else {
        int threads = C >= 8192 ? SMX_BIG_THREADS : SMX_THREADS;
        smx_forward_kernel<false><<<N, threads, 0, s->stream>>>(out, inp, N, C);
    }
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void softmax_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout,
                                      const float *out, int N, int C)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && C > 0, "softmax: bad dims N=%d C=%d", N, C);
    if (N == 0) return;
    SG_CHECK(dinp && dout && out, "softmax backward: NULL dinp/dout/out");
    if (C <= SMX_WARP_MAX_C) {
        int grid = CEIL_DIV(N, SMX_THREADS / 32);
        smx_backward_kernel<true><<<grid, SMX_THREADS, 0, s->stream>>>(dinp, dout, out, N, C);
    } else {
        int threads = C >= 8192 ? SMX_BIG_THREADS : SMX_THREADS;
        smx_backward_kernel<false><<<N, threads, 0, s->stream>>>(dinp, dout, out, N, C);
    }
    CUDA_CHECK(cudaGetLastError());
}
