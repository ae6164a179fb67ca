/*
 * ops/cuda/ctx.cu — the CUDA side of struct sg_ctx (core/cuda_api.h): device discovery, context
 * creation (stream, cuBLAS handle bound to it, cuBLAS workspace), device memory, copies, sync;
 * plus the helpers shared by the op files (common.cuh): error reporting, scratch, column sums.
 *
 * Synchronisation: memcpy device-to-host waits for the stream (the caller reads the data next);
 * sync waits for it; free and scratch growth synchronise implicitly (cudaFree). Everything else
 * is asynchronous on the context's stream. Host-to-device copies from pageable memory are staged
 * by CUDA before cudaMemcpyAsync returns, so the source may be reused at once.
 *
 * One context drives one device; ops assume the device set at init is current (single-GPU use).
 *
 * Input pipeline helpers (core/cuda_api.h): pinned host buffers (cudaMallocHost), an extra copy
 * stream and events, so the trainer can upload batch k+1 on the copy stream while batch k
 * computes; the compute stream waits on the copy's event (cudaStreamWaitEvent: no host wait).
 */
#include "ops/cuda/common.cuh"

#include <stdlib.h>
#include <string.h>

#include "core/cuda_api.h"

/* ---- kernels ------------------------------------------------------------------------------ */

/* dst[j] += sum_k partial[k*stride + j], in chunk order. One thread per column. */
__global__ void colsum_finalize_kernel(float *dst, const float *partial, int nchunk, int ncol,
                                       int64_t stride)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= ncol) return;
    float acc = 0.0f;
    for (int k = 0; k < nchunk; k++) acc += partial[(int64_t)k * stride + j];
    dst[j] += acc;
}

/* ---- shared helpers (common.cuh) -------------------------------------------------------- */

void sg_cuda_fail(const char *lib, const char *stmt, const char *err, const char *func,
                  const char *file, int line)
{
    int dev = -1;
    if (cudaGetDevice(&dev) != cudaSuccess) dev = -1;
    sg_panic_at(file, line, func, "%s error: %s\n  statement: %s\n  device: %d", lib, err, stmt,
                dev);
}

struct sg_cuda *sg_cuda_get(struct sg_ctx *c)
{
    SG_CHECK(c && c->dev == SG_DEVICE_CUDA && c->cuda, "not an initialised CUDA context");
    return c->cuda;
}

void *sg_cuda_scratch(struct sg_ctx *c, size_t bytes)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (bytes <= s->scratch_bytes) return s->scratch;
    size_t want = SG_MAX(bytes + bytes / 4, (size_t)1 << 20); /* headroom: grow rarely */
    if (s->scratch) CUDA_CHECK(cudaFree(s->scratch));         /* implicit device sync */
    s->scratch = sg_cuda_alloc(c, want);
    s->scratch_bytes = want;
    return s->scratch;
}

void sg_cuda_colsum_finalize(struct sg_cuda *s, float *dst, const float *partial, int nchunk,
                             int ncol, int64_t stride)
{
    SG_CHECK(nchunk > 0 && ncol > 0 && stride >= ncol, "nchunk %d ncol %d stride %lld", nchunk,
             ncol, (long long)stride);
    const int threads = 256;
    colsum_finalize_kernel<<<CEIL_DIV(ncol, threads), threads, 0, s->stream>>>(dst, partial, nchunk,
                                                                               ncol, stride);
    CUDA_CHECK(cudaGetLastError());
}

/* ---- core/cuda_api.h -------------------------------------------------------------------- */

extern "C" int sg_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no GPU: clear the error, report none */
        return 0;
    }
    return n;
}

static void cuda_state_free(struct sg_cuda *s)
{
    if (s->stream) cudaStreamSynchronize(s->stream);
    if (s->cudnn && s->cudnn_free) s->cudnn_free(s);
    if (s->lt && s->lt_free) s->lt_free(s);
    if (s->cublas) cublasDestroy(s->cublas);
    if (s->cublas_workspace) cudaFree(s->cublas_workspace);
    if (s->scratch) cudaFree(s->scratch);
    if (s->stream) cudaStreamDestroy(s->stream);
    free(s);
}

/* Init steps return an sg_err message instead of aborting: a missing GPU is a user error. */
#define INIT_CUDA(call)                                                                            \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            sg_err("CUDA init on device %d: %s: %s\n---> HINT: check nvidia-smi and "              \
                   "CUDA_VISIBLE_DEVICES, or use device: cpu",                                     \
                   device_id, #call, cudaGetErrorString(e_));                                      \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
#define INIT_CUBLAS(call)                                                                          \
    do {                                                                                           \
        cublasStatus_t e_ = (call);                                                                \
        if (e_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            sg_err("cuBLAS init on device %d: %s: %s\n---> HINT: check that libcublas matches "    \
                   "the CUDA driver (nvidia-smi), or use device: cpu",                             \
                   device_id, #call, cublasGetStatusString(e_));                                   \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

extern "C" int sg_cuda_ctx_init(struct sg_ctx *c, int device_id)
{
    int n = sg_cuda_device_count();
    if (n == 0)
        return sg_err("device 'cuda' requested but no CUDA GPU is visible\n---> HINT: check "
                      "nvidia-smi and CUDA_VISIBLE_DEVICES, or use device: cpu");
    if (device_id < 0 || device_id >= n)
        return sg_err("CUDA device %d requested but only %d visible\n---> HINT: use a device id "
                      "in [0, %d)",
                      device_id, n, n);
    struct sg_cuda *s = (struct sg_cuda *)sg_xcalloc(1, sizeof *s);
    const char *tf32 = getenv(SG_CUDA_TF32_ENV);
    s->device = device_id;
    s->tf32 = tf32 && strcmp(tf32, "1") == 0;
    s->cublas_workspace_bytes = (size_t)32 << 20;
    INIT_CUDA(cudaSetDevice(device_id));
    INIT_CUDA(cudaDeviceGetAttribute(&s->num_sms, cudaDevAttrMultiProcessorCount, device_id));
    INIT_CUDA(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    INIT_CUDA(cudaMalloc(&s->cublas_workspace, s->cublas_workspace_bytes));
    INIT_CUBLAS(cublasCreate(&s->cublas));
    INIT_CUBLAS(cublasSetStream(s->cublas, s->stream));
    INIT_CUBLAS(cublasSetWorkspace(s->cublas, s->cublas_workspace, s->cublas_workspace_bytes));
    INIT_CUBLAS(
        cublasSetMathMode(s->cublas, s->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    c->cuda = s;
    return 0;
fail:
    (void)cudaGetLastError();
    cuda_state_free(s);
    return -1;
}

extern "C" void sg_cuda_ctx_free(struct sg_ctx *c)
{
    if (!c->cuda) return;
    struct sg_cuda *s = c->cuda;
    CUDA_CHECK(cudaStreamSynchronize(s->stream)); /* surface pending async errors here */
    cuda_state_free(s);
    c->cuda = NULL;
}

extern "C" void *sg_cuda_alloc(struct sg_ctx *c, size_t bytes)
{
    sg_cuda_get(c);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256); /* 256-byte aligned by cudaMalloc */
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        (void)cudaGetLastError();
        (void)cudaMemGetInfo(&free_b, &total_b);
        SG_PANIC("out of GPU memory allocating %zu bytes (%s; %zu of %zu MiB free on device "
                 "%d)\n---> HINT: reduce the batch size",
                 bytes, cudaGetErrorString(e), free_b >> 20, total_b >> 20, c->device_id);
    }
    return p;
}

extern "C" void sg_cuda_free(struct sg_ctx *c, void *p)
{
    sg_cuda_get(c);
    if (p) CUDA_CHECK(cudaFree(p));
}

extern "C" void sg_cuda_memcpy(struct sg_ctx *c, void *dst, const void *src, size_t bytes, int kind)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (bytes == 0) return;
    SG_CHECK(dst && src, "NULL pointer in a %zu-byte copy", bytes);
    switch (kind) {
    case 1:
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream));
        break;
    case 2:
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream));
        CUDA_CHECK(cudaStreamSynchronize(s->stream)); /* documented: the host reads dst next */
        break;
    case 3:
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream));
        break;
    default:
        SG_PANIC("bad copy kind %d (1 h2d, 2 d2h, 3 d2d)", kind);
    }
}

extern "C" void sg_cuda_memset_zero(struct sg_ctx *c, void *p, size_t bytes)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, s->stream));
}

extern "C" void sg_cuda_sync(struct sg_ctx *c)
{
    CUDA_CHECK(cudaStreamSynchronize(sg_cuda_get(c)->stream));
}

extern "C" void sg_cuda_memcpy2d_d2d(struct sg_ctx *c, void *dst, size_t dpitch, const void *src,
                                     size_t spitch, size_t width, size_t height)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (width == 0 || height == 0) return;
    SG_CHECK(dst && src && dpitch >= width && spitch >= width, "bad 2-D copy (%zu x %zu)", width,
             height);
    CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, cudaMemcpyDeviceToDevice,
                                 s->stream));
}

/* ---- input pipeline helpers ----------------------------------------------------------------- */

static cudaStream_t stream_or_compute(struct sg_cuda *s, void *stream)
{
    return stream ? (cudaStream_t)stream : s->stream;
}

extern "C" void *sg_cuda_host_alloc(struct sg_ctx *c, size_t bytes)
{
    sg_cuda_get(c);
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        SG_PANIC("out of pinned host memory allocating %zu bytes (%s)\n---> HINT: reduce the "
                 "batch size",
                 bytes, cudaGetErrorString(e));
    }
    return p;
}

extern "C" void sg_cuda_host_free(struct sg_ctx *c, void *p)
{
    sg_cuda_get(c);
    if (p) CUDA_CHECK(cudaFreeHost(p));
}

extern "C" void *sg_cuda_stream_new(struct sg_ctx *c)
{
    sg_cuda_get(c);
    cudaStream_t st = NULL;
    CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    return (void *)st;
}

extern "C" void sg_cuda_stream_free(struct sg_ctx *c, void *stream)
{
    sg_cuda_get(c);
    if (!stream) return;
    CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)stream));
    CUDA_CHECK(cudaStreamDestroy((cudaStream_t)stream));
}

extern "C" void *sg_cuda_event_new(struct sg_ctx *c)
{
    sg_cuda_get(c);
    cudaEvent_t ev = NULL;
    CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    return (void *)ev;
}

extern "C" void sg_cuda_event_free(struct sg_ctx *c, void *event)
{
    sg_cuda_get(c);
    if (event) CUDA_CHECK(cudaEventDestroy((cudaEvent_t)event));
}

extern "C" void sg_cuda_event_record(struct sg_ctx *c, void *event, void *stream)
{
    struct sg_cuda *s = sg_cuda_get(c);
    CUDA_CHECK(cudaEventRecord((cudaEvent_t)event, stream_or_compute(s, stream)));
}

extern "C" void sg_cuda_stream_wait_event(struct sg_ctx *c, void *stream, void *event)
{
    struct sg_cuda *s = sg_cuda_get(c);
    CUDA_CHECK(cudaStreamWaitEvent(stream_or_compute(s, stream), (cudaEvent_t)event, 0));
}

extern "C" void sg_cuda_event_sync(struct sg_ctx *c, void *event)
{
    sg_cuda_get(c);
    CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)event));
}

extern "C" void sg_cuda_memcpy_h2d_async(struct sg_ctx *c, void *dst, const void *src, size_t bytes,
                                         void *stream)
{
    struct sg_cuda *s = sg_cuda_get(c);
    if (bytes == 0) return;
    SG_CHECK(dst && src, "NULL pointer in a %zu-byte copy", bytes);
    CUDA_CHECK(
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_or_compute(s, stream)));
}
