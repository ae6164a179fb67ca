/*
 * ops/attention.h — multi-head scaled dot-product attention core (llm.c's attention_forward /
 * attention_backward), forward and backward. The input and output projections of
 * nn.MultiheadAttention are separate linear ops (ops/matmul.h).
 *
 * Layouts:
 *   qkv(B,T,3C): the in_proj output, [q | k | v] along the last dim (torch's
 *     `q, k, v = qkv.split(C, dim=-1)`); head h uses channels h*hs .. h*hs+hs-1 of each part,
 *     hs = C/NH.
 *   att(B,NH,T,T): softmax probabilities, filled by forward and read by backward. With
 *     causal != 0 the entries key j > query i are exactly 0.
 *   out(B,T,C): heads concatenated along C (torch's y.transpose(1,2).reshape(B,T,C)).
 *
 * forward:  for each (b,h):  att = softmax(q k^T / sqrt(hs) [+ mask: -inf where j > i])
 *                            out[:, h*hs:(h+1)*hs] = att @ v
 *   torch: q,k,v -> (B,NH,T,hs); att = (q @ k.transpose(-2,-1) * hs**-0.5)
 *          .masked_fill(causal_mask, -inf).softmax(-1); y = att @ v
 *   (what F.multi_head_attention_forward computes between its projections, open_clip's
 *   nn.MultiheadAttention on CPU; the text tower's causal mask is the -inf upper triangle).
 * backward: dqkv(B,T,3C) = d(q|k|v), OVERWRITTEN (activation gradient); all of it is written.
 *   scratch: B*NH*T*T floats of workspace (the size of att), contents undefined afterwards; it
 *   must not alias any other argument. A model can share one scratch buffer across layers.
 *
 * Requirements: C % NH == 0, T >= 1.
 */
#ifndef SG_ATTENTION_H
#define SG_ATTENTION_H

#include "core/ctx.h"

void op_attention_forward(struct sg_ctx *c, float *out, float *att, const float *qkv, int B, int T,
                          int C, int NH, int causal);
void op_attention_backward(struct sg_ctx *c, float *dqkv, float *scratch, const float *dout,
                           const float *qkv, const float *att, int B, int T, int C, int NH,
                           int causal);

/* The reference needs no scratch (it accumulates in double). */
void attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                           int causal);
void attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                            int B, int T, int C, int NH, int causal);

void attention_forward_cpu(struct sg_ctx *c, float *out, float *att, const float *qkv, int B, int T,
                           int C, int NH, int causal);
void attention_backward_cpu(struct sg_ctx *c, float *dqkv, float *scratch, const float *dout,
                            const float *qkv, const float *att, int B, int T, int C, int NH,
                            int causal);

#ifdef SG_CUDA
/* ops/cuda/attention.cu: same contract (scratch: B*NH*T*T floats, holds datt/ds); GEMM compute
 * precision from c->precision. */
void attention_forward_cuda(struct sg_ctx *c, float *out, float *att, const float *qkv, int B,
                            int T, int C, int NH, int causal);
void attention_backward_cuda(struct sg_ctx *c, float *dqkv, float *scratch, const float *dout,
                             const float *qkv, const float *att, int B, int T, int C, int NH,
                             int causal);
#endif

#endif
