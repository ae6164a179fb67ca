/*
 * losses/cuda/gcl_bimodal.cu — the bimodal GCL engine step on the GPU (gcl_bimodal_cuda.h; the
 * math is at the top of losses/gcl_bimodal.h, the CPU version in losses/gcl_bimodal.c).
 *
 * Order of work on the context's stream (one host synchronisation, after step 1):
 *   1. validation: features finite, temperatures finite and > 0, ids in [0, N), no duplicate
 *      ids (all pairs); the first bad position of each kind lands in a status word (integer
 *      atomicMin: the result does not depend on scheduling); the words are copied to the host.
 *   2. S (B, B) = zi zt^T by cuBLAS sgemm into the workspace (row-major by operand swap).
 *   3. three tiled passes over S, each followed by a per-anchor finaliser:
 *        max:  row maxima (image anchors i) and column maxima (text anchors j)
 *              -> diag S_ii, 1/tau, b_new = max(b_old[idx], (max - S_ii) / tau);
 *        sum:  row sums of exp(A^I - b^I) and column sums of exp(A^T - b^T) (diagonal skipped)
 *              -> u_new (first-touch rule, 1e-20 floor), 1/u_new, logU;
 *        coef: M_ij = p^I_ij + p^T_ji written over S_ij (i != j), row sums of p^I A^I and
 *              column sums of p^T A^T -> pa; then M_ii = -(rs^I_i / u^I_i + rs^T_i / u^T_i).
 *   4. dzi = M zt / (2B(B-1)), dzt = M^T zi / (2B(B-1)) by cuBLAS; rows copied out;
 *   5. scatter of u_new, b_new into the state (last).
 * Element (i, j) of S is image anchor i's negative j and text anchor j's negative i
 * (D^T_ji = S_ij - S_jj), so each pass reduces along rows for one direction and along columns
 * for the other.
 *
 * Tiles: a block of 32 x 8 threads covers 32 columns and 64 rows of S (each warp one row at a
 * time: coalesced 128-byte reads). Row partials: warp shuffle tree over the tile's 32 columns,
 * stored per (column tile, row). Column partials: each thread sums its 8 rows serially, the 8
 * row phases are combined in order through shared memory, stored per (row chunk, column). The
 * finalisers add the partials in tile order in double. The tile shape is fixed (not derived
 * from the GPU), so results are bit-identical run to run.
 *
 * Exponent arguments: A = __fmul_rn(s - S_ii, 1/tau) — the same rounded expression in the
 * maxima and in the exponentials, so that A - b <= 0 holds exactly (no FMA contraction across
 * it); exp arguments are clamped below at -87.3 (as the CPU's exp_shifted: no denormals).
 */
#include "ops/cuda/common.cuh"

#include <math.h>
#include <string.h>

extern "C" {
#include "core/cuda_api.h"
#include "losses/gcl_bimodal_cuda.h"
}

typedef unsigned long long ull;

static const char WHO[] = "gcl_bi_cuda";

#define GB_TC      32  /* columns per tile (the warp width) */
#define GB_TY      8   /* row phases per tile (warps per block) */
#define GB_TR      64  /* rows per tile */
#define GB_THREADS 256 /* per-anchor kernels, validation */
#define GB_DUP_T   256 /* ids per tile of the duplicate check */
#define GB_EXP_LO  -87.3f
#define GB_MAX_B   (GB_TR * 65535) /* row chunks are gridDim.y (<= 65535) */

/* Per-anchor arrays, B floats each (stride B). LOGUI..PAT are consecutive: the rows output. */
enum {
    AN_DIAG, /* S_ii */
    AN_AI,   /* 1 / tau^I_i */
    AN_AT,   /* 1 / tau^T_i */
    AN_BI,   /* b^I_new */
    AN_BT,   /* b^T_new */
    AN_UI,   /* u^I_new */
    AN_UT,   /* u^T_new */
    AN_IUI,  /* 1 / u^I_new */
    AN_IUT,  /* 1 / u^T_new */
    AN_RSI,  /* sum_{j!=i} exp(A^I_ij - b^I_i) */
    AN_RST,  /* sum_{j!=i} exp(A^T_ij - b^T_i) */
    AN_LOGUI,
    AN_LOGUT,
    AN_PAI,
    AN_PAT,
    AN_COUNT
};

/* Status words: the first bad position of each kind, ~0 when none. */
enum { ST_ZI, ST_ZT, ST_IDX, ST_DUP, ST_TAUI, ST_TAUT, ST_COUNT };
#define ST_NONE (~0ull)

/* ---- device helpers ------------------------------------------------------------------------ */

__device__ __forceinline__ bool not_finite(float x)
{
    return (__float_as_uint(x) & 0x7f800000u) == 0x7f800000u;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* exp(x) for x = A - b <= 0 (up to one rounding), clamped below at -87.3 (~1.2e-38). */
__device__ __forceinline__ float exp_shifted(float x)
{
    return expf(fmaxf(x, GB_EXP_LO));
}

/* Column partial of the block: the GB_TY row phases of column j combined in order (sum or
 * max) and stored to dst[j]. Called by all threads of the block. */
template <bool MAX>
__device__ __forceinline__ void col_partial_store(float v, float *dst, int j, int B)
{
    __shared__ float sh[GB_TY][GB_TC + 1];
    sh[threadIdx.y][threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.y != 0 || j >= B) return;
    float a = sh[0][threadIdx.x];
    for (int y = 1; y < GB_TY; y++) a = MAX ? fmaxf(a, sh[y][threadIdx.x]) : a + sh[y][threadIdx.x];
    dst[j] = a;
}

/* u update for one anchor (gcl_bimodal.h), in double as on the CPU. */
__device__ float u_update(float u_old, float b_old, float b_new, double rs, int B, float gamma)
{
    double g = rs / (double)(B - 1), u;
    if (u_old == 0.0f)
        u = g;
    else
        u = (1.0 - (double)gamma) * (double)u_old * exp((double)b_old - (double)b_new) +
            (double)gamma * g;
    float uf = (float)u;
    return uf > GCL_BI_U_MIN ? uf : GCL_BI_U_MIN;
}

/* ---- validation kernels -------------------------------------------------------------------- */

/* Features (n = B*d each), temperatures and id range; grid-stride. */
__global__ void validate_kernel(ull *st, const float *__restrict__ zi, const float *__restrict__ zt,
                                int64_t n, const float *__restrict__ tau_img,
                                const float *__restrict__ tau_txt, const int64_t *__restrict__ idx,
                                int B, int64_t N)
{
    int64_t t0 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = t0; e < n; e += stride) {
        if (not_finite(zi[e])) atomicMin(&st[ST_ZI], (ull)e);
        if (not_finite(zt[e])) atomicMin(&st[ST_ZT], (ull)e);
    }
    for (int64_t i = t0; i < B; i += stride) {
        int64_t q = idx[i];
        float ti = tau_img[i], tt = tau_txt[i];
        if (q < 0 || q >= N) atomicMin(&st[ST_IDX], (ull)i);
        if (!(ti > 0.0f) || not_finite(ti)) atomicMin(&st[ST_TAUI], (ull)i);
        if (!(tt > 0.0f) || not_finite(tt)) atomicMin(&st[ST_TAUT], (ull)i);
    }
}

/* All pairs i < j: st[ST_DUP] = the smallest j whose id already occurs at some i < j.
 * Block (x, y) compares ids of tile x against tile y (y >= x); grid (nt, nt). */
__global__ void duplicate_kernel(ull *st, const int64_t *__restrict__ idx, int B)
{
    __shared__ int64_t tile[GB_DUP_T];
    if (blockIdx.y < blockIdx.x) return; /* every j of tile y precedes every i of tile x */
    int j0 = (int)blockIdx.y * GB_DUP_T, jn = min(GB_DUP_T, B - j0);
    int t = (int)threadIdx.x, i = (int)blockIdx.x * GB_DUP_T + t;
    if (t < jn) tile[t] = idx[j0 + t];
    __syncthreads();
    if (i >= B) return;
    int64_t v = idx[i];
    for (int jj = 0; jj < jn; jj++)
        if (j0 + jj > i && tile[jj] == v) {
            atomicMin(&st[ST_DUP], (ull)(j0 + jj));
            break;
        }
}

/* ---- tiled passes over S (grid (ceil(B/32), ceil(B/64)), block (32, 8)) --------------------- */

/* rowpart[tile][r] = max over the tile's columns of S_rj; colpart[chunk][j] = max over the
 * chunk's rows of S_rj. */
__global__ void pass_max_kernel(const float *__restrict__ S, int B, float *__restrict__ rowpart,
                                float *__restrict__ colpart)
{
    int j = (int)blockIdx.x * GB_TC + (int)threadIdx.x;
    int r0 = (int)blockIdx.y * GB_TR, r1 = min(B, r0 + GB_TR);
    float cm = -INFINITY;
    for (int r = r0 + (int)threadIdx.y; r < r1; r += GB_TY) { /* uniform per warp */
        float s = j < B ? S[(int64_t)r * B + j] : -INFINITY;
        cm = fmaxf(cm, s);
        float rm = warp_max(s);
        if (threadIdx.x == 0) rowpart[(int64_t)blockIdx.x * B + r] = rm;
    }
    col_partial_store<true>(cm, colpart + (int64_t)blockIdx.y * B, j, B);
}

/* Row sums of exp(A^I_rj - b^I_r) and column sums of exp(A^T_jr - b^T_j), j != r. */
__global__ void pass_sum_kernel(const float *__restrict__ S, const float *__restrict__ anc, int B,
                                float *__restrict__ rowpart, float *__restrict__ colpart)
{
    const float *diag = anc + AN_DIAG * B, *aI = anc + AN_AI * B, *aT = anc + AN_AT * B;
    const float *bI = anc + AN_BI * B, *bT = anc + AN_BT * B;
    int j = (int)blockIdx.x * GB_TC + (int)threadIdx.x;
    int r0 = (int)blockIdx.y * GB_TR, r1 = min(B, r0 + GB_TR);
    bool jv = j < B;
    float dj = jv ? diag[j] : 0.0f, aj = jv ? aT[j] : 0.0f, bj = jv ? bT[j] : 0.0f;
    float cs = 0.0f;
    for (int r = r0 + (int)threadIdx.y; r < r1; r += GB_TY) {
        float eI = 0.0f, eT = 0.0f;
        if (jv && j != r) {
            float s = S[(int64_t)r * B + j];
            eI = exp_shifted(__fmul_rn(s - diag[r], aI[r]) - bI[r]);
            eT = exp_shifted(__fmul_rn(s - dj, aj) - bj);
        }
        cs += eT;
        float rs = warp_sum(eI);
        if (threadIdx.x == 0) rowpart[(int64_t)blockIdx.x * B + r] = rs;
    }
    col_partial_store<false>(cs, colpart + (int64_t)blockIdx.y * B, j, B);
}

/* M_rj = p^I_rj + p^T_jr over S_rj (j != r; the diagonal is set by coef_finish_kernel); row
 * sums of p^I A^I and column sums of p^T A^T. Each element is read and written by one thread. */
__global__ void pass_coef_kernel(float *__restrict__ S, const float *__restrict__ anc, int B,
                                 float *__restrict__ rowpart, float *__restrict__ colpart)
{
    const float *diag = anc + AN_DIAG * B, *aI = anc + AN_AI * B, *aT = anc + AN_AT * B;
    const float *bI = anc + AN_BI * B, *bT = anc + AN_BT * B;
    const float *iuI = anc + AN_IUI * B, *iuT = anc + AN_IUT * B;
    int j = (int)blockIdx.x * GB_TC + (int)threadIdx.x;
    int r0 = (int)blockIdx.y * GB_TR, r1 = min(B, r0 + GB_TR);
    bool jv = j < B;
    float dj = jv ? diag[j] : 0.0f, aj = jv ? aT[j] : 0.0f, bj = jv ? bT[j] : 0.0f;
    float iuj = jv ? iuT[j] : 0.0f;
    float cs = 0.0f;
    for (int r = r0 + (int)threadIdx.y; r < r1; r += GB_TY) {
        float paI = 0.0f, paT = 0.0f;
        if (jv && j != r) {
            float *sp = S + (int64_t)r * B + j;
            float s = *sp;
            float AI = __fmul_rn(s - diag[r], aI[r]), AT = __fmul_rn(s - dj, aj);
            float pI = exp_shifted(AI - bI[r]) * iuI[r];
            float pT = exp_shifted(AT - bj) * iuj;
            *sp = pI + pT;
            paI = pI * AI;
            paT = pT * AT;
        }
        cs += paT;
        float rs = warp_sum(paI);
        if (threadIdx.x == 0) rowpart[(int64_t)blockIdx.x * B + r] = rs;
    }
    col_partial_store<false>(cs, colpart + (int64_t)blockIdx.y * B, j, B);
}

/* ---- per-anchor finalisers (one thread per anchor k) --------------------------------------- */

__global__ void max_finish_kernel(const float *__restrict__ S, const float *__restrict__ tau_img,
                                  const float *__restrict__ tau_txt,
                                  const int64_t *__restrict__ idx, const float *__restrict__ b_img,
                                  const float *__restrict__ b_txt, int B, int ntile, int nchunk,
                                  const float *__restrict__ rowpart,
                                  const float *__restrict__ colpart, float *__restrict__ anc)
{
    int k = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (k >= B) return;
    float rm = -INFINITY, cm = -INFINITY;
    for (int t = 0; t < ntile; t++) rm = fmaxf(rm, rowpart[(int64_t)t * B + k]);
    for (int t = 0; t < nchunk; t++) cm = fmaxf(cm, colpart[(int64_t)t * B + k]);
    float dk = S[(int64_t)k * B + k];
    float ai = __frcp_rn(tau_img[k]), at = __frcp_rn(tau_txt[k]);
    int64_t q = idx[k];
    anc[AN_DIAG * B + k] = dk;
    anc[AN_AI * B + k] = ai;
    anc[AN_AT * B + k] = at;
    anc[AN_BI * B + k] = fmaxf(b_img[q], __fmul_rn(rm - dk, ai)); /* rm >= dk: b >= 0 */
    anc[AN_BT * B + k] = fmaxf(b_txt[q], __fmul_rn(cm - dk, at));
}

__global__ void sum_finish_kernel(const int64_t *__restrict__ idx, const float *__restrict__ u_img,
                                  const float *__restrict__ u_txt, const float *__restrict__ b_img,
                                  const float *__restrict__ b_txt, int B, float gamma, int ntile,
                                  int nchunk, const float *__restrict__ rowpart,
                                  const float *__restrict__ colpart, float *__restrict__ anc)
{
    int k = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (k >= B) return;
    double rsI = 0.0, rsT = 0.0;
    for (int t = 0; t < ntile; t++) rsI += (double)rowpart[(int64_t)t * B + k];
    for (int t = 0; t < nchunk; t++) rsT += (double)colpart[(int64_t)t * B + k];
    int64_t q = idx[k];
    float bI = anc[AN_BI * B + k], bT = anc[AN_BT * B + k];
    float uI = u_update(u_img[q], b_img[q], bI, rsI, B, gamma);
    float uT = u_update(u_txt[q], b_txt[q], bT, rsT, B, gamma);
    anc[AN_UI * B + k] = uI;
    anc[AN_UT * B + k] = uT;
    anc[AN_IUI * B + k] = __frcp_rn(uI);
    anc[AN_IUT * B + k] = __frcp_rn(uT);
    anc[AN_RSI * B + k] = (float)rsI;
    anc[AN_RST * B + k] = (float)rsT;
    anc[AN_LOGUI * B + k] = logf(uI) + bI;
    anc[AN_LOGUT * B + k] = logf(uT) + bT;
}

__global__ void coef_finish_kernel(float *__restrict__ S, int B, int ntile, int nchunk,
                                   const float *__restrict__ rowpart,
                                   const float *__restrict__ colpart, float *__restrict__ anc)
{
    int k = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (k >= B) return;
    double pI = 0.0, pT = 0.0;
    for (int t = 0; t < ntile; t++) pI += (double)rowpart[(int64_t)t * B + k];
    for (int t = 0; t < nchunk; t++) pT += (double)colpart[(int64_t)t * B + k];
    anc[AN_PAI * B + k] = (float)(pI / (double)(B - 1));
    anc[AN_PAT * B + k] = (float)(pT / (double)(B - 1));
    S[(int64_t)k * B + k] =
        -(anc[AN_RSI * B + k] * anc[AN_IUI * B + k] + anc[AN_RST * B + k] * anc[AN_IUT * B + k]);
}

/* State write: u[idx_k] = u_new_k, b[idx_k] = b_new_k (ids distinct: no write conflicts). */
__global__ void scatter_kernel(const int64_t *__restrict__ idx, const float *__restrict__ anc,
                               int B, float *__restrict__ u_img, float *__restrict__ u_txt,
                               float *__restrict__ b_img, float *__restrict__ b_txt)
{
    int k = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (k >= B) return;
    int64_t q = idx[k];
    u_img[q] = anc[AN_UI * B + k];
    u_txt[q] = anc[AN_UT * B + k];
    b_img[q] = anc[AN_BI * B + k];
    b_txt[q] = anc[AN_BT * B + k];
}

/* ---- host side ----------------------------------------------------------------------------- */

/* Workspace layout for B anchors (byte offsets, 256-aligned). Monotone in B. */
struct ws_layout {
    size_t S, rowpart, colpart, anc, total;
    int ntile, nchunk;
};

static size_t align256(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

static struct ws_layout ws_layout_for(int B)
{
    struct ws_layout L;
    size_t b = (size_t)B;
    L.ntile = CEIL_DIV(B, GB_TC);
    L.nchunk = CEIL_DIV(B, GB_TR);
    L.S = 0;
    L.rowpart = align256(sizeof(float) * b * b);
    L.colpart = L.rowpart + align256(sizeof(float) * (size_t)L.ntile * b);
    L.anc = L.colpart + align256(sizeof(float) * (size_t)L.nchunk * b);
    L.total = L.anc + align256(sizeof(float) * (size_t)AN_COUNT * b);
    return L;
}

static void ws_reserve(struct sg_ctx *c, struct gcl_bi_cuda *g, size_t bytes)
{
    if (bytes <= g->ws_bytes) return;
    sg_dev_free(c, g->ws); /* cudaFree: waits for the previous step's use */
    g->ws = sg_dev_alloc(c, bytes);
    g->ws_bytes = bytes;
}

/* Reads one device value (error paths only). */
template <typename T> static T dev_value(struct sg_ctx *c, const T *p)
{
    T v;
    sg_cuda_memcpy(c, &v, p, sizeof v, 2);
    return v;
}

/* Device-side input checks; the status copy is the step's one synchronisation. */
static int validate(struct sg_ctx *c, struct sg_cuda *s, struct gcl_bi_cuda *g,
                    const float *tau_img, const float *tau_txt, const float *zi, const float *zt,
                    const int64_t *idx, int B, int d)
{
    ull *st = (ull *)g->status, h[ST_COUNT];
    int64_t n = (int64_t)B * d;
    CUDA_CHECK(cudaMemsetAsync(st, 0xff, sizeof h, s->stream)); /* all ST_NONE */
    int64_t want = CEIL_DIV(SG_MAX(n, (int64_t)B), (int64_t)GB_THREADS);
    int blocks = (int)SG_MIN(want, (int64_t)s->num_sms * 8);
    validate_kernel<<<blocks, GB_THREADS, 0, s->stream>>>(st, zi, zt, n, tau_img, tau_txt, idx, B,
                                                          g->N);
    CUDA_CHECK(cudaGetLastError());
    int nt = CEIL_DIV(B, GB_DUP_T);
    duplicate_kernel<<<dim3(nt, nt), GB_DUP_T, 0, s->stream>>>(st, idx, B);
    CUDA_CHECK(cudaGetLastError());
    sg_cuda_memcpy(c, h, st, sizeof h, 2); /* synchronises */

    if (h[ST_ZI] != ST_NONE)
        return sg_err("%s: image features contain NaN or Inf (row %llu); state left unchanged", WHO,
                      h[ST_ZI] / (ull)d);
    if (h[ST_ZT] != ST_NONE)
        return sg_err("%s: text features contain NaN or Inf (row %llu); state left unchanged", WHO,
                      h[ST_ZT] / (ull)d);
    if (h[ST_IDX] != ST_NONE)
        return sg_err("%s: index[%llu] = %lld outside [0, N = %lld); pass dataset sample ids", WHO,
                      h[ST_IDX], (long long)dev_value(c, idx + h[ST_IDX]), (long long)g->N);
    if (h[ST_DUP] != ST_NONE)
        return sg_err("%s: index %lld appears twice in the batch (again at position %llu); "
                      "indices must be distinct (one state per sample)",
                      WHO, (long long)dev_value(c, idx + h[ST_DUP]), h[ST_DUP]);
    if (h[ST_TAUI] != ST_NONE)
        return sg_err("%s: tau_img[%llu] = %g; temperatures must be finite and > 0", WHO,
                      h[ST_TAUI], (double)dev_value(c, tau_img + h[ST_TAUI]));
    if (h[ST_TAUT] != ST_NONE)
        return sg_err("%s: tau_txt[%llu] = %g; temperatures must be finite and > 0", WHO,
                      h[ST_TAUT], (double)dev_value(c, tau_txt + h[ST_TAUT]));
    return 0;
}

/* Plain fp32 GEMMs for the step (no TF32, see the header); returns the mode to restore. */
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

/* Steps 3 (passes and finalisers) for a validated batch; S holds zi zt^T, M on return. */
static void passes(struct sg_cuda *s, struct gcl_bi_cuda *g, const struct ws_layout *L, float *S,
                   const float *tau_img, const float *tau_txt, const int64_t *idx, int B,
                   float gamma)
{
    char *base = (char *)g->ws;
    float *rowpart = (float *)(base + L->rowpart), *colpart = (float *)(base + L->colpart);
    float *anc = (float *)(base + L->anc);
    dim3 grid(L->ntile, L->nchunk), block(GB_TC, GB_TY);
    int fb = CEIL_DIV(B, GB_THREADS);
    cudaStream_t st = s->stream;

    pass_max_kernel<<<grid, block, 0, st>>>(S, B, rowpart, colpart);
    CUDA_CHECK(cudaGetLastError());
    max_finish_kernel<<<fb, GB_THREADS, 0, st>>>(S, tau_img, tau_txt, idx, g->b_img, g->b_txt, B,
                                                 L->ntile, L->nchunk, rowpart, colpart, anc);
    CUDA_CHECK(cudaGetLastError());
    pass_sum_kernel<<<grid, block, 0, st>>>(S, anc, B, rowpart, colpart);
    CUDA_CHECK(cudaGetLastError());
    sum_finish_kernel<<<fb, GB_THREADS, 0, st>>>(idx, g->u_img, g->u_txt, g->b_img, g->b_txt, B,
                                                 gamma, L->ntile, L->nchunk, rowpart, colpart, anc);
    CUDA_CHECK(cudaGetLastError());
    pass_coef_kernel<<<grid, block, 0, st>>>(S, anc, B, rowpart, colpart);
    CUDA_CHECK(cudaGetLastError());
    coef_finish_kernel<<<fb, GB_THREADS, 0, st>>>(S, B, L->ntile, L->nchunk, rowpart, colpart, anc);
    CUDA_CHECK(cudaGetLastError());
}

/* ---- public API ---------------------------------------------------------------------------- */

extern "C" int gcl_bi_cuda_init(struct sg_ctx *c, struct gcl_bi_cuda *g, int64_t N)
{
    SG_CHECK(g, "NULL engine");
    sg_cuda_get(c);
    memset(g, 0, sizeof *g);
    if (N < 1) return sg_err("%s: N = %lld; the dataset size must be >= 1", WHO, (long long)N);
    size_t bytes = sizeof(float) * (size_t)N;
    float **arr[4] = {&g->u_img, &g->u_txt, &g->b_img, &g->b_txt};
    for (int k = 0; k < 4; k++) {
        *arr[k] = (float *)sg_dev_alloc(c, bytes);
        sg_memset_zero(c, *arr[k], bytes);
    }
    g->status = sg_dev_alloc(c, sizeof(ull) * ST_COUNT);
    g->N = N;
    return 0;
}

extern "C" void gcl_bi_cuda_free(struct sg_ctx *c, struct gcl_bi_cuda *g)
{
    if (!g) return;
    void *p[] = {g->u_img, g->u_txt, g->b_img, g->b_txt, g->ws, g->status};
    for (size_t k = 0; k < sizeof p / sizeof p[0]; k++) sg_dev_free(c, p[k]);
    memset(g, 0, sizeof *g);
}

static int state_match(const struct gcl_bi_cuda *g, const struct gcl_bi_state *host)
{
    SG_CHECK(g && host, "NULL engine or host state");
    if (host->N != g->N)
        return sg_err("%s: host state has N = %lld, the device state N = %lld", WHO,
                      (long long)host->N, (long long)g->N);
    SG_CHECK(host->u_img && host->u_txt && host->b_img && host->b_txt, "host state not allocated");
    return 0;
}

extern "C" int gcl_bi_cuda_state_upload(struct sg_ctx *c, struct gcl_bi_cuda *g,
                                        const struct gcl_bi_state *host)
{
    if (state_match(g, host) != 0) return -1;
    size_t bytes = sizeof(float) * (size_t)g->N;
    sg_memcpy_h2d(c, g->u_img, host->u_img, bytes);
    sg_memcpy_h2d(c, g->u_txt, host->u_txt, bytes);
    sg_memcpy_h2d(c, g->b_img, host->b_img, bytes);
    sg_memcpy_h2d(c, g->b_txt, host->b_txt, bytes);
    return 0;
}

extern "C" int gcl_bi_cuda_state_download(struct sg_ctx *c, struct gcl_bi_cuda *g,
                                          struct gcl_bi_state *host)
{
    if (state_match(g, host) != 0) return -1;
    size_t bytes = sizeof(float) * (size_t)g->N;
    sg_memcpy_d2h(c, host->u_img, g->u_img, bytes);
    sg_memcpy_d2h(c, host->u_txt, g->u_txt, bytes);
    sg_memcpy_d2h(c, host->b_img, g->b_img, bytes);
    sg_memcpy_d2h(c, host->b_txt, g->b_txt, bytes);
    return 0;
}

extern "C" int gcl_bi_cuda_step(struct sg_ctx *c, struct gcl_bi_cuda *g, const float *tau_img,
                                const float *tau_txt, const float *zi, const float *zt,
                                const int64_t *idx, int B, int d, float gamma, float *dzi,
                                float *dzt, float *rows)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(g && g->u_img && g->status, "engine not initialised");
    SG_CHECK(tau_img && tau_txt && zi && zt && idx && dzi && dzt, "NULL argument");
    if (B < 2) return sg_err("%s: batch of %d pairs; need B >= 2 (negatives)", WHO, B);
    if (d < 1) return sg_err("%s: feature dimension d = %d; need d >= 1", WHO, d);
    if (B > GB_MAX_B) return sg_err("%s: batch of %d pairs; at most %d", WHO, B, GB_MAX_B);
    if (!(gamma > 0.0f && gamma <= 1.0f))
        return sg_err("%s: gamma = %g must be in (0, 1]", WHO, (double)gamma);
    if (validate(c, s, g, tau_img, tau_txt, zi, zt, idx, B, d) != 0) return -1;

    struct ws_layout L = ws_layout_for(B);
    ws_reserve(c, g, L.total);
    float *S = (float *)((char *)g->ws + L.S);
    const float *anc = (const float *)((char *)g->ws + L.anc);
    const float one = 1.0f, zero = 0.0f;
    const float k = 1.0f / (2.0f * (float)B * (float)(B - 1));
    cublasMath_t mode = math_fp32(s);
    /* S (B,B) row-major = column-major S^T = zt (d,B col-major)^T @ zi (d,B col-major) */
    CUBLAS_CHECK(
        cublasSgemm(s->cublas, CUBLAS_OP_T, CUBLAS_OP_N, B, B, d, &one, zt, d, zi, d, &zero, S, B));
    passes(s, g, &L, S, tau_img, tau_txt, idx, B, gamma);
    /* dzi^T (d,B) = zt^T (d,B) @ M^T (M row-major = M^T column-major, ld B) */
    CUBLAS_CHECK(
        cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_N, d, B, B, &k, zt, d, S, B, &zero, dzi, d));
    /* dzt^T (d,B) = zi^T (d,B) @ M */
    CUBLAS_CHECK(
        cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_T, d, B, B, &k, zi, d, S, B, &zero, dzt, d));
    math_restore(s, mode);
    if (rows)
        CUDA_CHECK(cudaMemcpyAsync(rows, anc + (size_t)AN_LOGUI * B, sizeof(float) * 4 * (size_t)B,
                                   cudaMemcpyDeviceToDevice, s->stream));
    scatter_kernel<<<CEIL_DIV(B, GB_THREADS), GB_THREADS, 0, s->stream>>>(
        idx, anc, B, g->u_img, g->u_txt, g->b_img, g->b_txt);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}
