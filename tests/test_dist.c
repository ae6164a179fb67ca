/*
 * tests/test_dist.c — core/dist.h collectives. ctest runs it twice:
 *  - plain (one process): launcher environment parsing (each family set with setenv, priority
 *    order, invalid values skipped), the single backend (copy / no-op semantics, byte counters),
 *    init errors (unknown backend, nccl without a CUDA context, mpi in a build without MPI);
 *  - `mpirun -np 2` (label mpi): the same, plus the MPI backend chosen by "auto", rank and world
 *    agreeing with the environment, allgather of odd byte counts in rank order (also in place),
 *    allreduce sums in f32 and f64 (integer-valued data: exact), broadcast from rank 1, a barrier
 *    that really waits (rank 0 arrives 0.2 s late), byte and collective counters, and last the
 *    time-out: rank 1 joins an allreduce 3 s late, every other rank (timeout_s = 1) must get -1
 *    with the "... timed out after ... on rank r of w: a rank is hung or dead" message within
 *    2.5 s, later collectives fail at once; then the test hook sg_dist_drain completes the request
 *    when rank 1 joins, so every rank checks the sum and MPI finalises cleanly.
 * Each rank prints its checks prefixed by its rank and exits non-zero on any failure, so mpirun
 * fails when any rank fails. Values are exact: no tolerances.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/dist.h"
#include "tests/testutil.h"

/* core/dist.c's test hook: completes a timed-out MPI collective (0), or -1 after max_s. */
int sg_dist_drain(struct sg_dist *d, double max_s);

static int g_rank;

static int check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int check(int cond, const char *fmt, ...)
{
    char label[300], msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(label, sizeof label, "[rank %d] %s", g_rank, msg);
    return sg_test_true(label, cond);
}

/* ---- environment -------------------------------------------------------------------------- */

static const char *const env_names[] = {"OMPI_COMM_WORLD_RANK",
                                        "OMPI_COMM_WORLD_SIZE",
                                        "OMPI_COMM_WORLD_LOCAL_RANK",
                                        "PMI_RANK",
                                        "PMI_SIZE",
                                        "MPI_LOCALRANKID",
                                        "PMI_LOCAL_RANK",
                                        "SLURM_PROCID",
                                        "SLURM_NTASKS",
                                        "SLURM_LOCALID",
                                        "RANK",
                                        "WORLD_SIZE",
                                        "LOCAL_RANK"};
#define N_ENV (int)(sizeof env_names / sizeof env_names[0])

static void expect_env(const char *label, int found, int rank, int world, int local)
{
    int r = -1, w = -1, l = -1, f = sg_dist_env(&r, &w, &l);
    check(f == found && r == rank && w == world && l == local,
          "env %s: found %d rank %d world %d local %d (want %d %d %d %d)", label, f, r, w, l, found,
          rank, world, local);
}

static void test_env(void)
{
    char *saved[N_ENV];
    for (int i = 0; i < N_ENV; i++) {
        const char *v = getenv(env_names[i]);
        saved[i] = v ? sg_xstrdup(v) : NULL;
        unsetenv(env_names[i]);
    }
    expect_env("none", 0, 0, 1, 0);
    setenv("RANK", "3", 1), setenv("WORLD_SIZE", "8", 1), setenv("LOCAL_RANK", "1", 1);
    expect_env("torchrun", 1, 3, 8, 1);
    setenv("SLURM_PROCID", "5", 1), setenv("SLURM_NTASKS", "6", 1), setenv("SLURM_LOCALID", "2", 1);
    expect_env("slurm over torchrun", 1, 5, 6, 2);
    setenv("PMI_RANK", "2", 1), setenv("PMI_SIZE", "4", 1);
    expect_env("pmi over slurm, no local rank", 1, 2, 4, 0);
    setenv("MPI_LOCALRANKID", "1", 1);
    expect_env("pmi with MPI_LOCALRANKID", 1, 2, 4, 1);
    setenv("OMPI_COMM_WORLD_RANK", "1", 1), setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
    expect_env("open mpi over pmi", 1, 1, 2, 1);
    setenv("OMPI_COMM_WORLD_RANK", "2", 1); /* rank >= world: skipped */
    expect_env("open mpi invalid -> pmi", 1, 2, 4, 1);
    for (int i = 0; i < N_ENV; i++) unsetenv(env_names[i]);
    setenv("RANK", "1x", 1), setenv("WORLD_SIZE", "2", 1);
    expect_env("garbage rank", 0, 0, 1, 0);
    setenv("RANK", "-1", 1);
    expect_env("negative rank", 0, 0, 1, 0);
    setenv("RANK", "0", 1), setenv("WORLD_SIZE", "0", 1);
    expect_env("world 0", 0, 0, 1, 0);
    for (int i = 0; i < N_ENV; i++) {
        unsetenv(env_names[i]);
        if (saved[i]) setenv(env_names[i], saved[i], 1);
        free(saved[i]);
    }
}

/* ---- single backend and init errors ------------------------------------------------------- */

static void test_single(int launched)
{
    struct sg_dist d;
    check(sg_dist_init(&d, "single", NULL, 1.0) == 0, "single init");
    check(d.backend == SG_DIST_SINGLE && d.rank == 0 && d.world == 1 && d.local_rank == 0,
          "single: backend %s rank %d world %d", sg_dist_backend_name(d.backend), d.rank, d.world);
    unsigned char send[13], recv[13] = {0};
    for (int i = 0; i < 13; i++) send[i] = (unsigned char)(3 * i + 1);
    check(sg_dist_allgather(&d, recv, send, 13) == 0 && !memcmp(recv, send, 13),
          "single allgather copies");
    check(sg_dist_allgather(&d, recv, recv, 13) == 0 && !memcmp(recv, send, 13),
          "single allgather in place");
    float f[7] = {1, -2, 3.5f, 0, 5, 6, 7}, f0[7];
    double g[5] = {1e300, -1, 2, 3, 4}, g0[5];
    memcpy(f0, f, sizeof f), memcpy(g0, g, sizeof g);
    check(sg_dist_allreduce_sum_f32(&d, f, 7) == 0 && !memcmp(f, f0, sizeof f),
          "single allreduce f32 unchanged");
    check(sg_dist_allreduce_sum_f64(&d, g, 5) == 0 && !memcmp(g, g0, sizeof g),
          "single allreduce f64 unchanged");
    check(sg_dist_broadcast(&d, send, 9, 0) == 0 && sg_dist_barrier(&d) == 0,
          "single broadcast, barrier");
    check(d.ncoll == 6 && d.bytes_out == 13 + 13 + 28 + 40 + 9,
          "single counters: ncoll %llu bytes_out %llu (want 6, 103)", (unsigned long long)d.ncoll,
          (unsigned long long)d.bytes_out);
    sg_dist_finalize(&d);
    check(!strcmp(sg_dist_backend_name(SG_DIST_MPI), "mpi") &&
              !strcmp(sg_dist_backend_name(SG_DIST_NCCL), "nccl"),
          "backend names");

    check(sg_dist_init(&d, "bogus", NULL, 1.0) == -1 &&
              strstr(sg_last_error(), "unknown distributed backend 'bogus'"),
          "unknown backend: %s", sg_last_error());
    check(sg_dist_init(&d, "nccl", NULL, 1.0) == -1 && strcasestr(sg_last_error(), "nccl") &&
              d.world == 1 && d.impl == NULL,
          "nccl on the CPU: %s", sg_last_error());
    if (!sg_dist_have_mpi())
        check(sg_dist_init(&d, "mpi", NULL, 1.0) == -1 && strstr(sg_last_error(), "no MPI"),
              "mpi not built: %s", sg_last_error());
    if (!launched) {
        check(sg_dist_init(&d, "auto", NULL, 1.0) == 0 && d.backend == SG_DIST_SINGLE,
              "auto without a launcher -> single");
        sg_dist_finalize(&d);
    }
}

/* ---- MPI collectives ---------------------------------------------------------------------- */

static unsigned char pat(int r, size_t i)
{
    return (unsigned char)(r * 37 + i * 7 + 1);
}

static void test_allgather(struct sg_dist *d, size_t b, int in_place)
{
    int W = d->world, R = d->rank;
    unsigned char *send = sg_xmalloc(b), *recv = sg_xcalloc((size_t)W * b + 1, 1);
    for (size_t i = 0; i < b; i++) send[i] = pat(R, i);
    if (in_place) memcpy(recv + (size_t)R * b, send, b);
    int rc = sg_dist_allgather(d, recv, in_place ? recv + (size_t)R * b : send, b);
    size_t bad = 0, first = 0;
    for (int r = 0; r < W; r++)
        for (size_t i = 0; i < b; i++)
            if (recv[(size_t)r * b + i] != pat(r, i) && bad++ == 0) first = (size_t)r * b + i;
    check(rc == 0 && bad == 0 && recv[(size_t)W * b] == 0,
          "allgather %zu B/rank%s: rc %d, %zu wrong bytes (first at %zu)", b,
          in_place ? " in place" : "", rc, bad, first);
    free(send), free(recv);
}

static void test_allreduce(struct sg_dist *d, int64_t n)
{
    int W = d->world, R = d->rank;
    float *f = sg_xmalloc((size_t)n * sizeof *f), *fw = sg_xmalloc((size_t)n * sizeof *fw);
    double *g = sg_xmalloc((size_t)n * sizeof *g);
    for (int64_t i = 0; i < n; i++) {
        f[i] = (float)((R + 1) * (i % 97) - i % 5);
        g[i] = 1e9 * (R + 1) + (double)(i * (R + 3));
        fw[i] = 0;
        for (int r = 0; r < W; r++) fw[i] += (float)((r + 1) * (i % 97) - i % 5);
    }
    check(sg_dist_allreduce_sum_f32(d, f, n) == 0, "allreduce f32 n=%lld", (long long)n);
    char label[64];
    snprintf(label, sizeof label, "[rank %d] allreduce f32 sum", R);
    sg_test_close(label, f, fw, n, 0, 0);
    check(sg_dist_allreduce_sum_f64(d, g, n) == 0, "allreduce f64 n=%lld", (long long)n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double want = 0;
        for (int r = 0; r < W; r++) want += 1e9 * (r + 1) + (double)(i * (r + 3));
        if (g[i] != want && bad++ == 0)
            fprintf(stderr, "[rank %d] f64 [%lld] got %.17g want %.17g\n", R, (long long)i, g[i],
                    want);
    }
    check(bad == 0, "allreduce f64 sum exact (%lld wrong)", (long long)bad);
    free(f), free(fw), free(g);
}

static void test_collectives(struct sg_dist *d)
{
    int R = d->rank;
    uint64_t b0 = d->bytes_out, n0 = d->ncoll;
    test_allgather(d, 13, 0);
    test_allgather(d, 1, 0);
    test_allgather(d, 1001, 1);
    test_allreduce(d, 1001);

    unsigned char buf[777];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = R == 1 ? pat(5, i) : 0;
    int rc = sg_dist_broadcast(d, buf, sizeof buf, 1), bad = 0;
    for (size_t i = 0; i < sizeof buf; i++) bad += buf[i] != pat(5, i);
    check(rc == 0 && bad == 0, "broadcast 777 B from rank 1: rc %d, %d wrong bytes", rc, bad);

    if (R == 0) usleep(200 * 1000);
    double t0 = sg_time_now();
    rc = sg_dist_barrier(d);
    double dt = sg_time_now() - t0;
    check(rc == 0 && (R == 0 || dt > 0.15), "barrier waits for the late rank 0 (%.3f s)", dt);

    uint64_t want = 13 + 1 + 1001 + 1001 * 4 + 1001 * 8 + (R == 1 ? 777 : 0);
    check(d->bytes_out - b0 == want && d->ncoll - n0 == 7,
          "counters: bytes_out %llu (want %llu), ncoll %llu (want 7)",
          (unsigned long long)(d->bytes_out - b0), (unsigned long long)want,
          (unsigned long long)(d->ncoll - n0));
}

/* The _dev collectives without a CUDA context work on host memory, as the plain ones. */
static void test_dev_variants(struct sg_dist *d)
{
    int W = d->world, R = d->rank, bad = 0;
    unsigned char send[5], *recv = sg_xcalloc((size_t)W * 5, 1), buf[9];
    float v[4] = {(float)R, 1.0f, -2.0f * (float)R, 0.5f};
    for (int i = 0; i < 5; i++) send[i] = pat(R, (size_t)i);
    for (int i = 0; i < 9; i++) buf[i] = R == 0 ? pat(9, (size_t)i) : 0;
    int rc = sg_dist_allgather_dev(d, recv, send, 5) | sg_dist_allreduce_sum_f32_dev(d, v, 4) |
             sg_dist_broadcast_dev(d, buf, 9, 0);
    for (int r = 0; r < W; r++)
        for (int i = 0; i < 5; i++) bad += recv[r * 5 + i] != pat(r, (size_t)i);
    for (int i = 0; i < 9; i++) bad += buf[i] != pat(9, (size_t)i);
    float s = (float)(W * (W - 1) / 2);
    bad += v[0] != s || v[1] != (float)W || v[2] != -2.0f * s || v[3] != 0.5f * (float)W;
    check(rc == 0 && bad == 0, "_dev collectives on host memory: rc %d, %d wrong", rc, bad);
    free(recv);
}

void sg_dist_force_staging(int on); /* test hook in core/dist.c */

/* A stop request on rank 1 (its flag set, grace 0.5 s) while rank 0 joins 2.5 s late: rank 1's
 * allreduce gives up after ~0.5 s naming the signal (timeout 20 s), then drains. */
static void test_stop(struct sg_dist *d)
{
    static volatile sig_atomic_t flag;
    float v[2] = {1.0f, 2.0f};
    double keep = d->timeout_s;
    d->timeout_s = 20.0;
    if (d->rank == 0) {
        usleep(2500 * 1000);
        check(sg_dist_allreduce_sum_f32(d, v, 2) == 0, "late rank 0: allreduce completes");
    } else if (d->rank == 1) {
        flag = 1;
        sg_dist_set_stop(&flag, 0.5);
        double t0 = sg_time_now();
        int rc = sg_dist_allreduce_sum_f32(d, v, 2);
        double dt = sg_time_now() - t0;
        check(rc == -1 && dt >= 0.5 && dt < 2.0 && strstr(sg_last_error(), "stop signal"),
              "a stop request ends the wait after its grace (%.3f s): %s", dt,
              rc ? sg_last_error() : "completed");
        sg_dist_set_stop(NULL, 0.0);
        check(sg_dist_drain(d, 10) == 0, "drain after the stop");
    } else {
        check(sg_dist_allreduce_sum_f32(d, v, 2) == 0, "rank %d: allreduce completes", d->rank);
    }
    d->timeout_s = keep;
    sg_dist_barrier(d);
}

/* The staging path (NCCL with host buffers, MPI with device buffers) forced on host memory: a
 * second MPI sg_dist with a CPU context, every collective copied through the staging buffer. */
static void test_staging(int rank)
{
    struct sg_ctx cpu;
    struct sg_dist s;
    SG_CHECK(sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 1) == 0, "%s", sg_last_error());
    if (!check(sg_dist_init(&s, "mpi", &cpu, 10.0) == 0, "second MPI sg_dist: %s", sg_last_error()))
        return;
    sg_dist_force_staging(1);
    uint64_t b0 = s.bytes_out;
    test_allgather(&s, 29, 0);
    test_allgather(&s, 1001, 1); /* in place; larger than the stage so far: it grows */
    test_allgather(&s, 3, 0);
    test_allreduce(&s, 333);
    test_dev_variants(&s);
    check(s.bytes_out - b0 == 29 + 1001 + 3 + 333 * 12 + 5 + 16 + (rank == 0 ? 9 : 0),
          "staged collectives count their bytes once (%llu)",
          (unsigned long long)(s.bytes_out - b0));
    sg_dist_force_staging(0);
    sg_dist_finalize(&s);
    sg_ctx_free(&cpu);
}

/* Rank 1 joins 3 s late; the others time out after 1 s. v must outlive sg_dist_finalize. */
static void test_timeout(struct sg_dist *d, float *v)
{
    int R = d->rank, W = d->world;
    for (int i = 0; i < 3; i++) v[i] = (float)(R + 1);
    d->timeout_s = 1.0;
    if (R == 1) {
        sleep(3);
        check(sg_dist_allreduce_sum_f32(d, v, 3) == 0, "late rank: allreduce completes");
        return;
    }
    double t0 = sg_time_now();
    int rc = sg_dist_allreduce_sum_f32(d, v, 3);
    double dt = sg_time_now() - t0;
    const char *msg = sg_last_error();
    char want[80];
    snprintf(want, sizeof want, "on rank %d of %d: a rank is hung or dead", R, W);
    printf("[rank %d] time-out after %.3f s: %s\n", R, dt, msg);
    check(rc == -1 && dt >= 1.0 && dt < 2.5, "allreduce times out (rc %d after %.3f s)", rc, dt);
    check(strstr(msg, "allreduce of 12 B timed out after ") && strstr(msg, want),
          "time-out message");
    check(sg_dist_barrier(d) == -1 && strstr(sg_last_error(), "unusable"),
          "collective after a time-out fails at once: %s", sg_last_error());
    t0 = sg_time_now();
    rc = sg_dist_drain(d, 10); /* rank 1 joins after 3 s: the allreduce completes */
    check(rc == 0, "drain the timed-out allreduce (%.3f s)", sg_time_now() - t0);
}

int main(void)
{
    int r, w, l;
    int launched = sg_dist_env(&r, &w, &l) && w > 1;
    if (!launched) {
        test_env();
        test_single(0);
        return sg_test_summary("test_dist");
    }
    g_rank = r;
    struct sg_dist d;
    if (!check(sg_dist_init(&d, "auto", NULL, 10.0) == 0, "init auto: %s",
               sg_dist_have_mpi() ? sg_last_error() : "this build has no MPI"))
        return sg_test_summary("test_dist");
    check(d.backend == SG_DIST_MPI && d.rank == r && d.world == w && d.local_rank == l,
          "auto -> %s, rank %d of %d, local %d (environment: %d of %d, local %d)",
          sg_dist_backend_name(d.backend), d.rank, d.world, d.local_rank, r, w, l);
    test_env();
    test_single(1);
    test_collectives(&d);
    test_dev_variants(&d);
    test_staging(r);
    test_stop(&d);
    float v[3];
    test_timeout(&d, v);
    sg_dist_finalize(&d);
    float want = (float)(w * (w + 1) / 2);
    check(d.impl == NULL && v[0] == want && v[2] == want,
          "after finalize: the %s allreduce completed (%g, want %g)", r == 1 ? "late" : "drained",
          v[0], want);
    char name[32];
    snprintf(name, sizeof name, "test_dist[rank %d]", r);
    return sg_test_summary(name);
}
