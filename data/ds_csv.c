/*
 * data/ds_csv.c — CSV/TSV image–caption datasets (open_clip's CsvDataset conventions, FIELD.md
 * 5.4): a header row naming the columns, one (image, caption) pair per row, rows of the same
 * image grouped into one sample (first-appearance order). Quoting follows RFC 4180 for ','
 * (and any separator but tab): a field starting with '"' runs to the next lone '"', '""' is a
 * quote, separators and newlines inside are data. TSV fields are literal (IANA text/tab-
 * separated-values has no quoting), so a caption starting with a quote stays as written.
 * Contract: data/dataset.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/dataset.h"

struct buf {
    char *p;
    size_t n, cap;
};

static size_t buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = SG_MAX(b->cap * 2, b->n + n + 1);
        b->p = sg_xrealloc(b->p, b->cap);
    }
    size_t off = b->n;
    memcpy(b->p + off, s, n);
    b->p[off + n] = 0;
    b->n += n + 1;
    return off;
}

/* Append without a terminator (building one field). */
static void buf_put(struct buf *b, const char *s, size_t n)
{
    buf_add(b, s, n);
    b->n--;
}

/* ---- record parsing --------------------------------------------------------------------- */

struct field {
    size_t off, len; /* into the record scratch buffer */
};

struct rec {
    struct buf text; /* unescaped fields, NUL-separated */
    struct field *f;
    int n, cap;
};

static void rec_push(struct rec *r, const char *s, size_t n)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->f = sg_xrealloc(r->f, sizeof(*r->f) * (size_t)r->cap);
    }
    r->f[r->n].off = buf_add(&r->text, s, n);
    r->f[r->n].len = n;
    r->n++;
}

/* Parse one record starting at *pp; advances *pp past its line end and *line by the newlines
 * consumed. Returns 0, or -1 for an unterminated quoted field. */
static int parse_record(const char **pp, const char *end, char sep, int quoting, struct rec *r,
                        int64_t *line)
{
    const char *p = *pp;
    r->n = 0;
    r->text.n = 0;
    struct buf tmp = {0};
    for (;;) {
        tmp.n = 0;
        if (quoting && p < end && *p == '"') {
            int64_t start_line = *line;
            p++;
            for (;;) {
                if (p >= end) {
                    free(tmp.p);
                    *line = start_line;
                    return -1;
                }
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        buf_put(&tmp, "\"", 1);
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (*p == '\n') (*line)++;
                buf_put(&tmp, p, 1);
                p++;
            }
            /* lenient: text after the closing quote up to the separator is kept */
            const char *q = p;
            while (q < end && *q != sep && *q != '\n') q++;
            size_t extra = (size_t)(q - p);
            if (extra && p[extra - 1] == '\r' && (q == end || *q == '\n')) extra--;
            if (extra) buf_put(&tmp, p, extra);
            p = q;
        } else {
            const char *q = p;
            while (q < end && *q != sep && *q != '\n') q++;
            size_t len = (size_t)(q - p);
            if (len && p[len - 1] == '\r' && (q == end || *q == '\n')) len--;
            buf_put(&tmp, p, len);
            p = q;
        }
        rec_push(r, tmp.p ? tmp.p : "", tmp.n);
        if (p < end && *p == sep) {
            p++;
            continue;
        }
        break;
    }
    if (p < end && *p == '\n') {
        p++;
        (*line)++;
    }
    free(tmp.p);
    *pp = p;
    return 0;
}

static int rec_blank(const struct rec *r)
{
    return r->n == 1 && r->f[0].len == 0;
}
static const char *rec_str(const struct rec *r, int i)
{
    return r->text.p + r->f[i].off;
}

/* ---- image-path hash (open addressing on the path arena) -------------------------------- */

struct pmap {
    int64_t *slot; /* image index or -1 */
    int64_t cap;
};

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void pmap_grow(struct pmap *m, const struct buf *paths, const int64_t *path_off, int64_t n)
{
    int64_t cap = m->cap ? m->cap * 2 : 1024;
    int64_t *slot = sg_xmalloc(sizeof(int64_t) * (size_t)cap);
    for (int64_t i = 0; i < cap; i++) slot[i] = -1;
    for (int64_t i = 0; i < n; i++) {
        const char *s = paths->p + path_off[i];
        uint64_t h = hash_str(s, strlen(s)) & (uint64_t)(cap - 1);
        while (slot[h] >= 0) h = (h + 1) & (uint64_t)(cap - 1);
        slot[h] = i;
    }
    free(m->slot);
    m->slot = slot;
    m->cap = cap;
}

/* ---- open ------------------------------------------------------------------------------- */

static int parse_separator(const char *spec_sep, const char *path, char *sep)
{
    if (!spec_sep) {
        size_t n = strlen(path);
        *sep = (n >= 4 && strcasecmp(path + n - 4, ".csv") == 0) ? ',' : '\t';
        return 0;
    }
    if (strcmp(spec_sep, "\\t") == 0 || strcmp(spec_sep, "tab") == 0) {
        *sep = '\t';
        return 0;
    }
    if (strlen(spec_sep) != 1 || spec_sep[0] == '"' || spec_sep[0] == '\n')
        return sg_err("separator '%s' must be one character (',', ';', '|' or a tab)", spec_sep);
    *sep = spec_sep[0];
    return 0;
}

static int find_column(const struct rec *hdr, const char *want, const char *fallback)
{
    for (int i = 0; i < hdr->n; i++)
        if (strcmp(rec_str(hdr, i), want) == 0) return i;
    if (fallback)
        for (int i = 0; i < hdr->n; i++)
            if (strcmp(rec_str(hdr, i), fallback) == 0) return i;
    return -1;
}

static int column_error(const struct rec *hdr, const char *what, const char *want,
                        const char *fallback, char sep, const char *path)
{
    char cols[512];
    size_t k = 0;
    for (int i = 0; i < hdr->n && k + 4 < sizeof(cols); i++)
        k += (size_t)snprintf(cols + k, sizeof(cols) - k, "%s'%s'", i ? ", " : "", rec_str(hdr, i));
    const char *hint = "set the column name (image_key / caption_key, --image-key/--caption-key)";
    if (hdr->n == 1 && sep == '\t' && strchr(rec_str(hdr, 0), ','))
        hint = "the header has one column containing ','; this looks like a comma-separated "
               "file read with the tab separator: set separator ','";
    else if (hdr->n == 1 && sep == ',' && strchr(rec_str(hdr, 0), '\t'))
        hint = "the header has one column containing tabs: set separator '\\t'";
    return sg_err("%s: no %s column '%s'%s%s%s in the header (columns: %s)\n---> HINT: %s", path,
                  what, want, fallback ? " or '" : "", fallback ? fallback : "",
                  fallback ? "'" : "", cols, hint);
}

static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return sg_xstrdup(".");
    if (slash == path) return sg_xstrdup("/");
    char *d = sg_xmalloc((size_t)(slash - path) + 1);
    memcpy(d, path, (size_t)(slash - path));
    d[slash - path] = 0;
    return d;
}

struct pair {
    int64_t img, cap; /* image index, caption offset */
};

static int caption_ok(const char *s, size_t n)
{
    int blank = 1;
    for (size_t i = 0; i < n && blank; i++)
        blank = s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n';
    return !blank && sg_utf8_valid(s, n);
}

struct parse_state {
    struct buf paths, caps;
    int64_t *path_off, npaths, path_cap;
    struct pair *pairs;
    int64_t npairs, pair_cap, dropped;
    struct pmap map;
};

static int64_t intern_path(struct parse_state *st, const char *s, size_t n)
{
    if (st->npaths * 2 >= st->map.cap) pmap_grow(&st->map, &st->paths, st->path_off, st->npaths);
    uint64_t h = hash_str(s, n) & (uint64_t)(st->map.cap - 1);
    while (st->map.slot[h] >= 0) {
        const char *p = st->paths.p + st->path_off[st->map.slot[h]];
        if (strlen(p) == n && memcmp(p, s, n) == 0) return st->map.slot[h];
        h = (h + 1) & (uint64_t)(st->map.cap - 1);
    }
    if (st->npaths == st->path_cap) {
        st->path_cap = st->path_cap ? st->path_cap * 2 : 1024;
        st->path_off = sg_xrealloc(st->path_off, sizeof(int64_t) * (size_t)st->path_cap);
    }
    st->path_off[st->npaths] = (int64_t)buf_add(&st->paths, s, n);
    st->map.slot[h] = st->npaths;
    return st->npaths++;
}

static void add_pair(struct parse_state *st, int64_t img, int64_t cap)
{
    if (st->npairs == st->pair_cap) {
        st->pair_cap = st->pair_cap ? st->pair_cap * 2 : 1024;
        st->pairs = sg_xrealloc(st->pairs, sizeof(struct pair) * (size_t)st->pair_cap);
    }
    st->pairs[st->npairs++] = (struct pair){img, cap};
}

static int parse_rows(const char *p, const char *end, char sep, int ic, int cc, const char *path,
                      int64_t line, struct parse_state *st)
{
    struct rec r = {0};
    int rc = 0;
    while (p < end) {
        int64_t rec_line = line;
        if (parse_record(&p, end, sep, sep != '\t', &r, &line) != 0) {
            rc = sg_err("%s: line %lld: quoted field never closed\n---> HINT: a '\"' opens a "
                        "quoted field in CSV; double it (\"\") inside quotes",
                        path, (long long)line);
            break;
        }
        if (rec_blank(&r)) continue;
        if (ic >= r.n || r.f[ic].len == 0) {
            rc = sg_err("%s: line %lld: no image path (field %d of %d)\n---> HINT: check the "
                        "separator and the quoting",
                        path, (long long)rec_line, ic + 1, r.n);
            break;
        }
        int64_t img = intern_path(st, rec_str(&r, ic), r.f[ic].len);
        if (cc < r.n && caption_ok(rec_str(&r, cc), r.f[cc].len))
            add_pair(st, img, (int64_t)buf_add(&st->caps, rec_str(&r, cc), r.f[cc].len));
        else
            st->dropped++;
    }
    free(r.text.p);
    free(r.f);
    return rc;
}

/* Group the (image, caption) pairs by image, stable in file order. */
static void group_captions(struct parse_state *st, struct sg_captable *im)
{
    int64_t n = st->npaths;
    im->cap_start = sg_xcalloc((size_t)n + 1, sizeof(int64_t));
    for (int64_t i = 0; i < st->npairs; i++) im->cap_start[st->pairs[i].img + 1]++;
    for (int64_t i = 0; i < n; i++) im->cap_start[i + 1] += im->cap_start[i];
    int64_t *fill = sg_xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    memcpy(fill, im->cap_start, sizeof(int64_t) * (size_t)(n + 1));
    im->cap_off = sg_xmalloc(sizeof(int64_t) * (size_t)SG_MAX(st->npairs, 1));
    for (int64_t i = 0; i < st->npairs; i++)
        im->cap_off[fill[st->pairs[i].img]++] = st->pairs[i].cap;
    free(fill);
}

int sg_dataset_open_csv(const struct sg_dataset_spec *spec, struct sg_dataset **out)
{
    char sep = '\t';
    if (parse_separator(spec->separator, spec->path, &sep) != 0) return -1;
    char *data;
    size_t len;
    if (sg_read_file(spec->path, &data, &len) != 0) return -1;
    const char *p = data, *end = data + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 BOM */
    int64_t line = 1;
    struct rec hdr = {0};
    struct parse_state st = {0};
    int rc = -1, ic = -1, cc = -1;
    while (p < end) { /* header: the first non-blank record */
        if (parse_record(&p, end, sep, sep != '\t', &hdr, &line) != 0) break;
        if (!rec_blank(&hdr)) break;
    }
    if (hdr.n == 0 || rec_blank(&hdr)) {
        sg_err("%s: empty file (no header row)\n---> HINT: the first line must name the "
               "columns, e.g. 'filepath<TAB>title'",
               spec->path);
        goto done;
    }
    const char *ik = spec->image_key ? spec->image_key : "filepath";
    const char *ck = spec->caption_key ? spec->caption_key : "title";
    ic = find_column(&hdr, ik, spec->image_key ? NULL : "image");
    if (ic < 0) {
        column_error(&hdr, "image", ik, spec->image_key ? NULL : "image", sep, spec->path);
        goto done;
    }
    cc = find_column(&hdr, ck, spec->caption_key ? NULL : "caption");
    if (cc < 0) {
        column_error(&hdr, "caption", ck, spec->caption_key ? NULL : "caption", sep, spec->path);
        goto done;
    }
    if (parse_rows(p, end, sep, ic, cc, spec->path, line, &st) != 0) goto done;
    if (st.npaths == 0) {
        sg_err("%s: no data rows after the header", spec->path);
        goto done;
    }
    struct sg_captable *im = sg_xcalloc(1, sizeof(*im));
    im->base = spec->image_root ? sg_xstrdup(spec->image_root) : dirname_of(spec->path);
    group_captions(&st, im);
    im->paths = st.paths.p;
    im->path_off = st.path_off;
    im->caps = st.caps.p ? st.caps.p : sg_xcalloc(1, 1);
    st.paths.p = st.caps.p = NULL;
    st.path_off = NULL;
    struct sg_dataset *ds = sg_xcalloc(1, sizeof(*ds));
    ds->ops = &sg_captable_ops;
    ds->kind = "csv";
    ds->path = sg_xstrdup(spec->path);
    ds->n = st.npaths;
    ds->ncaptions = st.npairs;
    ds->dropped_captions = st.dropped;
    ds->impl = im;
    *out = ds;
    rc = 0;
done:
    free(hdr.text.p);
    free(hdr.f);
    free(st.paths.p);
    free(st.caps.p);
    free(st.path_off);
    free(st.pairs);
    free(st.map.slot);
    free(data);
    return rc;
}

/* ---- sg_captable_ops: read, where, free (also the karpathy dataset's) ------------------ */

static int captable_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out)
{
    const struct sg_captable *im = ds->impl;
    const char *rel = im->paths + im->path_off[index];
    snprintf(out->where, sizeof(out->where), "%s", rel);
    char full[4096];
    int k = rel[0] == '/' ? snprintf(full, sizeof(full), "%s", rel)
                          : snprintf(full, sizeof(full), "%s/%s", im->base, rel);
    if (k < 0 || (size_t)k >= sizeof(full)) return sg_err("%s: path too long", rel);
    if (sg_raw_read_file(full, out) != 0) return -1;
    for (int64_t c = im->cap_start[index]; c < im->cap_start[index + 1]; c++) {
        const char *s = im->caps + im->cap_off[c];
        sg_raw_add_caption(out, s, strlen(s));
    }
    return 0;
}

static void captable_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n)
{
    const struct sg_captable *im = ds->impl;
    snprintf(buf, n, "%s", im->paths + im->path_off[index]);
}

static void captable_free(struct sg_dataset *ds)
{
    struct sg_captable *im = ds->impl;
    if (!im) return;
    free(im->base);
    free(im->paths);
    free(im->path_off);
    free(im->caps);
    free(im->cap_off);
    free(im->cap_start);
    free(im);
}

const struct sg_dataset_ops sg_captable_ops = {captable_read, captable_where, captable_free};
