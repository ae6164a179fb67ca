/*
 * eval/metrics.c — retrieval, classification and linear-probe metrics on given embeddings
 * (definitions, formulas and the tie rule are in eval/metrics.h).
 *
 * Scores come from sg_gemm one block of query rows at a time; a rank is an integer count over
 * one row of that block (stable index-order tie rule), so ranks are exact for the computed
 * scores and independent of the thread count (OpenMP only splits rows). The linear probe is
 * plain mini-batch SGD over two GEMMs per chunk of rows; its reductions run in a fixed order.
 */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "ops/gemm.h"

#define BLOCK_ROWS_MAX   1024
#define BLOCK_FLOATS_MAX ((int64_t)16 << 20) /* 64 MiB of scores per block */
#define LP_CHUNK         4096                /* linear probe: rows per GEMM */

static const int recall_ks[SG_RECALL_NK] = SG_RECALL_KS;

/* Query rows per block: `want` when positive, else as many as fit the block budget. */
static int64_t block_rows(int64_t cols, int64_t want)
{
    if (want > 0) return want;
    int64_t r = BLOCK_FLOATS_MAX / SG_MAX(cols, 1);
    return SG_MAX(1, SG_MIN(BLOCK_ROWS_MAX, r));
}

static int all_finite(const float *x, int64_t n)
{
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= isfinite(x[i]) != 0;
    return ok;
}

static int check_labels(const int32_t *y, int64_t n, int32_t hi, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= hi)
            return sg_err("%s[%lld] = %d is outside [0, %d) (fix the labels or the class/image "
                          "count)",
                          what, (long long)i, (int)y[i], (int)hi);
    return 0;
}

/* Stable rank of column p in row s[0..n): 1 + #{j: s_j > s_p} + #{j < p: s_j == s_p};
 * *n_eq = #{j: s_j == s_p} (p included). */
static int64_t rank_in_row(const float *s, int64_t n, int64_t p, int64_t *n_eq)
{
    const float v = s[p];
    int64_t gt = 0, eq_before = 0, eq_after = 0;
    for (int64_t j = 0; j < p; j++) {
        gt += s[j] > v;
        eq_before += s[j] == v;
    }
    for (int64_t j = p; j < n; j++) {
        gt += s[j] > v;
        eq_after += s[j] == v;
    }
    *n_eq = eq_before + eq_after;
    return 1 + gt + eq_before;
}

/* ---- retrieval ---------------------------------------------------------------------------- */

/* Hits at 1/5/10, mean and median (floor) of the ranks >= 1; returns the number of queries. */
static int64_t rank_stats(const int32_t *rank, int64_t n, int64_t hits[SG_RECALL_NK], double *mean,
                          double *median)
{
    int32_t *sorted = sg_xmalloc(sizeof(int32_t) * (size_t)SG_MAX(n, 1));
    int64_t nq = 0, sum = 0;
    for (int k = 0; k < SG_RECALL_NK; k++) hits[k] = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rank[i] < 1) continue;
        sorted[nq++] = rank[i];
        sum += rank[i];
        for (int k = 0; k < SG_RECALL_NK; k++) hits[k] += rank[i] <= recall_ks[k];
    }
    /* counting sort of the ranks (each <= the candidate count) for the median */
    int64_t *hist = NULL;
    int32_t maxr = 0;
    for (int64_t i = 0; i < nq; i++) maxr = SG_MAX(maxr, sorted[i]);
    hist = sg_xcalloc((size_t)maxr + 1, sizeof(int64_t));
    for (int64_t i = 0; i < nq; i++) hist[sorted[i]]++;
    int64_t pos = 0;
    for (int32_t r = 0; r <= maxr; r++)
        for (int64_t c = 0; c < hist[r]; c++) sorted[pos++] = r;
    free(hist);
    *mean = nq ? (double)sum / (double)nq : 0.0;
    if (nq == 0)
        *median = 0.0;
    else if (nq % 2)
        *median = sorted[nq / 2];
    else
        *median = (double)(((int64_t)sorted[nq / 2 - 1] + sorted[nq / 2]) / 2);
    free(sorted);
    return nq;
}

static int retrieval_check(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                           const int32_t *t2i)
{
    if (Ni < 1 || Nt < 1 || E < 1)
        return sg_err("retrieval: need >= 1 image, caption and dimension (got Ni=%lld, "
                      "Nt=%lld, E=%d)",
                      (long long)Ni, (long long)Nt, E);
    if (Ni >= INT32_MAX || Nt >= INT32_MAX)
        return sg_err("retrieval: Ni=%lld, Nt=%lld: at most 2^31-1 of each (split the set)",
                      (long long)Ni, (long long)Nt);
    if (check_labels(t2i, Nt, (int32_t)Ni, "text_to_image") < 0) return -1;
    if (!all_finite(zi, Ni * E))
        return sg_err("retrieval: image embeddings contain NaN/Inf (check the model output)");
    if (!all_finite(zt, Nt * E))
        return sg_err("retrieval: text embeddings contain NaN/Inf (check the model output)");
    return 0;
}

/* Text -> image: caption t ranks its image among all Ni images. Returns the tie count. */
static int64_t rank_t2i(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                        const int32_t *t2i, int32_t *rank, int64_t want_rows)
{
    const int64_t rows = block_rows(Ni, want_rows);
    float *S = sg_xmalloc(sizeof(float) * (size_t)(SG_MIN(rows, Nt) * Ni)); /* (rows, Ni) */
    int64_t ties = 0;
    for (int64_t r0 = 0; r0 < Nt; r0 += rows) {
        const int64_t nb = SG_MIN(rows, Nt - r0);
        sg_gemm(0, 1, nb, Ni, E, 1.0f, zt + r0 * E, E, zi, E, 0.0f, S, Ni);
#pragma omp parallel for schedule(static) reduction(+ : ties)
        for (int64_t q = 0; q < nb; q++) {
            int64_t n_eq;
            rank[r0 + q] = (int32_t)rank_in_row(S + q * Ni, Ni, t2i[r0 + q], &n_eq);
            ties += n_eq > 1;
        }
    }
    free(S);
    return ties;
}

/* Image -> text: image i's rank is that of its best caption (highest score, lowest index);
 * caps[off[i] .. off[i+1]) are its captions in ascending order. Returns the tie count. */
static int64_t rank_i2t(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                        const int64_t *off, const int32_t *caps, int32_t *rank, int64_t want_rows)
{
    const int64_t rows = block_rows(Nt, want_rows);
    float *S = sg_xmalloc(sizeof(float) * (size_t)(SG_MIN(rows, Ni) * Nt)); /* (rows, Nt) */
    int64_t ties = 0;
    for (int64_t r0 = 0; r0 < Ni; r0 += rows) {
        const int64_t nb = SG_MIN(rows, Ni - r0);
        sg_gemm(0, 1, nb, Nt, E, 1.0f, zi + r0 * E, E, zt, E, 0.0f, S, Nt);
#pragma omp parallel for schedule(static) reduction(+ : ties)
        for (int64_t q = 0; q < nb; q++) {
            const int64_t i = r0 + q, a = off[i], z = off[i + 1];
            const float *row = S + q * Nt;
            if (a == z) {
                rank[i] = 0; /* no caption: not a query */
                continue;
            }
            int64_t best = caps[a], npos_eq = 0, n_eq;
            for (int64_t c = a + 1; c < z; c++)
                if (row[caps[c]] > row[best]) best = caps[c];
            for (int64_t c = a; c < z; c++) npos_eq += row[caps[c]] == row[best];
            rank[i] = (int32_t)rank_in_row(row, Nt, best, &n_eq);
            ties += n_eq > npos_eq;
        }
    }
    free(S);
    return ties;
}

int sg_retrieval_eval_blocked(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                              const int32_t *text_to_image, struct sg_retrieval_metrics *m,
                              int32_t *t2i_rank, int32_t *i2t_rank, int64_t block)
{
    SG_CHECK(zi && zt && text_to_image && m, "NULL input");
    memset(m, 0, sizeof *m);
    if (retrieval_check(zi, Ni, zt, Nt, E, text_to_image) < 0) return -1;
    m->n_images = Ni;
    m->n_texts = Nt;

    /* captions of each image, ascending (counting sort): caps[off[i] .. off[i+1]) */
    int64_t *off = sg_xcalloc((size_t)Ni + 1, sizeof(int64_t));
    int32_t *caps = sg_xmalloc(sizeof(int32_t) * (size_t)Nt);
    for (int64_t t = 0; t < Nt; t++) off[text_to_image[t] + 1]++;
    for (int64_t i = 0; i < Ni; i++) off[i + 1] += off[i];
    int64_t *fill = sg_xmalloc(sizeof(int64_t) * (size_t)Ni);
    memcpy(fill, off, sizeof(int64_t) * (size_t)Ni);
    for (int64_t t = 0; t < Nt; t++) caps[fill[text_to_image[t]]++] = (int32_t)t;
    free(fill);

    int32_t *rt = t2i_rank ? t2i_rank : sg_xmalloc(sizeof(int32_t) * (size_t)Nt);
    int32_t *ri = i2t_rank ? i2t_rank : sg_xmalloc(sizeof(int32_t) * (size_t)Ni);
    m->t2i_ties = rank_t2i(zi, Ni, zt, Nt, E, text_to_image, rt, block);
    m->i2t_ties = rank_i2t(zi, Ni, zt, Nt, E, off, caps, ri, block);
    rank_stats(rt, Nt, m->t2i_hits, &m->t2i_mean_rank, &m->t2i_median_rank);
    m->n_i2t_queries = rank_stats(ri, Ni, m->i2t_hits, &m->i2t_mean_rank, &m->i2t_median_rank);

    m->t2i_r_mean = m->i2t_r_mean = 0.0;
    for (int k = 0; k < SG_RECALL_NK; k++) {
        m->t2i_recall[k] = 100.0 * (double)m->t2i_hits[k] / (double)Nt;
        m->i2t_recall[k] = 100.0 * (double)m->i2t_hits[k] / (double)m->n_i2t_queries;
        m->t2i_r_mean += m->t2i_recall[k] / SG_RECALL_NK;
        m->i2t_r_mean += m->i2t_recall[k] / SG_RECALL_NK;
    }
    m->r_mean = (m->t2i_r_mean + m->i2t_r_mean) / 2.0;

    if (!t2i_rank) free(rt);
    if (!i2t_rank) free(ri);
    free(off);
    free(caps);
    return 0;
}

int sg_retrieval_eval(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                      const int32_t *text_to_image, struct sg_retrieval_metrics *m,
                      int32_t *t2i_rank, int32_t *i2t_rank)
{
    return sg_retrieval_eval_blocked(zi, Ni, zt, Nt, E, text_to_image, m, t2i_rank, i2t_rank, 0);
}

double sg_recall_at_k(const int32_t *rank, int64_t n, int k)
{
    int64_t q = 0, h = 0;
    for (int64_t i = 0; i < n; i++) {
        q += rank[i] >= 1;
        h += rank[i] >= 1 && rank[i] <= k;
    }
    return q ? 100.0 * (double)h / (double)q : 0.0;
}

/* ---- classification ----------------------------------------------------------------------- */

struct cls_acc {
    int C;
    int64_t n, c1, c5, ties;
    int64_t *cls_n, *cls_hit; /* (C) samples and top-1 hits per class */
    int32_t *rank;            /* scratch (rows of one block) */
    uint8_t *tied;
    int64_t cap;
};

static void cls_acc_init(struct cls_acc *a, int C, int64_t rows)
{
    memset(a, 0, sizeof *a);
    a->C = C;
    a->cls_n = sg_xcalloc((size_t)C, sizeof(int64_t));
    a->cls_hit = sg_xcalloc((size_t)C, sizeof(int64_t));
    a->cap = rows;
    a->rank = sg_xmalloc(sizeof(int32_t) * (size_t)rows);
    a->tied = sg_xmalloc((size_t)rows);
}

static void cls_acc_free(struct cls_acc *a)
{
    free(a->cls_n);
    free(a->cls_hit);
    free(a->rank);
    free(a->tied);
}

/* Adds nb rows of scores (nb, C) with their labels (validated by the caller). */
static void cls_accumulate(struct cls_acc *a, const float *scores, const int32_t *y, int64_t nb)
{
    SG_CHECK(nb <= a->cap, "block of %lld rows > scratch %lld", (long long)nb, (long long)a->cap);
    const int C = a->C;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nb; i++) {
        int64_t n_eq;
        a->rank[i] = (int32_t)rank_in_row(scores + i * C, C, y[i], &n_eq);
        a->tied[i] = n_eq > 1;
    }
    for (int64_t i = 0; i < nb; i++) {
        a->c1 += a->rank[i] == 1;
        a->c5 += a->rank[i] <= 5;
        a->ties += a->tied[i];
        a->cls_n[y[i]]++;
        a->cls_hit[y[i]] += a->rank[i] == 1;
    }
    a->n += nb;
}

static void cls_finish(const struct cls_acc *a, struct sg_cls_metrics *m, double *per_class)
{
    memset(m, 0, sizeof *m);
    m->n = a->n;
    m->n_classes = a->C;
    m->correct1 = a->c1;
    m->correct5 = a->c5;
    m->ties = a->ties;
    m->acc1 = 100.0 * (double)a->c1 / (double)a->n;
    m->acc5 = a->C >= 5 ? 100.0 * (double)a->c5 / (double)a->n : NAN;
    double sum = 0.0;
    for (int c = 0; c < a->C; c++) {
        double r = NAN;
        if (a->cls_n[c] > 0) {
            r = (double)a->cls_hit[c] / (double)a->cls_n[c];
            sum += r;
            m->n_classes_present++;
        }
        if (per_class) per_class[c] = 100.0 * r;
    }
    m->balanced_accuracy = sum / m->n_classes_present; /* n >= 1, so >= 1 class present */
    m->mean_per_class_recall = 100.0 * m->balanced_accuracy;
}

int sg_cls_eval(const float *scores, const int32_t *labels, int64_t N, int C,
                struct sg_cls_metrics *m, double *per_class_recall)
{
    SG_CHECK(scores && labels && m, "NULL input");
    memset(m, 0, sizeof *m);
    if (N < 1 || C < 1)
        return sg_err("classification: need >= 1 sample and class (got N=%lld, C=%d)", (long long)N,
                      C);
    if (check_labels(labels, N, C, "labels") < 0) return -1;
    if (!all_finite(scores, N * C))
        return sg_err("classification: scores contain NaN/Inf (check the features)");
    struct cls_acc a;
    const int64_t rows = block_rows(C, 0);
    cls_acc_init(&a, C, rows);
    for (int64_t r0 = 0; r0 < N; r0 += rows)
        cls_accumulate(&a, scores + r0 * C, labels + r0, SG_MIN(rows, N - r0));
    cls_finish(&a, m, per_class_recall);
    cls_acc_free(&a);
    return 0;
}

int sg_zeroshot_classifier(const float *prompt_emb, int C, int P, int E, float *W)
{
    SG_CHECK(prompt_emb && W, "NULL input");
    if (C < 1 || P < 1 || E < 1)
        return sg_err("zero-shot classifier: need C, P, E >= 1 (got %d, %d, %d)", C, P, E);
    if (!all_finite(prompt_emb, (int64_t)C * P * E))
        return sg_err("zero-shot classifier: prompt embeddings contain NaN/Inf");
    double *acc = sg_xmalloc(sizeof(double) * (size_t)E);
    for (int c = 0; c < C; c++) {
        memset(acc, 0, sizeof(double) * (size_t)E);
        for (int p = 0; p < P; p++) {
            const float *x = prompt_emb + ((int64_t)c * P + p) * E;
            double ss = 0.0;
            for (int e = 0; e < E; e++) ss += (double)x[e] * x[e];
            const double inv = 1.0 / SG_MAX(sqrt(ss), 1e-12);
            for (int e = 0; e < E; e++) acc[e] += x[e] * inv;
        }
        double ss = 0.0;
        for (int e = 0; e < E; e++) {
            acc[e] /= P;
            ss += acc[e] * acc[e];
        }
        const double inv = 1.0 / SG_MAX(sqrt(ss), 1e-12);
        for (int e = 0; e < E; e++) W[(int64_t)c * E + e] = (float)(acc[e] * inv);
    }
    free(acc);
    return 0;
}

int sg_zeroshot_eval(const float *img, int64_t N, const float *W, int C, int E,
                     const int32_t *labels, struct sg_cls_metrics *m, double *per_class_recall)
{
    SG_CHECK(img && W && labels && m, "NULL input");
    memset(m, 0, sizeof *m);
    if (N < 1 || C < 1 || E < 1)
        return sg_err("zero-shot: need N, C, E >= 1 (got %lld, %d, %d)", (long long)N, C, E);
    if (check_labels(labels, N, C, "labels") < 0) return -1;
    if (!all_finite(img, N * E)) return sg_err("zero-shot: image embeddings contain NaN/Inf");
    if (!all_finite(W, (int64_t)C * E)) return sg_err("zero-shot: classifier contains NaN/Inf");
    const int64_t rows = block_rows(C, 0);
    float *S = sg_xmalloc(sizeof(float) * (size_t)(SG_MIN(rows, N) * C)); /* (rows, C) */
    struct cls_acc a;
    cls_acc_init(&a, C, rows);
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
        const int64_t nb = SG_MIN(rows, N - r0);
        sg_gemm(0, 1, nb, C, E, 1.0f, img + r0 * E, E, W, E, 0.0f, S, C);
        cls_accumulate(&a, S, labels + r0, nb);
    }
    cls_finish(&a, m, per_class_recall);
    cls_acc_free(&a);
    free(S);
    return 0;
}

/* ---- linear probe ------------------------------------------------------------------------- */

void sg_linprobe_config_default(struct sg_linprobe_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 90;
    cfg->batch_size = 1024;
    cfg->lr = 0.4f;
    cfg->momentum = 0.9f;
    cfg->weight_decay = 0.0f;
    cfg->init_std = 0.01f;
    cfg->seed = 0;
    cfg->shuffle = 1;
}

void sg_linprobe_free(struct sg_linprobe *lp)
{
    free(lp->W);
    free(lp->b);
    memset(lp, 0, sizeof *lp);
}

static int linprobe_check(const struct sg_linprobe_config *cfg, const float *X, const int32_t *y,
                          int64_t N, int D, int C)
{
    if (N < 1 || D < 1 || C < 1 || cfg->epochs < 1)
        return sg_err("linear probe: need N, D, C, epochs >= 1 (got %lld, %d, %d, %d)",
                      (long long)N, D, C, cfg->epochs);
    if (!(cfg->lr >= 0.0f) || !isfinite(cfg->lr))
        return sg_err("linear probe: lr = %g must be finite and >= 0", (double)cfg->lr);
    if (!(cfg->momentum >= 0.0f && cfg->momentum < 1.0f))
        return sg_err("linear probe: momentum = %g must be in [0, 1)", (double)cfg->momentum);
    if (!(cfg->weight_decay >= 0.0f) || !isfinite(cfg->weight_decay))
        return sg_err("linear probe: weight_decay = %g must be finite and >= 0",
                      (double)cfg->weight_decay);
    if (!(cfg->init_std >= 0.0f) || !isfinite(cfg->init_std))
        return sg_err("linear probe: init_std = %g must be finite and >= 0", (double)cfg->init_std);
    if (check_labels(y, N, C, "labels") < 0) return -1;
    if (!all_finite(X, N * D)) return sg_err("linear probe: features contain NaN/Inf");
    return 0;
}

/* In place: logits (n, C) -> G = (softmax - onehot(y)) / B; loss[i] = lse_i - logit_{i,y_i}. */
static void softmax_xent_grad(float *L, const int32_t *y, int64_t n, int C, int64_t B, double *loss)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *row = L + i * C;
        float mx = row[0];
        for (int c = 1; c < C; c++) mx = row[c] > mx ? row[c] : mx;
        double se = 0.0;
        for (int c = 0; c < C; c++) se += exp((double)row[c] - mx);
        const double lse = mx + log(se);
        loss[i] = lse - row[y[i]];
        for (int c = 0; c < C; c++) row[c] = (float)(exp((double)row[c] - lse) / (double)B);
        row[y[i]] -= 1.0f / (float)B;
    }
}

struct lp_work {
    float *xb;      /* (LP_CHUNK, D) gathered rows */
    float *L;       /* (LP_CHUNK, C) logits, then G */
    double *loss;   /* (LP_CHUNK) */
    float *gW;      /* (C, D) */
    double *gb;     /* (C) */
    float *bufW;    /* (C, D) momentum */
    float *bufb;    /* (C) */
    int64_t *order; /* (N) */
};

/* One SGD step on rows order[s .. s+B). Returns the summed loss of those rows. */
static double lp_step(struct sg_linprobe *lp, const struct sg_linprobe_config *cfg,
                      struct lp_work *w, const float *X, const int32_t *y, int64_t s, int64_t B,
                      float lr)
{
    const int C = lp->C, D = lp->D;
    double loss = 0.0;
    int32_t ybuf[LP_CHUNK];
    memset(w->gb, 0, sizeof(double) * (size_t)C);
    for (int64_t c0 = 0; c0 < B; c0 += LP_CHUNK) {
        const int64_t n = SG_MIN(LP_CHUNK, B - c0);
        for (int64_t i = 0; i < n; i++) {
            const int64_t r = w->order[s + c0 + i];
            memcpy(w->xb + i * D, X + r * D, sizeof(float) * (size_t)D);
            ybuf[i] = y[r];
        }
        sg_gemm(0, 1, n, C, D, 1.0f, w->xb, D, lp->W, D, 0.0f, w->L, C);
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < C; c++) w->L[i * C + c] += lp->b[c];
        softmax_xent_grad(w->L, ybuf, n, C, B, w->loss);
        for (int64_t i = 0; i < n; i++) {
            loss += w->loss[i];
            for (int c = 0; c < C; c++) w->gb[c] += w->L[i * C + c];
        }
        /* gW (C, D) (+)= G^T xb */
        sg_gemm(1, 0, C, D, n, 1.0f, w->L, C, w->xb, D, c0 == 0 ? 0.0f : 1.0f, w->gW, D);
    }
    const float mom = cfg->momentum, wd = cfg->weight_decay;
    const int64_t nw = (int64_t)C * D;
    for (int64_t k = 0; k < nw; k++) {
        const float g = w->gW[k] + wd * lp->W[k];
        w->bufW[k] = mom * w->bufW[k] + g;
        lp->W[k] -= lr * w->bufW[k];
    }
    for (int c = 0; c < C; c++) {
        w->bufb[c] = mom * w->bufb[c] + (float)w->gb[c];
        lp->b[c] -= lr * w->bufb[c];
    }
    return loss;
}

int sg_linprobe_train(struct sg_linprobe *lp, const struct sg_linprobe_config *cfg, const float *X,
                      const int32_t *y, int64_t N, int D, int C)
{
    SG_CHECK(lp && cfg && X && y, "NULL input");
    memset(lp, 0, sizeof *lp);
    if (linprobe_check(cfg, X, y, N, D, C) < 0) return -1;
    lp->C = C;
    lp->D = D;
    lp->W = sg_xcalloc((size_t)C * D, sizeof(float));
    lp->b = sg_xcalloc((size_t)C, sizeof(float));
    if (cfg->init_std > 0.0f) {
        struct sg_rng r;
        sg_rng_seed(&r, cfg->seed);
        sg_rng_normal(&r, lp->W, (int64_t)C * D, 0.0f, cfg->init_std);
    }
    const int64_t B = (cfg->batch_size <= 0 || cfg->batch_size >= N) ? N : cfg->batch_size;
    const int64_t chunk = SG_MIN(B, LP_CHUNK);
    struct lp_work w;
    w.xb = sg_xmalloc(sizeof(float) * (size_t)(chunk * D));
    w.L = sg_xmalloc(sizeof(float) * (size_t)(chunk * C));
    w.loss = sg_xmalloc(sizeof(double) * (size_t)chunk);
    w.gW = sg_xmalloc(sizeof(float) * (size_t)C * D);
    w.gb = sg_xmalloc(sizeof(double) * (size_t)C);
    w.bufW = sg_xcalloc((size_t)C * D, sizeof(float));
    w.bufb = sg_xcalloc((size_t)C, sizeof(float));
    w.order = sg_xmalloc(sizeof(int64_t) * (size_t)N);
    struct sg_rng shuf;
    sg_rng_seed(&shuf, cfg->seed + 1);
    int rc = 0;
    const double pi = 3.14159265358979323846;
    for (int e = 0; e < cfg->epochs; e++) {
        const float lr = (float)(cfg->lr * 0.5 * (1.0 + cos(pi * e / cfg->epochs)));
        for (int64_t i = 0; i < N; i++) w.order[i] = i;
        if (cfg->shuffle && B < N) sg_rng_shuffle(&shuf, w.order, N);
        double loss = 0.0;
        for (int64_t s = 0; s < N; s += B)
            loss += lp_step(lp, cfg, &w, X, y, s, SG_MIN(B, N - s), lr);
        lp->last_loss = loss / (double)N;
        if (!isfinite(lp->last_loss) || !all_finite(lp->W, (int64_t)C * D) ||
            !all_finite(lp->b, C)) {
            rc = sg_err("linear probe diverged in epoch %d (loss %g): lower lr (%g) or "
                        "weight_decay (%g); SGD needs lr * weight_decay < 2",
                        e, lp->last_loss, (double)cfg->lr, (double)cfg->weight_decay);
            break;
        }
    }
    free(w.xb);
    free(w.L);
    free(w.loss);
    free(w.gW);
    free(w.gb);
    free(w.bufW);
    free(w.bufb);
    free(w.order);
    if (rc < 0) sg_linprobe_free(lp);
    return rc;
}

void sg_linprobe_logits(const struct sg_linprobe *lp, const float *X, int64_t N, float *logits)
{
    SG_CHECK(lp && lp->W && X && logits, "NULL input or untrained probe");
    const int C = lp->C, D = lp->D;
    sg_gemm(0, 1, N, C, D, 1.0f, X, D, lp->W, D, 0.0f, logits, C);
    for (int64_t i = 0; i < N; i++)
        for (int c = 0; c < C; c++) logits[i * C + c] += lp->b[c];
}

int sg_linprobe_eval(const struct sg_linprobe *lp, const float *X, const int32_t *y, int64_t N,
                     struct sg_cls_metrics *m, double *per_class_recall)
{
    SG_CHECK(lp && lp->W && X && y && m, "NULL input or untrained probe");
    memset(m, 0, sizeof *m);
    if (N < 1) return sg_err("linear probe eval: need >= 1 sample");
    if (check_labels(y, N, lp->C, "labels") < 0) return -1;
    if (!all_finite(X, N * lp->D)) return sg_err("linear probe eval: features contain NaN/Inf");
    if (!all_finite(lp->W, (int64_t)lp->C * lp->D) || !all_finite(lp->b, lp->C))
        return sg_err("linear probe eval: the probe's weights contain NaN/Inf (diverged?)");
    const int64_t rows = block_rows(lp->C, 0);
    float *L = sg_xmalloc(sizeof(float) * (size_t)(SG_MIN(rows, N) * lp->C)); /* (rows, C) */
    struct cls_acc a;
    cls_acc_init(&a, lp->C, rows);
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
        const int64_t nb = SG_MIN(rows, N - r0);
        sg_linprobe_logits(lp, X + r0 * lp->D, nb, L);
        cls_accumulate(&a, L, y + r0, nb);
    }
    cls_finish(&a, m, per_class_recall);
    cls_acc_free(&a);
    free(L);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, z = *(const int64_t *)b;
    return (x > z) - (x < z);
}

int sg_linprobe_split(int64_t N, double val_frac, uint64_t seed, int64_t *train_idx,
                      int64_t *n_train, int64_t *val_idx, int64_t *n_val)
{
    SG_CHECK(train_idx && n_train && val_idx && n_val, "NULL output");
    if (N < 2) return sg_err("linear probe split: need >= 2 samples (got %lld)", (long long)N);
    if (!(val_frac > 0.0 && val_frac < 1.0))
        return sg_err("linear probe split: val_frac = %g must be in (0, 1)", val_frac);
    int64_t nv = llround((double)N * val_frac);
    nv = SG_MAX(1, SG_MIN(N - 1, nv));
    int64_t *perm = sg_xmalloc(sizeof(int64_t) * (size_t)N);
    for (int64_t i = 0; i < N; i++) perm[i] = i;
    struct sg_rng r;
    sg_rng_seed(&r, seed);
    sg_rng_shuffle(&r, perm, N);
    memcpy(val_idx, perm, sizeof(int64_t) * (size_t)nv);
    memcpy(train_idx, perm + nv, sizeof(int64_t) * (size_t)(N - nv));
    qsort(val_idx, (size_t)nv, sizeof(int64_t), cmp_i64);
    qsort(train_idx, (size_t)(N - nv), sizeof(int64_t), cmp_i64);
    *n_val = nv;
    *n_train = N - nv;
    free(perm);
    return 0;
}

void sg_linprobe_wd_grid(float grid[SG_LINPROBE_WD_GRID_N])
{
    for (int i = 0; i < SG_LINPROBE_WD_GRID_N; i++)
        grid[i] = (float)pow(10.0, -6.0 + 8.0 * i / (SG_LINPROBE_WD_GRID_N - 1));
}

static void gather_rows(const float *X, const int32_t *y, int D, const int64_t *idx, int64_t n,
                        float *Xo, int32_t *yo)
{
    for (int64_t i = 0; i < n; i++) {
        memcpy(Xo + i * D, X + idx[i] * D, sizeof(float) * (size_t)D);
        yo[i] = y[idx[i]];
    }
}

int sg_linprobe_select_wd(const struct sg_linprobe_config *cfg, const float *X, const int32_t *y,
                          int64_t N, int D, int C, const float *grid, int n_grid, double val_frac,
                          float *best_wd, double *val_acc1)
{
    SG_CHECK(cfg && X && y && grid && best_wd, "NULL input");
    if (n_grid < 1) return sg_err("linear probe: empty weight-decay grid");
    for (int g = 0; g < n_grid; g++)
        if (!(grid[g] >= 0.0f) || !isfinite(grid[g]))
            return sg_err("linear probe: grid[%d] = %g must be finite and >= 0", g,
                          (double)grid[g]);
    if (linprobe_check(cfg, X, y, N, D, C) < 0) return -1;
    int64_t *tr = sg_xmalloc(sizeof(int64_t) * (size_t)N);
    int64_t *va = sg_xmalloc(sizeof(int64_t) * (size_t)N);
    int64_t ntr, nva;
    if (sg_linprobe_split(N, val_frac, cfg->seed, tr, &ntr, va, &nva) < 0) {
        free(tr);
        free(va);
        return -1;
    }
    float *Xtr = sg_xmalloc(sizeof(float) * (size_t)(ntr * D));
    float *Xva = sg_xmalloc(sizeof(float) * (size_t)(nva * D));
    int32_t *ytr = sg_xmalloc(sizeof(int32_t) * (size_t)ntr);
    int32_t *yva = sg_xmalloc(sizeof(int32_t) * (size_t)nva);
    gather_rows(X, y, D, tr, ntr, Xtr, ytr);
    gather_rows(X, y, D, va, nva, Xva, yva);
    double best = -1.0;
    for (int g = 0; g < n_grid; g++) {
        struct sg_linprobe_config c = *cfg;
        c.weight_decay = grid[g];
        struct sg_linprobe lp;
        struct sg_cls_metrics m;
        double acc = NAN; /* a diverged run (inputs are valid here) is skipped */
        if (sg_linprobe_train(&lp, &c, Xtr, ytr, ntr, D, C) == 0 &&
            sg_linprobe_eval(&lp, Xva, yva, nva, &m, NULL) == 0)
            acc = m.acc1;
        sg_linprobe_free(&lp);
        if (val_acc1) val_acc1[g] = acc;
        if (best < acc) {
            best = acc;
            *best_wd = grid[g];
        }
    }
    int rc = 0;
    if (best < 0.0)
        rc = sg_err("linear probe: training diverged for every weight decay in the grid: lower "
                    "the lr (%g)",
                    (double)cfg->lr);
    else
        sg_clear_error();
    free(tr);
    free(va);
    free(Xtr);
    free(Xva);
    free(ytr);
    free(yva);
    return rc;
}
