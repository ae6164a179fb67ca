/*
 * ops/cuda/loss.cu — softmax cross-entropy with label smoothing on the GPU (ops/loss.h).
 * PyTorch: F.cross_entropy(logits, targets, reduction='mean', label_smoothing=ls).
 *
 *   per row n (t = targets[n], or n when targets is NULL):
 *     m = max_j x,  s = sum_j exp(x - m),  lse = m + log s,  sx = sum_j x
 *     losses[n] = lse - (1 - ls) * x[t] - (ls / V) * sx      (evaluated in double from the
 *                                                              float row sums)
 *     probs[n,j] = exp(x_j - m) / s
 *   return value: mean_n losses[n], summed in double by one block in a fixed order
 *   backward: dlogits = (dloss / N) * (probs - q),  q = ls/V + (1 - ls) [j == t]   (overwrite)
 *
 * SYNCHRONISATION: op_cross_entropy_forward returns the mean loss as a host float, so the forward
 * waits for the stream once (one 16-byte device-to-host copy of {mean, first bad row}); that copy
 * also carries the target check: a target outside [0, V) in forward aborts on the host with the
 * CPU path's message. Backward does not synchronise; a bad target there is a device-side assert
 * (the kernel aborts, the next CUDA call reports "device-side assert triggered").
 *
 * Forward: one warp per row for V <= 1024 (8 rows per block), else one block per row; float lane
 * partials with a fixed shuffle/shared tree (deterministic); accurate expf/logf. Backward: a
 * block-stride over rows, threads over columns; the same float formula as the CPU path
 * (bit-identical given the same probs).
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/loss.h"
}

/* Device-side assertion that stays on under NDEBUG: CUDA declares __assert_fail (what assert()
 * calls) for the device pass only, glibc only without NDEBUG; declare it for the host pass. */
#ifndef __CUDA_ARCH__
extern "C" void __assert_fail(const char *, const char *, unsigned int, const char *) __THROW;
#endif

/* ---- row helpers: a row is handled by a warp (WARP) or by the whole block ------------------- */

#define CE_THREADS      256
#define CE_WARP_MAX_V   1024
#define CE_BIG_THREADS  1024 /* block-per-row threads for V >= 8192 */
#define CE_MEAN_THREADS 1024
#define CE_NO_BAD       0x7f7f7f7f /* "no bad row": the byte pattern of the memset below */

/* What forward copies back to the host. */
struct ce_result {
    double mean;
    int bad_row; /* first row with a target outside [0, V), or CE_NO_BAD */
    int bad_val; /* its target */
};

__device__ __forceinline__ float ce_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float ce_block_max(float v, float *sh)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    v = ce_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nwarp ? sh[lane] : -INFINITY;
    return ce_warp_max(v);
}

template <bool WARP> __device__ __forceinline__ int64_t ce_row()
{
    return WARP ? (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : blockIdx.x;
}
template <bool WARP> __device__ __forceinline__ int ce_tid()
{
    return WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
}
template <bool WARP> __device__ __forceinline__ int ce_nthr()
{
    return WARP ? 32 : (int)blockDim.x;
}
template <bool WARP> __device__ __forceinline__ float ce_sum(float v, float *sh)
{
    return WARP ? warp_sum(v) : block_sum(v, sh);
}
template <bool WARP> __device__ __forceinline__ float ce_max(float v, float *sh)
{
    return WARP ? ce_warp_max(v) : ce_block_max(v, sh);
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* Per row: rowloss[n] (double), losses[n] and probs[n,:] when non-NULL. A bad target records the
 * row in *bad (atomicMin: the smallest bad row, whatever the order) and uses column 0. */
template <bool WARP>
__global__ void ce_forward_kernel(double *__restrict__ rowloss, float *__restrict__ losses,
                                  float *__restrict__ probs, int *__restrict__ bad,
                                  const float *__restrict__ logits,
                                  const int32_t *__restrict__ targets, int N, int V, float ls)
{
    __shared__ float sh[32];
    int64_t row = ce_row<WARP>();
    if (row >= N) return;
    int tid = ce_tid<WARP>(), nt = ce_nthr<WARP>();
    const float *x = logits + row * V;
    float m = -INFINITY, sx = 0.0f;
    for (int j = tid; j < V; j += nt) {
        m = fmaxf(m, x[j]);
        sx += x[j];
    }
    m = ce_max<WARP>(m, sh);
    sx = ce_sum<WARP>(sx, sh);
    float s = 0.0f;
    for (int j = tid; j < V; j += nt) s += expf(x[j] - m);
    s = ce_sum<WARP>(s, sh);
    if (probs) {
        float inv = 1.0f / s;
        float *p = probs + row * V;
        for (int j = tid; j < V; j += nt) p[j] = expf(x[j] - m) * inv;
    }
    if (tid == 0) {
        int t = targets ? targets[row] : (int)row;
        if (t < 0 || t >= V) {
            atomicMin(bad, (int)row);
            t = 0;
        }
        double lse = (double)m + log((double)s);
        double loss = lse - (1.0 - (double)ls) * (double)x[t] - (double)ls / V * (double)sx;
        rowloss[row] = loss;
        if (losses) losses[row] = (float)loss;
    }
}

/* One block: res->mean = (sum_n rowloss[n]) / N, thread-strided partials then a fixed tree. */
__global__ void ce_mean_kernel(struct ce_result *res, const double *__restrict__ rowloss,
                               const int32_t *__restrict__ targets, int N)
{
    __shared__ double sh[CE_MEAN_THREADS];
    double acc = 0.0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) acc += rowloss[n];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) sh[threadIdx.x] += sh[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        res->mean = sh[0] / N;
        int b = res->bad_row;
        res->bad_val = b != CE_NO_BAD ? (targets ? targets[b] : b) : 0;
    }
}

/* dlogits (N,V) = s * (probs - q); block-stride over rows, threads over columns. dlogits may
 * alias probs (each element is read, then written, by one thread). */
__global__ void ce_backward_kernel(float *dlogits, const float *probs,
                                   const int32_t *__restrict__ targets, int N, int V, float s,
                                   float qoff, float qon)
{
    for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
        int t = targets ? targets[row] : (int)row;
        if (t < 0 || t >= V) {
            printf("cross_entropy backward (CUDA): targets[%lld] = %d is outside [0, V=%d)\n",
                   (long long)row, t, V);
            __assert_fail("cross_entropy: target outside [0, V)", __FILE__, __LINE__, __func__);
        }
        const float *p = probs + row * V;
        float *d = dlogits + row * V;
        for (int j = threadIdx.x; j < V; j += blockDim.x) d[j] = s * (p[j] - (j == t ? qon : qoff));
    }
}

/* ---- launchers ---------------------------------------------------------------------------- */

static void ce_check(const int32_t *targets, int N, int V, float ls)
{
    SG_CHECK(N > 0 && V > 0, "cross_entropy: empty logits (N=%d, V=%d)", N, V);
    SG_CHECK(targets || N <= V, "cross_entropy: targets NULL (targets[n] = n) needs N=%d <= V=%d",
             N, V);
    SG_CHECK(ls >= 0.0f && ls <= 1.0f, "cross_entropy: label_smoothing %g not in [0, 1]",
             (double)ls);
}

extern "C" float cross_entropy_forward_cuda(struct sg_ctx *c, float *losses, float *probs,
                                            const float *logits, const int32_t *targets, int N,
                                            int V, float label_smoothing)
{
    struct sg_cuda *s = sg_cuda_get(c);
    ce_check(targets, N, V, label_smoothing);
    SG_CHECK(logits, "cross_entropy forward: NULL logits");
    /* scratch: rowloss (N) doubles, then the result record */
    size_t off = ((sizeof(double) * (size_t)N + 255) / 256) * 256;
    char *scratch = (char *)sg_cuda_scratch(c, off + sizeof(struct ce_result));
    double *rowloss = (double *)scratch;
    struct ce_result *res = (struct ce_result *)(scratch + off);
    CUDA_CHECK(cudaMemsetAsync(res, 0x7f, sizeof *res, s->stream)); /* bad_row = CE_NO_BAD */
    if (V <= CE_WARP_MAX_V) {
        int grid = CEIL_DIV(N, CE_THREADS / 32);
        ce_forward_kernel<true><<<grid, CE_THREADS, 0, s->stream>>>(
            rowloss, losses, probs, &res->bad_row, logits, targets, N, V, label_smoothing);
    } else {
        int threads = V >= 8192 ? CE_BIG_THREADS : CE_THREADS;
        ce_forward_kernel<false><<<N, threads, 0, s->stream>>>(
            rowloss, losses, probs, &res->bad_row, logits, targets, N, V, label_smoothing);
    }
    CUDA_CHECK(cudaGetLastError());
    ce_mean_kernel<<<1, CE_MEAN_THREADS, 0, s->stream>>>(res, rowloss, targets, N);
    CUDA_CHECK(cudaGetLastError());
    struct ce_result h;
    sg_memcpy_d2h(c, &h, res, sizeof h); /* the op's one synchronisation */
    SG_CHECK(h.bad_row == CE_NO_BAD, "cross_entropy: targets[%d] = %d is outside [0, V=%d)",
             h.bad_row, h.bad_val, V);
    return (float)h.mean;
}

extern "C" void cross_entropy_backward_cuda(struct sg_ctx *c, float *dlogits, const float *probs,
                                            const int32_t *targets, int N, int V, float dloss,
                                            float label_smoothing)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (!dlogits) return;
    ce_check(targets, N, V, label_smoothing);
    SG_CHECK(probs, "cross_entropy backward: NULL probs");
    const float sc = dloss / (float)N, qoff = label_smoothing / (float)V;
    const float qon = qoff + (1.0f - label_smoothing);
    int threads = V >= 1024 ? 512 : (V >= 256 ? 256 : 128);
    int grid = (int)SG_MIN((int64_t)N, (int64_t)s->num_sms * 32);
    ce_backward_kernel<<<grid, threads, 0, s->stream>>>(dlogits, probs, targets, N, V, sc, qoff,
                                                        qon);
    CUDA_CHECK(cudaGetLastError());
}
