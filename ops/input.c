/*
 * ops/input.c — uint8 -> normalised float input op (see ops/input.h): reference loop, the
 * OpenMP CPU path and the device dispatcher.
 *
 * The CPU path evaluates the formula once per (channel, value) into a 256-entry table (the same
 * float expression, so the same bits) and looks pixels up, as data/transforms.c does.
 */
#include "ops/input.h"

#include "core/common.h"

static float norm1(uint8_t x, float mean, float std)
{
    return ((float)x / 255.0f - mean) / std;
}

void normalize_u8_ref(float *out, const uint8_t *in, int64_t N, int64_t HW, const float mean[3],
                      const float std[3])
{
    for (int64_t i = 0; i < N; i++)
        for (int ch = 0; ch < 3; ch++) {
            int64_t o = (i * 3 + ch) * HW;
            for (int64_t p = 0; p < HW; p++) out[o + p] = norm1(in[o + p], mean[ch], std[ch]);
        }
}

void normalize_u8_cpu(struct sg_ctx *c, float *out, const uint8_t *in, int64_t N, int64_t HW,
                      const float mean[3], const float std[3])
{
    SG_UNUSED(c);
    float lut[3][256];
    for (int ch = 0; ch < 3; ch++)
        for (int x = 0; x < 256; x++) lut[ch][x] = norm1((uint8_t)x, mean[ch], std[ch]);
    int64_t planes = N * 3;
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *t = lut[pl % 3];
        const uint8_t *src = in + pl * HW;
        float *dst = out + pl * HW;
        for (int64_t p = 0; p < HW; p++) dst[p] = t[src[p]];
    }
}

void op_normalize_u8(struct sg_ctx *c, float *out, const uint8_t *in, int64_t N, int64_t HW,
                     const float mean[3], const float std[3])
{
    SG_CHECK(out && in && mean && std && N >= 0 && HW >= 0, "normalize_u8: bad arguments");
    for (int ch = 0; ch < 3; ch++) SG_CHECK(std[ch] != 0.0f, "normalize_u8: std[%d] is 0", ch);
    switch (c->dev) {
    case SG_DEVICE_CPU:
        normalize_u8_cpu(c, out, in, N, HW, mean, std);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        normalize_u8_cuda(c, out, in, N, HW, mean, std);
        return;
#else
        SG_PANIC("op_normalize_u8: built without CUDA");
#endif
    }
    SG_PANIC("op_normalize_u8: unknown device %d", (int)c->dev);
}
