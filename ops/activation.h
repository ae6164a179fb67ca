/*
 * ops/activation.h — pointwise activations, forward and backward, on n elements.
 *   RELU       max(x, 0)                                  (grad 0 at x == 0, as torch)
 *   GELU       x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))   (torch approximate='none')
 *   GELU_TANH  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (approximate='tanh')
 *   QUICKGELU  x * sigmoid(1.702 x)                        (OpenAI CLIP)
 * backward: dinp = dout * f'(inp), overwrite; dinp may alias dout (in place).
 * out may alias inp in forward.
 */
#ifndef SG_ACTIVATION_H
#define SG_ACTIVATION_H

#include <stdint.h>

#include "core/ctx.h"

enum sg_act { SG_ACT_RELU = 0, SG_ACT_GELU, SG_ACT_GELU_TANH, SG_ACT_QUICKGELU, SG_ACT_COUNT };

const char *sg_act_name(enum sg_act a);

void op_act_forward(struct sg_ctx *c, enum sg_act a, float *out, const float *inp, int64_t n);
void op_act_backward(struct sg_ctx *c, enum sg_act a, float *dinp, const float *dout,
                     const float *inp, int64_t n);

void act_forward_ref(enum sg_act a, float *out, const float *inp, int64_t n);
void act_backward_ref(enum sg_act a, float *dinp, const float *dout, const float *inp, int64_t n);
void act_forward_cpu(struct sg_ctx *c, enum sg_act a, float *out, const float *inp, int64_t n);
void act_backward_cpu(struct sg_ctx *c, enum sg_act a, float *dinp, const float *dout,
                      const float *inp, int64_t n);

#ifdef SG_CUDA
void act_forward_cuda(struct sg_ctx *c, enum sg_act a, float *out, const float *inp, int64_t n);
void act_backward_cuda(struct sg_ctx *c, enum sg_act a, float *dinp, const float *dout,
                       const float *inp, int64_t n);
#endif

#endif
