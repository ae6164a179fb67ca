/*
 * ops/activation.c — ReLU, GELU (erf and tanh forms) and QuickGELU on n contiguous floats,
 * forward and backward; see ops/activation.h for the formulas.
 * Torch references: F.relu, F.gelu(x, approximate='none' | 'tanh'), x * torch.sigmoid(1.702 * x).
 *
 *  _ref  the spec: double precision with libm, rounded to float once; written so that the
 *        x << 0 tails do not cancel (GELU as 0.5 x erfc(-x/sqrt 2), GELU_TANH as x sigmoid(2u)).
 *  _cpu  float, branch-free polynomials (sg_expf_fast from ops/vmath.h, an erfc
 *        below), so every loop vectorises (8 lanes on AVX2) with no libm call per element;
 *        OpenMP over n. Error vs. _ref: tests/test_activation.c sweeps it (a few ulp).
 *  The tanh forms use 0.5 (1 + tanh u) = sigmoid(2u), which has no cancellation for u << 0.
 */
#include "ops/activation.h"

#include <math.h>
#include <string.h>

#include "core/common.h"
#include "ops/vmath.h"

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

/* Normal CDF. */
static double phi_ref(double x)
{
    return 0.5 * erfc(-x * SQRT1_2);
}

/* 1/(1 + exp(-z)). GELU_TANH's 0.5 (1 + tanh u) is sigmoid(2u), which, unlike 1 + tanh u, does
 * not cancel for u << 0 (that tail would be wrong even in double). */
static double sigmoid_ref(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static double act_ref(enum sg_act a, double x)
{
    switch (a) {
    case SG_ACT_RELU:
        return x > 0.0 ? x : 0.0;
    case SG_ACT_GELU:
        return x * phi_ref(x);
    case SG_ACT_GELU_TANH:
        return x * sigmoid_ref(2.0 * SQRT_2_PI * (x + GELU_K * x * x * x));
    case SG_ACT_QUICKGELU:
        return x * sigmoid_ref(QGELU_A * x);
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
        double s = sigmoid_ref(2.0 * SQRT_2_PI * (x + GELU_K * x * x * x));
        return s + x * s * (1.0 - s) * 2.0 * SQRT_2_PI * (1.0 + 3.0 * GELU_K * x * x);
    }
    case SG_ACT_QUICKGELU: {
        double s = sigmoid_ref(QGELU_A * x);
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

/* x clamped to [-lim, lim] (lim > 0), by select_f for the reason above. */
static inline float clamp_f(float x, float lim)
{
    x = select_f(x > lim, lim, x);
    return select_f(x < -lim, -lim, x);
}

/*
 * GELU's pieces for x: returns Phi(x) (normal CDF) and sets *e = exp(-x^2/2).
 * exp(-x^2/2) carries x^2 exactly (fma residual), so its error does not grow with x^2 as
 * exp(-(x*x)/2) does (1 ulp of x*x is ~x^2 ulp of the result).
 * Phi(x) = 0.5 erfc(-x/sqrt 2): with t = |x|/sqrt 2, h = erfc(t)/2 = exp(-t^2) P(q) / (2 (1 + 2t)),
 * q = (t - 2)/(t + 2) (N. Juffa's scaling), P a degree-9 polynomial fitted for minimax relative
 * error (3e-8 with float coefficients) over t in [0, 10.5]; Phi = 1 - h for x > 0, h otherwise.
 * One form over the whole range: the x < 0 tail keeps its relative accuracy (torch's
 * 0.5 (1 + erf) cancels there) and there is no erf/erfc branch to select. One division serves
 * q and 1/(1 + 2t). |x| is clamped at 14.5 (where e = 0) so that nothing overflows.
 */
static inline float gelu_phi(float x, float *e)
{
    float xa = fabsf(x);
    xa = select_f(xa < 14.5f, xa, 14.5f);
    float xx = xa * xa;
    float lo = fmaf(xa, xa, -xx); /* x^2 = xx + lo */
    float ex = sg_expf_fast(-0.5f * xx);
    ex = fmaf(ex, -0.5f * lo, ex); /* exp(-xx/2) exp(-lo/2) */
    *e = ex;
    float t = xa * (float)SQRT1_2;
    float a = t + 2.0f, b = fmaf(2.0f, t, 1.0f);
    float r = 1.0f / (a * b);
    float q = (t - 2.0f) * b * r;
    float p = -3.96105926e-4f;
    p = fmaf(p, q, -1.22234027e-3f);
    p = fmaf(p, q, 1.31256972e-3f);
    p = fmaf(p, q, 8.62535648e-3f);
    p = fmaf(p, q, -8.06088746e-3f);
    p = fmaf(p, q, -5.42026199e-2f);
    p = fmaf(p, q, 1.64055660e-1f);
    p = fmaf(p, q, -1.66031569e-1f);
    p = fmaf(p, q, -9.27639976e-2f);
    p = fmaf(p, q, 1.27697837e+0f);
    float h = 0.5f * p * (a * r) * ex;
    return select_f(x > 0.0f, 1.0f - h, h);
}

/* ---- fast path ------------------------------------------------------------------------------- */

/* One OpenMP-parallel, vectorised loop per (activation, direction) on `nt` threads. No restrict:
 * `omp simd` asserts what vectorisation needs (no cross-iteration dependence), which the
 * documented same-index aliasing (out == inp, dinp == dout) satisfies. */
#define PAR_SIMD _Pragma("omp parallel for simd schedule(static) num_threads(nt)")

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
    for (int64_t i = 0; i < n; i++) {
        float e;
        out[i] = inp[i] * gelu_phi(inp[i], &e);
    }
}

/* d/dx x Phi(x) = Phi(x) + x pdf(x) */
static void gelu_bwd(int nt, float *dinp, const float *dout, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float e, phi = gelu_phi(x, &e);
        dinp[i] = dout[i] * fmaf(x * (float)INV_SQRT_2PI, e, phi);
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

/* d/dx x s = s + x s (1 - s) d(2u)/dx, with s (1 - s) = e s^2 (no cancellation near s = 1).
 * From x clamped to +-10 (beyond it the derivative is 0 or 1 to 1e-35), so e stays finite and
 * x d(2u)/dx cannot overflow. */
static void gelu_tanh_bwd(int nt, float *dinp, const float *dout, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) {
        float x = clamp_f(inp[i], 10.0f), e = gelu_tanh_e(x), s = 1.0f / (1.0f + e);
        float du2 = (float)(2.0 * SQRT_2_PI) * fmaf((float)(3.0 * GELU_K) * x, x, 1.0f);
        dinp[i] = dout[i] * fmaf(x * du2, (e * s) * s, s);
    }
}

/* x sigmoid(z), z = 1.702 x; forward takes e = exp(-z) = inf in its stride (x / inf = 0). */
static void quickgelu_fwd(int nt, float *out, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++)
        out[i] = inp[i] / (1.0f + sg_expf_fast(-((float)QGELU_A * inp[i])));
}

/* s + z s (1 - s) with s (1 - s) = e s^2, from z clamped to +-80 (as in gelu_tanh_bwd). */
static void quickgelu_bwd(int nt, float *dinp, const float *dout, const float *inp, int64_t n)
{
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) {
        float z = clamp_f((float)QGELU_A * inp[i], 80.0f);
        float e = sg_expf_fast(-z), s = 1.0f / (1.0f + e);
        dinp[i] = dout[i] * fmaf(z, (e * s) * s, s);
    }
}

void act_forward_cpu(struct sg_ctx *c, enum sg_act a, float *out, const float *inp, int64_t n)
{
    int nt = sg_pointwise_threads(c, n);
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
    int nt = sg_pointwise_threads(c, n);
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
