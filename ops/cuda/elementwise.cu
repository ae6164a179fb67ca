/*
 * ops/cuda/elementwise.cu — residual add, accumulate, row L2 normalisation and dropout on the GPU
 * (ops/elementwise.h). PyTorch: a + b, F.normalize(x, p=2, dim=-1, eps), F.dropout(x, p).
 *
 *   add:        out = a + b;  backward da += dout, db += dout (ACCUMULATE, NULL skips)
 *   accumulate: dst += src
 *   l2norm:     norm = ||x||_2 per row, out = x / max(norm, eps)
 *               backward: dinp = (dout - out * <dout, out>) / norm   (norm >= eps)
 *                         dinp = dout / eps                          (norm <  eps)   (overwrite)
 *   dropout:    out = inp * mask / (1 - p)   (0 when p == 1); backward dinp = dout * mask / (1 - p)
 *
 * Dropout mask on the GPU (differs from the CPU's mt19937 stream, same distribution): one
 * 64-bit seed is drawn from the host generator per call (sg_rng_u64; none when p == 0 or 1, as
 * the CPU draws nothing then), and
 *     mask[i] = (splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15) >> 40) < ceil((1 - p) * 2^24)
 * i.e. the CPU's 24-bit compare applied to a counter-based hash: P(keep) = ceil((1-p) 2^24)/2^24,
 * independent of the launch configuration, so the mask is bit-identical run to run. Apply and
 * backward use the given mask exactly (the CPU formula inp * ((float)mask * scale): bit-identical
 * to dropout_apply_cpu).
 *
 * Pointwise kernels: grid-stride, float4 (and uchar4 for masks) when every pointer is aligned,
 * scalar otherwise and for the tail; in-place aliasing (out == a, dinp == dout) is fine since each
 * element is read and written by one thread. l2norm: one warp per row for D <= 1024, else one block
 * per row, float sums with a fixed reduction tree (deterministic; ~1e-7 relative to the CPU's
 * double sums).
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/elementwise.h"
}

/* ---- pointwise kernels -------------------------------------------------------------------- */

#define EW_THREADS     256
#define EW_WARP_MAX_D  1024
#define EW_BIG_THREADS 1024

/* Grid-stride loop over float4 index i < n4, then over scalar index i in [4*n4, n). */
#define EW_LOOP4(i) for (int64_t i = ew_i0(); i < n4; i += ew_stride())
#define EW_TAIL(i)  for (int64_t i = 4 * n4 + ew_i0(); i < n; i += ew_stride())

__device__ __forceinline__ int64_t ew_i0()
{
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t ew_stride()
{
    return (int64_t)gridDim.x * blockDim.x;
}

/* out = a + b (out may alias a or b). */
__global__ void ew_add_kernel(float *out, const float *a, const float *b, int64_t n, int64_t n4)
{
    EW_LOOP4(i)
    {
        float4 x = reinterpret_cast<const float4 *>(a)[i];
        float4 y = reinterpret_cast<const float4 *>(b)[i];
        reinterpret_cast<float4 *>(out)[i] =
            make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
    }
    EW_TAIL(i) out[i] = a[i] + b[i];
}

/* dst += src. */
__global__ void ew_acc_kernel(float *dst, const float *src, int64_t n, int64_t n4)
{
    EW_LOOP4(i)
    {
        float4 g = reinterpret_cast<const float4 *>(src)[i];
        float4 d = reinterpret_cast<float4 *>(dst)[i];
        reinterpret_cast<float4 *>(dst)[i] =
            make_float4(d.x + g.x, d.y + g.y, d.z + g.z, d.w + g.w);
    }
    EW_TAIL(i) dst[i] += src[i];
}

/* da += dout and db += dout in one pass (dout read once; da, db must not alias dout). */
__global__ void ew_acc2_kernel(float *da, float *db, const float *dout, int64_t n, int64_t n4)
{
    EW_LOOP4(i)
    {
        float4 g = reinterpret_cast<const float4 *>(dout)[i];
        float4 x = reinterpret_cast<float4 *>(da)[i];
        float4 y = reinterpret_cast<float4 *>(db)[i];
        reinterpret_cast<float4 *>(da)[i] = make_float4(x.x + g.x, x.y + g.y, x.z + g.z, x.w + g.w);
        reinterpret_cast<float4 *>(db)[i] = make_float4(y.x + g.x, y.y + g.y, y.z + g.z, y.w + g.w);
    }
    EW_TAIL(i)
    {
        float g = dout[i];
        da[i] += g;
        db[i] += g;
    }
}

/* splitmix64's output for counter i under `seed`: top 24 bits. */
__device__ __forceinline__ uint32_t ew_hash24(uint64_t seed, int64_t i)
{
    uint64_t z = seed + ((uint64_t)i + 1u) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)(z >> 40);
}

/* mask[i] = hash < thresh, out = inp * mask * scale (out may alias inp). */
__global__ void ew_dropout_fwd_kernel(float *out, uint8_t *mask, const float *inp, int64_t n,
                                      int64_t n4, uint64_t seed, uint32_t thresh, float scale)
{
    EW_LOOP4(i)
    {
        int64_t e = 4 * i;
        uint8_t m0 = ew_hash24(seed, e) < thresh, m1 = ew_hash24(seed, e + 1) < thresh;
        uint8_t m2 = ew_hash24(seed, e + 2) < thresh, m3 = ew_hash24(seed, e + 3) < thresh;
        float4 x = reinterpret_cast<const float4 *>(inp)[i];
        reinterpret_cast<uchar4 *>(mask)[i] = make_uchar4(m0, m1, m2, m3);
        reinterpret_cast<float4 *>(out)[i] =
            make_float4(x.x * ((float)m0 * scale), x.y * ((float)m1 * scale),
                        x.z * ((float)m2 * scale), x.w * ((float)m3 * scale));
    }
    EW_TAIL(i)
    {
        uint8_t m = ew_hash24(seed, i) < thresh;
        mask[i] = m;
        out[i] = inp[i] * ((float)m * scale);
    }
}

/* out = inp * ((float)mask * scale) (out may alias inp): apply and backward. */
__global__ void ew_dropout_apply_kernel(float *out, const uint8_t *mask, const float *inp,
                                        int64_t n, int64_t n4, float scale)
{
    EW_LOOP4(i)
    {
        uchar4 m = reinterpret_cast<const uchar4 *>(mask)[i];
        float4 x = reinterpret_cast<const float4 *>(inp)[i];
        reinterpret_cast<float4 *>(out)[i] =
            make_float4(x.x * ((float)m.x * scale), x.y * ((float)m.y * scale),
                        x.z * ((float)m.z * scale), x.w * ((float)m.w * scale));
    }
    EW_TAIL(i) out[i] = inp[i] * ((float)mask[i] * scale);
}

/* ---- l2norm: a row is handled by a warp (WARP) or by the whole block ---------------------- */

template <bool WARP> __device__ __forceinline__ int64_t ew_row()
{
    return WARP ? (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : blockIdx.x;
}
template <bool WARP> __device__ __forceinline__ int ew_tid()
{
    return WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
}
template <bool WARP> __device__ __forceinline__ int ew_nthr()
{
    return WARP ? 32 : (int)blockDim.x;
}
template <bool WARP> __device__ __forceinline__ float ew_sum(float v, float *sh)
{
    return WARP ? warp_sum(v) : block_sum(v, sh);
}

/* out (N,D) = rows of inp / max(||row||, eps); norm (N). out may alias inp. In block mode the
 * grid is exactly N blocks (the early return never splits a block). */
template <bool WARP>
__global__ void ew_l2norm_fwd_kernel(float *out, float *norm, const float *inp, int N, int D,
                                     float eps)
{
    __shared__ float sh[32];
    int64_t row = ew_row<WARP>();
    if (row >= N) return;
    int tid = ew_tid<WARP>(), nt = ew_nthr<WARP>();
    const float *x = inp + row * D;
    float *y = out + row * D;
    float ss = 0.0f;
    for (int j = tid; j < D; j += nt) ss += x[j] * x[j];
    float nrm = sqrtf(ew_sum<WARP>(ss, sh));
    float inv = 1.0f / (nrm > eps ? nrm : eps);
    for (int j = tid; j < D; j += nt) y[j] = x[j] * inv;
    if (tid == 0) norm[row] = nrm;
}

/* dinp (N,D) from dout, out (N,D), norm (N); dinp may alias dout. */
template <bool WARP>
__global__ void ew_l2norm_bwd_kernel(float *dinp, const float *dout, const float *out,
                                     const float *norm, int N, int D, float eps)
{
    __shared__ float sh[32];
    int64_t row = ew_row<WARP>();
    if (row >= N) return;
    int tid = ew_tid<WARP>(), nt = ew_nthr<WARP>();
    const float *dy = dout + row * D, *y = out + row * D;
    float *dx = dinp + row * D;
    float dot = 0.0f;
    for (int j = tid; j < D; j += nt) dot += dy[j] * y[j];
    dot = ew_sum<WARP>(dot, sh);
    float nr = norm[row];
    /* norm < eps: out = x / eps and no gradient flows through the clamped norm */
    float inv = 1.0f / (nr >= eps ? nr : eps);
    float d = nr >= eps ? dot : 0.0f;
    for (int j = tid; j < D; j += nt) dx[j] = (dy[j] - y[j] * d) * inv;
}

/* ---- launchers ---------------------------------------------------------------------------- */

static int ew_aligned16(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

static int ew_aligned4(const void *p)
{
    return ((uintptr_t)p & 3) == 0;
}

/* Grid for `work` items: enough blocks to cover it, capped at 16 per SM (grid-stride beyond). */
static int ew_grid(const struct sg_cuda *s, int64_t work)
{
    int64_t blocks = CEIL_DIV(work, (int64_t)EW_THREADS);
    return (int)SG_MAX((int64_t)1, SG_MIN(blocks, (int64_t)s->num_sms * 16));
}

/* float4 count when all (non-NULL) pointers are 16-byte aligned, else 0. */
static int64_t ew_n4(int64_t n, const void *a, const void *b, const void *c)
{
    int ok = (!a || ew_aligned16(a)) && (!b || ew_aligned16(b)) && (!c || ew_aligned16(c));
    return ok ? n / 4 : 0;
}

static float ew_dropout_scale(float p)
{
    SG_CHECK(p >= 0.0f && p <= 1.0f, "dropout probability %g is not in [0, 1]", (double)p);
    return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
}

extern "C" void add_forward_cuda(struct sg_ctx *c, float *out, const float *a, const float *b,
                                 int64_t n)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(n >= 0, "add: negative element count %lld", (long long)n);
    if (n == 0) return;
    SG_CHECK(out && a && b, "add forward: NULL out/a/b");
    int64_t n4 = ew_n4(n, out, a, b);
    ew_add_kernel<<<ew_grid(s, n4 + (n - 4 * n4)), EW_THREADS, 0, s->stream>>>(out, a, b, n, n4);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void accumulate_cuda(struct sg_ctx *c, float *dst, const float *src, int64_t n)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(n >= 0, "accumulate: negative element count %lld", (long long)n);
    if (n == 0) return;
    SG_CHECK(dst && src, "accumulate: NULL dst/src");
    int64_t n4 = ew_n4(n, dst, src, NULL);
    ew_acc_kernel<<<ew_grid(s, n4 + (n - 4 * n4)), EW_THREADS, 0, s->stream>>>(dst, src, n, n4);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void add_backward_cuda(struct sg_ctx *c, float *da, float *db, const float *dout,
                                  int64_t n)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(n >= 0, "add backward: negative element count %lld", (long long)n);
    if (n == 0 || (!da && !db)) return;
    SG_CHECK(dout, "add backward: NULL dout");
    if (!da || !db || da == db) { /* da == db: dout is added twice, as on the CPU */
        if (da) accumulate_cuda(c, da, dout, n);
        if (db) accumulate_cuda(c, db, dout, n);
        return;
    }
    int64_t n4 = ew_n4(n, da, db, dout);
    ew_acc2_kernel<<<ew_grid(s, n4 + (n - 4 * n4)), EW_THREADS, 0, s->stream>>>(da, db, dout, n,
                                                                                n4);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void l2norm_forward_cuda(struct sg_ctx *c, float *out, float *norm, const float *inp,
                                    int N, int D, float eps)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && D > 0, "l2norm: bad dims N=%d D=%d", N, D);
    if (N == 0) return;
    SG_CHECK(out && norm && inp, "l2norm forward: NULL out/norm/inp");
    if (D <= EW_WARP_MAX_D) {
        int grid = CEIL_DIV(N, EW_THREADS / 32);
        ew_l2norm_fwd_kernel<true><<<grid, EW_THREADS, 0, s->stream>>>(out, norm, inp, N, D, eps);
    } else {
        int threads = D >= 8192 ? EW_BIG_THREADS : EW_THREADS;
        ew_l2norm_fwd_kernel<false><<<N, threads, 0, s->stream>>>(out, norm, inp, N, D, eps);
    }
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void l2norm_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout,
                                     const float *out, const float *norm, int N, int D, float eps)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(N >= 0 && D > 0, "l2norm: bad dims N=%d D=%d", N, D);
    if (N == 0 || !dinp) return;
    SG_CHECK(dout && out && norm, "l2norm backward: NULL dout/out/norm");
    if (D <= EW_WARP_MAX_D) {
        int grid = CEIL_DIV(N, EW_THREADS / 32);
        ew_l2norm_bwd_kernel<true>
            <<<grid, EW_THREADS, 0, s->stream>>>(dinp, dout, out, norm, N, D, eps);
    } else {
        int threads = D >= 8192 ? EW_BIG_THREADS : EW_THREADS;
        ew_l2norm_bwd_kernel<false><<<N, threads, 0, s->stream>>>(dinp, dout, out, norm, N, D, eps);
    }
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void dropout_apply_cuda(struct sg_ctx *c, float *out, const uint8_t *mask,
                                   const float *inp, int64_t n, float p)
{
    struct sg_cuda *s = sg_cuda_get(c);
    float scale = ew_dropout_scale(p);
    SG_CHECK(n >= 0, "dropout: negative element count %lld", (long long)n);
    if (n == 0) return;
    SG_CHECK(out && mask && inp, "dropout apply: NULL out/mask/inp");
    int64_t n4 = ew_aligned4(mask) ? ew_n4(n, out, inp, NULL) : 0;
    ew_dropout_apply_kernel<<<ew_grid(s, n4 + (n - 4 * n4)), EW_THREADS, 0, s->stream>>>(
        out, mask, inp, n, n4, scale);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void dropout_forward_cuda(struct sg_ctx *c, float *out, uint8_t *mask, const float *inp,
                                     int64_t n, float p, struct sg_rng *rng)
{
    struct sg_cuda *s = sg_cuda_get(c);
    float scale = ew_dropout_scale(p); /* range check before drawing */
    SG_CHECK(n >= 0, "dropout: negative element count %lld", (long long)n);
    if (p == 0.0f || p == 1.0f) { /* constant mask, no draw (as the CPU) */
        if (n == 0) return;
        SG_CHECK(mask, "dropout forward: NULL mask");
        CUDA_CHECK(cudaMemsetAsync(mask, p == 0.0f, (size_t)n, s->stream));
        dropout_apply_cuda(c, out, mask, inp, n, p);
        return;
    }
    SG_CHECK(rng, "dropout forward: NULL rng");
    uint64_t seed = sg_rng_u64(rng); /* the call's one draw, also when n == 0 */
    if (n == 0) return;
    SG_CHECK(out && mask && inp, "dropout forward: NULL out/mask/inp");
    uint32_t thresh = (uint32_t)ceilf((1.0f - p) * 16777216.0f);
    int64_t n4 = ew_aligned4(mask) ? ew_n4(n, out, inp, NULL) : 0;
    ew_dropout_fwd_kernel<<<ew_grid(s, n4 + (n - 4 * n4)), EW_THREADS, 0, s->stream>>>(
        out, mask, inp, n, n4, seed, thresh, scale);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void dropout_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout,
                                      const uint8_t *mask, int64_t n, float p)
{
    dropout_apply_cuda(c, dinp, mask, dout, n, p);
}
