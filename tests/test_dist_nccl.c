/*
 * tests/test_dist_nccl.c — the NCCL backend of core/dist.h on one GPU (world 1: a one-rank
 * communicator; the H200 machines have one GPU, and NCCL refuses two ranks on one device).
 * The NCCL id goes through SOGCLIP_NCCL_ID_FILE (no MPI launcher). Checks, on device buffers
 * (the _dev collectives): allgather (odd byte counts, in place too), allreduce f32 (a one-rank sum
 * is the identity, exactly), broadcast from rank 0; on host buffers (staged through the device):
 * allgather, allreduce f32 / f64, broadcast; barrier, the byte / collective counters, and that a
 * CPU context is refused with a message. Exits 77 without a GPU or without NCCL in the build.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/dist.h"
#include "testutil.h"

static int bytes_equal_dev(struct sg_ctx *g, const void *d, const void *want, size_t n)
{
    unsigned char *h = sg_xmalloc(n ? n : 1);
    sg_memcpy_d2h(g, h, d, n);
    int same = memcmp(h, want, n) == 0;
    free(h);
    return same;
}

/* Host buffers on the NCCL backend: staged through device memory (the distributed losses). */
static void host_buffers(struct sg_dist *d)
{
    unsigned char a[333], b[333];
    for (int i = 0; i < 333; i++) a[i] = (unsigned char)(i * 11 + 5);
    memset(b, 0, sizeof b);
    sg_test_true("host allgather 333 bytes (staged)",
                 sg_dist_allgather(d, b, a, sizeof a) == 0 && !memcmp(a, b, sizeof a));
    float f[65], want[65];
    for (int i = 0; i < 65; i++) f[i] = want[i] = (float)i * -0.25f + 3.0f;
    sg_test_true("host allreduce f32 (staged)",
                 sg_dist_allreduce_sum_f32(d, f, 65) == 0 && !memcmp(f, want, sizeof f));
    memset(b, 0, sizeof b);
    memcpy(b, a, 100);
    sg_test_true("host broadcast (staged)",
                 sg_dist_broadcast(d, b, 100, 0) == 0 && !memcmp(a, b, 100));
}

int main(void)
{
    if (!sg_cuda_available() || !sg_dist_have_nccl()) {
        printf("SKIP: %s\n", sg_cuda_available() ? "built without NCCL" : "no CUDA GPU");
        return SG_TEST_SKIP;
    }
    struct sg_ctx g, cpu;
    SG_CHECK(sg_ctx_init(&g, SG_DEVICE_CUDA, 0, 1) == 0, "%s", sg_last_error());
    SG_CHECK(sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 1) == 0, "%s", sg_last_error());
    char idfile[] = "/tmp/sg_test_nccl_id_XXXXXX";
    int fd = mkstemp(idfile);
    SG_CHECK(fd >= 0, "mkstemp");
    close(fd);
    setenv("SOGCLIP_NCCL_ID_FILE", idfile, 1);
    struct sg_dist d;
    sg_test_true("nccl refuses a CPU context", sg_dist_init(&d, "nccl", &cpu, 10.0) == -1 &&
                                                   strstr(sg_last_error(), "CUDA context"));
    int rc = sg_dist_init(&d, "nccl", &g, 30.0);
    if (!sg_test_true("nccl backend starts on one GPU (world 1)", rc == 0)) {
        printf("  %s\n", sg_last_error());
        return sg_test_summary("test_dist_nccl");
    }
    sg_test_true("rank 0 of 1, backend nccl",
                 d.rank == 0 && d.world == 1 && d.backend == SG_DIST_NCCL);
    /* allgather of 1001 bytes (odd), into another buffer and in place */
    unsigned char h[1001];
    for (int i = 0; i < 1001; i++) h[i] = (unsigned char)(i * 7 + 3);
    void *src = sg_dev_alloc(&g, sizeof h), *dst = sg_dev_alloc(&g, sizeof h);
    sg_memcpy_h2d(&g, src, h, sizeof h);
    sg_test_true("allgather 1001 bytes", sg_dist_allgather_dev(&d, dst, src, sizeof h) == 0 &&
                                             bytes_equal_dev(&g, dst, h, sizeof h));
    sg_test_true("allgather in place", sg_dist_allgather_dev(&d, src, src, sizeof h) == 0 &&
                                           bytes_equal_dev(&g, src, h, sizeof h));
    /* allreduce: identity on one rank, exactly */
    float f[257];
    double x[129], x0[129];
    for (int i = 0; i < 257; i++) f[i] = (float)i * 0.37f - 11.0f;
    for (int i = 0; i < 129; i++) x[i] = x0[i] = (double)i * 1e-3 - 0.05;
    float *df = sg_dev_alloc(&g, sizeof f);
    sg_memcpy_h2d(&g, df, f, sizeof f);
    sg_test_true("allreduce f32 (257 values)", sg_dist_allreduce_sum_f32_dev(&d, df, 257) == 0 &&
                                                   bytes_equal_dev(&g, df, f, sizeof f));
    sg_test_true("allreduce f64 (129 values, host buffer: staged through the device)",
                 sg_dist_allreduce_sum_f64(&d, x, 129) == 0 && !memcmp(x, x0, sizeof x));
    host_buffers(&d);
    sg_test_true("broadcast from rank 0",
                 sg_dist_broadcast_dev(&d, dst, 777, 0) == 0 && bytes_equal_dev(&g, dst, h, 777));
    sg_test_true("barrier", sg_dist_barrier(&d) == 0);
    char label[160];
    snprintf(label, sizeof label, "counters: %llu collectives, %llu bytes out",
             (unsigned long long)d.ncoll, (unsigned long long)d.bytes_out);
    sg_test_true(label, d.ncoll >= 6 && d.bytes_out >= 2 * 1001 + 257 * 4 + 129 * 8 + 777);
    sg_dist_finalize(&d);
    sg_dev_free(&g, src), sg_dev_free(&g, dst), sg_dev_free(&g, df);
    unlink(idfile);
    sg_ctx_free(&cpu);
    sg_ctx_free(&g);
    return sg_test_summary("test_dist_nccl");
}
