/*
 * train/runlog.c — run logging: metrics.jsonl, TensorBoard scalars, report.html (runlog.h).
 * References: open_clip's train/val tag names and results.jsonl habit (FIELD.md 5.2, 5.7);
 * the plots are plain inline SVG (HTML5 needs no xmlns), so report.html has no external links.
 */
#include "train/runlog.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/common.h"
#include "train/tfevents.h"

enum { G_LOSS, G_LR, G_TAU, G_U, G_EVAL, G_OTHER, G_COUNT };
static const char *const group_title[G_COUNT] = {
    "Loss", "Learning rate", "Temperature", "u statistics", "Evaluation metrics", "Other"};

struct sg_runlog_series {
    char *tag;
    int group;
    int64_t count, nonfinite; /* committed values; NaN/Inf among them */
    int64_t last_step;
    double last, min, max; /* last committed (may be NaN); min/max over finite values */
    /* plot points: means of `stride` consecutive finite values; acc_* the open bucket */
    double *x, *y; /* [SG_RUNLOG_MAX_POINTS] */
    int n;
    int64_t stride, acc_k;
    double acc_x, acc_y;
};

struct sg_runlog_pending {
    int series;
    int64_t step;
    double value, wall_time;
};

/* ---- string builder --------------------------------------------------------------------- */

struct sb {
    char *s;
    size_t len, cap;
};

static void sb_reserve(struct sb *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    b->cap = SG_MAX(2 * b->cap, b->len + extra + 256);
    b->s = sg_xrealloc(b->s, b->cap);
}

static void sb_put(struct sb *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < (int)sizeof tmp) {
        sb_put(b, tmp, (size_t)SG_MAX(n, 0));
        return;
    }
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* HTML text and attribute escaping. */
static void sb_html(struct sb *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            sb_puts(b, "&amp;");
            break;
        case '<':
            sb_puts(b, "&lt;");
            break;
        case '>':
            sb_puts(b, "&gt;");
            break;
        case '"':
            sb_puts(b, "&quot;");
            break;
        case '\'':
            sb_puts(b, "&#39;");
            break;
        default:
            sb_put(b, s, 1);
        }
    }
}

/* A JSON string literal (quotes included). */
static void sb_json_str(struct sb *b, const char *s)
{
    sb_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_put(b, s, 1);
    }
    sb_puts(b, "\"");
}

/* ---- series ----------------------------------------------------------------------------- */

static int tag_group(const char *tag)
{
    const char *slash = strrchr(tag, '/');
    const char *name = slash ? slash + 1 : tag;
    int eval = !strncmp(tag, "val/", 4) || !strncmp(tag, "eval/", 5) || !strncmp(tag, "test/", 5);
    if (strstr(name, "loss")) return G_LOSS;
    if (eval) return G_EVAL;
    if (!strcmp(name, "lr") || !strncmp(name, "lr_", 3) || strstr(name, "learning_rate"))
        return G_LR;
    if (strstr(name, "tau") || strstr(name, "temperature") || strstr(name, "logit_scale"))
        return G_TAU;
    if (!strcmp(name, "u") || !strncmp(name, "u_", 2)) return G_U;
    return G_OTHER;
}

static int series_find(struct sg_runlog *l, const char *tag)
{
    for (int i = 0; i < l->nseries; i++)
        if (!strcmp(l->series[i].tag, tag)) return i;
    if (l->nseries == l->cap_series) {
        l->cap_series = SG_MAX(16, 2 * l->cap_series);
        l->series = sg_xrealloc(l->series, sizeof *l->series * (size_t)l->cap_series);
    }
    struct sg_runlog_series *s = &l->series[l->nseries];
    memset(s, 0, sizeof *s);
    s->tag = sg_xstrdup(tag);
    s->group = tag_group(tag);
    s->x = sg_xmalloc(sizeof(double) * SG_RUNLOG_MAX_POINTS);
    s->y = sg_xmalloc(sizeof(double) * SG_RUNLOG_MAX_POINTS);
    s->stride = 1;
    s->min = INFINITY;
    s->max = -INFINITY;
    return l->nseries++;
}

/* Halves the plot points (pairwise means) and doubles the bucket size. */
static void series_halve(struct sg_runlog_series *s)
{
    for (int i = 0; i < s->n / 2; i++) {
        s->x[i] = 0.5 * (s->x[2 * i] + s->x[2 * i + 1]);
        s->y[i] = 0.5 * (s->y[2 * i] + s->y[2 * i + 1]);
    }
    s->n /= 2;
    s->stride *= 2;
}

static void series_add(struct sg_runlog_series *s, int64_t step, double v)
{
    s->count++;
    s->last = v;
    s->last_step = step;
    if (!isfinite(v)) {
        s->nonfinite++;
        return;
    }
    s->min = SG_MIN(s->min, v);
    s->max = SG_MAX(s->max, v);
    s->acc_x += (double)step;
    s->acc_y += v;
    if (++s->acc_k < s->stride) return;
    s->x[s->n] = s->acc_x / (double)s->acc_k;
    s->y[s->n] = s->acc_y / (double)s->acc_k;
    s->n++;
    s->acc_x = s->acc_y = 0;
    s->acc_k = 0;
    if (s->n == SG_RUNLOG_MAX_POINTS) series_halve(s); /* n + open bucket <= MAX */
}

/* The plot points, open bucket included; x, y hold SG_RUNLOG_MAX_POINTS. Returns the count. */
static int series_points(const struct sg_runlog_series *s, double *x, double *y)
{
    memcpy(x, s->x, sizeof(double) * (size_t)s->n);
    memcpy(y, s->y, sizeof(double) * (size_t)s->n);
    if (s->acc_k == 0) return s->n;
    x[s->n] = s->acc_x / (double)s->acc_k;
    y[s->n] = s->acc_y / (double)s->acc_k;
    return s->n + 1;
}

static void series_free(struct sg_runlog_series *s)
{
    free(s->tag);
    free(s->x);
    free(s->y);
}

/* ---- pending scalars and commit ---------------------------------------------------------- */

static void pending_set(struct sg_runlog *l, const char *tag, int64_t step, double v)
{
    int si = series_find(l, tag);
    struct sg_runlog_pending *p = NULL;
    for (int i = 0; i < l->npending && !p; i++)
        if (l->pending[i].series == si) p = &l->pending[i];
    if (!p) {
        if (l->npending == l->cap_pending) {
            l->cap_pending = SG_MAX(16, 2 * l->cap_pending);
            l->pending = sg_xrealloc(l->pending, sizeof *l->pending * (size_t)l->cap_pending);
        }
        p = &l->pending[l->npending++];
        p->series = si;
    }
    p->step = step;
    p->value = v;
    p->wall_time = sg_tfevents_now();
}

void sg_runlog_scalar(struct sg_runlog *l, const char *tag, int64_t step, double value)
{
    SG_CHECK(tag && tag[0] && strlen(tag) <= 4096, "a scalar tag must have 1..4096 characters");
    pending_set(l, tag, step, value);
}

/* Adds the pending scalars to the series at `step` and clears them. */
static void apply_pending(struct sg_runlog *l, int64_t step, int epoch)
{
    for (int i = 0; i < l->npending; i++) {
        const struct sg_runlog_pending *p = &l->pending[i];
        series_add(&l->series[p->series], step, p->value);
        if (!isfinite(p->value)) l->nonfinite++;
    }
    if (l->lines == 0) l->first_step = step;
    l->lines++;
    l->last_step = step;
    l->last_epoch = epoch;
    l->npending = 0;
}

static void json_line(const struct sg_runlog *l, int64_t step, int epoch, struct sb *b)
{
    int nonfinite = 0;
    sb_printf(b, "{\"step\": %lld, \"epoch\": %d", (long long)step, epoch);
    for (int i = 0; i < l->npending; i++) {
        const struct sg_runlog_pending *p = &l->pending[i];
        sb_puts(b, ", ");
        sb_json_str(b, l->series[p->series].tag);
        if (isfinite(p->value)) {
            sb_printf(b, ": %.9g", p->value);
        } else {
            sb_puts(b, ": null");
            nonfinite++;
        }
    }
    if (nonfinite) {
        sb_puts(b, ", \"nonfinite\": [");
        for (int i = 0, k = 0; i < l->npending; i++) {
            if (isfinite(l->pending[i].value)) continue;
            sb_puts(b, k++ ? ", " : "");
            sb_json_str(b, l->series[l->pending[i].series].tag);
        }
        sb_puts(b, "]");
    }
    sb_puts(b, "}\n");
}

/* TensorBoard's simple_value is a float; an out-of-range double -> float conversion is
 * undefined behaviour in C, so those become +-inf explicitly. */
static float to_float(double v)
{
    if (isfinite(v) && fabs(v) > FLT_MAX) return v > 0 ? INFINITY : -INFINITY;
    return (float)v;
}

/* TensorBoard events for the pending scalars; a failure closes the writer (reported once). */
static int tb_commit(struct sg_runlog *l)
{
    if (!l->tb) return 0;
    int rc = 0;
    for (int i = 0; i < l->npending && rc == 0; i++) {
        const struct sg_runlog_pending *p = &l->pending[i];
        rc = sg_tfevents_scalar(l->tb, l->series[p->series].tag, p->step, to_float(p->value),
                                p->wall_time);
    }
    if (rc == 0) rc = sg_tfevents_flush(l->tb);
    if (rc == 0) return 0;
    sg_err_prefix("TensorBoard logging switched off: ");
    sg_tfevents_close(l->tb);
    l->tb = NULL;
    l->tb_failed = 1;
    return -1;
}

static int jsonl_write(struct sg_runlog *l, const struct sb *b)
{
    if (!l->jsonl) return sg_err("metrics log '%s' is not open", l->jsonl_path);
    if (fwrite(b->s, 1, b->len, l->jsonl) != b->len || fflush(l->jsonl) != 0)
        return sg_err("writing '%s' failed: %s\n---> HINT: is the disk full?", l->jsonl_path,
                      strerror(errno));
    return 0;
}

int sg_runlog_commit(struct sg_runlog *l, int64_t step, int epoch)
{
    if (l->npending == 0) return 0;
    struct sb b = {0};
    json_line(l, step, epoch, &b);
    int rc_tb = tb_commit(l);
    int rc = jsonl_write(l, &b);
    apply_pending(l, step, epoch);
    free(b.s);
    return rc != 0 || rc_tb != 0 ? -1 : 0;
}

/* ---- metrics.jsonl reader (resume) ------------------------------------------------------ */

struct jp {
    const char *p, *e;
};

static int jp_peek(struct jp *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r')) j->p++;
    return j->p < j->e ? (unsigned char)*j->p : -1;
}

static int jp_char(struct jp *j, char c)
{
    if (jp_peek(j) != (unsigned char)c) return -1;
    j->p++;
    return 0;
}

/* \uXXXX as UTF-8 (surrogate pairs are not joined: they become '?'). */
static int jp_unicode(struct jp *j, struct sb *out)
{
    if (j->e - j->p < 4) return -1;
    char hex[5] = {j->p[0], j->p[1], j->p[2], j->p[3], 0};
    char *end;
    unsigned long u = strtoul(hex, &end, 16);
    if (end != hex + 4) return -1;
    j->p += 4;
    char buf[4];
    if (u < 0x80) {
        buf[0] = (char)u;
        sb_put(out, buf, 1);
    } else if (u < 0x800) {
        buf[0] = (char)(0xC0 | (u >> 6));
        buf[1] = (char)(0x80 | (u & 0x3F));
        sb_put(out, buf, 2);
    } else if (u >= 0xD800 && u < 0xE000) {
        sb_puts(out, "?");
    } else {
        buf[0] = (char)(0xE0 | (u >> 12));
        buf[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (u & 0x3F));
        sb_put(out, buf, 3);
    }
    return 0;
}

static int jp_escape(struct jp *j, struct sb *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (j->p >= j->e) return -1;
    char c = *j->p++;
    if (c == 'u') return jp_unicode(j, out);
    const char *k = strchr(from, c);
    if (!k || !c) return -1;
    sb_put(out, &to[k - from], 1);
    return 0;
}

static int jp_string(struct jp *j, struct sb *out)
{
    if (jp_char(j, '"') != 0) return -1;
    out->len = 0;
    sb_reserve(out, 0);
    out->s[0] = 0;
    while (j->p < j->e) {
        char c = *j->p++;
        if (c == '"') return 0;
        if ((unsigned char)c < 0x20) return -1;
        if (c != '\\')
            sb_put(out, &c, 1);
        else if (jp_escape(j, out) != 0)
            return -1;
    }
    return -1;
}

static int jp_number(struct jp *j, double *v)
{
    int c = jp_peek(j);
    if (c != '-' && !(c >= '0' && c <= '9')) return -1;
    const char *q = j->p;
    while (q < j->e && *q && strchr("0123456789+-.eE", *q)) q++;
    char buf[64];
    size_t n = (size_t)(q - j->p);
    if (n >= sizeof buf) return -1;
    memcpy(buf, j->p, n);
    buf[n] = 0;
    char *end;
    *v = strtod(buf, &end);
    if (end != buf + n) return -1;
    j->p = q;
    return 0;
}

static int jp_literal(struct jp *j, const char *word)
{
    size_t n = strlen(word);
    jp_peek(j);
    if ((size_t)(j->e - j->p) < n || strncmp(j->p, word, n) != 0) return -1;
    j->p += n;
    return 0;
}

/* Skips any JSON value (depth-limited). */
static int jp_skip(struct jp *j, int depth)
{
    struct sb tmp = {0};
    double v;
    int c = jp_peek(j), rc = -1;
    if (c == '"') {
        rc = jp_string(j, &tmp);
    } else if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        j->p++;
        rc = depth > 16 ? -1 : 0;
        if (rc == 0 && jp_char(j, close) == 0) goto done;
        while (rc == 0) {
            if (close == '}' && (jp_string(j, &tmp) != 0 || jp_char(j, ':') != 0)) rc = -1;
            if (rc == 0) rc = jp_skip(j, depth + 1);
            if (rc == 0 && jp_char(j, close) == 0) break;
            if (rc == 0) rc = jp_char(j, ',');
        }
    } else if (c == 't' || c == 'f' || c == 'n') {
        rc = jp_literal(j, c == 't' ? "true" : c == 'f' ? "false" : "null");
    } else {
        rc = jp_number(j, &v);
    }
done:
    free(tmp.s);
    return rc;
}

struct line_info {
    int64_t step;
    int epoch, has_step;
};

/* One "key": value member of a metrics line: step, epoch, a metric, or ignored. */
static int parse_member(struct sg_runlog *l, struct jp *j, struct sb *key, struct line_info *li)
{
    double v;
    if (jp_string(j, key) != 0 || jp_char(j, ':') != 0) return -1;
    int c = jp_peek(j);
    int is_step = !strcmp(key->s, "step"), is_epoch = !strcmp(key->s, "epoch");
    if (is_step || is_epoch) {
        if (jp_number(j, &v) != 0 || v != floor(v) || fabs(v) > 9e15) return -1;
        if (is_step) li->step = (int64_t)v, li->has_step = 1;
        if (is_epoch) li->epoch = (int)v;
        return 0;
    }
    if (c == 'n' && jp_literal(j, "null") == 0) {
        if (key->len > 0) pending_set(l, key->s, 0, NAN);
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if (jp_number(j, &v) != 0) return -1;
        if (key->len > 0) pending_set(l, key->s, 0, v);
        return 0;
    }
    return jp_skip(j, 0); /* "nonfinite" and anything else that is not a number */
}

/* Parses one line into l->pending; 0 with li filled, or -1 (pending cleared). */
static int parse_line(struct sg_runlog *l, const char *p, const char *e, struct line_info *li)
{
    struct jp j = {p, e};
    struct sb key = {0};
    int rc = jp_char(&j, '{');
    memset(li, 0, sizeof *li);
    if (rc == 0 && jp_char(&j, '}') != 0) {
        for (;;) {
            rc = parse_member(l, &j, &key, li);
            if (rc != 0 || jp_char(&j, '}') == 0) break;
            if ((rc = jp_char(&j, ',')) != 0) break;
        }
    }
    if (rc == 0 && (jp_peek(&j) != -1 || !li->has_step)) rc = -1;
    if (rc != 0) l->npending = 0;
    free(key.s);
    return rc;
}

/* Reads `text` line by line into the series; `kept` gets the lines to keep. */
static void resume_lines(struct sg_runlog *l, const char *text, size_t len, int64_t resume_step,
                         struct sb *kept)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) { /* a crash mid-write left a partial last line */
            l->dropped_lines++;
            break;
        }
        struct line_info li;
        if (nl == p) {
            p = nl + 1;
            continue;
        }
        if (parse_line(l, p, nl, &li) != 0) {
            l->bad_lines++;
            sb_put(kept, p, (size_t)(nl + 1 - p));
        } else if (resume_step >= 0 && li.step > resume_step) {
            l->npending = 0;
            l->dropped_lines++;
        } else {
            apply_pending(l, li.step, li.epoch);
            l->resumed_lines++;
            sb_put(kept, p, (size_t)(nl + 1 - p));
        }
        p = nl + 1;
    }
}

static int resume_read(struct sg_runlog *l, int64_t resume_step)
{
    struct stat st;
    if (stat(l->jsonl_path, &st) != 0) return 0; /* nothing logged yet */
    char *text = NULL;
    size_t len = 0;
    if (sg_read_file(l->jsonl_path, &text, &len) != 0) return -1;
    struct sb kept = {0};
    sb_reserve(&kept, len);
    resume_lines(l, text, len, resume_step, &kept);
    int rc = 0;
    if (kept.len != len) rc = sg_write_file_atomic(l->jsonl_path, kept.s, kept.len);
    free(kept.s);
    free(text);
    return rc;
}

/* ---- open / close ----------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sg_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int runlog_init(struct sg_runlog *l, const char *dir)
{
    memset(l, 0, sizeof *l);
    if (!dir || !dir[0]) return sg_err("empty run folder name");
    if (sg_mkdir_p(dir) != 0) return -1;
    l->dir = sg_xstrdup(dir);
    l->jsonl_path = path_join(dir, "metrics.jsonl");
    l->report_path = path_join(dir, "report.html");
    return 0;
}

/* Opens metrics.jsonl and, if asked, a new event file starting with SessionLog START at
 * start_step (< 0: none). A fresh run writes START at step 0: TensorBoard's plugin accumulator
 * takes the first START it sees as the session setup and purges only at later ones, so the
 * START of a resumed run (resume_step + 1) then purges in both of TensorBoard's accumulators. */
static int open_files(struct sg_runlog *l, int flags, const char *mode, int64_t start_step)
{
    l->jsonl = sg_fopen(l->jsonl_path, mode);
    if (!l->jsonl) return -1;
    if (!(flags & SG_RUNLOG_TENSORBOARD)) return 0;
    l->tb = sg_tfevents_open(l->dir);
    if (!l->tb) return -1;
    if (start_step < 0) return 0;
    if (sg_tfevents_session_start(l->tb, start_step, 0) != 0 || sg_tfevents_flush(l->tb) != 0)
        return -1;
    return 0;
}

int sg_runlog_open(struct sg_runlog *l, const char *dir, int flags)
{
    if (runlog_init(l, dir) != 0) return -1;
    struct stat st;
    if (!(flags & SG_RUNLOG_OVERWRITE) && stat(l->jsonl_path, &st) == 0 && st.st_size > 0) {
        sg_err("'%s' already holds a run's metrics\n---> HINT: resume that run, choose a new "
               "run folder, or ask for overwriting",
               l->jsonl_path);
        sg_runlog_close(l);
        return -1;
    }
    if (open_files(l, flags, "w", 0) != 0) {
        sg_runlog_close(l);
        return -1;
    }
    return 0;
}

int sg_runlog_resume(struct sg_runlog *l, const char *dir, int flags, int64_t resume_step)
{
    if (runlog_init(l, dir) != 0) return -1;
    if (resume_read(l, resume_step) != 0 ||
        open_files(l, flags, "a", resume_step >= 0 ? resume_step + 1 : -1) != 0) {
        sg_err_prefix("resuming the run log in '%s': ", dir);
        sg_runlog_close(l);
        return -1;
    }
    return 0;
}

const char *sg_runlog_report_path(const struct sg_runlog *l)
{
    return l->report_path;
}
const char *sg_runlog_jsonl_path(const struct sg_runlog *l)
{
    return l->jsonl_path;
}
const char *sg_runlog_tfevents_path(const struct sg_runlog *l)
{
    return l->tb ? sg_tfevents_path(l->tb) : NULL;
}

int sg_runlog_close(struct sg_runlog *l)
{
    int rc = 0;
    if (l->jsonl && fclose(l->jsonl) != 0)
        rc = sg_err("closing '%s' failed: %s", l->jsonl_path, strerror(errno));
    if (l->tb && sg_tfevents_close(l->tb) != 0) rc = -1;
    for (int i = 0; i < l->nseries; i++) series_free(&l->series[i]);
    free(l->series);
    free(l->pending);
    free(l->dir);
    free(l->jsonl_path);
    free(l->report_path);
    memset(l, 0, sizeof *l);
    return rc;
}

/* ---- report.html ------------------------------------------------------------------------ */

#define PLOT_W  720
#define PLOT_H  300
#define PLOT_ML 78
#define PLOT_MR 16
#define PLOT_MT 30
#define PLOT_MB 40

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct axis {
    double lo, hi, step;
};

/* Heckbert's "nice numbers" for axis ticks. */
static double nice_num(double range, int round)
{
    double e = floor(log10(range)), f = range / pow(10, e), nf;
    if (round)
        nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10, e);
}

static struct axis nice_axis(double lo, double hi)
{
    if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? 0.1 * fabs(lo) : 1;
        lo -= d, hi += d;
    }
    double step = nice_num(nice_num(hi - lo, 0) / 4, 1);
    return (struct axis){floor(lo / step) * step, ceil(hi / step) * step, step};
}

struct plot {
    struct axis ax, ay;
    double *x, *y; /* [SG_RUNLOG_MAX_POINTS] scratch */
};

static double px(const struct plot *p, double x)
{
    return PLOT_ML + (x - p->ax.lo) / (p->ax.hi - p->ax.lo) * (PLOT_W - PLOT_ML - PLOT_MR);
}

static double py(const struct plot *p, double y)
{
    return PLOT_MT + (1 - (y - p->ay.lo) / (p->ay.hi - p->ay.lo)) * (PLOT_H - PLOT_MT - PLOT_MB);
}

/* Axis ranges over the plot points of the given series. */
static void plot_ranges(struct plot *p, struct sg_runlog_series *const *ss, int ns)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < ns; i++) {
        int n = series_points(ss[i], p->x, p->y);
        for (int k = 0; k < n; k++) {
            x0 = SG_MIN(x0, p->x[k]), x1 = SG_MAX(x1, p->x[k]);
            y0 = SG_MIN(y0, p->y[k]), y1 = SG_MAX(y1, p->y[k]);
        }
    }
    if (x0 > x1) x0 = x1 = 0, y0 = y1 = 0;
    p->ax = nice_axis(x0, x1);
    p->ay = nice_axis(y0, y1);
}

/* A tick value with the rounding noise around zero removed (no "1e-17" labels). */
static double snap0(double v, double step)
{
    return fabs(v) < 1e-9 * step ? 0.0 : v;
}

static void plot_axes(struct sb *b, const struct plot *p)
{
    sb_printf(b,
              "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
              "stroke=\"#888\"/>\n",
              PLOT_ML, PLOT_MT, PLOT_W - PLOT_ML - PLOT_MR, PLOT_H - PLOT_MT - PLOT_MB);
    int ny = (int)lround((p->ay.hi - p->ay.lo) / p->ay.step);
    int nx = (int)lround((p->ax.hi - p->ax.lo) / p->ax.step);
    for (int i = 0; i <= ny; i++) {
        double v = p->ay.lo + i * p->ay.step, y = py(p, v);
        sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>",
                  PLOT_ML, PLOT_W - PLOT_MR, y, y);
        sb_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.6g</text>\n", PLOT_ML - 6,
                  y + 4, snap0(v, p->ay.step));
    }
    for (int i = 0; i <= nx; i++) {
        double v = p->ax.lo + i * p->ax.step, x = px(p, v);
        sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#e4e4e4\"/>", x, x,
                  PLOT_MT, PLOT_H - PLOT_MB);
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.6g</text>\n", x,
                  PLOT_H - PLOT_MB + 16, snap0(v, p->ax.step));
    }
    sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n",
              (PLOT_ML + PLOT_W - PLOT_MR) / 2, PLOT_H - 6);
}

static void plot_line(struct sb *b, struct plot *p, const struct sg_runlog_series *s,
                      const char *color)
{
    int n = series_points(s, p->x, p->y);
    if (n == 0) return;
    sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (int k = 0; k < n; k++)
        sb_printf(b, "%s%.1f,%.1f", k ? " " : "", px(p, p->x[k]), py(p, p->y[k]));
    sb_puts(b, "\"/>\n");
    if (n > 100) return; /* few points (eval metrics): mark them */
    for (int k = 0; k < n; k++)
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px(p, p->x[k]),
                  py(p, p->y[k]), color);
    sb_puts(b, "\n");
}

static void plot_legend(struct sb *b, struct sg_runlog_series *const *ss, int ns)
{
    sb_puts(b, "<div class=\"legend\">");
    for (int i = 0; i < ns; i++) {
        sb_printf(b, "<span><b style=\"color:%s\">&#9632;</b> ", palette[i % 10]);
        sb_html(b, ss[i]->tag);
        if (ss[i]->nonfinite)
            sb_printf(b, " <em>(%lld non-finite)</em>", (long long)ss[i]->nonfinite);
        if (ss[i]->stride > 1) sb_printf(b, " <em>(means of %lld)</em>", (long long)ss[i]->stride);
        sb_puts(b, "</span> ");
    }
    sb_puts(b, "</div>\n");
}

/* One <svg> line plot of the given series. */
static void plot_svg(struct sb *b, const char *title, struct sg_runlog_series *const *ss, int ns)
{
    struct plot p;
    p.x = sg_xmalloc(sizeof(double) * SG_RUNLOG_MAX_POINTS);
    p.y = sg_xmalloc(sizeof(double) * SG_RUNLOG_MAX_POINTS);
    plot_ranges(&p, ss, ns);
    sb_puts(b, "<div class=\"plot\">\n");
    sb_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", PLOT_W,
              PLOT_H, PLOT_W, PLOT_H);
    sb_printf(b, "<text x=\"%d\" y=\"18\" class=\"title\">", PLOT_ML);
    sb_html(b, title);
    sb_puts(b, "</text>\n");
    plot_axes(b, &p);
    for (int i = 0; i < ns; i++) plot_line(b, &p, ss[i], palette[i % 10]);
    sb_puts(b, "</svg>\n");
    plot_legend(b, ss, ns);
    sb_puts(b, "</div>\n");
    free(p.x);
    free(p.y);
}

static void report_plots(struct sb *b, struct sg_runlog *l)
{
    struct sg_runlog_series **ss = sg_xmalloc(sizeof *ss * (size_t)(l->nseries + 1));
    for (int g = 0; g < G_OTHER; g++) {
        int ns = 0;
        for (int i = 0; i < l->nseries; i++)
            if (l->series[i].group == g && l->series[i].count > 0) ss[ns++] = &l->series[i];
        if (ns) plot_svg(b, group_title[g], ss, ns);
    }
    for (int i = 0; i < l->nseries; i++) { /* other tags: one plot each (unrelated scales) */
        if (l->series[i].group != G_OTHER || l->series[i].count == 0) continue;
        ss[0] = &l->series[i];
        plot_svg(b, l->series[i].tag, ss, 1);
    }
    free(ss);
}

static void table_number(struct sb *b, double v)
{
    if (isfinite(v))
        sb_printf(b, "<td>%.6g</td>", v);
    else
        sb_puts(b, "<td class=\"bad\">non-finite</td>");
}

static void report_table(struct sb *b, const struct sg_runlog *l)
{
    sb_puts(b, "<h2>Final values</h2>\n<table>\n<tr><th>tag</th><th>group</th><th>last "
               "step</th><th>last</th><th>min</th><th>max</th><th>values</th>"
               "<th>non-finite</th></tr>\n");
    for (int g = 0; g < G_COUNT; g++) {
        for (int i = 0; i < l->nseries; i++) {
            const struct sg_runlog_series *s = &l->series[i];
            if (s->group != g || s->count == 0) continue;
            sb_puts(b, "<tr><td>");
            sb_html(b, s->tag);
            sb_printf(b, "</td><td>%s</td><td>%lld</td>", group_title[g], (long long)s->last_step);
            table_number(b, s->last);
            table_number(b, s->min);
            table_number(b, s->max);
            sb_printf(b, "<td>%lld</td><td%s>%lld</td></tr>\n", (long long)s->count,
                      s->nonfinite ? " class=\"bad\"" : "", (long long)s->nonfinite);
        }
    }
    sb_puts(b, "</table>\n");
}

static void report_head(struct sb *b, const struct sg_runlog *l, const char *title)
{
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    sb_html(b, title);
    sb_puts(b, "</title>\n<style>\nbody{font-family:sans-serif;margin:24px;color:#222}"
               "svg text{font-size:11px;font-family:sans-serif;fill:#333}"
               "svg text.title{font-size:14px;font-weight:bold}"
               ".plot{margin:12px 0 20px}.legend span{margin-right:14px;font-size:13px}"
               "table{border-collapse:collapse;font-size:13px}"
               "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
               "td:first-child,th:first-child{text-align:left}.bad{color:#c00}"
               "pre{background:#f6f6f6;padding:10px;border:1px solid #ddd;overflow-x:auto}\n"
               "</style>\n</head>\n<body>\n<h1>");
    sb_html(b, title);
    sb_puts(b, "</h1>\n<p>Run folder <code>");
    sb_html(b, l->dir);
    sb_printf(b, "</code>: %lld logged lines", (long long)l->lines);
    if (l->lines)
        sb_printf(b, ", steps %lld&ndash;%lld, last epoch %d", (long long)l->first_step,
                  (long long)l->last_step, l->last_epoch);
    if (l->resumed_lines) sb_printf(b, "; resumed with %lld lines", (long long)l->resumed_lines);
    if (l->nonfinite)
        sb_printf(b,
                  "; <span class=\"bad\">%lld non-finite values</span> (null in "
                  "metrics.jsonl)",
                  (long long)l->nonfinite);
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
    sb_printf(b, ". Written %s.</p>\n", when);
}

static void report_config(struct sb *b, const char *yaml)
{
    sb_puts(b, "<h2>Config</h2>\n<pre>");
    sb_html(b, yaml && yaml[0] ? yaml : "(not given)");
    sb_puts(b, "</pre>\n");
}

int sg_runlog_report(struct sg_runlog *l, const char *config_yaml, const char *title)
{
    struct sb b = {0}, t = {0};
    if (!title) sb_printf(&t, "sogclip run %s", l->dir);
    report_head(&b, l, title ? title : t.s);
    report_plots(&b, l);
    report_table(&b, l);
    report_config(&b, config_yaml);
    sb_puts(&b, "</body>\n</html>\n");
    int rc = sg_write_file_atomic(l->report_path, b.s, b.len);
    free(b.s);
    free(t.s);
    return rc;
}
