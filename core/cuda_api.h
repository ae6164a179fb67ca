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
/* cudaMemcpy2DAsync device to device on the compute stream (pitches and width in bytes). */
void sg_cuda_memcpy2d_d2d(struct sg_ctx *c, void *dst, size_t dpitch, const void *src,
                          size_t spitch, size_t width, size_t height);

/* ---- input pipeline helpers (the trainer's overlapped uploads) ------------------------------
 * Pinned (page-locked) host memory, a second stream for copies and events between the streams.
 * Streams and events are opaque handles (cudaStream_t / cudaEvent_t); a NULL stream argument
 * means the context's compute stream. Failures abort (CUDA_CHECK), as every device call. */
void *sg_cuda_host_alloc(struct sg_ctx *c, size_t bytes); /* cudaMallocHost */
void sg_cuda_host_free(struct sg_ctx *c, void *p);
void *sg_cuda_stream_new(struct sg_ctx *c); /* non-blocking stream on the context's device */
void sg_cuda_stream_free(struct sg_ctx *c, void *stream);
void *sg_cuda_event_new(struct sg_ctx *c); /* timing disabled (cheapest to record / wait) */
void sg_cuda_event_free(struct sg_ctx *c, void *event);
void sg_cuda_event_record(struct sg_ctx *c, void *event, void *stream);
/* Work queued on `stream` after this call waits for `event` (no host wait). */
void sg_cuda_stream_wait_event(struct sg_ctx *c, void *stream, void *event);
/* Host waits for the event (returns at once for an event never recorded). */
void sg_cuda_event_sync(struct sg_ctx *c, void *event);
/* cudaMemcpyAsync host -> device on `stream`; src should be pinned for a truly async copy and
 * must stay unchanged until the copy is done (record an event after it). */
void sg_cuda_memcpy_h2d_async(struct sg_ctx *c, void *dst, const void *src, size_t bytes,
                              void *stream);

#ifdef __cplusplus
}
#endif

#endif
