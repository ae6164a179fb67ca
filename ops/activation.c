/*
 * ops/activation.c — ReLU, GELU (erf and tanh forms) and QuickGELU on n contiguous floats,
 * forward and backward; see ops/activation.h for the formulas.
 * Torch references: F.relu, F.gelu(x, approximate='none' | 'tanh'), x * torch.sigmoid(1.702 * x).
 *
 *  _ref  the spec: double precision with libm (GELU as 0.5 x erfc(-x/sqrt 2), so the x << 0
 *        tail is exact too), rounded to float once.
 *  _cpu  float, branch-free polynomials (sg_expf_fast from ops/elementwise.h, an erf/erfc pair
 *        below), so every loop vectorises (8 lanes on AVX2) with no libm call per element;
 *        OpenMP over n. Error vs. _ref: tests/test_activation.c sweeps it (a few ulp).
 *  The tanh forms use 0.5 (1 + tanh u) = sigmoid(2u), which has no cancellation for u << 0.
 */
#include "ops/activation.h"

#include <math.h>
#include <string.h>

#include "core/common.h"
#include "ops/elementwise.h"

#define SQRT1_2      0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */
#define SQRT_2_PI    0.79788456080286535588 /* sqrt(2/pi) */
#define GELU_K       0.044715
#define QGELU_A      1.702

const char *sg_act_name(enum sg_act a)
{
    switch (a) {
    case SG_ACT_RELU:
        return "relu";
    case SG_ACT_GELU:
        return "gelu";
    case SG_ACT_GELU_TANH:
        return "gelu_tanh";
    case SG_ACT_QUICKGELU:
        return "quickgelu";
    default:
        return "?";
    }
}

/* ---- reference (double precision, libm) ------------------------------------------------------ */

static double phi_ref(double x)
{
    return 0.5 * erfc(-x * SQRT1_2);
} /* normal CDF */

static double act_ref(enum sg_act a, double x)
{
    switch (a) {
    case SG_ACT_RELU:
        return x > 0.0 ? x : 0.0;
    case SG_ACT_GELU:
        return x * phi_ref(x);
    case SG_ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(SQRT_2_PI * (x + GELU_K * x * x * x)));
    case SG_ACT_QUICKGELU:
        return x / (1.0 + exp(-QGELU_A * x));
    default:
        SG_PANIC("unknown activation %d", (int)a);
    }
}

static double act_grad_ref(enum sg_act a, double x)
{
    switch (a) {
    case SG_ACT_RELU:
        return x > 0.0 ? 1.0 : 0.0;
    case SG_ACT_GELU:
        return phi_ref(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    case SG_ACT_GELU_TANH: {
        double th = tanh(SQRT_2_PI * (x + GELU_K * x * x * x));
        double du = SQRT_2_PI * (1.0 + 3.0 * GELU_K * x * x);
        return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
    }
    case SG_ACT_QUICKGELU: {
        double s = 1.0 / (1.0 + exp(-QGELU_A * x));
        return s + x * QGELU_A * s * (1.0 - s);
    }
    default:
        SG_PANIC("unknown activation %d", (int)a);
    }
}

void act_forward_ref(enum sg_act a, float *out, const float *inp, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = (float)act_ref(a, inp[i]);
}

void act_backward_ref(enum sg_act a, float *dinp, const float *dout, const float *inp, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dinp[i] = (float)(dout[i] * act_grad_ref(a, inp[i]));
}

/* ---- fast float math (branch-free, inlined into the vector loops) ---------------------------- */

/* c ? a : b on the bits: both sides are computed anyway, and gcc (under the default
 * -ftrapping-math) will not if-convert a float select whose sides it has sunk into branches. */
static inline float select_f(int c, float a, float b)
{
    uint32_t ua, ub, m = c ? 0xffffffffu : 0u;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    uint32_t r = (ua & m) | (ub & ~m);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* exp(-x^2/2) with x^2 carried exactly (fma residual), so the error does not grow with x^2 as
 * exp(-(x*x)/2) does (1 ulp of x*x is ~x^2 ulp of the result). |x| > 14.5 gives 0. */
static inline float exp_neg_half_sq(float x)
{
    x = fabsf(x);
    x = select_f(x < 14.5f, x, 14.5f); /* no overflow in x*x */
    float xx = x * x;
    float lo = fmaf(x, x, -xx); /* x^2 = xx + lo */
    float e = sg_expf_fast(-0.5f * xx);
    return fmaf(e, -0.5f * lo, e); /* e exp(-lo/2) */
}

/*
 * erfc(t)/2 for t = |x|/sqrt 2 >= 0.92 (0 beyond t = 10): erfc(t) = exp(-t^2) P(q) / (1 + 2t),
 * q = (t - 2)/(t + 2) (N. Juffa's scaling), P a degree-8 polynomial fitted for minimax
 * relative error (1e-8) on t in [0.9277, 10]. Max relative error ~2 ulp.
 */
static inline float half_erfc_tail(float x)
{
    float t = fabsf(x) * (float)SQRT1_2;
    float q = 1.0f - 4.0f / (t + 2.0f); /* (t - 2)/(t + 2), finite for t = inf */
    float p = -1.51715369e-3f;
    p = fmaf(p, q, 1.11122278e-3f);
    p = fmaf(p, q, 8.76349304e-3f);
    p = fmaf(p, q, -8.01375229e-3f);
    p = fmaf(p, q, -5.42253070e-2f);
    p = fmaf(p, q, 1.64050266e-1f);
    p = fmaf(p, q, -1.66030198e-1f);
    p = fmaf(p, q, -9.27638113e-2f);
    p = fmaf(p, q, 1.27697837e+0f);
    return 0.5f * p / fmaf(2.0f, t, 1.0f) * exp_neg_half_sq(x);
}

/*
 * Normal CDF Phi(x) = 0.5 erfc(-x/sqrt 2), a = x/sqrt 2. |a| <= 0.9277: 0.5 + 0.5 erf(a), erf
 * by N. Juffa's odd minimax polynomial (1 ulp); beyond: h = erfc(|a|)/2 and Phi = 1 - h (x > 0)
 * or h (x < 0), so the negative tail keeps its relative accuracy instead of cancelling in
 * 1 + erf(a) as torch's float formula does.
 */
static inline float phi_fast(float x)
{
    float a = x * (float)SQRT1_2;
    float t = fabsf(a), s = a * a;
    float p = -5.96761703e-4f; /* erf(a) = a + a p(a^2) */
    p = fmaf(p, s, 4.99119423e-3f);
    p = fmaf(p, s, -2.67681349e-2f);
    p = fmaf(p, s, 1.12819925e-1f);
    p = fmaf(p, s, -3.76125336e-1f);
    p = fmaf(p, s, 1.28379166e-1f);
    float small = fmaf(0.5f, fmaf(p, a, a), 0.5f);
    float h = half_erfc_tail(x);
    float large = (x > 0.0f ? 1.0f : 0.0f) + copysignf(h, -x); /* 1 - h or h */
    return select_f(t > 0.927734375f, large, small);
}

/* ---- fast path ------------------------------------------------------------------------------- */

/* One OpenMP-parallel, vectorised loop per (activation, direction) on `nt` threads. No restrict:
 * `omp simd` asserts what vectorisation needs (no cross-iteration dependence), which the
 * documented same-index aliasing (out == inp, dinp == dout) satisfies. */
#define PAR_SIMD _Pragma("omp parallel for simd num_threads(nt) if (n >= SG_POINTWISE_PAR_MIN)")

static void relu_fwd(int nt, float *out, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] <= 0.0f ? 0.0f : inp[i];
}

static void relu_bwd(int nt, float *dinp, const float *dout, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) dinp[i] = inp[i] <= 0.0f ? 0.0f : dout[i];
}

static void gelu_fwd(int nt, float *out, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] * phi_fast(inp[i]);
}

/* d/dx x Phi(x) = Phi(x) + x pdf(x) */
static void gelu_bwd(int nt, float *dinp, const float *dout, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float pdf = (float)INV_SQRT_2PI * exp_neg_half_sq(x);
        dinp[i] = dout[i] * fmaf(x, pdf, phi_fast(x));
    }
}

/* gelu_tanh(x) = x sigmoid(2u), 2u = 2 sqrt(2/pi) (x + 0.044715 x^3); returns e = exp(-2u). */
static inline float gelu_tanh_e(float x)
{
    float two_u = (float)(2.0 * SQRT_2_PI) * x * fmaf((float)GELU_K * x, x, 1.0f);
    return sg_expf_fast(-two_u);
}

static void gelu_tanh_fwd(int nt, float *out, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] / (1.0f + gelu_tanh_e(inp[i]));
}

/* d/dx x s = s + x s (1 - s) d(2u)/dx, with s (1 - s) = e s^2 (no cancellation near s = 1). */
static void gelu_tanh_bwd(int nt, float *dinp, const float *dout, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i], e = gelu_tanh_e(x), s = 1.0f / (1.0f + e);
        float du2 = (float)(2.0 * SQRT_2_PI) * fmaf((float)(3.0 * GELU_K) * x, x, 1.0f);
        dinp[i] = dout[i] * fmaf(x * du2, (e * s) * s, s);
    }
}

static void quickgelu_fwd(int nt, float *out, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++)
        out[i] = inp[i] / (1.0f + sg_expf_fast(-((float)QGELU_A * inp[i])));
}

static void quickgelu_bwd(int nt, float *dinp, const float *dout, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i], e = sg_expf_fast(-((float)QGELU_A * x)), s = 1.0f / (1.0f + e);
        dinp[i] = dout[i] * fmaf((float)QGELU_A * x, (e * s) * s, s);
    }
}

void act_forward_cpu(struct sg_ctx *c, enum sg_act a, float *out, const float *inp, int64_t n)
{
    int nt = c->nthreads > 0 ? c->nthreads : 1;
    switch (a) {
    case SG_ACT_RELU:
        relu_fwd(nt, out, inp, n);
        break;
    case SG_ACT_GELU:
        gelu_fwd(nt, out, inp, n);
        break;
    case SG_ACT_GELU_TANH:
        gelu_tanh_fwd(nt, out, inp, n);
        break;
    case SG_ACT_QUICKGELU:
        quickgelu_fwd(nt, out, inp, n);
        break;
    default:
        SG_PANIC("unknown activation %d", (int)a);
    }
}

void act_backward_cpu(struct sg_ctx *c, enum sg_act a, float *dinp, const float *dout,
                      const float *inp, int64_t n)
{
    int nt = c->nthreads > 0 ? c->nthreads : 1;
    switch (a) {
    case SG_ACT_RELU:
        relu_bwd(nt, dinp, dout, inp, n);
        break;
    case SG_ACT_GELU:
        gelu_bwd(nt, dinp, dout, inp, n);
        break;
    case SG_ACT_GELU_TANH:
        gelu_tanh_bwd(nt, dinp, dout, inp, n);
        break;
    case SG_ACT_QUICKGELU:
        quickgelu_bwd(nt, dinp, dout, inp, n);
        break;
    default:
        SG_PANIC("unknown activation %d", (int)a);
    }
}

/* ---- dispatch -------------------------------------------------------------------------------- */

void op_act_forward(struct sg_ctx *c, enum sg_act a, float *out, const float *inp, int64_t n)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        act_forward_cpu(c, a, out, inp, n);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        act_forward_cuda(c, a, out, inp, n);
        return;
#else
        SG_PANIC("op_act_forward: this build has no CUDA backend");
#endif
    }
    SG_PANIC("op_act_forward: unknown device %d", (int)c->dev);
}

void op_act_backward(struct sg_ctx *c, enum sg_act a, float *dinp, const float *dout,
                     const float *inp, int64_t n)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        act_backward_cpu(c, a, dinp, dout, inp, n);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        act_backward_cuda(c, a, dinp, dout, inp, n);
        return;
#else
        SG_PANIC("op_act_backward: this build has no CUDA backend");
#endif
    }
    SG_PANIC("op_act_backward: unknown device %d", (int)c->dev);
}
