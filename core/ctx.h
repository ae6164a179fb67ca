/*
 * core/ctx.h — the execution context: which device runs the ops, and that device's handles.
 * There are no globals: every op takes a `struct sg_ctx *` (DESIGN.md 2.2).
 *
 * Memory goes through the five calls below so that model code is written once for both devices
 * (ggml's buffer interface, reduced to what we need). On DEVICE_CPU they are malloc/memcpy.
 */
#ifndef SG_CTX_H
#define SG_CTX_H

#include <stddef.h>

enum sg_device { SG_DEVICE_CPU = 0, SG_DEVICE_CUDA = 1 };

struct sg_cuda; /* streams, cuBLAS/cuDNN handles: ops/cuda/ctx.cu */
struct sg_dnnl; /* oneDNN engine, stream and primitive cache: ops/dnnl_util.c */
struct sg_dist; /* data-parallel ranks and collectives: core/dist.h */

/* Compute precision of the GEMM-heavy ops (linear, matmul, attention products, convolution) on
 * CUDA: fp32 (default, matches the CPU to ~1e-6), or bf16 mixed precision as open_clip's
 * amp_bf16 (bf16 operands, fp32 accumulation and fp32 storage of activations, master weights,
 * gradients and loss). The CPU path always computes in fp32. */
enum sg_precision { SG_PREC_FP32 = 0, SG_PREC_BF16 = 1 };

struct sg_ctx {
    enum sg_device dev;
    enum sg_precision precision; /* set after sg_ctx_init; read by CUDA GEMM/conv launchers */
    int device_id;               /* CUDA ordinal */
    int nthreads;                /* OpenMP threads for CPU ops (set at init) */
    struct sg_cuda *cuda;        /* NULL on CPU */
    struct sg_dnnl *dnnl;        /* lazily created on first oneDNN primitive */
    struct sg_dist *bn_sync;     /* NULL: local batch statistics; else BatchNorm statistics summed
                                    over these ranks (SyncBN, CPU only: ops/norm.h) */
};

/* Returns 0, or -1 with sg_last_error() (e.g. CUDA requested but no GPU / not built with CUDA).
 * nthreads <= 0 keeps OpenMP's default. */
int sg_ctx_init(struct sg_ctx *c, enum sg_device dev, int device_id, int nthreads);
void sg_ctx_free(struct sg_ctx *c);

/* 1 when this build has CUDA and at least one GPU is visible. */
int sg_cuda_available(void);
const char *sg_device_name(enum sg_device d);

void *sg_dev_alloc(struct sg_ctx *c, size_t bytes); /* panics on OOM, 256-byte aligned */
void sg_dev_free(struct sg_ctx *c, void *p);
void sg_memcpy_h2d(struct sg_ctx *c, void *dst, const void *src, size_t bytes);
void sg_memcpy_d2h(struct sg_ctx *c, void *dst, const void *src, size_t bytes);
void sg_memcpy_d2d(struct sg_ctx *c, void *dst, const void *src, size_t bytes);
void sg_memset_zero(struct sg_ctx *c, void *p, size_t bytes);
void sg_ctx_sync(struct sg_ctx *c);
/* Strided copy on the context's device: `height` rows of `width` bytes, row pitches in bytes
 * (cudaMemcpy2DAsync on CUDA, a memcpy per row on the CPU). */
void sg_memcpy2d_d2d(struct sg_ctx *c, void *dst, size_t dpitch, const void *src, size_t spitch,
                     size_t width, size_t height);
/* Host staging memory for uploads: pinned (cudaMallocHost) on a CUDA context, so copies from it
 * are truly asynchronous; plain 256-byte aligned memory on the CPU. Panics on OOM. */
void *sg_host_alloc(struct sg_ctx *c, size_t bytes);
void sg_host_free(struct sg_ctx *c, void *p);

#endif
