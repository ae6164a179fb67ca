/*
 * core/dist.c — see dist.h: environment detection, the single and MPI backends, the NCCL unique id
 * exchange (MPI_Ibcast or a file) and the dispatch to core/dist_nccl.c.
 *
 * MPI (built with SG_HAVE_MPI): MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already
 * initialised; the collectives run on an MPI_Comm_idup of MPI_COMM_WORLD with MPI_ERRORS_RETURN.
 * Every collective is the non-blocking call (MPI_Iallgather, MPI_Iallreduce, MPI_Ibcast,
 * MPI_Ibarrier) polled with MPI_Test: about 100 polls back to back (small collectives finish in
 * microseconds), then sleeps growing from 50 us to 1 ms, until done or d->timeout_s has passed.
 * A timed-out request stays pending (MPI cannot cancel a collective): the communicator is marked
 * broken, later collectives fail at once, and sg_dist_finalize skips MPI_Finalize (it would hang
 * on the hung peer, and the request's buffers may be freed by then); the process exits non-zero
 * and the launcher tears the job down. tests/test_dist.c completes the request with
 * sg_dist_drain instead, so that its mpirun ends cleanly.
 * The reference for the semantics is torch.distributed (all_gather_into_tensor, all_reduce SUM,
 * broadcast, barrier; its NCCL watchdog timeout plays the role of timeout_s).
 */
#define _GNU_SOURCE
#include "core/dist.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

#ifdef SG_HAVE_MPI
#include <mpi.h>
#endif

#ifdef SG_HAVE_NCCL
#include "core/dist_nccl.h"
#endif

#define NCCL_ID_BYTES 128 /* sizeof(ncclUniqueId), checked in dist_nccl.c */

struct dist_impl {
    int mpi_on;   /* MPI is in use: MPI backend, or NCCL with its id sent through MPI */
    int mpi_ours; /* we initialised MPI: finalize calls MPI_Finalize */
    int broken;   /* a collective timed out: later collectives fail at once */
#ifdef SG_HAVE_MPI
    MPI_Comm comm;       /* MPI_Comm_idup of MPI_COMM_WORLD, MPI_ERRORS_RETURN */
    MPI_Request pending; /* the timed-out collective still in flight, else MPI_REQUEST_NULL */
#endif
    void *nccl;       /* core/dist_nccl.c state */
    void *stage;      /* staging buffer of coll_staged: device (NCCL) or host (MPI) memory */
    size_t stage_cap; /* bytes */
};

/* ---- environment ------------------------------------------------------------------------- */

struct launcher {
    const char *name, *rank, *world, *local[2];
};
static const struct launcher launchers[] = {
    {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", {"OMPI_COMM_WORLD_LOCAL_RANK"}},
    {"PMI (MPICH, Intel MPI)", "PMI_RANK", "PMI_SIZE", {"MPI_LOCALRANKID", "PMI_LOCAL_RANK"}},
    {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", {"SLURM_LOCALID"}},
    {"torchrun", "RANK", "WORLD_SIZE", {"LOCAL_RANK"}},
};

static int env_int(const char *name, int *out)
{
    const char *s = name ? getenv(name) : NULL;
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < 0 || v > INT_MAX) return 0;
    *out = (int)v;
    return 1;
}

/* The first launcher whose rank and world size parse (0 <= rank < world), else NULL and 0, 1, 0.
 * *local_found: whether that launcher also gave the local rank (else 0). */
static const struct launcher *env_detect(int *rank, int *world, int *local, int *local_found)
{
    *rank = 0, *world = 1, *local = 0, *local_found = 0;
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        const struct launcher *l = &launchers[i];
        int r, w;
        if (!env_int(l->rank, &r) || !env_int(l->world, &w) || w < 1 || r >= w) continue;
        *rank = r, *world = w;
        *local_found = env_int(l->local[0], local) || env_int(l->local[1], local);
        return l;
    }
    return NULL;
}

int sg_dist_env(int *rank, int *world, int *local_rank)
{
    int found_local;
    return env_detect(rank, world, local_rank, &found_local) != NULL;
}

int sg_dist_have_mpi(void)
{
#ifdef SG_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int sg_dist_have_nccl(void)
{
#ifdef SG_HAVE_NCCL
    return 1;
#else
    return 0;
#endif
}

const char *sg_dist_backend_name(enum sg_dist_backend b)
{
    switch (b) {
    case SG_DIST_SINGLE:
        return "single";
    case SG_DIST_MPI:
        return "mpi";
    case SG_DIST_NCCL:
        return "nccl";
    }
    return "?";
}

/* ---- stop requests (sg_dist_set_stop) ------------------------------------------------------ */

static struct {
    volatile sig_atomic_t *flag;
    double grace_s;
    double seen; /* when the flag was first seen set (0: not yet) */
    int hit;     /* a wait ended because of it (for the message) */
} g_stop;

void sg_dist_set_stop(volatile sig_atomic_t *flag, double grace_s)
{
    g_stop.flag = flag;
    g_stop.grace_s = grace_s;
    g_stop.seen = 0.0;
    g_stop.hit = 0;
}

int sg_dist_stop_due(void)
{
    if (!g_stop.flag || !*g_stop.flag) {
        g_stop.seen = 0.0;
        return 0;
    }
    double now = sg_time_now();
    if (g_stop.seen == 0.0) g_stop.seen = now;
    if (now - g_stop.seen < g_stop.grace_s) return 0;
    g_stop.hit = 1;
    return 1;
}

/* ---- helpers ----------------------------------------------------------------------------- */

#if defined(SG_HAVE_MPI) || defined(SG_HAVE_NCCL)
static void fmt_bytes(char *out, size_t cap, double b)
{
    if (b < 1e3)
        snprintf(out, cap, "%.0f B", b);
    else if (b < 1e6)
        snprintf(out, cap, "%.1f kB", b / 1e3);
    else if (b < 1e9)
        snprintf(out, cap, "%.1f MB", b / 1e6);
    else
        snprintf(out, cap, "%.2f GB", b / 1e9);
}

static int timeout_err(struct sg_dist *d, const char *what, size_t bytes, double waited)
{
    char num[32], sz[40] = "";
    if (bytes) {
        fmt_bytes(num, sizeof num, (double)bytes);
        snprintf(sz, sizeof sz, " of %s", num);
    }
    if (g_stop.hit)
        return sg_err("%s%s abandoned after %.3g s on rank %d of %d: a stop signal arrived %.3g s "
                      "before (the launcher is ending the job, e.g. because another rank died)",
                      what, sz, waited, d->rank, d->world, g_stop.grace_s);
    return sg_err("%s%s timed out after %.3g s on rank %d of %d: a rank is hung or dead (see the "
                  "other ranks' logs; raise the timeout if a step can legitimately take longer)",
                  what, sz, waited, d->rank, d->world);
}

/* Poll pause: ~100 polls back to back, then sleeps from 50 us doubling up to 1 ms. */
static void poll_pause(int *npoll)
{
    int n = (*npoll)++;
    if (n < 100) return;
    long us = n - 100 < 5 ? 50L << (n - 100) : 1000;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static int timed_out(double t0, double timeout_s, double *waited)
{
    *waited = sg_time_now() - t0;
    return (timeout_s > 0 && *waited > timeout_s) || sg_dist_stop_due();
}
#endif

static int begin(struct sg_dist *d, const char *what, uint64_t bytes_out)
{
    SG_CHECK(d->backend == SG_DIST_SINGLE || d->impl, "%s on a finalised or uninitialised sg_dist",
             what);
    d->ncoll++;
    d->bytes_out += bytes_out;
    struct dist_impl *im = d->impl;
    if (im && im->broken)
        return sg_err("%s on rank %d of %d: an earlier collective timed out, the communicator is "
                      "unusable (exit and restart the job from the last checkpoint)",
                      what, d->rank, d->world);
    return 0;
}

/* ---- MPI ---------------------------------------------------------------------------------- */

#ifdef SG_HAVE_MPI
static int mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return sg_err("%s: MPI error: %s", what, msg);
}

/* 0 when *req completed, 1 on timeout (request left pending), -1 on an MPI error. */
static int mpi_poll(MPI_Request *req, double timeout_s, double *waited, const char *what)
{
    double t0 = sg_time_now();
    for (int npoll = 0;; poll_pause(&npoll)) {
        int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
        if (done) return 0;
        if (timed_out(t0, timeout_s, waited)) return 1;
    }
}

/* Waits for a collective just issued (rc: the issuing call's result). */
static int mpi_finish(struct sg_dist *d, int rc, MPI_Request *req, const char *what, size_t bytes)
{
    struct dist_impl *im = d->impl;
    if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
    double waited = 0;
    int r = mpi_poll(req, d->timeout_s, &waited, what);
    if (r <= 0) return r;
    im->pending = *req;
    im->broken = 1;
    return timeout_err(d, what, bytes, waited);
}

static int mpi_start(struct sg_dist *d, struct dist_impl *im)
{
    int flag = 0, rc;
    MPI_Finalized(&flag);
    if (flag)
        return sg_err("MPI was already finalised in this process: sg_dist_init with MPI can run "
                      "once per process");
    MPI_Initialized(&flag);
    if (!flag) {
        int provided = 0;
        rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init_thread");
        im->mpi_ours = 1;
    }
    im->mpi_on = 1;
    MPI_Request req;
    double waited = 0;
    rc = MPI_Comm_idup(MPI_COMM_WORLD, &im->comm, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_idup");
    int r = mpi_poll(&req, d->timeout_s, &waited, "MPI_Comm_idup");
    if (r < 0) return -1;
    if (r > 0) {
        im->pending = req, im->broken = 1;
        return timeout_err(d, "MPI communicator setup", 0, waited);
    }
    MPI_Comm_set_errhandler(im->comm, MPI_ERRORS_RETURN);
    int mr, mw, er, ew, el, local_found;
    MPI_Comm_rank(im->comm, &mr);
    MPI_Comm_size(im->comm, &mw);
    const struct launcher *l = env_detect(&er, &ew, &el, &local_found);
    if (l && (er != mr || ew != mw))
        return sg_err("MPI reports rank %d of %d but the %s environment says rank %d of %d: start "
                      "every rank with the launcher (mpirun -np N, srun); a Slurm batch script's "
                      "own variables describe the allocation, not this process",
                      mr, mw, l->name, er, ew);
    d->rank = mr, d->world = mw, d->local_rank = el;
    if (!local_found) { /* ranks sharing this node, in rank order */
        MPI_Comm node;
        rc = MPI_Comm_split_type(im->comm, MPI_COMM_TYPE_SHARED, mr, MPI_INFO_NULL, &node);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_split_type");
        MPI_Comm_rank(node, &d->local_rank);
        MPI_Comm_free(&node);
    }
    return 0;
}

static void mpi_stop(struct dist_impl *im)
{
    /* After a time-out the peer may be hung (MPI_Finalize would hang too) and the timed-out
     * request's buffers may be freed already: touch MPI no more, leave it to the launcher. */
    if (!im->mpi_on || im->broken) return;
    if (im->comm != MPI_COMM_NULL) MPI_Comm_free(&im->comm);
    if (im->mpi_ours) MPI_Finalize();
}

/* Test hook (declared in tests/test_dist.c, not in dist.h): waits up to max_s for the collective
 * that timed out; 0 when it completed (the communicator is usable again), else -1. The buffers
 * of that collective must still be alive. */
int sg_dist_drain(struct sg_dist *d, double max_s);
int sg_dist_drain(struct sg_dist *d, double max_s)
{
    struct dist_impl *im = d->impl;
    double waited;
    if (!im || im->pending == MPI_REQUEST_NULL) return 0;
    if (mpi_poll(&im->pending, max_s, &waited, "drain")) return -1;
    im->broken = 0;
    return 0;
}

static int mpi_allgather(struct sg_dist *d, void *recv, const void *send, size_t bytes)
{
    struct dist_impl *im = d->impl;
    if (bytes > INT_MAX)
        return sg_err("allgather of %zu bytes per rank: over MPI's int count", bytes);
    MPI_Request req;
    const void *sb = send == (char *)recv + (size_t)d->rank * bytes ? MPI_IN_PLACE : send;
    int rc = MPI_Iallgather(sb, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, im->comm, &req);
    return mpi_finish(d, rc, &req, "allgather", bytes * (size_t)d->world);
}

static int mpi_allreduce(struct sg_dist *d, void *buf, int64_t n, size_t esize)
{
    struct dist_impl *im = d->impl;
    MPI_Datatype t = esize == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE;
    if (n > INT_MAX)
        return sg_err("allreduce of %lld elements: over MPI's int count", (long long)n);
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, t, MPI_SUM, im->comm, &req);
    return mpi_finish(d, rc, &req, "allreduce", (size_t)n * esize);
}

static int mpi_broadcast(struct sg_dist *d, void *buf, size_t bytes, int root)
{
    struct dist_impl *im = d->impl;
    if (bytes > INT_MAX) return sg_err("broadcast of %zu bytes: over MPI's int count", bytes);
    MPI_Request req;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, im->comm, &req);
    return mpi_finish(d, rc, &req, "broadcast", bytes);
}

static int mpi_barrier(struct sg_dist *d)
{
    struct dist_impl *im = d->impl;
    MPI_Request req;
    return mpi_finish(d, MPI_Ibarrier(im->comm, &req), &req, "barrier", 0);
}
#else
static int mpi_start(struct sg_dist *d, struct dist_impl *im)
{
    SG_UNUSED(d), SG_UNUSED(im);
    return sg_err("this build has no MPI support: install libopenmpi-dev (scripts/install_deps.sh) "
                  "and reconfigure with cmake");
}
static void mpi_stop(struct dist_impl *im)
{
    SG_UNUSED(im);
}
int sg_dist_drain(struct sg_dist *d, double max_s);
int sg_dist_drain(struct sg_dist *d, double max_s)
{
    SG_UNUSED(d), SG_UNUSED(max_s);
    return 0;
}
/* Unreachable: sg_dist_init fails for the mpi backend in this build. */
#define NO_MPI SG_PANIC("MPI collective in a build without MPI")
static int mpi_allgather(struct sg_dist *d, void *recv, const void *send, size_t bytes)
{
    SG_UNUSED(d), SG_UNUSED(recv), SG_UNUSED(send), SG_UNUSED(bytes);
    NO_MPI;
}
static int mpi_allreduce(struct sg_dist *d, void *buf, int64_t n, size_t esize)
{
    SG_UNUSED(d), SG_UNUSED(buf), SG_UNUSED(n), SG_UNUSED(esize);
    NO_MPI;
}
static int mpi_broadcast(struct sg_dist *d, void *buf, size_t bytes, int root)
{
    SG_UNUSED(d), SG_UNUSED(buf), SG_UNUSED(bytes), SG_UNUSED(root);
    NO_MPI;
}
static int mpi_barrier(struct sg_dist *d)
{
    SG_UNUSED(d);
    NO_MPI;
}
#endif

/* ---- NCCL --------------------------------------------------------------------------------- */

#ifdef SG_HAVE_NCCL
/* Ranks > 0 wait for rank 0's id file (written atomically: present means complete). */
static int read_id_file(struct sg_dist *d, const char *path, void *id)
{
    double t0 = sg_time_now(), waited;
    for (int npoll = 0;; poll_pause(&npoll)) {
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(id, 1, NCCL_ID_BYTES, f);
            fclose(f);
            if (got == NCCL_ID_BYTES) return 0;
        }
        if (timed_out(t0, d->timeout_s, &waited))
            return sg_err(
                "waiting for the NCCL id file %s timed out after %.3g s on rank %d of %d: "
                "rank 0 did not write it (is the path on a file system every rank sees?)",
                path, waited, d->rank, d->world);
    }
}

static int nccl_share_id(struct sg_dist *d, struct dist_impl *im, void *id)
{
    const char *path = getenv("SOGCLIP_NCCL_ID_FILE");
    if (d->rank == 0 && sg_dist_nccl_unique_id(id, NCCL_ID_BYTES)) return -1;
    if (d->world == 1) return 0;
    if (path && *path) {
        if (d->rank == 0) return sg_write_file_atomic(path, id, NCCL_ID_BYTES);
        return read_id_file(d, path, id);
    }
#ifdef SG_HAVE_MPI
    MPI_Request req;
    int rc = MPI_Ibcast(id, NCCL_ID_BYTES, MPI_BYTE, 0, im->comm, &req);
    return mpi_finish(d, rc, &req, "broadcast of the NCCL id", 0);
#else
    SG_UNUSED(im);
    return sg_err("nccl backend without MPI: set SOGCLIP_NCCL_ID_FILE to a fresh path on a file "
                  "system every rank sees (rank 0 writes the NCCL id there)");
#endif
}

static int nccl_start(struct sg_dist *d, struct dist_impl *im, struct sg_ctx *ctx)
{
    if (!ctx || ctx->dev != SG_DEVICE_CUDA)
        return sg_err("nccl backend needs a CUDA context (its buffers are device memory)");
    const char *path = getenv("SOGCLIP_NCCL_ID_FILE");
    int found_local;
    if (path && *path) { /* no MPI: rank and world from the launcher's environment */
        env_detect(&d->rank, &d->world, &d->local_rank, &found_local);
    } else if (mpi_start(d, im)) {
        return sg_err_prefix("nccl backend (the NCCL id goes through MPI unless "
                             "SOGCLIP_NCCL_ID_FILE is set): ");
    }
    unsigned char id[NCCL_ID_BYTES] = {0};
    if (nccl_share_id(d, im, id)) return -1;
    double t0 = sg_time_now();
    int rc = sg_dist_nccl_open(&im->nccl, ctx, d->rank, d->world, id, sizeof id, d->timeout_s);
    if (rc == -2) {
        im->broken = 1;
        return timeout_err(d, "NCCL communicator setup", 0, sg_time_now() - t0);
    }
    return rc;
}

static int nccl_run(struct sg_dist *d, const char *op, void *buf, const void *send, size_t count,
                    int root, const char *what, size_t bytes)
{
    struct dist_impl *im = d->impl;
    double t0 = sg_time_now();
    int rc = sg_dist_nccl_coll(im->nccl, d->timeout_s, op, buf, send, count, root);
    if (rc != -2) return rc;
    im->broken = 1;
    return timeout_err(d, what, bytes, sg_time_now() - t0);
}
#else
static int nccl_start(struct sg_dist *d, struct dist_impl *im, struct sg_ctx *ctx)
{
    SG_UNUSED(d), SG_UNUSED(im), SG_UNUSED(ctx);
    return sg_err("this build has no NCCL support: build with CUDA and NCCL (nccl.h and libnccl "
                  "under the CUDA toolkit, or -DNCCL_ROOT=...)");
}
static int nccl_run(struct sg_dist *d, const char *op, void *buf, const void *send, size_t count,
                    int root, const char *what, size_t bytes)
{
    SG_UNUSED(d), SG_UNUSED(op), SG_UNUSED(buf), SG_UNUSED(send), SG_UNUSED(count);
    SG_UNUSED(root), SG_UNUSED(what), SG_UNUSED(bytes);
    SG_PANIC("nccl collective in a build without NCCL");
}
#endif

/* ---- init / finalize ---------------------------------------------------------------------- */

static int pick_backend(const char *name, struct sg_ctx *ctx, enum sg_dist_backend *out)
{
    int r, w, l;
    if (!name || !strcmp(name, "auto")) {
        int launched = sg_dist_env(&r, &w, &l) && w > 1;
        int cuda = ctx && ctx->dev == SG_DEVICE_CUDA;
        *out = launched && cuda && sg_dist_have_nccl() ? SG_DIST_NCCL
               : launched && sg_dist_have_mpi()        ? SG_DIST_MPI
                                                       : SG_DIST_SINGLE;
        return 0;
    }
    if (!strcmp(name, "single"))
        *out = SG_DIST_SINGLE;
    else if (!strcmp(name, "mpi"))
        *out = SG_DIST_MPI;
    else if (!strcmp(name, "nccl"))
        *out = SG_DIST_NCCL;
    else
        return sg_err("unknown distributed backend '%s': use auto, single, mpi or nccl", name);
    return 0;
}

static void stage_free(struct sg_dist *d);

int sg_dist_init(struct sg_dist *d, const char *backend, struct sg_ctx *ctx, double timeout_s)
{
    memset(d, 0, sizeof *d);
    d->world = 1;
    d->timeout_s = timeout_s;
    d->ctx = ctx;
    if (pick_backend(backend, ctx, &d->backend)) return -1;
    if (d->backend == SG_DIST_SINGLE) return 0;
    struct dist_impl *im = sg_xcalloc(1, sizeof *im);
#ifdef SG_HAVE_MPI
    im->comm = MPI_COMM_NULL;
    im->pending = MPI_REQUEST_NULL;
#endif
    d->impl = im;
    int rc = d->backend == SG_DIST_MPI ? mpi_start(d, im) : nccl_start(d, im, ctx);
    if (rc) {
        sg_dist_finalize(d);
        d->world = 1, d->rank = d->local_rank = 0;
    }
    return rc;
}

void sg_dist_finalize(struct sg_dist *d)
{
    struct dist_impl *im = d->impl;
    if (!im) return;
    stage_free(d);
#ifdef SG_HAVE_NCCL
    if (im->nccl) sg_dist_nccl_close(im->nccl, d->timeout_s);
    im->nccl = NULL;
#endif
    mpi_stop(im);
    free(im);
    d->impl = NULL;
}

/* ---- collectives -------------------------------------------------------------------------- */

enum coll_op { COLL_ALLGATHER, COLL_ALLREDUCE, COLL_BROADCAST };

/* One collective: buf is the receive buffer (allgather: world * bytes) or the in-place buffer. */
struct coll {
    enum coll_op op;
    const char *what;
    void *buf;
    const void *send; /* allgather: this rank's bytes */
    size_t bytes;     /* allgather: per rank; allreduce, broadcast: the whole buffer */
    size_t esize;     /* allreduce: sizeof(float) or sizeof(double) */
    int root;         /* broadcast */
};

static size_t coll_total(const struct sg_dist *d, const struct coll *c)
{
    return c->op == COLL_ALLGATHER ? c->bytes * (size_t)d->world : c->bytes;
}

/* On the backend's own memory: host for MPI, d->ctx's device memory for NCCL. */
static int coll_native(struct sg_dist *d, const struct coll *c)
{
    size_t n = c->esize ? c->bytes / c->esize : 0, total = coll_total(d, c);
    if (d->backend == SG_DIST_MPI) {
        if (c->op == COLL_ALLGATHER) return mpi_allgather(d, c->buf, c->send, c->bytes);
        if (c->op == COLL_ALLREDUCE) return mpi_allreduce(d, c->buf, (int64_t)n, c->esize);
        return mpi_broadcast(d, c->buf, c->bytes, c->root);
    }
    if (c->op == COLL_ALLGATHER)
        return nccl_run(d, "allgather", c->buf, c->send, c->bytes, 0, c->what, total);
    if (c->op == COLL_ALLREDUCE)
        return nccl_run(d, c->esize == sizeof(float) ? "allreduce_f32" : "allreduce_f64", c->buf,
                        c->buf, n, 0, c->what, total);
    return nccl_run(d, "broadcast", c->buf, c->buf, c->bytes, c->root, c->what, total);
}

/* The staging buffer, in the backend's memory (NCCL: device, MPI: host), grown on demand. After
 * a time-out it is left alone (the collective still in flight may write it). */
static void *stage_get(struct sg_dist *d, size_t bytes)
{
    struct dist_impl *im = d->impl;
    if (bytes <= im->stage_cap) return im->stage;
    if (d->backend == SG_DIST_NCCL) {
        if (im->stage) sg_dev_free(d->ctx, im->stage);
        im->stage = sg_dev_alloc(d->ctx, bytes);
    } else {
        im->stage = sg_xrealloc(im->stage, bytes);
    }
    im->stage_cap = bytes;
    return im->stage;
}

static void stage_free(struct sg_dist *d)
{
    struct dist_impl *im = d->impl;
    if (!im->stage || im->broken) return;
    if (d->backend == SG_DIST_NCCL)
        sg_dev_free(d->ctx, im->stage);
    else
        free(im->stage);
    im->stage = NULL, im->stage_cap = 0;
}

/* Buffers in the other memory than the backend's: copied into the staging buffer, the collective
 * run there in place, the result copied back (NCCL: host buffers; MPI: device buffers). */
static int coll_staged(struct sg_dist *d, const struct coll *c)
{
    int to_dev = d->backend == SG_DIST_NCCL; /* the stage is device memory */
    size_t total = coll_total(d, c);
    char *st = stage_get(d, total ? total : 1);
    size_t in_off = c->op == COLL_ALLGATHER ? (size_t)d->rank * c->bytes : 0;
    const void *in = c->op == COLL_ALLGATHER ? c->send : c->buf;
    if (to_dev)
        sg_memcpy_h2d(d->ctx, st + in_off, in, c->bytes);
    else
        sg_memcpy_d2h(d->ctx, st + in_off, in, c->bytes);
    struct coll s = *c;
    s.buf = st;
    s.send = st + in_off;
    if (coll_native(d, &s)) return -1;
    if (to_dev)
        sg_memcpy_d2h(d->ctx, c->buf, st, total);
    else
        sg_memcpy_h2d(d->ctx, c->buf, st, total);
    return 0;
}

/* Test hook (declared in tests/test_dist.c, not in dist.h): stage every collective, so that the
 * staging arithmetic runs on machines without a GPU (MPI backend: host-to-host copies). */
static int g_force_staging;
void sg_dist_force_staging(int on);
void sg_dist_force_staging(int on)
{
    g_force_staging = on;
}

/* on_dev: the buffers are in d->ctx's memory (device memory on a CUDA context), else host. */
static int collective(struct sg_dist *d, const struct coll *c, int on_dev)
{
    int buf_dev = on_dev && d->ctx && d->ctx->dev == SG_DEVICE_CUDA;
    if (d->backend == SG_DIST_SINGLE) { /* world 1: allgather copies, the rest is identity */
        if (c->op != COLL_ALLGATHER || c->buf == c->send || !c->bytes) return 0;
        if (buf_dev)
            sg_memcpy_d2d(d->ctx, c->buf, c->send, c->bytes);
        else
            memmove(c->buf, c->send, c->bytes);
        return 0;
    }
    int native = buf_dev == (d->backend == SG_DIST_NCCL) && !g_force_staging;
    return native ? coll_native(d, c) : coll_staged(d, c);
}

static int allgather(struct sg_dist *d, void *recv, const void *send, size_t bytes, int on_dev)
{
    SG_CHECK(bytes == 0 || (recv && send), "allgather: NULL buffer");
    if (begin(d, "allgather", bytes)) return -1;
    struct coll c = {COLL_ALLGATHER, "allgather", recv, send, bytes, 0, 0};
    return collective(d, &c, on_dev);
}

static int allreduce(struct sg_dist *d, void *buf, int64_t n, size_t esize, int on_dev)
{
    SG_CHECK(n >= 0 && (n == 0 || buf), "allreduce: n = %lld, buf = %p", (long long)n, buf);
    if (begin(d, "allreduce", (uint64_t)n * esize)) return -1;
    struct coll c = {COLL_ALLREDUCE, "allreduce", buf, buf, (size_t)n * esize, esize, 0};
    return collective(d, &c, on_dev);
}

static int broadcast(struct sg_dist *d, void *buf, size_t bytes, int root, int on_dev)
{
    SG_CHECK(root >= 0 && root < d->world, "broadcast: root %d of world %d", root, d->world);
    SG_CHECK(bytes == 0 || buf, "broadcast: NULL buffer");
    if (begin(d, "broadcast", d->rank == root ? bytes : 0)) return -1;
    struct coll c = {COLL_BROADCAST, "broadcast", buf, buf, bytes, 0, root};
    return collective(d, &c, on_dev);
}

int sg_dist_allgather(struct sg_dist *d, void *recv, const void *send, size_t bytes_per_rank)
{
    return allgather(d, recv, send, bytes_per_rank, 0);
}

int sg_dist_allreduce_sum_f32(struct sg_dist *d, float *buf, int64_t n)
{
    return allreduce(d, buf, n, sizeof(float), 0);
}

int sg_dist_allreduce_sum_f64(struct sg_dist *d, double *buf, int64_t n)
{
    return allreduce(d, buf, n, sizeof(double), 0);
}

int sg_dist_broadcast(struct sg_dist *d, void *buf, size_t bytes, int root)
{
    return broadcast(d, buf, bytes, root, 0);
}

int sg_dist_allgather_dev(struct sg_dist *d, void *recv, const void *send, size_t bytes_per_rank)
{
    return allgather(d, recv, send, bytes_per_rank, 1);
}

int sg_dist_allreduce_sum_f32_dev(struct sg_dist *d, float *buf, int64_t n)
{
    return allreduce(d, buf, n, sizeof(float), 1);
}

int sg_dist_broadcast_dev(struct sg_dist *d, void *buf, size_t bytes, int root)
{
    return broadcast(d, buf, bytes, root, 1);
}

int sg_dist_barrier(struct sg_dist *d)
{
    if (begin(d, "barrier", 0)) return -1;
    if (d->backend == SG_DIST_SINGLE) return 0;
    if (d->backend == SG_DIST_MPI) return mpi_barrier(d);
    return nccl_run(d, "barrier", NULL, NULL, 0, 0, "barrier", 0);
}
