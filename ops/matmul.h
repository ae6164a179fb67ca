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
 *
 * On CUDA with ctx->precision == SG_PREC_BF16 every product above runs as open_clip's amp_bf16:
 * operands rounded to bf16 (round to nearest even), fp32 accumulation, fp32 outputs; the bias
 * and db stay fp32. All buffers stay fp32 in memory (ops/cuda/matmul.cu). The CPU always
 * computes in fp32.
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
/* dst[i] = bf16(src[i]) (round to nearest even; dst holds bf16 bit patterns), i < n, device
 * pointers, launched on the context's stream. 16-byte loads and stores when both pointers are
 * 16-byte aligned (a scalar kernel otherwise and for the n % 8 tail). */
void sg_cuda_f32_to_bf16(struct sg_ctx *c, uint16_t *dst, const float *src, int64_t n);
#endif

#endif
