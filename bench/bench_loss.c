/*
 * bench/bench_loss.c — times one two-way SogCLR step (losses/sogclr.h: forward, state update
 * and feature gradients) and, in the same run, its floor: the three B x B x d GEMMs alone
 * (S = zi zt^T, dzi = M zt, dzt = M^T zi via sg_gemm). PyTorch peer: bench/torch_loss.py (same
 * case names, shapes and index pattern); bench/loss_compare.py runs both and prints the table.
 *
 *   build/bench_loss [--threads N] [filter]
 * Cases sogclr_B<B>_d<d> and floor_B<B>_d<d> for B in {256, 1024, 4096}, d in {256, 512}, and
 * dist_B<B>_d<d>: the data-parallel engine (losses/gcl_bimodal_dist.h) with one rank (G = B:
 * the same math as sogclr_*, the per-rank compute of the distributed step; what a GPU rank runs
 * on its host), run only when the filter names them ("dist", "dist_B256_d512").
 * Output lines: "BENCH<TAB>name<TAB>median_ms<TAB>min_ms", then for the loss cases
 * "MEM<TAB>name<TAB>workspace_bytes<TAB>maxrss_delta_kB": the workspace the loss object holds
 * and the growth of the process's peak RSS from just before the first step to the end of the
 * timing (meaningful when one case runs per process, as loss_compare.py does).
 * Setup: N = 4B samples; step k uses ids (k B + i) mod N, so the state sees unseen -> seen
 * transitions; features are random unit vectors with txt = normalise(img + 0.6 noise).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/dist.h"
#include "losses/gcl_bimodal_dist.h"
#include "losses/sogclr.h"
#include "ops/gemm.h"

static const char *filter;

static int selected(const char *name)
{
    return !filter || strstr(name, filter) != NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 2 warm-ups, then up to 30 runs until 0.5 s (at least 3); prints median and min. */
static void time_case(const char *name, void (*fn)(void *), void *arg)
{
    double t[32];
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

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Deterministic normal-ish values (sum of uniforms), rows normalised. */
static void unit_rows(float *z, const float *base, int B, int d, uint64_t seed, float noise)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < B; i++) {
        double nrm = 0.0;
        for (int k = 0; k < d; k++) {
            double r = 0.0;
            for (int q = 0; q < 4; q++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                r += (double)(s >> 11) / 9007199254740992.0 - 0.5;
            }
            float v = (float)r * (base ? noise : 1.0f) + (base ? base[i * d + k] : 0.0f);
            z[i * d + k] = v;
            nrm += (double)v * v;
        }
        for (int k = 0; k < d; k++) z[i * d + k] = (float)(z[i * d + k] / sqrt(nrm));
    }
}

struct lcase {
    struct sg_ctx *c;
    struct sg_dist *dist; /* dist_* cases: the single backend (world 1) */
    struct sogclr *l;
    int B, d, step;
    int64_t N, *idx;
    float *zi, *zt, *dzi, *dzt, *M;
};

static void run_loss(void *arg)
{
    struct lcase *k = arg;
    for (int i = 0; i < k->B; i++) k->idx[i] = ((int64_t)k->step * k->B + i) % k->N;
    k->step++;
    int rc = k->dist
                 ? sogclr_step_dist(k->dist, k->c, k->l, k->zi, k->zt, k->idx, k->B, k->d, k->dzi,
                                    k->dzt, NULL)
                 : sogclr_step(k->c, k->l, k->zi, k->zt, k->idx, k->B, k->d, k->dzi, k->dzt, NULL);
    SG_CHECK(rc == 0, "%s", sg_last_error());
}

static void run_floor(void *arg)
{
    struct lcase *k = arg;
    const int64_t B = k->B, d = k->d;
    float a = 1.0f / (2.0f * (float)B * (float)(B - 1));
    sg_gemm(0, 1, B, B, d, 1.0f, k->zi, d, k->zt, d, 0.0f, k->M, B);
    sg_gemm(0, 0, B, d, B, a, k->M, B, k->zt, d, 0.0f, k->dzi, d);
    sg_gemm(1, 0, B, d, B, a, k->M, B, k->zi, d, 0.0f, k->dzt, d);
}

static void bench_case(struct sg_ctx *c, int B, int d)
{
    char lname[64], fname[64], dname[64];
    snprintf(lname, sizeof lname, "sogclr_B%d_d%d", B, d);
    snprintf(fname, sizeof fname, "floor_B%d_d%d", B, d);
    snprintf(dname, sizeof dname, "dist_B%d_d%d", B, d);
    int want_dist = filter && strstr(filter, "dist") && selected(dname); /* opt-in */
    if (!selected(lname) && !selected(fname) && !want_dist) return;
    struct lcase k = {c, NULL, NULL, B, d, 0, 4 * (int64_t)B, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nz = sizeof(float) * (size_t)B * d;
    k.zi = sg_xmalloc_aligned(nz), k.zt = sg_xmalloc_aligned(nz);
    k.dzi = sg_xmalloc_aligned(nz), k.dzt = sg_xmalloc_aligned(nz);
    k.idx = sg_xmalloc(sizeof(int64_t) * (size_t)B);
    unit_rows(k.zi, NULL, B, d, 1, 0.0f);
    unit_rows(k.zt, k.zi, B, d, 2, 0.6f);
    if (selected(lname)) {
        struct sogclr l;
        struct sogclr_config cfg = {k.N, 0.05f, 0.8f, GCL_BI_GAMMA_COSINE, 10};
        SG_CHECK(sogclr_init(&l, &cfg) == 0, "%s", sg_last_error());
        k.l = &l;
        long rss0 = maxrss_kb();
        time_case(lname, run_loss, &k);
        printf("MEM\t%s\t%zu\t%ld\n", lname, sogclr_workspace_bytes(&l), maxrss_kb() - rss0);
        sogclr_free(&l);
    }
    if (want_dist) {
        struct sogclr l;
        struct sg_dist one;
        struct sogclr_config cfg = {k.N, 0.05f, 0.8f, GCL_BI_GAMMA_COSINE, 10};
        SG_CHECK(sogclr_init(&l, &cfg) == 0 && sg_dist_init(&one, "single", c, 0) == 0, "%s",
                 sg_last_error());
        k.l = &l, k.dist = &one, k.step = 0;
        time_case(dname, run_loss, &k);
        k.dist = NULL;
        sg_dist_finalize(&one);
        sogclr_free(&l);
    }
    if (selected(fname)) {
        k.M = sg_xmalloc_aligned(sizeof(float) * (size_t)B * B);
        time_case(fname, run_floor, &k);
        sg_afree(k.M);
    }
    sg_afree(k.zi), sg_afree(k.zt), sg_afree(k.dzi), sg_afree(k.dzt);
    free(k.idx);
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
        fprintf(stderr, "bench_loss: %s\n", sg_last_error());
        return 1;
    }
    printf("# sogclip bench_loss: %d threads\n", c.nthreads);
    static const int Bs[3] = {256, 1024, 4096}, ds[2] = {256, 512};
    for (int b = 0; b < 3; b++)
        for (int e = 0; e < 2; e++) bench_case(&c, Bs[b], ds[e]);
    sg_ctx_free(&c);
    return 0;
}
