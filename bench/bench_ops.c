/*
 * bench/bench_ops.c — times every op's forward+backward at realistic layer sizes.
 *   build/bench_ops [--threads N] [filter-substring]
 * Usually run through bench/compare.py, which also times PyTorch and prints ratios.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/common.h"

static const char *filter;

int bench_selected(const char *name)
{
    return !filter || strstr(name, filter) != NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_time(const char *name, void (*fn)(void *arg), void *arg)
{
    if (!bench_selected(name)) return;
    double t[64];
    int n = 0;
    fn(arg);
    fn(arg);
    double start = sg_time_now();
    while (n < 30 && (n < 3 || sg_time_now() - start < 0.5)) {
        double t0 = sg_time_now();
        fn(arg);
        t[n++] = 1e3 * (sg_time_now() - t0);
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    printf("BENCH\t%s\t%.4f\t%.4f\n", name, t[n / 2], t[0]);
    fflush(stdout);
}

float *bench_rand(size_t n, unsigned seed)
{
    float *x = sg_xmalloc_aligned(n * sizeof(float));
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = (float)((double)(s >> 40) / 8388608.0 - 1.0);
    }
    return x;
}

int main(int argc, char **argv)
{
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else
            filter = argv[i];
    }
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, threads) != 0) {
        fprintf(stderr, "bench_ops: %s\n", sg_last_error());
        return 1;
    }
    printf("# sogclip bench_ops: %d threads\n", c.nthreads);
    bench_matmul(&c);
    bench_conv(&c);
    bench_norm(&c);
    bench_pointwise(&c);
    bench_embed_loss(&c);
    sg_ctx_free(&c);
    return 0;
}
