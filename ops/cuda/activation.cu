/*
 * ops/cuda/activation.cu — pointwise activations on the GPU (ops/activation.h), n elements:
 *   RELU       max(x, 0)                                       f' = [x > 0]
 *   GELU       x Phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2)         f' = Phi(x) + x phi(x)
 *   GELU_TANH  0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3)
 *              f' = s + 2 x s (1 - s) sqrt(2/pi) (1 + 3*0.044715 x^2),  s = sigmoid(2u)
 *   QUICKGELU  x sigmoid(1.702 x)                              f' = s + 1.702 x s (1 - s)
 * PyTorch: torch.nn.functional.relu / gelu(approximate='none'|'tanh'), CLIP's QuickGELU.
 * forward: out may alias inp; backward: dinp = dout * f'(inp) (overwrite), dinp may alias dout.
 *
 * Memory-bound: one templated kernel per (activation, direction), 16-byte (float4) accesses when
 * all pointers are 16-byte aligned, a scalar loop for the tail (and for unaligned pointers),
 * grid-stride with a grid of a few blocks per multiprocessor. Accurate CUDA math functions (erfcf,
 * expf; no --use_fast_math) so results match the double CPU reference to a few ulp; the erfc and
 * sigmoid forms (as in ops/activation.c) avoid the cancellation of 1 + erf / 1 + tanh for x << 0.
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/activation.h"
}

/* ---- kernels ------------------------------------------------------------------------------ */

#define SG_SQRT1_2      0.70710678118654752440f /* 1/sqrt(2) */
#define SG_INV_SQRT_2PI 0.39894228040143267794f /* 1/sqrt(2 pi) */
#define SG_SQRT_2_PI    0.79788456080286535588f /* sqrt(2/pi) */

template <int A> __device__ __forceinline__ float act_f(float x)
{
    if (A == SG_ACT_RELU) return x > 0.0f ? x : 0.0f;
    if (A == SG_ACT_GELU) return 0.5f * x * erfcf(-x * SG_SQRT1_2);
    if (A == SG_ACT_GELU_TANH) {
        float u = SG_SQRT_2_PI * (x + 0.044715f * x * x * x);
        return x / (1.0f + expf(-2.0f * u));
    }
    return x / (1.0f + expf(-1.702f * x)); /* QUICKGELU */
}

template <int A> __device__ __forceinline__ float act_df(float x)
{
    if (A == SG_ACT_RELU) return x > 0.0f ? 1.0f : 0.0f;
    if (A == SG_ACT_GELU) {
        float cdf = 0.5f * erfcf(-x * SG_SQRT1_2);
        return cdf + x * SG_INV_SQRT_2PI * expf(-0.5f * x * x);
    }
    if (A == SG_ACT_GELU_TANH) {
        float x2 = x * x;
        float s = 1.0f / (1.0f + expf(-2.0f * SG_SQRT_2_PI * (x + 0.044715f * x2 * x)));
        return s + 2.0f * x * s * (1.0f - s) * SG_SQRT_2_PI * (1.0f + 3.0f * 0.044715f * x2);
    }
    float s = 1.0f / (1.0f + expf(-1.702f * x)); /* QUICKGELU */
    return s + 1.702f * x * s * (1.0f - s);
}

/* out[i] = f(inp[i]); the first n4 float4s vectorised, [4*n4, n) scalar. No __restrict__:
 * out may alias inp (each element is read then written by the same thread). */
template <int A>
__global__ void act_forward_kernel(float *out, const float *inp, int64_t n, int64_t n4)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i0 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (int64_t i = i0; i < n4; i += stride) {
        float4 x = reinterpret_cast<const float4 *>(inp)[i];
        reinterpret_cast<float4 *>(out)[i] =
            make_float4(act_f<A>(x.x), act_f<A>(x.y), act_f<A>(x.z), act_f<A>(x.w));
    }
    for (int64_t i = 4 * n4 + i0; i < n; i += stride) out[i] = act_f<A>(inp[i]);
}

/* dinp[i] = dout[i] * f'(inp[i]); dinp may alias dout. */
template <int A>
__global__ void act_backward_kernel(float *dinp, const float *dout, const float *inp, int64_t n,
                                    int64_t n4)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i0 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (int64_t i = i0; i < n4; i += stride) {
        float4 x = reinterpret_cast<const float4 *>(inp)[i];
        float4 g = reinterpret_cast<const float4 *>(dout)[i];
        reinterpret_cast<float4 *>(dinp)[i] = make_float4(
            g.x * act_df<A>(x.x), g.y * act_df<A>(x.y), g.z * act_df<A>(x.z), g.w * act_df<A>(x.w));
    }
    for (int64_t i = 4 * n4 + i0; i < n; i += stride) dinp[i] = dout[i] * act_df<A>(inp[i]);
}

/* ---- launchers ---------------------------------------------------------------------------- */

static const int ACT_THREADS = 256;

static int aligned16(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

/* Grid for `work` items: enough blocks to cover it, capped at 16 per SM (grid-stride beyond). */
static int act_grid(const struct sg_cuda *s, int64_t work)
{
    int64_t blocks = CEIL_DIV(work, (int64_t)ACT_THREADS);
    return (int)SG_MAX((int64_t)1, SG_MIN(blocks, (int64_t)s->num_sms * 16));
}

template <int A>
static void act_forward_launch(struct sg_cuda *s, float *out, const float *inp, int64_t n)
{
    int64_t n4 = aligned16(out) && aligned16(inp) ? n / 4 : 0;
    int grid = act_grid(s, n4 + (n - 4 * n4));
    act_forward_kernel<A><<<grid, ACT_THREADS, 0, s->stream>>>(out, inp, n, n4);
    CUDA_CHECK(cudaGetLastError());
}

template <int A>
static void act_backward_launch(struct sg_cuda *s, float *dinp, const float *dout, const float *inp,
                                int64_t n)
{
    int64_t n4 = aligned16(dinp) && aligned16(dout) && aligned16(inp) ? n / 4 : 0;
    int grid = act_grid(s, n4 + (n - 4 * n4));
    act_backward_kernel<A><<<grid, ACT_THREADS, 0, s->stream>>>(dinp, dout, inp, n, n4);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void act_forward_cuda(struct sg_ctx *c, enum sg_act a, float *out, const float *inp,
                                 int64_t n)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(n >= 0, "negative element count %lld", (long long)n);
    if (n == 0) return;
    SG_CHECK(out && inp, "NULL out/inp");
    switch (a) {
    case SG_ACT_RELU:
        act_forward_launch<SG_ACT_RELU>(s, out, inp, n);
        break;
    case SG_ACT_GELU:
        act_forward_launch<SG_ACT_GELU>(s, out, inp, n);
        break;
    case SG_ACT_GELU_TANH:
        act_forward_launch<SG_ACT_GELU_TANH>(s, out, inp, n);
        break;
    case SG_ACT_QUICKGELU:
        act_forward_launch<SG_ACT_QUICKGELU>(s, out, inp, n);
        break;
    default:
        SG_PANIC("unknown activation %d", (int)a);
    }
}

extern "C" void act_backward_cuda(struct sg_ctx *c, enum sg_act a, float *dinp, const float *dout,
                                  const float *inp, int64_t n)
{
    struct sg_cuda *s = sg_cuda_get(c);
    SG_CHECK(n >= 0, "negative element count %lld", (long long)n);
    if (n == 0) return;
    SG_CHECK(dinp && dout && inp, "NULL dinp/dout/inp");
    switch (a) {
    case SG_ACT_RELU:
        act_backward_launch<SG_ACT_RELU>(s, dinp, dout, inp, n);
        break;
    case SG_ACT_GELU:
        act_backward_launch<SG_ACT_GELU>(s, dinp, dout, inp, n);
        break;
    case SG_ACT_GELU_TANH:
        act_backward_launch<SG_ACT_GELU_TANH>(s, dinp, dout, inp, n);
        break;
    case SG_ACT_QUICKGELU:
        act_backward_launch<SG_ACT_QUICKGELU>(s, dinp, dout, inp, n);
        break;
    default:
        SG_PANIC("unknown activation %d", (int)a);
    }
}
