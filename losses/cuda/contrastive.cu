/*
 * losses/cuda/contrastive.cu — the CUDA paths of the CLIP InfoNCE loss (losses/clip.h), SimCLR
 * NT-Xent (losses/simclr.h) and unimodal SogCLR / iSogCLR (losses/sogclr_uni.h). The math and the
 * PyTorch references are in those headers; the CPU fast paths (clip.c, simclr.c, sogclr_uni.c)
 * are followed step by step, with the same precision choices (float exp, double row sums,
 * double per-anchor arithmetic), so GPU and CPU agree to fp32 GEMM rounding.
 *
 *  CLIP  (B, d):  L = exp(p) zi zt^T (cuBLAS)            LT = L^T (tiled transpose)
 *                 lse_r, rowloss = row_lse(L)             lse_c, colloss = row_lse(LT)
 *                 G_ij = (e^{L_ij - lse_r_i} + e^{L_ij - lse_c_j} - 2 [i = j]) / 2B   (over L)
 *                 dp = sum_ij G_ij L_ij (per-row partials);  dzi = s G zt,  dzt = s G^T zi
 *                 torch: open_clip ClipLoss (logits = s zi @ zt.T; mean of the two CEs).
 *  SimCLR (2B):   Z = [za; zb];  L = Z Z^T / tau (cuBLAS), upper triangle mirrored into the lower
 *                 (exact symmetry, as the CPU);  lse_a over k != a;  loss_a = lse_a - L_{a,pos(a)}
 *                 H_ak = (e^{L_ak - lse_a} + e^{L_ak - lse_k}) / 2B, H_aa = 0, H_{a,pos} -= 2/2B
 *                 dZ = H Z / tau.  torch: F.cross_entropy(Z Z^T/tau with -inf diagonal, pos).
 *  SogCLR-uni (R = 2B, K = 2(B-1)):  S = Z Z^T;  per row r (warp): e = exp(s/tau_r) over the
 *                 2B-2 negatives, g = sum e, h = sum e s (double); per row (thread): u_r (moving
 *                 average / first touch), a_r = 1/(max(u_r, eps) K B), l_r = -s_pos + h/(U K);
 *                 M_rc = a_r e_rc + a_c exp(s_rc/tau_c) (one tau: (a_r + a_c) e_rc), M_rr = 0,
 *                 M_{r,pr} = -2/B;  dZ = M Z;  state: tau step (isogclr), u[k] = (u_a + u_b)/2.
 *                 torch: tests/ref/gen_sogclr_uni.py.
 *
 * Conventions: everything on the context's stream; every launch checked. Temporaries live in the
 * context scratch (sg_cuda_scratch), laid out per call. A small header at its start holds the
 * input-check words (first bad position per kind, integer atomicMin: scheduling-independent) and
 * the double results; it is copied to the host at the end of the call — the ONE synchronisation
 * of a step. Input checks run on the device before the rest is queued; kernels whose output is
 * visible to the caller (gradient copy-out, state update) first read the check words and do
 * nothing when one is set, so bad input writes nothing (the gradient GEMMs write to scratch).
 * Reads of per-sample state through an unchecked id are clamped to index 0 (results discarded).
 *
 * Numerics: GEMMs are cuBLAS sgemm with TF32 disabled for the call (also for bf16 contexts: the
 * loss is fp32; NVIDIA_TF32_OVERRIDE=1 would override this, do not set it). Row reductions are
 * one warp per row, lanes strided over the columns, per-lane double sums then a fixed xor-shuffle
 * tree; final sums are one 256-thread block with a fixed tree. No float atomics: bit-identical run
 * to run on one GPU model.
 */
#include "ops/cuda/common.cuh"

#include <math.h>
#include <string.h>

extern "C" {
#include "losses/clip.h"
#include "losses/simclr.h"
#include "losses/sogclr_uni.h"
}

typedef unsigned long long ull;

#define CT_WARPS   8   /* warps per block in the warp-per-row kernels (block 32 x 8) */
#define CT_THREADS 256 /* 1-D kernels */
#define CT_TILE    32  /* transpose / mirror tile edge */
#define CT_DUP_T   256 /* ids per tile of the duplicate check */
#define CT_NST     4   /* check words in the header */
#define ST_NONE    (~0ull)

/* Header at the start of the scratch: check words (ST_NONE = passed), double results. */
struct ct_header {
    ull st[CT_NST];
    double val[4];
};

/* ---- device helpers ------------------------------------------------------------------------ */

__device__ __forceinline__ bool not_finite(float x)
{
    return (__float_as_uint(x) & 0x7f800000u) == 0x7f800000u;
}

__device__ __forceinline__ float warp_max_f(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* True when every check word of the call is clear (read by the gated kernels). */
__device__ __forceinline__ bool checks_passed(const ull *st)
{
    for (int k = 0; k < CT_NST; k++)
        if (st[k] != ST_NONE) return false;
    return true;
}

/* ---- input checks -------------------------------------------------------------------------- */

/* *st = min index e < n with x[e] not finite (grid-stride). */
__global__ void nonfinite_kernel(ull *st, const float *__restrict__ x, int64_t n)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride)
        if (not_finite(x[e])) atomicMin(st, (ull)e);
}

/* *st = min row r whose squared norm (double) is not finite or off 1 by more than tol; as
 * sogclr_uni.c check_rows. One warp per row. */
__global__ void norm_check_kernel(ull *st, const float *__restrict__ z, int B, int d, double tol)
{
    int r = (int)blockIdx.x * CT_WARPS + (int)threadIdx.y;
    if (r >= B) return; /* uniform per warp */
    const float *x = z + (int64_t)r * d;
    double ss = 0.0;
    for (int k = (int)threadIdx.x; k < d; k += 32) ss += (double)x[k] * x[k];
    ss = warp_sum_d(ss);
    if (threadIdx.x == 0 && (!isfinite(ss) || fabs(ss - 1.0) > tol)) atomicMin(st, (ull)r);
}

/* *st = min i with idx[i] outside [0, N). */
__global__ void id_range_kernel(ull *st, const int64_t *__restrict__ idx, int B, int64_t N)
{
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < B && (idx[i] < 0 || idx[i] >= N)) atomicMin(st, (ull)i);
}

/* All pairs i < j: *st = the smallest id value occurring twice (the CPU reports the smallest
 * duplicated value after sorting). Block (x, y) compares ids of tile x with tile y >= x. */
static __global__ void duplicate_kernel(ull *st, const int64_t *__restrict__ idx, int B)
{
    __shared__ int64_t tile[CT_DUP_T];
    if (blockIdx.y < blockIdx.x) return;
    int j0 = (int)blockIdx.y * CT_DUP_T, jn = min(CT_DUP_T, B - j0);
    int t = (int)threadIdx.x, i = (int)blockIdx.x * CT_DUP_T + t;
    if (t < jn) tile[t] = idx[j0 + t];
    __syncthreads();
    if (i >= B) return;
    int64_t v = idx[i];
    for (int jj = 0; jj < jn; jj++)
        if (j0 + jj > i && tile[jj] == v) {
            atomicMin(st, (ull)v);
            break;
        }
}

/* ---- shared passes ------------------------------------------------------------------------- */

/* out (n, n) = in^T, 32 x 32 tiles through shared memory; grid (nt, nt), block (32, 8). */
__global__ void transpose_kernel(float *__restrict__ out, const float *__restrict__ in, int n)
{
    __shared__ float tile[CT_TILE][CT_TILE + 1];
    int c = (int)blockIdx.x * CT_TILE + (int)threadIdx.x;
    for (int y = (int)threadIdx.y; y < CT_TILE; y += CT_WARPS) {
        int r = (int)blockIdx.y * CT_TILE + y;
        if (r < n && c < n) tile[y][threadIdx.x] = in[(int64_t)r * n + c];
    }
    __syncthreads();
    int oc = (int)blockIdx.y * CT_TILE + (int)threadIdx.x; /* column of out = row of in */
    for (int y = (int)threadIdx.y; y < CT_TILE; y += CT_WARPS) {
        int orow = (int)blockIdx.x * CT_TILE + y; /* row of out = column of in */
        if (orow < n && oc < n) out[(int64_t)orow * n + oc] = tile[threadIdx.x][y];
    }
}

/* L (n, n): strict lower triangle <- strict upper (L_ij = L_ji for i > j). Block (x = tile
 * column bj, y = tile row bi), bi >= bj, writes tile (bi, bj) from tile (bj, bi). Only strict
 * upper elements are read for writing and only strict lower ones written: no race, even on the
 * diagonal tiles (the whole tile is loaded before any write). */
__global__ void mirror_upper_kernel(float *L, int n)
{
    __shared__ float tile[CT_TILE][CT_TILE + 1];
    int bi = (int)blockIdx.y, bj = (int)blockIdx.x;
    if (bi < bj) return;
    int tx = (int)threadIdx.x;
    for (int y = (int)threadIdx.y; y < CT_TILE; y += CT_WARPS) {
        int r = bj * CT_TILE + y, c = bi * CT_TILE + tx; /* tile (bj, bi) */
        if (r < n && c < n) tile[y][tx] = L[(int64_t)r * n + c];
    }
    __syncthreads();
    for (int y = (int)threadIdx.y; y < CT_TILE; y += CT_WARPS) {
        int i = bi * CT_TILE + y, j = bj * CT_TILE + tx; /* tile[tx][y] = L[j][i] */
        if (i < n && j < n && i > j) L[(int64_t)i * n + j] = tile[tx][y];
    }
}

/* Row log-sum-exp of X (n, n), one warp per row i: max over the row (without the diagonal when
 * mask_self), then sum of expf(x - max) in double. lse[i] = (float)(max + log(sum)),
 * loss[i] = (max + log(sum)) - X[i, (i + pos_off) mod n]. As clip.c / simclr.c row_lse. */
__global__ void row_lse_kernel(const float *__restrict__ X, int n, int mask_self, int pos_off,
                               float *__restrict__ lse, double *__restrict__ loss)
{
    int i = (int)blockIdx.x * CT_WARPS + (int)threadIdx.y;
    if (i >= n) return; /* uniform per warp */
    const float *x = X + (int64_t)i * n;
    float m = -INFINITY;
    for (int j = (int)threadIdx.x; j < n; j += 32)
        if (!(mask_self && j == i)) m = fmaxf(m, x[j]);
    m = warp_max_f(m);
    double s = 0.0;
    for (int j = (int)threadIdx.x; j < n; j += 32)
        if (!(mask_self && j == i)) s += (double)expf(x[j] - m);
    s = warp_sum_d(s);
    if (threadIdx.x == 0) {
        double v = (double)m + log(s);
        lse[i] = (float)v;
        loss[i] = v - (double)x[(i + pos_off) % n];
    }
}

/* out[0] = sum x[0..n) in double: one block of CT_THREADS, strided serial sums then a fixed
 * tree (deterministic). */
__global__ void sum_kernel(const double *__restrict__ x, int n, double *out)
{
    __shared__ double sh[CT_THREADS];
    int t = (int)threadIdx.x;
    double s = 0.0;
    for (int k = t; k < n; k += CT_THREADS) s += x[k];
    sh[t] = s;
    __syncthreads();
    for (int w = CT_THREADS / 2; w > 0; w >>= 1) {
        if (t < w) sh[t] += sh[t + w];
        __syncthreads();
    }
    if (t == 0) *out = sh[0];
}

/* dst[0..n) = src[0..n) when every check word is clear (the gradient copy-out). */
__global__ void commit_kernel(const ull *st, float *__restrict__ dst, const float *__restrict__ src,
                              int64_t n)
{
    if (!checks_passed(st)) return;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride)
        dst[e] = src[e];
}

/* ---- CLIP ------------------------------------------------------------------------------------ */

/* Row i of L (B, B) -> G_i. in place (as clip.c g_row, incl. its dp arithmetic); dprow[i] =
 * sum_j G_ij L_ij. One warp per row. */
__global__ void clip_grad_kernel(float *L, int B, const float *__restrict__ lse_r,
                                 const float *__restrict__ lse_c, float inv2b,
                                 double *__restrict__ dprow)
{
    int i = (int)blockIdx.x * CT_WARPS + (int)threadIdx.y;
    if (i >= B) return;
    float *x = L + (int64_t)i * B;
    float lr = lse_r[i];
    double acc = 0.0;
    for (int j = (int)threadIdx.x; j < B; j += 32) {
        float xj = x[j];
        float v = (expf(xj - lr) + expf(xj - lse_c[j])) * inv2b;
        acc += (double)(v * xj);
        if (j == i) {
            acc -= 2.0 * (double)inv2b * (double)xj;
            v -= 2.0f * inv2b;
        }
        x[j] = v;
    }
    acc = warp_sum_d(acc);
    if (threadIdx.x == 0) dprow[i] = acc;
}

/* ---- SimCLR ---------------------------------------------------------------------------------- */

/* L (n, n), n = 2B, symmetric logits -> (G + G^T) in place (simclr.c h_row), elementwise. */
__global__ void simclr_h_kernel(float *L, int B, const float *__restrict__ lse, float inv_n)
{
    int n = 2 * B;
    int64_t nn = (int64_t)n * n, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < nn; e += stride) {
        int a = (int)(e / n), k = (int)(e % n);
        float x = L[e];
        float v = a == k ? 0.0f : (expf(x - lse[a]) + expf(x - lse[k])) * inv_n;
        if (k == (a + B) % n) v -= 2.0f * inv_n;
        L[e] = v;
    }
}

/* ---- unimodal SogCLR ------------------------------------------------------------------------- */

/* Per-row arrays of the unimodal step (R each). */
struct uni_rows {
    double *g, *h, *pos, *ur, *itr, *lt; /* sum e, sum e*s, s_pos, u_r, 1/tau_r, loss term */
    float *a, *itf;                      /* row coefficient a_r, (float) 1/tau_r */
};

__device__ __forceinline__ int64_t safe_id(const int64_t *idx, int i, int64_t N)
{
    int64_t k = idx[i];
    return k >= 0 && k < N ? k : 0; /* unchecked ids: results are discarded */
}

/* Row r of S (R = 2B): g, h over the negatives (c != r, c != partner) with e = expf(s * itau_r)
 * (sogclr_uni.c row_stats); without isogclr e replaces s (0 at the two masked entries). */
__global__ void uni_stats_kernel(float *S, int B, const int64_t *__restrict__ idx, int64_t N,
                                 const float *__restrict__ tau_state, float tau_cfg, int iso,
                                 struct uni_rows w)
{
    int R = 2 * B;
    int r = (int)blockIdx.x * CT_WARPS + (int)threadIdx.y;
    if (r >= R) return;
    int pr = r < B ? r + B : r - B;
    float t = iso ? tau_state[safe_id(idx, r % B, N)] : tau_cfg;
    float it = 1.0f / t;
    float *x = S + (int64_t)r * R;
    float pos = x[pr];
    double gs = 0.0, hs = 0.0;
    for (int c = (int)threadIdx.x; c < R; c += 32) {
        float e = 0.0f;
        if (c != r && c != pr) {
            float s = x[c];
            e = expf(s * it);
            gs += (double)e;
            hs += (double)(e * s);
        }
        if (!iso) x[c] = e;
    }
    gs = warp_sum_d(gs);
    hs = warp_sum_d(hs);
    if (threadIdx.x == 0) {
        w.g[r] = gs;
        w.h[r] = hs;
        w.pos[r] = (double)pos;
        w.itf[r] = it;
        w.itr[r] = 1.0 / (double)t;
    }
}

/* Per row r: u_r (first touch: the fresh estimate), a_r, loss term (sogclr_uni.c, in double). */
__global__ void uni_anchor_kernel(int B, const int64_t *__restrict__ idx, int64_t N,
                                  const float *__restrict__ u, float gamma, struct uni_rows w)
{
    int R = 2 * B;
    int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= R) return;
    const double K = 2.0 * (B - 1);
    float u_old = u[safe_id(idx, r % B, N)];
    double g = w.g[r] / K;
    double ur = u_old == 0.0f ? g : (1.0 - gamma) * (double)u_old + (double)gamma * g;
    double U = fmax(ur, (double)SOGCLR_UNI_EPS);
    w.ur[r] = ur;
    w.a[r] = (float)(1.0 / (U * K * B));
    w.lt[r] = -w.pos[r] + w.h[r] / (U * K);
}

/* S (R, R) -> M = C + C^T in place (sogclr_uni.c row_coef), elementwise. */
__global__ void uni_coef_kernel(float *S, int B, int iso, float neg, struct uni_rows w)
{
    int R = 2 * B;
    int64_t nn = (int64_t)R * R, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < nn; e += stride) {
        int r = (int)(e / R), c = (int)(e % R), pr = r < B ? r + B : r - B;
        float v;
        if (c == r)
            v = 0.0f;
        else if (c == pr)
            v = neg;
        else if (iso) {
            float x = S[e];
            v = w.a[r] * expf(x * w.itf[r]) + w.a[c] * expf(x * w.itf[c]);
        } else
            v = (w.a[r] + w.a[c]) * S[e];
        S[e] = v;
    }
}

/* State update per sample i (checks passed only): iSogCLR tau step, then u[k] = (u_a + u_b)/2
 * (sogclr_uni.c tau_update and the u write). Ids are distinct: no write conflicts. */
__global__ void uni_state_kernel(const ull *st, int B, const int64_t *__restrict__ idx, int iso,
                                 float rho, float eta, float beta, float tau_min, float tau_max,
                                 float *u, float *tau, float *tau_m, struct uni_rows w)
{
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= B || !checks_passed(st)) return;
    int64_t k = idx[i];
    const double K = 2.0 * (B - 1);
    if (iso) {
        double G[2];
        for (int v = 0; v < 2; v++) {
            int r = i + v * B;
            double inv = 1.0 / fmax(w.ur[r], (double)SOGCLR_UNI_EPS);
            G[v] = log(w.ur[r]) + rho - inv * w.h[r] / K * w.itr[r];
        }
        float m = (float)((1.0 - beta) * tau_m[k] + beta * 0.5 * (G[0] + G[1]));
        float t = tau[k] - eta * m;
        tau_m[k] = m;
        tau[k] = t < tau_min ? tau_min : (t > tau_max ? tau_max : t);
    }
    u[k] = (float)(0.5 * (w.ur[i] + w.ur[i + B]));
}

/* ---- host side ------------------------------------------------------------------------------- */

static size_t align256(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

/* Bump layout over the context scratch: take() during a sizing pass, then base + offsets. */
struct carve {
    size_t off;
};

static size_t take(struct carve *cv, size_t bytes)
{
    size_t o = cv->off;
    cv->off += align256(bytes);
    return o;
}

template <typename T> static T *at(void *base, size_t off)
{
    return (T *)((char *)base + off);
}

/* Plain fp32 GEMMs (no TF32) for the call; returns the mode to restore. */
static cublasMath_t math_fp32(struct sg_cuda *s)
{
    cublasMath_t old;
    CUBLAS_CHECK(cublasGetMathMode(s->cublas, &old));
    if (old != CUBLAS_DEFAULT_MATH) CUBLAS_CHECK(cublasSetMathMode(s->cublas, CUBLAS_DEFAULT_MATH));
    return old;
}

static void math_restore(struct sg_cuda *s, cublasMath_t old)
{
    if (old != CUBLAS_DEFAULT_MATH) CUBLAS_CHECK(cublasSetMathMode(s->cublas, old));
}

/* C (m, n) row-major = alpha * A (m, k) row-major @ B^T, B (n, k) row-major (cuBLAS column-major:
 * C^T = B A^T, i.e. op(B-as-col-major (k, n)) = T, A-as-col-major (k, m) = N). */
static void gemm_abt(struct sg_cuda *s, int m, int n, int k, float alpha, const float *A,
                     const float *Bm, float *C)
{
    const float zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, Bm, k, A, k,
                             &zero, C, n));
}

/* C (m, d) row-major = alpha * A (m, kk) row-major (leading dim lda) @ X (kk, d) row-major. */
static void gemm_ax(struct sg_cuda *s, int m, int d, int kk, float alpha, const float *A, int lda,
                    const float *X, float *C)
{
    const float zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_N, d, m, kk, &alpha, X, d, A, lda,
                             &zero, C, d));
}

/* C (m, d) row-major = alpha * A^T @ X, A (kk, m) row-major (leading dim lda), X (kk, d). */
static void gemm_atx(struct sg_cuda *s, int m, int d, int kk, float alpha, const float *A, int lda,
                     const float *X, float *C)
{
    const float zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_T, d, m, kk, &alpha, X, d, A, lda,
                             &zero, C, d));
}

static int grid_1d(struct sg_cuda *s, int64_t n)
{
    int64_t want = SG_MAX(CEIL_DIV(n, (int64_t)CT_THREADS), (int64_t)1);
    return (int)SG_MIN(want, (int64_t)s->num_sms * 16);
}

static void launch_nonfinite(struct sg_cuda *s, ull *st, const float *x, int64_t n)
{
    nonfinite_kernel<<<grid_1d(s, n), CT_THREADS, 0, s->stream>>>(st, x, n);
    CUDA_CHECK(cudaGetLastError());
}

static void launch_row_lse(struct sg_cuda *s, const float *X, int n, int mask_self, int pos_off,
                           float *lse, double *loss)
{
    row_lse_kernel<<<CEIL_DIV(n, CT_WARPS), dim3(32, CT_WARPS), 0, s->stream>>>(X, n, mask_self,
                                                                                pos_off, lse, loss);
    CUDA_CHECK(cudaGetLastError());
}

static void launch_sum(struct sg_cuda *s, const double *x, int n, double *out)
{
    sum_kernel<<<1, CT_THREADS, 0, s->stream>>>(x, n, out);
    CUDA_CHECK(cudaGetLastError());
}

static void launch_commit(struct sg_cuda *s, const ull *st, float *dst, const float *src, int64_t n)
{
    commit_kernel<<<grid_1d(s, n), CT_THREADS, 0, s->stream>>>(st, dst, src, n);
    CUDA_CHECK(cudaGetLastError());
}

/* Clears the check words (all ST_NONE) and the results. */
static void header_reset(struct sg_cuda *s, struct ct_header *h)
{
    CUDA_CHECK(cudaMemsetAsync(h->st, 0xff, sizeof h->st, s->stream));
    CUDA_CHECK(cudaMemsetAsync(h->val, 0, sizeof h->val, s->stream));
}

/* Copies the header to the host (the call's one synchronisation); returns the bit mask of the
 * failed checks (bit k: word k set). */
static int header_fetch(struct sg_ctx *c, const struct ct_header *dh, struct ct_header *hh)
{
    sg_memcpy_d2h(c, hh, dh, sizeof *hh);
    int bits = 0;
    for (int k = 0; k < CT_NST; k++)
        if (hh->st[k] != ST_NONE) bits |= 1 << k;
    return bits;
}

/* ---- CLIP ------------------------------------------------------------------------------------ */

extern "C" int sg_clip_cuda_run(struct sg_ctx *c, const float *zi, const float *zt, int B, int d,
                                float p, float *dzi, float *dzt, int want_dp, double out[2])
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(zi && zt && out, "NULL argument");
    SG_CHECK(B >= 2 && d >= 1, "sg_clip_cuda_run: B = %d, d = %d (checked by the caller)", B, d);
    const size_t bb = (size_t)B * B, bd = (size_t)B * d;
    const int grad = dzi || dzt || want_dp;
    struct carve cv = {0};
    size_t o_h = take(&cv, sizeof(struct ct_header));
    size_t o_L = take(&cv, sizeof(float) * bb);               /* (B, B) logits, then G */
    size_t o_LT = take(&cv, sizeof(float) * bb);              /* (B, B) logits^T */
    size_t o_lse = take(&cv, sizeof(float) * 2 * B);          /* (2, B) row lse, column lse */
    size_t o_loss = take(&cv, sizeof(double) * 2 * B);        /* (2, B) row, column CE terms */
    size_t o_dp = take(&cv, sizeof(double) * B);              /* (B) dp row partials */
    size_t o_dz = take(&cv, sizeof(float) * (grad ? bd : 1)); /* (B, d) gradient before copy-out */
    void *base = sg_cuda_scratch(c, cv.off);
    struct ct_header *h = at<struct ct_header>(base, o_h);
    float *L = at<float>(base, o_L), *LT = at<float>(base, o_LT), *lse = at<float>(base, o_lse);
    double *rl = at<double>(base, o_loss), *dprow = at<double>(base, o_dp);
    float *dz = at<float>(base, o_dz);
    const float sc = expf(p), inv2b = 0.5f / (float)B;
    const int nt = CEIL_DIV(B, CT_TILE);

    header_reset(s, h);
    launch_nonfinite(s, &h->st[0], zi, (int64_t)bd);
    launch_nonfinite(s, &h->st[1], zt, (int64_t)bd);
    cublasMath_t mode = math_fp32(s);
    gemm_abt(s, B, B, d, sc, zi, zt, L); /* L = s zi zt^T */
    transpose_kernel<<<dim3(nt, nt), dim3(32, CT_WARPS), 0, s->stream>>>(LT, L, B);
    CUDA_CHECK(cudaGetLastError());
    launch_row_lse(s, L, B, 0, 0, lse, rl);          /* rows: target i */
    launch_row_lse(s, LT, B, 0, 0, lse + B, rl + B); /* columns: target j (L_jj) */
    launch_sum(s, rl, 2 * B, &h->val[0]);
    if (grad) {
        clip_grad_kernel<<<CEIL_DIV(B, CT_WARPS), dim3(32, CT_WARPS), 0, s->stream>>>(
            L, B, lse, lse + B, inv2b, dprow);
        CUDA_CHECK(cudaGetLastError());
        launch_sum(s, dprow, B, &h->val[1]);
        if (dzi) {
            gemm_ax(s, B, d, B, sc, L, B, zt, dz); /* dzi = s G zt */
            launch_commit(s, h->st, dzi, dz, (int64_t)bd);
        }
        if (dzt) {
            gemm_atx(s, B, d, B, sc, L, B, zi, dz); /* dzt = s G^T zi (after dzi's copy-out) */
            launch_commit(s, h->st, dzt, dz, (int64_t)bd);
        }
    }
    math_restore(s, mode);
    struct ct_header hh;
    int bits = header_fetch(c, h, &hh);
    if (bits) return bits;
    out[0] = hh.val[0];
    out[1] = hh.val[1];
    return 0;
}

/* ---- SimCLR ---------------------------------------------------------------------------------- */

extern "C" int sg_simclr_cuda_run(struct sg_ctx *c, const float *za, const float *zb, int B, int d,
                                  float tau, float *dza, float *dzb, double *total)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(za && zb && total, "NULL argument");
    SG_CHECK(B >= 2 && d >= 1 && tau > 0.0f, "sg_simclr_cuda_run: B = %d, d = %d, tau = %g", B, d,
             (double)tau);
    const int n = 2 * B;
    const size_t bd = (size_t)B * d;
    const int grad = dza || dzb;
    struct carve cv = {0};
    size_t o_h = take(&cv, sizeof(struct ct_header));
    size_t o_Z = take(&cv, sizeof(float) * 2 * bd);               /* (2B, d) [za; zb] */
    size_t o_L = take(&cv, sizeof(float) * (size_t)n * n);        /* (2B, 2B) logits, then H */
    size_t o_lse = take(&cv, sizeof(float) * n);                  /* (2B) */
    size_t o_loss = take(&cv, sizeof(double) * n);                /* (2B) anchor terms */
    size_t o_dz = take(&cv, sizeof(float) * (grad ? 2 * bd : 1)); /* (2B, d) dZ */
    void *base = sg_cuda_scratch(c, cv.off);
    struct ct_header *h = at<struct ct_header>(base, o_h);
    float *Z = at<float>(base, o_Z), *L = at<float>(base, o_L), *lse = at<float>(base, o_lse);
    double *rl = at<double>(base, o_loss);
    float *dZ = at<float>(base, o_dz);
    const float it = 1.0f / tau, inv_n = 1.0f / (float)n;
    const int nt = CEIL_DIV(n, CT_TILE);

    header_reset(s, h);
    launch_nonfinite(s, &h->st[0], za, (int64_t)bd);
    launch_nonfinite(s, &h->st[1], zb, (int64_t)bd);
    CUDA_CHECK(cudaMemcpyAsync(Z, za, sizeof(float) * bd, cudaMemcpyDeviceToDevice, s->stream));
    CUDA_CHECK(
        cudaMemcpyAsync(Z + bd, zb, sizeof(float) * bd, cudaMemcpyDeviceToDevice, s->stream));
    cublasMath_t mode = math_fp32(s);
    gemm_abt(s, n, n, d, it, Z, Z, L); /* L = Z Z^T / tau */
    mirror_upper_kernel<<<dim3(nt, nt), dim3(32, CT_WARPS), 0, s->stream>>>(L, n);
    CUDA_CHECK(cudaGetLastError());
    launch_row_lse(s, L, n, 1, B, lse, rl); /* diagonal masked, target pos(a) = (a + B) mod 2B */
    launch_sum(s, rl, n, &h->val[0]);
    if (grad) {
        simclr_h_kernel<<<grid_1d(s, (int64_t)n * n), CT_THREADS, 0, s->stream>>>(L, B, lse, inv_n);
        CUDA_CHECK(cudaGetLastError());
        float *dst[2] = {dza, dzb};
        for (int v = 0; v < 2; v++) {
            if (!dst[v]) continue;
            /* dZ rows of view v = (1/tau) H[vB : vB + B, :] Z */
            gemm_ax(s, B, d, n, it, L + (size_t)v * B * n, n, Z, dZ + (size_t)v * bd);
            launch_commit(s, h->st, dst[v], dZ + (size_t)v * bd, (int64_t)bd);
        }
    }
    math_restore(s, mode);
    struct ct_header hh;
    int bits = header_fetch(c, h, &hh);
    if (bits) return bits;
    *total = hh.val[0];
    return 0;
}

/* ---- unimodal SogCLR / iSogCLR --------------------------------------------------------------- */

enum { UST_IDX, UST_ZA, UST_ZB, UST_DUP }; /* check words, in the CPU's reporting order */

/* Device-side input checks of a unimodal step (words as above). */
static void uni_validate(struct sg_cuda *s, ull *st, const float *za, const float *zb,
                         const int64_t *idx, int B, int d, int64_t N)
{
    id_range_kernel<<<CEIL_DIV(B, CT_THREADS), CT_THREADS, 0, s->stream>>>(&st[UST_IDX], idx, B, N);
    CUDA_CHECK(cudaGetLastError());
    const float *z[2] = {za, zb};
    for (int v = 0; v < 2; v++) {
        norm_check_kernel<<<CEIL_DIV(B, CT_WARPS), dim3(32, CT_WARPS), 0, s->stream>>>(
            &st[UST_ZA + v], z[v], B, d, (double)SOGCLR_UNI_NORM_TOL);
        CUDA_CHECK(cudaGetLastError());
    }
    int nt = CEIL_DIV(B, CT_DUP_T);
    duplicate_kernel<<<dim3(nt, nt), CT_DUP_T, 0, s->stream>>>(&st[UST_DUP], idx, B);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" int sogclr_uni_cuda_run(struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                                   const float *zb, const int64_t *idx, int B, int d, float *dza,
                                   float *dzb, double *total)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(l && za && zb && idx && total, "NULL argument");
    SG_CHECK(l->dev_ctx == c && l->dev_u, "sogclr_uni_cuda_run: state not on this context");
    SG_CHECK(B >= 2 && d >= 1, "sogclr_uni_cuda_run: B = %d, d = %d (checked by the caller)", B, d);
    SG_CHECK((dza == NULL) == (dzb == NULL), "dza and dzb must both be NULL or both be set");
    const int R = 2 * B, iso = l->cfg.isogclr, grad = dza != NULL;
    const size_t bd = (size_t)B * d, rr = (size_t)R * R;
    struct carve cv = {0};
    size_t o_h = take(&cv, sizeof(struct ct_header));
    size_t o_Z = take(&cv, sizeof(float) * 2 * bd);               /* (R, d) [za; zb] */
    size_t o_S = take(&cv, sizeof(float) * rr);                   /* (R, R) S, then e, then M */
    size_t o_dz = take(&cv, sizeof(float) * (grad ? 2 * bd : 1)); /* (R, d) dZ */
    size_t o_dbl = take(&cv, sizeof(double) * 6 * R);             /* (6, R) g h pos ur itr lt */
    size_t o_flt = take(&cv, sizeof(float) * 2 * R);              /* (2, R) a itf */
    void *base = sg_cuda_scratch(c, cv.off);
    struct ct_header *h = at<struct ct_header>(base, o_h);
    float *Z = at<float>(base, o_Z), *S = at<float>(base, o_S), *dZ = at<float>(base, o_dz);
    double *dbl = at<double>(base, o_dbl);
    float *flt = at<float>(base, o_flt);
    struct uni_rows w = {dbl,         dbl + R,     dbl + 2 * R, dbl + 3 * R,
                         dbl + 4 * R, dbl + 5 * R, flt,         flt + R};
    const int64_t N = l->cfg.N;
    const float neg = -2.0f / (float)B;
    const int rows_grid = CEIL_DIV(R, CT_WARPS), anc_grid = CEIL_DIV(R, CT_THREADS);

    header_reset(s, h);
    uni_validate(s, h->st, za, zb, idx, B, d, N);
    CUDA_CHECK(cudaMemcpyAsync(Z, za, sizeof(float) * bd, cudaMemcpyDeviceToDevice, s->stream));
    CUDA_CHECK(
        cudaMemcpyAsync(Z + bd, zb, sizeof(float) * bd, cudaMemcpyDeviceToDevice, s->stream));
    cublasMath_t mode = math_fp32(s);
    gemm_abt(s, R, R, d, 1.0f, Z, Z, S); /* S = Z Z^T */
    uni_stats_kernel<<<rows_grid, dim3(32, CT_WARPS), 0, s->stream>>>(S, B, idx, N, l->dev_tau,
                                                                      l->cfg.tau, iso, w);
    CUDA_CHECK(cudaGetLastError());
    uni_anchor_kernel<<<anc_grid, CT_THREADS, 0, s->stream>>>(B, idx, N, l->dev_u, l->gamma, w);
    CUDA_CHECK(cudaGetLastError());
    launch_sum(s, w.lt, R, &h->val[0]);
    if (grad) {
        uni_coef_kernel<<<grid_1d(s, (int64_t)rr), CT_THREADS, 0, s->stream>>>(S, B, iso, neg, w);
        CUDA_CHECK(cudaGetLastError());
        gemm_ax(s, R, d, R, 1.0f, S, R, Z, dZ); /* dZ = M Z */
        launch_commit(s, h->st, dza, dZ, (int64_t)bd);
        launch_commit(s, h->st, dzb, dZ + bd, (int64_t)bd);
    }
    math_restore(s, mode);
    const struct sogclr_uni_config *cf = &l->cfg;
    uni_state_kernel<<<CEIL_DIV(B, CT_THREADS), CT_THREADS, 0, s->stream>>>(
        h->st, B, idx, iso, cf->rho, cf->eta, cf->beta, cf->tau_min, cf->tau_max, l->dev_u,
        l->dev_tau, l->dev_tau_m, w);
    CUDA_CHECK(cudaGetLastError());
    struct ct_header hh;
    int bits = header_fetch(c, h, &hh);
    if (bits) return bits;
    *total = hh.val[0];
    return 0;
}
