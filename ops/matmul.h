/*
 * ops/matmul.h — linear layers and (batched) matrix products, forward and backward.
 *
 * linear (torch.nn.functional.linear):
 *   out(N,OC) = inp(N,C) @ w(OC,C)^T + b(OC)            b may be NULL
 *   backward: dinp(N,C)  = dout @ w        (overwrite; NULL to skip)
 *             dw(OC,C)  += dout^T @ inp    (accumulate; NULL to skip)
 *             db(OC)    += sum_n dout      (accumulate; NULL to skip)
 * matmul (torch.matmul on 3-D tensors, batch of `batch` independent products):
 *   out(batch,M,N) = a(batch,M,K) @ b(batch,K,N)
 *   backward: da = dout @ b^T (overwrite), db = a^T @ dout (overwrite); NULL to skip.
 */
#ifndef SG_MATMUL_H
#define SG_MATMUL_H

#include <stdint.h>

#include "core/ctx.h"

void op_linear_forward(struct sg_ctx *c, float *out, const float *inp, const float *w,
                       const float *b, int N, int C, int OC);
void op_linear_backward(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC);
void op_matmul_forward(struct sg_ctx *c, float *out, const float *a, const float *b, int batch,
                       int M, int K, int N);
void op_matmul_backward(struct sg_ctx *c, float *da, float *db, const float *dout, const float *a,
                        const float *b, int batch, int M, int K, int N);

void linear_forward_ref(float *out, const float *inp, const float *w, const float *b, int N, int C,
                        int OC);
void linear_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                         const float *w, int N, int C, int OC);
void matmul_forward_ref(float *out, const float *a, const float *b, int batch, int M, int K, int N);
void matmul_backward_ref(float *da, float *db, const float *dout, const float *a, const float *b,
                         int batch, int M, int K, int N);

void linear_forward_cpu(struct sg_ctx *c, float *out, const float *inp, const float *w,
                        const float *b, int N, int C, int OC);
void linear_backward_cpu(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC);
void matmul_forward_cpu(struct sg_ctx *c, float *out, const float *a, const float *b, int batch,
                        int M, int K, int N);
void matmul_backward_cpu(struct sg_ctx *c, float *da, float *db, const float *dout, const float *a,
                         const float *b, int batch, int M, int K, int N);

#ifdef SG_CUDA
void linear_forward_cuda(struct sg_ctx *c, float *out, const float *inp, const float *w,
                         const float *b, int N, int C, int OC);
void linear_backward_cuda(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, int N, int C, int OC);
void matmul_forward_cuda(struct sg_ctx *c, float *out, const float *a, const float *b, int batch,
                         int M, int K, int N);
void matmul_backward_cuda(struct sg_ctx *c, float *da, float *db, const float *dout, const float *a,
                          const float *b, int batch, int M, int K, int N);
#endif

#endif
