/* core/rng.c — torch-identical mt19937; see rng.h. */
#include "core/rng.h"

#include <math.h>

#define MT_M     397
#define UMASK    0x80000000u
#define LMASK    0x7fffffffu
#define MATRIX_A 0x9908b0dfu

void sg_rng_seed(struct sg_rng *r, uint64_t seed)
{
    r->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < SG_MT_N; j++)
        r->state[j] = 1812433253u * (r->state[j - 1] ^ (r->state[j - 1] >> 30)) + j;
    r->left = 1;
    r->next = 0;
    r->has_next_normal = 0;
    r->next_normal = 0.0;
}

static uint32_t mix(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t y = (a & UMASK) | (b & LMASK);
    return c ^ (y >> 1) ^ ((y & 1u) ? MATRIX_A : 0u);
}

static void next_state(struct sg_rng *r)
{
    uint32_t *s = r->state;
    int j;
    r->left = SG_MT_N;
    r->next = 0;
    for (j = 0; j < SG_MT_N - MT_M; j++) s[j] = mix(s[j], s[j + 1], s[j + MT_M]);
    for (; j < SG_MT_N - 1; j++) s[j] = mix(s[j], s[j + 1], s[j + MT_M - SG_MT_N]);
    s[SG_MT_N - 1] = mix(s[SG_MT_N - 1], s[0], s[MT_M - 1]);
}

uint32_t sg_rng_u32(struct sg_rng *r)
{
    if (--r->left <= 0) next_state(r);
    uint32_t y = r->state[r->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t sg_rng_u64(struct sg_rng *r)
{
    uint64_t hi = sg_rng_u32(r); /* torch: make64BitsFrom32Bits(first, second) */
    uint64_t lo = sg_rng_u32(r);
    return (hi << 32) | lo;
}

float sg_rng_float(struct sg_rng *r)
{
    return (float)(sg_rng_u32(r) & ((1u << 24) - 1)) * (1.0f / (float)(1u << 24));
}

double sg_rng_double(struct sg_rng *r)
{
    return (double)(sg_rng_u64(r) & ((1ull << 53) - 1)) * (1.0 / (double)(1ull << 53));
}

void sg_rng_uniform(struct sg_rng *r, float *x, int64_t n, float from, float to)
{
    /* fused as torch's AVX2 build (and GCC at -O2/-O3) computes it: same bits in every build type
     */
    for (int64_t i = 0; i < n; i++) x[i] = fmaf(sg_rng_float(r), to - from, from);
}

/* torch normal_fill_16: data[0..15] holds uniforms; pairs (j, j+8) become two normals. */
static void normal_fill_16(float *d, float mean, float std)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        double theta = 2.0 * M_PI * (double)u2;
        d[j] = (float)((double)radius * cos(theta) * std + mean);
        d[j + 8] = (float)((double)radius * sin(theta) * std + mean);
    }
}

static double normal_double(struct sg_rng *r)
{
    if (r->has_next_normal) {
        r->has_next_normal = 0;
        return r->next_normal;
    }
    double u1 = sg_rng_double(r);
    double u2 = sg_rng_double(r);
    double radius = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * M_PI * u1;
    r->next_normal = radius * sin(theta);
    r->has_next_normal = 1;
    return radius * cos(theta);
}

void sg_rng_normal(struct sg_rng *r, float *x, int64_t n, float mean, float std)
{
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) x[i] = (float)(normal_double(r) * std + mean);
        return;
    }
    for (int64_t i = 0; i < n; i++) x[i] = sg_rng_float(r);
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(x + i, mean, std);
    if (n % 16 != 0) {
        float *tail = x + n - 16; /* torch recomputes the last 16 values from fresh uniforms */
        for (int i = 0; i < 16; i++) tail[i] = sg_rng_float(r);
        normal_fill_16(tail, mean, std);
    }
}

void sg_rng_shuffle(struct sg_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(sg_rng_u64(r) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
