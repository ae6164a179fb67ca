/*
 * core/dist_nccl.c — the NCCL backend of core/dist.h (plain C on nccl.h and the CUDA runtime;
 * compiled only when CUDA is enabled and NCCL is found: SG_HAVE_NCCL). core/dist.c exchanges the
 * unique id (MPI_Ibcast or a file) and formats the errors of the timeouts reported here as -2.
 *
 * The communicator is non-blocking (ncclConfig_t.blocking = 0), so that neither its setup nor a
 * collective can block the host: calls may return ncclInProgress, and ncclCommGetAsyncError is
 * polled until it reports ncclSuccess. Collectives run on a stream of their own, ordered after
 * the work already queued on the context's compute stream by an event (sg_cuda_event_record +
 * sg_cuda_stream_wait_event); the host then polls cudaStreamQuery and ncclCommGetAsyncError
 * (sleeps of 50 us doubling to 1 ms) until the collective is done, an error is reported or
 * timeout_s has passed. On timeout the communicator is aborted (ncclCommAbort: its kernels exit)
 * and every later collective fails. Returning only once the collective is complete keeps the
 * semantics of the host backends: later work on any stream sees the result.
 * Barrier: an allreduce of one float in a device scratch word (NCCL has no barrier).
 * Reference: torch.distributed's ProcessGroupNCCL (own NCCL stream, watchdog timeout, abort).
 */
#define _GNU_SOURCE
#include <nccl.h>
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "core/cuda_api.h"
#include "core/ctx.h"
#include "core/dist.h"
#include "core/dist_nccl.h"

struct nccl_state {
    struct sg_ctx *ctx;
    ncclComm_t comm; /* NULL once aborted */
    void *stream;    /* cudaStream_t of the collectives */
    void *event;     /* cudaEvent_t: compute stream -> collective stream */
    float *word;     /* [1] device scratch for the barrier */
};

static int nccl_fail(const char *what, ncclResult_t r, ncclComm_t comm)
{
    const char *detail = comm ? ncclGetLastError(comm) : "";
    return sg_err("%s: NCCL error: %s%s%s", what, ncclGetErrorString(r),
                  detail && *detail ? ": " : "", detail ? detail : "");
}

static void pause_poll(int *npoll)
{
    int n = (*npoll)++;
    long us = n < 5 ? 50L << n : 1000;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static int past(double t0, double timeout_s)
{
    return (timeout_s > 0 && sg_time_now() - t0 > timeout_s) || sg_dist_stop_due();
}

/* Waits until the communicator's pending non-blocking call is done: 0, -1 or -2 (timed out). */
static int wait_comm(ncclComm_t comm, double t0, double timeout_s, const char *what)
{
    for (int npoll = 0;; pause_poll(&npoll)) {
        ncclResult_t st = ncclSuccess, r = ncclCommGetAsyncError(comm, &st);
        if (r != ncclSuccess) return nccl_fail("ncclCommGetAsyncError", r, comm);
        if (st == ncclSuccess) return 0;
        if (st != ncclInProgress) return nccl_fail(what, st, comm);
        if (past(t0, timeout_s)) return -2;
    }
}

/* Waits for the collective stream, watching the communicator's asynchronous errors. */
static int wait_stream(struct nccl_state *s, double t0, double timeout_s, const char *what)
{
    int not_ready = 0;
    for (int npoll = 0;; pause_poll(&npoll)) {
        cudaError_t q = cudaStreamQuery((cudaStream_t)s->stream);
        if (q == cudaSuccess) break;
        if (q != cudaErrorNotReady)
            return sg_err("%s: CUDA error: %s", what, cudaGetErrorString(q));
        not_ready = 1;
        ncclResult_t st = ncclSuccess;
        ncclCommGetAsyncError(s->comm, &st);
        if (st != ncclSuccess && st != ncclInProgress) return nccl_fail(what, st, s->comm);
        if (past(t0, timeout_s)) return -2;
    }
    /* cudaErrorNotReady is not an error: keep it out of the ops' cudaGetLastError checks. */
    if (not_ready && cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();
    return 0;
}

static void abort_comm(struct nccl_state *s)
{
    if (s->comm) ncclCommAbort(s->comm);
    s->comm = NULL;
}

int sg_dist_nccl_unique_id(void *id, size_t bytes)
{
    SG_CHECK(bytes == sizeof(ncclUniqueId), "NCCL id of %zu bytes, want %zu", bytes,
             sizeof(ncclUniqueId));
    ncclResult_t r = ncclGetUniqueId((ncclUniqueId *)id);
    return r == ncclSuccess ? 0 : nccl_fail("ncclGetUniqueId", r, NULL);
}

int sg_dist_nccl_open(void **state, struct sg_ctx *ctx, int rank, int world, const void *id,
                      size_t id_bytes, double timeout_s)
{
    SG_CHECK(id_bytes == sizeof(ncclUniqueId), "NCCL id of %zu bytes", id_bytes);
    cudaError_t ce = cudaSetDevice(ctx->device_id);
    if (ce != cudaSuccess)
        return sg_err("cudaSetDevice(%d): %s", ctx->device_id, cudaGetErrorString(ce));
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclComm_t comm = NULL;
    double t0 = sg_time_now();
    ncclResult_t r = ncclCommInitRankConfig(&comm, world, uid, rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) {
        if (comm) ncclCommAbort(comm);
        return nccl_fail("ncclCommInitRankConfig", r, NULL);
    }
    int rc = wait_comm(comm, t0, timeout_s, "ncclCommInitRankConfig");
    if (rc) {
        ncclCommAbort(comm);
        return rc;
    }
    struct nccl_state *s = sg_xcalloc(1, sizeof *s);
    s->ctx = ctx;
    s->comm = comm;
    s->stream = sg_cuda_stream_new(ctx);
    s->event = sg_cuda_event_new(ctx);
    s->word = sg_dev_alloc(ctx, sizeof(float));
    sg_memset_zero(ctx, s->word, sizeof(float));
    *state = s;
    return 0;
}

static ncclResult_t issue(struct nccl_state *s, const char *op, void *buf, const void *send,
                          size_t count, int root)
{
    cudaStream_t st = (cudaStream_t)s->stream;
    if (!strcmp(op, "allgather")) return ncclAllGather(send, buf, count, ncclUint8, s->comm, st);
    if (!strcmp(op, "allreduce_f32"))
        return ncclAllReduce(buf, buf, count, ncclFloat32, ncclSum, s->comm, st);
    if (!strcmp(op, "allreduce_f64"))
        return ncclAllReduce(buf, buf, count, ncclFloat64, ncclSum, s->comm, st);
    if (!strcmp(op, "broadcast"))
        return ncclBroadcast(buf, buf, count, ncclUint8, root, s->comm, st);
    SG_CHECK(!strcmp(op, "barrier"), "unknown NCCL collective '%s'", op);
    return ncclAllReduce(s->word, s->word, 1, ncclFloat32, ncclSum, s->comm, st);
}

int sg_dist_nccl_coll(void *state, double timeout_s, const char *op, void *buf, const void *send,
                      size_t count, int root)
{
    struct nccl_state *s = state;
    if (!s->comm)
        return sg_err("%s: the NCCL communicator was aborted after a timeout (exit and restart "
                      "the job from the last checkpoint)",
                      op);
    double t0 = sg_time_now();
    sg_cuda_event_record(s->ctx, s->event, NULL); /* after the compute stream's queued work */
    sg_cuda_stream_wait_event(s->ctx, s->stream, s->event);
    ncclResult_t r = issue(s, op, buf, send, count, root);
    int rc = 0;
    if (r == ncclInProgress)
        rc = wait_comm(s->comm, t0, timeout_s, op);
    else if (r != ncclSuccess)
        rc = nccl_fail(op, r, s->comm);
    if (rc == 0) rc = wait_stream(s, t0, timeout_s, op);
    if (rc == -2) abort_comm(s);
    return rc;
}

void sg_dist_nccl_close(void *state, double timeout_s)
{
    struct nccl_state *s = state;
    if (!s) return;
    if (s->comm) {
        ncclResult_t r = ncclCommFinalize(s->comm);
        if ((r == ncclSuccess || r == ncclInProgress) &&
            wait_comm(s->comm, sg_time_now(), timeout_s, "ncclCommFinalize") == 0)
            ncclCommDestroy(s->comm);
        else
            ncclCommAbort(s->comm);
        s->comm = NULL;
    }
    sg_dev_free(s->ctx, s->word);
    sg_cuda_event_free(s->ctx, s->event);
    sg_cuda_stream_free(s->ctx, s->stream);
    free(s);
}
