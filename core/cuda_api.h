/*
 * core/cuda_api.h — the plain-C boundary to the CUDA backend (implemented in ops/cuda/ctx.cu).
 * Only compiled in when SG_CUDA is defined; the rest of the C code never includes CUDA headers.
 */
#ifndef SG_CUDA_API_H
#define SG_CUDA_API_H

#include <stddef.h>

#include "core/ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

int sg_cuda_device_count(void);                        /* 0 when no driver/GPU */
int sg_cuda_ctx_init(struct sg_ctx *c, int device_id); /* -1 + sg_err on failure */
void sg_cuda_ctx_free(struct sg_ctx *c);
void *sg_cuda_alloc(struct sg_ctx *c, size_t bytes);
void sg_cuda_free(struct sg_ctx *c, void *p);
void sg_cuda_memcpy(struct sg_ctx *c, void *dst, const void *src, size_t bytes,
                    int kind); /* kind: 1 h2d, 2 d2h, 3 d2d */
void sg_cuda_memset_zero(struct sg_ctx *c, void *p, size_t bytes);
void sg_cuda_sync(struct sg_ctx *c);

#ifdef __cplusplus
}
#endif

#endif
