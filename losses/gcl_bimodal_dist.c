/*
 * losses/gcl_bimodal_dist.c — the bimodal GCL engine on a data-parallel batch and its two-way
 * SogCLR and FastCLIP-v3 steps (see gcl_bimodal_dist.h).
 * Row passes in double (sums of exponentials), OpenMP over this rank's rows; the three GEMMs per
 * direction through sg_gemm. Every rank computes the gathered quantities identically, so the
 * replicated states stay bit-identical across ranks.
 */
#include "losses/gcl_bimodal_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/gemm.h"
#include "ops/vmath.h"

/* Per-anchor results exchanged after the local update (floats per anchor). */
enum { A_UI, A_UT, A_BI, A_BT, A_LOGUI, A_LOGUT, A_PAI, A_PAT, A_N };

/* Workspace layout in db->buf: the sample ids idx_g and their sorted copy sidx (G int64 each,
 * first: 8-byte aligned), then floats zi_g, zt_g (G d), Si, St (B G), pos (G), anc_l (A_N B),
 * anc_g (A_N G), rs (2 B), the global anchors' temperatures tI, tT and their inverses aI, aT
 * (G each). Sized once; a step allocates nothing. */
struct dist_ws {
    int64_t *idx_g, *sidx;
    float *zi_g, *zt_g, *Si, *St, *pos, *anc_l, *anc_g, *rsI, *rsT, *tI, *tT, *aI, *aT;
};

static struct dist_ws carve(struct gcl_bi_dist_buf *db, int64_t B, int64_t G, int64_t d)
{
    size_t need = (size_t)(4 * G + 2 * G * d + 2 * B * G + G + A_N * B + A_N * G + 2 * B + 4 * G);
    if (need > db->cap) {
        free(db->buf);
        db->buf = sg_xmalloc(need * sizeof(float));
        db->cap = need;
    }
    struct dist_ws w;
    w.idx_g = (int64_t *)db->buf;
    w.sidx = w.idx_g + G;
    float *p = (float *)(w.sidx + G);
    w.zi_g = p, p += G * d;
    w.zt_g = p, p += G * d;
    w.Si = p, p += B * G;
    w.St = p, p += B * G;
    w.pos = p, p += G;
    w.anc_l = p, p += A_N * B;
    w.anc_g = p, p += A_N * G;
    w.rsI = p, p += B;
    w.rsT = p, p += B;
    w.tI = p, p += G;
    w.tT = p, p += G;
    w.aI = p, p += G;
    w.aT = p;
    return w;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The same checks as the single-process step, on the gathered batch (same verdict everywhere). */
static int check_global(const char *who, int64_t N, const struct dist_ws *w, int64_t B, int64_t G,
                        int64_t d)
{
    for (int64_t i = 0; i < G * d; i++)
        if (!isfinite(w->zi_g[i]) || !isfinite(w->zt_g[i]))
            return sg_err("%s: features of global row %lld (rank %lld) contain NaN or Inf; state "
                          "left unchanged",
                          who, (long long)(i / d), (long long)(i / d / B));
    int64_t *s = w->sidx;
    memcpy(s, w->idx_g, sizeof(int64_t) * (size_t)G);
    qsort(s, (size_t)G, sizeof(int64_t), cmp_i64);
    int rc = 0;
    for (int64_t i = 0; i < G && rc == 0; i++) {
        if (s[i] < 0 || s[i] >= N)
            rc = sg_err("%s: sample id %lld outside [0, N = %lld); pass dataset sample ids", who,
                        (long long)s[i], (long long)N);
        else if (i > 0 && s[i] == s[i - 1])
            rc = sg_err("%s: sample id %lld appears twice in the global batch; ranks must read "
                        "disjoint shards",
                        who, (long long)s[i]);
    }
    return rc;
}

/* Sums of e = exp(A - b) and e A over row[lo, hi), A = (row[j] - pos) a (A - b <= 0): float
 * exponentials (the single-process engine's sg_expf_nonpos), double sums. */
static void exp_sums(const float *row, int64_t lo, int64_t hi, float pos, float a, float b,
                     double *rs, double *ra)
{
    double e = 0.0, ea = 0.0;
#pragma omp simd reduction(+ : e, ea)
    for (int64_t j = lo; j < hi; j++) {
        float A = (row[j] - pos) * a, x = sg_expf_nonpos(A - b);
        e += x;
        ea += x * A;
    }
    *rs += e, *ra += ea;
}

/* One local anchor: row (G) of similarities, its global column i, pos_i; old state u, b.
 * Writes u_new, b_new, log U, pa = (1/(G-1)) sum_{j != i} p_ij A_ij and rs = sum e_ij. */
static void anchor(const float *row, int64_t i, int64_t G, float pos_i, float a, float u_old,
                   float b_old, float gamma, float *u_new, float *b_new, float *logU, float *pa,
                   float *rs_out)
{
    float b = b_old > 0.0f ? b_old : 0.0f; /* A_ii = 0 is included in the max */
    for (int64_t j = 0; j < G; j++) {
        float A = (row[j] - pos_i) * a;
        if (j != i && A > b) b = A;
    }
    double rs = 0.0, ra = 0.0; /* the diagonal is skipped, not subtracted (no cancellation) */
    exp_sums(row, 0, i, pos_i, a, b, &rs, &ra);
    exp_sums(row, i + 1, G, pos_i, a, b, &rs, &ra);
    float u = gcl_bi_u_update(u_old, b_old, b, rs, G, gamma);
    *u_new = u;
    *b_new = b;
    *logU = logf(u) + b;
    *pa = (float)(ra / (double)u / (double)(G - 1));
    *rs_out = (float)rs;
}

/* Coefficients of one local row k (global column gi) over the G columns, written over row:
 * M[j] = exp((row[j] - pos_self) a_self - logU_self) + exp((row[j] - pos[j]) a_other[j] -
 * logU_other[j]) for j != gi (a: inverse temperatures of the anchors); M[gi] = diag. */
static void coef_row(float *row, int64_t gi, int64_t G, float pos_self, float a_self,
                     float logU_self, const float *pos, const float *a_other,
                     const float *logU_other, float diag)
{
#pragma omp simd
    for (int64_t j = 0; j < G; j++) {
        float s = row[j];
        row[j] = sg_expf_fast((s - pos_self) * a_self - logU_self) +
                 sg_expf_fast((s - pos[j]) * a_other[j] - logU_other[j]);
    }
    row[gi] = diag;
}

static int gather_inputs(struct sg_dist *dd, const struct dist_ws *w, const float *zi,
                         const float *zt, const int64_t *idx, int64_t B, int64_t d)
{
    size_t fb = (size_t)(B * d) * sizeof(float);
    if (sg_dist_allgather(dd, w->zi_g, zi, fb)) return -1;
    if (sg_dist_allgather(dd, w->zt_g, zt, fb)) return -1;
    return sg_dist_allgather(dd, w->idx_g, idx, (size_t)B * sizeof(int64_t));
}

/* Steps 4-5: local anchors of both directions, then the all-gather of their results. */
static int local_anchors(struct sg_dist *dd, const struct gcl_bi_state *st, float gamma,
                         const struct dist_ws *w, const int64_t *idx, int64_t B, int64_t G,
                         int64_t off)
{
    float *q = w->anc_l;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < B; k++) {
        int64_t gi = off + k, id = idx[k];
        anchor(w->Si + k * G, gi, G, w->pos[gi], w->aI[gi], st->u_img[id], st->b_img[id], gamma,
               &q[A_UI * B + k], &q[A_BI * B + k], &q[A_LOGUI * B + k], &q[A_PAI * B + k],
               &w->rsI[k]);
        anchor(w->St + k * G, gi, G, w->pos[gi], w->aT[gi], st->u_txt[id], st->b_txt[id], gamma,
               &q[A_UT * B + k], &q[A_BT * B + k], &q[A_LOGUT * B + k], &q[A_PAT * B + k],
               &w->rsT[k]);
    }
    /* anc_l is (A_N, B) field-major: gather each field so anc_g is (A_N, G) in rank order */
    for (int f = 0; f < A_N; f++)
        if (sg_dist_allgather(dd, w->anc_g + f * G, q + f * B, (size_t)B * sizeof(float)))
            return -1;
    return 0;
}

/* The temperatures of the G global anchors (pre-step) and their inverses. */
static void anchor_temps(const struct dist_ws *w, int64_t G, float tau, const float *tau_img,
                         const float *tau_txt)
{
    for (int64_t j = 0; j < G; j++) {
        w->tI[j] = tau_img ? tau_img[w->idx_g[j]] : tau;
        w->tT[j] = tau_txt ? tau_txt[w->idx_g[j]] : tau;
        w->aI[j] = 1.0f / w->tI[j];
        w->aT[j] = 1.0f / w->tT[j];
    }
}

int gcl_bi_step_dist(struct sg_dist *dd, struct gcl_bi_dist_buf *db, struct gcl_bi_state *st,
                     const char *who, float tau, const float *tau_img, const float *tau_txt,
                     float gamma, const float *zi, const float *zt, const int64_t *idx, int B,
                     int dim, float *dzi, float *dzt, struct gcl_bi_dist_rows *rows)
{
    if (B < 1 || dim < 1) return sg_err("%s: B = %d, d = %d", who, B, dim);
    const int64_t b = B, d = dim, G = (int64_t)dd->world * B, off = (int64_t)dd->rank * B;
    if (G < 2) return sg_err("%s: global batch of %lld pairs; need >= 2", who, (long long)G);
    struct dist_ws w = carve(db, b, G, d);
    int rc = gather_inputs(dd, &w, zi, zt, idx, b, d);
    if (rc == 0) rc = check_global(who, st->N, &w, b, G, d);
    if (rc) return -1;
    anchor_temps(&w, G, tau, tau_img, tau_txt);
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < G; j++) {
        double s = 0.0;
        for (int64_t k = 0; k < d; k++) s += (double)w.zi_g[j * d + k] * w.zt_g[j * d + k];
        w.pos[j] = (float)s;
    }
    sg_gemm(0, 1, b, G, d, 1.0f, zi, d, w.zt_g, d, 0.0f, w.Si, G); /* zi_loc zt_g^T */
    sg_gemm(0, 1, b, G, d, 1.0f, zt, d, w.zi_g, d, 0.0f, w.St, G); /* zt_loc zi_g^T */
    if (local_anchors(dd, st, gamma, &w, idx, b, G, off)) return -1;
    const float *g = w.anc_g, *q = w.anc_l;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < b; k++) {
        float diag = -(w.rsI[k] / q[A_UI * b + k] + w.rsT[k] / q[A_UT * b + k]);
        int64_t gi = off + k;
        coef_row(w.Si + k * G, gi, G, w.pos[gi], w.aI[gi], q[A_LOGUI * b + k], w.pos, w.aT,
                 g + A_LOGUT * G, diag);
        coef_row(w.St + k * G, gi, G, w.pos[gi], w.aT[gi], q[A_LOGUT * b + k], w.pos, w.aI,
                 g + A_LOGUI * G, diag);
    }
    float kscale = 1.0f / (2.0f * (float)G * (float)(G - 1));
    sg_gemm(0, 0, b, d, G, kscale, w.Si, G, w.zt_g, d, 0.0f, dzi, d);
    sg_gemm(0, 0, b, d, G, kscale, w.St, G, w.zi_g, d, 0.0f, dzt, d);
    for (int64_t j = 0; j < G; j++) { /* replicated state: every rank writes all G anchors */
        int64_t id = w.idx_g[j];
        st->u_img[id] = g[A_UI * G + j];
        st->u_txt[id] = g[A_UT * G + j];
        st->b_img[id] = g[A_BI * G + j];
        st->b_txt[id] = g[A_BT * G + j];
    }
    *rows = (struct gcl_bi_dist_rows){
        G, w.idx_g, w.tI, w.tT, g + A_LOGUI * G, g + A_LOGUT * G, g + A_PAI * G, g + A_PAT * G};
    return 0;
}

int sogclr_step_dist(struct sg_dist *dd, struct sg_ctx *c, struct sogclr *l, const float *zi,
                     const float *zt, const int64_t *idx, int B, int dim, float *dzi, float *dzt,
                     struct sogclr_out *out)
{
    (void)c;
    struct gcl_bi_dist_buf db = {l->dist_buf, l->dist_cap};
    struct gcl_bi_dist_rows r;
    int rc = gcl_bi_step_dist(dd, &db, &l->st, "sogclr (distributed)", l->cfg.tau, NULL, NULL,
                              l->sched.gamma_cur, zi, zt, idx, B, dim, dzi, dzt, &r);
    l->dist_buf = db.buf, l->dist_cap = db.cap;
    if (rc || !out) return rc;
    double s = 0.0, o = 0.0, tau = l->cfg.tau;
    for (int64_t j = 0; j < r.G; j++) {
        s += tau * r.pa_img[j] + tau * r.pa_txt[j];
        o += tau * r.logU_img[j] + tau * r.logU_txt[j];
    }
    out->loss = (float)(s / (2.0 * (double)r.G));
    out->objective = (float)(o / (2.0 * (double)r.G));
    out->gamma = l->sched.gamma_cur;
    return 0;
}

int fastclip_step_dist(struct sg_dist *dd, struct sg_ctx *c, struct fastclip *l, float tau,
                       const float *zi, const float *zt, const int64_t *idx, int B, int dim,
                       float *dzi, float *dzt, struct fastclip_out *out)
{
    (void)c;
    if (!(tau > 0.0f && isfinite(tau)))
        return sg_err("fastclip (distributed): tau = %g must be a finite positive temperature",
                      (double)tau);
    struct gcl_bi_dist_buf db = {l->dist_buf, l->dist_cap};
    struct gcl_bi_dist_rows r;
    int rc = gcl_bi_step_dist(dd, &db, &l->st, "fastclip (distributed)", tau, NULL, NULL,
                              l->sched.gamma_cur, zi, zt, idx, B, dim, dzi, dzt, &r);
    l->dist_buf = db.buf, l->dist_cap = db.cap;
    if (rc) return rc;
    /* as fastclip.c finish(), over the G global anchors (identical on every rank) */
    double logU = 0.0, pa = 0.0;
    for (int64_t j = 0; j < r.G; j++) {
        logU += (double)r.logU_img[j] + r.logU_txt[j];
        pa += (double)r.pa_img[j] + r.pa_txt[j];
    }
    double G2 = 2.0 * (double)r.G, rho = l->cfg.rho, dtau = rho + (logU - pa) / G2;
    out->loss = (float)((double)tau * pa / G2);
    out->objective = (float)((double)tau * logU / G2 + rho * tau);
    out->gamma = l->sched.gamma_cur;
    out->dtau = (float)dtau;
    out->dlog_scale = (float)(-(double)tau * dtau);
    return 0;
}

int isogclr_step_dist(struct sg_dist *dd, struct sg_ctx *c, struct isogclr *l, const float *zi,
                      const float *zt, const int64_t *idx, int B, int dim, float *dzi, float *dzt,
                      struct isogclr_out *out)
{
    (void)c;
    SG_CHECK(l->dev == NULL, "isogclr (distributed): the state lives on the GPU");
    struct gcl_bi_dist_buf db = {l->dist_buf, l->dist_cap};
    struct gcl_bi_dist_rows r;
    int rc = gcl_bi_step_dist(dd, &db, &l->st, "isogclr (distributed)", 0.0f, l->tau_img,
                              l->tau_txt, l->sched.gamma_cur, zi, zt, idx, B, dim, dzi, dzt, &r);
    l->dist_buf = db.buf, l->dist_cap = db.cap;
    if (rc) return rc;
    if (out) { /* as isogclr.c finish(), over the G global anchors (identical on every rank) */
        double ti = 0.0, tt = 0.0, s = 0.0, o = 0.0, G2 = 2.0 * (double)r.G;
        for (int64_t j = 0; j < r.G; j++) {
            ti += r.tau_img[j];
            tt += r.tau_txt[j];
            s += (double)r.tau_img[j] * r.pa_img[j] + (double)r.tau_txt[j] * r.pa_txt[j];
            o += (double)r.tau_img[j] * r.logU_img[j] + (double)r.tau_txt[j] * r.logU_txt[j];
        }
        out->loss = (float)(s / G2);
        out->objective = (float)(o / G2 + (double)l->cfg.rho * (ti + tt) / G2);
        out->gamma = l->sched.gamma_cur;
        out->tau_img_mean = (float)(ti / (double)r.G);
        out->tau_txt_mean = (float)(tt / (double)r.G);
    }
    for (int64_t j = 0; j < r.G; j++) { /* every rank: all G samples, the same values */
        int64_t k = r.idx[j];
        isogclr_tau_update(&l->cfg, &l->m_img[k], &l->tau_img[k], r.logU_img[j], r.pa_img[j]);
        isogclr_tau_update(&l->cfg, &l->m_txt[k], &l->tau_txt[k], r.logU_txt[j], r.pa_txt[j]);
    }
    return 0;
}

uint64_t gcl_bi_dist_bytes_per_step(int B, int dim)
{
    return (uint64_t)B * (2u * (uint64_t)dim * 4u + 8u + A_N * 4u);
}
