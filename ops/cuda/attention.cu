/*
 * ops/cuda/attention.cu — multi-head attention core on the GPU (ops/attention.h), forward and
 * backward, llm.c's attention_forward / attention_backward (cuBLAS design):
 *
 *   forward:  qkv(B,T,3C) -> q,k,v (B,NH,T,hs)                              [split kernel]
 *             att(B*NH,T,T) = (q @ k^T) * hs^-0.5                           [batched GEMM]
 *             att = softmax rows, keys j > i -> exactly 0 when causal       [warp per row]
 *             y(B,NH,T,hs) = att @ v                                        [batched GEMM]
 *             out(B,T,C) = y with heads concatenated along C                [merge kernel]
 *   backward: q,k,v and dy(B,NH,T,hs) from qkv and dout                      [split kernels]
 *             datt = dy @ v^T (into the caller's scratch);  dv = att^T @ dy  [batched GEMMs]
 *             ds = att * (datt - rowsum(att * datt)), masked -> 0 (in place) [warp per row]
 *             dq = hs^-0.5 * ds @ k;  dk = hs^-0.5 * ds^T @ q                [batched GEMMs]
 *             dqkv(B,T,3C) = [dq | dk | dv] (overwrite, every element)       [merge kernel]
 * PyTorch: q,k,v -> (B,NH,T,hs); att = (q @ k.transpose(-2,-1) * hs**-0.5)
 *          .masked_fill(causal_mask, -inf).softmax(-1); y = att @ v (autograd for backward).
 *
 * GEMMs: cublasGemmStridedBatchedEx over the B*NH (batch, head) pairs on the permuted copies.
 * cuBLAS is column-major: a row-major (R,K) buffer is the column-major (K,R) matrix with ld K, so
 * each row-major X = A @ B is issued as X^T = B^T @ A^T (see matmul.cu). Operands and results
 * stay fp32 in memory; the compute type follows c->precision: SG_PREC_FP32 -> CUBLAS_COMPUTE_32F
 * (plain fp32, or CUBLAS_COMPUTE_32F_FAST_TF32 only when the context enabled TF32, common.cuh),
 * SG_PREC_BF16 -> CUBLAS_COMPUTE_32F_FAST_16BF (bf16 operands, fp32 accumulation: amp_bf16).
 * The softmax and its backward are always fp32 (expf, warp-shuffle sums in a fixed order).
 *
 * Memory: the permuted copies come from ONE sg_cuda_scratch call per op: forward 3*B*T*C floats
 * (y reuses q's slot), backward 6*B*T*C floats (dq reuses dy's slot); the backward's datt/ds
 * lives in the caller's `scratch` (B*NH*T*T floats, as on the CPU). No atomics anywhere: results
 * are bit-identical from run to run (cuBLAS with a fixed workspace and stream is deterministic).
 */
#include "ops/cuda/common.cuh"

#include <math.h>

extern "C" {
#include "ops/attention.h"
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* Up to three per-head buffers (B,NH,T,hs) passed by value. */
template <typename V> struct heads3 {
    V *p[3];
};

/* Grid-stride loop over n elements (64-bit index). */
#define GRID_LOOP(i, n)                                                                            \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)gridDim.x * blockDim.x)

/* Split: dst.p[part](B,NH,T,hs)[b][h][t][d] = src(B,T,P*C)[b][t][part*C + h*hs + d], part < P.
 * V = float4 moves 4 channels at once (hs % 4 == 0, 16-byte aligned pointers); then hsv = hs/4
 * and Cv = C/4 count vectors. Index over the destination: writes are contiguous, reads are
 * contiguous runs of hs. */
template <typename V>
__global__ void heads_split_kernel(heads3<V> dst, const V *__restrict__ src, int P, int B, int T,
                                   int NH, int hsv)
{
    int64_t n = (int64_t)B * NH * T * hsv, Cv = (int64_t)NH * hsv;
    GRID_LOOP(i, n)
    {
        int d = (int)(i % hsv);
        int64_t r = i / hsv;
        int t = (int)(r % T);
        r /= T;
        int h = (int)(r % NH), b = (int)(r / NH);
        const V *s = src + ((int64_t)b * T + t) * P * Cv + (int64_t)h * hsv + d;
        for (int part = 0; part < P; part++) dst.p[part][i] = s[part * Cv];
    }
}

/* Merge (the inverse of split): dst(B,T,P*C)[b][t][part*C + h*hs + d] = src.p[part][b][h][t][d].
 * Index over the destination rows (b,t) and channels: writes are contiguous. */
template <typename V>
__global__ void heads_merge_kernel(V *__restrict__ dst, heads3<const V> src, int P, int B, int T,
                                   int NH, int hsv)
{
    int64_t Cv = (int64_t)NH * hsv, n = (int64_t)B * T * P * Cv;
    GRID_LOOP(i, n)
    {
        int64_t c = i % (P * Cv), bt = i / (P * Cv);
        int part = (int)(c / Cv);
        int h = (int)((c % Cv) / hsv), d = (int)(c % hsv);
        int t = (int)(bt % T), b = (int)(bt / T);
        dst[i] = src.p[part][(((int64_t)b * NH + h) * T + t) * hsv + d];
    }
}

/* In place on att(rows,T) holding scaled scores: softmax over the visible keys j < len of each
 * row (len = i + 1 when causal, i = row % T; else T), masked keys set to exactly 0. One warp per
 * row (grid-stride over rows); lanes stride the row, warp_sum combines in a fixed order. Each
 * lane reads and writes only its own elements, so in place is safe. */
__global__ void softmax_rows_kernel(float *att, int64_t rows, int T, int causal)
{
    int lane = threadIdx.x & 31;
    int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int64_t nwarp = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t row = warp; row < rows; row += nwarp) {
        float *x = att + row * T;
        int len = causal ? (int)(row % T) + 1 : T;
        float m = -INFINITY;
        for (int j = lane; j < len; j += 32) m = fmaxf(m, x[j]);
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        float s = 0.0f;
        for (int j = lane; j < len; j += 32) s += expf(x[j] - m);
        float inv = 1.0f / warp_sum(s);
        for (int j = lane; j < T; j += 32) x[j] = j < len ? expf(x[j] - m) * inv : 0.0f;
    }
}

/* In place on ds(rows,T) holding datt: ds = att * (datt - sum_j att*datt) over the visible keys,
 * masked keys -> 0. One warp per row, as softmax_rows_kernel. */
__global__ void softmax_backward_rows_kernel(float *ds, const float *__restrict__ att, int64_t rows,
                                             int T, int causal)
{
    int lane = threadIdx.x & 31;
    int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int64_t nwarp = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t row = warp; row < rows; row += nwarp) {
        float *g = ds + row * T;
        const float *a = att + row * T;
        int len = causal ? (int)(row % T) + 1 : T;
        float dot = 0.0f;
        for (int j = lane; j < len; j += 32) dot += a[j] * g[j];
        dot = warp_sum(dot);
        for (int j = lane; j < T; j += 32) g[j] = j < len ? a[j] * (g[j] - dot) : 0.0f;
    }
}

/* ---- launchers ---------------------------------------------------------------------------- */

static void check_dims(int B, int T, int C, int NH)
{
    SG_CHECK(B >= 1 && T >= 1 && NH >= 1 && C >= NH && C == C / NH * NH,
             "attention: bad dims B=%d T=%d C=%d NH=%d (C must be a multiple of NH)", B, T, C, NH);
}

static int grid_for(struct sg_cuda *s, int64_t n, int threads)
{
    int64_t cap = (int64_t)s->num_sms * 32, g = CEIL_DIV(n, (int64_t)threads);
    return (int)SG_MAX((int64_t)1, SG_MIN(g, cap));
}

static int aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

/* (B,T,P*C) -> P buffers (B,NH,T,hs). float4 when every pointer and hs allow it. */
static void heads_split(struct sg_cuda *s, float *const dst[3], const float *src, int P, int B,
                        int T, int C, int NH)
{
    const int threads = 256;
    int hs = C / NH, vec = hs % 4 == 0 && aligned16(src);
    for (int p = 0; p < P; p++) vec = vec && aligned16(dst[p]);
    if (vec) {
        heads3<float4> d = {
            {(float4 *)dst[0], (float4 *)dst[P > 1 ? 1 : 0], (float4 *)dst[P > 2 ? 2 : 0]}};
        int64_t n = (int64_t)B * T * C / 4;
        heads_split_kernel<float4><<<grid_for(s, n, threads), threads, 0, s->stream>>>(
            d, (const float4 *)src, P, B, T, NH, hs / 4);
    } else {
        heads3<float> d = {{dst[0], dst[P > 1 ? 1 : 0], dst[P > 2 ? 2 : 0]}};
        int64_t n = (int64_t)B * T * C;
        heads_split_kernel<float>
            <<<grid_for(s, n, threads), threads, 0, s->stream>>>(d, src, P, B, T, NH, hs);
    }
    CUDA_CHECK(cudaGetLastError());
}

/* P buffers (B,NH,T,hs) -> (B,T,P*C). */
static void heads_merge(struct sg_cuda *s, float *dst, const float *const src[3], int P, int B,
                        int T, int C, int NH)
{
    const int threads = 256;
    int hs = C / NH, vec = hs % 4 == 0 && aligned16(dst);
    for (int p = 0; p < P; p++) vec = vec && aligned16(src[p]);
    int64_t n = (int64_t)B * T * P * C;
    if (vec) {
        heads3<const float4> sv = {{(const float4 *)src[0], (const float4 *)src[P > 1 ? 1 : 0],
                                    (const float4 *)src[P > 2 ? 2 : 0]}};
        heads_merge_kernel<float4><<<grid_for(s, n / 4, threads), threads, 0, s->stream>>>(
            (float4 *)dst, sv, P, B, T, NH, hs / 4);
    } else {
        heads3<const float> sv = {{src[0], src[P > 1 ? 1 : 0], src[P > 2 ? 2 : 0]}};
        heads_merge_kernel<float>
            <<<grid_for(s, n, threads), threads, 0, s->stream>>>(dst, sv, P, B, T, NH, hs);
    }
    CUDA_CHECK(cudaGetLastError());
}

static cublasComputeType_t compute_type(struct sg_ctx *c, struct sg_cuda *s)
{
    if (c->precision == SG_PREC_BF16) return CUBLAS_COMPUTE_32F_FAST_16BF;
    return s->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

/* Column-major strided-batched fp32 GEMM: C_i(m,n) = alpha * op(A_i) @ op(B_i) (beta = 0). */
static void gemm_sb(struct sg_ctx *c, struct sg_cuda *s, cublasOperation_t ta, cublasOperation_t tb,
                    int m, int n, int k, float alpha, const float *A, int lda, long long sA,
                    const float *Bm, int ldb, long long sB, float *Cm, int ldc, long long sC,
                    int batch)
{
    const float zero = 0.0f;
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(s->cublas, ta, tb, m, n, k, &alpha, A, CUDA_R_32F, lda,
                                            sA, Bm, CUDA_R_32F, ldb, sB, &zero, Cm, CUDA_R_32F, ldc,
                                            sC, batch, compute_type(c, s), CUBLAS_GEMM_DEFAULT));
}

static void softmax_rows(struct sg_cuda *s, float *att, int64_t rows, int T, int causal)
{
    const int threads = 256; /* 8 warps = 8 rows per block */
    softmax_rows_kernel<<<grid_for(s, rows * 32, threads), threads, 0, s->stream>>>(att, rows, T,
                                                                                    causal);
    CUDA_CHECK(cudaGetLastError());
}

static void softmax_backward_rows(struct sg_cuda *s, float *ds, const float *att, int64_t rows,
                                  int T, int causal)
{
    const int threads = 256;
    softmax_backward_rows_kernel<<<grid_for(s, rows * 32, threads), threads, 0, s->stream>>>(
        ds, att, rows, T, causal);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void attention_forward_cuda(struct sg_ctx *c, float *out, float *att, const float *qkv,
                                       int B, int T, int C, int NH, int causal)
{
    struct sg_cuda *s = sg_cuda_get(c);
    check_dims(B, T, C, NH);
    SG_CHECK(out && att && qkv, "attention_forward: NULL out/att/qkv");
    int hs = C / NH, batch = B * NH;
    int64_t n = (int64_t)B * T * C; /* floats per (B,NH,T,hs) buffer */
    long long sH = (long long)T * hs, sA = (long long)T * T;
    float scale = (float)(1.0 / sqrt((double)hs));

    float *buf = (float *)sg_cuda_scratch(c, sizeof(float) * 3 * (size_t)n);
    float *q = buf, *k = buf + n, *v = buf + 2 * n, *y = q; /* y reuses q once att exists */
    float *const qkvh[3] = {q, k, v};
    heads_split(s, qkvh, qkv, 3, B, T, C, NH);
    /* att(T_i,T_j) row-major = column-major (T_j,T_i): k(hs,T_j)^T @ q(hs,T_i) */
    gemm_sb(c, s, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, scale, k, hs, sH, q, hs, sH, att, T, sA,
            batch);
    softmax_rows(s, att, (int64_t)batch * T, T, causal);
    /* y(T,hs) row-major = column-major (hs,T): v(hs,T_j) @ att(T_j,T_i) */
    gemm_sb(c, s, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, 1.0f, v, hs, sH, att, T, sA, y, hs, sH,
            batch);
    const float *const yh[3] = {y, NULL, NULL};
    heads_merge(s, out, yh, 1, B, T, C, NH);
}

extern "C" void attention_backward_cuda(struct sg_ctx *c, float *dqkv, float *scratch,
                                        const float *dout, const float *qkv, const float *att,
                                        int B, int T, int C, int NH, int causal)
{
    struct sg_cuda *s = sg_cuda_get(c);
    check_dims(B, T, C, NH);
    SG_CHECK(dqkv && scratch && dout && qkv && att,
             "attention_backward: NULL dqkv/scratch/dout/qkv/att");
    int hs = C / NH, batch = B * NH;
    int64_t n = (int64_t)B * T * C;
    long long sH = (long long)T * hs, sA = (long long)T * T;
    float scale = (float)(1.0 / sqrt((double)hs));

    float *buf = (float *)sg_cuda_scratch(c, sizeof(float) * 6 * (size_t)n);
    float *q = buf, *k = buf + n, *v = buf + 2 * n, *dy = buf + 3 * n;
    float *dk = buf + 4 * n, *dv = buf + 5 * n, *dq = dy; /* dq reuses dy once dv, datt exist */
    float *ds = scratch;                                  /* (B*NH,T,T): datt, then ds */
    float *const qkvh[3] = {q, k, v}, *const dyh[3] = {dy, NULL, NULL};
    heads_split(s, qkvh, qkv, 3, B, T, C, NH);
    heads_split(s, dyh, dout, 1, B, T, C, NH);
    /* datt(T_i,T_j) = dy @ v^T: column-major (T_j,T_i) = v(hs,T_j)^T @ dy(hs,T_i) */
    gemm_sb(c, s, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, 1.0f, v, hs, sH, dy, hs, sH, ds, T, sA,
            batch);
    /* dv(T_j,hs) = att^T @ dy: column-major (hs,T_j) = dy(hs,T_i) @ [att col-major (T_j,T_i)]^T */
    gemm_sb(c, s, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, 1.0f, dy, hs, sH, att, T, sA, dv, hs, sH,
            batch);
    softmax_backward_rows(s, ds, att, (int64_t)batch * T, T, causal);
    /* dq(T_i,hs) = scale * ds @ k: column-major (hs,T_i) = k(hs,T_j) @ ds(T_j,T_i) */
    gemm_sb(c, s, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, scale, k, hs, sH, ds, T, sA, dq, hs, sH,
            batch);
    /* dk(T_j,hs) = scale * ds^T @ q: column-major (hs,T_j) = q(hs,T_i) @ [ds (T_j,T_i)]^T */
    gemm_sb(c, s, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, scale, q, hs, sH, ds, T, sA, dk, hs, sH,
            batch);
    const float *const dh[3] = {dq, dk, dv};
    heads_merge(s, dqkv, dh, 3, B, T, C, NH);
}
