/*
 * ops/softmax.h — softmax over the last dim of inp(N,C) (torch.softmax(x, dim=-1)).
 *   forward:  out = exp(inp - rowmax) / sum_c exp(inp - rowmax)   (stable for any finite logits)
 *   backward: dinp = out * (dout - sum_c dout * out)               (overwrite; from forward's out)
 * out may alias inp; dinp may alias dout.
 */
#ifndef SG_SOFTMAX_H
#define SG_SOFTMAX_H

#include "core/ctx.h"

void op_softmax_forward(struct sg_ctx *c, float *out, const float *inp, int N, int C);
void op_softmax_backward(struct sg_ctx *c, float *dinp, const float *dout, const float *out, int N,
                         int C);

void softmax_forward_ref(float *out, const float *inp, int N, int C);
void softmax_backward_ref(float *dinp, const float *dout, const float *out, int N, int C);

void softmax_forward_cpu(struct sg_ctx *c, float *out, const float *inp, int N, int C);
void softmax_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, const float *out, int N,
                          int C);

#ifdef SG_CUDA
void softmax_forward_cuda(struct sg_ctx *c, float *out, const float *inp, int N, int C);
void softmax_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout, const float *out,
                           int N, int C);
#endif

#endif
