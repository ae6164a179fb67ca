/* losses/simclr_dist.c — see simclr_dist.h. The row passes are those of simclr.c. */
#include "losses/simclr_dist.h"

#include <math.h>
#include <stdlib.h>

#include "core/common.h"
#include "losses/two_view_rows.h"
#include "ops/gemm.h"

/* Workspace views (host, carved from l->dist_buf, each piece 64-byte aligned). */
struct simclr_ws {
    float *zg;    /* (2G, d) [za_g; zb_g] */
    float *x;     /* (2B, 2G) local logits rows, then rows of G + G^T */
    float *lse_l; /* (2B) local row log-sum-exps */
    float *tmp;   /* (2G) gathered, rank-major */
    float *lse_g; /* (2G) in global row order */
    double *part; /* (world) the ranks' loss sums */
};

static struct simclr_ws carve(struct sg_simclr_loss *l, int64_t B, int64_t G, int64_t d, int W)
{
    size_t o[6], n = 0;
    const size_t sz[6] = {tv_pad16((size_t)(2 * G * d)), tv_pad16((size_t)(4 * B * G)),
                          tv_pad16((size_t)(2 * B)),     tv_pad16((size_t)(2 * G)),
                          tv_pad16((size_t)(2 * G)),     tv_pad16((size_t)(2 * W))};
    for (int i = 0; i < 6; i++) o[i] = n, n += sz[i];
    if (n > l->dist_cap) {
        free(l->dist_buf);
        l->dist_buf = sg_xmalloc_aligned(n * sizeof(float));
        l->dist_cap = n;
    }
    float *b = l->dist_buf;
    return (struct simclr_ws){b + o[0], b + o[1], b + o[2],
                              b + o[3], b + o[4], (double *)(b + o[5])};
}

/* The gathered views z (2G, d) are finite (the same verdict on every rank). */
static int check_finite(const float *z, int64_t G, int64_t d, int64_t B, int rank)
{
    for (int64_t i = 0; i < 2 * G * d; i++)
        if (!isfinite(z[i])) {
            int64_t row = i / d, sample = row % G;
            return sg_err("simclr (distributed, rank %d): view %c of global sample %lld (rank "
                          "%lld) contains NaN or Inf",
                          rank, row < G ? 'a' : 'b', (long long)sample, (long long)(sample / B));
        }
    return 0;
}

int sg_simclr_step_dist(struct sg_dist *dd, struct sg_simclr_loss *l, const float *za,
                        const float *zb, int B, int dim, float *loss, float *dza, float *dzb)
{
    SG_CHECK(l && za && zb && loss, "NULL argument");
    SG_CHECK((dza == NULL) == (dzb == NULL), "dza and dzb must both be NULL or both be set");
    if (B < 1 || dim < 1) return sg_err("simclr (distributed): B = %d, d = %d", B, dim);
    const int64_t b = B, d = dim, G = (int64_t)dd->world * B, off = (int64_t)dd->rank * B;
    const int64_t n = 2 * G;
    if (G < 2) return sg_err("simclr (distributed): global batch of %lld; need >= 2", (long long)G);
    struct simclr_ws w = carve(l, b, G, d, dd->world);
    size_t fb = (size_t)(b * d) * sizeof(float);
    if (sg_dist_allgather(dd, w.zg, za, fb) || sg_dist_allgather(dd, w.zg + G * d, zb, fb))
        return -1;
    if (check_finite(w.zg, G, d, b, dd->rank)) return -1;
    const float it = 1.0f / l->tau;
    sg_gemm(0, 1, b, n, d, it, w.zg + off * d, d, w.zg, d, 0.0f, w.x, n);
    sg_gemm(0, 1, b, n, d, it, w.zg + (G + off) * d, d, w.zg, d, 0.0f, w.x + b * n, n);
    double sum = 0.0;
    for (int64_t q = 0; q < 2 * b; q++) {
        float *x = w.x + q * n;
        int64_t gr = tv_global_row(q, b, G, off);
        x[gr] = -INFINITY;
        double lse = sg_simclr_row_lse(x, (int)n);
        w.lse_l[q] = (float)lse;
        sum += lse - x[tv_partner(gr, G)];
    }
    if (sg_dist_allgather(dd, w.tmp, w.lse_l, (size_t)(2 * b) * sizeof(float))) return -1;
    tv_to_global(w.tmp, w.lse_g, b, G);
    if (sg_dist_allgather(dd, w.part, &sum, sizeof sum)) return -1;
    double total = 0.0;
    for (int r = 0; r < dd->world; r++) total += w.part[r]; /* rank order: same everywhere */
    *loss = (float)(total / (double)n);
    if (!dza) return 0;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < 2 * b; q++) {
        int64_t gr = tv_global_row(q, b, G, off);
        sg_simclr_h_row(w.x + q * n, (int)gr, (int)tv_partner(gr, G), (int)n, w.lse_g);
    }
    sg_gemm(0, 0, b, d, n, it, w.x, n, w.zg, d, 0.0f, dza, d);
    sg_gemm(0, 0, b, d, n, it, w.x + b * n, n, w.zg, d, 0.0f, dzb, d);
    return 0;
}
