/*
 * ops/loss.h — softmax cross-entropy over the rows of a logit matrix, forward and backward.
 *
 * cross_entropy = torch.nn.functional.cross_entropy(logits, targets, reduction='mean',
 *                                                   label_smoothing=ls)
 *   logits(N,V) fp32 (N, V >= 1), targets int32 (N) with 0 <= targets[n] < V, 0 <= ls <= 1.
 *   With lse_n = log sum_j exp(logits[n,j]) (max-shifted: overflow-free for any finite logits)
 *   and q_n = (1-ls) * onehot(targets[n]) + ls/V (the smoothed target distribution):
 *     losses[n] = -sum_j q_n[j] * log_softmax(logits)[n,j]
 *               = lse_n - (1-ls) * logits[n,targets[n]] - (ls/V) * sum_j logits[n,j]
 *     return value: mean_n losses[n]   (summed in double, in row order: deterministic)
 *   forward fills, when non-NULL, losses(N) (per-row losses, e.g. for logging) and
 *   probs(N,V) = softmax(logits), the buffer backward needs (NULL for evaluation only).
 *   targets NULL means targets[n] = n (requires N <= V): the CLIP InfoNCE case, where
 *   logits(B,B) = scale * img(B,D) @ txt(B,D)^T and the positive of image i is caption i. The
 *   text->image direction is the same op on the transposed logits; CLIP's loss is the mean of
 *   the two, i.e. dloss = 0.5 for each direction.
 *   A target outside [0, V) is a programmer error (SG_CHECK). No ignore_index, no class weights.
 * backward: dlogits(N,V) = dloss/N * (probs - q)   (overwrite; an activation gradient)
 *   dloss is dL/d(mean loss) (1 for a plain training loss). probs and targets/ls must be those
 *   of the forward call.
 */
#ifndef SG_LOSS_H
#define SG_LOSS_H

#include <stdint.h>

#include "core/ctx.h"

float op_cross_entropy_forward(struct sg_ctx *c, float *losses, float *probs, const float *logits,
                               const int32_t *targets, int N, int V, float label_smoothing);
void op_cross_entropy_backward(struct sg_ctx *c, float *dlogits, const float *probs,
                               const int32_t *targets, int N, int V, float dloss,
                               float label_smoothing);

float cross_entropy_forward_ref(float *losses, float *probs, const float *logits,
                                const int32_t *targets, int N, int V, float label_smoothing);
void cross_entropy_backward_ref(float *dlogits, const float *probs, const int32_t *targets, int N,
                                int V, float dloss, float label_smoothing);

float cross_entropy_forward_cpu(struct sg_ctx *c, float *losses, float *probs, const float *logits,
                                const int32_t *targets, int N, int V, float label_smoothing);
void cross_entropy_backward_cpu(struct sg_ctx *c, float *dlogits, const float *probs,
                                const int32_t *targets, int N, int V, float dloss,
                                float label_smoothing);

#ifdef SG_CUDA
/* CUDA forward synchronises once (it returns the mean loss on the host); targets are device
 * int32. See ops/cuda/loss.cu. */
float cross_entropy_forward_cuda(struct sg_ctx *c, float *losses, float *probs, const float *logits,
                                 const int32_t *targets, int N, int V, float label_smoothing);
void cross_entropy_backward_cuda(struct sg_ctx *c, float *dlogits, const float *probs,
                                 const int32_t *targets, int N, int V, float dloss,
                                 float label_smoothing);
#endif

#endif
