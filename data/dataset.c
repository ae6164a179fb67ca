/*
 * data/dataset.c — dataset dispatch (kind sniffing), raw-sample buffers and shared helpers
 * (UTF-8 validation, WebDataset-style brace expansion). Formats: data/ds_csv.c, data/ds_wds.c,
 * data/ds_folder.c, data/ds_karpathy.c. Contract: data/dataset.h.
 */
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

/* ---- raw samples ------------------------------------------------------------------------ */

void sg_raw_sample_free(struct sg_raw_sample *s)
{
    free(s->img);
    free(s->captions);
    free(s->text);
    memset(s, 0, sizeof(*s));
}

void sg_raw_reset(struct sg_raw_sample *out)
{
    out->img_len = 0;
    out->ncaptions = 0;
    out->text_len = 0;
    out->label = -1;
    out->ndropped = 0;
}

void sg_raw_add_caption(struct sg_raw_sample *out, const char *s, size_t n)
{
    if (out->text_len + n + 1 > out->text_cap) {
        size_t cap = SG_MAX(out->text_cap * 2, out->text_len + n + 1);
        cap = SG_MAX(cap, (size_t)256);
        char *old = out->text;
        out->text = sg_xrealloc(out->text, cap);
        out->text_cap = cap;
        for (int i = 0; i < out->ncaptions; i++)
            out->captions[i] = out->text + (out->captions[i] - old);
    }
    if (out->ncaptions == out->captions_cap) {
        out->captions_cap = SG_MAX(8, out->captions_cap * 2);
        out->captions = sg_xrealloc(out->captions, sizeof(char *) * (size_t)out->captions_cap);
    }
    char *dst = out->text + out->text_len;
    memcpy(dst, s, n);
    dst[n] = 0;
    out->captions[out->ncaptions++] = dst;
    out->text_len += n + 1;
}

int sg_raw_read_file(const char *path, struct sg_raw_sample *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sg_err("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sg_err("%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len + 1 > out->img_cap) {
        free(out->img);
        out->img_cap = len + 1 + len / 4;
        out->img = sg_xmalloc(out->img_cap);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, out->img + got, len - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            return sg_err("%s: read failed: %s", path, r == 0 ? "file shrank" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    out->img_len = len;
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

int sg_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (i + (size_t)len > n) return 0;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += (size_t)len;
    }
    return 1;
}

/* ---- brace expansion -------------------------------------------------------------------- */

#define MAX_EXPANSION 10000000

struct strlist {
    char **v;
    int64_t n, cap;
};

static void sl_push(struct strlist *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = sg_xrealloc(l->v, sizeof(char *) * (size_t)l->cap);
    }
    l->v[l->n++] = s;
}

static void sl_free(struct strlist *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static char *concat3(const char *a, size_t na, const char *b, size_t nb, const char *c)
{
    size_t nc = strlen(c);
    char *s = sg_xmalloc(na + nb + nc + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    return s;
}

/* Parse "digits..digits" exactly spanning [p, p+n); returns 1 and the bounds, else 0. */
static int parse_range(const char *p, size_t n, long long *lo, long long *hi, int *width)
{
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '.' && p[i + 1] == '.') {
            dots = p + i;
            break;
        }
    if (!dots || dots == p || dots + 2 == p + n) return 0;
    for (const char *q = p; q < p + n; q++)
        if (q != dots && q != dots + 1 && (*q < '0' || *q > '9')) return 0;
    if (dots - p > 15 || (p + n) - (dots + 2) > 15) return 0;
    *lo = strtoll(p, NULL, 10);
    *hi = strtoll(dots + 2, NULL, 10);
    *width = (p[0] == '0' && dots - p > 1) ? (int)(dots - p) : 0;
    return 1;
}

/* Expand the first brace group of s (recursively the rest); pushes results onto out. */
static int expand_one(const char *s, struct strlist *out)
{
    const char *open = strchr(s, '{');
    if (!open) {
        if (strchr(s, '}')) return sg_err("unbalanced '}' in shard spec '%s'", s);
        if (out->n >= MAX_EXPANSION) return sg_err("shard spec expands to over 10 million names");
        sl_push(out, sg_xstrdup(s));
        return 0;
    }
    int depth = 0;
    const char *close = NULL;
    for (const char *q = open; *q; q++) {
        if (*q == '{') depth++;
        if (*q == '}' && --depth == 0) {
            close = q;
            break;
        }
    }
    if (!close) return sg_err("unbalanced '{' in shard spec '%s'", s);
    size_t pre = (size_t)(open - s), inner = (size_t)(close - open - 1);
    const char *in = open + 1, *rest = close + 1;
    long long lo, hi;
    int width;
    if (parse_range(in, inner, &lo, &hi, &width)) {
        long long step = lo <= hi ? 1 : -1;
        if ((hi - lo) * step >= MAX_EXPANSION)
            return sg_err("shard range {%lld..%lld} is too large", lo, hi);
        for (long long v = lo;; v += step) {
            char num[32];
            int k = snprintf(num, sizeof(num), "%0*lld", width, v);
            char *t = concat3(s, pre, num, (size_t)k, rest);
            int rc = expand_one(t, out);
            free(t);
            if (rc) return rc;
            if (v == hi) break;
        }
        return 0;
    }
    /* comma alternatives at this brace level */
    const char *alt = in;
    depth = 0;
    for (const char *q = in;; q++) {
        if (q == close || (*q == ',' && depth == 0)) {
            char *t = concat3(s, pre, alt, (size_t)(q - alt), rest);
            int rc = expand_one(t, out);
            free(t);
            if (rc) return rc;
            if (q == close) break;
            alt = q + 1;
        } else if (*q == '{') {
            depth++;
        } else if (*q == '}') {
            depth--;
        }
    }
    return 0;
}

int64_t sg_expand_braces(const char *spec, char ***out)
{
    struct strlist l = {0};
    const char *p = spec;
    for (;;) {
        const char *sep = strstr(p, "::");
        size_t n = sep ? (size_t)(sep - p) : strlen(p);
        if (n > 0) {
            char *part = sg_xmalloc(n + 1);
            memcpy(part, p, n);
            part[n] = 0;
            int rc = expand_one(part, &l);
            free(part);
            if (rc) {
                sl_free(&l);
                return -1;
            }
        }
        if (!sep) break;
        p = sep + 2;
    }
    if (l.n == 0) {
        free(l.v);
        return sg_err("empty shard spec '%s'", spec);
    }
    *out = l.v;
    return l.n;
}

/* ---- dispatch --------------------------------------------------------------------------- */

static int dir_has_tar(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        found = n > 4 && strcmp(e->d_name + n - 4, ".tar") == 0;
    }
    closedir(d);
    return found;
}

static const char *sniff_kind(const char *path)
{
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (is_dir) return dir_has_tar(path) ? "wds" : "folder";
    size_t n = strlen(path);
    if (n > 5 && strcasecmp(path + n - 5, ".json") == 0) return "karpathy";
    if (strstr(path, ".tar") || strchr(path, '{') || strstr(path, "::")) return "wds";
    return "csv";
}

int sg_dataset_open(const struct sg_dataset_spec *spec, struct sg_dataset **out)
{
    *out = NULL;
    if (!spec->path || !spec->path[0]) return sg_err("dataset path is empty");
    const char *kind = spec->kind ? spec->kind : sniff_kind(spec->path);
    int rc;
    if (strcmp(kind, "csv") == 0 || strcmp(kind, "tsv") == 0) {
        struct sg_dataset_spec s = *spec;
        if (!s.separator && strcmp(kind, "tsv") == 0) s.separator = "\t";
        rc = sg_dataset_open_csv(&s, out);
    } else if (strcmp(kind, "wds") == 0 || strcmp(kind, "webdataset") == 0) {
        rc = sg_dataset_open_wds(spec, out);
    } else if (strcmp(kind, "folder") == 0 || strcmp(kind, "imagefolder") == 0) {
        rc = sg_dataset_open_folder(spec, out);
    } else if (strcmp(kind, "karpathy") == 0) {
        rc = sg_dataset_open_karpathy(spec, out);
    } else {
        return sg_err("unknown dataset kind '%s'\n---> HINT: use csv, tsv, wds, folder or karpathy",
                      kind);
    }
    if (rc != 0) return sg_err_prefix("opening dataset '%s' (%s): ", spec->path, kind);
    return 0;
}

int sg_dataset_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out)
{
    SG_CHECK(index >= 0 && index < ds->n, "sample %lld of %lld", (long long)index,
             (long long)ds->n);
    sg_raw_reset(out);
    out->where[0] = 0;
    return ds->ops->read(ds, index, out);
}

void sg_dataset_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n)
{
    SG_CHECK(index >= 0 && index < ds->n, "sample %lld of %lld", (long long)index,
             (long long)ds->n);
    ds->ops->where(ds, index, buf, n);
}

void sg_dataset_free(struct sg_dataset *ds)
{
    if (!ds) return;
    ds->ops->free(ds);
    for (int i = 0; i < ds->nclasses; i++) {
        if (ds->class_ids) free(ds->class_ids[i]);
        if (ds->classnames) free(ds->classnames[i]);
    }
    free(ds->class_ids);
    free(ds->classnames);
    free(ds->path);
    free(ds);
}
