/*
 * core/dist.h — the collectives of data-parallel training, behind one small interface with three
 * backends:
 *   SG_DIST_SINGLE  one process (world 1): every collective is a copy / no-op;
 *   SG_DIST_MPI     MPI (OpenMPI / MPICH), host memory; launch with mpirun or srun;
 *   SG_DIST_NCCL    NCCL on the CUDA context's device memory (one GPU per rank: the caller
 *                   creates ctx on the local rank's GPU); the NCCL unique id travels
 *                   through MPI (MPI_Ibcast), or through a file when SOGCLIP_NCCL_ID_FILE is set
 *                   (rank 0 writes it atomically, the others poll for it; use a fresh path per
 *                   job on a file system every rank sees, e.g. one naming $SLURM_JOB_ID).
 *                   Collectives run on a stream of their own, after the work queued on ctx's
 *                   stream, and return once complete.
 * Rank, world size and local rank come from the launcher's environment (sg_dist_env); the MPI
 * backend checks them against MPI_COMM_WORLD (a mismatch is an error) and, when the launcher
 * gives no local rank, counts the ranks on this node (MPI_Comm_split_type).
 * MPI is initialised with MPI_THREAD_FUNNELED unless already initialised, and finalised by
 * sg_dist_finalize only if sg_dist_init initialised it: one MPI-using sg_dist per process, and
 * every call from the thread that initialised MPI. MPI counts are int: at most 2^31 - 1 bytes
 * per rank (allgather, broadcast) or elements (allreduce) per call.
 *
 * Every collective is issued non-blocking and polled against d->timeout_s: a rank that is hung or
 * dead makes the others return -1 with an sg_err naming the collective, the step's byte count,
 * the rank and the time waited ("allreduce of 1.2 MB timed out after 600 s on rank 0 of 2: a
 * rank is hung or dead") instead of waiting forever; the caller (the trainer) then exits non-zero
 * and the launcher tears the job down. No function here calls exit(). After a time-out the
 * communicator is unusable: later collectives fail at once, and sg_dist_finalize returns without
 * MPI_Finalize (which would hang on the hung rank) and without waiting for the timed-out
 * collective (MPI cannot cancel it; NCCL's communicator is aborted). Polling: MPI_Test or
 * cudaStreamQuery with sleeps growing from 50 us to 1 ms, so a waiting rank uses little CPU.
 *
 * Collective semantics (all ranks call the same collectives in the same order, same sizes):
 *   allgather: recv (world * bytes) = the ranks' send buffers in rank order;
 *   allreduce_sum: in place, elementwise sum over ranks (MPI: MPI_SUM, the reduction order is
 *     the library's; results are identical on every rank);
 *   broadcast: root's buffer to every rank; barrier.
 *   allgather in place: send == recv + rank * bytes_per_rank.
 * Byte counters (bytes_out) count what this rank contributes, for the communication report:
 * allgather bytes_per_rank, allreduce n * element size, broadcast bytes on the root (0 elsewhere),
 * barrier 0; the single backend counts the same. ncoll counts every collective called.
 * Bad arguments (NULL buffers, root out of range) are programmer errors: SG_CHECK.
 */
#ifndef SG_CORE_DIST_H
#define SG_CORE_DIST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"

enum sg_dist_backend { SG_DIST_SINGLE = 0, SG_DIST_MPI = 1, SG_DIST_NCCL = 2 };

struct sg_dist {
    enum sg_dist_backend backend;
    int rank, world, local_rank;
    double timeout_s;   /* per collective (may be changed between calls); <= 0: wait forever */
    struct sg_ctx *ctx; /* NCCL: the CUDA context whose stream the collectives follow */
    void *impl;         /* backend state */
    uint64_t bytes_out; /* bytes this rank contributed to collectives so far */
    uint64_t ncoll;     /* collectives issued so far */
};

/* Rank, world size and local rank from the environment, first match wins: OMPI_COMM_WORLD_*
 * (OpenMPI), PMI_RANK / PMI_SIZE (MPICH, Intel MPI), SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID,
 * RANK / WORLD_SIZE / LOCAL_RANK (torchrun style). Without any: 0, 1, 0. Returns 1 when a
 * launcher's variables were found, 0 otherwise. */
int sg_dist_env(int *rank, int *world, int *local_rank);

/* 1 when this build has MPI / NCCL support. */
int sg_dist_have_mpi(void);
int sg_dist_have_nccl(void);

/* backend: "auto" (when the environment shows a launcher with world > 1: NCCL if ctx is CUDA and
 * NCCL is built, else MPI if built; otherwise single), "single" (always world 1), "mpi", "nccl".
 * The setup (MPI_Comm_idup, the id exchange, NCCL's init) is bounded by timeout_s too.
 * Returns 0, or -1 with sg_err (backend not built, MPI init failure, world mismatch...); d is
 * then a finalised world-1 sg_dist. sg_dist_finalize is idempotent. */
int sg_dist_init(struct sg_dist *d, const char *backend, struct sg_ctx *ctx, double timeout_s);
void sg_dist_finalize(struct sg_dist *d);
const char *sg_dist_backend_name(enum sg_dist_backend b);

/* Collectives: 0, or -1 with sg_err (timeout, library error).
 * Buffers in host memory, on every backend: the NCCL backend copies them into a device staging
 * buffer (grown on demand, freed by sg_dist_finalize), runs the collective there and copies the
 * result back (the distributed losses and SyncBN work on host values of a few MB at most). */
int sg_dist_allgather(struct sg_dist *d, void *recv, const void *send, size_t bytes_per_rank);
int sg_dist_allreduce_sum_f32(struct sg_dist *d, float *buf, int64_t n);
int sg_dist_allreduce_sum_f64(struct sg_dist *d, double *buf, int64_t n);
int sg_dist_broadcast(struct sg_dist *d, void *buf, size_t bytes, int root);
int sg_dist_barrier(struct sg_dist *d);

/* The same on buffers in d->ctx's memory (sg_dev_alloc: device memory on a CUDA context, host
 * memory on a CPU context or without ctx): NCCL works on them in place; MPI stages device buffers
 * through a host buffer (several GPU ranks without NCCL, or sharing one GPU); the single backend
 * copies (allgather) or leaves them as they are. Same semantics and counters as above. */
int sg_dist_allgather_dev(struct sg_dist *d, void *recv, const void *send, size_t bytes_per_rank);
int sg_dist_allreduce_sum_f32_dev(struct sg_dist *d, float *buf, int64_t n);
int sg_dist_broadcast_dev(struct sg_dist *d, void *buf, size_t bytes, int root);

/* Stop requests: with flag set (e.g. the trainer's SIGINT/SIGTERM flag), a collective that is
 * still waiting grace_s after the flag became non-zero gives up like a time-out, with a message
 * naming the signal — when one rank dies, the launcher signals the others, which then end within
 * grace_s instead of waiting for timeout_s. Collectives of healthy ranks finish long before
 * grace_s, so a Ctrl-C still ends the step normally. Process-wide; flag NULL: off.
 * sg_dist_stop_due: 1 once the grace has passed (used by the backends' wait loops). */
void sg_dist_set_stop(volatile sig_atomic_t *flag, double grace_s);
int sg_dist_stop_due(void);

#endif
