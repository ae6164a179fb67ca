/*
 * tests/test_syncbn.c — SyncBN (ctx.bn_sync, ops/norm.h): BatchNorm2d/1d in training mode with
 * the statistics of all ranks' batches, against the one-process op on the concatenated batch
 * (torch.nn.SyncBatchNorm's definition). Run by ctest under `mpirun -np 2` and alone (world 1: the
 * same comparison through the single backend, trivially one rank).
 *
 * Every rank builds the same global batch x(B,C,HW), dout, gamma/beta and running stats, runs the
 * plain op (bn_sync NULL) on all of it, and the synchronised op on its rows [B r/W, B (r+1)/W)
 * (uneven splits and one sample per rank included). Per case:
 *   - two training forwards (running stats after both, momentum 0.1): its rows of out, the
 *     global mean/rstd, running_mean/running_var; running stats bit-identical on every rank;
 *   - backward: its rows of dinp; dgamma/dbeta accumulated onto a start value held by rank 0,
 *     all-reduced (the trainer's gradient sum), against the one-process gradients;
 *   - backward with dinp NULL: no collective, the same local dgamma/dbeta bits;
 *   - collective count: one per training forward, one per backward with dinp, none in eval;
 *   - eval forward/backward with bn_sync set: bit-identical to the plain op, no collective.
 * Tolerance: max |got - want| <= 1e-5 rms(want) (the same double sums in another order, rounded
 * to float: ~1e-7 observed). Cases: (8,5,3x7) offset 20 (mean >> std), (7,4,3x3) uneven, (6,16,
 * 33x33) threaded, BatchNorm1d (6,10) and (2,3), affine=False without running stats.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/dist.h"
#include "ops/norm.h"
#include "tests/testutil.h"

#define TOL      1e-5
#define MOMENTUM 0.1f
#define EPS      1e-5f

struct bn_case {
    int B, C, HW;
    float offset;
    int affine, track;
    const char *name;
};

static const struct bn_case cases[] = {
    {8, 5, 21, 20.0f, 1, 1, "(8,5,3x7) offset 20"},
    {7, 4, 9, 0.0f, 1, 1, "(7,4,3x3) uneven split"},
    {6, 16, 1089, 0.5f, 1, 1, "(6,16,33x33) threaded"},
    {6, 10, 1, 1.0f, 1, 1, "BatchNorm1d (6,10)"},
    {2, 3, 1, 0.0f, 1, 1, "BatchNorm1d (2,3)"},
    {4, 6, 16, 0.0f, 0, 0, "(4,6,4x4) affine=False, no running stats"},
};

static struct sg_dist g_d;
static struct sg_ctx g_plain, g_sync; /* bn_sync NULL / &g_d */

static float *fbuf(size_t n)
{
    return sg_xcalloc(n ? n : 1, sizeof(float));
}

/* max |got - want| <= TOL rms(want); prints the first mismatches and the error. */
static int check(const char *cname, const char *what, const float *got, const float *want,
                 int64_t n)
{
    double ss = 0.0, worst = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)want[i] * want[i];
    double rms = n ? sqrt(ss / (double)n) : 0.0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e > worst) worst = e;
        if (e > TOL * rms && bad++ < 3)
            printf("  rank %d %s %s[%lld]: got %.9g, want %.9g\n", g_d.rank, cname, what,
                   (long long)i, got[i], want[i]);
    }
    char label[256];
    snprintf(label, sizeof label, "rank %d %s: %s (n %lld, max err %.2g, rms %.3g)", g_d.rank,
             cname, what, (long long)n, worst, rms);
    return sg_test_true(label, bad == 0 && isfinite(worst));
}

static int same_bits(const float *a, const float *b, int64_t n)
{
    return n == 0 || memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* The running stats (2C) are the same bits on every rank. */
static void check_replicated(const struct bn_case *k, const float *rm, const float *rv)
{
    int C = k->C, W = g_d.world;
    float *mine = fbuf(2 * (size_t)C), *all = fbuf(2 * (size_t)C * W);
    memcpy(mine, rm, sizeof(float) * C);
    memcpy(mine + C, rv, sizeof(float) * C);
    SG_CHECK(sg_dist_allgather(&g_d, all, mine, sizeof(float) * 2 * C) == 0, "%s", sg_last_error());
    int same = 1;
    for (int r = 0; r < W; r++) same &= same_bits(all + (size_t)r * 2 * C, mine, 2 * C);
    char label[200];
    snprintf(label, sizeof label, "rank %d %s: running stats bit-identical on all %d ranks",
             g_d.rank, k->name, W);
    sg_test_true(label, same);
    free(mine);
    free(all);
}

struct bufs {
    float *x1, *x2, *dout, *gamma, *beta, *rm, *rv;              /* global inputs */
    float *out, *mean, *rstd, *dinp, *dg, *db, *rm_f, *rv_f;     /* one-process results */
    float *lout, *lmean, *lrstd, *ldinp, *ldg, *ldb, *lrm, *lrv; /* this rank's results */
};

static void bufs_alloc(struct bufs *b, const struct bn_case *k, int64_t nl, uint64_t seed)
{
    size_t n = (size_t)k->B * k->C * k->HW, C = (size_t)k->C;
    b->x1 = fbuf(n), b->x2 = fbuf(n), b->dout = fbuf(n), b->out = fbuf(n), b->dinp = fbuf(n);
    b->gamma = fbuf(C), b->beta = fbuf(C), b->rm = fbuf(C), b->rv = fbuf(C);
    b->mean = fbuf(C), b->rstd = fbuf(C), b->dg = fbuf(C), b->db = fbuf(C);
    b->rm_f = fbuf(C), b->rv_f = fbuf(C), b->lmean = fbuf(C), b->lrstd = fbuf(C);
    b->ldg = fbuf(C), b->ldb = fbuf(C), b->lrm = fbuf(C), b->lrv = fbuf(C);
    b->lout = fbuf((size_t)nl), b->ldinp = fbuf((size_t)nl);
    sg_test_fill(b->x1, (int64_t)n, seed, k->offset - 1.0f, k->offset + 1.0f);
    sg_test_fill(b->x2, (int64_t)n, seed + 1, k->offset - 2.0f, k->offset + 1.5f);
    sg_test_fill(b->dout, (int64_t)n, seed + 2, -1.0f, 1.0f);
    sg_test_fill(b->gamma, k->C, seed + 3, 0.5f, 1.5f);
    sg_test_fill(b->beta, k->C, seed + 4, -0.5f, 0.5f);
    sg_test_fill(b->rm, k->C, seed + 5, -0.2f, 0.2f);
    sg_test_fill(b->rv, k->C, seed + 6, 0.5f, 1.5f);
}

static void bufs_free(struct bufs *b)
{
    float *all[] = {b->x1,    b->x2,    b->dout,  b->gamma, b->beta, b->rm,   b->rv,   b->out,
                    b->mean,  b->rstd,  b->dinp,  b->dg,    b->db,   b->rm_f, b->rv_f, b->lout,
                    b->lmean, b->lrstd, b->ldinp, b->ldg,   b->ldb,  b->lrm,  b->lrv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* The one-process op on the whole batch: two forwards, then backward (gradients onto dg/db,
 * which hold their start values). */
static void run_plain(const struct bn_case *k, struct bufs *b)
{
    const float *g = k->affine ? b->gamma : NULL, *be = k->affine ? b->beta : NULL;
    float *rm = k->track ? b->rm_f : NULL, *rv = k->track ? b->rv_f : NULL;
    memcpy(b->rm_f, b->rm, sizeof(float) * k->C);
    memcpy(b->rv_f, b->rv, sizeof(float) * k->C);
    op_batchnorm2d_forward(&g_plain, b->out, NULL, NULL, rm, rv, b->x1, g, be, k->B, k->C, k->HW,
                           MOMENTUM, EPS, 1);
    op_batchnorm2d_forward(&g_plain, b->out, b->mean, b->rstd, rm, rv, b->x2, g, be, k->B, k->C,
                           k->HW, MOMENTUM, EPS, 1);
    op_batchnorm2d_backward(&g_plain, b->dinp, k->affine ? b->dg : NULL, k->affine ? b->db : NULL,
                            b->dout, b->x2, g, b->mean, b->rstd, k->B, k->C, k->HW, 1);
}

/* Eval mode with bn_sync set: the plain op's bits on this rank's rows, no collective. */
static void check_eval(const struct bn_case *k, struct bufs *b, size_t o, int Bl)
{
    if (!k->track) return;
    int64_t nl = (int64_t)Bl * k->C * k->HW;
    float *y1 = fbuf((size_t)nl), *y2 = fbuf((size_t)nl), *m1 = fbuf(k->C), *r1 = fbuf(k->C);
    float *m2 = fbuf(k->C), *r2 = fbuf(k->C), *d1 = fbuf((size_t)nl), *d2 = fbuf((size_t)nl);
    const float *g = k->affine ? b->gamma : NULL, *be = k->affine ? b->beta : NULL;
    uint64_t n0 = g_d.ncoll;
    op_batchnorm2d_forward(&g_sync, y1, m1, r1, b->lrm, b->lrv, b->x2 + o, g, be, Bl, k->C, k->HW,
                           MOMENTUM, EPS, 0);
    op_batchnorm2d_backward(&g_sync, d1, NULL, NULL, b->dout + o, b->x2 + o, g, m1, r1, Bl, k->C,
                            k->HW, 0);
    uint64_t n1 = g_d.ncoll;
    op_batchnorm2d_forward(&g_plain, y2, m2, r2, b->lrm, b->lrv, b->x2 + o, g, be, Bl, k->C, k->HW,
                           MOMENTUM, EPS, 0);
    op_batchnorm2d_backward(&g_plain, d2, NULL, NULL, b->dout + o, b->x2 + o, g, m2, r2, Bl, k->C,
                            k->HW, 0);
    char label[200];
    snprintf(label, sizeof label,
             "rank %d %s: eval mode with bn_sync is the plain op bit for bit, no collective",
             g_d.rank, k->name);
    sg_test_true(label, n1 == n0 && same_bits(y1, y2, nl) && same_bits(d1, d2, nl) &&
                            same_bits(m1, m2, k->C) && same_bits(r1, r2, k->C));
    free(y1), free(y2), free(m1), free(r1), free(m2), free(r2), free(d1), free(d2);
}

static void run_case(const struct bn_case *k, uint64_t seed)
{
    int W = g_d.world, r = g_d.rank, C = k->C, HW = k->HW;
    int b0 = (int)((int64_t)k->B * r / W), b1 = (int)((int64_t)k->B * (r + 1) / W), Bl = b1 - b0;
    size_t o = (size_t)b0 * C * HW;
    int64_t nl = (int64_t)Bl * C * HW;
    struct bufs b;
    bufs_alloc(&b, k, nl, seed);
    /* one process, whole batch; dgamma/dbeta start at 0.25 / -0.5 */
    for (int c = 0; c < C; c++) b.dg[c] = 0.25f, b.db[c] = -0.5f;
    run_plain(k, &b);
    /* this rank's rows, synchronised; the start values on rank 0 only (summed below) */
    const float *g = k->affine ? b.gamma : NULL, *be = k->affine ? b.beta : NULL;
    float *rm = k->track ? b.lrm : NULL, *rv = k->track ? b.lrv : NULL;
    memcpy(b.lrm, b.rm, sizeof(float) * C);
    memcpy(b.lrv, b.rv, sizeof(float) * C);
    for (int c = 0; c < C; c++) b.ldg[c] = r == 0 ? 0.25f : 0.0f, b.ldb[c] = r == 0 ? -0.5f : 0.0f;
    uint64_t n0 = g_d.ncoll;
    op_batchnorm2d_forward(&g_sync, b.lout, NULL, NULL, rm, rv, b.x1 + o, g, be, Bl, C, HW,
                           MOMENTUM, EPS, 1);
    op_batchnorm2d_forward(&g_sync, b.lout, b.lmean, b.lrstd, rm, rv, b.x2 + o, g, be, Bl, C, HW,
                           MOMENTUM, EPS, 1);
    uint64_t n1 = g_d.ncoll;
    op_batchnorm2d_backward(&g_sync, b.ldinp, k->affine ? b.ldg : NULL, k->affine ? b.ldb : NULL,
                            b.dout + o, b.x2 + o, g, b.lmean, b.lrstd, Bl, C, HW, 1);
    uint64_t n2 = g_d.ncoll;
    /* dinp NULL: local dgamma/dbeta only, the same bits, no collective */
    float *dg2 = fbuf(C), *db2 = fbuf(C);
    for (int c = 0; c < C; c++) dg2[c] = r == 0 ? 0.25f : 0.0f, db2[c] = r == 0 ? -0.5f : 0.0f;
    op_batchnorm2d_backward(&g_sync, NULL, k->affine ? dg2 : NULL, k->affine ? db2 : NULL,
                            b.dout + o, b.x2 + o, g, b.lmean, b.lrstd, Bl, C, HW, 1);
    uint64_t n3 = g_d.ncoll;
    char label[200];
    snprintf(label, sizeof label,
             "rank %d %s: collectives 2 forwards %llu, backward %llu, backward without dinp "
             "%llu; local dgamma/dbeta the same without dinp",
             r, k->name, (unsigned long long)(n1 - n0), (unsigned long long)(n2 - n1),
             (unsigned long long)(n3 - n2));
    sg_test_true(label, n1 - n0 == 2 && n2 - n1 == 1 && n3 == n2 && same_bits(dg2, b.ldg, C) &&
                            same_bits(db2, b.ldb, C));
    check(k->name, "out rows", b.lout, b.out + o, nl);
    check(k->name, "mean", b.lmean, b.mean, C);
    check(k->name, "rstd", b.lrstd, b.rstd, C);
    if (k->track) {
        check(k->name, "running_mean", b.lrm, b.rm_f, C);
        check(k->name, "running_var", b.lrv, b.rv_f, C);
        check_replicated(k, b.lrm, b.lrv);
    }
    check(k->name, "dinp rows", b.ldinp, b.dinp + o, nl);
    if (k->affine) { /* the trainer's gradient sum over ranks */
        SG_CHECK(sg_dist_allreduce_sum_f32(&g_d, b.ldg, C) == 0 &&
                     sg_dist_allreduce_sum_f32(&g_d, b.ldb, C) == 0,
                 "%s", sg_last_error());
        check(k->name, "dgamma (summed over ranks)", b.ldg, b.dg, C);
        check(k->name, "dbeta (summed over ranks)", b.ldb, b.db, C);
    }
    check_eval(k, &b, o, Bl);
    free(dg2);
    free(db2);
    bufs_free(&b);
}

int main(void)
{
    SG_CHECK(sg_ctx_init(&g_plain, SG_DEVICE_CPU, 0, 0) == 0, "%s", sg_last_error());
    SG_CHECK(sg_ctx_init(&g_sync, SG_DEVICE_CPU, 0, 0) == 0, "%s", sg_last_error());
    if (sg_dist_init(&g_d, "auto", &g_sync, 60.0)) {
        fprintf(stderr, "FAIL: dist init: %s\n", sg_last_error());
        return 1;
    }
    g_sync.bn_sync = &g_d;
    printf("rank %d of %d (%s), %d threads\n", g_d.rank, g_d.world,
           sg_dist_backend_name(g_d.backend), g_sync.nthreads);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 100 + 10 * i);
    double fails = sg_test_failures();
    SG_CHECK(sg_dist_allreduce_sum_f64(&g_d, &fails, 1) == 0, "%s", sg_last_error());
    sg_dist_finalize(&g_d);
    sg_ctx_free(&g_plain);
    sg_ctx_free(&g_sync);
    int rc = sg_test_summary("test_syncbn");
    return rc ? rc : (fails > 0 ? 1 : 0);
}
