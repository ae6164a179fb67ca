/*
 * ops/cuda/norm.cu — LayerNorm over the last dim of inp(N,C) on the GPU (ops/norm.h).
 * PyTorch: torch.nn.LayerNorm(C, eps); llm.c's layernorm.cuh for the kernel structure.
 *
 *   forward:  mean = sum x / C,  rstd = 1 / sqrt(sum (x - mean)^2 / C + eps)
 *             xhat = (x - mean) * rstd,  out = xhat * w + b         (w, b may be NULL)
 *             fills mean(N), rstd(N) for backward.
 *   backward: dnorm = dout * w
 *             dinp = rstd * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat))   (overwrite)
 *             dw += sum_n dout * xhat,  db += sum_n dout                       (accumulate)
 *
 * One warp per row (8 rows per 256-thread block); the variance is two-pass (sum of squared
 * deviations after the mean), as the CPU reference, so large-mean rows do not cancel. dw/db are
 * a deterministic two-stage column sum: per-chunk partials (rows split by a shape-only rule,
 * common.cuh) into the context scratch, then the chunks summed in order. No atomics.
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/norm.h"
}

/* ---- kernels ------------------------------------------------------------------------------ */

#define LN_ROWS_PER_BLOCK 8 /* warps per block, one row each */

/* out may alias inp: each element is read then written by the same lane. */
__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                         const float *__restrict__ w, const float *__restrict__ b,
                                         int N, int C, float eps)
{
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * LN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N) return;
    const float *x = inp + (int64_t)row * C;
    float *y = out + (int64_t)row * C;
    float sum = 0.0f;
    for (int i = lane; i < C; i += 32) sum += x[i];
    float m = warp_sum(sum) / C;
    float sq = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float d = x[i] - m;
        sq += d * d;
    }
    float rs = 1.0f / sqrtf(warp_sum(sq) / C + eps);
    for (int i = lane; i < C; i += 32) {
        float v = (x[i] - m) * rs;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = rs;
    }
}

/* dinp (overwrite); dinp may alias dout (same lane reads then writes each element). */
__global__ void layernorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                               const float *__restrict__ w,
                                               const float *__restrict__ mean,
                                               const float *__restrict__ rstd, int N, int C)
{
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * LN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N) return;
    const float *x = inp + (int64_t)row * C, *g = dout + (int64_t)row * C;
    float *dx = dinp + (int64_t)row * C;
    float m = mean[row], rs = rstd[row];
    float sdn = 0.0f, sdnx = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float dn = w ? w[i] * g[i] : g[i];
        sdn += dn;
        sdnx += dn * (x[i] - m) * rs;
    }
    float dn_mean = warp_sum(sdn) / C, dnx_mean = warp_sum(sdnx) / C;
    for (int i = lane; i < C; i += 32) {
        float dn = w ? w[i] * g[i] : g[i];
        float xhat = (x[i] - m) * rs;
        dx[i] = rs * (dn - dn_mean - xhat * dnx_mean);
    }
}

/* First stage of dw/db: partial(nchunk,2,C): [k][0][j] = sum dout*xhat, [k][1][j] = sum dout over
 * the rows of chunk k. Block (32,8): a warp covers 32 consecutive columns of one row; the 8 row
 * phases are summed in fixed order. Grid (ceil(C/32), nchunk). */
__global__ void
layernorm_param_grad_partial_kernel(float *__restrict__ partial, const float *__restrict__ dout,
                                    const float *__restrict__ inp, const float *__restrict__ mean,
                                    const float *__restrict__ rstd, int N, int C, int rows)
{
    __shared__ float shw[8][33], shb[8][33];
    int j = blockIdx.x * 32 + threadIdx.x;
    int r0 = blockIdx.y * rows, r1 = min(N, r0 + rows);
    float aw = 0.0f, ab = 0.0f;
    if (j < C)
        for (int r = r0 + threadIdx.y; r < r1; r += 8) {
            int64_t idx = (int64_t)r * C + j;
            float g = dout[idx];
            aw += g * (inp[idx] - mean[r]) * rstd[r];
            ab += g;
        }
    shw[threadIdx.y][threadIdx.x] = aw;
    shb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y != 0 || j >= C) return;
    float sw = 0.0f, sb = 0.0f;
    for (int i = 0; i < 8; i++) {
        sw += shw[i][threadIdx.x];
        sb += shb[i][threadIdx.x];
    }
    float *p = partial + (int64_t)blockIdx.y * 2 * C;
    p[j] = sw;
    p[C + j] = sb;
}

/* ---- launchers ---------------------------------------------------------------------------- */

extern "C" void layernorm_forward_cuda(struct sg_ctx *c, float *out, float *mean, float *rstd,
                                       const float *inp, const float *w, const float *b, int N,
                                       int C, float eps)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && C > 0, "bad layernorm dims N=%d C=%d", N, C);
    SG_CHECK(eps >= 0.0f, "negative eps %g", (double)eps);
    if (N == 0) return;
    SG_CHECK(out && inp, "NULL out/inp");
    int grid = CEIL_DIV(N, LN_ROWS_PER_BLOCK);
    layernorm_forward_kernel<<<grid, 32 * LN_ROWS_PER_BLOCK, 0, s->stream>>>(out, mean, rstd, inp,
                                                                             w, b, N, C, eps);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void layernorm_backward_cuda(struct sg_ctx *c, float *dinp, float *dw, float *db,
                                        const float *dout, const float *inp, const float *w,
                                        const float *mean, const float *rstd, int N, int C)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && C > 0, "bad layernorm dims N=%d C=%d", N, C);
    if (N == 0) return;
    SG_CHECK(dout && inp && mean && rstd, "NULL dout/inp/mean/rstd");
    /* The dw/db partials read dout before the dinp kernel runs (stream order), so dinp may
     * alias dout. */
    float *partial = NULL;
    int rows = sg_cuda_colsum_rows(N), nchunk = CEIL_DIV(N, rows);
    if (dw || db) {
        partial = (float *)sg_cuda_scratch(c, sizeof(float) * 2 * (size_t)nchunk * (size_t)C);
        dim3 grid(CEIL_DIV(C, 32), nchunk), block(32, 8);
        layernorm_param_grad_partial_kernel<<<grid, block, 0, s->stream>>>(partial, dout, inp, mean,
                                                                           rstd, N, C, rows);
        CUDA_CHECK(cudaGetLastError());
    }
    if (dinp) {
        int grid = CEIL_DIV(N, LN_ROWS_PER_BLOCK);
        layernorm_backward_dinp_kernel<<<grid, 32 * LN_ROWS_PER_BLOCK, 0, s->stream>>>(
            dinp, dout, inp, w, mean, rstd, N, C);
        CUDA_CHECK(cudaGetLastError());
    }
    if (dw) sg_cuda_colsum_finalize(s, dw, partial, nchunk, C, 2 * (int64_t)C);
    if (db) sg_cuda_colsum_finalize(s, db, partial + C, nchunk, C, 2 * (int64_t)C);
}
