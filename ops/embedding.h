/*
 * ops/embedding.h — token embedding lookup (torch.nn.Embedding / F.embedding), forward and
 * backward. Used for the text encoder's token table (V = 49408, C = 512 for CLIP).
 *
 * forward:  out(N,C)[n,:] = table(V,C)[ids[n],:]          ids int32 (N)
 *   Every id must lie in [0, V): an id outside is a programmer error (SG_CHECK reports the
 *   offending position and value and aborts); nothing is written in that case.
 * backward: dtable(V,C)[ids[n],:] += dout(N,C)[n,:]  for n = 0..N-1   (accumulate, like every
 *   parameter gradient; the caller zeroes dtable once per step). Dense semantics, as torch's
 *   default (sparse=False) backward. dtable NULL = skip. No padding_idx, no max_norm, no
 *   scale_grad_by_freq.
 *   Determinism: the fast path adds the contributions to each dtable row in increasing n, exactly
 *   like the reference loop, so its result is bit-identical to embedding_backward_ref for any
 *   thread count, with repeated ids and without atomics (see ops/embedding.c for the split).
 * The positional embedding of the text/vision encoders is a broadcast add (ops/elementwise.h).
 */
#ifndef SG_EMBEDDING_H
#define SG_EMBEDDING_H

#include <stdint.h>

#include "core/ctx.h"

void op_embedding_forward(struct sg_ctx *c, float *out, const int32_t *ids, const float *table,
                          int N, int V, int C);
void op_embedding_backward(struct sg_ctx *c, float *dtable, const float *dout, const int32_t *ids,
                           int N, int V, int C);

void embedding_forward_ref(float *out, const int32_t *ids, const float *table, int N, int V, int C);
void embedding_backward_ref(float *dtable, const float *dout, const int32_t *ids, int N, int V,
                            int C);

void embedding_forward_cpu(struct sg_ctx *c, float *out, const int32_t *ids, const float *table,
                           int N, int V, int C);
void embedding_backward_cpu(struct sg_ctx *c, float *dtable, const float *dout, const int32_t *ids,
                            int N, int V, int C);

#ifdef SG_CUDA
/* ids are device int32 here; see ops/cuda/embedding.cu for the deterministic backward. */
void embedding_forward_cuda(struct sg_ctx *c, float *out, const int32_t *ids, const float *table,
                            int N, int V, int C);
void embedding_backward_cuda(struct sg_ctx *c, float *dtable, const float *dout, const int32_t *ids,
                             int N, int V, int C);
#endif

#endif
