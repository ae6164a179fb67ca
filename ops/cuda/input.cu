/*
 * ops/cuda/input.cu — uint8 -> normalised float on the GPU (ops/input.h):
 *   out[i, ch, p] = ((float)in[i, ch, p] / 255 - mean[ch]) / std[ch],  in/out (N, 3, HW).
 * PyTorch: torchvision ToTensor() + Normalize(mean, std).
 *
 * The arithmetic uses the _rn intrinsics (IEEE division and subtraction, never contracted or
 * approximated whatever the compile flags), so every value equals the CPU's float expression
 * bit for bit (data/transforms.c's table, ops/input.c).
 * Memory-bound: when HW is a multiple of 4 and the pointers are aligned, one thread converts 4
 * pixels of one plane (a 4-byte load, a 16-byte store); otherwise one pixel per thread.
 * Grid-stride loops, launched on the context's stream; no synchronisation.
 */
#include "ops/cuda/common.cuh"

extern "C" {
#include "ops/input.h"
}

struct norm3 {
    float mean[3], std[3];
};

__device__ __forceinline__ float norm_px(unsigned int x, float mean, float std)
{
    return __fdiv_rn(__fsub_rn(__fdiv_rn((float)x, 255.0f), mean), std);
}

/* One pixel per thread; total = N * 3 * HW. */
__global__ void normalize_u8_kernel(float *out, const uint8_t *in, int64_t total, int64_t HW,
                                    norm3 k)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int ch = (int)((i / HW) % 3);
        out[i] = norm_px(in[i], k.mean[ch], k.std[ch]);
    }
}

/* Four pixels of one plane per thread (HW % 4 == 0, in 4-byte and out 16-byte aligned);
 * total4 = N * 3 * HW / 4, HW4 = HW / 4. */
__global__ void normalize_u8x4_kernel(float4 *out, const uchar4 *in, int64_t total4, int64_t HW4,
                                      norm3 k)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total4; i += stride) {
        int ch = (int)((i / HW4) % 3);
        float m = k.mean[ch], s = k.std[ch];
        uchar4 v = in[i];
        out[i] = make_float4(norm_px(v.x, m, s), norm_px(v.y, m, s), norm_px(v.z, m, s),
                             norm_px(v.w, m, s));
    }
}

extern "C" void normalize_u8_cuda(struct sg_ctx *c, float *out, const uint8_t *in, int64_t N,
                                  int64_t HW, const float mean[3], const float std[3])
{
    struct sg_cuda *s = sg_cuda_get(c);
    int64_t total = N * 3 * HW;
    if (total == 0) return;
    norm3 k;
    for (int ch = 0; ch < 3; ch++) k.mean[ch] = mean[ch], k.std[ch] = std[ch];
    const int threads = 256;
    int64_t max_blocks = (int64_t)s->num_sms * 8;
    int vec = HW % 4 == 0 && ((uintptr_t)in % 4) == 0 && ((uintptr_t)out % 16) == 0;
    if (vec) {
        int64_t total4 = total / 4;
        int blocks = (int)SG_MIN(CEIL_DIV(total4, (int64_t)threads), max_blocks);
        normalize_u8x4_kernel<<<blocks, threads, 0, s->stream>>>((float4 *)out, (const uchar4 *)in,
                                                                 total4, HW / 4, k);
    } else {
        int blocks = (int)SG_MIN(CEIL_DIV(total, (int64_t)threads), max_blocks);
        normalize_u8_kernel<<<blocks, threads, 0, s->stream>>>(out, in, total, HW, k);
    }
    CUDA_CHECK(cudaGetLastError());
}
