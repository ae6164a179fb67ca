/*
 * ops/gemm.h — single-precision GEMM on the host, row-major:
 *   C(M,N) = alpha * op(A)(M,K) @ op(B)(K,N) + beta * C,   op(X) = X or X^T.
 * Backed by oneDNN's dnnl_sgemm (dispatches on ISA; measured ~6x Debian's OpenBLAS on this CPU
 * out of the box, DESIGN.md). sg_gemm_ref is the triple loop used as the oracle in tests.
 * lda/ldb/ldc are row strides of the stored (untransposed) matrices, as in cblas row-major.
 */
#ifndef SG_GEMM_H
#define SG_GEMM_H

#include <stdint.h>

void sg_gemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
             int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void sg_gemm_ref(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                 int64_t ldc);

#endif
