/*
 * ops/pool.h — 2-D pooling on NCHW images, forward and backward (ceil_mode=False, dilation 1).
 *
 * Window shape (struct sg_pool2d_shape, filled by sg_pool2d_shape_init):
 *   inp(B,C,H,W) -> out(B,C,OH,OW),  OH = (H + 2*pad_h - KH) / stride_h + 1  (floor; same for W).
 *   pad <= kernel/2 (torch's rule); the window of (oh,ow) starts at (oh*stride_h - pad_h,
 *   ow*stride_w - pad_w). KW <= SG_POOL_MAX_KW (64).
 *
 * maxpool2d (torch.nn.functional.max_pool2d(..., return_indices=True)):
 *   out = max over the window, padding counts as -inf (never selected); NaN propagates.
 *   argmax(B,C,OH,OW) int32 = ih*W + iw, the index of the max inside its (H,W) plane, exactly
 *   torch's `indices` (ties: the first in row-major window order). Forward fills it for backward.
 *   backward: dinp = 0, then dinp[plane][argmax] += dout   (OVERWRITE; overlapping windows sum).
 * avgpool2d (torch.nn.functional.avg_pool2d, count_include_pad=True, no divisor_override):
 *   out = (sum of the in-bounds window values) / (KH*KW);  backward spreads dout/(KH*KW) over
 *   the in-bounds window (dinp OVERWRITE).
 * adaptive_avgpool2d (torch.nn.functional.adaptive_avg_pool2d(inp, (OH, OW))):
 *   rows [floor(oh*H/OH), ceil((oh+1)*H/OH)), same for columns; out = mean over that window;
 *   backward spreads dout/count (dinp OVERWRITE). OH = OW = 1 is the global average pool.
 *
 * Paths: *_ref (plain loops, double accumulation: the spec), *_cpu (OpenMP over planes,
 * vectorisable inner loops; see pool.c for the oneDNN comparison), *_cuda (ops/cuda/pool.cu:
 * deterministic gather backward; argmax is a device buffer), op_* dispatch on ctx->dev.
 */
#ifndef SG_POOL_H
#define SG_POOL_H

#include <stdint.h>

#include "core/ctx.h"

#define SG_POOL_MAX_KW 64 /* widest window the fast paths handle */

struct sg_pool2d_shape {
    int B, C, H, W;         /* input */
    int KH, KW;             /* window */
    int stride_h, stride_w; /* >= 1 */
    int pad_h, pad_w;       /* 0 <= pad <= kernel/2 */
    int OH, OW;             /* output, from the formula above */
};

/* Square window/stride/padding; computes OH/OW; panics on an invalid shape. For non-square
 * windows fill the struct by hand and call sg_pool2d_shape_finish. */
void sg_pool2d_shape_init(struct sg_pool2d_shape *s, int B, int C, int H, int W, int kernel,
                          int stride, int pad);
void sg_pool2d_shape_finish(struct sg_pool2d_shape *s);

void op_maxpool2d_forward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                          int32_t *argmax, const float *inp);
void op_maxpool2d_backward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                           const float *dout, const int32_t *argmax);
void op_avgpool2d_forward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                          const float *inp);
void op_avgpool2d_backward(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                           const float *dout);
void op_adaptive_avgpool2d_forward(struct sg_ctx *c, float *out, const float *inp, int B, int C,
                                   int H, int W, int OH, int OW);
void op_adaptive_avgpool2d_backward(struct sg_ctx *c, float *dinp, const float *dout, int B, int C,
                                    int H, int W, int OH, int OW);

void maxpool2d_forward_ref(const struct sg_pool2d_shape *s, float *out, int32_t *argmax,
                           const float *inp);
void maxpool2d_backward_ref(const struct sg_pool2d_shape *s, float *dinp, const float *dout,
                            const int32_t *argmax);
void avgpool2d_forward_ref(const struct sg_pool2d_shape *s, float *out, const float *inp);
void avgpool2d_backward_ref(const struct sg_pool2d_shape *s, float *dinp, const float *dout);
void adaptive_avgpool2d_forward_ref(float *out, const float *inp, int B, int C, int H, int W,
                                    int OH, int OW);
void adaptive_avgpool2d_backward_ref(float *dinp, const float *dout, int B, int C, int H, int W,
                                     int OH, int OW);

void maxpool2d_forward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                           int32_t *argmax, const float *inp);
void maxpool2d_backward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                            const float *dout, const int32_t *argmax);
void avgpool2d_forward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                           const float *inp);
void avgpool2d_backward_cpu(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                            const float *dout);
void adaptive_avgpool2d_forward_cpu(struct sg_ctx *c, float *out, const float *inp, int B, int C,
                                    int H, int W, int OH, int OW);
void adaptive_avgpool2d_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, int B, int C,
                                     int H, int W, int OH, int OW);

#ifdef SG_CUDA
void maxpool2d_forward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                            int32_t *argmax, const float *inp);
void maxpool2d_backward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                             const float *dout, const int32_t *argmax);
void avgpool2d_forward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *out,
                            const float *inp);
void avgpool2d_backward_cuda(struct sg_ctx *c, const struct sg_pool2d_shape *s, float *dinp,
                             const float *dout);
void adaptive_avgpool2d_forward_cuda(struct sg_ctx *c, float *out, const float *inp, int B, int C,
                                     int H, int W, int OH, int OW);
void adaptive_avgpool2d_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout, int B,
                                      int C, int H, int W, int OH, int OW);
#endif

#endif
