/*
 * ops/cuda/matmul.cu — linear layers and batched matrix products on the GPU (ops/matmul.h).
 *
 *   linear:  out(N,OC) = inp(N,C) @ w(OC,C)^T + b(OC)
 *            dinp(N,C) = dout @ w (overwrite), dw(OC,C) += dout^T @ inp, db(OC) += sum_n dout
 *   matmul:  out(batch,M,N) = a(batch,M,K) @ b(batch,K,N)
 *            da = dout @ b^T, db = a^T @ dout (both overwrite)
 * PyTorch: torch.nn.functional.linear, torch.matmul.
 *
 * Two precisions, chosen per call by ctx->precision (core/ctx.h):
 *  - SG_PREC_FP32 (default): cuBLAS sgemm (TF32 only when the context enables it, see
 *    common.cuh); bias added by bias_add_kernel.
 *  - SG_PREC_BF16 (open_clip's amp_bf16): every GEMM operand is rounded to bf16 (round to
 *    nearest even, __float2bfloat16_rn) into a device buffer owned by this file, and the product
 *    runs through cuBLASLt with bf16 A/B, fp32 C/D, CUBLAS_COMPUTE_32F: products of two bf16
 *    values are exact in fp32, so the only error beyond the operand rounding is the fp32
 *    accumulation. Outputs, gradients and the bias stay fp32 (PyTorch's autocast would also round
 *    the bias and return bf16 activations; we keep fp32 storage, so results are at least as
 *    accurate). The linear bias is fused into the GEMM epilogue (CUBLASLT_EPILOGUE_BIAS, fp32
 *    bias = D type) when cuBLASLt offers an algorithm for it, else bias_add_kernel runs after the
 *    GEMM. dw accumulates with beta = 1 into the fp32 gradient; db is the fp32 column sum below in
 *    both precisions. Weights are converted on every call (no cache: nothing to invalidate).
 *    When cuBLASLt finds no algorithm for a layout (e.g. odd alignments), the same bf16 product
 *    runs through cublasGemmStridedBatchedEx instead (same types, same compute type).
 *
 * cuBLAS is column-major: a row-major (R,Cc) matrix is the column-major (Cc,R) matrix with
 * ld = Cc, so a row-major product X = A @ B is computed as the column-major X^T = B^T @ A^T
 * (operands swapped), as in llm.c's matmul_forward_cublas. The bias gradient is a deterministic
 * two-stage column sum (per-chunk partials into the context scratch, then chunks summed in
 * order): no atomics, bit-identical from run to run.
 *
 * cuBLASLt state (struct lt_state, in sg_cuda::lt, freed by sg_cuda::lt_free): the handle, a
 * 32 MiB workspace, the bf16 operand buffer (grown on demand: growing frees the old buffer, which
 * synchronises the device once; stream order makes reuse across calls safe) and a small cache of
 * GEMM plans (descriptors, layouts and the heuristic's algorithm, keyed by the GEMM's shape,
 * transposes, strides and pointer alignments) so that steady-state training calls skip the
 * heuristic query. With SOGCLIP_LT_VERBOSE=1 in the environment (read when the state is created)
 * each new plan is printed to stderr: shape, alignments, and whether cuBLASLt found an algorithm
 * and fused the bias.
 */
#include "ops/cuda/common.cuh"

#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cuda_bf16.h>

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

/* Packs two floats into a bf16x2 word (round to nearest even; x in the low half = lower
 * address). */
__device__ __forceinline__ uint32_t pack_bf16x2(float x, float y)
{
    __nv_bfloat162 p = __floats2bfloat162_rn(x, y);
    uint32_t u;
    memcpy(&u, &p, sizeof u);
    return u;
}

/* dst[i] = bf16(src[i]) for 8 elements per thread: two 16-byte loads, one 16-byte store.
 * src and dst 16-byte aligned; n8 = number of 8-element groups (grid-stride). */
__global__ void f32_to_bf16_vec8_kernel(uint4 *__restrict__ dst, const float4 *__restrict__ src,
                                        int64_t n8)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n8;
         i += (int64_t)gridDim.x * blockDim.x) {
        float4 a = src[2 * i], b = src[2 * i + 1];
        uint4 o;
        o.x = pack_bf16x2(a.x, a.y);
        o.y = pack_bf16x2(a.z, a.w);
        o.z = pack_bf16x2(b.x, b.y);
        o.w = pack_bf16x2(b.z, b.w);
        dst[i] = o;
    }
}

/* Scalar form (unaligned pointers, and the < 8 tail of the vector path); grid-stride. */
__global__ void f32_to_bf16_kernel(__nv_bfloat16 *__restrict__ dst, const float *__restrict__ src,
                                   int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

/* ---- fp32 -> bf16 conversion ------------------------------------------------------------- */

static void f32_to_bf16(struct sg_cuda *s, __nv_bfloat16 *dst, const float *src, int64_t n)
{
    if (n <= 0) return;
    const int threads = 256;
    const int64_t max_blocks = (int64_t)s->num_sms * 16;
    int64_t done = 0;
    if (((uintptr_t)dst & 15) == 0 && ((uintptr_t)src & 15) == 0 && n >= 8) {
        int64_t n8 = n / 8;
        int blocks = (int)SG_MIN(CEIL_DIV(n8, (int64_t)threads), max_blocks);
        f32_to_bf16_vec8_kernel<<<blocks, threads, 0, s->stream>>>((uint4 *)dst,
                                                                   (const float4 *)src, n8);
        CUDA_CHECK(cudaGetLastError());
        done = n8 * 8;
    }
    if (done < n) {
        int blocks = (int)SG_MIN(CEIL_DIV(n - done, (int64_t)threads), max_blocks);
        f32_to_bf16_kernel<<<blocks, threads, 0, s->stream>>>(dst + done, src + done, n - done);
        CUDA_CHECK(cudaGetLastError());
    }
}

extern "C" void sg_cuda_f32_to_bf16(struct sg_ctx *c, uint16_t *dst, const float *src, int64_t n)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(n >= 0, "bad element count %lld", (long long)n);
    SG_CHECK(n == 0 || (dst && src), "NULL dst/src");
    SG_CHECK(((uintptr_t)dst & 1) == 0, "bf16 dst must be 2-byte aligned");
    f32_to_bf16(s, (__nv_bfloat16 *)dst, src, n);
}

/* ---- fp32 launchers ----------------------------------------------------------------------- */

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

/* ---- cuBLASLt state ----------------------------------------------------------------------- */

#define CUBLASLT_WORKSPACE_BYTES ((size_t)32 << 20)
#define SG_LT_VERBOSE_ENV        "SOGCLIP_LT_VERBOSE"
#define LT_NPLANS                64

/* One column-major GEMM, D(m,n) = op(A) @ op(B) + beta * D (+ bias(m) broadcast over columns),
 * A and B bf16, D fp32, `batch` products `s*` elements apart. */
struct lt_gemm {
    cublasOperation_t ta, tb;
    int m, n, k, batch;
    const __nv_bfloat16 *A; /* (m,k) after op; stored (ta == N ? m : k, ...) with ld lda */
    const __nv_bfloat16 *B; /* (k,n) after op */
    float *D;               /* (m,n), ld ldd */
    int lda, ldb, ldd;
    int64_t sa, sb, sd; /* batch strides in elements (ignored when batch == 1) */
    float beta;         /* 0 (overwrite) or 1 (accumulate) */
    const float *bias;  /* (m) or NULL */
};

/* What a plan depends on (compared with memcmp: always built from a zeroed struct). */
struct lt_key {
    int ta, tb, m, n, k, batch, lda, ldb, ldd, bias;
    int64_t sa, sb, sd;
    uint32_t align_a, align_b, align_d, align_bias;
};

struct lt_plan {
    struct lt_key key;
    int used;
    int has_algo;   /* 0: cuBLASLt found no algorithm; use cublasGemmStridedBatchedEx */
    int bias_fused; /* 1: the epilogue adds the bias */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
};

struct lt_state {
    cublasLtHandle_t handle;
    void *workspace; /* CUBLASLT_WORKSPACE_BYTES */
    void *buf;       /* bf16 operands of the current call, grown on demand */
    size_t buf_bytes;
    struct lt_plan plans[LT_NPLANS];
    int next_evict; /* round-robin replacement once all plans are used */
    int verbose;    /* SG_LT_VERBOSE_ENV: print each new plan */
};

#define LT_CHECK(call) CUBLAS_CHECK(call)

static void lt_plan_destroy(struct lt_plan *p)
{
    if (!p->used) return;
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->ld) cublasLtMatrixLayoutDestroy(p->ld);
    memset(p, 0, sizeof *p);
}

/* sg_cuda::lt_free: the stream was synchronised by the caller (ctx.cu's cuda_state_free). */
static void lt_state_free(struct sg_cuda *s)
{
    struct lt_state *lt = (struct lt_state *)s->lt;
    if (!lt) return;
    for (int i = 0; i < LT_NPLANS; i++) lt_plan_destroy(&lt->plans[i]);
    if (lt->buf) cudaFree(lt->buf);
    if (lt->workspace) cudaFree(lt->workspace);
    if (lt->handle) cublasLtDestroy(lt->handle);
    free(lt);
    s->lt = NULL;
    s->lt_free = NULL;
}

static struct lt_state *lt_get(struct sg_ctx *c)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (s->lt) return (struct lt_state *)s->lt;
    struct lt_state *lt = (struct lt_state *)sg_xcalloc(1, sizeof *lt);
    LT_CHECK(cublasLtCreate(&lt->handle));
    lt->workspace = sg_dev_alloc(c, CUBLASLT_WORKSPACE_BYTES);
    const char *v = getenv(SG_LT_VERBOSE_ENV);
    lt->verbose = v && strcmp(v, "1") == 0;
    s->lt = lt;
    s->lt_free = lt_state_free;
    return lt;
}

/* Carves `count` bf16 arrays of n[i] elements out of the operand buffer (each 256-byte aligned);
 * an array with n[i] == 0 gets NULL. Valid until the next call of this file's bf16 ops. */
static void lt_operands(struct sg_ctx *c, struct lt_state *lt, const int64_t *n,
                        __nv_bfloat16 **out, int count)
{
    size_t total = 0;
    for (int i = 0; i < count; i++) total += (size_t)CEIL_DIV(n[i] * 2, (int64_t)256) * 256;
    if (total > lt->buf_bytes) {
        size_t want = SG_MAX(total + total / 4, (size_t)1 << 20); /* headroom: grow rarely */
        if (lt->buf) CUDA_CHECK(cudaFree(lt->buf));               /* implicit device sync */
        lt->buf = sg_dev_alloc(c, want);
        lt->buf_bytes = want;
    }
    char *p = (char *)lt->buf;
    for (int i = 0; i < count; i++) {
        out[i] = n[i] ? (__nv_bfloat16 *)p : NULL;
        p += (size_t)CEIL_DIV(n[i] * 2, (int64_t)256) * 256;
    }
}

/* Largest power of two (<= 256) dividing the address and, for batched products, the batch
 * stride in bytes: the alignment every matrix of the batch has. */
static uint32_t lt_align(const void *p, int64_t stride_bytes, int batch)
{
    uint64_t v = (uint64_t)(uintptr_t)p | 256u;
    if (batch > 1) v |= (uint64_t)stride_bytes;
    return (uint32_t)(v & (~v + 1));
}

static struct lt_key lt_make_key(const struct lt_gemm *g)
{
    struct lt_key k;
    memset(&k, 0, sizeof k);
    k.ta = (int)g->ta;
    k.tb = (int)g->tb;
    k.m = g->m;
    k.n = g->n;
    k.k = g->k;
    k.batch = g->batch;
    k.lda = g->lda;
    k.ldb = g->ldb;
    k.ldd = g->ldd;
    k.bias = g->bias != NULL;
    if (g->batch > 1) {
        k.sa = g->sa;
        k.sb = g->sb;
        k.sd = g->sd;
    }
    k.align_a = lt_align(g->A, g->sa * 2, g->batch);
    k.align_b = lt_align(g->B, g->sb * 2, g->batch);
    k.align_d = lt_align(g->D, g->sd * 4, g->batch);
    k.align_bias = g->bias ? lt_align(g->bias, 0, 1) : 0;
    return k;
}

static cublasLtMatrixLayout_t lt_layout(cudaDataType_t type, int rows, int cols, int ld, int batch,
                                        int64_t stride)
{
    cublasLtMatrixLayout_t l = NULL;
    LT_CHECK(cublasLtMatrixLayoutCreate(&l, type, (uint64_t)rows, (uint64_t)cols, ld));
    if (batch > 1) {
        int32_t b = batch;
        LT_CHECK(
            cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b, sizeof b));
        LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                  &stride, sizeof stride));
    }
    return l;
}

/* The heuristic's first algorithm for the plan's descriptors under `epilogue`; 1 if found. */
static int lt_find_algo(struct lt_state *lt, struct lt_plan *p, cublasLtEpilogue_t epilogue,
                        const float *bias)
{
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                            sizeof epilogue));
    if (epilogue == CUBLASLT_EPILOGUE_BIAS) /* its value tells the heuristic the alignment */
        LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                sizeof bias));
    cublasLtMatmulPreference_t pref = NULL;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = CUBLASLT_WORKSPACE_BYTES;
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &ws, sizeof ws));
    const struct {
        cublasLtMatmulPreferenceAttributes_t attr;
        uint32_t value;
    } aligns[] = {{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, p->key.align_a},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, p->key.align_b},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, p->key.align_d},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, p->key.align_d}};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++)
        LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, aligns[i].attr, &aligns[i].value,
                                                      sizeof aligns[i].value));
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof res);
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt->handle, p->desc, p->la, p->lb, p->ld,
                                                       p->ld, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found < 1 || res.state != CUBLAS_STATUS_SUCCESS) return 0;
    p->algo = res.algo;
    return 1;
}

/* Builds the descriptors of a plan for g and asks the heuristic: first with the bias epilogue
 * (when g has a bias), then without. */
static void lt_plan_build(struct lt_state *lt, struct lt_plan *p, const struct lt_gemm *g,
                          const struct lt_key *key)
{
    p->key = *key;
    p->used = 1;
    LT_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    int32_t ta = (int32_t)g->ta, tb = (int32_t)g->tb;
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    int ar = g->ta == CUBLAS_OP_N ? g->m : g->k, ac = g->ta == CUBLAS_OP_N ? g->k : g->m;
    int br = g->tb == CUBLAS_OP_N ? g->k : g->n, bc = g->tb == CUBLAS_OP_N ? g->n : g->k;
    p->la = lt_layout(CUDA_R_16BF, ar, ac, g->lda, g->batch, g->sa);
    p->lb = lt_layout(CUDA_R_16BF, br, bc, g->ldb, g->batch, g->sb);
    p->ld = lt_layout(CUDA_R_32F, g->m, g->n, g->ldd, g->batch, g->sd);
    p->bias_fused = 0;
    if (g->bias && lt_find_algo(lt, p, CUBLASLT_EPILOGUE_BIAS, g->bias)) {
        p->bias_fused = 1;
        p->has_algo = 1;
        return;
    }
    p->has_algo = lt_find_algo(lt, p, CUBLASLT_EPILOGUE_DEFAULT, NULL);
}

static struct lt_plan *lt_plan_get(struct lt_state *lt, const struct lt_gemm *g)
{
    struct lt_key key = lt_make_key(g);
    struct lt_plan *slot = NULL;
    for (int i = 0; i < LT_NPLANS; i++) {
        struct lt_plan *p = &lt->plans[i];
        if (p->used && memcmp(&p->key, &key, sizeof key) == 0) return p;
        if (!p->used && !slot) slot = p;
    }
    if (!slot) {
        slot = &lt->plans[lt->next_evict];
        lt->next_evict = (lt->next_evict + 1) % LT_NPLANS;
        lt_plan_destroy(slot);
    }
    lt_plan_build(lt, slot, g, &key);
    if (lt->verbose)
        fprintf(stderr,
                "cublasLt plan: op %c%c m=%d n=%d k=%d batch=%d align A/B/D/bias %u/%u/%u/%u "
                "beta=%g: %s\n",
                g->ta == CUBLAS_OP_N ? 'N' : 'T', g->tb == CUBLAS_OP_N ? 'N' : 'T', g->m, g->n,
                g->k, g->batch, key.align_a, key.align_b, key.align_d, key.align_bias,
                (double)g->beta,
                !slot->has_algo    ? "no algorithm, cublasGemmStridedBatchedEx"
                : slot->bias_fused ? "algorithm, bias fused (epilogue)"
                : g->bias          ? "algorithm, bias by kernel"
                                   : "algorithm");
    return slot;
}

/* Runs one bf16 GEMM described by g on the context's stream (bias included). */
static void lt_matmul(struct sg_ctx *c, struct lt_state *lt, const struct lt_gemm *g)
{
    struct sg_cuda *s = sg_cuda_get(c);
    struct lt_plan *p = lt_plan_get(lt, g);
    const float one = 1.0f;
    if (p->has_algo) {
        if (p->bias_fused)
            LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &g->bias, sizeof g->bias));
        LT_CHECK(cublasLtMatmul(lt->handle, p->desc, &one, g->A, p->la, g->B, p->lb, &g->beta, g->D,
                                p->ld, g->D, p->ld, &p->algo, lt->workspace,
                                CUBLASLT_WORKSPACE_BYTES, s->stream));
    } else {
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            s->cublas, g->ta, g->tb, g->m, g->n, g->k, &one, g->A, CUDA_R_16BF, g->lda, g->sa, g->B,
            CUDA_R_16BF, g->ldb, g->sb, &g->beta, g->D, CUDA_R_32F, g->ldd, g->sd, g->batch,
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    if (g->bias && !(p->has_algo && p->bias_fused)) bias_add(s, g->D, g->bias, g->n, g->m);
}

static struct lt_gemm lt_gemm_init(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k)
{
    struct lt_gemm g;
    memset(&g, 0, sizeof g);
    g.ta = ta;
    g.tb = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.batch = 1;
    return g;
}

/* ---- bf16 launchers ----------------------------------------------------------------------- */

static void linear_forward_bf16(struct sg_ctx *c, float *out, const float *inp, const float *w,
                                const float *b, int N, int C, int OC)
{
    struct sg_cuda *s = sg_cuda_get(c);
    struct lt_state *lt = lt_get(c);
    const int64_t n[2] = {(int64_t)N * C, (int64_t)OC * C};
    __nv_bfloat16 *ops[2]; /* inp(N,C), w(OC,C) in bf16 */
    lt_operands(c, lt, n, ops, 2);
    f32_to_bf16(s, ops[0], inp, n[0]);
    f32_to_bf16(s, ops[1], w, n[1]);
    /* out^T(OC,N) = w(C,OC col-major)^T @ inp^T(C,N) + b */
    struct lt_gemm g = lt_gemm_init(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C);
    g.A = ops[1];
    g.lda = C;
    g.B = ops[0];
    g.ldb = C;
    g.D = out;
    g.ldd = OC;
    g.bias = b;
    lt_matmul(c, lt, &g);
}

static void linear_backward_bf16(struct sg_ctx *c, float *dinp, float *dw, const float *dout,
                                 const float *inp, const float *w, int N, int C, int OC)
{
    struct sg_cuda *s = sg_cuda_get(c);
    struct lt_state *lt = lt_get(c);
    const int64_t n[3] = {(int64_t)N * OC, dinp ? (int64_t)OC * C : 0, dw ? (int64_t)N * C : 0};
    __nv_bfloat16 *ops[3]; /* dout(N,OC), w(OC,C) if dinp, inp(N,C) if dw */
    lt_operands(c, lt, n, ops, 3);
    f32_to_bf16(s, ops[0], dout, n[0]);
    if (dinp) { /* dinp^T(C,N) = w^T(C,OC) @ dout^T(OC,N), overwrite */
        f32_to_bf16(s, ops[1], w, n[1]);
        struct lt_gemm g = lt_gemm_init(CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC);
        g.A = ops[1];
        g.lda = C;
        g.B = ops[0];
        g.ldb = OC;
        g.D = dinp;
        g.ldd = C;
        lt_matmul(c, lt, &g);
    }
    if (dw) { /* dw^T(C,OC) += inp^T(C,N) @ dout(N,OC) */
        f32_to_bf16(s, ops[2], inp, n[2]);
        struct lt_gemm g = lt_gemm_init(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N);
        g.A = ops[2];
        g.lda = C;
        g.B = ops[0];
        g.ldb = OC;
        g.D = dw;
        g.ldd = C;
        g.beta = 1.0f;
        lt_matmul(c, lt, &g);
    }
}

static void matmul_forward_bf16(struct sg_ctx *c, float *out, const float *a, const float *b,
                                int batch, int M, int K, int N)
{
    struct sg_cuda *s = sg_cuda_get(c);
    struct lt_state *lt = lt_get(c);
    const int64_t n[2] = {(int64_t)batch * M * K, (int64_t)batch * K * N};
    __nv_bfloat16 *ops[2]; /* a(batch,M,K), b(batch,K,N) in bf16 */
    lt_operands(c, lt, n, ops, 2);
    f32_to_bf16(s, ops[0], a, n[0]);
    f32_to_bf16(s, ops[1], b, n[1]);
    /* out^T(N,M) = b^T(N,K) @ a^T(K,M) per batch */
    struct lt_gemm g = lt_gemm_init(CUBLAS_OP_N, CUBLAS_OP_N, N, M, K);
    g.batch = batch;
    g.A = ops[1];
    g.lda = N;
    g.sa = (int64_t)K * N;
    g.B = ops[0];
    g.ldb = K;
    g.sb = (int64_t)M * K;
    g.D = out;
    g.ldd = N;
    g.sd = (int64_t)M * N;
    lt_matmul(c, lt, &g);
}

static void matmul_backward_bf16(struct sg_ctx *c, float *da, float *db, const float *dout,
                                 const float *a, const float *b, int batch, int M, int K, int N)
{
    struct sg_cuda *s = sg_cuda_get(c);
    struct lt_state *lt = lt_get(c);
    const int64_t n[3] = {(int64_t)batch * M * N, da ? (int64_t)batch * K * N : 0,
                          db ? (int64_t)batch * M * K : 0};
    __nv_bfloat16 *ops[3]; /* dout(batch,M,N), b(batch,K,N) if da, a(batch,M,K) if db */
    lt_operands(c, lt, n, ops, 3);
    f32_to_bf16(s, ops[0], dout, n[0]);
    if (da) { /* da^T(K,M) = b(K,N) @ dout^T(N,M): b stored as (N,K) col-major, transposed */
        f32_to_bf16(s, ops[1], b, n[1]);
        struct lt_gemm g = lt_gemm_init(CUBLAS_OP_T, CUBLAS_OP_N, K, M, N);
        g.batch = batch;
        g.A = ops[1];
        g.lda = N;
        g.sa = (int64_t)K * N;
        g.B = ops[0];
        g.ldb = N;
        g.sb = (int64_t)M * N;
        g.D = da;
        g.ldd = K;
        g.sd = (int64_t)M * K;
        lt_matmul(c, lt, &g);
    }
    if (db) { /* db^T(N,K) = dout^T(N,M) @ a(M,K): a stored as (K,M) col-major, transposed */
        f32_to_bf16(s, ops[2], a, n[2]);
        struct lt_gemm g = lt_gemm_init(CUBLAS_OP_N, CUBLAS_OP_T, N, K, M);
        g.batch = batch;
        g.A = ops[0];
        g.lda = N;
        g.sa = (int64_t)M * N;
        g.B = ops[2];
        g.ldb = K;
        g.sb = (int64_t)M * K;
        g.D = db;
        g.ldd = N;
        g.sd = (int64_t)K * N;
        lt_matmul(c, lt, &g);
    }
}

/* ---- entry points ------------------------------------------------------------------------- */

extern "C" void linear_forward_cuda(struct sg_ctx *c, float *out, const float *inp, const float *w,
                                    const float *b, int N, int C, int OC)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && C > 0 && OC > 0, "bad linear dims N=%d C=%d OC=%d", N, C, OC);
    SG_CHECK(out && inp && w, "NULL out/inp/w");
    if (N == 0) return;
    if (c->precision == SG_PREC_BF16) {
        linear_forward_bf16(c, out, inp, w, b, N, C, OC);
        return;
    }
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
    SG_CHECK(!dinp || w, "dinp requested but w is NULL");
    SG_CHECK(!dw || inp, "dw requested but inp is NULL");
    if (c->precision == SG_PREC_BF16) {
        if (dinp || dw) linear_backward_bf16(c, dinp, dw, dout, inp, w, N, C, OC);
        if (db) bias_grad(c, db, dout, N, OC);
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    if (dinp) { /* dinp^T(C,N) = w^T(C,OC) @ dout^T(OC,N), overwrite */
        CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, w, C, dout,
                                 OC, &zero, dinp, C));
    }
    if (dw) { /* dw^T(C,OC) += inp^T(C,N) @ dout(N,OC) */
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
    if (c->precision == SG_PREC_BF16) {
        matmul_forward_bf16(c, out, a, b, batch, M, K, N);
        return;
    }
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
    /* an empty reduction dim (N for da, M for db) gives zero gradients (overwrite semantics) */
    if (da && N == 0) CUDA_CHECK(cudaMemsetAsync(da, 0, sizeof(float) * batch * M * K, s->stream));
    if (db && M == 0) CUDA_CHECK(cudaMemsetAsync(db, 0, sizeof(float) * batch * K * N, s->stream));
    if (M == 0 || N == 0) return;
    SG_CHECK(!da || b, "da requested but b is NULL");
    SG_CHECK(!db || a, "db requested but a is NULL");
    if (c->precision == SG_PREC_BF16) {
        if (da || db) matmul_backward_bf16(c, da, db, dout, a, b, batch, M, K, N);
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    if (da) { /* da^T(K,M) = b(K,N) @ dout^T(N,M): b stored as (N,K) col-major, transposed */
        CUBLAS_CHECK(cublasSgemmStridedBatched(s->cublas, CUBLAS_OP_T, CUBLAS_OP_N, K, M, N, &one,
                                               b, N, (long long)K * N, dout, N, (long long)M * N,
                                               &zero, da, K, (long long)M * K, batch));
    }
    if (db) { /* db^T(N,K) = dout^T(N,M) @ a(M,K): a stored as (K,M) col-major, transposed */
        CUBLAS_CHECK(cublasSgemmStridedBatched(s->cublas, CUBLAS_OP_N, CUBLAS_OP_T, N, K, M, &one,
                                               dout, N, (long long)M * N, a, K, (long long)M * K,
                                               &zero, db, N, (long long)K * N, batch));
    }
}
