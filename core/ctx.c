/* core/ctx.c — see ctx.h. */
#include "core/ctx.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/common.h"
#include "core/cuda_api.h"

void sg_dnnl_free(struct sg_dnnl *d); /* ops/dnnl_util.c */

const char *sg_device_name(enum sg_device d)
{
    return d == SG_DEVICE_CUDA ? "cuda" : "cpu";
}

int sg_cuda_available(void)
{
#ifdef SG_CUDA
    return sg_cuda_device_count() > 0;
#else
    return 0;
#endif
}

int sg_ctx_init(struct sg_ctx *c, enum sg_device dev, int device_id, int nthreads)
{
    memset(c, 0, sizeof *c);
    c->dev = dev;
    c->device_id = device_id;
#ifdef _OPENMP
    if (nthreads > 0) omp_set_num_threads(nthreads);
    c->nthreads = omp_get_max_threads();
#else
    SG_UNUSED(nthreads);
    c->nthreads = 1;
#endif
    if (dev == SG_DEVICE_CPU) return 0;
#ifdef SG_CUDA
    return sg_cuda_ctx_init(c, device_id);
#else
    return sg_err("device 'cuda' requested but this build has no CUDA backend\n---> HINT: "
                  "rebuild with nvcc on PATH (cmake -DSOGCLIP_CUDA=ON) or use device: cpu");
#endif
}

void sg_ctx_free(struct sg_ctx *c)
{
#ifdef SG_CUDA
    if (c->cuda) sg_cuda_ctx_free(c);
#endif
    if (c->dnnl) sg_dnnl_free(c->dnnl);
    memset(c, 0, sizeof *c);
}

void *sg_dev_alloc(struct sg_ctx *c, size_t bytes)
{
    SG_UNUSED(c);
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) return sg_cuda_alloc(c, bytes);
#endif
    void *p = NULL;
    size_t rounded = (bytes + 255) & ~(size_t)255;
    if (posix_memalign(&p, 256, rounded ? rounded : 256) != 0)
        SG_PANIC("out of host memory allocating %zu bytes\n---> HINT: reduce the batch size",
                 bytes);
    return p;
}

void sg_dev_free(struct sg_ctx *c, void *p)
{
    if (!p) return;
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) {
        sg_cuda_free(c, p);
        return;
    }
#endif
    SG_UNUSED(c);
    free(p);
}

static void copy_kind(struct sg_ctx *c, void *dst, const void *src, size_t bytes, int kind)
{
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) {
        sg_cuda_memcpy(c, dst, src, bytes, kind);
        return;
    }
#endif
    SG_UNUSED(c);
    SG_UNUSED(kind);
    if (bytes) memmove(dst, src, bytes);
}

void sg_memcpy_h2d(struct sg_ctx *c, void *dst, const void *src, size_t bytes)
{
    copy_kind(c, dst, src, bytes, 1);
}
void sg_memcpy_d2h(struct sg_ctx *c, void *dst, const void *src, size_t bytes)
{
    copy_kind(c, dst, src, bytes, 2);
}
void sg_memcpy_d2d(struct sg_ctx *c, void *dst, const void *src, size_t bytes)
{
    copy_kind(c, dst, src, bytes, 3);
}

void sg_memset_zero(struct sg_ctx *c, void *p, size_t bytes)
{
    SG_UNUSED(c);
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) {
        sg_cuda_memset_zero(c, p, bytes);
        return;
    }
#endif
    if (bytes) memset(p, 0, bytes);
}

void sg_ctx_sync(struct sg_ctx *c)
{
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) sg_cuda_sync(c);
#else
    SG_UNUSED(c);
#endif
}

void sg_memcpy2d_d2d(struct sg_ctx *c, void *dst, size_t dpitch, const void *src, size_t spitch,
                     size_t width, size_t height)
{
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) {
        sg_cuda_memcpy2d_d2d(c, dst, dpitch, src, spitch, width, height);
        return;
    }
#endif
    SG_UNUSED(c);
    SG_CHECK(dpitch >= width && spitch >= width, "bad 2-D copy (%zu x %zu)", width, height);
    for (size_t r = 0; r < height && width; r++)
        memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
}

void *sg_host_alloc(struct sg_ctx *c, size_t bytes)
{
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) return sg_cuda_host_alloc(c, bytes);
#endif
    SG_UNUSED(c);
    void *p = NULL;
    size_t rounded = (bytes + 255) & ~(size_t)255;
    if (posix_memalign(&p, 256, rounded ? rounded : 256) != 0)
        SG_PANIC("out of host memory allocating %zu bytes", bytes);
    return p;
}

void sg_host_free(struct sg_ctx *c, void *p)
{
    if (!p) return;
#ifdef SG_CUDA
    if (c->dev == SG_DEVICE_CUDA) {
        sg_cuda_host_free(c, p);
        return;
    }
#endif
    SG_UNUSED(c);
    free(p);
}
