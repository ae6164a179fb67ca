/*
 * ops/input.h — the input op of the GPU data path: uint8 pixels -> normalised float.
 *
 *   normalize_u8: out[i, ch, p] = ((float)in[i, ch, p] / 255 - mean[ch]) / std[ch]
 *     in (N, 3, HW) uint8 planar (N images, e.g. B * views), out (N, 3, HW) float, every
 *     operation in IEEE float32 in that order (a division by 255, a subtraction, a division):
 *     exactly the value data/transforms.c's ToTensor + Normalize table holds, so the loader's
 *     uint8 output normalised here equals its float output bit for bit, on either device.
 * PyTorch: torchvision.transforms.ToTensor() then Normalize(mean, std) (which compute
 * x / 255 and (x - mean) / std in float32).
 * Pointers are on the context's device; mean and std are host arrays of 3 floats.
 */
#ifndef SG_OPS_INPUT_H
#define SG_OPS_INPUT_H

#include <stdint.h>

#include "core/ctx.h"

void op_normalize_u8(struct sg_ctx *c, float *out, const uint8_t *in, int64_t N, int64_t HW,
                     const float mean[3], const float std[3]);

void normalize_u8_ref(float *out, const uint8_t *in, int64_t N, int64_t HW, const float mean[3],
                      const float std[3]);
void normalize_u8_cpu(struct sg_ctx *c, float *out, const uint8_t *in, int64_t N, int64_t HW,
                      const float mean[3], const float std[3]);

#ifdef SG_CUDA
void normalize_u8_cuda(struct sg_ctx *c, float *out, const uint8_t *in, int64_t N, int64_t HW,
                       const float mean[3], const float std[3]);
#endif

#endif
