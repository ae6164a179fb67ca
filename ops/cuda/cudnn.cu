/*
 * ops/cuda/cudnn.cu — the file that owns cuDNN: conv2d forward/backward through cuDNN 9's legacy
 * convolution API (ops/conv.h), and BatchNorm2d forward/backward with own deterministic kernels
 * (ops/norm.h). NCHW float tensors in memory throughout.
 *
 * Convolution (PyTorch: torch.nn.functional.conv2d(inp, w, b, stride, padding, groups=groups)
 * with torch.backends.cudnn.deterministic = True):
 *   out  = conv(inp, w) + b                      cudnnConvolutionForward, then cudnnAddTensor
 *   dinp = conv_transpose(dout, w)   OVERWRITE   cudnnConvolutionBackwardData,   beta = 0
 *   dw  += corr(inp, dout)           ACCUMULATE  cudnnConvolutionBackwardFilter, beta = 1
 *   db  += sum_{b,oh,ow} dout        ACCUMULATE  own per-channel partial sums + ordered finish
 *   NULL gradients are skipped.
 * One plan per (shape, precision), created on first use and cached in sg_cuda::cudnn (with the
 * handle, created lazily and bound to the context stream): the tensor / filter / convolution
 * descriptors and, per direction, the algorithm, its math type and workspace size.
 *   - Algorithm: cudnnGet*Algorithm_v7 (heuristics; the choice depends only on shape and GPU),
 *     or cudnnFind*Algorithm (timed, as torch.backends.cudnn.benchmark) when
 *     SOGCLIP_CUDNN_BENCHMARK=1 (it synchronises and allocates its own buffers, once per shape).
 *     Of the candidates, in the library's order, the first is taken that succeeds, is
 *     CUDNN_DETERMINISTIC, needs <= 2 GiB of workspace and, for fp32, is not Winograd (which
 *     loses accuracy); failing that the next best, with a warning on stderr (pick_algo).
 *     SOGCLIP_CUDNN_VERBOSE=1 prints each choice.
 *   - Math: SG_PREC_FP32 runs CUDNN_FMA_MATH (plain fp32 FMA, no TF32: matches the CPU to ~1e-5
 *     of rms); SG_PREC_BF16 allows tensor cores (CUDNN_TENSOR_OP_MATH: TF32 operands for
 *     fp32 tensors, fp32 accumulation). Tensors stay fp32 in memory in both.
 *   - Workspace: the context scratch (sg_cuda_scratch), valid until the next op.
 *
 * BatchNorm2d (PyTorch: torch.nn.BatchNorm2d(C, eps, momentum)) on inp(B,C,HW), n = B*HW:
 *   training: mean = sum x / n,  var = sum (x - mean)^2 / n (two passes: no cancellation),
 *             rstd = 1 / sqrt(var + eps)  (finished in double, as the CPU path),
 *             run_mean = (1-momentum) run_mean + momentum mean,
 *             run_var  = (1-momentum) run_var  + momentum var n/(n-1)   (unbiased, as torch)
 *   eval:     mean = run_mean, rstd = 1 / sqrt(run_var + eps)
 *   out = (x - mean) * (rstd * gamma) + beta   (gamma/beta NULL: 1/0); mean/rstd filled if non-NULL
 *   backward: sdy = sum dout, sdyx = rstd * sum dout (x - mean), a = rstd * gamma
 *             dgamma += sdyx, dbeta += sdy                                        (accumulate)
 *             training: dinp = a (dout - sdy/n - xhat sdyx/n), xhat = (x - mean) rstd
 *             eval:     dinp = a dout                                              (overwrite)
 * Per-channel sums are deterministic: the n values of a channel are cut into chunks by a rule of
 * the shape alone (red_split), one 256-thread block per (channel, chunk) sums its chunk with a
 * fixed thread walk and tree, and a per-channel pass adds the chunk sums in order (in double).
 * No atomics; reruns are bit-identical. The per-element pass (bn_apply) uses float4 when HW is a
 * multiple of 4 and the pointers are 16-byte aligned. out may alias inp, dinp may alias dout.
 */
#include "ops/cuda/common.cuh"

#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

extern "C" {
#include "ops/conv.h"
#include "ops/norm.h"
}

#define CUDNN_CHECK(call)                                                                          \
    do {                                                                                           \
        cudnnStatus_t sg_st_ = (call);                                                             \
        if (sg_st_ != CUDNN_STATUS_SUCCESS)                                                        \
            sg_cuda_fail("cuDNN", #call, cudnnGetErrorString(sg_st_), __func__, __FILE__,          \
                         __LINE__);                                                                \
    } while (0)

#define RED_THREADS    256   /* threads of a per-channel partial-sum block */
#define RED_CHUNK      16384 /* target values of one channel per block */
#define RED_MAX_SPLITS 1024  /* chunks per channel at most (bounds the ordered finish) */
#define APPLY_THREADS  256

/* ---- kernels: per-channel sums ------------------------------------------------------------ */

/* What chan_partial_kernel sums per channel c over the values x of (B, C, HW). */
enum red_mode {
    RED_SUM = 0,   /* sum x                                (1 output) */
    RED_SQDEV = 1, /* sum (x - mean[c])^2                  (1 output) */
    RED_DSUMS = 2, /* sum dy, sum dy * (x - mean[c])       (2 outputs) */
};

/* Block (c, k) sums the values j in [k*len, min(n, (k+1)*len)) of channel c, j = b*HW + i, and
 * writes partial[(k*NV + v)*C + c] (NV = 2 for RED_DSUMS, else 1). Each thread walks
 * j = j0 + tid, j0 + tid + 256, ... keeping (b, i) incrementally (no division per element); the
 * 256 consecutive j of one step are contiguous within a channel row, so loads coalesce. */
template <int MODE>
__global__ void chan_partial_kernel(float *__restrict__ partial, const float *__restrict__ x,
                                    const float *__restrict__ dy, const float *__restrict__ mean,
                                    int C, int HW, int64_t n, int64_t len)
{
    __shared__ float sh[32];
    const int NV = MODE == RED_DSUMS ? 2 : 1;
    int c = blockIdx.x, k = blockIdx.y;
    int64_t j = (int64_t)k * len + threadIdx.x, j1 = min(n, (int64_t)(k + 1) * len);
    float m = MODE == RED_SUM ? 0.0f : mean[c];
    float a0 = 0.0f, a1 = 0.0f;
    if (j < j1) {
        int64_t b = j / HW;
        int i = (int)(j - b * HW);
        const int step_b = (int)blockDim.x / HW, step_i = (int)blockDim.x % HW;
        for (; j < j1; j += blockDim.x) {
            int64_t idx = (b * C + c) * HW + i;
            if (MODE == RED_SUM) {
                a0 += x[idx];
            } else if (MODE == RED_SQDEV) {
                float d = x[idx] - m;
                a0 += d * d;
            } else {
                float g = dy[idx];
                a0 += g;
                a1 += g * (x[idx] - m);
            }
            b += step_b;
            i += step_i;
            if (i >= HW) {
                i -= HW;
                b++;
            }
        }
    }
    a0 = block_sum(a0, sh);
    if (NV == 2) a1 = block_sum(a1, sh);
    if (threadIdx.x == 0) {
        partial[((int64_t)k * NV) * C + c] = a0;
        if (NV == 2) partial[((int64_t)k * NV + 1) * C + c] = a1;
    }
}

/* mean[c] = (sum_k partial[k*C + c]) / n, chunks added in order in double. */
__global__ void chan_mean_kernel(float *mean, const float *__restrict__ partial, int nsplit, int C,
                                 int64_t n)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double acc = 0.0;
    for (int k = 0; k < nsplit; k++) acc += partial[(int64_t)k * C + c];
    mean[c] = (float)(acc / (double)n);
}

/* ---- kernels: batchnorm ------------------------------------------------------------------- */

/* coef(4,C) rows: p, q, m, k of  y = u*p + (v - m)*q + k  (bn_apply). */

/* Forward statistics and coefficients (one thread per channel). Training: bmean(C) from
 * chan_mean_kernel, sq(nsplit,C) the chunk sums of (x - bmean)^2. Eval: the running stats. */
__global__ void bn_forward_coef_kernel(float *coef, float *mean, float *rstd, float *run_mean,
                                       float *run_var, const float *__restrict__ bmean,
                                       const float *__restrict__ sq,
                                       const float *__restrict__ gamma,
                                       const float *__restrict__ beta, int nsplit, int C, int64_t n,
                                       float momentum, float eps, int training)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double m, v;
    if (training) {
        double acc = 0.0;
        for (int k = 0; k < nsplit; k++) acc += sq[(int64_t)k * C + c];
        m = bmean[c];
        v = acc / (double)n;
        if (run_mean) run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * m);
        if (run_var)
            run_var[c] =
                (float)((1.0 - momentum) * run_var[c] + momentum * v * (double)n / (double)(n - 1));
    } else {
        m = run_mean[c];
        v = run_var[c];
    }
    double r = 1.0 / sqrt(v + (double)eps);
    coef[c] = 0.0f;
    coef[C + c] = (float)(r * (gamma ? (double)gamma[c] : 1.0));
    coef[2 * C + c] = (float)m;
    coef[3 * C + c] = beta ? beta[c] : 0.0f;
    if (mean) mean[c] = (float)m;
    if (rstd) rstd[c] = (float)r;
}

/* Backward coefficients and dgamma/dbeta (one thread per channel). ds(nsplit,2,C): chunk sums of
 * dout and dout*(x - mean), or NULL when no sums were needed (eval without parameter grads). */
__global__ void
bn_backward_coef_kernel(float *coef, float *dgamma, float *dbeta, const float *__restrict__ ds,
                        const float *__restrict__ gamma, const float *__restrict__ mean,
                        const float *__restrict__ rstd, int nsplit, int C, int64_t n, int training)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double r = rstd[c], a = r * (gamma ? (double)gamma[c] : 1.0);
    double sdy = 0.0, s2 = 0.0;
    for (int k = 0; ds && k < nsplit; k++) {
        sdy += ds[(int64_t)(2 * k) * C + c];
        s2 += ds[(int64_t)(2 * k + 1) * C + c];
    }
    double sdyx = s2 * r; /* sum dout * xhat */
    if (dgamma) dgamma[c] += (float)sdyx;
    if (dbeta) dbeta[c] += (float)sdy;
    coef[c] = (float)a;
    coef[C + c] = training ? (float)(-a * r * sdyx / (double)n) : 0.0f;
    coef[2 * C + c] = training ? mean[c] : 0.0f;
    coef[3 * C + c] = training ? (float)(-a * sdy / (double)n) : 0.0f;
}

template <bool HAS_U, bool HAS_V>
__device__ __forceinline__ float bn_val(float u, float v, float p, float q, float m, float k)
{
    if (HAS_U && HAS_V) return u * p + (v - m) * q + k;
    if (HAS_V) return (v - m) * q + k;
    return u * p + k;
}

/* y = u*p[c] + (v - m[c])*q[c] + k[c] over (B,C,HW), c = (e / HW) % C. VEC: float4 units (HW a
 * multiple of 4, so a unit stays inside one channel row; pointers 16-byte aligned). y may alias
 * u or v: every element is read and written by the same thread. Grid-stride loop. */
template <bool HAS_U, bool HAS_V, bool VEC>
__global__ void bn_apply_kernel(float *y, const float *u, const float *v,
                                const float *__restrict__ coef, int C, int HW, int64_t total)
{
    const float *p = coef, *q = coef + C, *m = coef + 2 * C, *k = coef + 3 * C;
    const int W = VEC ? 4 : 1;
    int64_t units = total / W, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < units; t += stride) {
        int64_t e = t * W;
        int c = (int)((e / HW) % C);
        float pc = p[c], qc = q[c], mc = m[c], kc = k[c];
        if (VEC) {
            float4 u4 = HAS_U ? reinterpret_cast<const float4 *>(u)[t] : float4{0, 0, 0, 0};
            float4 v4 = HAS_V ? reinterpret_cast<const float4 *>(v)[t] : float4{0, 0, 0, 0};
            float4 y4;
            y4.x = bn_val<HAS_U, HAS_V>(u4.x, v4.x, pc, qc, mc, kc);
            y4.y = bn_val<HAS_U, HAS_V>(u4.y, v4.y, pc, qc, mc, kc);
            y4.z = bn_val<HAS_U, HAS_V>(u4.z, v4.z, pc, qc, mc, kc);
            y4.w = bn_val<HAS_U, HAS_V>(u4.w, v4.w, pc, qc, mc, kc);
            reinterpret_cast<float4 *>(y)[t] = y4;
        } else {
            y[e] = bn_val<HAS_U, HAS_V>(HAS_U ? u[e] : 0.0f, HAS_V ? v[e] : 0.0f, pc, qc, mc, kc);
        }
    }
}

/* ---- launchers: per-channel sums and apply ------------------------------------------------ */

/* Chunking of a channel's n values: fixed by n alone, so the summation order (hence the bits)
 * is the same on every GPU and every run. */
struct red_split {
    int nsplit;  /* chunks per channel, <= RED_MAX_SPLITS */
    int64_t len; /* values per chunk (the last may be shorter) */
};

static red_split red_split_for(int64_t n)
{
    int64_t ns =
        SG_MIN(SG_MAX(CEIL_DIV(n, (int64_t)RED_CHUNK), (int64_t)1), (int64_t)RED_MAX_SPLITS);
    return red_split{(int)ns, CEIL_DIV(n, ns)};
}

/* partial(nsplit, NV, C) per red_mode over x (and dy) of (B, C, HW). */
static void chan_partial(struct sg_cuda *s, int mode, float *partial, const float *x,
                         const float *dy, const float *mean, int B, int C, int HW, red_split sp)
{
    int64_t n = (int64_t)B * HW;
    dim3 grid((unsigned)C, (unsigned)sp.nsplit);
    switch (mode) {
    case RED_SUM:
        chan_partial_kernel<RED_SUM>
            <<<grid, RED_THREADS, 0, s->stream>>>(partial, x, dy, mean, C, HW, n, sp.len);
        break;
    case RED_SQDEV:
        chan_partial_kernel<RED_SQDEV>
            <<<grid, RED_THREADS, 0, s->stream>>>(partial, x, dy, mean, C, HW, n, sp.len);
        break;
    default:
        chan_partial_kernel<RED_DSUMS>
            <<<grid, RED_THREADS, 0, s->stream>>>(partial, x, dy, mean, C, HW, n, sp.len);
        break;
    }
    CUDA_CHECK(cudaGetLastError());
}

static int aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

template <bool HAS_U, bool HAS_V>
static void bn_apply_launch(struct sg_cuda *s, float *y, const float *u, const float *v,
                            const float *coef, int C, int HW, int64_t total)
{
    int vec = HW % 4 == 0 && aligned16(y) && (!HAS_U || aligned16(u)) && (!HAS_V || aligned16(v));
    int64_t units = vec ? total / 4 : total;
    int64_t grid = SG_MIN(CEIL_DIV(units, (int64_t)APPLY_THREADS), (int64_t)s->num_sms * 16);
    grid = SG_MAX(grid, (int64_t)1);
    if (vec)
        bn_apply_kernel<HAS_U, HAS_V, true>
            <<<(unsigned)grid, APPLY_THREADS, 0, s->stream>>>(y, u, v, coef, C, HW, total);
    else
        bn_apply_kernel<HAS_U, HAS_V, false>
            <<<(unsigned)grid, APPLY_THREADS, 0, s->stream>>>(y, u, v, coef, C, HW, total);
    CUDA_CHECK(cudaGetLastError());
}

/* ---- batchnorm entry points --------------------------------------------------------------- */

static void bn_check_dims(int B, int C, int HW)
{
    SG_CHECK(B > 0 && C > 0 && HW > 0, "bad batchnorm dims B=%d C=%d HW=%d", B, C, HW);
}

extern "C" void batchnorm2d_forward_cuda(struct sg_ctx *c, float *out, float *mean, float *rstd,
                                         float *run_mean, float *run_var, const float *inp,
                                         const float *gamma, const float *beta, int B, int C,
                                         int HW, float momentum, float eps, int training)
{
    struct sg_cuda *s = sg_cuda_get(c);
    bn_check_dims(B, C, HW);
    int64_t n = (int64_t)B * HW;
    SG_CHECK(!training || n > 1, "batchnorm training needs more than 1 value per channel");
    SG_CHECK(training || (run_mean && run_var), "batchnorm eval needs running statistics");
    SG_CHECK(out && inp, "batchnorm forward: NULL out/inp");
    red_split sp = red_split_for(n);
    size_t nf = 5 * (size_t)C + (training ? (size_t)sp.nsplit * C : 0);
    float *coef = (float *)sg_cuda_scratch(c, sizeof(float) * nf); /* coef(4,C) */
    float *bmean = coef + 4 * (size_t)C;                           /* (C) batch mean */
    float *partial = bmean + C;                                    /* (nsplit, C) */
    int cgrid = CEIL_DIV(C, 256);
    if (training) {
        chan_partial(s, RED_SUM, partial, inp, NULL, NULL, B, C, HW, sp);
        chan_mean_kernel<<<cgrid, 256, 0, s->stream>>>(bmean, partial, sp.nsplit, C, n);
        CUDA_CHECK(cudaGetLastError());
        chan_partial(s, RED_SQDEV, partial, inp, NULL, bmean, B, C, HW, sp);
    }
    bn_forward_coef_kernel<<<cgrid, 256, 0, s->stream>>>(
        coef, mean, rstd, run_mean, run_var, training ? bmean : NULL, training ? partial : NULL,
        gamma, beta, sp.nsplit, C, n, momentum, eps, training);
    CUDA_CHECK(cudaGetLastError());
    bn_apply_launch<false, true>(s, out, NULL, inp, coef, C, HW, n * C);
}

extern "C" void batchnorm2d_backward_cuda(struct sg_ctx *c, float *dinp, float *dgamma,
                                          float *dbeta, const float *dout, const float *inp,
                                          const float *gamma, const float *mean, const float *rstd,
                                          int B, int C, int HW, int training)
{
    struct sg_cuda *s = sg_cuda_get(c);
    bn_check_dims(B, C, HW);
    int need_sums = dgamma || dbeta || (dinp && training);
    if (!need_sums && !dinp) return;
    SG_CHECK(dout && rstd, "batchnorm backward: NULL dout/rstd");
    SG_CHECK(!need_sums || (inp && mean), "batchnorm backward: NULL inp/mean");
    int64_t n = (int64_t)B * HW;
    red_split sp = red_split_for(n);
    size_t nf = 4 * (size_t)C + (need_sums ? 2 * (size_t)sp.nsplit * C : 0);
    float *coef = (float *)sg_cuda_scratch(c, sizeof(float) * nf); /* coef(4,C) */
    float *partial = need_sums ? coef + 4 * (size_t)C : NULL;      /* (nsplit, 2, C) */
    /* the sums read dout before bn_apply writes dinp (stream order): dinp may alias dout */
    if (need_sums) chan_partial(s, RED_DSUMS, partial, inp, dout, mean, B, C, HW, sp);
    bn_backward_coef_kernel<<<CEIL_DIV(C, 256), 256, 0, s->stream>>>(
        coef, dgamma, dbeta, partial, gamma, mean, rstd, sp.nsplit, C, n, training);
    CUDA_CHECK(cudaGetLastError());
    if (!dinp) return;
    if (training)
        bn_apply_launch<true, true>(s, dinp, dout, inp, coef, C, HW, n * C);
    else
        bn_apply_launch<true, false>(s, dinp, dout, NULL, coef, C, HW, n * C);
}

/* ---- cuDNN state: handle and per-shape plans ---------------------------------------------- */

#define CUDNN_WS_MAX ((size_t)2 << 30) /* never pick an algorithm wanting more workspace */
#define CONV_KEY_LEN 13

enum conv_dir { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2, DIR_COUNT = 3 };
static const char *const dir_name[DIR_COUNT] = {"fwd", "bwd_data", "bwd_filter"};

struct conv_algo {
    int ready;            /* chosen already */
    int algo;             /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    cudnnMathType_t math; /* set on the descriptor before running */
    size_t ws;            /* workspace bytes */
};

struct conv_plan {
    int key[CONV_KEY_LEN];              /* shape fields + precision */
    cudnnTensorDescriptor_t x, y, bias; /* (B,C,H,W), (B,OC,OH,OW), (1,OC,1,1) */
    cudnnFilterDescriptor_t w;          /* (OC, C/groups, KH, KW) */
    cudnnConvolutionDescriptor_t conv;
    int fp32; /* 1: SG_PREC_FP32 (FMA math only) */
    struct conv_algo algo[DIR_COUNT];
};

struct cudnn_state {
    cudnnHandle_t handle; /* bound to the context stream */
    struct conv_plan **plans;
    int nplans, cap;
    int benchmark; /* SOGCLIP_CUDNN_BENCHMARK=1: cudnnFind* (timed) instead of heuristics */
    int verbose;   /* SOGCLIP_CUDNN_VERBOSE=1: print each choice */
};

static void plan_destroy(struct conv_plan *p)
{
    /* teardown: errors ignored (the context is going away) */
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->bias) cudnnDestroyTensorDescriptor(p->bias);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    free(p);
}

/* sg_cuda::cudnn_free: destroys every plan and the handle (called with the stream drained). */
static void cudnn_state_free(struct sg_cuda *s)
{
    struct cudnn_state *st = (struct cudnn_state *)s->cudnn;
    if (!st) return;
    for (int i = 0; i < st->nplans; i++) plan_destroy(st->plans[i]);
    free(st->plans);
    if (st->handle) cudnnDestroy(st->handle);
    free(st);
    s->cudnn = NULL;
    s->cudnn_free = NULL;
}

static int env_on(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

static struct cudnn_state *cudnn_get(struct sg_ctx *c)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (s->cudnn) return (struct cudnn_state *)s->cudnn;
    struct cudnn_state *st = (struct cudnn_state *)sg_xcalloc(1, sizeof *st);
    cudnnStatus_t e = cudnnCreate(&st->handle);
    if (e != CUDNN_STATUS_SUCCESS)
        SG_PANIC("cudnnCreate: %s (cuDNN %zu, built against %d)\n---> HINT: libcudnn.so.9 and its "
                 "sub-libraries (libcudnn_cnn, libcudnn_ops, ...) must be on the library path and "
                 "match the CUDA driver",
                 cudnnGetErrorString(e), cudnnGetVersion(), CUDNN_VERSION);
    CUDNN_CHECK(cudnnSetStream(st->handle, s->stream));
    st->benchmark = env_on("SOGCLIP_CUDNN_BENCHMARK");
    st->verbose = env_on("SOGCLIP_CUDNN_VERBOSE");
    s->cudnn = st;
    s->cudnn_free = cudnn_state_free;
    return st;
}

static void conv_key(const struct sg_conv2d_shape *s, int precision, int *key)
{
    int k[CONV_KEY_LEN] = {s->B,        s->C,        s->H,     s->W,     s->OC,     s->KH,    s->KW,
                           s->stride_h, s->stride_w, s->pad_h, s->pad_w, s->groups, precision};
    memcpy(key, k, sizeof k);
}

static struct conv_plan *plan_create(const struct sg_conv2d_shape *s, const int *key, int fp32)
{
    struct conv_plan *p = (struct conv_plan *)sg_xcalloc(1, sizeof *p);
    memcpy(p->key, key, sizeof p->key);
    p->fp32 = fp32;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->B, s->C,
                                           s->H, s->W));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->B, s->OC,
                                           s->OH, s->OW));
    CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->OC, 1, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->OC,
                                           s->C / s->groups, s->KH, s->KW));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, s->pad_h, s->pad_w, s->stride_h,
                                                s->stride_w, 1, 1, CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, s->groups));
    int on, oc, oh, ow;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow));
    SG_CHECK(on == s->B && oc == s->OC && oh == s->OH && ow == s->OW,
             "cuDNN output dims (%d,%d,%d,%d) differ from the shape's (%d,%d,%d,%d)", on, oc, oh,
             ow, s->B, s->OC, s->OH, s->OW);
    return p;
}

static struct conv_plan *plan_get(struct sg_ctx *c, struct cudnn_state *st,
                                  const struct sg_conv2d_shape *s)
{
    int key[CONV_KEY_LEN];
    conv_key(s, (int)c->precision, key);
    for (int i = 0; i < st->nplans; i++)
        if (memcmp(st->plans[i]->key, key, sizeof key) == 0) return st->plans[i];
    if (st->nplans == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 16;
        st->plans = (struct conv_plan **)sg_xrealloc(st->plans, sizeof *st->plans * st->cap);
    }
    struct conv_plan *p = plan_create(s, key, c->precision != SG_PREC_BF16);
    st->plans[st->nplans++] = p;
    return p;
}

/* ---- algorithm choice --------------------------------------------------------------------- */

/* Math type of the search: FMA only for fp32 (no TF32), tensor cores allowed for bf16. */
static cudnnMathType_t search_math(const struct conv_plan *p)
{
    return p->fp32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

/* Winograd algorithms lose accuracy (measured on the H200, fp32 dw of a 3x3 conv, B=2 32@112:
 * 8e-5 of rms from a double reference, against 3e-6 for the CPU and the GEMM / FFT algorithms). */
static int is_winograd(int dir, int algo)
{
    if (dir == DIR_FWD)
        return algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    if (dir == DIR_BWD_DATA)
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
               algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD ||
           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

/* Picks from perf[0..n) (the library's order: best first) the first candidate that succeeds and
 * passes, by preference: pass 0 deterministic, workspace <= CUDNN_WS_MAX and, for fp32 plans, not
 * Winograd; pass 1 allows Winograd; pass 2 non-deterministic algorithms; pass 3 any workspace
 * (passes >= 1 warn on stderr). fp32 plans skip tensor-op candidates and run the rest with
 * CUDNN_FMA_MATH (as PyTorch without TF32). ws_query(algo, math, &bytes) gives the workspace (a
 * failing query skips the candidate). */
template <typename Perf, typename Query>
static void pick_algo(struct cudnn_state *st, struct conv_plan *p, int dir, const Perf *perf, int n,
                      Query ws_query)
{
    for (int pass = 0; pass < 4; pass++)
        for (int i = 0; i < n; i++) {
            const Perf &f = perf[i];
            if (f.status != CUDNN_STATUS_SUCCESS) continue;
            if (p->fp32 && (f.mathType == CUDNN_TENSOR_OP_MATH ||
                            f.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
                continue;
            if (pass == 0 && p->fp32 && is_winograd(dir, (int)f.algo)) continue;
            if (pass < 2 && f.determinism != CUDNN_DETERMINISTIC) continue;
            if (pass < 3 && f.memory > CUDNN_WS_MAX) continue;
            cudnnMathType_t math = p->fp32 ? CUDNN_FMA_MATH : f.mathType;
            size_t ws = 0;
            if (ws_query((int)f.algo, math, &ws) != CUDNN_STATUS_SUCCESS) continue;
            struct conv_algo *a = &p->algo[dir];
            *a = conv_algo{1, (int)f.algo, math, SG_MAX(ws, f.memory)};
            if (pass > 0)
                fprintf(stderr,
                        "sogclip: warning: cuDNN conv %s: no deterministic%s algorithm within %zu "
                        "MiB of workspace; using algo %d (determinism %d, %zu MiB)\n",
                        dir_name[dir], p->fp32 ? " non-Winograd" : "", CUDNN_WS_MAX >> 20, a->algo,
                        (int)f.determinism, a->ws >> 20);
            if (st->verbose)
                fprintf(stderr,
                        "sogclip: cuDNN conv B=%d C=%d H=%d W=%d OC=%d K=%dx%d s=%d,%d p=%d,%d "
                        "g=%d prec=%d %s: algo %d math %d ws %zu B (%s)\n",
                        p->key[0], p->key[1], p->key[2], p->key[3], p->key[4], p->key[5], p->key[6],
                        p->key[7], p->key[8], p->key[9], p->key[10], p->key[11], p->key[12],
                        dir_name[dir], a->algo, (int)a->math, a->ws,
                        st->benchmark ? "find" : "heuristic");
            return;
        }
    fprintf(stderr, "sogclip: cuDNN conv %s candidates:\n", dir_name[dir]);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "  algo %d status %s determinism %d math %d memory %zu\n",
                (int)perf[i].algo, cudnnGetErrorString(perf[i].status), (int)perf[i].determinism,
                (int)perf[i].mathType, perf[i].memory);
    SG_PANIC("cuDNN has no usable %s algorithm for this convolution (candidates above)",
             dir_name[dir]);
}

static void choose_fwd(struct cudnn_state *st, struct conv_plan *p)
{
    cudnnHandle_t h = st->handle;
    int max = 0, n = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
    cudnnConvolutionFwdAlgoPerf_t *perf =
        (cudnnConvolutionFwdAlgoPerf_t *)sg_xcalloc((size_t)SG_MAX(max, 1), sizeof *perf);
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, search_math(p)));
    if (st->benchmark)
        CUDNN_CHECK(
            cudnnFindConvolutionForwardAlgorithm(h, p->x, p->w, p->conv, p->y, max, &n, perf));
    else
        CUDNN_CHECK(
            cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, max, &n, perf));
    pick_algo(st, p, DIR_FWD, perf, n, [&](int algo, cudnnMathType_t math, size_t *ws) {
        CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, math));
        return cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y,
                                                       (cudnnConvolutionFwdAlgo_t)algo, ws);
    });
    free(perf);
}

static void choose_bwd_data(struct cudnn_state *st, struct conv_plan *p)
{
    cudnnHandle_t h = st->handle;
    int max = 0, n = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
    cudnnConvolutionBwdDataAlgoPerf_t *perf =
        (cudnnConvolutionBwdDataAlgoPerf_t *)sg_xcalloc((size_t)SG_MAX(max, 1), sizeof *perf);
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, search_math(p)));
    if (st->benchmark)
        CUDNN_CHECK(
            cudnnFindConvolutionBackwardDataAlgorithm(h, p->w, p->y, p->conv, p->x, max, &n, perf));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, max,
                                                                &n, perf));
    pick_algo(st, p, DIR_BWD_DATA, perf, n, [&](int algo, cudnnMathType_t math, size_t *ws) {
        CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, math));
        return cudnnGetConvolutionBackwardDataWorkspaceSize(
            h, p->w, p->y, p->conv, p->x, (cudnnConvolutionBwdDataAlgo_t)algo, ws);
    });
    free(perf);
}

static void choose_bwd_filter(struct cudnn_state *st, struct conv_plan *p)
{
    cudnnHandle_t h = st->handle;
    int max = 0, n = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
    cudnnConvolutionBwdFilterAlgoPerf_t *perf =
        (cudnnConvolutionBwdFilterAlgoPerf_t *)sg_xcalloc((size_t)SG_MAX(max, 1), sizeof *perf);
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, search_math(p)));
    if (st->benchmark)
        CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(h, p->x, p->y, p->conv, p->w, max,
                                                                &n, perf));
    else
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w, max,
                                                                  &n, perf));
    pick_algo(st, p, DIR_BWD_FILTER, perf, n, [&](int algo, cudnnMathType_t math, size_t *ws) {
        CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, math));
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(
            h, p->x, p->y, p->conv, p->w, (cudnnConvolutionBwdFilterAlgo_t)algo, ws);
    });
    free(perf);
}

/* The direction's algorithm (chosen on first use), its math type set on the descriptor. */
static const struct conv_algo *algo_for(struct cudnn_state *st, struct conv_plan *p, int dir)
{
    if (!p->algo[dir].ready) {
        if (dir == DIR_FWD)
            choose_fwd(st, p);
        else if (dir == DIR_BWD_DATA)
            choose_bwd_data(st, p);
        else
            choose_bwd_filter(st, p);
    }
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->algo[dir].math));
    return &p->algo[dir];
}

/* ---- convolution entry points ------------------------------------------------------------- */

/* Re-checks a (possibly hand-filled) shape and the 32-bit element counts of cuDNN's 4-d
 * descriptors. */
static void conv_check(const struct sg_conv2d_shape *s)
{
    struct sg_conv2d_shape t = *s;
    sg_conv2d_shape_finish(&t);
    SG_CHECK(t.OH == s->OH && t.OW == s->OW, "conv2d: OH/OW %dx%d do not match the shape (%dx%d)",
             s->OH, s->OW, t.OH, t.OW);
    int64_t ni = (int64_t)s->B * s->C * s->H * s->W, no = (int64_t)s->B * s->OC * s->OH * s->OW;
    SG_CHECK(
        ni < ((int64_t)1 << 31) && no < ((int64_t)1 << 31),
        "conv2d on CUDA: tensors of 2^31 or more elements are not supported (split the batch)");
}

static void *workspace(struct sg_ctx *c, size_t bytes)
{
    return bytes ? sg_cuda_scratch(c, bytes) : NULL;
}

extern "C" void conv2d_forward_cuda(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                                    const float *inp, const float *w, const float *b)
{
    conv_check(s);
    SG_CHECK(out && inp && w, "conv2d forward: NULL out/inp/w");
    struct cudnn_state *st = cudnn_get(c);
    struct conv_plan *p = plan_get(c, st, s);
    const struct conv_algo *a = algo_for(st, p, DIR_FWD);
    const float one = 1.0f, zero = 0.0f;
    void *ws = workspace(c, a->ws);
    CUDNN_CHECK(cudnnConvolutionForward(st->handle, &one, p->x, inp, p->w, w, p->conv,
                                        (cudnnConvolutionFwdAlgo_t)a->algo, ws, a->ws, &zero, p->y,
                                        out));
    if (b) CUDNN_CHECK(cudnnAddTensor(st->handle, &one, p->bias, b, &one, p->y, out));
}

extern "C" void conv2d_backward_cuda(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp,
                                     float *dw, float *db, const float *dout, const float *inp,
                                     const float *w)
{
    conv_check(s);
    if (!dinp && !dw && !db) return;
    SG_CHECK(dout, "conv2d backward: NULL dout");
    SG_CHECK(!dinp || w, "conv2d backward: dinp needs w");
    SG_CHECK(!dw || inp, "conv2d backward: dw needs inp");
    struct sg_cuda *cs = sg_cuda_get(c);
    struct cudnn_state *st = cudnn_get(c);
    struct conv_plan *p = plan_get(c, st, s);
    const float one = 1.0f, zero = 0.0f;
    if (dinp) { /* overwrite: beta = 0 */
        const struct conv_algo *a = algo_for(st, p, DIR_BWD_DATA);
        void *ws = workspace(c, a->ws);
        CUDNN_CHECK(cudnnConvolutionBackwardData(st->handle, &one, p->w, w, p->y, dout, p->conv,
                                                 (cudnnConvolutionBwdDataAlgo_t)a->algo, ws, a->ws,
                                                 &zero, p->x, dinp));
    }
    if (dw) { /* accumulate: beta = 1 */
        const struct conv_algo *a = algo_for(st, p, DIR_BWD_FILTER);
        void *ws = workspace(c, a->ws);
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(st->handle, &one, p->x, inp, p->y, dout, p->conv,
                                                   (cudnnConvolutionBwdFilterAlgo_t)a->algo, ws,
                                                   a->ws, &one, p->w, dw));
    }
    if (db) { /* accumulate: db[oc] += sum over (B, OH*OW) of dout, chunks summed in order */
        int HW = s->OH * s->OW;
        red_split sp = red_split_for((int64_t)s->B * HW);
        float *partial = (float *)sg_cuda_scratch(c, sizeof(float) * (size_t)sp.nsplit * s->OC);
        chan_partial(cs, RED_SUM, partial, dout, NULL, NULL, s->B, s->OC, HW, sp);
        sg_cuda_colsum_finalize(cs, db, partial, sp.nsplit, s->OC, s->OC);
    }
}
