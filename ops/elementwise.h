/*
 * ops/elementwise.h — residual add, accumulate, row L2 normalisation and dropout, forward and
 * backward.
 *
 * add (out = a + b, the residual connection), n elements:
 *   forward: out = a + b                      (out may alias a or b)
 *   backward: da += dout, db += dout           (ACCUMULATE into both branches, the residual
 *                                               contract of ops/ops.h; NULL skips; da/db must
 *                                               not alias dout)
 * accumulate: dst += src (n elements; gradient fan-in).
 *
 * l2norm (torch.nn.functional.normalize(x, p=2, dim=-1, eps)) on rows of inp(N,D):
 *   norm[i] = ||inp[i]||_2 (saved for backward), out[i] = inp[i] / max(norm[i], eps)
 *   backward (dinp overwrite; may alias dout), from forward's out and norm:
 *     norm >= eps: dinp = (dout - out * <dout, out>) / norm
 *     norm <  eps: dinp = dout / eps             (clamp_min passes no gradient to the norm)
 *
 * dropout (torch.nn.functional.dropout(x, p, training=True)), n elements, 0 <= p <= 1:
 *   forward: mask[i] = sg_rng_float(rng) < 1 - p  (1 = keep; one draw per element, in order;
 *            p == 0 and p == 1 draw nothing), out = inp * mask / (1 - p)  (0 where p == 1).
 *            The mask is a deterministic function of the rng state, not torch's bernoulli_
 *            stream. out may alias inp.
 *   apply:   out = inp * mask / (1 - p) for a given mask (replays a mask; the test's bridge to
 *            a torch reference).
 *   backward: dinp = dout * mask / (1 - p)      (overwrite; may alias dout)
 */
#ifndef SG_ELEMENTWISE_H
#define SG_ELEMENTWISE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/ctx.h"
#include "core/rng.h"
#include "ops/vmath.h"

void op_add_forward(struct sg_ctx *c, float *out, const float *a, const float *b, int64_t n);
void op_add_backward(struct sg_ctx *c, float *da, float *db, const float *dout, int64_t n);
void op_accumulate(struct sg_ctx *c, float *dst, const float *src, int64_t n);
void op_l2norm_forward(struct sg_ctx *c, float *out, float *norm, const float *inp, int N, int D,
                       float eps);
void op_l2norm_backward(struct sg_ctx *c, float *dinp, const float *dout, const float *out,
                        const float *norm, int N, int D, float eps);
void op_dropout_forward(struct sg_ctx *c, float *out, uint8_t *mask, const float *inp, int64_t n,
                        float p, struct sg_rng *rng);
void op_dropout_apply(struct sg_ctx *c, float *out, const uint8_t *mask, const float *inp,
                      int64_t n, float p);
void op_dropout_backward(struct sg_ctx *c, float *dinp, const float *dout, const uint8_t *mask,
                         int64_t n, float p);

void add_forward_ref(float *out, const float *a, const float *b, int64_t n);
void add_backward_ref(float *da, float *db, const float *dout, int64_t n);
void accumulate_ref(float *dst, const float *src, int64_t n);
void l2norm_forward_ref(float *out, float *norm, const float *inp, int N, int D, float eps);
void l2norm_backward_ref(float *dinp, const float *dout, const float *out, const float *norm, int N,
                         int D, float eps);
void dropout_forward_ref(float *out, uint8_t *mask, const float *inp, int64_t n, float p,
                         struct sg_rng *rng);
void dropout_apply_ref(float *out, const uint8_t *mask, const float *inp, int64_t n, float p);
void dropout_backward_ref(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p);

void add_forward_cpu(struct sg_ctx *c, float *out, const float *a, const float *b, int64_t n);
void add_backward_cpu(struct sg_ctx *c, float *da, float *db, const float *dout, int64_t n);
void accumulate_cpu(struct sg_ctx *c, float *dst, const float *src, int64_t n);
void l2norm_forward_cpu(struct sg_ctx *c, float *out, float *norm, const float *inp, int N, int D,
                        float eps);
void l2norm_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, const float *out,
                         const float *norm, int N, int D, float eps);
void dropout_forward_cpu(struct sg_ctx *c, float *out, uint8_t *mask, const float *inp, int64_t n,
                         float p, struct sg_rng *rng);
void dropout_apply_cpu(struct sg_ctx *c, float *out, const uint8_t *mask, const float *inp,
                       int64_t n, float p);
void dropout_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, const uint8_t *mask,
                          int64_t n, float p);

#ifdef SG_CUDA
/* Dropout on CUDA: the mask comes from a counter-based hash of one sg_rng_u64 draw per call
 * (ops/cuda/elementwise.cu), not from the CPU's mt19937 stream; apply/backward are exact. */
void add_forward_cuda(struct sg_ctx *c, float *out, const float *a, const float *b, int64_t n);
void add_backward_cuda(struct sg_ctx *c, float *da, float *db, const float *dout, int64_t n);
void accumulate_cuda(struct sg_ctx *c, float *dst, const float *src, int64_t n);
void l2norm_forward_cuda(struct sg_ctx *c, float *out, float *norm, const float *inp, int N, int D,
                         float eps);
void l2norm_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout, const float *out,
                          const float *norm, int N, int D, float eps);
void dropout_forward_cuda(struct sg_ctx *c, float *out, uint8_t *mask, const float *inp, int64_t n,
                          float p, struct sg_rng *rng);
void dropout_apply_cuda(struct sg_ctx *c, float *out, const uint8_t *mask, const float *inp,
                        int64_t n, float p);
void dropout_backward_cuda(struct sg_ctx *c, float *dinp, const float *dout, const uint8_t *mask,
                           int64_t n, float p);
#endif

#endif
