/* losses/sogclr_uni_dist.c — see sogclr_uni_dist.h. The row passes are those of
 * sogclr_uni_forward_backward_cpu (losses/sogclr_uni.c), on 2B local rows of length 2G. */
#include "losses/sogclr_uni_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "losses/two_view_rows.h"
#include "ops/gemm.h"

/* Workspace views (host, carved from l->dist_buf; every piece 64-byte aligned). */
struct uni_ws {
    float *zg;                /* (2G, d) [za_g; zb_g] */
    float *s;                 /* (2B, 2G) local rows x global rows: similarities, e, then M */
    int64_t *idx_g, *sorted;  /* (G) gathered ids, sorted copy for the duplicate check */
    float *itf;               /* (2G) 1 / tau of every global row (pre-step) */
    float *a_l, *a_tmp, *a_g; /* (2B) local coefficients; (2G) gathered, rank-major / global */
    double *g, *h, *ur;       /* (2B) per local row */
    float *pos;               /* (2B) positive similarity per local row */
    float *res_l, *res_g;     /* (3B) new u, tau, tau_m of the local samples; (3G) gathered */
    double *part;             /* (world) the ranks' loss sums */
};

static struct uni_ws carve(struct sogclr_uni *l, int64_t B, int64_t G, int64_t d, int W)
{
    const size_t sz[] = {
        tv_pad16((size_t)(2 * G * d)), tv_pad16((size_t)(4 * B * G)), tv_pad16((size_t)(2 * G)),
        tv_pad16((size_t)(2 * G)),     tv_pad16((size_t)(2 * G)),     tv_pad16((size_t)(2 * B)),
        tv_pad16((size_t)(2 * G)),     tv_pad16((size_t)(2 * G)),     tv_pad16((size_t)(4 * B)),
        tv_pad16((size_t)(4 * B)),     tv_pad16((size_t)(4 * B)),     tv_pad16((size_t)(2 * B)),
        tv_pad16((size_t)(3 * B)),     tv_pad16((size_t)(3 * G)),     tv_pad16((size_t)(2 * W))};
    enum { N_PIECES = sizeof sz / sizeof sz[0] };
    size_t total = 0, off[N_PIECES];
    for (int i = 0; i < N_PIECES; i++) off[i] = total, total += sz[i];
    if (total > l->dist_cap) {
        free(l->dist_buf);
        l->dist_buf = sg_xmalloc_aligned(total * sizeof(float));
        l->dist_cap = total;
    }
    float *b = l->dist_buf;
    return (struct uni_ws){.zg = b + off[0],
                           .s = b + off[1],
                           .idx_g = (int64_t *)(b + off[2]),
                           .sorted = (int64_t *)(b + off[3]),
                           .itf = b + off[4],
                           .a_l = b + off[5],
                           .a_tmp = b + off[6],
                           .a_g = b + off[7],
                           .g = (double *)(b + off[8]),
                           .h = (double *)(b + off[9]),
                           .ur = (double *)(b + off[10]),
                           .pos = b + off[11],
                           .res_l = b + off[12],
                           .res_g = b + off[13],
                           .part = (double *)(b + off[14])};
}

/* Step 1: features and ids of every rank, then the same validation on every rank. */
static int gather_and_check(struct sg_dist *dd, struct sogclr_uni *l, const struct uni_ws *w,
                            const float *za, const float *zb, const int64_t *idx, int64_t B,
                            int64_t G, int64_t d)
{
    size_t fb = (size_t)(B * d) * sizeof(float);
    if (sg_dist_allgather(dd, w->zg, za, fb) || sg_dist_allgather(dd, w->zg + G * d, zb, fb) ||
        sg_dist_allgather(dd, w->idx_g, idx, (size_t)B * sizeof(int64_t)))
        return -1;
    if (sogclr_uni_check_batch(l, w->zg, w->zg + G * d, w->idx_g, (int)G, (int)d, w->sorted))
        return sg_err_prefix("(distributed, global batch of %lld samples, rank %d) ", (long long)G,
                             dd->rank);
    return 0;
}

/* Step 3: per local row statistics and coefficients (K = 2 (G - 1)). */
static void local_rows(const struct sogclr_uni *l, const struct uni_ws *w, int64_t B, int64_t G,
                       int64_t off)
{
    const double K = 2.0 * (double)(G - 1);
    const int iso = l->cfg.isogclr;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < 2 * B; q++) {
        int64_t gr = tv_global_row(q, B, G, off), pr = tv_partner(gr, G);
        w->pos[q] = sogclr_uni_row_stats(w->s + q * 2 * G, (int)(2 * G), (int)gr, (int)pr,
                                         w->itf[gr], !iso, &w->g[q], &w->h[q]);
        w->ur[q] = sogclr_uni_moving_average(l->u[w->idx_g[gr % G]], w->g[q] / K, l->gamma);
        w->a_l[q] = (float)(1.0 / (fmax(w->ur[q], (double)SOGCLR_UNI_EPS) * K * (double)G));
    }
}

/* Step 4: every rank's coefficients in global row order, and the global loss. */
static int gather_coefficients(struct sg_dist *dd, const struct uni_ws *w, int64_t B, int64_t G,
                               double local_sum, double *total)
{
    if (sg_dist_allgather(dd, w->a_tmp, w->a_l, (size_t)(2 * B) * sizeof(float))) return -1;
    tv_to_global(w->a_tmp, w->a_g, B, G);
    double mine = local_sum;
    if (sg_dist_allgather(dd, w->part, &mine, sizeof mine)) return -1;
    *total = 0.0;
    for (int r = 0; r < dd->world; r++) *total += w->part[r]; /* rank order: same everywhere */
    return 0;
}

/* Step 6: new state of the local samples, gathered and written for all G samples. */
static int update_state(struct sg_dist *dd, struct sogclr_uni *l, const struct uni_ws *w,
                        const int64_t *idx, int64_t B, int64_t G)
{
    const struct sogclr_uni_config *cf = &l->cfg;
    const double K = 2.0 * (double)(G - 1);
    float *u = w->res_l, *tau = u + B, *tau_m = tau + B;
    for (int64_t i = 0; i < B; i++) {
        int64_t k = idx[i];
        u[i] = (float)(0.5 * (w->ur[i] + w->ur[i + B]));
        tau[i] = tau_m[i] = 0.0f;
        if (!cf->isogclr) continue;
        double G2[2];
        for (int v = 0; v < 2; v++) {
            int64_t q = i + v * B;
            double inv = 1.0 / fmax(w->ur[q], (double)SOGCLR_UNI_EPS);
            double itr = 1.0 / (double)l->tau[k]; /* both views of sample k */
            G2[v] = log(w->ur[q]) + cf->rho - inv * w->h[q] / K * itr;
        }
        sogclr_uni_tau_step(cf, l->tau[k], l->tau_m[k], G2[0], G2[1], &tau[i], &tau_m[i]);
    }
    if (sg_dist_allgather(dd, w->res_g, w->res_l, (size_t)(3 * B) * sizeof(float))) return -1;
    for (int64_t j = 0; j < G; j++) {
        const float *r = w->res_g + (j / B) * 3 * B + j % B;
        int64_t k = w->idx_g[j];
        l->u[k] = r[0];
        if (cf->isogclr) l->tau[k] = r[B], l->tau_m[k] = r[2 * B];
    }
    return 0;
}

int sogclr_uni_step_dist(struct sg_dist *dd, struct sogclr_uni *l, const float *za, const float *zb,
                         const int64_t *idx, int B, int dim, float *loss, float *dza, float *dzb)
{
    SG_CHECK(l && za && zb && idx && loss, "NULL argument");
    SG_CHECK((dza == NULL) == (dzb == NULL), "dza and dzb must both be NULL or both be set");
    SG_CHECK(l->dev_ctx == NULL, "sogclr_uni (distributed): the state lives on the GPU");
    if (B < 1 || dim < 1) return sg_err("sogclr_uni (distributed): B = %d, d = %d", B, dim);
    const int64_t b = B, d = dim, G = (int64_t)dd->world * B, off = (int64_t)dd->rank * B;
    if (G < 2)
        return sg_err("sogclr_uni (distributed): global batch of %lld; need >= 2", (long long)G);
    struct uni_ws w = carve(l, b, G, d, dd->world);
    if (gather_and_check(dd, l, &w, za, zb, idx, b, G, d)) return -1;
    for (int64_t c = 0; c < 2 * G; c++)
        w.itf[c] = 1.0f / (l->cfg.isogclr ? l->tau[w.idx_g[c % G]] : l->cfg.tau);
    /* S: view-a rows, then view-b rows of this rank against all 2G rows */
    sg_gemm(0, 1, b, 2 * G, d, 1.0f, w.zg + off * d, d, w.zg, d, 0.0f, w.s, 2 * G);
    sg_gemm(0, 1, b, 2 * G, d, 1.0f, w.zg + (G + off) * d, d, w.zg, d, 0.0f, w.s + b * 2 * G,
            2 * G);
    local_rows(l, &w, b, G, off);
    const double K = 2.0 * (double)(G - 1);
    double sum = 0.0, total = 0.0;
    for (int64_t q = 0; q < 2 * b; q++)
        sum += -(double)w.pos[q] + w.h[q] / (fmax(w.ur[q], (double)SOGCLR_UNI_EPS) * K);
    if (gather_coefficients(dd, &w, b, G, sum, &total)) return -1;
    *loss = (float)(total / (double)G);
    if (dza) {
        float neg = -2.0f / (float)G;
#pragma omp parallel for schedule(static)
        for (int64_t q = 0; q < 2 * b; q++) {
            int64_t gr = tv_global_row(q, b, G, off);
            sogclr_uni_row_coef(w.s + q * 2 * G, (int)(2 * G), (int)gr, (int)tv_partner(gr, G),
                                w.a_g, w.itf, l->cfg.isogclr, neg);
        }
        sg_gemm(0, 0, b, d, 2 * G, 1.0f, w.s, 2 * G, w.zg, d, 0.0f, dza, d);
        sg_gemm(0, 0, b, d, 2 * G, 1.0f, w.s + b * 2 * G, 2 * G, w.zg, d, 0.0f, dzb, d);
    }
    return update_state(dd, l, &w, idx, b, G);
}
