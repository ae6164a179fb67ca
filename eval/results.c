/*
 * eval/results.c — results table and CLIP_benchmark-schema JSON writer (eval/results.h).
 * The JSON is built in a growable buffer (strings escaped per RFC 8259) and written with
 * sg_write_file_atomic.
 */
#include "eval/results.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

void sg_results_init(struct sg_results *r, const char *task, const char *dataset, const char *model,
                     const char *pretrained)
{
    SG_CHECK(r && task && dataset && model && pretrained, "NULL argument");
    memset(r, 0, sizeof *r);
    r->task = sg_xstrdup(task);
    r->dataset = sg_xstrdup(dataset);
    r->model = sg_xstrdup(model);
    r->pretrained = sg_xstrdup(pretrained);
    r->language = sg_xstrdup("en");
}

void sg_results_set_language(struct sg_results *r, const char *language)
{
    SG_CHECK(language, "NULL language");
    free(r->language);
    r->language = sg_xstrdup(language);
}

void sg_results_free(struct sg_results *r)
{
    free(r->dataset);
    free(r->model);
    free(r->pretrained);
    free(r->task);
    free(r->language);
    memset(r, 0, sizeof *r);
}

void sg_results_add(struct sg_results *r, const char *key, enum sg_result_kind kind, double value)
{
    SG_CHECK(r->n < SG_RESULTS_MAX_METRICS, "more than %d metrics", SG_RESULTS_MAX_METRICS);
    SG_CHECK(strlen(key) < SG_RESULTS_KEY_LEN, "metric key '%s' too long", key);
    for (int i = 0; i < r->n; i++)
        SG_CHECK(strcmp(r->metrics[i].key, key) != 0, "duplicate metric key '%s'", key);
    struct sg_result_metric *m = &r->metrics[r->n++];
    snprintf(m->key, sizeof m->key, "%s", key);
    m->kind = kind;
    m->value = value;
}

void sg_results_note(struct sg_results *r, const char *fmt, ...)
{
    SG_CHECK(r->n_notes < SG_RESULTS_MAX_NOTES, "more than %d notes", SG_RESULTS_MAX_NOTES);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->n_notes++], SG_RESULTS_NOTE_LEN, fmt, ap);
    va_end(ap);
}

static double frac(int64_t hits, int64_t n)
{
    return n > 0 ? (double)hits / (double)n : NAN;
}

void sg_results_add_retrieval(struct sg_results *r, const struct sg_retrieval_metrics *m)
{
    static const int ks[SG_RECALL_NK] = SG_RECALL_KS;
    char key[SG_RESULTS_KEY_LEN];
    double sum = 0.0;
    for (int k = 0; k < SG_RECALL_NK; k++) {
        const double ir = frac(m->t2i_hits[k], m->n_texts);
        const double tr = frac(m->i2t_hits[k], m->n_i2t_queries);
        snprintf(key, sizeof key, "image_retrieval_recall@%d", ks[k]);
        sg_results_add(r, key, SG_RES_FRACTION, ir);
        snprintf(key, sizeof key, "text_retrieval_recall@%d", ks[k]);
        sg_results_add(r, key, SG_RES_FRACTION, tr);
        sum += ir + tr;
    }
    sg_results_add(r, "image_retrieval_mean_rank", SG_RES_NUMBER, m->t2i_mean_rank);
    sg_results_add(r, "image_retrieval_median_rank", SG_RES_NUMBER, m->t2i_median_rank);
    sg_results_add(r, "text_retrieval_mean_rank", SG_RES_NUMBER, m->i2t_mean_rank);
    sg_results_add(r, "text_retrieval_median_rank", SG_RES_NUMBER, m->i2t_median_rank);
    sg_results_add(r, "mean_recall", SG_RES_FRACTION, sum / (2 * SG_RECALL_NK));
    sg_results_note(r,
                    "%lld images, %lld captions; image_retrieval = text->image, "
                    "text_retrieval = image->text",
                    (long long)m->n_images, (long long)m->n_texts);
    if (m->n_i2t_queries < m->n_images)
        sg_results_note(r, "%lld images without captions are distractors only (not queries)",
                        (long long)(m->n_images - m->n_i2t_queries));
    if (m->t2i_ties || m->i2t_ties)
        sg_results_note(r,
                        "tied scores: %lld text and %lld image queries ranked by the "
                        "lower-index-first rule",
                        (long long)m->t2i_ties, (long long)m->i2t_ties);
}

static void note_classes(struct sg_results *r, const struct sg_cls_metrics *m, const char *key)
{
    if (m->n_classes_present < m->n_classes)
        sg_results_note(r, "%s: mean over the %d of %d classes with samples (%d excluded)", key,
                        m->n_classes_present, m->n_classes, m->n_classes - m->n_classes_present);
    if (m->n_classes < 5) sg_results_note(r, "acc5 undefined with %d < 5 classes", m->n_classes);
}

void sg_results_add_zeroshot(struct sg_results *r, const struct sg_cls_metrics *m)
{
    sg_results_add(r, "acc1", SG_RES_FRACTION, frac(m->correct1, m->n));
    sg_results_add(r, "acc5", SG_RES_FRACTION, m->n_classes >= 5 ? frac(m->correct5, m->n) : NAN);
    sg_results_add(r, "mean_per_class_recall", SG_RES_FRACTION, m->balanced_accuracy);
    note_classes(r, m, "mean_per_class_recall");
}

void sg_results_add_linear_probe(struct sg_results *r, const struct sg_cls_metrics *m,
                                 double weight_decay, int epochs, int64_t seed, int fewshot_k,
                                 int normalized)
{
    sg_results_add(r, "lp_acc1", SG_RES_FRACTION, frac(m->correct1, m->n));
    sg_results_add(r, "lp_acc5", SG_RES_FRACTION,
                   m->n_classes >= 5 ? frac(m->correct5, m->n) : NAN);
    sg_results_add(r, "lp_mean_per_class_recall", SG_RES_FRACTION, m->balanced_accuracy);
    sg_results_add(r, "weight_decay", SG_RES_NUMBER, weight_decay);
    sg_results_add(r, "epochs", SG_RES_INT, epochs);
    sg_results_add(r, "seed", SG_RES_INT, (double)seed);
    sg_results_add(r, "fewshot_k", SG_RES_INT, fewshot_k);
    sg_results_add(r, "normalized", SG_RES_BOOL, normalized ? 1.0 : 0.0);
    note_classes(r, m, "lp_mean_per_class_recall");
}

/* ---- JSON --------------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = SG_MAX(2 * b->cap, b->len + n + 256);
        b->p = sg_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_string(struct buf *b, const char *s)
{
    puts_(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"':
            puts_(b, "\\\"");
            break;
        case '\\':
            puts_(b, "\\\\");
            break;
        case '\n':
            puts_(b, "\\n");
            break;
        case '\r':
            puts_(b, "\\r");
            break;
        case '\t':
            puts_(b, "\\t");
            break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                puts_(b, esc);
            } else {
                put(b, (const char *)c, 1); /* UTF-8 bytes pass through */
            }
        }
    }
    puts_(b, "\"");
}

/* Shortest %.Ng (N = 15..17) that reads back as the same double. */
static void put_number(struct buf *b, double v)
{
    char s[40];
    if (!isfinite(v)) {
        puts_(b, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    puts_(b, s);
}

static void put_metric(struct buf *b, const struct sg_result_metric *m)
{
    char s[40];
    switch (m->kind) {
    case SG_RES_BOOL:
        puts_(b, m->value != 0.0 ? "true" : "false");
        break;
    case SG_RES_INT:
        if (isfinite(m->value)) {
            snprintf(s, sizeof s, "%lld", (long long)m->value);
            puts_(b, s);
        } else {
            puts_(b, "null");
        }
        break;
    default:
        put_number(b, m->value);
    }
}

int sg_results_json(const struct sg_results *r, char **out, size_t *len)
{
    struct buf b = {0};
    const char *keys[4] = {"dataset", "model", "pretrained", "task"};
    const char *vals[4] = {r->dataset, r->model, r->pretrained, r->task};
    puts_(&b, "{");
    for (int i = 0; i < 4; i++) {
        put_string(&b, keys[i]);
        puts_(&b, ": ");
        put_string(&b, vals[i]);
        puts_(&b, ", ");
    }
    puts_(&b, "\"metrics\": {");
    for (int i = 0; i < r->n; i++) {
        if (i) puts_(&b, ", ");
        put_string(&b, r->metrics[i].key);
        puts_(&b, ": ");
        put_metric(&b, &r->metrics[i]);
    }
    puts_(&b, "}, \"language\": ");
    put_string(&b, r->language);
    puts_(&b, "}\n");
    *out = b.p;
    if (len) *len = b.len;
    return 0;
}

int sg_results_write_json(const struct sg_results *r, const char *path)
{
    char *s;
    size_t n;
    sg_results_json(r, &s, &n);
    int rc = sg_write_file_atomic(path, s, n);
    free(s);
    if (rc < 0) return sg_err_prefix("writing results: ");
    return 0;
}

/* ---- table -------------------------------------------------------------------------------- */

void sg_results_print(const struct sg_results *r, FILE *f)
{
    int w = (int)strlen("pretrained");
    for (int i = 0; i < r->n; i++) w = SG_MAX(w, (int)strlen(r->metrics[i].key));
    fprintf(f, "%-*s  %s\n", w, "task", r->task);
    fprintf(f, "%-*s  %s\n", w, "dataset", r->dataset);
    fprintf(f, "%-*s  %s\n", w, "model", r->model);
    fprintf(f, "%-*s  %s\n", w, "pretrained", r->pretrained);
    fprintf(f, "%-*s  %12s\n", w, "metric", "value");
    for (int i = 0; i < r->n; i++) {
        const struct sg_result_metric *m = &r->metrics[i];
        char v[48];
        if (m->kind != SG_RES_BOOL && !isfinite(m->value))
            snprintf(v, sizeof v, "n/a");
        else if (m->kind == SG_RES_FRACTION)
            snprintf(v, sizeof v, "%.2f%%", 100.0 * m->value);
        else if (m->kind == SG_RES_INT)
            snprintf(v, sizeof v, "%lld", (long long)m->value);
        else if (m->kind == SG_RES_BOOL)
            snprintf(v, sizeof v, "%s", m->value != 0.0 ? "true" : "false");
        else
            snprintf(v, sizeof v, "%.6g", m->value);
        fprintf(f, "%-*s  %12s\n", w, m->key, v);
    }
    for (int i = 0; i < r->n_notes; i++) fprintf(f, "note: %s\n", r->notes[i]);
}
