/*
 * ops/vmath.h — small float math helpers written so that GCC vectorises the loops around them
 * without -ffast-math (the build keeps IEEE semantics; libm's expf would stay a scalar call).
 *
 * sg_expf_fast(x): exp(x) in float. Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, Cephes'
 *   expf polynomial, scaled by 2 * 2^(k-1) built in the exponent bits. Max error 1 ulp on
 *   (-86.99, 88.72] (tests/test_activation.c sweeps it against libm's double exp); above it
 *   overflows to +inf like expf; below -86.99 (results < 1.7e-38) it returns 0 (flushed instead
 *   of denormal); NaN gives NaN. All selects are integer min/max and bit masks: a float compare
 *   or ?: can keep GCC from if-converting the loop under -ftrapping-math (measured 4x slower).
 * sg_expf_nonpos(x): the cheaper variant for x <= 0 (softmax-style shifted exponents).
 * sg_float_key(f): order-preserving float -> int32 map (non-NaN), its own inverse; lets row
 *   maxima be integer maxima, which GCC vectorises.
 * sg_pointwise_threads(c, n): threads worth using for an n-element pointwise loop.
 */
#ifndef SG_VMATH_H
#define SG_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/ctx.h"

static inline uint32_t sg_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float sg_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline int32_t sg_float_key(float f)
{
    int32_t i = (int32_t)sg_f32_bits(f);
    return i ^ (int32_t)((uint32_t)(i >> 31) & 0x7fffffffu);
}

static inline float sg_key_float(int32_t k)
{
    return sg_bits_f32((uint32_t)(k ^ (int32_t)((uint32_t)(k >> 31) & 0x7fffffffu)));
}

/* e^xc = y * 2^k for xc in [-87.3, 89]: Cody-Waite reduction xc = k ln2 + r, |r| <= ln2/2,
 * Cephes' expf polynomial for y = e^r. The two exps below differ only in how they scale. */
static inline float sg_exp_poly(float xc, float *k_out)
{
    float k = fmaf(xc, 1.44269504f, 12582912.0f) - 12582912.0f; /* round(x / ln2) */
    float r = fmaf(k, -0.693359375f, xc);
    r = fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    *k_out = k;
    return fmaf(p, r * r, r) + 1.0f;
}

static inline float sg_expf_fast(float x)
{
    const int32_t lo = (int32_t)0xbd516665; /* sg_float_key(-87.3f): k = -126, scale +0.0 */
    const int32_t hi = 0x42b20000;          /* sg_float_key(89.0f): k = 128, overflows to inf */
    uint32_t xb = sg_f32_bits(x);
    uint32_t nan = 0u - (uint32_t)((xb & 0x7fffffffu) > 0x7f800000u);
    int32_t key = sg_float_key(x);
    key = key < lo ? lo : key;
    key = key > hi ? hi : key;
    float k, y = sg_exp_poly(sg_key_float(key), &k);
    float scale = sg_bits_f32((uint32_t)((int32_t)k + 126) << 23); /* 2^(k-1) */
    uint32_t res = sg_f32_bits((2.0f * y) * scale);
    return sg_bits_f32((res & ~nan) | (xb & nan));
}

/* exp(x) for x <= 0 (max-shifted exponents; finite input): the same polynomial without the NaN
 * and overflow handling, for the hottest loops. x below -87.3 is clamped there (result
 * ~1.2e-38 rather than a denormal or 0). The clamp is an unsigned min on the bit pattern:
 * negative floats order by magnitude as unsigned integers; non-negative ones pass through. */
static inline float sg_expf_nonpos(float x)
{
    const uint32_t lo = 0xc2ae999au; /* -87.3f */
    uint32_t xb = sg_f32_bits(x);
    xb = xb < lo ? xb : lo;
    float k, y = sg_exp_poly(sg_bits_f32(xb), &k);
    return y * sg_bits_f32((uint32_t)((int32_t)k + 127) << 23); /* y 2^k, k in [-126, 0] */
}

static inline int sg_pointwise_threads(const struct sg_ctx *c, int64_t n)
{
    return n >= 32768 && c->nthreads > 1 ? c->nthreads : 1;
}

#endif
