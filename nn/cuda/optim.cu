/*
 * nn/cuda/optim.cu — the optimizer step on the GPU (sg_optim_step on a CUDA context; the
 * semantics, formulas and torch references are in nn/optim.h and nn/optim.c):
 *
 *   AdamW:  g = grad*gs; m = fmaf(g, 1-b1, m*b1); v = fmaf((1-b2)*g, g, v*b2)
 *           p = p*decay + (-lr/bc1 * m) / (sqrt(v)/sqrt(bc2) + eps)       (decay: DECAY params)
 *   SGD:    d = fmaf(p, wd, grad*gs)  (wd: DECAY params); buf = buf*mom + d;
 *           p = fmaf(nesterov ? fmaf(buf, mom, d) : buf, -lr, p)       (mom 0: p = fmaf(d, -lr, p))
 *   LARS:   ndim > 1: d = fmaf(p, wd, grad*gs), q = eta*||p||/||d|| (1 if a norm is 0);
 *           ndim <= 1: d = grad*gs, q = 1.  mu = mu*mom + d*q; p = fmaf(mu, -lr, p)
 *   norm:   sqrt(sum over trainable params of (float)||grad_p||^2), gs = min(1, max/(norm+1e-6))
 * PyTorch: torch.optim.AdamW / SGD, torch.nn.utils.clip_grad_norm_, moco-v3 LARS.
 *
 * Multi-tensor layout: every trainable tensor is cut into CHUNK-element chunks, one thread block
 * per chunk, all tensors in one launch (a device table of (p, g, m, v, n, flags) plus the tensor
 * index of every block, uploaded once and rebuilt only when the parameter table changes).
 * Per step: grad_sumsq (per-block double partials) -> tensor_sum (per-tensor sums, blocks in
 * order) -> total_norm (one thread, tensors in order) -> one 4-byte copy to the host (which
 * decides skip / clip and builds the scalars) -> [LARS: lars_sumsq -> lars_ratio] -> update.
 * The chunking and block size are constants, so the summation order, hence the bits, are the
 * same on every GPU and every run (no atomics).
 *
 * Arithmetic: the element updates use the _rn intrinsics (__fmul_rn, __fadd_rn, __fdiv_rn,
 * __fsqrt_rn, __fmaf_rn): IEEE single operations that nvcc never contracts into an FMA, so each
 * update is the same sequence of correctly rounded operations as the CPU's (compiled with
 * -ffp-contract=off, explicit fmaf where torch fuses) whatever --fmad says: with equal scalars
 * the results are bit-identical to the CPU. The sums of squares are exact per term (a float
 * squared fits a double) and differ from the CPU's only in the order of the double additions;
 * after rounding the norms to float they almost always agree, else by an ulp.
 */
#include "ops/cuda/common.cuh"

#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/params.h"
#include "nn/optim.h"
}

#define OPT_THREADS 256  /* threads per block (a multiple of 32) */
#define OPT_CHUNK   4096 /* elements per block: 4 float4 per thread */

/* One trainable tensor. p, g, m, v: 16-byte aligned (64-float param offsets). */
struct tdesc {
    float *p, *m, *v;
    const float *g;
    int64_t n;
    int blk0;   /* first block of this tensor */
    int nblk;   /* blocks: ceil(n / OPT_CHUNK) */
    int decay;  /* SG_PARAM_DECAY: AdamW decoupled / SGD coupled weight decay */
    int matrix; /* ndim > 1: LARS decay and trust ratio */
    int temp;   /* SG_PARAM_TEMPERATURE: the lr_tau scalars (decay_t, nstep_t, nlr_t) */
};

enum upd_kind { UPD_ADAMW, UPD_SGD, UPD_NESTEROV, UPD_SGD0, UPD_LARS };

/* ---- reductions in double ---------------------------------------------------------------- */

__device__ __forceinline__ double warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Fixed-order block sum (blockDim.x == OPT_THREADS); the result is valid in thread 0. */
__device__ __forceinline__ double block_sum_d(double v, double *shared)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum_d(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = 0.0;
    if (warp == 0) {
        v = lane < OPT_THREADS / 32 ? shared[lane] : 0.0;
        v = warp_sum_d(v);
    }
    return v;
}

__device__ __forceinline__ double sq(float x)
{
    return (double)x * (double)x; /* exact: contraction cannot change it */
}

/* ---- element updates (one per kind; a: AdamW decay or SGD/LARS wd, q: LARS ratio) ---------- */

__device__ __forceinline__ void adamw_el(float &p, float g, float &m, float &v,
                                         const sg_optim_coef &k, float decay)
{
    float gi = __fmul_rn(g, k.gs);
    float mi = __fmaf_rn(gi, k.a1, __fmul_rn(m, k.b1));
    float vi = __fmaf_rn(__fmul_rn(k.a2, gi), gi, __fmul_rn(v, k.b2));
    float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2s), k.eps);
    m = mi;
    v = vi;
    p = __fadd_rn(__fmul_rn(p, decay), __fdiv_rn(__fmul_rn(k.nstep, mi), den));
}

template <int KIND>
__device__ __forceinline__ void update_el(float &p, float g, float &m, float &v,
                                          const sg_optim_coef &k, float a, float q)
{
    if (KIND == UPD_ADAMW) {
        adamw_el(p, g, m, v, k, a);
    } else if (KIND == UPD_SGD0) {
        p = __fmaf_rn(__fmaf_rn(p, a, __fmul_rn(g, k.gs)), k.nlr, p);
    } else if (KIND == UPD_SGD) {
        float b = __fadd_rn(__fmul_rn(m, k.mom), __fmaf_rn(p, a, __fmul_rn(g, k.gs)));
        m = b;
        p = __fmaf_rn(b, k.nlr, p);
    } else if (KIND == UPD_NESTEROV) {
        float d = __fmaf_rn(p, a, __fmul_rn(g, k.gs));
        float b = __fadd_rn(__fmul_rn(m, k.mom), d);
        m = b;
        p = __fmaf_rn(__fmaf_rn(b, k.mom, d), k.nlr, p);
    } else { /* UPD_LARS */
        float d = __fmul_rn(__fmaf_rn(p, a, __fmul_rn(g, k.gs)), q);
        float b = __fadd_rn(__fmul_rn(m, k.mom), d);
        m = b;
        p = __fmaf_rn(b, k.nlr, p);
    }
}

/* ---- kernels (grid: one block per chunk, or per tensor) ---------------------------------- */

/* Chunk of block b: tensor t, element range [lo, lo + len). */
__device__ __forceinline__ int64_t chunk_of(const tdesc &t, int b, int *len)
{
    int64_t lo = (int64_t)(b - t.blk0) * OPT_CHUNK;
    *len = (int)min((int64_t)OPT_CHUNK, t.n - lo);
    return lo;
}

/* part[b] = sum of grad^2 over block b's chunk. */
__global__ void __launch_bounds__(OPT_THREADS)
    grad_sumsq_kernel(const tdesc *__restrict__ tab, const int *__restrict__ blk,
                      double *__restrict__ part)
{
    __shared__ double sh[OPT_THREADS / 32];
    const tdesc t = tab[blk[blockIdx.x]];
    int len;
    int64_t lo = chunk_of(t, blockIdx.x, &len);
    const float *g = t.g + lo;
    const float4 *g4 = reinterpret_cast<const float4 *>(g);
    int nv = len >> 2;
    double s = 0.0;
    for (int i = threadIdx.x; i < nv; i += OPT_THREADS) {
        float4 x = g4[i];
        s += sq(x.x) + sq(x.y) + sq(x.z) + sq(x.w);
    }
    for (int i = 4 * nv + threadIdx.x; i < len; i += OPT_THREADS) s += sq(g[i]);
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* LARS, matrix tensors only: part[b] = sum p^2, part[nblock + b] = sum d^2,
 * d = fmaf(p, wd, g*gs) as in the update. */
__global__ void __launch_bounds__(OPT_THREADS)
    lars_sumsq_kernel(const tdesc *__restrict__ tab, const int *__restrict__ blk,
                      double *__restrict__ part, int nblock, float gs, float wd)
{
    __shared__ double sh[OPT_THREADS / 32];
    const tdesc t = tab[blk[blockIdx.x]];
    if (!t.matrix) return; /* whole block: ratio 1, partials unused */
    int len;
    int64_t lo = chunk_of(t, blockIdx.x, &len);
    const float *p = t.p + lo, *g = t.g + lo;
    const float4 *p4 = reinterpret_cast<const float4 *>(p);
    const float4 *g4 = reinterpret_cast<const float4 *>(g);
    int nv = len >> 2;
    double sp = 0.0, sd = 0.0;
    for (int i = threadIdx.x; i < nv; i += OPT_THREADS) {
        float4 x = p4[i], y = g4[i];
        sp += sq(x.x) + sq(x.y) + sq(x.z) + sq(x.w);
        sd += sq(__fmaf_rn(x.x, wd, __fmul_rn(y.x, gs))) +
              sq(__fmaf_rn(x.y, wd, __fmul_rn(y.y, gs))) +
              sq(__fmaf_rn(x.z, wd, __fmul_rn(y.z, gs))) +
              sq(__fmaf_rn(x.w, wd, __fmul_rn(y.w, gs)));
    }
    for (int i = 4 * nv + threadIdx.x; i < len; i += OPT_THREADS) {
        sp += sq(p[i]);
        sd += sq(__fmaf_rn(p[i], wd, __fmul_rn(g[i], gs)));
    }
    sp = block_sum_d(sp, sh);
    __syncthreads(); /* sh is reused */
    sd = block_sum_d(sd, sh);
    if (threadIdx.x == 0) {
        part[blockIdx.x] = sp;
        part[nblock + blockIdx.x] = sd;
    }
}

/* One block per tensor: sum[t] = its block partials added in block order (strided per thread,
 * then the fixed block tree). */
__global__ void __launch_bounds__(OPT_THREADS)
    tensor_sum_kernel(const tdesc *__restrict__ tab, const double *__restrict__ part,
                      double *__restrict__ sum)
{
    __shared__ double sh[OPT_THREADS / 32];
    const tdesc t = tab[blockIdx.x];
    double s = 0.0;
    for (int i = threadIdx.x; i < t.nblk; i += OPT_THREADS) s += part[t.blk0 + i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) sum[blockIdx.x] = s;
}

/* One thread: norm = sqrt(sum_t (float)sqrt(sum[t])^2), tensors in order (as the CPU). */
__global__ void total_norm_kernel(const double *__restrict__ sum, int ntensor,
                                  float *__restrict__ norm)
{
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double total = 0.0;
    for (int t = 0; t < ntensor; t++) {
        float pn = (float)sqrt(sum[t]);
        total = __dadd_rn(total, __dmul_rn((double)pn, (double)pn));
    }
    *norm = (float)sqrt(total);
}

/* One block per tensor: q[t] = eta*||p||/||d|| (1 when a norm is 0 or ndim <= 1), the CPU's
 * lars_ratio on float norms. */
__global__ void __launch_bounds__(OPT_THREADS)
    lars_ratio_kernel(const tdesc *__restrict__ tab, const double *__restrict__ part, int nblock,
                      float trust, float *__restrict__ q)
{
    __shared__ double sh[OPT_THREADS / 32];
    const tdesc t = tab[blockIdx.x];
    if (!t.matrix) {
        if (threadIdx.x == 0) q[blockIdx.x] = 1.0f;
        return;
    }
    double sp = 0.0, sd = 0.0;
    for (int i = threadIdx.x; i < t.nblk; i += OPT_THREADS) {
        sp += part[t.blk0 + i];
        sd += part[nblock + t.blk0 + i];
    }
    sp = block_sum_d(sp, sh);
    __syncthreads();
    sd = block_sum_d(sd, sh);
    if (threadIdx.x == 0) {
        float pn = (float)sqrt(sp), dn = (float)sqrt(sd);
        q[blockIdx.x] = pn > 0.0f && dn > 0.0f ? __fdiv_rn(__fmul_rn(trust, pn), dn) : 1.0f;
    }
}

/* The update of block b's chunk; float4 body, scalar tail (last chunk of a tensor only). */
template <int KIND>
__global__ void __launch_bounds__(OPT_THREADS)
    update_kernel(const tdesc *__restrict__ tab, const int *__restrict__ blk, sg_optim_coef k,
                  const float *__restrict__ qs)
{
    const bool use_m = KIND != UPD_SGD0, use_v = KIND == UPD_ADAMW;
    int ti = blk[blockIdx.x];
    const tdesc t = tab[ti];
    float a, q = 1.0f;
    if (t.temp) { /* the temperature group: its own learning rate (nn/optim.h) */
        k.decay = k.decay_t;
        k.nstep = k.nstep_t;
        k.nlr = k.nlr_t;
    }
    if (KIND == UPD_ADAMW) {
        a = t.decay ? k.decay : 1.0f;
    } else if (KIND == UPD_LARS) {
        a = t.matrix ? k.wd : 0.0f;
        q = qs[ti];
    } else {
        a = t.decay ? k.wd : 0.0f;
    }
    int len;
    int64_t lo = chunk_of(t, blockIdx.x, &len);
    float *p = t.p + lo, *m = t.m + lo, *v = t.v + lo;
    const float *g = t.g + lo;
    float4 *p4 = reinterpret_cast<float4 *>(p), *m4 = reinterpret_cast<float4 *>(m);
    float4 *v4 = reinterpret_cast<float4 *>(v);
    const float4 *g4 = reinterpret_cast<const float4 *>(g);
    int nv = len >> 2;
    for (int i = threadIdx.x; i < nv; i += OPT_THREADS) {
        float4 P = p4[i], G = g4[i], M = make_float4(0.f, 0.f, 0.f, 0.f), V = M;
        if (use_m) M = m4[i];
        if (use_v) V = v4[i];
        update_el<KIND>(P.x, G.x, M.x, V.x, k, a, q);
        update_el<KIND>(P.y, G.y, M.y, V.y, k, a, q);
        update_el<KIND>(P.z, G.z, M.z, V.z, k, a, q);
        update_el<KIND>(P.w, G.w, M.w, V.w, k, a, q);
        p4[i] = P;
        if (use_m) m4[i] = M;
        if (use_v) v4[i] = V;
    }
    for (int i = 4 * nv + threadIdx.x; i < len; i += OPT_THREADS) {
        float P = p[i], M = use_m ? m[i] : 0.0f, V = use_v ? v[i] : 0.0f;
        update_el<KIND>(P, g[i], M, V, k, a, q);
        p[i] = P;
        if (use_m) m[i] = M;
        if (use_v) v[i] = V;
    }
}

/* ---- device table (o->cuda) -------------------------------------------------------------- */

struct optim_cuda {
    struct sg_ctx *ctx; /* the table's context: owns `mem` */
    /* What the table was built from (rebuilt when any of these changes). */
    const struct sg_params *ps;
    const float *data, *grad, *m, *v;
    int nparams;
    size_t total;
    int ntensor, nblock;
    void *mem;    /* one device allocation holding the arrays below */
    tdesc *tab;   /* (ntensor) */
    int *blk;     /* (nblock) tensor index of each block */
    double *part; /* (2, nblock) per-block partial sums */
    double *sum;  /* (ntensor) per-tensor grad sums of squares */
    float *q;     /* (ntensor) LARS trust ratios */
    float *norm;  /* (1) global grad norm */
};

static size_t align256(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

static int aligned16(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

static void state_free(struct optim_cuda *s)
{
    if (!s) return;
    sg_dev_free(s->ctx, s->mem); /* cudaFree: waits for queued work */
    free(s);
}

static int state_matches(const struct optim_cuda *s, const struct sg_params *ps)
{
    return s->ps == ps && s->data == ps->data && s->grad == ps->grad && s->m == ps->m &&
           s->v == ps->v && s->nparams == ps->n && s->total == ps->total;
}

/* Host table of ps's trainable tensors -> one device allocation. */
static struct optim_cuda *state_build(struct sg_params *ps)
{
    struct optim_cuda *s = (struct optim_cuda *)sg_xcalloc(1, sizeof *s);
    s->ctx = ps->ctx;
    s->ps = ps;
    s->data = ps->data, s->grad = ps->grad, s->m = ps->m, s->v = ps->v;
    s->nparams = ps->n;
    s->total = ps->total;
    tdesc *tab = (tdesc *)sg_xcalloc((size_t)SG_MAX(ps->n, 1), sizeof *tab);
    int64_t nblock = 0;
    for (int i = 0; i < ps->n; i++) {
        struct sg_param *p = ps->items[i];
        if (p->flags & SG_PARAM_BUFFER) continue;
        tdesc d;
        d.p = p->data, d.g = p->grad, d.m = ps->m + p->offset, d.v = ps->v + p->offset;
        d.n = p->numel;
        d.blk0 = (int)nblock;
        d.nblk = (int)CEIL_DIV(p->numel, (int64_t)OPT_CHUNK);
        d.decay = (p->flags & SG_PARAM_DECAY) != 0;
        d.matrix = p->ndim > 1;
        d.temp = (p->flags & SG_PARAM_TEMPERATURE) != 0;
        SG_CHECK(aligned16(d.p) && aligned16(d.g) && aligned16(d.m) && aligned16(d.v),
                 "optimizer: param '%s' is not 16-byte aligned on the device", p->name);
        nblock += d.nblk;
        SG_CHECK(nblock < INT32_MAX, "optimizer: too many blocks (%lld)", (long long)nblock);
        tab[s->ntensor++] = d;
    }
    s->nblock = (int)nblock;
    int *blk = (int *)sg_xmalloc(sizeof(int) * (size_t)SG_MAX(nblock, 1));
    for (int t = 0; t < s->ntensor; t++)
        for (int b = 0; b < tab[t].nblk; b++) blk[tab[t].blk0 + b] = t;
    size_t nt = (size_t)SG_MAX(s->ntensor, 1), nb = (size_t)SG_MAX(nblock, 1);
    size_t o_tab = 0, o_blk = align256(o_tab + nt * sizeof(tdesc));
    size_t o_part = align256(o_blk + nb * sizeof(int));
    size_t o_sum = align256(o_part + 2 * nb * sizeof(double));
    size_t o_q = align256(o_sum + nt * sizeof(double));
    size_t o_norm = align256(o_q + nt * sizeof(float));
    size_t bytes = align256(o_norm + sizeof(float));
    char *mem = (char *)sg_dev_alloc(ps->ctx, bytes);
    s->mem = mem;
    s->tab = (tdesc *)(mem + o_tab);
    s->blk = (int *)(mem + o_blk);
    s->part = (double *)(mem + o_part);
    s->sum = (double *)(mem + o_sum);
    s->q = (float *)(mem + o_q);
    s->norm = (float *)(mem + o_norm);
    sg_memcpy_h2d(ps->ctx, s->tab, tab, (size_t)s->ntensor * sizeof(tdesc)); /* staged: */
    sg_memcpy_h2d(ps->ctx, s->blk, blk, (size_t)nblock * sizeof(int));       /* may free */
    free(tab);
    free(blk);
    return s;
}

static struct optim_cuda *state_get(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c)
{
    SG_CHECK(ps->ctx && ps->ctx->dev == SG_DEVICE_CUDA && c->dev == SG_DEVICE_CUDA,
             "optimizer: CUDA step needs the parameter table and the context on CUDA");
    struct optim_cuda *s = (struct optim_cuda *)o->cuda;
    if (s && state_matches(s, ps)) return s;
    state_free(s);
    o->cuda = s = state_build(ps);
    return s;
}

/* ---- entry points (nn/optim.h) ----------------------------------------------------------- */

extern "C" float sg_optim_grad_norm_cuda(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c)
{
    cudaStream_t st = sg_cuda_get(c)->stream;
    struct optim_cuda *s = state_get(o, ps, c);
    if (s->ntensor == 0) return 0.0f;
    if (s->nblock > 0) {
        grad_sumsq_kernel<<<s->nblock, OPT_THREADS, 0, st>>>(s->tab, s->blk, s->part);
        CUDA_CHECK(cudaGetLastError());
    }
    tensor_sum_kernel<<<s->ntensor, OPT_THREADS, 0, st>>>(s->tab, s->part, s->sum);
    CUDA_CHECK(cudaGetLastError());
    total_norm_kernel<<<1, 32, 0, st>>>(s->sum, s->ntensor, s->norm);
    CUDA_CHECK(cudaGetLastError());
    float norm = 0.0f;
    sg_memcpy_d2h(c, &norm, s->norm, sizeof norm); /* synchronises: the host needs the norm */
    return norm;
}

template <int KIND>
static void launch_update(cudaStream_t st, const struct optim_cuda *s,
                          const struct sg_optim_coef *k)
{
    update_kernel<KIND><<<s->nblock, OPT_THREADS, 0, st>>>(s->tab, s->blk, *k, s->q);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void sg_optim_update_cuda(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c,
                                     const struct sg_optim_coef *k)
{
    cudaStream_t st = sg_cuda_get(c)->stream;
    struct optim_cuda *s = state_get(o, ps, c);
    if (s->ntensor == 0 || s->nblock == 0) return;
    switch (o->cfg.kind) {
    case SG_OPT_ADAMW:
        launch_update<UPD_ADAMW>(st, s, k);
        break;
    case SG_OPT_SGD:
        if (k->mom == 0.0f)
            launch_update<UPD_SGD0>(st, s, k);
        else if (k->nesterov)
            launch_update<UPD_NESTEROV>(st, s, k);
        else
            launch_update<UPD_SGD>(st, s, k);
        break;
    case SG_OPT_LARS:
        lars_sumsq_kernel<<<s->nblock, OPT_THREADS, 0, st>>>(s->tab, s->blk, s->part, s->nblock,
                                                             k->gs, k->wd);
        CUDA_CHECK(cudaGetLastError());
        lars_ratio_kernel<<<s->ntensor, OPT_THREADS, 0, st>>>(s->tab, s->part, s->nblock, k->trust,
                                                              s->q);
        CUDA_CHECK(cudaGetLastError());
        launch_update<UPD_LARS>(st, s, k);
        break;
    }
}

extern "C" void sg_optim_free_cuda(struct sg_optim *o)
{
    state_free((struct optim_cuda *)o->cuda);
    o->cuda = NULL;
}
