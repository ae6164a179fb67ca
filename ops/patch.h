/*
 * ops/patch.h — data-layout ops of the encoders: ViT patchify, token assembly (class token +
 * positional embedding), token gather/scatter (class-token / EOT pooling) and the NCHW -> token
 * layout of CLIP's attention pool. Pure data movement plus adds; they exist as ops (CPU and CUDA
 * behind the same signature) so that model code never touches device memory from the host.
 *
 * PyTorch equivalents (open_clip): conv1 with stride = kernel = p as unfold + linear;
 * torch.cat([class_embedding + 0, x]) + positional_embedding; x[arange(B), idx];
 * x.flatten(2).permute(0, 2, 1) with x.mean(1) prepended (AttentionPool2d).
 * Gradient contract as ops/ops.h: parameter grads (dcls, dpos) ACCUMULATE over the batch in
 * batch order b = 0..B-1 (bit-identical on CPU and GPU: one fixed summation order), activation
 * grads OVERWRITE, NULL skips.
 */
#ifndef SG_OPS_PATCH_H
#define SG_OPS_PATCH_H

#include <stdint.h>

#include "core/ctx.h"

/* img (B,Cin,S,S) -> patches (B*G*G, Cin*p*p), G = S/p; row b*G*G + gy*G + gx, column
 * (ch*p + ky)*p + kx (conv weight (OC,Cin,p,p) flattened). backward writes every pixel of dimg. */
void op_patchify_forward(struct sg_ctx *c, float *patches, const float *img, int B, int Cin, int S,
                         int p);
void op_patchify_backward(struct sg_ctx *c, float *dimg, const float *dpatches, int B, int Cin,
                          int S, int p);

/* x (B,T,C): with cls (C): x[b,0] = cls + pos[0], x[b,t] = emb[b,t-1] + pos[t] (emb (B,T-1,C));
 * without: x[b,t] = emb[b,t] + pos[t] (emb (B,T,C), may alias x). pos (>= T rows of C) may be
 * NULL (no positional term). */
void op_tokens_forward(struct sg_ctx *c, float *x, const float *cls, const float *emb,
                       const float *pos, int B, int T, int C);
/* dx (B,T,C) -> demb (overwrite; rows as emb above; may alias dx when has_cls == 0),
 * dcls += sum_b dx[b,0] (has_cls only), dpos[t] += sum_b dx[b,t]. */
void op_tokens_backward(struct sg_ctx *c, float *demb, float *dcls, float *dpos, const float *dx,
                        int has_cls, int B, int T, int C);

/* out (B,C) = x[b, idx[b], :]; idx (B) int32 on the context's device, or NULL for token 0. */
void op_gather_tokens_forward(struct sg_ctx *c, float *out, const float *x, const int32_t *idx,
                              int B, int T, int C);
/* dx (B,T,C) = 0 except dx[b, idx[b]] = dout[b] (overwrite). */
void op_gather_tokens_backward(struct sg_ctx *c, float *dx, const float *dout, const int32_t *idx,
                               int B, int T, int C);

/* tok (B,1+HW,C): tok[b,0,ch] = mean_i x[b,ch,i] (double sum in i order / HW, rounded),
 * tok[b,1+i,ch] = x[b,ch,i]. backward: dx[b,ch,i] = dtok[b,1+i,ch] + dtok[b,0,ch] / HW. */
void op_nchw_tokens_forward(struct sg_ctx *c, float *tok, const float *x, int B, int C, int HW);
void op_nchw_tokens_backward(struct sg_ctx *c, float *dx, const float *dtok, int B, int C, int HW);

#ifdef SG_CUDA
void patchify_forward_cuda(struct sg_ctx *c, float *patches, const float *img, int B, int Cin,
                           int S, int p);
void patchify_backward_cuda(struct sg_ctx *c, float *dimg, const float *dpatches, int B, int Cin,
                            int S, int p);
void tokens_forward_cuda(struct sg_ctx *c, float *x, const float *cls, const float *emb,
                         const float *pos, int B, int T, int C);
void tokens_backward_cuda(struct sg_ctx *c, float *demb, float *dcls, float *dpos, const float *dx,
                          int has_cls, int B, int T, int C);
void gather_tokens_forward_cuda(struct sg_ctx *c, float *out, const float *x, const int32_t *idx,
                                int B, int T, int C);
void gather_tokens_backward_cuda(struct sg_ctx *c, float *dx, const float *dout, const int32_t *idx,
                                 int B, int T, int C);
void nchw_tokens_forward_cuda(struct sg_ctx *c, float *tok, const float *x, int B, int C, int HW);
void nchw_tokens_backward_cuda(struct sg_ctx *c, float *dx, const float *dtok, int B, int C,
                               int HW);
#endif

#endif
