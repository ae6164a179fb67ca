/* core/tensor.c — see tensor.h. */
#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

static const char *const dtype_names[SG_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "I64", "U8"};
static const size_t dtype_sizes[SG_DTYPE_COUNT] = {4, 2, 2, 4, 8, 1};

size_t sg_dtype_size(enum sg_dtype t)
{
    return (unsigned)t < SG_DTYPE_COUNT ? dtype_sizes[t] : 0;
}
const char *sg_dtype_name(enum sg_dtype t)
{
    return (unsigned)t < SG_DTYPE_COUNT ? dtype_names[t] : "?";
}

int sg_dtype_parse(const char *s, size_t n, enum sg_dtype *out)
{
    for (int i = 0; i < SG_DTYPE_COUNT; i++) {
        if (strlen(dtype_names[i]) == n && memcmp(s, dtype_names[i], n) == 0) {
            *out = (enum sg_dtype)i;
            return 0;
        }
    }
    return -1;
}

int64_t sg_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

const char *sg_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float sg_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

uint16_t sg_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float sg_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        float v = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24 */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t sg_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;  /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* overflow (rounds to >= 65520) -> inf */
    if (a < 0x38800000u) {                       /* subnormal or zero in half */
        float v = bits_f32(a) * 16777216.0f;     /* scale by 2^24: value in half ulps */
        uint32_t r = (uint32_t)v;
        float frac = v - (float)r;
        if (frac > 0.5f || (frac == 0.5f && (r & 1u))) r++;
        return sign | (uint16_t)r;
    }
    uint32_t mant = a & 0x7fffffu;
    uint32_t exp = (a >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return sign | (uint16_t)h;
}
