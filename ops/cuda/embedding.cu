/*
 * ops/cuda/embedding.cu — token embedding lookup on the GPU (ops/embedding.h).
 * PyTorch: F.embedding(ids, table) and its dense (sparse=False) backward.
 *
 *   forward:  out(N,C)[n,:] = table(V,C)[ids[n],:]
 *   backward: dtable(V,C)[ids[n],:] += dout(N,C)[n,:]   (ACCUMULATE; dtable NULL = skip)
 * ids are device int32; an id outside [0, V) is a programmer error: a device-side assert (the
 * kernel prints the position and value and aborts; the next CUDA call reports "device-side
 * assert triggered"). The CPU path checks on the host instead.
 *
 * Forward: one block per token row (block-stride), float4 copies when C % 4 == 0 and aligned.
 *
 * Backward without atomics (deterministic, bit-identical run to run). CLIP's padding id 0 fills
 * most of each 77-token sequence, so per-id work is very unbalanced; the scatter is made a
 * segmented sum over the tokens grouped by id:
 *  1. stable radix sort of (id, n) pairs (CUB): skey(N) ascending ids, sval(N) token indices, n
 *     ascending within an id;
 *  2. the sorted positions are cut into tiles of EMB_TILE; one thread per (tile, column) walks
 *     the tile's runs of equal ids in order. A run whose id segment lies inside the tile is added
 *     straight into dtable (dtable + d[n1] + d[n2] + ..., the CPU's order: bit-identical to it);
 *     a segment that crosses tile boundaries leaves its per-tile partial sums: P[t] for the
 *     tile's first run (segment began earlier), Q[t] for its last run (segment continues);
 *  3. the tile where such a segment starts owns it: dtable[id] = dtable + Q[t0] + P[t0+1] + ...
 *     + P[t_end] (the end found by binary search in the sorted ids), in tile order.
 * Every dtable element is written by one thread, in an order fixed by ids alone. For segments
 * cut by tiles the rounding differs from the CPU's sequential sum (~1e-7 relative per add).
 * Cost at CLIP's text sizes (N = 256*77, C = 512, V = 49408): a radix sort of 20k keys on
 * ceil(log2 V) = 16 bits, one read of dout, and the hot id's ~16k tokens spread over ~300 tiles
 * (then ~300 partials per column in pass 3).
 */
#include <cub/device/device_radix_sort.cuh>

#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/embedding.h"
}

/* Device-side assertion that stays on under NDEBUG: CUDA declares __assert_fail (what assert()
 * calls) for the device pass only, glibc only without NDEBUG; declare it for the host pass. */
#ifndef __CUDA_ARCH__
extern "C" void __assert_fail(const char *, const char *, unsigned int, const char *) __THROW;
#endif

/* ---- kernels ------------------------------------------------------------------------------ */

#define EMB_FWD_THREADS 128
#define EMB_TILE        64          /* sorted positions per tile */
#define EMB_COLS        128         /* columns per block (one thread each) in the backward passes */
#define EMB_NONE        0xffffffffu /* "no neighbour key" (valid keys are < V <= INT32_MAX) */

/* Aborts the kernel (device-side assert, also under NDEBUG) for an id outside [0, V). */
__device__ __noinline__ void emb_bad_id(int64_t pos, int64_t id, int V, const char *what)
{
    printf("embedding %s (CUDA): id %lld at position %lld is outside [0, V=%d)\n", what,
           (long long)id, (long long)pos, V);
    __assert_fail("embedding: id outside [0, V)", __FILE__, __LINE__, __func__);
}

/* out (N,C) = table rows ids (N); vec: C % 4 == 0 and both pointers 16-byte aligned. */
__global__ void emb_fwd_kernel(float *__restrict__ out, const int32_t *__restrict__ ids,
                               const float *__restrict__ table, int N, int V, int C, int vec)
{
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        int id = ids[n];
        if (id < 0 || id >= V) emb_bad_id(n, id, V, "forward");
        const float *src = table + (int64_t)id * C;
        float *dst = out + n * C;
        if (vec) {
            for (int j = threadIdx.x; j < C / 4; j += blockDim.x)
                reinterpret_cast<float4 *>(dst)[j] = reinterpret_cast<const float4 *>(src)[j];
        } else {
            for (int j = threadIdx.x; j < C; j += blockDim.x) dst[j] = src[j];
        }
    }
}

/* val[i] = i (the sort's payload: token indices). */
__global__ void emb_iota_kernel(int32_t *val, int N)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < N; i += gridDim.x * blockDim.x)
        val[i] = i;
}

/* Step 2 of the backward. Grid (ntile, ceil(C / EMB_COLS)), block EMB_COLS; P, Q (ntile, C). */
__global__ void emb_bwd_tile_kernel(float *__restrict__ dtable, float *__restrict__ P,
                                    float *__restrict__ Q, const float *__restrict__ dout,
                                    const uint32_t *__restrict__ skey,
                                    const int32_t *__restrict__ sval, int N, int V, int C)
{
    __shared__ uint32_t k[EMB_TILE];
    __shared__ int32_t v[EMB_TILE];
    int64_t t = blockIdx.x;
    int a = (int)(t * EMB_TILE), len = min(N - a, EMB_TILE);
    for (int i = threadIdx.x; i < len; i += blockDim.x) {
        k[i] = skey[a + i];
        v[i] = sval[a + i];
        if (k[i] >= (uint32_t)V) emb_bad_id(sval[a + i], (int32_t)k[i], V, "backward");
    }
    uint32_t prev = a > 0 ? skey[a - 1] : EMB_NONE;
    uint32_t next = a + len < N ? skey[a + len] : EMB_NONE;
    __syncthreads();
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int rs = 0; rs < len;) {
        uint32_t key = k[rs];
        int re = rs + 1;
        while (re < len && k[re] == key) re++;
        bool starts = rs > 0 || key != prev; /* the id's segment begins in this tile */
        bool ends = re < len || key != next; /* ... and ends in it */
        float *dst = dtable + (int64_t)key * C + c;
        float acc = starts && ends ? *dst : 0.0f;
        for (int j = rs; j < re; j++) acc += dout[(int64_t)v[j] * C + c];
        if (starts && ends) *dst = acc;
        if (!starts) P[t * C + c] = acc;
        if (!ends) Q[t * C + c] = acc;
        rs = re;
    }
}

/* Step 3: the tile where a multi-tile segment starts adds its partials in tile order. */
__global__ void emb_bwd_merge_kernel(float *__restrict__ dtable, const float *__restrict__ P,
                                     const float *__restrict__ Q, const uint32_t *__restrict__ skey,
                                     int N, int C)
{
    int64_t t0 = blockIdx.x;
    int a = (int)(t0 * EMB_TILE), b = min(N, a + EMB_TILE);
    if (b >= N) return;
    uint32_t key = skey[b - 1];
    if (skey[b] != key) return;                                /* last run ends here */
    if (a > 0 && skey[a] == key && skey[a - 1] == key) return; /* began in an earlier tile */
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int lo = b, hi = N; /* first position after the segment: skey[e] > key (sorted) */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (skey[mid] <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    int64_t t_end = (lo - 1) / EMB_TILE;
    float *dst = dtable + (int64_t)key * C + c;
    float acc = *dst + Q[t0 * C + c];
    for (int64_t t = t0 + 1; t <= t_end; t++) acc += P[t * C + c];
    *dst = acc;
}

/* ---- launchers ---------------------------------------------------------------------------- */

static void emb_check(int N, int V, int C)
{
    SG_CHECK(N >= 0 && V > 0 && C > 0, "embedding: bad dims N=%d V=%d C=%d", N, V, C);
}

static size_t emb_align(size_t bytes)
{
    return (bytes + 255) / 256 * 256;
}

extern "C" void embedding_forward_cuda(struct sg_ctx *c, float *out, const int32_t *ids,
                                       const float *table, int N, int V, int C)
{
    struct sg_cuda *s = sg_cuda_get(c);
    emb_check(N, V, C);
    if (N == 0) return;
    SG_CHECK(out && ids && table, "embedding forward: NULL out/ids/table");
    int vec = C % 4 == 0 && ((uintptr_t)out & 15) == 0 && ((uintptr_t)table & 15) == 0;
    int grid = (int)SG_MIN((int64_t)N, (int64_t)s->num_sms * 64);
    emb_fwd_kernel<<<grid, EMB_FWD_THREADS, 0, s->stream>>>(out, ids, table, N, V, C, vec);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void embedding_backward_cuda(struct sg_ctx *c, float *dtable, const float *dout,
                                        const int32_t *ids, int N, int V, int C)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (!dtable) return;
    emb_check(N, V, C);
    if (N == 0) return;
    SG_CHECK(dout && ids, "embedding backward: NULL dout/ids");
    int bits = 1; /* sort on the bits an id < V can have; bad ids are caught in the tile pass */
    while (bits < 32 && ((uint64_t)1 << bits) < (uint64_t)V) bits++;
    int64_t ntile = CEIL_DIV((int64_t)N, (int64_t)EMB_TILE);
    const uint32_t *keys_in = reinterpret_cast<const uint32_t *>(ids);
    size_t cub_bytes = 0;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, cub_bytes, keys_in, (uint32_t *)nullptr,
                                               (const int32_t *)nullptr, (int32_t *)nullptr, N, 0,
                                               bits, s->stream));
    /* scratch: vin (N) | skey (N) | sval (N) | P (ntile,C) | Q (ntile,C) | CUB temp */
    size_t nb = emb_align(sizeof(int32_t) * (size_t)N);
    size_t pb = emb_align(sizeof(float) * (size_t)ntile * (size_t)C);
    char *base = (char *)sg_cuda_scratch(c, 3 * nb + 2 * pb + cub_bytes);
    int32_t *vin = (int32_t *)base;
    uint32_t *skey = (uint32_t *)(base + nb);
    int32_t *sval = (int32_t *)(base + 2 * nb);
    float *P = (float *)(base + 3 * nb), *Q = (float *)(base + 3 * nb + pb);
    void *tmp = base + 3 * nb + 2 * pb;

    emb_iota_kernel<<<(int)SG_MIN(CEIL_DIV((int64_t)N, 256), (int64_t)s->num_sms * 8), 256, 0,
                      s->stream>>>(vin, N);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp, cub_bytes, keys_in, skey, vin, sval, N, 0, bits,
                                               s->stream));
    SG_CHECK(ntile <= INT32_MAX && CEIL_DIV(C, EMB_COLS) <= 65535, "embedding: shape too large");
    dim3 grid((unsigned)ntile, (unsigned)CEIL_DIV(C, EMB_COLS));
    emb_bwd_tile_kernel<<<grid, EMB_COLS, 0, s->stream>>>(dtable, P, Q, dout, skey, sval, N, V, C);
    CUDA_CHECK(cudaGetLastError());
    emb_bwd_merge_kernel<<<grid, EMB_COLS, 0, s->stream>>>(dtable, P, Q, skey, N, C);
    CUDA_CHECK(cudaGetLastError());
}
