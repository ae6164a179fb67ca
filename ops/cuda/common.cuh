/*
 * ops/cuda/common.cuh — shared pieces of the CUDA backend (C++ side only; never included from C).
 *
 *  - CUDA_CHECK / CUBLAS_CHECK: do-while macros that abort through sg_panic_at with the failing
 *    statement, the error string, function, file, line and the current device (ggml's
 *    CUDA_CHECK_GEN). Every launcher ends with CUDA_CHECK(cudaGetLastError()) (llm.c).
 *  - CEIL_DIV, warp_sum / block_sum reductions.
 *  - struct sg_cuda: the per-context device state behind `struct sg_ctx::cuda` (opaque to C).
 *  - Helpers shared by the op files (implemented in ctx.cu): sg_cuda_get, a grow-on-demand scratch
 *    buffer, and the deterministic column-sum finaliser used by the bias / LayerNorm parameter
 *    gradients.
 *
 * Conventions of the backend: one stream per context; every op launches on it and never
 * synchronises (except where a function says so); kernels first, launchers after, one op family
 * per file; launchers check shapes with SG_CHECK (always on). Note: SG_CHECK pastes the condition
 * into a printf format, so conditions must not contain '%'.
 */
#ifndef SG_CUDA_COMMON_CUH
#define SG_CUDA_COMMON_CUH

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "core/common.h"
#include "core/ctx.h"
}

/* Aborts with the statement, library error string and location (implemented in ctx.cu). */
[[noreturn]] void sg_cuda_fail(const char *lib, const char *stmt, const char *err, const char *func,
                               const char *file, int line);

#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t sg_err_ = (call);                                                              \
        if (sg_err_ != cudaSuccess)                                                                \
            sg_cuda_fail("CUDA", #call, cudaGetErrorString(sg_err_), __func__, __FILE__,           \
                         __LINE__);                                                                \
    } while (0)

#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t sg_st_ = (call);                                                            \
        if (sg_st_ != CUBLAS_STATUS_SUCCESS)                                                       \
            sg_cuda_fail("cuBLAS", #call, cublasGetStatusString(sg_st_), __func__, __FILE__,       \
                         __LINE__);                                                                \
    } while (0)

#define CEIL_DIV(a, b) (((a) + (b)-1) / (b))

/* Per-context CUDA state (struct sg_ctx::cuda). No globals: everything a launcher needs is here. */
struct sg_cuda {
    int device;                    /* CUDA ordinal this context was created on */
    int num_sms;                   /* multiprocessor count (grid sizing) */
    int tf32;                      /* 1: cuBLAS may use TF32 tensor cores for fp32 GEMM */
    cudaStream_t stream;           /* the one compute stream: every op launches here */
    cublasHandle_t cublas;         /* bound to `stream` */
    void *cublas_workspace;        /* cublasSetWorkspace buffer (cublas_workspace_bytes) */
    size_t cublas_workspace_bytes; /* 32 MiB: NVIDIA's recommendation for Hopper */
    void *scratch;                 /* op scratch (partial sums), grown on demand */
    size_t scratch_bytes;
    /* Library state created lazily by the file that owns the library, freed through its hook
     * when the context is freed (so common.cuh needs no cuDNN / cuBLASLt headers). */
    void *cudnn;                          /* ops/cuda/cudnn.cu: handle + descriptor cache */
    void (*cudnn_free)(struct sg_cuda *); /* set together with `cudnn` */
    void *lt;                             /* ops/cuda/matmul.cu: cuBLASLt handle, bf16 buffers */
    void (*lt_free)(struct sg_cuda *);    /* set together with `lt` */
};

/* TF32: off by default so that GPU results match the fp32 CPU path to ~1e-6 relative (TF32 has
 * a 10-bit mantissa: ~1e-3 relative GEMM error, which test_cuda_ops's tolerances reject).
 * Set SOGCLIP_TF32=1 in the environment before creating the context to allow it for speed. */
#define SG_CUDA_TF32_ENV "SOGCLIP_TF32"

/* The context's CUDA state; panics when c is not an initialised CUDA context. */
struct sg_cuda *sg_cuda_get(struct sg_ctx *c);

/* Device scratch of at least `bytes`, owned by the context and valid until the next call. Ops
 * on the context's stream use it in stream order, so consecutive ops may share it. Growing it
 * synchronises the stream once (the old buffer may still be in use); in steady state (same
 * shapes every step) it never allocates. */
void *sg_cuda_scratch(struct sg_ctx *c, size_t bytes);

/* Deterministic column sums, the second stage of per-chunk partial sums:
 *   dst[j] += sum_{k = 0..nchunk-1} partial[k * stride + j],  j < ncol,
 * summed in chunk order (no atomics: bit-identical run to run). Launched on the stream. */
void sg_cuda_colsum_finalize(struct sg_cuda *s, float *dst, const float *partial, int nchunk,
                             int ncol, int64_t stride);

/* Rows per chunk for the first stage: fixed by the shape alone (not by the GPU), so the summation
 * order, hence the bits, are the same on every device. Keeps the chunk count <= 65535. */
static inline int sg_cuda_colsum_rows(int nrows)
{
    int rows = 64;
    while (CEIL_DIV(nrows, rows) > 32768) rows *= 2;
    return rows;
}

/* ---- reductions ------------------------------------------------------------------------- */

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the whole block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
 * `shared` holds 32 floats; the function synchronises the block (call it from all threads). */
__device__ __forceinline__ float block_sum(float v, float *shared)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nwarp ? shared[lane] : 0.0f;
    return warp_sum(v);
}

#endif
