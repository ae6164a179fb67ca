/*
 * losses/gcl_bimodal.c — the shared bimodal GCL engine (see gcl_bimodal.h for the math).
 *
 * Fast path layout: S (B, B) in the workspace. Pass 1 reads S once for the row maxima (image
 * anchors) and per-thread column maxima (text anchors: column i of S is text anchor i); pass 2
 * computes e^I = exp(A^I - b^I) and e^T = exp(A^T - b^T) per element and accumulates the row
 * sums of e^I and e^I A^I and per-thread column sums of e^T and e^T A^T (p A sums are
 * (1/u) e A sums); for B <= store_max_b it stores e^I over S and e^T in W. Pass 3 writes
 * M_ij = e^I_ij / u^I_i + e^T_ij / u^T_j over S (from the stored values, or recomputing both
 * exponentials from S) and the diagonal from the pass-2 sums. Rows are split into one
 * contiguous block per thread; the diagonal element of each row is skipped by splitting the row
 * into [0, i) and (i, B) (subtracting it afterwards would cancel catastrophically when the
 * positive dominates).
 */
#include "losses/gcl_bimodal.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/gemm.h"
#include "ops/vmath.h"

/* Per-anchor arrays in ws->anc (B floats each). */
enum {
    AN_TAUI,
    AN_TAUT,
    AN_LOGUI,
    AN_LOGUT,
    AN_PAI,
    AN_PAT,
    AN_DIAG, /* S_ii */
    AN_AI,   /* 1 / tau^I_i */
    AN_AT,   /* 1 / tau^T_i */
    AN_BI,   /* b^I_new */
    AN_BT,   /* b^T_new */
    AN_UI,   /* u^I_new */
    AN_UT,   /* u^T_new */
    AN_IUI,  /* 1 / u^I_new */
    AN_IUT,  /* 1 / u^T_new */
    AN_RSI,  /* sum_{j!=i} exp(A^I_ij - b^I_i) */
    AN_RST,  /* sum_{j!=i} exp(A^T_ij - b^T_i) */
    AN_RAI,  /* sum_{j!=i} exp(A^I_ij - b^I_i) A^I_ij */
    AN_RMAX, /* max_j S_ij */
    GCL_BI_NANC
};

/* ---- state ---------------------------------------------------------------------------------- */

int gcl_bi_state_init(struct gcl_bi_state *s, int64_t N)
{
    memset(s, 0, sizeof *s);
    if (N < 1)
        return sg_err("bimodal GCL state: N = %lld; the dataset size must be >= 1", (long long)N);
    s->N = N;
    s->u_img = sg_xcalloc((size_t)N, sizeof(float));
    s->u_txt = sg_xcalloc((size_t)N, sizeof(float));
    s->b_img = sg_xcalloc((size_t)N, sizeof(float));
    s->b_txt = sg_xcalloc((size_t)N, sizeof(float));
    return 0;
}

void gcl_bi_state_free(struct gcl_bi_state *s)
{
    free(s->u_img);
    free(s->u_txt);
    free(s->b_img);
    free(s->b_txt);
    memset(s, 0, sizeof *s);
}

static const char *vec_name(char *buf, size_t n, const char *prefix, const char *name)
{
    snprintf(buf, n, "%s%s", prefix ? prefix : "", name);
    return buf;
}

void gcl_bi_state_save(const struct gcl_bi_state *s, struct sg_st_writer *w, const char *prefix)
{
    char name[256];
    int64_t shape[1] = {s->N};
    sg_stw_add_f32(w, vec_name(name, sizeof name, prefix, "u_img"), 1, shape, s->u_img);
    sg_stw_add_f32(w, vec_name(name, sizeof name, prefix, "u_txt"), 1, shape, s->u_txt);
    sg_stw_add_f32(w, vec_name(name, sizeof name, prefix, "b_img"), 1, shape, s->b_img);
    sg_stw_add_f32(w, vec_name(name, sizeof name, prefix, "b_txt"), 1, shape, s->b_txt);
}

int gcl_bi_check_vec(const struct sg_st_file *f, const char *prefix, const char *name, int64_t n)
{
    char full[256];
    vec_name(full, sizeof full, prefix, name);
    const struct sg_st_entry *e = sg_st_find(f, full);
    if (!e)
        return sg_err("%s: tensor '%s' missing; is this a state saved by the same loss (and "
                      "prefix)?",
                      f->path ? f->path : "state", full);
    if (e->dtype != SG_F32 || e->ndim != 1 || e->shape[0] != n)
        return sg_err("%s: tensor '%s' must be F32 of shape [%lld] (the loss was created with "
                      "N = %lld); was the state saved for a different dataset size?",
                      f->path ? f->path : "state", full, (long long)n, (long long)n);
    return 0;
}

void gcl_bi_read_vec(const struct sg_st_file *f, const char *prefix, const char *name, float *dst,
                     int64_t n)
{
    char full[256];
    vec_name(full, sizeof full, prefix, name);
    SG_CHECK(sg_st_read_f32(f, full, dst, n) == 0, "%s (validated before)", sg_last_error());
}

int gcl_bi_state_check(const struct gcl_bi_state *s, const struct sg_st_file *f, const char *prefix)
{
    static const char *names[4] = {"u_img", "u_txt", "b_img", "b_txt"};
    for (int k = 0; k < 4; k++)
        if (gcl_bi_check_vec(f, prefix, names[k], s->N) != 0) return -1;
    return 0;
}

void gcl_bi_state_copy_in(struct gcl_bi_state *s, const struct sg_st_file *f, const char *prefix)
{
    gcl_bi_read_vec(f, prefix, "u_img", s->u_img, s->N);
    gcl_bi_read_vec(f, prefix, "u_txt", s->u_txt, s->N);
    gcl_bi_read_vec(f, prefix, "b_img", s->b_img, s->N);
    gcl_bi_read_vec(f, prefix, "b_txt", s->b_txt, s->N);
}

/* ---- workspace ------------------------------------------------------------------------------ */

void gcl_bi_ws_init(struct gcl_bi_ws *ws)
{
    memset(ws, 0, sizeof *ws);
    ws->store_max_b = GCL_BI_STORE_MAX_B;
}

void gcl_bi_ws_free(struct gcl_bi_ws *ws)
{
    sg_afree(ws->S);
    sg_afree(ws->W);
    sg_afree(ws->anc);
    sg_afree(ws->part);
    sg_afree(ws->partf);
    sg_afree(ws->pkey);
    free(ws->sidx);
    memset(ws, 0, sizeof *ws);
}

void gcl_bi_ws_reserve(struct gcl_bi_ws *ws, int64_t B, int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    if (B > ws->cap_b) {
        sg_afree(ws->S);
        sg_afree(ws->W);
        sg_afree(ws->anc);
        free(ws->sidx);
        ws->S = sg_xmalloc_aligned(sizeof(float) * (size_t)(B * B));
        ws->W = B <= ws->store_max_b ? sg_xmalloc_aligned(sizeof(float) * (size_t)(B * B)) : NULL;
        ws->anc = sg_xmalloc_aligned(sizeof(float) * (size_t)(B * GCL_BI_NANC));
        ws->sidx = sg_xmalloc(sizeof(int64_t) * (size_t)B);
        memset(ws->anc, 0, sizeof(float) * (size_t)(B * GCL_BI_NANC));
        ws->cap_b = B;
        ws->cap_t = 0; /* partials are sized by B too */
    }
    if (nthreads > ws->cap_t) {
        sg_afree(ws->part);
        sg_afree(ws->pkey);
        sg_afree(ws->partf);
        ws->part = sg_xmalloc_aligned(sizeof(double) * (size_t)(2 * ws->cap_b * nthreads));
        ws->partf = sg_xmalloc_aligned(sizeof(float) * (size_t)(2 * ws->cap_b * nthreads));
        ws->pkey = sg_xmalloc_aligned(sizeof(int32_t) * (size_t)(ws->cap_b * nthreads));
        ws->cap_t = nthreads;
    }
    size_t cb = (size_t)ws->cap_b, ct = (size_t)ws->cap_t;
    ws->bytes = sizeof(float) * (cb * cb * (ws->W ? 2 : 1) + cb * GCL_BI_NANC + 2 * cb * ct) +
                sizeof(int32_t) * cb * ct + sizeof(double) * 2 * cb * ct + sizeof(int64_t) * cb;
    float *a = ws->anc;
    int64_t cap = ws->cap_b;
    ws->rows.tau_img = a + AN_TAUI * cap;
    ws->rows.tau_txt = a + AN_TAUT * cap;
    ws->rows.logU_img = a + AN_LOGUI * cap;
    ws->rows.logU_txt = a + AN_LOGUT * cap;
    ws->rows.pa_img = a + AN_PAI * cap;
    ws->rows.pa_txt = a + AN_PAT * cap;
}

/* ---- validation ----------------------------------------------------------------------------- */

static int all_finite(const float *x, int64_t n)
{
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t e = sg_f32_bits(x[i]) & 0x7f800000u;
        bad |= (uint32_t)(e == 0x7f800000u);
    }
    return bad == 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int gcl_bi_begin(struct gcl_bi_ws *ws, const char *who, int64_t N, const float *zi, const float *zt,
                 const int64_t *idx, int B, int d, int nthreads)
{
    if (B < 2) return sg_err("%s: batch of %d pairs; need B >= 2 (negatives)", who, B);
    if (d < 1) return sg_err("%s: feature dimension d = %d; need d >= 1", who, d);
    gcl_bi_ws_reserve(ws, B, nthreads);
    if (!all_finite(zi, (int64_t)B * d))
        return sg_err("%s: image features contain NaN or Inf; state left unchanged", who);
    if (!all_finite(zt, (int64_t)B * d))
        return sg_err("%s: text features contain NaN or Inf; state left unchanged", who);
    for (int i = 0; i < B; i++)
        if (idx[i] < 0 || idx[i] >= N)
            return sg_err("%s: index[%d] = %lld outside [0, N = %lld); pass dataset sample ids",
                          who, i, (long long)idx[i], (long long)N);
    memcpy(ws->sidx, idx, sizeof(int64_t) * (size_t)B);
    qsort(ws->sidx, (size_t)B, sizeof(int64_t), cmp_i64);
    for (int i = 1; i < B; i++)
        if (ws->sidx[i] == ws->sidx[i - 1])
            return sg_err("%s: index %lld appears twice in the batch; indices must be distinct "
                          "(one state per sample)",
                          who, (long long)ws->sidx[i]);
    return 0;
}

/* ---- fast path ------------------------------------------------------------------------------ */

/* Column (text-anchor) sums: float partials over blocks of COL_BLOCK rows, added into the
 * per-thread double partials after each block (a float sum over thousands of rows would lose
 * digits; double accumulation per element costs conversions). */
#define COL_BLOCK 32

/* Pass 1 for rows [r0, r1): row maxima (as keys) and this thread's column maxima. */
static void pass1(const float *S, int64_t B, int64_t r0, int64_t r1, float *rmax, int32_t *ck)
{
    for (int64_t j = 0; j < B; j++) ck[j] = INT32_MIN;
    for (int64_t i = r0; i < r1; i++) {
        const float *Si = S + i * B;
        int32_t m = INT32_MIN;
        for (int64_t j = 0; j < B; j++) {
            int32_t k = sg_float_key(Si[j]);
            m = k > m ? k : m;
            ck[j] = k > ck[j] ? k : ck[j];
        }
        rmax[i] = sg_key_float(m);
    }
}

/* Pass-2 results of one row segment: row sums of e^I and e^I A^I; column sums of e^T and
 * e^T A^T go to cs, ca (this thread's float block partials). */
struct rowsum {
    double e, ea;
};

/* Pass 2 over [lo, hi) of row Si (the diagonal is never inside a segment). When Wi is not
 * NULL, e^I is stored over Si and e^T into Wi (the store path); otherwise S is left intact. */
__attribute__((noinline)) static struct rowsum pass2_seg(float *Si, float *Wi, int64_t lo,
                                                         int64_t hi, float sii, float ai, float bi,
                                                         const float *diag, const float *aT,
                                                         const float *bT, float *cs, float *ca)
{
    double e = 0.0, ea = 0.0;
    if (Wi) {
#pragma omp simd reduction(+ : e, ea)
        for (int64_t j = lo; j < hi; j++) {
            float s = Si[j];
            float AI = (s - sii) * ai, AT = (s - diag[j]) * aT[j];
            float eI = sg_expf_nonpos(AI - bi), eT = sg_expf_nonpos(AT - bT[j]);
            e += eI;
            ea += eI * AI;
            cs[j] += eT;
            ca[j] += eT * AT;
            Si[j] = eI;
            Wi[j] = eT;
        }
    } else {
#pragma omp simd reduction(+ : e, ea)
        for (int64_t j = lo; j < hi; j++) {
            float s = Si[j];
            float AI = (s - sii) * ai, AT = (s - diag[j]) * aT[j];
            float eI = sg_expf_nonpos(AI - bi), eT = sg_expf_nonpos(AT - bT[j]);
            e += eI;
            ea += eI * AI;
            cs[j] += eT;
            ca[j] += eT * AT;
        }
    }
    struct rowsum r = {e, ea};
    return r;
}

/* Pass 3 over [lo, hi) of row Si: M_ij = p^I_ij + p^T_ji written over S_ij, from the stored
 * exponentials (Wi not NULL) or recomputed from S. */
__attribute__((noinline)) static void pass3_seg(float *Si, const float *Wi, int64_t lo, int64_t hi,
                                                float sii, float ai, float bi, float iui,
                                                const float *diag, const float *aT, const float *bT,
                                                const float *iuT)
{
    if (Wi) {
#pragma omp simd
        for (int64_t j = lo; j < hi; j++) Si[j] = Si[j] * iui + Wi[j] * iuT[j];
    } else {
#pragma omp simd
        for (int64_t j = lo; j < hi; j++) {
            float s = Si[j];
            float pI = sg_expf_nonpos((s - sii) * ai - bi) * iui;
            float pT = sg_expf_nonpos((s - diag[j]) * aT[j] - bT[j]) * iuT[j];
            Si[j] = pI + pT;
        }
    }
}

float gcl_bi_u_update(float u_old, float b_old, float b_new, double rs, int64_t B, float gamma)
{
    double g = rs / (double)(B - 1), u;
    if (u_old == 0.0f)
        u = g;
    else
        u = (1.0 - gamma) * (double)u_old * exp((double)b_old - (double)b_new) + gamma * g;
    float uf = (float)u;
    return uf > GCL_BI_U_MIN ? uf : GCL_BI_U_MIN;
}

/* Per-anchor arrays of the fast path. */
struct anchors {
    float *tauI, *tauT, *logUI, *logUT, *paI, *paT, *diag, *aI, *aT, *bI, *bT, *uI, *uT, *iuI, *iuT,
        *rsI, *rsT, *raI, *rmax;
};

static struct anchors anchors_of(const struct gcl_bi_ws *ws)
{
    float *a = ws->anc;
    const int64_t c = ws->cap_b;
    struct anchors r = {a + AN_TAUI * c, a + AN_TAUT * c, a + AN_LOGUI * c, a + AN_LOGUT * c,
                        a + AN_PAI * c,  a + AN_PAT * c,  a + AN_DIAG * c,  a + AN_AI * c,
                        a + AN_AT * c,   a + AN_BI * c,   a + AN_BT * c,    a + AN_UI * c,
                        a + AN_UT * c,   a + AN_IUI * c,  a + AN_IUT * c,   a + AN_RSI * c,
                        a + AN_RST * c,  a + AN_RAI * c,  a + AN_RMAX * c};
    return r;
}

/* The three passes over S (see the top of this file); run by each thread of a team. */
static void passes(struct gcl_bi_ws *ws, const struct anchors *q, const struct gcl_bi_state *st,
                   const int64_t *idx, int64_t n, float gamma, int store)
{
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t r0 = n * t / T, r1 = n * (t + 1) / T;
    float *S = ws->S, *W = store ? ws->W : NULL;
    double *cs = ws->part + 2 * t * n; /* this thread's column partials (e, e A) */
    float *fs = ws->partf + 2 * t * n, *fa = fs + n;
    int32_t *pkey = ws->pkey;
    pass1(S, n, r0, r1, q->rmax, pkey + t * n);
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; j++) {
        int32_t m = pkey[j];
        for (int k = 1; k < T; k++) m = pkey[k * n + j] > m ? pkey[k * n + j] : m;
        float bt = (sg_key_float(m) - q->diag[j]) * q->aT[j], bo = st->b_txt[idx[j]];
        float bi = (q->rmax[j] - q->diag[j]) * q->aI[j], boi = st->b_img[idx[j]];
        q->bT[j] = bt > bo ? bt : bo;
        q->bI[j] = bi > boi ? bi : boi;
    }
    for (int64_t j = 0; j < 2 * n; j++) cs[j] = 0.0;
    for (int64_t i0 = r0; i0 < r1; i0 += COL_BLOCK) {
        for (int64_t j = 0; j < 2 * n; j++) fs[j] = 0.0f;
        for (int64_t i = i0; i < SG_MIN(i0 + COL_BLOCK, r1); i++) {
            float *Si = S + i * n, *Wi = W ? W + i * n : NULL;
            float sii = q->diag[i], ai = q->aI[i], bi = q->bI[i];
            struct rowsum a = pass2_seg(Si, Wi, 0, i, sii, ai, bi, q->diag, q->aT, q->bT, fs, fa);
            struct rowsum b =
                pass2_seg(Si, Wi, i + 1, n, sii, ai, bi, q->diag, q->aT, q->bT, fs, fa);
            q->rsI[i] = (float)(a.e + b.e);
            q->raI[i] = (float)(a.ea + b.ea);
        }
        for (int64_t j = 0; j < 2 * n; j++) cs[j] += fs[j];
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; j++) {
        double se = 0.0, sa = 0.0;
        for (int k = 0; k < T; k++)
            se += ws->part[2 * k * n + j], sa += ws->part[(2 * k + 1) * n + j];
        int64_t id = idx[j];
        q->rsT[j] = (float)se;
        q->uI[j] = gcl_bi_u_update(st->u_img[id], st->b_img[id], q->bI[j], q->rsI[j], n, gamma);
        q->uT[j] = gcl_bi_u_update(st->u_txt[id], st->b_txt[id], q->bT[j], se, n, gamma);
        q->iuI[j] = 1.0f / q->uI[j];
        q->iuT[j] = 1.0f / q->uT[j];
        q->logUI[j] = logf(q->uI[j]) + q->bI[j];
        q->logUT[j] = logf(q->uT[j]) + q->bT[j];
        q->paI[j] = (float)((double)q->raI[j] / q->uI[j] / (double)(n - 1));
        q->paT[j] = (float)(sa / q->uT[j] / (double)(n - 1));
    }
    for (int64_t i = r0; i < r1; i++) {
        float *Si = S + i * n, *Wi = W ? W + i * n : NULL;
        float sii = q->diag[i], ai = q->aI[i], bi = q->bI[i], iui = q->iuI[i];
        pass3_seg(Si, Wi, 0, i, sii, ai, bi, iui, q->diag, q->aT, q->bT, q->iuT);
        pass3_seg(Si, Wi, i + 1, n, sii, ai, bi, iui, q->diag, q->aT, q->bT, q->iuT);
        Si[i] = -(q->rsI[i] * iui + q->rsT[i] * q->iuT[i]); /* -sum_{j!=i} (p^I_ij + p^T_ij) */
    }
}

void gcl_bi_step_cpu(struct sg_ctx *c, struct gcl_bi_ws *ws, struct gcl_bi_state *st,
                     const float *zi, const float *zt, const int64_t *idx, int B, int d,
                     float gamma, float *dzi, float *dzt)
{
    SG_CHECK(ws->cap_b >= B, "workspace reserved for B = %lld < %d", (long long)ws->cap_b, B);
    const int64_t n = B;
    float *S = ws->S;
    sg_gemm(0, 1, n, n, d, 1.0f, zi, d, zt, d, 0.0f, S, n); /* S = zi zt^T (B, B) */
    struct anchors q = anchors_of(ws);
    for (int64_t i = 0; i < n; i++) {
        q.diag[i] = S[i * n + i];
        q.aI[i] = 1.0f / q.tauI[i];
        q.aT[i] = 1.0f / q.tauT[i];
    }
    int nt = n * n >= 65536 && c->nthreads > 1 ? c->nthreads : 1;
    if (nt > n) nt = (int)n;
    SG_CHECK(nt <= ws->cap_t, "workspace reserved for %d threads < %d", ws->cap_t, nt);
    const int store = ws->W != NULL && n <= ws->store_max_b;
#pragma omp parallel num_threads(nt)
    passes(ws, &q, st, idx, n, gamma, store);
    /* dL/dS = M / (2B(B-1)):  dzi = dL/dS zt,  dzt = (dL/dS)^T zi */
    float k = 1.0f / (2.0f * (float)n * (float)(n - 1));
    sg_gemm(0, 0, n, d, n, k, S, n, zt, d, 0.0f, dzi, d);
    sg_gemm(1, 0, n, d, n, k, S, n, zi, d, 0.0f, dzt, d);
    for (int64_t i = 0; i < n; i++) {
        int64_t id = idx[i];
        st->u_img[id] = q.uI[i];
        st->u_txt[id] = q.uT[i];
        st->b_img[id] = q.bI[i];
        st->b_txt[id] = q.bT[i];
    }
}

/* ---- reference ------------------------------------------------------------------------------ */

/* One direction for anchor i: D_j = row[j] - row[i] (row = S row i, or S column i), tau. */
static void ref_anchor(const double *row, int64_t i, int64_t B, double tau, float u_old,
                       float b_old, float gamma, double *p, float *u_new, float *b_new, float *logU,
                       float *pa)
{
    double b = b_old;
    for (int64_t j = 0; j < B; j++) {
        double A = (row[j] - row[i]) / tau;
        if (A > b) b = A;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < B; j++)
        if (j != i) sum += exp((row[j] - row[i]) / tau - b);
    double g = sum / (double)(B - 1), u;
    if (u_old == 0.0f)
        u = g;
    else
        u = (1.0 - gamma) * (double)u_old * exp((double)b_old - b) + (double)gamma * g;
    if (u < (double)GCL_BI_U_MIN) u = GCL_BI_U_MIN;
    double s = 0.0;
    for (int64_t j = 0; j < B; j++) {
        double A = (row[j] - row[i]) / tau;
        p[j] = j == i ? 0.0 : exp(A - b) / u;
        s += p[j] * A;
    }
    *u_new = (float)u;
    *b_new = (float)b;
    *logU = (float)(log(u) + b);
    *pa = (float)(s / (double)(B - 1));
}

void gcl_bi_step_ref(struct gcl_bi_ws *ws, struct gcl_bi_state *st, const float *zi,
                     const float *zt, const int64_t *idx, int B, int d, float gamma, float *dzi,
                     float *dzt)
{
    const int64_t n = B, cap = ws->cap_b;
    SG_CHECK(cap >= B, "workspace reserved for B = %lld < %d", (long long)cap, B);
    float *a = ws->anc;
    double *S = sg_xmalloc(sizeof(double) * (size_t)(n * n));
    double *ST = sg_xmalloc(sizeof(double) * (size_t)(n * n));
    double *PI = sg_xmalloc(sizeof(double) * (size_t)(n * n)); /* p^I (i, j) */
    double *PT = sg_xmalloc(sizeof(double) * (size_t)(n * n)); /* p^T (i, j) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int k = 0; k < d; k++) acc += (double)zi[i * d + k] * zt[j * d + k];
            S[i * n + j] = acc;
            ST[j * n + i] = acc;
        }
    float *uI = a + AN_UI * cap, *uT = a + AN_UT * cap, *bI = a + AN_BI * cap,
          *bT = a + AN_BT * cap;
    for (int64_t i = 0; i < n; i++) {
        int64_t q = idx[i];
        ref_anchor(S + i * n, i, n, a[AN_TAUI * cap + i], st->u_img[q], st->b_img[q], gamma,
                   PI + i * n, &uI[i], &bI[i], &a[AN_LOGUI * cap + i], &a[AN_PAI * cap + i]);
        ref_anchor(ST + i * n, i, n, a[AN_TAUT * cap + i], st->u_txt[q], st->b_txt[q], gamma,
                   PT + i * n, &uT[i], &bT[i], &a[AN_LOGUT * cap + i], &a[AN_PAT * cap + i]);
    }
    /* M_ij = p^I_ij + p^T_ji (i != j), M_ii = -sum_j (p^I_ij + p^T_ij); reuse S for M */
    double k = 1.0 / (2.0 * (double)n * (double)(n - 1));
    for (int64_t i = 0; i < n; i++) {
        double dsum = 0.0;
        for (int64_t j = 0; j < n; j++) {
            S[i * n + j] = PI[i * n + j] + PT[j * n + i];
            dsum += PI[i * n + j] + PT[i * n + j];
        }
        S[i * n + i] = -dsum;
    }
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < d; c++) {
            double gi = 0.0, gt = 0.0;
            for (int64_t j = 0; j < n; j++) {
                gi += S[i * n + j] * zt[j * d + c];
                gt += S[j * n + i] * zi[j * d + c];
            }
            dzi[i * d + c] = (float)(k * gi);
            dzt[i * d + c] = (float)(k * gt);
        }
    for (int64_t i = 0; i < n; i++) {
        int64_t q = idx[i];
        st->u_img[q] = uI[i];
        st->u_txt[q] = uT[i];
        st->b_img[q] = bI[i];
        st->b_txt[q] = bT[i];
    }
    free(S);
    free(ST);
    free(PI);
    free(PT);
}

/* ---- summaries and schedule ----------------------------------------------------------------- */

double gcl_bi_surrogate(const struct gcl_bi_rows *r, int B)
{
    double s = 0.0;
    for (int i = 0; i < B; i++)
        s += (double)r->tau_img[i] * r->pa_img[i] + (double)r->tau_txt[i] * r->pa_txt[i];
    return s / (2.0 * B);
}

double gcl_bi_objective(const struct gcl_bi_rows *r, int B)
{
    double s = 0.0;
    for (int i = 0; i < B; i++)
        s += (double)r->tau_img[i] * r->logU_img[i] + (double)r->tau_txt[i] * r->logU_txt[i];
    return s / (2.0 * B);
}

float gcl_bi_gamma_at(const struct gcl_bi_sched *s, int64_t epoch)
{
    if (s->schedule != GCL_BI_GAMMA_COSINE || epoch >= s->decay_epochs) return s->gamma;
    double w = 0.5 * (1.0 + cos(M_PI * (double)epoch / (double)s->decay_epochs));
    return (float)((1.0 - (double)s->gamma) * w + (double)s->gamma);
}

int gcl_bi_sched_init(struct gcl_bi_sched *s, const char *who, int schedule, float gamma,
                      int decay_epochs)
{
    memset(s, 0, sizeof *s);
    if (schedule != GCL_BI_GAMMA_CONSTANT && schedule != GCL_BI_GAMMA_COSINE)
        return sg_err("%s: gamma_schedule %d unknown (GCL_BI_GAMMA_CONSTANT or _COSINE)", who,
                      schedule);
    if (!(gamma > 0.0f && gamma <= 1.0f))
        return sg_err("%s: gamma = %g must be in (0, 1]", who, (double)gamma);
    if (schedule == GCL_BI_GAMMA_COSINE && decay_epochs < 1)
        return sg_err("%s: cosine gamma needs gamma_decay_epochs >= 1 (got %d; e.g. epochs/2)", who,
                      decay_epochs);
    s->schedule = schedule;
    s->gamma = gamma;
    s->decay_epochs = decay_epochs;
    s->epoch = 0;
    s->gamma_cur = gcl_bi_gamma_at(s, 0);
    return 0;
}

int gcl_bi_sched_set_epoch(struct gcl_bi_sched *s, const char *who, int64_t epoch)
{
    if (epoch < 0) return sg_err("%s: epoch %lld < 0", who, (long long)epoch);
    s->epoch = epoch;
    s->gamma_cur = gcl_bi_gamma_at(s, epoch);
    return 0;
}

void gcl_bi_sched_save(const struct gcl_bi_sched *s, struct sg_st_writer *w, const char *prefix)
{
    char name[256];
    int64_t one[1] = {1};
    sg_stw_add(w, vec_name(name, sizeof name, prefix, "epoch"), SG_I64, 1, one, &s->epoch);
    sg_stw_add_f32(w, vec_name(name, sizeof name, prefix, "gamma"), 1, one, &s->gamma_cur);
}

int gcl_bi_sched_check(const struct sg_st_file *f, const char *prefix)
{
    char name[256];
    const struct sg_st_entry *e = sg_st_find(f, vec_name(name, sizeof name, prefix, "epoch"));
    if (!e || e->dtype != SG_I64 || e->ndim != 1 || e->shape[0] != 1)
        return sg_err("%s: tensor '%s' (I64 [1]) missing or malformed", f->path ? f->path : "state",
                      name);
    return gcl_bi_check_vec(f, prefix, "gamma", 1);
}

void gcl_bi_sched_copy_in(struct gcl_bi_sched *s, const struct sg_st_file *f, const char *prefix)
{
    char name[256];
    int64_t e;
    SG_CHECK(sg_st_read_i64(f, vec_name(name, sizeof name, prefix, "epoch"), &e, 1) == 0, "%s",
             sg_last_error());
    s->epoch = e;
    gcl_bi_read_vec(f, prefix, "gamma", &s->gamma_cur, 1);
}
