/*
 * ops/cuda/matmul.cu — linear layers and batched matrix products on the GPU (ops/matmul.h).
 *
 *   linear:  out(N,OC) = inp(N,C) @ w(OC,C)^T + b(OC)
 *            dinp(N,C) = dout @ w (overwrite), dw(OC,C) += dout^T @ inp, db(OC) += sum_n dout
 *   matmul:  out(batch,M,N) = a(batch,M,K) @ b(batch,K,N)
 *            da = dout @ b^T, db = a^T @ dout (both overwrite)
 * PyTorch: torch.nn.functional.linear, torch.matmul.
 *
 * GEMMs are cuBLAS sgemm (fp32; TF32 only when the context enables it, see common.cuh). cuBLAS
 * is column-major: a row-major (R,Cc) matrix is the column-major (Cc,R) matrix with ld = Cc, so
 * a row-major product X = A @ B is computed as the column-major X^T = B^T @ A^T (operands
 * swapped), as in llm.c's matmul_forward_cublas. The bias gradient is a deterministic two-stage
 * column sum (per-chunk partials into the context scratch, then chunks summed in order): no
 * atomics, bit-identical from run to run.
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/matmul.h"
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* out(N,OC) += b(OC) broadcast over rows. x: columns, y: rows (grid-stride). */
__global__ void bias_add_kernel(float *out, const float *__restrict__ b, int N, int OC)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OC) return;
    float bo = b[o];
    for (int n = blockIdx.y; n < N; n += gridDim.y) out[(int64_t)n * OC + o] += bo;
}

/* First stage of db: partial(nchunk,OC)[k][o] = sum of dout[n][o] over rows n of chunk k.
 * Block (32,8): a warp reads 32 consecutive columns of one row (coalesced); the 8 row phases are
 * summed in fixed order through shared memory. Grid (ceil(OC/32), nchunk). */
__global__ void bias_grad_partial_kernel(float *__restrict__ partial,
                                         const float *__restrict__ dout, int N, int OC, int rows)
{
    __shared__ float sh[8][33];
    int o = blockIdx.x * 32 + threadIdx.x;
    int r0 = blockIdx.y * rows, r1 = min(N, r0 + rows);
    float acc = 0.0f;
    if (o < OC)
        for (int r = r0 + threadIdx.y; r < r1; r += 8) acc += dout[(int64_t)r * OC + o];
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y != 0 || o >= OC) return;
    float s = 0.0f;
    for (int i = 0; i < 8; i++) s += sh[i][threadIdx.x];
    partial[(int64_t)blockIdx.y * OC + o] = s;
}

/* ---- launchers ---------------------------------------------------------------------------- */

static void bias_add(struct sg_cuda *s, float *out, const float *b, int N, int OC)
{
    const int threads = 128;
    dim3 grid(CEIL_DIV(OC, threads), SG_MIN(N, 4096));
    bias_add_kernel<<<grid, threads, 0, s->stream>>>(out, b, N, OC);
    CUDA_CHECK(cudaGetLastError());
}

/* db(OC) += sum over the N rows of dout(N,OC). */
static void bias_grad(struct sg_ctx *c, float *db, const float *dout, int N, int OC)
{
    struct sg_cuda *s = sg_cuda_get(c);
    int rows = sg_cuda_colsum_rows(N), nchunk = CEIL_DIV(N, rows);
    float *partial = (float *)sg_cuda_scratch(c, sizeof(float) * (size_t)nchunk * (size_t)OC);
    dim3 grid(CEIL_DIV(OC, 32), nchunk), block(32, 8);
    bias_grad_partial_kernel<<<grid, block, 0, s->stream>>>(partial, dout, N, OC, rows);
    CUDA_CHECK(cudaGetLastError());
    sg_cuda_colsum_finalize(s, db, partial, nchunk, OC, OC);
}

extern "C" void linear_forward_cuda(struct sg_ctx *c, float *out, const float *inp, const float *w,
                                    const float *b, int N, int C, int OC)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && C > 0 && OC > 0, "bad linear dims N=%d C=%d OC=%d", N, C, OC);
    SG_CHECK(out && inp && w, "NULL out/inp/w");
    if (N == 0) return;
    const float one = 1.0f, zero = 0.0f;
    /* out^T(OC,N) = w(C,OC col-major)^T @ inp^T(C,N) */
    CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w, C, inp, C,
                             &zero, out, OC));
    if (b) bias_add(s, out, b, N, OC);
}

extern "C" void linear_backward_cuda(struct sg_ctx *c, float *dinp, float *dw, float *db,
                                     const float *dout, const float *inp, const float *w, int N,
                                     int C, int OC)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && C > 0 && OC > 0, "bad linear dims N=%d C=%d OC=%d", N, C, OC);
    SG_CHECK(dout, "NULL dout");
    if (N == 0) return;
    const float one = 1.0f, zero = 0.0f;
    if (dinp) { /* dinp^T(C,N) = w^T(C,OC) @ dout^T(OC,N), overwrite */
        SG_CHECK(w, "dinp requested but w is NULL");
        CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, w, C, dout,
                                 OC, &zero, dinp, C));
    }
    if (dw) { /* dw^T(C,OC) += inp^T(C,N) @ dout(N,OC) */
        SG_CHECK(inp, "dw requested but inp is NULL");
        CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout,
                                 OC, &one, dw, C));
    }
    if (db) bias_grad(c, db, dout, N, OC);
}

extern "C" void matmul_forward_cuda(struct sg_ctx *c, float *out, const float *a, const float *b,
                                    int batch, int M, int K, int N)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(batch >= 0 && M >= 0 && K > 0 && N >= 0, "bad matmul dims batch=%d M=%d K=%d N=%d",
             batch, M, K, N);
    SG_CHECK(out && a && b, "NULL out/a/b");
    if (batch == 0 || M == 0 || N == 0) return;
    const float one = 1.0f, zero = 0.0f;
    /* out^T(N,M) = b^T(N,K) @ a^T(K,M) per batch */
    CUBLAS_CHECK(cublasSgemmStridedBatched(s->cublas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, b, N,
                                           (long long)K * N, a, K, (long long)M * K, &zero, out, N,
                                           (long long)M * N, batch));
}

extern "C" void matmul_backward_cuda(struct sg_ctx *c, float *da, float *db, const float *dout,
                                     const float *a, const float *b, int batch, int M, int K, int N)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(batch >= 0 && M >= 0 && K > 0 && N >= 0, "bad matmul dims batch=%d M=%d K=%d N=%d",
             batch, M, K, N);
    SG_CHECK(dout, "NULL dout");
    if (batch == 0) return;
    const float one = 1.0f, zero = 0.0f;
    /* an empty reduction dim (N for da, M for db) gives zero gradients (overwrite semantics) */
    if (da && N == 0) CUDA_CHECK(cudaMemsetAsync(da, 0, sizeof(float) * batch * M * K, s->stream));
    if (db && M == 0) CUDA_CHECK(cudaMemsetAsync(db, 0, sizeof(float) * batch * K * N, s->stream));
    if (M == 0 || N == 0) return;
    if (da) { /* da^T(K,M) = b(K,N) @ dout^T(N,M): b stored as (N,K) col-major, transposed */
        SG_CHECK(b, "da requested but b is NULL");
        CUBLAS_CHECK(cublasSgemmStridedBatched(s->cublas, CUBLAS_OP_T, CUBLAS_OP_N, K, M, N, &one,
                                               b, N, (long long)K * N, dout, N, (long long)M * N,
                                               &zero, da, K, (long long)M * K, batch));
    }
    if (db) { /* db^T(N,K) = dout^T(N,M) @ a(M,K): a stored as (K,M) col-major, transposed */
        SG_CHECK(a, "db requested but a is NULL");
        CUBLAS_CHECK(cublasSgemmStridedBatched(s->cublas, CUBLAS_OP_N, CUBLAS_OP_T, N, K, M, &one,
                                               dout, N, (long long)M * N, a, K, (long long)M * K,
                                               &zero, db, N, (long long)K * N, batch));
    }
}
