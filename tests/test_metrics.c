/*
 * tests/test_metrics.c — eval/metrics (retrieval, zero-shot, linear probe) and eval/results
 * (table, CLIP_benchmark JSON).
 * References: tests/ref/gen_metrics.py -> tests/ref/data/metrics.safetensors (torch: stable
 * ranks, CLIP_benchmark's topk recalls/accuracies, open_clip mean/median rank, torch SGD), and
 * brute-force double-loop references here. Ranks and counts must match exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "eval/clip_eval.h"
#include "eval/metrics.h"
#include "eval/results.h"
#include "tests/testutil.h"

static const int KS[SG_RECALL_NK] = SG_RECALL_KS;

/* ---- helpers ------------------------------------------------------------------------------ */

static int64_t ref_numel(const struct sg_st_file *f, const char *name)
{
    const struct sg_st_entry *e = sg_st_find(f, name);
    if (!e) {
        fprintf(stderr, "FAIL: reference tensor '%s' missing (rerun gen_metrics.py)\n", name);
        exit(1);
    }
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
    return n;
}

static float *ref_f32(const struct sg_st_file *f, const char *name, int64_t *n)
{
    *n = ref_numel(f, name);
    return sg_test_ref(f, name, *n);
}

static int32_t *ref_i32(const struct sg_st_file *f, const char *name, int64_t *n)
{
    *n = ref_numel(f, name);
    int64_t *x = sg_test_ref_i64(f, name, *n);
    int32_t *y = sg_xmalloc(sizeof(int32_t) * (size_t)SG_MAX(*n, 1));
    for (int64_t i = 0; i < *n; i++) y[i] = (int32_t)x[i];
    free(x);
    return y;
}

static int64_t *ref_i64(const struct sg_st_file *f, const char *name, int64_t *n)
{
    *n = ref_numel(f, name);
    return sg_test_ref_i64(f, name, *n);
}

/* Exact equality of int arrays; prints the first mismatches. */
static int check_eq_i32(const char *label, const int32_t *got, const int32_t *ref, int64_t n)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (got[i] != ref[i] && bad++ < 5)
            fprintf(stderr, "  %s[%lld]: got %d, ref %d\n", label, (long long)i, got[i], ref[i]);
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %lld values equal (%lld differ)", label, (long long)n,
             (long long)bad);
    return sg_test_true(msg, bad == 0);
}

static int check_eq_i64(const char *label, int64_t got, int64_t ref)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s: got %lld, ref %lld", label, (long long)got, (long long)ref);
    return sg_test_true(msg, got == ref);
}

static int check_near(const char *label, double got, double ref, double tol)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s: got %.9g, ref %.9g", label, got, ref);
    return sg_test_true(msg, fabs(got - ref) <= tol);
}

static void l2_normalize_rows(float *x, int64_t n, int E)
{
    for (int64_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (int e = 0; e < E; e++) ss += (double)x[i * E + e] * x[i * E + e];
        for (int e = 0; e < E; e++) x[i * E + e] = (float)(x[i * E + e] / sqrt(ss));
    }
}

static double dot_d(const float *a, const float *b, int E)
{
    double s = 0.0;
    for (int e = 0; e < E; e++) s += (double)a[e] * b[e];
    return s;
}

/* ---- brute-force references (double loops over double-precision scores) ----------------- */

/* The definition in eval/metrics.h, literally: rank = 1 + #{greater} + #{equal, lower index};
 * image->text = the smallest such rank over the image's captions (0 without captions). */
static void brute_retrieval(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                            const int32_t *t2i, int32_t *rt, int32_t *ri)
{
    for (int64_t t = 0; t < Nt; t++) {
        const int64_t p = t2i[t];
        const double sp = dot_d(zt + t * E, zi + p * E, E);
        int64_t r = 1;
        for (int64_t j = 0; j < Ni; j++) {
            const double s = dot_d(zt + t * E, zi + j * E, E);
            r += s > sp || (s == sp && j < p);
        }
        rt[t] = (int32_t)r;
    }
    for (int64_t i = 0; i < Ni; i++) {
        int64_t best = 0;
        for (int64_t t = 0; t < Nt; t++) {
            if (t2i[t] != i) continue;
            const double st = dot_d(zi + i * E, zt + t * E, E);
            int64_t r = 1;
            for (int64_t u = 0; u < Nt; u++) {
                const double s = dot_d(zi + i * E, zt + u * E, E);
                r += s > st || (s == st && u < t);
            }
            if (best == 0 || r < best) best = r;
        }
        ri[i] = (int32_t)best;
    }
}

/* Classification ranks by the same definition over double scores img W^T. */
static void brute_cls_ranks(const float *img, int64_t N, const float *W, int C, int E,
                            const int32_t *y, int32_t *rank)
{
    for (int64_t i = 0; i < N; i++) {
        const double sy = dot_d(img + i * E, W + (int64_t)y[i] * E, E);
        int64_t r = 1;
        for (int c = 0; c < C; c++) {
            const double s = dot_d(img + i * E, W + (int64_t)c * E, E);
            r += s > sy || (s == sy && c < y[i]);
        }
        rank[i] = (int32_t)r;
    }
}

static int64_t count_le(const int32_t *r, int64_t n, int k)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += r[i] >= 1 && r[i] <= k;
    return c;
}

/* ---- retrieval against torch and brute force ---------------------------------------------- */

static int same_metrics(const struct sg_retrieval_metrics *a, const struct sg_retrieval_metrics *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static void test_retrieval_case(const struct sg_st_file *f, const char *pre, int tie_free)
{
    char name[128], label[160];
    int64_t n, Ni, Nt, E;
#define R(field) (snprintf(name, sizeof name, "%s.%s", pre, field), name)
    float *zi = ref_f32(f, R("zi"), &n);
    Ni = sg_st_find(f, name)->shape[0];
    E = sg_st_find(f, name)->shape[1];
    float *zt = ref_f32(f, R("zt"), &n);
    Nt = n / E;
    int32_t *t2i = ref_i32(f, R("t2i"), &n);
    int32_t *want_rt = ref_i32(f, R("t2i_rank"), &n);
    int32_t *want_ri = ref_i32(f, R("i2t_rank"), &n);
    int32_t *opt_rt = ref_i32(f, R("t2i_rank_opt"), &n);
    int32_t *pes_rt = ref_i32(f, R("t2i_rank_pes"), &n);
    int32_t *opt_ri = ref_i32(f, R("i2t_rank_opt"), &n);
    int32_t *pes_ri = ref_i32(f, R("i2t_rank_pes"), &n);
    int64_t *ties = ref_i64(f, R("ties"), &n);
    int64_t *cb = ref_i64(f, R("clipbench_hits"), &n); /* (3, 2): [IR, TR] per K */
    float *mm = ref_f32(f, R("mean_median"), &n);
#undef R

    int32_t *rt = sg_xmalloc(sizeof(int32_t) * (size_t)Nt);
    int32_t *ri = sg_xmalloc(sizeof(int32_t) * (size_t)Ni);
    struct sg_retrieval_metrics m;
    int rc = sg_retrieval_eval(zi, Ni, zt, Nt, (int)E, t2i, &m, rt, ri);
    snprintf(label, sizeof label, "%s: retrieval runs (%s)", pre, rc ? sg_last_error() : "ok");
    sg_test_true(label, rc == 0);

    snprintf(label, sizeof label, "%s: text->image ranks == torch stable sort", pre);
    check_eq_i32(label, rt, want_rt, Nt);
    snprintf(label, sizeof label, "%s: image->text best ranks == torch stable sort", pre);
    check_eq_i32(label, ri, want_ri, Ni);

    int32_t *brt = sg_xmalloc(sizeof(int32_t) * (size_t)Nt);
    int32_t *bri = sg_xmalloc(sizeof(int32_t) * (size_t)Ni);
    brute_retrieval(zi, Ni, zt, Nt, (int)E, t2i, brt, bri);
    snprintf(label, sizeof label, "%s: text->image ranks == brute force", pre);
    check_eq_i32(label, rt, brt, Nt);
    snprintf(label, sizeof label, "%s: image->text ranks == brute force", pre);
    check_eq_i32(label, ri, bri, Ni);

    int in_bounds = 1;
    for (int64_t t = 0; t < Nt; t++) in_bounds &= opt_rt[t] <= rt[t] && rt[t] <= pes_rt[t];
    for (int64_t i = 0; i < Ni; i++) in_bounds &= opt_ri[i] <= ri[i] && ri[i] <= pes_ri[i];
    snprintf(label, sizeof label, "%s: ranks within [optimistic, pessimistic]", pre);
    sg_test_true(label, in_bounds);

    snprintf(label, sizeof label, "%s: text->image tie count", pre);
    check_eq_i64(label, m.t2i_ties, ties[0]);
    snprintf(label, sizeof label, "%s: image->text tie count", pre);
    check_eq_i64(label, m.i2t_ties, ties[1]);

    int64_t nq = 0;
    for (int64_t i = 0; i < Ni; i++) nq += want_ri[i] > 0;
    snprintf(label, sizeof label, "%s: image->text queries = images with captions", pre);
    check_eq_i64(label, m.n_i2t_queries, nq);
    for (int k = 0; k < SG_RECALL_NK; k++) {
        const int64_t ir_cb = cb[k * 2], tr_cb = cb[k * 2 + 1];
        snprintf(label, sizeof label, "%s: t2i hits@%d", pre, KS[k]);
        check_eq_i64(label, m.t2i_hits[k], count_le(want_rt, Nt, KS[k]));
        snprintf(label, sizeof label, "%s: i2t hits@%d", pre, KS[k]);
        check_eq_i64(label, m.i2t_hits[k], count_le(want_ri, Ni, KS[k]));
        check_near("  recall percent", m.t2i_recall[k], 100.0 * (double)m.t2i_hits[k] / (double)Nt,
                   1e-12);
        check_near("  recall percent (i2t)", m.i2t_recall[k],
                   100.0 * (double)m.i2t_hits[k] / (double)nq, 1e-12);
        if (tie_free) {
            snprintf(label, sizeof label, "%s: CLIP_benchmark (topk) hits@%d equal", pre, KS[k]);
            sg_test_true(label, ir_cb == m.t2i_hits[k] && tr_cb == m.i2t_hits[k]);
        } else {
            /* topk breaks ties arbitrarily: it lies between the pessimistic and optimistic
             * rules, and so does ours */
            const int64_t lo_ir = count_le(pes_rt, Nt, KS[k]), hi_ir = count_le(opt_rt, Nt, KS[k]);
            const int64_t lo_tr = count_le(pes_ri, Ni, KS[k]), hi_tr = count_le(opt_ri, Ni, KS[k]);
            snprintf(label, sizeof label,
                     "%s: @%d CLIP_benchmark IR %lld, ours %lld in [%lld, %lld]; TR %lld, ours "
                     "%lld in [%lld, %lld]",
                     pre, KS[k], (long long)ir_cb, (long long)m.t2i_hits[k], (long long)lo_ir,
                     (long long)hi_ir, (long long)tr_cb, (long long)m.i2t_hits[k], (long long)lo_tr,
                     (long long)hi_tr);
            sg_test_true(label, lo_ir <= ir_cb && ir_cb <= hi_ir && lo_ir <= m.t2i_hits[k] &&
                                    m.t2i_hits[k] <= hi_ir && lo_tr <= tr_cb && tr_cb <= hi_tr &&
                                    lo_tr <= m.i2t_hits[k] && m.i2t_hits[k] <= hi_tr);
        }
    }
    snprintf(label, sizeof label, "%s: mean/median ranks == open_clip formula", pre);
    sg_test_true(label,
                 fabs(m.t2i_mean_rank - mm[0]) <= 1e-5 * mm[0] && m.t2i_median_rank == mm[1] &&
                     fabs(m.i2t_mean_rank - mm[2]) <= 1e-5 * mm[2] && m.i2t_median_rank == mm[3]);
    double six = 0.0;
    for (int k = 0; k < SG_RECALL_NK; k++) six += m.t2i_recall[k] + m.i2t_recall[k];
    check_near("r_mean = mean of the six recalls", m.r_mean, six / 6.0, 1e-12);

    /* blockwise evaluation gives the identical result */
    static const int64_t blocks[] = {1, 5, 7, 1000};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        struct sg_retrieval_metrics mb;
        int32_t *rtb = sg_xmalloc(sizeof(int32_t) * (size_t)Nt);
        int32_t *rib = sg_xmalloc(sizeof(int32_t) * (size_t)Ni);
        sg_retrieval_eval_blocked(zi, Ni, zt, Nt, (int)E, t2i, &mb, rtb, rib, blocks[b]);
        snprintf(label, sizeof label, "%s: block_rows %lld gives identical metrics and ranks", pre,
                 (long long)blocks[b]);
        sg_test_true(label, same_metrics(&m, &mb) &&
                                !memcmp(rt, rtb, sizeof(int32_t) * (size_t)Nt) &&
                                !memcmp(ri, rib, sizeof(int32_t) * (size_t)Ni));
        free(rtb);
        free(rib);
    }
    /* NULL rank outputs are allowed */
    struct sg_retrieval_metrics m2;
    sg_retrieval_eval(zi, Ni, zt, Nt, (int)E, t2i, &m2, NULL, NULL);
    snprintf(label, sizeof label, "%s: NULL rank outputs give the same metrics", pre);
    sg_test_true(label, same_metrics(&m, &m2));

    sg_afree(zi);
    sg_afree(zt);
    sg_afree(mm);
    free(t2i), free(want_rt), free(want_ri), free(opt_rt), free(pes_rt), free(opt_ri);
    free(pes_ri), free(ties), free(cb), free(rt), free(ri), free(brt), free(bri);
}

/* Independent random embeddings: each caption's image is independent of the scores, so its rank
 * is uniform on 1..Ni: R@K ~ 100 K / Ni and mean rank ~ (Ni + 1) / 2 (checked within 5 sd). */
static void test_retrieval_random_sanity(void)
{
    const int64_t Ni = 500, cap = 4, Nt = Ni * cap;
    const int E = 64;
    float *zi = sg_xmalloc(sizeof(float) * (size_t)(Ni * E));
    float *zt = sg_xmalloc(sizeof(float) * (size_t)(Nt * E));
    int32_t *t2i = sg_xmalloc(sizeof(int32_t) * (size_t)Nt);
    sg_test_fill(zi, Ni * E, 11, -1.0f, 1.0f);
    sg_test_fill(zt, Nt * E, 12, -1.0f, 1.0f);
    l2_normalize_rows(zi, Ni, E);
    l2_normalize_rows(zt, Nt, E);
    for (int64_t t = 0; t < Nt; t++) t2i[t] = (int32_t)((t * 7) % Ni);
    struct sg_retrieval_metrics m;
    sg_retrieval_eval(zi, Ni, zt, Nt, E, t2i, &m, NULL, NULL);
    int ok = 1;
    char label[200];
    for (int k = 0; k < SG_RECALL_NK; k++) {
        const double p = (double)KS[k] / Ni, mu = Nt * p, sd = sqrt(Nt * p * (1 - p));
        /* image->text: best of `cap` uniform ranks among Nt: P = 1 - (1 - K/Nt)^cap approx. */
        const double q = 1.0 - pow(1.0 - (double)KS[k] / Nt, (double)cap);
        const double mu2 = Ni * q, sd2 = sqrt(Ni * q * (1 - q));
        snprintf(label, sizeof label,
                 "random sanity @%d: t2i hits %lld (expect %.1f +- %.1f), i2t hits %lld "
                 "(expect %.1f +- %.1f)",
                 KS[k], (long long)m.t2i_hits[k], mu, sd, (long long)m.i2t_hits[k], mu2, sd2);
        ok = fabs(m.t2i_hits[k] - mu) <= 5 * sd && fabs(m.i2t_hits[k] - mu2) <= 5 * sd2;
        sg_test_true(label, ok);
    }
    const double mr = (Ni + 1) / 2.0, sdm = sqrt((double)(Ni * Ni - 1) / 12.0 / Nt);
    snprintf(label, sizeof label, "random sanity: t2i mean rank %.2f (expect %.1f +- %.2f)",
             m.t2i_mean_rank, mr, sdm);
    sg_test_true(label, fabs(m.t2i_mean_rank - mr) <= 5 * sdm);
    sg_test_true("random sanity: no ties", m.t2i_ties == 0 && m.i2t_ties == 0);
    free(zi);
    free(zt);
    free(t2i);
}

static void test_retrieval_errors(void)
{
    float zi[8] = {1, 0, 0, 1, 0, 1, 1, 0}, zt[4] = {1, 0, 0, 1};
    int32_t t2i[2] = {0, 4};
    struct sg_retrieval_metrics m;
    int rc = sg_retrieval_eval(zi, 4, zt, 2, 2, t2i, &m, NULL, NULL);
    sg_test_true("retrieval: text_to_image out of range -> -1",
                 rc == -1 && strstr(sg_last_error(), "text_to_image[1] = 4") != NULL);
    t2i[1] = 1;
    zt[3] = NAN;
    rc = sg_retrieval_eval(zi, 4, zt, 2, 2, t2i, &m, NULL, NULL);
    sg_test_true("retrieval: NaN embedding -> -1", rc == -1 && strstr(sg_last_error(), "NaN"));
    rc = sg_retrieval_eval(zi, 0, zt, 2, 2, t2i, &m, NULL, NULL);
    sg_test_true("retrieval: no images -> -1", rc == -1);
    int32_t r[4] = {1, 0, 7, 12};
    check_near("sg_recall_at_k skips non-queries", sg_recall_at_k(r, 4, 10), 200.0 / 3.0, 1e-12);
}

/* ---- classification ------------------------------------------------------------------------ */

static void check_per_class(const char *label, const double *got, const float *ref, int C)
{
    int ok = 1;
    for (int c = 0; c < C; c++) {
        if (isnan(ref[c]))
            ok &= isnan(got[c]);
        else
            ok &= fabs(got[c] - ref[c]) <= 1e-4;
        if (!ok) {
            fprintf(stderr, "  %s[%d]: got %g, ref %g\n", label, c, got[c], (double)ref[c]);
            break;
        }
    }
    sg_test_true(label, ok);
}

static void test_cls_case(const struct sg_st_file *f, const char *pre, const float *W,
                          const float *img, int64_t N, int C, int E, int tie_free)
{
    char name[128], label[200];
    int64_t n;
#define R(field) (snprintf(name, sizeof name, "%s.%s", pre, field), name)
    int32_t *y = ref_i32(f, R("labels"), &n);
    int32_t *want_r = ref_i32(f, R("rank"), &n);
    int32_t *opt = ref_i32(f, R("rank_opt"), &n);
    int32_t *pes = ref_i32(f, R("rank_pes"), &n);
    int64_t *cnt = ref_i64(f, R("counts"), &n); /* top1, top5, ties, cb top1, cb top5 */
    float *pcr = ref_f32(f, R("per_class_recall"), &n);
    float bal = sg_test_ref_scalar(f, R("balanced_accuracy"));
#undef R
    struct sg_cls_metrics m;
    double *per = sg_xmalloc(sizeof(double) * (size_t)C);
    int rc = sg_zeroshot_eval(img, N, W, C, E, y, &m, per);
    snprintf(label, sizeof label, "%s: zero-shot eval runs (%s)", pre, rc ? sg_last_error() : "ok");
    sg_test_true(label, rc == 0);
    snprintf(label, sizeof label, "%s: top-1 correct (stable)", pre);
    check_eq_i64(label, m.correct1, cnt[0]);
    snprintf(label, sizeof label, "%s: top-5 correct (stable)", pre);
    check_eq_i64(label, m.correct5, cnt[1]);
    snprintf(label, sizeof label, "%s: tie count", pre);
    check_eq_i64(label, m.ties, cnt[2]);
    snprintf(label, sizeof label, "%s: top-1 == CLIP_benchmark", pre);
    check_eq_i64(label, m.correct1, cnt[3]);
    if (tie_free) {
        snprintf(label, sizeof label, "%s: top-5 == CLIP_benchmark", pre);
        check_eq_i64(label, m.correct5, cnt[4]);
    } else {
        const int64_t lo = count_le(pes, N, 5), hi = count_le(opt, N, 5);
        snprintf(label, sizeof label,
                 "%s: top-5 CLIP_benchmark %lld, ours %lld, both in [%lld, %lld]", pre,
                 (long long)cnt[4], (long long)m.correct5, (long long)lo, (long long)hi);
        sg_test_true(label, lo <= cnt[4] && cnt[4] <= hi && lo <= m.correct5 && m.correct5 <= hi);
    }
    int32_t *br = sg_xmalloc(sizeof(int32_t) * (size_t)N);
    brute_cls_ranks(img, N, W, C, E, y, br);
    snprintf(label, sizeof label, "%s: ranks: brute force == torch stable sort", pre);
    check_eq_i32(label, br, want_r, N);
    snprintf(label, sizeof label, "%s: counts == brute force", pre);
    sg_test_true(label, m.correct1 == count_le(br, N, 1) && m.correct5 == count_le(br, N, 5));
    snprintf(label, sizeof label, "%s: per-class recall (NaN for classes without samples)", pre);
    check_per_class(label, per, pcr, C);
    int present = 0;
    for (int c = 0; c < C; c++) present += !isnan(pcr[c]);
    snprintf(label, sizeof label, "%s: classes present", pre);
    check_eq_i64(label, m.n_classes_present, present);
    snprintf(label, sizeof label, "%s: mean_per_class_recall == balanced_accuracy_score", pre);
    check_near(label, m.balanced_accuracy, bal, 1e-6);
    check_near("  percent form", m.mean_per_class_recall, 100.0 * m.balanced_accuracy, 1e-9);
    check_near("  acc1 percent", m.acc1, 100.0 * (double)cnt[0] / (double)N, 1e-12);

    /* sg_cls_eval on precomputed scores gives the same */
    float *S = sg_xmalloc(sizeof(float) * (size_t)(N * C));
    for (int64_t i = 0; i < N; i++)
        for (int c = 0; c < C; c++) S[i * C + c] = (float)dot_d(img + i * E, W + (int64_t)c * E, E);
    struct sg_cls_metrics m2;
    double *per2 = sg_xmalloc(sizeof(double) * (size_t)C);
    sg_cls_eval(S, y, N, C, &m2, per2);
    snprintf(label, sizeof label, "%s: sg_cls_eval on scores == sg_zeroshot_eval", pre);
    sg_test_true(label, m2.correct1 == m.correct1 && m2.correct5 == m.correct5 &&
                            m2.ties == m.ties && m2.balanced_accuracy == m.balanced_accuracy);
    free(S), free(per2), free(br), free(per), free(y), free(want_r), free(opt), free(pes);
    free(cnt);
    sg_afree(pcr);
}

static void test_zeroshot(const struct sg_st_file *f)
{
    int64_t n;
    /* ties: exact scores, duplicate classes, two classes without samples */
    float *W = ref_f32(f, "zs_ties.W", &n);
    const int C = (int)sg_st_find(f, "zs_ties.W")->shape[0], E = 4;
    float *img = ref_f32(f, "zs_ties.img", &n);
    test_cls_case(f, "zs_ties", W, img, n / E, C, E, 0);
    sg_afree(W);
    sg_afree(img);

    /* classifier from prompts, then random images */
    float *prompts = ref_f32(f, "zs.prompts", &n);
    const struct sg_st_entry *e = sg_st_find(f, "zs.prompts");
    const int Cz = (int)e->shape[0], P = (int)e->shape[1], Ez = (int)e->shape[2];
    float *Wref = ref_f32(f, "zs.W", &n);
    float *Wc = sg_xmalloc(sizeof(float) * (size_t)(Cz * Ez));
    sg_test_true("zero-shot classifier runs", sg_zeroshot_classifier(prompts, Cz, P, Ez, Wc) == 0);
    sg_test_close("zero-shot classifier == normalize(mean(normalize(prompts)))", Wc, Wref, Cz * Ez,
                  1e-6f, 1e-5f);
    float *imgz = ref_f32(f, "zs.img", &n);
    test_cls_case(f, "zs", Wc, imgz, n / Ez, Cz, Ez, 1);

    /* fewer than 5 classes: acc5 undefined (NaN), as CLIP_benchmark */
    float S3[6] = {0.1f, 0.9f, 0.3f, 0.8f, 0.2f, 0.1f};
    int32_t y3[2] = {1, 2};
    struct sg_cls_metrics m;
    sg_cls_eval(S3, y3, 2, 3, &m, NULL);
    sg_test_true("C < 5: acc5 is NaN, acc1 50%", isnan(m.acc5) && m.acc1 == 50.0);
    y3[1] = 3;
    sg_test_true("label >= C -> -1", sg_cls_eval(S3, y3, 2, 3, &m, NULL) == -1 &&
                                         strstr(sg_last_error(), "labels[1] = 3"));
    prompts[5] = INFINITY;
    sg_test_true("classifier: Inf prompt -> -1",
                 sg_zeroshot_classifier(prompts, Cz, P, Ez, Wc) == -1);
    sg_afree(prompts);
    sg_afree(Wref);
    sg_afree(imgz);
    free(Wc);
}

/* ---- linear probe -------------------------------------------------------------------------- */

static void test_linprobe(const struct sg_st_file *f)
{
    int64_t n;
    float *X = ref_f32(f, "lp.X", &n);
    const int64_t N = sg_st_find(f, "lp.X")->shape[0];
    const int D = (int)sg_st_find(f, "lp.X")->shape[1];
    int32_t *y = ref_i32(f, "lp.y", &n);
    const int C = 5;
    static const char *cases[] = {"full", "mini", "ordered"};
    char name[96], label[160];
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "lp.%s.cfg", cases[k]);
        float *c = ref_f32(f, name, &n);
        struct sg_linprobe_config cfg = {.epochs = (int)c[0],
                                         .batch_size = (int)c[1],
                                         .lr = c[2],
                                         .momentum = c[3],
                                         .weight_decay = c[4],
                                         .init_std = c[5],
                                         .seed = (uint64_t)c[6],
                                         .shuffle = (int)c[7]};
        sg_afree(c);
        struct sg_linprobe lp, lp2;
        int rc = sg_linprobe_train(&lp, &cfg, X, y, N, D, C);
        snprintf(label, sizeof label, "linear probe %s: trains", cases[k]);
        sg_test_true(label, rc == 0);
        snprintf(name, sizeof name, "lp.%s.W", cases[k]);
        float *W = sg_test_ref(f, name, (int64_t)C * D);
        snprintf(name, sizeof name, "lp.%s.b", cases[k]);
        float *b = sg_test_ref(f, name, C);
        snprintf(name, sizeof name, "lp.%s.loss", cases[k]);
        float loss = sg_test_ref_scalar(f, name);
        /* a few fp32 SGD steps with different summation orders (oneDNN GEMM vs torch) */
        snprintf(label, sizeof label, "linear probe %s: W == torch SGD", cases[k]);
        sg_test_close(label, lp.W, W, (int64_t)C * D, 2e-5f, 1e-4f);
        snprintf(label, sizeof label, "linear probe %s: b == torch SGD", cases[k]);
        sg_test_close(label, lp.b, b, C, 2e-5f, 1e-4f);
        float got_loss = (float)lp.last_loss;
        snprintf(label, sizeof label, "linear probe %s: last-epoch loss == torch", cases[k]);
        sg_test_close(label, &got_loss, &loss, 1, 1e-5f, 1e-5f);
        sg_linprobe_train(&lp2, &cfg, X, y, N, D, C);
        snprintf(label, sizeof label, "linear probe %s: deterministic (bitwise)", cases[k]);
        sg_test_true(label, !memcmp(lp.W, lp2.W, sizeof(float) * (size_t)(C * D)) &&
                                !memcmp(lp.b, lp2.b, sizeof(float) * (size_t)C));
        /* eval: counts match the ranks of its own logits (brute force) */
        struct sg_cls_metrics m;
        sg_linprobe_eval(&lp, X, y, N, &m, NULL);
        int64_t c1 = 0;
        for (int64_t i = 0; i < N; i++) {
            double sy = lp.b[y[i]] + dot_d(X + i * D, lp.W + (int64_t)y[i] * D, D);
            int r = 1;
            for (int cc = 0; cc < C; cc++) {
                double s = lp.b[cc] + dot_d(X + i * D, lp.W + (int64_t)cc * D, D);
                r += s > sy || (s == sy && cc < y[i]);
            }
            c1 += r == 1;
        }
        snprintf(label, sizeof label, "linear probe %s: train acc1 %.1f%% (brute force %lld)",
                 cases[k], m.acc1, (long long)c1);
        sg_test_true(label, m.correct1 == c1);
        sg_afree(W);
        sg_afree(b);
        sg_linprobe_free(&lp);
        sg_linprobe_free(&lp2);
    }

    /* held-out split: a sorted partition of 0..N-1 */
    int64_t *tr = sg_xmalloc(sizeof(int64_t) * (size_t)N),
            *va = sg_xmalloc(sizeof(int64_t) * (size_t)N);
    int64_t ntr, nva;
    sg_linprobe_split(N, 0.2, 9, tr, &ntr, va, &nva);
    int ok = ntr + nva == N && nva == 12;
    char *seen = sg_xcalloc((size_t)N, 1);
    for (int64_t i = 0; i < ntr; i++) ok &= !seen[tr[i]]++ && (i == 0 || tr[i] > tr[i - 1]);
    for (int64_t i = 0; i < nva; i++) ok &= !seen[va[i]]++ && (i == 0 || va[i] > va[i - 1]);
    sg_test_true("split: sorted partition, n_val = round(0.2 N)", ok);
    sg_test_true("split: val_frac 1 -> -1", sg_linprobe_split(N, 1.0, 9, tr, &ntr, va, &nva) == -1);

    /* weight-decay choice: the argmax of the validation accuracies (first on equal ones), each
     * equal to training on the split by hand */
    struct sg_linprobe_config cfg;
    sg_linprobe_config_default(&cfg);
    cfg.epochs = 20;
    cfg.batch_size = 16;
    cfg.lr = 0.2f;
    cfg.seed = 9;
    float grid[SG_LINPROBE_WD_GRID_N];
    sg_linprobe_wd_grid(grid);
    sg_test_true("wd grid = logspace(-6, 2, 7)", fabsf(grid[0] - 1e-6f) < 1e-12f &&
                                                     fabsf(grid[3] - 1e-2f) < 1e-8f &&
                                                     fabsf(grid[6] - 100.0f) < 1e-4f);
    double acc[SG_LINPROBE_WD_GRID_N];
    float best = -1.0f;
    int rc =
        sg_linprobe_select_wd(&cfg, X, y, N, D, C, grid, SG_LINPROBE_WD_GRID_N, 0.2, &best, acc);
    int arg = 0;
    for (int g = 1; g < SG_LINPROBE_WD_GRID_N; g++)
        if (acc[g] > acc[arg]) arg = g; /* NaN (diverged) never wins */
    printf("     val acc1 over the wd grid:");
    for (int g = 0; g < SG_LINPROBE_WD_GRID_N; g++) printf(" %.1f", acc[g]);
    printf(" -> wd %g\n", (double)best);
    sg_test_true("select_wd: first argmax of validation top-1", rc == 0 && best == grid[arg]);
    sg_test_true("select_wd: lr 0.2 * wd 100 diverges and is skipped (NaN)",
                 isnan(acc[6]) && best < 100.0f);
    {
        float *Xt = sg_xmalloc(sizeof(float) * (size_t)(ntr * D));
        float *Xv = sg_xmalloc(sizeof(float) * (size_t)(nva * D));
        int32_t *yt = sg_xmalloc(sizeof(int32_t) * (size_t)ntr);
        int32_t *yv = sg_xmalloc(sizeof(int32_t) * (size_t)nva);
        sg_linprobe_split(N, 0.2, cfg.seed, tr, &ntr, va, &nva);
        for (int64_t i = 0; i < ntr; i++) {
            memcpy(Xt + i * D, X + tr[i] * D, sizeof(float) * (size_t)D);
            yt[i] = y[tr[i]];
        }
        for (int64_t i = 0; i < nva; i++) {
            memcpy(Xv + i * D, X + va[i] * D, sizeof(float) * (size_t)D);
            yv[i] = y[va[i]];
        }
        struct sg_linprobe lp;
        struct sg_cls_metrics m;
        cfg.weight_decay = grid[2];
        sg_linprobe_train(&lp, &cfg, Xt, yt, ntr, D, C);
        sg_linprobe_eval(&lp, Xv, yv, nva, &m, NULL);
        sg_test_true("select_wd: validation accuracy reproduced by hand", m.acc1 == acc[2]);
        sg_linprobe_free(&lp);
        free(Xt), free(Xv), free(yt), free(yv);
    }

    /* errors */
    struct sg_linprobe lp;
    y[3] = C;
    sg_test_true("linear probe: label >= C -> -1",
                 sg_linprobe_train(&lp, &cfg, X, y, N, D, C) == -1 && lp.W == NULL);
    y[3] = 0;
    cfg.momentum = 0.9f;
    cfg.weight_decay = 1000.0f;
    sg_test_true("linear probe: divergence to Inf (lr 0.2 * wd 1000) -> -1",
                 sg_linprobe_train(&lp, &cfg, X, y, N, D, C) == -1 &&
                     strstr(sg_last_error(), "diverged") && lp.W == NULL);
    cfg.momentum = 1.0f;
    sg_test_true("linear probe: momentum 1 -> -1",
                 sg_linprobe_train(&lp, &cfg, X, y, N, D, C) == -1 &&
                     strstr(sg_last_error(), "momentum"));
    free(seen), free(tr), free(va), free(y);
    sg_afree(X);
}

/* ---- results: table and JSON --------------------------------------------------------------- */

/* A minimal strict JSON reader for the check: validates the grammar and collects the top-level
 * keys with their string values and the "metrics" object's keys with their raw scalar text. */
struct jdoc {
    int ntop, nmet;
    char top[16][64], topval[16][256];
    char met[64][64], metval[64][64];
};

static const char *j_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return s;
}

static const char *j_string(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (*s++ != '"') return NULL;
    while (*s != '"') {
        char c = *s++;
        if ((unsigned char)c < 0x20) return NULL;
        if (c == '\\') {
            c = *s++;
            switch (c) {
            case '"':
            case '\\':
            case '/':
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4; k++, s++) {
                    char h = *s;
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
                          (h >= 'A' && h <= 'F')))
                        return NULL;
                    v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
                }
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            default:
                return NULL;
            }
        }
        if (n + 1 < cap) out[n++] = c;
    }
    out[n] = 0;
    return s + 1;
}

static const char *j_number(const char *s)
{
    if (*s == '-') s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9') s++;
    else
        return NULL;
    if (*s == '.') {
        if (!(*++s >= '0' && *s <= '9')) return NULL;
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return NULL;
        while (*s >= '0' && *s <= '9') s++;
    }
    return s;
}

static const char *j_value(const char *s, int depth)
{
    char tmp[256];
    s = j_ws(s);
    if (depth > 32) return NULL;
    if (*s == '"') return j_string(s, tmp, sizeof tmp);
    if (!strncmp(s, "true", 4)) return s + 4;
    if (!strncmp(s, "false", 5)) return s + 5;
    if (!strncmp(s, "null", 4)) return s + 4;
    if (*s == '{' || *s == '[') {
        const char close = *s == '{' ? '}' : ']';
        const int obj = *s == '{';
        s = j_ws(s + 1);
        if (*s == close) return s + 1;
        for (;;) {
            if (obj) {
                s = j_string(j_ws(s), tmp, sizeof tmp);
                if (!s || *(s = j_ws(s)) != ':') return NULL;
                s++;
            }
            if (!(s = j_value(s, depth + 1))) return NULL;
            s = j_ws(s);
            if (*s == close) return s + 1;
            if (*s++ != ',') return NULL;
        }
    }
    return j_number(s);
}

/* Returns 1 when `s` is one valid JSON object (and fills d). */
static int j_parse_results(const char *s, struct jdoc *d)
{
    memset(d, 0, sizeof *d);
    if (!j_value(s, 0) || *j_ws(j_value(s, 0))) return 0; /* whole-document grammar */
    s = j_ws(s);
    if (*s++ != '{') return 0;
    for (;;) {
        char key[64];
        if (!(s = j_string(j_ws(s), key, sizeof key)) || *(s = j_ws(s)) != ':' || d->ntop >= 16)
            return 0;
        s = j_ws(s + 1);
        snprintf(d->top[d->ntop], sizeof d->top[0], "%s", key);
        if (!strcmp(key, "metrics")) {
            if (*s++ != '{') return 0;
            for (;;) {
                if (d->nmet >= 64) return 0;
                s = j_string(j_ws(s), d->met[d->nmet], sizeof d->met[0]);
                if (!s || *(s = j_ws(s)) != ':') return 0;
                const char *v = j_ws(s + 1), *e = j_value(v, 1);
                if (!e || *v == '{' || *v == '[' || *v == '"') return 0; /* scalars only */
                snprintf(d->metval[d->nmet++], sizeof d->metval[0], "%.*s", (int)(e - v), v);
                s = j_ws(e);
                if (*s == '}') break;
                if (*s++ != ',') return 0;
            }
            s++;
        } else if (*s == '"') {
            s = j_string(s, d->topval[d->ntop], sizeof d->topval[0]);
        } else {
            s = j_value(s, 1);
        }
        if (!s) return 0;
        d->ntop++;
        s = j_ws(s);
        if (*s == '}') return 1;
        if (*s++ != ',') return 0;
    }
}

static const char *j_metric(const struct jdoc *d, const char *key)
{
    for (int i = 0; i < d->nmet; i++)
        if (!strcmp(d->met[i], key)) return d->metval[i];
    return NULL;
}

static const char *j_top(const struct jdoc *d, const char *key)
{
    for (int i = 0; i < d->ntop; i++)
        if (!strcmp(d->top[i], key)) return d->topval[i];
    return NULL;
}

static void test_results(const struct sg_st_file *f)
{
    /* retrieval results from the tie case */
    int64_t n;
    float *zi = ref_f32(f, "ties.zi", &n);
    const int64_t Ni = n / 4;
    float *zt = ref_f32(f, "ties.zt", &n);
    const int64_t Nt = n / 4;
    int32_t *t2i = ref_i32(f, "ties.t2i", &n);
    struct sg_retrieval_metrics rm;
    sg_retrieval_eval(zi, Ni, zt, Nt, 4, t2i, &rm, NULL, NULL);

    char path[256];
    snprintf(path, sizeof path, "/tmp/sg_test_metrics_%d.json", (int)getpid());
    struct sg_results r;
    sg_results_init(&r, SG_TASK_ZEROSHOT_RETRIEVAL, "flickr \"30k\"\\test\n", "ViT-B-32",
                    "run/ckpt.safetensors");
    sg_results_add_retrieval(&r, &rm);
    int rc = sg_results_write_json(&r, path);
    sg_test_true("results: JSON written", rc == 0);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    sg_test_true("results: atomic write leaves no .tmp", access(tmp, F_OK) != 0);
    char *text = NULL;
    size_t len = 0;
    sg_read_file(path, &text, &len);
    struct jdoc d;
    int parsed = text && j_parse_results(text, &d);
    if (text) printf("     %s", text);
    sg_test_true("results: retrieval JSON parses (strict grammar)", parsed);
    static const char *top[] = {"dataset", "model", "pretrained", "task", "metrics", "language"};
    int ok = d.ntop == 6;
    for (int i = 0; i < 6 && ok; i++) ok &= !strcmp(d.top[i], top[i]);
    sg_test_true("results: top-level keys = CLIP_benchmark's, in its order", ok);
    sg_test_true("results: strings escape and read back",
                 j_top(&d, "dataset") && !strcmp(j_top(&d, "dataset"), "flickr \"30k\"\\test\n") &&
                     !strcmp(j_top(&d, "task"), "zeroshot_retrieval") &&
                     !strcmp(j_top(&d, "language"), "en"));
    ok = 1;
    for (int k = 0; k < SG_RECALL_NK; k++) {
        char key[64];
        snprintf(key, sizeof key, "image_retrieval_recall@%d", KS[k]);
        const char *v = j_metric(&d, key);
        ok &= v && strtod(v, NULL) == (double)rm.t2i_hits[k] / (double)Nt;
        snprintf(key, sizeof key, "text_retrieval_recall@%d", KS[k]);
        v = j_metric(&d, key);
        ok &= v && strtod(v, NULL) == (double)rm.i2t_hits[k] / (double)rm.n_i2t_queries;
    }
    sg_test_true("results: recall keys present, fractions = hits / queries (exact round trip)", ok);
    sg_test_true("results: rank keys present",
                 j_metric(&d, "image_retrieval_mean_rank") &&
                     strtod(j_metric(&d, "image_retrieval_median_rank"), NULL) ==
                         rm.t2i_median_rank &&
                     j_metric(&d, "text_retrieval_mean_rank") && j_metric(&d, "mean_recall"));
    free(text);
    char *buf = NULL;
    size_t blen = 0;
    FILE *mf = open_memstream(&buf, &blen);
    sg_results_print(&r, mf);
    fclose(mf);
    printf("%s", buf);
    char pct[32];
    snprintf(pct, sizeof pct, "%.2f%%", rm.t2i_recall[0]);
    sg_test_true("results: table shows percent and notes",
                 strstr(buf, "image_retrieval_recall@1") && strstr(buf, pct) &&
                     strstr(buf, "distractors only") && strstr(buf, "tied scores"));
    free(buf);
    sg_results_free(&r);

    /* zero-shot with < 5 classes and a class without samples: acc5 null, note */
    float S3[8] = {0.1f, 0.9f, 0.3f, 0.0f, 0.8f, 0.2f, 0.1f, 0.0f};
    int32_t y3[2] = {1, 1}; /* one hit; only class 1 has samples */
    struct sg_cls_metrics cm;
    sg_cls_eval(S3, y3, 2, 4, &cm, NULL);
    sg_results_init(&r, SG_TASK_ZEROSHOT_CLASSIFICATION, "cifar4", "RN50", "x");
    sg_results_set_language(&r, "fr");
    sg_results_add_zeroshot(&r, &cm);
    sg_results_json(&r, &text, &len);
    printf("     %s", text);
    parsed = j_parse_results(text, &d);
    sg_test_true("results: zero-shot JSON parses; acc1/acc5/mean_per_class_recall; acc5 null",
                 parsed && d.nmet == 3 && !strcmp(d.met[0], "acc1") &&
                     strtod(d.metval[0], NULL) == 0.5 && !strcmp(d.met[1], "acc5") &&
                     !strcmp(d.metval[1], "null") && !strcmp(d.met[2], "mean_per_class_recall") &&
                     strtod(d.metval[2], NULL) == 0.5 && !strcmp(j_top(&d, "language"), "fr"));
    sg_test_true("results: note on classes without samples",
                 r.n_notes >= 1 && strstr(r.notes[0], "1 of 4 classes"));
    free(text);
    sg_results_free(&r);

    /* linear probe keys */
    sg_results_init(&r, SG_TASK_LINEAR_PROBE, "cifar10", "RN50", "x");
    cm.n_classes = 10; /* pretend 10 classes: acc5 defined */
    sg_results_add_linear_probe(&r, &cm, 1e-4, 90, 0, -1, 1);
    sg_results_json(&r, &text, &len);
    printf("     %s", text);
    parsed = j_parse_results(text, &d);
    static const char *lpk[] = {"lp_acc1",      "lp_acc5",   "lp_mean_per_class_recall",
                                "weight_decay", "epochs",    "seed",
                                "fewshot_k",    "normalized"};
    ok = parsed && d.nmet == 8;
    for (int i = 0; i < 8 && ok; i++) ok &= !strcmp(d.met[i], lpk[i]);
    ok = ok && !strcmp(j_metric(&d, "epochs"), "90") && !strcmp(j_metric(&d, "fewshot_k"), "-1") &&
         !strcmp(j_metric(&d, "normalized"), "true") &&
         !strcmp(j_metric(&d, "weight_decay"), "0.0001");
    sg_test_true("results: linear-probe JSON keys and values (CLIP_benchmark's)", ok);
    free(text);
    rc = sg_results_write_json(&r, "/nonexistent-dir/x.json");
    sg_test_true("results: unwritable path -> -1 with message",
                 rc == -1 && strstr(sg_last_error(), "writing results"));
    sg_results_free(&r);
    sg_test_true("json checker rejects bad documents",
                 !j_parse_results("{\"a\": NaN}", &d) && !j_parse_results("{\"a\": 1,}", &d) &&
                     !j_parse_results("{\"metrics\": {\"x\": 01}}", &d));
    unlink(path);
    sg_afree(zi);
    sg_afree(zt);
    free(t2i);
}

/* Lines of a shipped zero-shot file (by name) into lines[max]; the count. */
static int read_shipped(const char *name, char lines[][256], int max)
{
    char buf[1024];
    const char *path = sg_zeroshot_file(name, buf, sizeof buf);
    FILE *f = fopen(path, "r");
    int n = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (n < max) snprintf(lines[n], 256, "%s", line);
        n++;
    }
    if (f) fclose(f);
    return f ? n : -1;
}

static int count_unique(char lines[][256], int n)
{
    int u = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = !strcmp(lines[i], lines[j]);
        u += !dup && lines[i][0];
    }
    return u;
}

/* The shipped template sets and ImageNet class names: resolvable by name, complete. */
static void test_shipped_zeroshot_files(void)
{
    static char lines[1100][256];
    char buf[64];
    sg_test_true("a path is kept as given",
                 !strcmp(sg_zeroshot_file("my/names.txt", buf, sizeof buf), "my/names.txt"));
    int n = read_shipped("openai80", lines, 1100);
    int braces = 0;
    for (int i = 0; i < n && i < 1100; i++) {
        const char *p = strstr(lines[i], "{}");
        braces += p && !strstr(p + 2, "{}");
    }
    sg_test_true("openai80: 80 distinct templates, each with one {}",
                 n == 80 && count_unique(lines, n) == 80 && braces == 80);
    n = read_shipped("simple7", lines, 1100);
    sg_test_true("simple7: 7 distinct templates", n == 7 && count_unique(lines, n) == 7);
    n = read_shipped("imagenet1k", lines, 1100);
    /* class index order: 0 tench, 1 goldfish, 217 English springer, 999 toilet paper; CLIP's
     * list names two pairs of classes alike ("missile", "sunglasses"), kept as published */
    sg_test_true("imagenet1k: 1000 class names (998 distinct, as CLIP's) in class-index order",
                 n == 1000 && count_unique(lines, n) == 998 && !strcmp(lines[0], "tench") &&
                     !strcmp(lines[1], "goldfish") &&
                     !strcmp(lines[217], "English Springer Spaniel") &&
                     !strcmp(lines[999], "toilet paper"));
}

int main(void)
{
    struct sg_st_file f;
    sg_test_ref_open(&f, "metrics.safetensors");
    test_retrieval_case(&f, "ties", 0);
    test_retrieval_case(&f, "random", 1);
    test_retrieval_random_sanity();
    test_retrieval_errors();
    test_zeroshot(&f);
    test_linprobe(&f);
    test_results(&f);
    test_shipped_zeroshot_files();
    sg_st_close(&f);
    return sg_test_summary("test_metrics");
}
