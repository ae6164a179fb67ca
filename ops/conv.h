/*
 * ops/conv.h — 2-D convolution (torch.nn.functional.conv2d with dilation 1), forward and
 * backward, NCHW.
 *
 * Shapes (struct sg_conv2d_shape, filled by sg_conv2d_shape_init):
 *   inp(B,C,H,W), w(OC, C/groups, KH, KW), b(OC), out(B,OC,OH,OW) with
 *   OH = (H + 2*pad_h - KH) / stride_h + 1,  OW = (W + 2*pad_w - KW) / stride_w + 1
 *   (floor division, torch's formula). Zero padding. C and OC must be divisible by groups;
 *   output channel oc belongs to group g = oc / (OC/groups) and sees input channels
 *   [g*C/groups, (g+1)*C/groups).
 *
 * forward:  out[b,oc,oh,ow] = bias[oc] + sum_{ci,kh,kw} inp[b, g*Cg+ci, oh*sh-ph+kh, ow*sw-pw+kw]
 *                                                     * w[oc,ci,kh,kw]       (bias may be NULL)
 * backward: dinp (B,C,H,W)       = d(sum out*dout)/d inp     OVERWRITE; NULL to skip
 *           dw   (OC,C/g,KH,KW) += d(sum out*dout)/d w       ACCUMULATE; NULL to skip
 *           db   (OC)           += sum_{b,oh,ow} dout        ACCUMULATE; NULL to skip
 *   backward needs only forward's inputs (inp, w), nothing saved.
 *
 * Paths: conv2d_*_ref (direct loops with double accumulation; the spec), conv2d_*_dnnl (oneDNN
 * convolution primitives, cached per shape in the context), conv2d_*_im2col (im2col + sg_gemm),
 * conv2d_*_cpu (the fast path: per direction whichever of the two measured faster for that kind
 * of shape; the table and the rule are in conv.c). op_conv2d_* dispatch on ctx->dev.
 * The fast paths take their buffers from one scratch per context that grows to the largest
 * convolution's need (allocated on first use, freed with the context): no allocation in the
 * steady-state step loop, and no two convolutions running concurrently on one context.
 */
#ifndef SG_CONV_H
#define SG_CONV_H

#include "core/ctx.h"

struct sg_conv2d_shape {
    int B, C, H, W;         /* input */
    int OC, KH, KW;         /* weights (OC, C/groups, KH, KW) */
    int stride_h, stride_w; /* >= 1 */
    int pad_h, pad_w;       /* zero padding on both sides, >= 0 */
    int groups;             /* divides C and OC; groups == C == OC is depthwise */
    int OH, OW;             /* output spatial size, from the formula above */
};

/* Fills s with square stride/padding and computes OH/OW; panics on an invalid shape. For
 * non-square stride or padding fill the struct by hand and call sg_conv2d_shape_finish. */
void sg_conv2d_shape_init(struct sg_conv2d_shape *s, int B, int C, int H, int W, int OC, int KH,
                          int KW, int stride, int pad, int groups);
/* Computes OH/OW from the other fields and checks them; panics on an invalid shape. */
void sg_conv2d_shape_finish(struct sg_conv2d_shape *s);

void op_conv2d_forward(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                       const float *inp, const float *w, const float *b);
void op_conv2d_backward(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp, float *dw,
                        float *db, const float *dout, const float *inp, const float *w);

void conv2d_forward_ref(const struct sg_conv2d_shape *s, float *out, const float *inp,
                        const float *w, const float *b);
void conv2d_backward_ref(const struct sg_conv2d_shape *s, float *dinp, float *dw, float *db,
                         const float *dout, const float *inp, const float *w);

void conv2d_forward_cpu(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                        const float *inp, const float *w, const float *b);
void conv2d_backward_cpu(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp, float *dw,
                         float *db, const float *dout, const float *inp, const float *w);

void conv2d_forward_dnnl(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                         const float *inp, const float *w, const float *b);
void conv2d_backward_dnnl(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp, float *dw,
                          float *db, const float *dout, const float *inp, const float *w);
/* batched im2row + one GEMM per group over all images (outputs of a few pixels per image) */
void conv2d_forward_rows(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                         const float *inp, const float *w, const float *b);
void conv2d_backward_rows(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp, float *dw,
                          float *db, const float *dout, const float *inp, const float *w);
void conv2d_forward_im2col(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                           const float *inp, const float *w, const float *b);
void conv2d_backward_im2col(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp,
                            float *dw, float *db, const float *dout, const float *inp,
                            const float *w);

#ifdef SG_CUDA
/* ops/cuda/cudnn.cu: cuDNN legacy convolution API, descriptors and algorithms cached per shape;
 * fp32 math (no TF32) under SG_PREC_FP32, tensor cores (TF32) under SG_PREC_BF16. */
void conv2d_forward_cuda(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                         const float *inp, const float *w, const float *b);
void conv2d_backward_cuda(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp, float *dw,
                          float *db, const float *dout, const float *inp, const float *w);
#endif

#endif
